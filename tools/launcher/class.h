/* class.h - launcher classes: one configuration file per class,
 * DIR/NAME.conf (spd-class.conf(5)). Read afresh for every request, so
 * an edit applies to the next start without a reload. */
#ifndef SPD_LAUNCHER_CLASS_H
#define SPD_LAUNCHER_CLASS_H

#include <stdbool.h>
#include <sys/types.h>

#include "proto.h"

#define CLASS_WORDS_MAX 64
#define CLASS_IDS_MAX 64

struct lclass {
    char name[PROTO_NAME_MAX + 1];
    char executable[4096];
    char directory[4096];
    char *words[CLASS_WORDS_MAX];   /* the argument template */
    int nwords;
    int nargs;                      /* the highest %N in the template */
    uid_t uid;
    gid_t gid;
    bool persistent;
    uid_t users[CLASS_IDS_MAX];     /* who may start, stop and query */
    int nusers;
    gid_t groups[CLASS_IDS_MAX];
    int ngroups;
    int ready_timeout, stop_timeout;  /* seconds */
    char storage[8192];             /* the words' text */
};

/* The caller of a request, from SO_PEERCRED and SO_PEERGROUPS (its
 * supplementary groups when it connected). */
struct caller {
    pid_t pid;
    uid_t uid;
    gid_t gid;
    int ngroups;
    gid_t groups[256];
};

/* Load DIR/NAME.conf; on failure -1 with one line in err. */
int class_load(const char *dir, const char *name, struct lclass *c,
               char *err, size_t errsize);

/* May the caller start instances of c (and stop and query any)? */
bool class_allows(const struct lclass *c, const struct caller *who);

/* The argv of an instance: the executable, then the template with %1..%9
 * replaced by args, %n by the instance name, %c by the class name, %r by
 * run_dir, %% by '%'. Returns a NULL-terminated malloc'd array whose
 * strings live in one block with it (one free()), or NULL with err. */
char **class_argv(const struct lclass *c, const char *name,
                  const char *run_dir, char **args, int nargs,
                  char *err, size_t errsize);

#endif
