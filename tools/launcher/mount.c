/* mount.c - spdctl mount, eject and doctor: a disk image as a mounted
 * file system through the launcher, FUSE and the loop device. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "blockdev.h"
#include "spdctl.h"

#define MEDIA_DIR "/media/spd"

struct mount_opts {
    const char *image, *via, *mountpoint, *class;
    bool read_only, no_mount;
};

/* The instance name of an image: its file name, made a valid name, and a
 * hash of its whole path, so that two images of one name differ. */
static void image_name(const char *path, char *out, size_t size)
{
    uint32_t h = 2166136261u;
    for (const char *p = path; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    const char *base = strrchr(path, '/') + 1;
    char clean[41];
    size_t n = 0;
    for (; base[n] && n < sizeof clean - 1; n++)
        clean[n] = strchr("._-+", base[n]) ||
                   (base[n] >= 'a' && base[n] <= 'z') ||
                   (base[n] >= 'A' && base[n] <= 'Z') ||
                   (base[n] >= '0' && base[n] <= '9') ? base[n] : '_';
    clean[n] = '\0';
    if (clean[0] == '.' || clean[0] == '-')
        clean[0] = '_';
    snprintf(out, size, "%s-%08x", clean, (unsigned)h);
}

/* Run a program (never a shell); its exit status, or -1. */
static int run(char *const argv[])
{
    pid_t pid = fork();
    if (pid == 0) {
        execv(argv[0], argv);
        fprintf(stderr, "spdctl: cannot run %s: %s\n", argv[0],
                strerror(errno));
        _exit(127);
    }
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) < 0)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A free loop device over file, partitions scanned: its name. */
static int loop_attach(const char *file, bool ro, char *name, size_t size)
{
    int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    int backing = open(file, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    int r = -1;
    for (int tries = 0; ctl >= 0 && backing >= 0 && r && tries < 20;
         tries++) {
        int n = ioctl(ctl, LOOP_CTL_GET_FREE);
        char path[64];
        snprintf(path, sizeof path, "/dev/loop%d", n);
        int fd = n < 0 ? -1 : open(path, O_RDWR | O_CLOEXEC);
        struct loop_config cfg = { .fd = (uint32_t)backing };
        cfg.info.lo_flags = LO_FLAGS_PARTSCAN | (ro ? LO_FLAGS_READ_ONLY : 0);
        snprintf((char *)cfg.info.lo_file_name, LO_NAME_SIZE, "%.63s", file);
        if (fd >= 0 && !ioctl(fd, LOOP_CONFIGURE, &cfg)) {
            snprintf(name, size, "loop%d", n);
            r = 0;
        } else if (fd < 0 || errno != EBUSY) {
            tries = 20;   /* not a race with another attach: give up */
        }
        if (fd >= 0)
            close(fd);
    }
    int err = errno;
    if (ctl >= 0)
        close(ctl);
    if (backing >= 0)
        close(backing);
    errno = err;
    return r;
}

static uint64_t le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    while (bytes--)
        v = v << 8 | p[bytes];
    return v;
}

/* The first entry of a GPT whose header is at LBA 1. */
static int gpt_first(int fd, uint64_t disk, uint64_t *off, uint64_t *len)
{
    uint8_t h[512], e[128];
    if (pread(fd, h, 512, 512) != 512 || memcmp(h, "EFI PART", 8) ||
        le(h + 84, 4) < 128 ||
        pread(fd, e, 128, (off_t)(le(h + 72, 8) * 512)) != 128)
        return -1;
    uint64_t first = le(e + 32, 8), last = le(e + 40, 8);
    static const uint8_t unused[16];
    if (!memcmp(e, unused, 16) || !first || last < first ||
        (last + 1) * 512 > disk)
        return -1;
    *off = first * 512;
    *len = (last - first + 1) * 512;
    return 0;
}

/* The first partition of an MBR or a GPT (512-byte sectors, as the loop
 * device has them): its offset and length in bytes; -1 when the disk has
 * no partition table. */
static int first_partition(int fd, uint64_t disk, uint64_t *off,
                           uint64_t *len)
{
    uint8_t s[512];
    if (pread(fd, s, 512, 0) != 512 || s[510] != 0x55 || s[511] != 0xaa)
        return -1;
    const uint8_t *e = s + 446;
    for (int k = 0; k < 4; k++)
        if (e[16 * k] & 0x7f)   /* boot flags are 0 or 80h: not a table */
            return -1;
    if (e[4] == 0xee)
        return gpt_first(fd, disk, off, len);
    uint64_t start = le(e + 8, 4), count = le(e + 12, 4);
    if (!e[4] || !start || !count || (start + count) * 512 > disk)
        return -1;
    *off = start * 512;
    *len = count * 512;
    return 0;
}

/* Where the kernel does not scan a loop device's partitions, the loop
 * device itself is narrowed to the first one. */
static void narrow_to_partition(const char *disk)
{
    char path[128];
    snprintf(path, sizeof path, "/dev/%s", disk);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct loop_info64 info;
    uint64_t size, off, len;
    if (fd >= 0 && !ioctl(fd, BLKGETSIZE64, &size) &&
        !first_partition(fd, size, &off, &len) &&
        !ioctl(fd, LOOP_GET_STATUS64, &info)) {
        info.lo_offset = off;
        info.lo_sizelimit = len;
        if (ioctl(fd, LOOP_SET_STATUS64, &info))
            fprintf(stderr, "spdctl: /dev/%s: cannot narrow it to its first "
                    "partition: %s\n", disk, strerror(errno));
    }
    if (fd >= 0)
        close(fd);
}

/* The first partition when there is one, else the disk itself. */
static void what_to_mount(const char *disk, char *dev, size_t size)
{
    struct bdev_list parts;
    bdev_with_parts(disk, &parts);
    if (parts.n == 1 && !strncmp(disk, "loop", 4))
        narrow_to_partition(disk);
    snprintf(dev, size, "/dev/%s", parts.n > 1 ? parts.name[1] : disk);
    for (int i = 0; i < 500 && access(dev, F_OK); i++)
        nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
}

static int stop_instance(const struct ctl *ctl, const char *class,
                         const char *name)
{
    char *w[] = { "stop", (char *)class, (char *)name };
    struct sbuf body = { 0 };
    int r = ctl_request(ctl, w, 3, &body);
    sb_free(&body);
    return r;
}

static int mount_options(struct mount_opts *o, int argc, char **argv)
{
    for (int k = 1; k < argc; k++) {
        const char *a = argv[k];
        if (!strcmp(a, "--read-only") || !strcmp(a, "-r"))
            o->read_only = true;
        else if (!strcmp(a, "--no-mount"))
            o->no_mount = true;
        else if (!strcmp(a, "--via") && k + 1 < argc)
            o->via = argv[++k];
        else if (!strcmp(a, "--mountpoint") && k + 1 < argc)
            o->mountpoint = argv[++k];
        else if (!strcmp(a, "--class") && k + 1 < argc)
            o->class = argv[++k];
        else if (a[0] != '-' && !o->image)
            o->image = a;
        else {
            fprintf(stderr, "spdctl mount: unexpected '%s'\n", a);
            return -1;
        }
    }
    if (!o->image) {
        fprintf(stderr, "spdctl mount: which image?\n");
        return -1;
    }
    /* ublk where the kernel has it, otherwise FUSE and loop. */
    if (!o->via)
        o->via = access("/dev/ublk-control", F_OK) ? "fuse" : "ublk";
    bool ublk = !strcmp(o->via, "ublk");
    if (!ublk && strcmp(o->via, "fuse")) {
        fprintf(stderr, "spdctl mount: --via %s is not supported yet: "
                "--via ublk or --via fuse (FUSE and the loop device)\n",
                o->via);
        return -1;
    }
    if (!o->class)
        o->class = ublk ? (o->read_only ? "mount-ublk-ro" : "mount-ublk")
                        : (o->read_only ? "mount-ro" : "mount");
    return 0;
}

/* Mount dev at mp (made when missing); 0 or mount's failure. */
static int mount_dev(const char *dev, const char *mp, bool ro)
{
    char copy[4200];
    snprintf(copy, sizeof copy, "%s", mp);
    for (char *p = copy + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(copy, 0755);
            *p = '/';
        }
    if (mkdir(mp, 0755) && errno != EEXIST) {
        fprintf(stderr, "spdctl: %s: %s\n", mp, strerror(errno));
        return -1;
    }
    char *argv[] = { "/bin/mount", ro ? "-oro" : "-orw", (char *)dev,
                     (char *)mp, NULL };
    return run(argv) ? -1 : 0;
}

static void print_mounted(const struct ctl *ctl, const char *image,
                          const char *class, const char *name,
                          const char *dev, const char *mp)
{
    if (!ctl->json) {
        printf(mp ? "%s on %s\n" : "%s\n", dev, mp);
        return;
    }
    const char *keys[] = { "image", "class", "name", "device" };
    const char *values[] = { image, class, name, dev };
    printf("{");
    for (int k = 0; k < 4; k++) {
        ctl_json_string(keys[k]);
        printf(": ");
        ctl_json_string(values[k]);
        printf(", ");
    }
    printf("\"mountpoint\": ");
    if (mp)
        ctl_json_string(mp);
    else
        printf("null");
    printf("}\n");
}

/* An instance's disk among its exports: a FUSE file, or /dev/ublkbN. */
static int disk_export(const char *record, char *out, size_t size)
{
    for (unsigned k = 0; proto_get(record, "export", k, out, size); k++)
        if (out[0] == '/')
            return 0;
    return -1;
}

/* The kernel disk of an export: /dev/ublkbN itself; a FUSE file
 * attached to a free loop device. */
static int attach(const char *export, bool ro, char *disk, size_t size)
{
    if (!strncmp(export, "/dev/", 5)) {
        snprintf(disk, size, "%.63s", export + 5);
        return 0;
    }
    if (!loop_attach(export, ro, disk, size))
        return 0;
    fprintf(stderr, "spdctl: cannot attach %s to a loop device: %s\n",
            export, strerror(errno));
    return -1;
}

int cmd_mount(const struct ctl *ctl, int argc, char **argv)
{
    struct mount_opts o = { 0 };
    char image[4096], name[80], export[4096], disk[64], dev[128], mp[4200];
    if (mount_options(&o, argc, argv))
        return 2;
    if (!realpath(o.image, image)) {
        fprintf(stderr, "spdctl: %s: %s\n", o.image, strerror(errno));
        return 1;
    }
    image_name(image, name, sizeof name);
    char *w[] = { "start", (char *)o.class, name, image };
    struct sbuf rec = { 0 };
    if (ctl_request(ctl, w, 4, &rec))
        return 1;
    int r = 1;
    if (!rec.p || disk_export(rec.p, export, sizeof export)) {
        fprintf(stderr, "spdctl: class %s serves no FUSE file or ublk "
                "device\n", o.class);
    } else if (attach(export, o.read_only, disk, sizeof disk)) {
        ;
    } else if (o.no_mount) {
        snprintf(dev, sizeof dev, "/dev/%s", disk);
        print_mounted(ctl, image, o.class, name, dev, NULL);
        r = 0;
    } else {
        what_to_mount(disk, dev, sizeof dev);
        if (o.mountpoint)
            snprintf(mp, sizeof mp, "%s", o.mountpoint);
        else
            snprintf(mp, sizeof mp, "%s/%s", MEDIA_DIR, name);
        r = mount_dev(dev, mp, o.read_only) ? 1 : 0;
        if (r) {
            fprintf(stderr, "spdctl: %s has no file system mount could "
                    "mount; --no-mount attaches it without\n", image);
            if (export[0] == '/' && strncmp(export, "/dev/", 5))
                bdev_loop_detach(disk, 10000);
        } else {
            print_mounted(ctl, image, o.class, name, dev, mp);
        }
    }
    if (r)
        stop_instance(ctl, o.class, name);
    sb_free(&rec);
    return r;
}

/* ------------------------------------------------------------------ */
/* Eject                                                               */
/* ------------------------------------------------------------------ */

/* The export behind a device ("/dev/loop3p1", "/dev/ublkb0p1") or a mount
 * point: the loop device's FUSE file, or the ublk device. */
static int export_behind(const char *target, char *out, size_t size)
{
    char name[64], disk[64];
    struct stat st;
    if (!strncmp(target, "/dev/", 5))
        snprintf(name, sizeof name, "%s", target + 5);
    else if (stat(target, &st) || !S_ISDIR(st.st_mode) ||
             bdev_at_mountpoint(target, name, sizeof name))
        return -1;
    if (bdev_disk_of(name, disk, sizeof disk))
        return -1;
    if (!strncmp(disk, "loop", 4))
        return bdev_loop_file(disk, out, size);
    snprintf(out, size, "/dev/%s", disk);
    return 0;
}

/* The instance (its record) serving export, or named name. */
static int find_instance(const struct ctl *ctl, const char *export,
                         const char *name, char *rec, size_t size)
{
    char *w[] = { "list" };
    struct sbuf body = { 0 };
    char value[4096];
    size_t pos = 0;
    if (ctl_request(ctl, w, 1, &body))
        return -1;
    while (body.p && ctl_next_record(body.p, &pos, rec, size)) {
        bool by_file = export && !disk_export(rec, value, sizeof value) &&
                       !strcmp(value, export);
        bool by_name = name && proto_get(rec, "name", 0, value,
                                         sizeof value) &&
                       !strcmp(value, name);
        if (by_file || by_name) {
            sb_free(&body);
            return 0;
        }
    }
    sb_free(&body);
    return -1;
}

/* Unmount the disk of an export, and detach every loop device over it. */
static int take_down(const char *export)
{
    struct bdev_list loops;
    if (!strncmp(export, "/dev/", 5))
        return bdev_unmount_all(export + 5, false);
    bdev_loops_of(export, &loops);
    for (int k = 0; k < loops.n; k++) {
        if (bdev_unmount_all(loops.name[k], false))
            return -1;
        if (bdev_loop_detach(loops.name[k], 10000)) {
            fprintf(stderr, "spdctl: cannot detach /dev/%s: %s\n",
                    loops.name[k], strerror(errno));
            return -1;
        }
    }
    return 0;
}

int cmd_eject(const struct ctl *ctl, int argc, char **argv)
{
    char export[4200] = "", real[4096], name[80] = "", rec[16384];
    char class[80], mp[4200];
    if (argc != 2) {
        fprintf(stderr, "usage: spdctl eject IMAGE|DEVICE|MOUNTPOINT\n");
        return 2;
    }
    if (export_behind(argv[1], export, sizeof export) &&
        realpath(argv[1], real))
        image_name(real, name, sizeof name);
    if (find_instance(ctl, export[0] ? export : NULL,
                      name[0] ? name : NULL, rec, sizeof rec)) {
        fprintf(stderr, "spdctl: %s is not a disk spdctl mounted\n",
                argv[1]);
        return 1;
    }
    proto_get(rec, "class", 0, class, sizeof class);
    proto_get(rec, "name", 0, name, sizeof name);
    if (!disk_export(rec, export, sizeof export) && take_down(export))
        return 1;
    snprintf(mp, sizeof mp, "%s/%s", MEDIA_DIR, name);
    rmdir(mp);   /* the mount point mount made, when it is empty */
    if (stop_instance(ctl, class, name))
        return 1;
    if (!ctl->json)
        printf("ejected %s\n", argv[1]);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Doctor                                                              */
/* ------------------------------------------------------------------ */

static bool have_program(const char *name)
{
    const char *dirs[] = { "/usr/local/sbin", "/usr/local/bin", "/usr/sbin",
                           "/usr/bin", "/sbin", "/bin" };
    char path[256];
    for (size_t k = 0; k < sizeof dirs / sizeof dirs[0]; k++) {
        snprintf(path, sizeof path, "%s/%s", dirs[k], name);
        if (!access(path, X_OK))
            return true;
    }
    return false;
}

static bool exists(const char *path)
{
    return access(path, F_OK) == 0;
}

struct path_check {
    const char *name;
    bool ok;
    const char *what, *fix;
};

int cmd_doctor(const struct ctl *ctl)
{
    bool nbd_mod = exists("/sys/module/nbd") || exists("/dev/nbd0");
    bool iscsi_mod = exists("/sys/module/iscsi_tcp");
    struct path_check c[] = {
        { "ublk", exists("/dev/ublk-control"), "/dev/ublk-control",
          "modprobe ublk_drv (Linux 6.0 or later, CONFIG_BLK_DEV_UBLK)" },
        { "fuse", exists("/dev/fuse"), "/dev/fuse", "modprobe fuse" },
        { "loop", exists("/dev/loop-control"), "/dev/loop-control",
          "modprobe loop" },
        { "nbd", nbd_mod && have_program("nbd-client"),
          "the nbd module and nbd-client",
          nbd_mod ? "apt install nbd-client" : "modprobe nbd" },
        { "iscsi", iscsi_mod && have_program("iscsiadm"),
          "iscsi_tcp and iscsiadm",
          have_program("iscsiadm") ? "modprobe iscsi_tcp"
                                   : "apt install open-iscsi" },
    };
    int n = (int)(sizeof c / sizeof c[0]);
    for (int k = 0; k < n; k++) {
        if (ctl->json) {
            printf(k ? ", " : "{");
            ctl_json_string(c[k].name);
            printf(": {\"available\": %s, \"fix\": ",
                   c[k].ok ? "true" : "false");
            ctl_json_string(c[k].ok ? "" : c[k].fix);
            printf("}%s", k == n - 1 ? "}\n" : "");
        } else {
            printf("%-6s %-8s %s%s%s\n", c[k].name, c[k].ok ? "yes" : "missing",
                   c[k].what, c[k].ok ? "" : ": ", c[k].ok ? "" : c[k].fix);
        }
    }
    if (!ctl->json)
        printf("spdctl mount uses %s\n", c[1].ok && c[2].ok
               ? "FUSE and the loop device" : "nothing: it needs fuse and loop");
    return c[1].ok && c[2].ok ? 0 : 1;
}
