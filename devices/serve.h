/*
 * serve.h - how the example devices export their unit: the --nbd, --fuse,
 * --iscsi and --pid-file options, and running until SIGINT or SIGTERM.
 */
#ifndef SPD_DEVICES_SERVE_H
#define SPD_DEVICES_SERVE_H

#include <stdbool.h>
#include <stdio.h>

#include "spd/spd.h"

#define SERVE_MAX_NBD 16

struct serve_options {
    const char *nbd_uris[SERVE_MAX_NBD];
    unsigned nbd_count;
    const char *fuse_path;
    bool iscsi;                       /* --iscsi given */
    const char *iscsi_portal;         /* its ADDR:PORT, or NULL: 127.0.0.1:3260 */
    const char *iscsi_target;         /* --iscsi-target IQN, or NULL: made up */
    const char *chap_file;            /* --chap-file FILE */
    const char *pid_file;
};

/* Block SIGINT and SIGTERM in this thread and every thread created after,
 * so that serve() alone receives them. Call first thing in main(). */
void serve_block_signals(void);

/* Take one export option (long option name without dashes, and its
 * argument, NULL when an optional one is missing): 1 taken, 0 not an
 * export option, -1 bad value (message printed). */
int serve_option(struct serve_options *o, const char *name, const char *arg,
                 const char *program);

/* Whether any export was asked for. */
bool serve_wanted(const struct serve_options *o);

/* Export the unit, write the pid file, wait for SIGINT or SIGTERM, then
 * stop the exports (in-flight requests finish), flush the unit and remove
 * the pid file. 0, or 1 after printing why it could not serve. */
int serve(spd_unit *unit, const struct serve_options *o, const char *program);

#endif
