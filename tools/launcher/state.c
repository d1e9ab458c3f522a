/* state.c - persistent instances: one file STATE_DIR/CLASS@NAME each,
 * written when one starts, removed when it is stopped, and started again
 * when the launcher starts (a disk that comes back after a reboot).
 *
 *   owner UID
 *   arg VALUE          one line per %1..%9 (no value has a newline)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "instance.h"

static void state_path(struct launcher *l, const char *class,
                       const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s@%s", l->state_dir, class, name);
}

void inst_save(struct launcher *l, const struct inst *i)
{
    char path[4400], tmp[4500];
    if (!l->state_dir || !i->persistent)
        return;
    state_path(l, i->class, i->name, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                  0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    bool ok = f != NULL;
    if (f) {
        fprintf(f, "owner %u\n", (unsigned)i->owner);
        for (int a = 0; a < i->nargs; a++)
            fprintf(f, "arg %s\n", i->args[a]);
        ok = !fflush(f) && !fsync(fd);
        ok = !fclose(f) && ok;
    } else if (fd >= 0) {
        close(fd);
    }
    if (!ok || rename(tmp, path)) {
        fprintf(stderr, "cannot record %s/%s in %s: %s\n", i->class,
                i->name, path, strerror(errno));
        unlink(tmp);
    }
}

void inst_unsave(struct launcher *l, const struct inst *i)
{
    char path[4400];
    if (!l->state_dir)
        return;
    state_path(l, i->class, i->name, path, sizeof path);
    if (unlink(path) && errno != ENOENT)
        fprintf(stderr, "cannot remove %s: %s\n", path, strerror(errno));
}

/* Read one record; -1 when it is not one. */
static int state_read(FILE *f, unsigned *owner, char **args, int *nargs)
{
    char line[4200];
    bool have_owner = false;
    *nargs = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (sscanf(line, "owner %u", owner) == 1)
            have_owner = true;
        else if (!strncmp(line, "arg ", 4) && *nargs < 9)
            args[(*nargs)++] = strdup(line + 4);
        else
            return -1;
    }
    for (int a = 0; a < *nargs; a++)
        if (!args[a])
            return -1;
    return have_owner ? 0 : -1;
}

static void restore_one(struct launcher *l, const char *file)
{
    char class[PROTO_NAME_MAX + 1], err[600], path[4400];
    const char *at = strchr(file, '@');
    if (!at || at - file > PROTO_NAME_MAX || !proto_name_ok(at + 1))
        return;
    snprintf(class, sizeof class, "%.*s", (int)(at - file), file);
    snprintf(path, sizeof path, "%s/%s", l->state_dir, file);
    FILE *f = fopen(path, "re");
    char *args[9] = { 0 };
    int nargs = 0;
    unsigned owner = 0;
    struct lclass c;
    if (!f || state_read(f, &owner, args, &nargs)) {
        fprintf(stderr, "%s: not a record of an instance\n", path);
    } else if (class_load(l->config_dir, class, &c, err, sizeof err) ||
               !inst_start(l, &c, at + 1, args, nargs, owner, err,
                           sizeof err)) {
        fprintf(stderr, "%s/%s: not restarted: %s\n", class, at + 1, err);
    }
    if (f)
        fclose(f);
    for (int a = 0; a < nargs; a++)
        free(args[a]);
}

void inst_restore(struct launcher *l)
{
    DIR *d = l->state_dir ? opendir(l->state_dir) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.' && !strstr(e->d_name, ".tmp"))
            restore_one(l, e->d_name);
    if (d)
        closedir(d);
}
