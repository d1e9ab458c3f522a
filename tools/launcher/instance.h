/* instance.h - the device processes spd-launcherd runs: start, readiness,
 * their output, reaping, stopping, and the records of persistent ones. */
#ifndef SPD_LAUNCHER_INSTANCE_H
#define SPD_LAUNCHER_INSTANCE_H

#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

#include "class.h"
#include "proto.h"

#define INST_EXPORTS_MAX 8

enum inst_state { INST_STARTING, INST_RUNNING, INST_STOPPING, INST_EXITED };

struct inst {
    struct inst *next;
    char class[PROTO_NAME_MAX + 1], name[PROTO_NAME_MAX + 1];
    enum inst_state state;
    pid_t pid;
    int status;                 /* wait status, once INST_EXITED */
    uid_t owner;                /* who started it */
    bool persistent;
    char **argv;                /* class_argv(): one block */
    char **args;                /* the request's %1..%9, for the record */
    int nargs;
    time_t started;
    struct timespec deadline;   /* readiness, or SIGKILL when stopping */
    int stop_timeout;
    bool late;                  /* killed: not ready by the deadline */
    bool stopped;               /* gone after a stop: to be forgotten */
    bool saved;                 /* its record is written */
    int notify_fd, out_fd;      /* $NOTIFY_SOCKET; stdout and stderr */
    char line[1024];            /* a partial output line */
    size_t line_len;
    char last[256];             /* the last line it wrote */
    char exports[INST_EXPORTS_MAX][512];
    int nexports;
};

struct launcher {
    const char *config_dir, *state_dir, *run_dir;
    struct inst *list;
};

struct inst *inst_find(struct launcher *l, const char *class,
                       const char *name);

/* Start an instance of class c (already allowed): fork, drop to the
 * class's user, exec. Returns the new instance (INST_STARTING) or NULL
 * with err. */
struct inst *inst_start(struct launcher *l, const struct lclass *c,
                        const char *name, char **args, int nargs,
                        uid_t owner, char *err, size_t errsize);

/* Events: a datagram on notify_fd, output on out_fd (logged with the
 * instance's name; "serving" lines kept as its exports), a reaped status. */
void inst_on_notify(struct inst *i);
void inst_on_output(struct inst *i);
void inst_on_exit(struct inst *i, int status);

/* SIGTERM now, SIGKILL at the deadline (stop_timeout seconds). */
void inst_stop(struct inst *i);
void inst_kill(struct inst *i);
void inst_forget(struct launcher *l, struct inst *i);

/* The kernel block devices an instance's exports became ("loop3",
 * "ublkb0"). */
void inst_devices(const struct inst *i, char names[][64], int *n, int max);

/* Describe an instance as one reply record. */
void inst_record(const struct inst *i, struct sbuf *b);
const char *inst_state_name(const struct inst *i);
void inst_status_text(int status, char *out, size_t size);

/* Persistent instances: a file STATE_DIR/CLASS@NAME each. */
void inst_save(struct launcher *l, const struct inst *i);
void inst_unsave(struct launcher *l, const struct inst *i);
void inst_restore(struct launcher *l);

#endif
