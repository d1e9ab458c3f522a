/* proto.h - the launcher's control protocol, shared by spd-launcherd and
 * spdctl.
 *
 * One SOCK_SEQPACKET message each way. A request is its words joined by
 * NUL bytes ("start", CLASS, NAME, ARG...). A reply starts with "ok\n" or
 * "error\n"; an error's body is one line, an ok's body is records of
 * "key value" lines, each record ended by an empty line. */
#ifndef SPD_LAUNCHER_PROTO_H
#define SPD_LAUNCHER_PROTO_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#define PROTO_SOCKET "/run/spd/launcher.sock"
#define PROTO_REQUEST_MAX 65536
#define PROTO_REPLY_MAX (160 * 1024)
#define PROTO_WORDS_MAX 16
#define PROTO_NAME_MAX 64

/* A growing string; on allocation failure it stays empty with err set. */
struct sbuf {
    char *p;
    size_t len, cap;
    bool err;
};

void sb_printf(struct sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void sb_add(struct sbuf *b, const void *data, size_t len);
void sb_free(struct sbuf *b);

/* Split a NUL-separated request into at most max words; -1 when there
 * are more or the message does not end in NUL. */
int proto_split(char *msg, size_t len, char **words, int max);

/* A class or instance name: letters, digits, '.', '_', '+' and '-', not
 * starting with '.' or '-', at most PROTO_NAME_MAX bytes. */
bool proto_name_ok(const char *s);

/* A value in a "key value" line: control characters become '?'. */
void proto_value(struct sbuf *b, const char *key, const char *value);

/* A reply record parsed back: the value of the nth line with key. */
const char *proto_get(const char *record, const char *key, unsigned nth,
                      char *out, size_t size);

#endif
