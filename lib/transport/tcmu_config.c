/*
 * tcmu_config.c - the TCMU export's kernel objects (see tcmu_int.h): the
 * backstore in LIO's configfs, its UIO device in sysfs, and the tcm_loop
 * target that makes it a local SCSI disk. What targetcli would write, in
 * the order it writes it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/errmsg.h"
#include "transport/tcmu_int.h"

/* How long the kernel waits for a command before it fails it: what a
 * dead process's commands wait. Below the SCSI disk's own 30 s, so that
 * TCMU answers first and the SCSI layer's error handling (aborts,
 * resets) does not run for them. */
#define TCMU_CMD_TIMEOUT_S 20

static void nap_ms(long ms)
{
    nanosleep(&(struct timespec){ .tv_sec = ms / 1000,
                                  .tv_nsec = (ms % 1000) * 1000000 }, NULL);
}

/* Write text to a configfs or sysfs attribute: 0 or -errno. */
static int attr_write(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = write(fd, text, strlen(text));
    int err = n < 0 ? errno : n != (ssize_t)strlen(text) ? EIO : 0;
    close(fd);
    return -err;
}

/* Read an attribute into buf (NUL-terminated, trailing newline dropped):
 * 0 or -errno. */
static int attr_read(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, len - 1);
    int err = n < 0 ? errno : 0;
    close(fd);
    if (err)
        return -err;
    buf[n] = '\0';
    if (n && buf[n - 1] == '\n')
        buf[n - 1] = '\0';
    return 0;
}

static int attr_writef(const char *dir, const char *attr, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, attr);
    int r = attr_write(path, text);
    if (r)
        spd_set_error(-r, "%s: writing '%s': %s", path, text, strerror(-r));
    return r;
}

/* The geometry of an existing backstore matches geo. */
static bool geometry_matches(const char *dir, const struct tcmu_geometry *geo)
{
    char path[512], info[512];
    snprintf(path, sizeof path, "%s/info", dir);
    if (attr_read(path, info, sizeof info))
        return false;
    const char *size = strstr(info, " Size: ");  /* not SectorSize */
    snprintf(path, sizeof path, "%s/attrib/hw_block_size", dir);
    char bl[32];
    return size && !attr_read(path, bl, sizeof bl) &&
           strtoull(size + 7, NULL, 10) ==
               geo->block_count * geo->block_length &&
           strtoul(bl, NULL, 10) == geo->block_length;
}

/* Whether the backstore at dir is enabled (configured in the kernel). */
static bool enabled(const char *dir)
{
    char path[512], v[8];
    snprintf(path, sizeof path, "%s/enable", dir);
    return !attr_read(path, v, sizeof v) && v[0] == '1';
}

int tcmu_backstore_create(const char *name, const struct tcmu_geometry *geo,
                          const char *serial, char *dir, size_t dir_len,
                          bool *existed)
{
    char control[256], text[32];
    snprintf(dir, dir_len, "%s/%s", TCMU_HBA, name);
    *existed = false;
    if (mkdir(TCMU_HBA, 0755) && errno != EEXIST)
        return spd_set_error(errno, "%s: %s", TCMU_HBA, strerror(errno));
    if (mkdir(dir, 0755)) {
        if (errno != EEXIST)
            return spd_set_error(errno, "%s: %s", dir, strerror(errno));
        if (enabled(dir)) {
            if (!geometry_matches(dir, geo))
                return spd_set_error(EINVAL, "TCMU backstore %s exists with "
                                     "another size or block length", name);
            *existed = true;
            return 0;
        }
        /* Half made by a process that died while creating it. */
        if (rmdir(dir) || mkdir(dir, 0755))
            return spd_set_error(errno, "%s: %s", dir, strerror(errno));
    }
    /* nl_reply_supported=-1: the kernel does not wait for a netlink
     * daemon (tcmu-runner) to acknowledge the device: this process
     * serves it. */
    snprintf(control, sizeof control,
             "dev_size=%" PRIu64 ",dev_config=spd/%s,hw_block_size=%u,"
             "hw_max_sectors=%u,nl_reply_supported=-1",
             geo->block_count * geo->block_length, name, geo->block_length,
             geo->max_sectors);
    snprintf(text, sizeof text, "%d", TCMU_CMD_TIMEOUT_S);
    int r;
    if ((r = attr_writef(dir, "control", control)) ||
        (r = attr_writef(dir, "enable", "1")) ||
        (r = attr_writef(dir, "attrib/cmd_time_out", text))) {
        rmdir(dir);
        return r;
    }
    /* LIO's own idea of the serial number (the engine answers INQUIRY):
     * it names LIO's reservations' file, one per backstore. */
    char path[512];
    snprintf(path, sizeof path, "%s/wwn/vpd_unit_serial", dir);
    attr_write(path, serial);
    return 0;
}

int tcmu_reservations_set(const char *dir, bool lio)
{
    char path[512], root[256];
    /* LIO writes its reservations' file (aptpl_SERIAL) into db_root/pr at
     * each PERSISTENT RESERVE OUT, APTPL or not, and fails the command
     * (NOT READY) without that folder: made here, as targetcli would. */
    if (lio && !attr_read(TCMU_TARGET "/dbroot", root, sizeof root) &&
        root[0] == '/') {
        snprintf(path, sizeof path, "%s/pr", root);
        mkdir(path, 0700);
    }
    snprintf(path, sizeof path, "%s/attrib/pgr_support", dir);
    int r = attr_write(path, lio ? "1" : "0");
    /* An older kernel, without the attribute, emulates them. */
    if (r == -ENOENT && lio)
        return 0;
    if (r)
        return spd_set_error(r == -ENOENT ? EOPNOTSUPP : -r, "%s: %s: "
                             "reservations cannot be given to Spd's engine",
                             path, strerror(-r));
    return 0;
}

/* Whether the attribute at path reads want, trailing newlines aside. */
static bool attr_is(const char *path, const char *want)
{
    char v[300];
    if (attr_read(path, v, sizeof v))
        return false;
    size_t n = strlen(v);
    while (n && v[n - 1] == '\n')
        v[--n] = '\0';
    return !strcmp(v, want);
}

int tcmu_attr_restore(const char *dir, const char *attr, const char *seen,
                      const char *value)
{
    char path[512];
    snprintf(path, sizeof path, "%s/attrib/%s", dir, attr);
    /* The kernel announces the value before it stores it: wait for it,
     * so that it does not overwrite ours (a moment, in which the ring
     * waits too: only for a value refused). */
    for (int i = 0; i < 200 && !attr_is(path, seen); i++)
        nap_ms(5);
    snprintf(path, sizeof path, "attrib/%s", attr);
    return attr_writef(dir, path, value);
}

void tcmu_backstore_remove(const char *dir)
{
    rmdir(dir);
}

int tcmu_ring_reset(const char *dir)
{
    return attr_writef(dir, "action/reset_ring", "1");
}

int tcmu_uio_find(const char *name, int *minor, size_t *map_size)
{
    char want[256], path[512], text[300];
    snprintf(want, sizeof want, "tcm-user/0/%s/spd/%s", name, name);
    for (int tries = 0; tries < 200; tries++) {
        DIR *d = opendir("/sys/class/uio");
        struct dirent *de;
        while (d && (de = readdir(d))) {
            if (strncmp(de->d_name, "uio", 3))
                continue;
            snprintf(path, sizeof path, "/sys/class/uio/%s/name", de->d_name);
            if (attr_read(path, text, sizeof text) || strcmp(text, want))
                continue;
            snprintf(path, sizeof path, "/sys/class/uio/%s/maps/map0/size",
                     de->d_name);
            *minor = atoi(de->d_name + 3);
            int r = attr_read(path, text, sizeof text);
            closedir(d);
            if (r)
                return spd_set_error(-r, "%s: %s", path, strerror(-r));
            *map_size = (size_t)strtoull(text, NULL, 0);
            return 0;
        }
        if (d)
            closedir(d);
        nap_ms(25);
    }
    return spd_set_error(ENOENT, "no UIO device %s", want);
}

/* naa.5001405 and nine hex digits, as targetcli makes them, from a hash
 * of the backstore's name: the same name gives the same target. */
static void loop_wwn(const char *name, unsigned salt, char *out, size_t len)
{
    uint64_t h = 1469598103934665603ull ^ salt;
    for (const char *c = name; *c; c++)
        h = (h ^ (uint8_t)*c) * 1099511628211ull;
    snprintf(out, len, "naa.5001405%09" PRIx64, (uint64_t)(h & 0xfffffffffull));
}

int tcmu_loop_create(const char *name, const char *dir)
{
    char wwn[32], nexus[32], tpg[256], lun[300], link[400];
    loop_wwn(name, 0, wwn, sizeof wwn);
    loop_wwn(name, 1, nexus, sizeof nexus);
    snprintf(tpg, sizeof tpg, "%s/%s/tpgt_1", TCMU_LOOP, wwn);
    snprintf(lun, sizeof lun, "%s/lun/lun_0", tpg);
    snprintf(link, sizeof link, "%s/spd", lun);
    struct stat st;
    if (!lstat(link, &st))
        return 0;      /* a dead process's, still linked to the backstore */
    if (mkdir(TCMU_LOOP, 0755) && errno != EEXIST)
        return spd_set_error(errno, "%s: %s (no tcm_loop module?)",
                             TCMU_LOOP, strerror(errno));
    /* The nexus before the LUN: linking the LUN scans it, which needs
     * the nexus. */
    int r = 0;
    char path[300], cur[64];
    snprintf(path, sizeof path, "%s/%s", TCMU_LOOP, wwn);
    if ((mkdir(path, 0755) && errno != EEXIST) ||
        (mkdir(tpg, 0755) && errno != EEXIST))
        r = spd_set_error(errno, "tcm_loop target %s: %s", wwn,
                          strerror(errno));
    snprintf(path, sizeof path, "%s/nexus", tpg);
    if (!r && (attr_read(path, cur, sizeof cur) || !cur[0] ||
               !strcmp(cur, "(null)")))
        r = attr_writef(tpg, "nexus", nexus);
    if (!r && ((mkdir(lun, 0755) && errno != EEXIST) || symlink(dir, link)))
        r = spd_set_error(errno, "tcm_loop LUN of %s: %s", wwn,
                          strerror(errno));
    if (r)
        tcmu_loop_remove(name);
    return r;
}

void tcmu_loop_remove(const char *name)
{
    char wwn[32], path[400];
    loop_wwn(name, 0, wwn, sizeof wwn);
    snprintf(path, sizeof path, "%s/%s/tpgt_1/lun/lun_0/spd", TCMU_LOOP, wwn);
    unlink(path);
    snprintf(path, sizeof path, "%s/%s/tpgt_1/lun/lun_0", TCMU_LOOP, wwn);
    rmdir(path);
    snprintf(path, sizeof path, "%s/%s/tpgt_1", TCMU_LOOP, wwn);
    rmdir(path);
    snprintf(path, sizeof path, "%s/%s", TCMU_LOOP, wwn);
    rmdir(path);
}

int tcmu_loop_disk(const char *serial, char *buf, size_t len)
{
    DIR *d = opendir("/sys/block");
    struct dirent *de;
    char path[512], target[512];
    uint8_t page[128];
    int r = -ENOENT;
    while (d && r && (de = readdir(d))) {
        if (strncmp(de->d_name, "sd", 2))
            continue;
        snprintf(path, sizeof path, "/sys/block/%s", de->d_name);
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n < 0)
            continue;
        target[n] = '\0';
        if (!strstr(target, "/tcm_loop"))
            continue;
        snprintf(path, sizeof path, "/sys/block/%s/device/vpd_pg80",
                 de->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        n = read(fd, page, sizeof page);
        close(fd);
        size_t sl = strlen(serial);
        if (n >= 4 && (size_t)n >= 4 + sl && !strncasecmp((char *)page + 4,
                                                          serial, sl) &&
            strlen(de->d_name) < len) {
            snprintf(buf, len, "%s", de->d_name);
            r = 0;
        }
    }
    if (d)
        closedir(d);
    return r;
}
