/* blockdev.c - kernel block devices through /sys and mountinfo. */
#include "blockdev.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

static int read_line(const char *path, char *out, size_t size)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    bool ok = fgets(out, (int)size, f) != NULL;
    fclose(f);
    if (!ok)
        return -1;
    out[strcspn(out, "\n")] = '\0';
    return 0;
}

static void add(struct bdev_list *l, const char *name)
{
    if (l->n < BDEV_MAX)
        snprintf(l->name[l->n++], sizeof l->name[0], "%.63s", name);
}

int bdev_loop_file(const char *name, char *out, size_t size)
{
    char path[300];
    snprintf(path, sizeof path, "/sys/block/%s/loop/backing_file", name);
    if (read_line(path, out, size)) {
        *out = '\0';
        return -1;
    }
    return 0;
}

void bdev_loops_of(const char *path, struct bdev_list *out)
{
    out->n = 0;
    DIR *d = opendir("/sys/block");
    struct dirent *e;
    char file[4200];
    while (d && (e = readdir(d)))
        if (!strncmp(e->d_name, "loop", 4) &&
            !bdev_loop_file(e->d_name, file, sizeof file) &&
            !strcmp(file, path))
            add(out, e->d_name);
    if (d)
        closedir(d);
}

void bdev_with_parts(const char *disk, struct bdev_list *out)
{
    char path[300];
    out->n = 0;
    add(out, disk);
    snprintf(path, sizeof path, "/sys/block/%s", disk);
    DIR *d = opendir(path);
    struct dirent *e;
    size_t len = strlen(disk);
    while (d && (e = readdir(d)))
        if (!strncmp(e->d_name, disk, len) && e->d_name[len])
            add(out, e->d_name);
    if (d)
        closedir(d);
}

int bdev_disk_of(const char *name, char *out, size_t size)
{
    char path[4200], real[4096];
    snprintf(path, sizeof path, "/sys/class/block/%s", name);
    if (!realpath(path, real))
        return -1;
    snprintf(path, sizeof path, "%s/partition", real);
    if (access(path, F_OK) == 0)
        *strrchr(real, '/') = '\0';   /* a partition: its disk's folder */
    snprintf(out, size, "%s", strrchr(real, '/') + 1);
    return 0;
}

/* mountinfo escapes ' ', '\t', '\n' and '\\' as \ooo. */
static void unescape(char *s)
{
    char *o = s;
    for (; *s; s++) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] && s[3]) {
            *o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + s[3] - '0');
            s += 3;
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
}

/* Call fn for every mount: its device number and mount point. Stops
 * when fn returns non-zero and returns that. */
static int each_mount(int (*fn)(dev_t, const char *, void *), void *arg)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    char line[8192], mp[4096];
    unsigned maj, min;
    int r = 0;
    while (f && !r && fgets(line, sizeof line, f))
        if (sscanf(line, "%*s %*s %u:%u %*s %4095s", &maj, &min, mp) == 3) {
            unescape(mp);
            r = fn(makedev(maj, min), mp, arg);
        }
    if (f)
        fclose(f);
    return r;
}

static dev_t dev_of(const char *name)
{
    char path[300], text[32];
    unsigned maj, min;
    snprintf(path, sizeof path, "/sys/class/block/%s/dev", name);
    if (read_line(path, text, sizeof text) ||
        sscanf(text, "%u:%u", &maj, &min) != 2)
        return 0;
    return makedev(maj, min);
}

struct find_mp {
    const char *mountpoint;
    dev_t dev;
};

static int match_mountpoint(dev_t dev, const char *mp, void *arg)
{
    struct find_mp *f = arg;
    if (strcmp(mp, f->mountpoint))
        return 0;
    f->dev = dev;
    return 1;
}

int bdev_at_mountpoint(const char *mountpoint, char *out, size_t size)
{
    struct find_mp f = { mountpoint, 0 };
    char path[300], real[4096];
    if (!each_mount(match_mountpoint, &f))
        return -1;
    snprintf(path, sizeof path, "/sys/dev/block/%u:%u", major(f.dev),
             minor(f.dev));
    if (!realpath(path, real))
        return -1;
    snprintf(out, size, "%s", strrchr(real, '/') + 1);
    return 0;
}

struct mounts_of {
    dev_t dev;
    const char *name;
    struct sbuf *why;
    int count;
};

static int note_mount(dev_t dev, const char *mp, void *arg)
{
    struct mounts_of *m = arg;
    if (dev == m->dev) {
        sb_printf(m->why, "%s/dev/%s is mounted on %s", m->count ? "; " : "",
                  m->name, mp);
        m->count++;
    }
    return 0;
}

static int note_holders(const char *name, struct sbuf *why, int count)
{
    char path[300];
    snprintf(path, sizeof path, "/sys/class/block/%s/holders", name);
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.')
            sb_printf(why, "%s/dev/%s is held by %s", count++ ? "; " : "",
                      name, e->d_name);
    if (d)
        closedir(d);
    return count;
}

/* The first of paths that process pid has open, by its fd links (read,
 * never followed: a dead FUSE or NFS mount cannot hang the scan). */
static const char *held_by(const char *pid, const char *const *paths, int n)
{
    char dir[64], link[340], target[4200];
    snprintf(dir, sizeof dir, "/proc/%s/fd", pid);
    DIR *d = opendir(dir);
    struct dirent *e;
    const char *found = NULL;
    while (d && !found && (e = readdir(d))) {
        snprintf(link, sizeof link, "%s/%s", dir, e->d_name);
        ssize_t len = readlink(link, target, sizeof target - 1);
        if (len <= 0)
            continue;
        target[len] = '\0';
        for (int k = 0; k < n && !found; k++)
            if (!strcmp(target, paths[k]))
                found = paths[k];
    }
    if (d)
        closedir(d);
    return found;
}

int bdev_openers(const char *const *paths, int n, pid_t skip,
                 struct sbuf *why, int count)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    char comm[64], path[300];
    while (d && (e = readdir(d))) {
        const char *p;
        pid_t pid = (pid_t)atoi(e->d_name);
        if (pid <= 0 || pid == getpid() || pid == skip ||
            !(p = held_by(e->d_name, paths, n)))
            continue;
        snprintf(path, sizeof path, "/proc/%s/comm", e->d_name);
        if (read_line(path, comm, sizeof comm))
            strcpy(comm, "?");
        sb_printf(why, "%s%s is open in pid %s (%s)", count++ ? "; " : "",
                  p, e->d_name, comm);
    }
    if (d)
        closedir(d);
    return count;
}

int bdev_users(const char *disk, bool loop_counts, struct sbuf *why,
               int count)
{
    struct bdev_list all;
    int before = count;
    bdev_with_parts(disk, &all);
    for (int i = 0; i < all.n; i++) {
        struct mounts_of m = { dev_of(all.name[i]), all.name[i], why, count };
        if (m.dev)
            each_mount(note_mount, &m);
        count = note_holders(all.name[i], why, m.count);
    }
    char paths[BDEV_MAX][80];
    const char *list[BDEV_MAX];
    for (int i = 0; i < all.n; i++) {
        snprintf(paths[i], sizeof paths[i], "/dev/%s", all.name[i]);
        list[i] = paths[i];
    }
    count = bdev_openers(list, all.n, 0, why, count);
    char file[4200];
    if (count == before && loop_counts &&
        !bdev_loop_file(disk, file, sizeof file))
        sb_printf(why, "%s/dev/%s is attached to %s", count++ ? "; " : "",
                  disk, file);
    return count;
}

struct unmount {
    dev_t dev;
    bool lazy;
    int err;
};

static int unmount_one(dev_t dev, const char *mp, void *arg)
{
    struct unmount *u = arg;
    if (dev != u->dev)
        return 0;
    if (umount2(mp, 0) && !(u->lazy && !umount2(mp, MNT_DETACH))) {
        u->err = errno;
        fprintf(stderr, "cannot unmount %s: %s\n", mp, strerror(errno));
        return 1;
    }
    return 2;   /* mountinfo changed: read it again */
}

int bdev_unmount_all(const char *disk, bool lazy)
{
    struct bdev_list all;
    bdev_with_parts(disk, &all);
    for (int i = 0; i < all.n; i++) {
        struct unmount u = { dev_of(all.name[i]), lazy, 0 };
        int r;
        while (u.dev && (r = each_mount(unmount_one, &u)) == 2)
            ;
        if (u.err) {
            errno = u.err;
            return -1;
        }
    }
    return 0;
}

int bdev_loop_detach(const char *name, int wait_ms)
{
    char path[300], file[4200];
    snprintf(path, sizeof path, "/dev/%s", name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    fsync(fd);
    int r = ioctl(fd, LOOP_CLR_FD, 0);
    int err = errno;
    close(fd);
    if (r) {
        errno = err;
        return -1;
    }
    for (int i = 0; i < wait_ms / 10 && !bdev_loop_file(name, file,
                                                         sizeof file); i++)
        nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
    return 0;
}

/* Whether path is a FUSE file whose server is gone: the forced statx
 * asks the file system, whose cached attributes may hide it. */
static bool fuse_dead(const char *path)
{
    struct statx st;
    return statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW | AT_STATX_FORCE_SYNC,
                 STATX_TYPE, &st) != 0 && errno == ENOTCONN;
}

/* The loop devices over the dead file first (once the file is detached
 * they no longer name it), then the file. */
static void clean_dead(const char *path)
{
    struct bdev_list loops;
    bdev_loops_of(path, &loops);
    for (int k = 0; k < loops.n; k++) {
        const char *l = loops.name[k];
        if (bdev_unmount_all(l, true) || bdev_loop_detach(l, 1000))
            fprintf(stderr, "spd-launcherd: /dev/%s over %s, whose server "
                    "is gone, stays: %s\n", l, path, strerror(errno));
        else
            fprintf(stderr, "spd-launcherd: /dev/%s over %s, whose server "
                    "is gone: unmounted and detached\n", l, path);
    }
    if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) || unlink(path))
        fprintf(stderr, "spd-launcherd: %s, whose server is gone, stays: "
                "%s\n", path, strerror(errno));
}

int bdev_clean_dead_fuse(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4200];
    int count = 0;
    while (d && (e = readdir(d))) {
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (e->d_name[0] != '.' && fuse_dead(path)) {
            clean_dead(path);
            count++;
        }
    }
    if (d)
        closedir(d);
    return count;
}
