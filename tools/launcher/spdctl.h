/* spdctl.h - what spdctl's commands share: the request to the launcher
 * and the printing of its records. */
#ifndef SPD_SPDCTL_H
#define SPD_SPDCTL_H

#include <stdbool.h>

#include "proto.h"

struct ctl {
    const char *socket;
    bool json;
};

/* Send words to the launcher; 0 with the reply's body in out, or 1 after
 * printing the error line. */
int ctl_request(const struct ctl *ctl, char **words, int n, struct sbuf *out);

/* The next record of a reply body (NULL at the end); *pos advances. */
const char *ctl_next_record(const char *body, size_t *pos, char *out,
                            size_t size);

/* A JSON string. */
void ctl_json_string(const char *s);

int cmd_mount(const struct ctl *ctl, int argc, char **argv);
int cmd_eject(const struct ctl *ctl, int argc, char **argv);
int cmd_doctor(const struct ctl *ctl);

#endif
