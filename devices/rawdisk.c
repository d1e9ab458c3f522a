/*
 * spd-rawdisk - a disk backed by a file or a block device: each block is
 * the same bytes of the backing store, so the disk and its data survive
 * the process (an image made here is a raw image any tool reads).
 *
 * It shows what a device on real storage must get right: reads and writes
 * that loop over short transfers and EINTR, FUA and flush that reach
 * stable media (pwritev2 RWF_DSYNC, fdatasync), unmap by punching holes
 * where the storage can, errors passed back as -errno for libspd to turn
 * into sense, and a UUID kept with the backing store so that the disk
 * keeps its serial number across restarts.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/fs.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "spd/cli.h"
#include "spd/partition.h"

#define NAME       "spd-rawdisk"
#define UUID_XATTR "user.spd.uuid"

struct rawdisk {
    const char *path;             /* --file */
    const char *partition;        /* --partition mbr|gpt, or NULL */
    int fd;
    bool block_device;
    bool created;                 /* this run made the file */
    bool sized;                   /* this run sized an empty file */
    bool uuid_stored;             /* this run wrote user.spd.uuid */
    unsigned given;               /* SPD_GIVEN_*: what the command line set */
    uint32_t block_length;
    atomic_bool dsync_writes;     /* pwritev2(RWF_DSYNC) works on this fd */
};

static int rawdisk_read(void *ctx, spd_io *io, void *buf, uint64_t lba,
                        uint32_t blocks, bool fua)
{
    struct rawdisk *rd = ctx;
    size_t len = (size_t)blocks * rd->block_length;
    off_t off = (off_t)(lba * rd->block_length);
    for (size_t done = 0; done < len;) {
        ssize_t n = pread(rd->fd, (char *)buf + done, len - done,
                          off + (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)       /* 0: the file shrank under us */
            return n < 0 ? -errno : -EIO;
        done += (size_t)n;
    }
    return SPD_OK;
}

/* One write call; with dsync the data is stable when it returns. */
static ssize_t write_some(struct rawdisk *rd, const char *buf, size_t len,
                          off_t off, bool dsync)
{
    if (!dsync)
        return pwrite(rd->fd, buf, len, off);
    struct iovec iov = { (void *)buf, len };
    return pwritev2(rd->fd, &iov, 1, off, RWF_DSYNC);
}

static int rawdisk_write(void *ctx, spd_io *io, const void *buf, uint64_t lba,
                         uint32_t blocks, bool fua)
{
    struct rawdisk *rd = ctx;
    size_t len = (size_t)blocks * rd->block_length;
    off_t off = (off_t)(lba * rd->block_length);
    bool dsync = fua && atomic_load(&rd->dsync_writes);
    for (size_t done = 0; done < len;) {
        ssize_t n = write_some(rd, (const char *)buf + done, len - done,
                               off + (off_t)done, dsync);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && dsync &&
            (errno == EOPNOTSUPP || errno == EINVAL || errno == ENOSYS)) {
            atomic_store(&rd->dsync_writes, false);  /* old kernel: fdatasync */
            dsync = false;
            continue;
        }
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        done += (size_t)n;
    }
    if (fua && !dsync && fdatasync(rd->fd))
        return -errno;
    return SPD_OK;
}

static int rawdisk_flush(void *ctx, spd_io *io, uint64_t lba, uint32_t blocks)
{
    struct rawdisk *rd = ctx;
    return fdatasync(rd->fd) ? -errno : SPD_OK;
}

static int rawdisk_unmap(void *ctx, spd_io *io, const spd_unmap_desc *descs,
                         uint32_t count)
{
    struct rawdisk *rd = ctx;
    for (uint32_t i = 0; i < count; i++) {
        uint64_t range[2] = { descs[i].lba * rd->block_length,
                              (uint64_t)descs[i].blocks * rd->block_length };
        int r = rd->block_device
            ? ioctl(rd->fd, BLKDISCARD, range)
            : fallocate(rd->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                        (off_t)range[0], (off_t)range[1]);
        if (r)
            return -errno;
    }
    return SPD_OK;
}

/* Holes, as the file system keeps them (SEEK_DATA/SEEK_HOLE); a block
 * device, or a file system that cannot tell, is all data. */
static int64_t rawdisk_extent(void *ctx, uint64_t lba, uint32_t blocks,
                              bool *mapped)
{
    struct rawdisk *rd = ctx;
    off_t start = (off_t)(lba * rd->block_length);
    off_t end = start + (off_t)blocks * rd->block_length;
    off_t data = rd->block_device ? start : lseek(rd->fd, start, SEEK_DATA);
    if (data < 0 && errno != ENXIO)
        data = start;                     /* unknown: call it data */
    *mapped = data == start;
    off_t next = data < 0 ? end            /* ENXIO: a hole to the end */
               : *mapped ? lseek(rd->fd, start, SEEK_HOLE) : data;
    if (next < 0 || next > end || rd->block_device)
        next = end;
    /* A block with any data in it is data: data runs round up, holes
     * round down, and a hole shorter than a block is no hole. */
    int64_t bl = rd->block_length;
    int64_t run = *mapped ? (next - start + bl - 1) / bl : (next - start) / bl;
    if (!run) {
        *mapped = true;
        run = 1;
    }
    return run;
}

static const spd_ops rawdisk_ops = {
    SPD_OPS_INIT,
    .flags = SPD_OPS_PARALLEL | SPD_OPS_FUA,  /* no lock; fua by RWF_DSYNC */
    .read = rawdisk_read,
    .write = rawdisk_write,
    .flush = rawdisk_flush,
    .unmap = rawdisk_unmap,
    .extent = rawdisk_extent,
};

/* ---- the command line ------------------------------------------- */

static const spd_device_option rawdisk_options[] = {
    { "file", 'f', "PATH", "the backing file or block device (required); "
      "a new file is created sparse, of --size" },
    { "partition", 'p', "mbr|gpt", "on a newly created file, write a "
      "partition table with one partition spanning the disk (default: none)" },
};

/* spd_main() hands each of the options above here, by index. */
static int rawdisk_take(void *ctx, unsigned i, const char *arg)
{
    struct rawdisk *rd = ctx;
    const char *option = i == 0 ? "--file" : "--partition";
    if (i == 0 ? rd->path != NULL : rd->partition != NULL) {
        fprintf(stderr, NAME ": %s %s: only one %s\n", option, arg, option);
        return SPD_EXIT_USAGE;
    }
    if (i == 0) {
        rd->path = arg;
    } else if (!strcmp(arg, "mbr") || !strcmp(arg, "gpt")) {
        rd->partition = arg;
    } else {
        fprintf(stderr, NAME ": --partition %s: not mbr or gpt\n", arg);
        return SPD_EXIT_USAGE;
    }
    return 0;
}

/* ---- the backing store ------------------------------------------ */

/* Unmap where it works: hole punching on the file's filesystem (tried
 * beyond the end, where it changes nothing), discard on the device. */
static bool unmap_probe(struct rawdisk *rd, const struct stat *st,
                        uint64_t bytes)
{
    if (!rd->block_device)
        return fallocate(rd->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                         (off_t)bytes, rd->block_length) == 0;
    unsigned long long max = 0;
    char path[96];
    for (int parent = 0; parent < 2 && !max; parent++) {  /* a partition's */
        snprintf(path, sizeof path, "/sys/dev/block/%u:%u/%squeue/"
                 "discard_max_bytes", major(st->st_rdev), minor(st->st_rdev),
                 parent ? "../" : "");
        FILE *f = fopen(path, "r");
        if (f && fscanf(f, "%llu", &max) != 1)
            max = 0;
        if (f)
            fclose(f);
    }
    return max > 0;
}

/* Size in bytes of what fd holds; for a device also its sector size. */
static int store_size(struct rawdisk *rd, const struct stat *st,
                      uint64_t *bytes, uint32_t *sector)
{
    int ssz = 512;
    *bytes = (uint64_t)st->st_size;
    if (rd->block_device && (ioctl(rd->fd, BLKGETSIZE64, bytes) ||
                             ioctl(rd->fd, BLKSSZGET, &ssz)))
        return -1;
    *sector = (uint32_t)ssz;
    return 0;
}

/* The unit's geometry from an existing store: its own size, which a size
 * on the command line must match. */
static int geometry_from_store(struct rawdisk *rd, spd_params *p,
                               const struct stat *st)
{
    uint64_t given = p->block_count * p->block_length;   /* 0: none */
    uint64_t bytes;
    uint32_t sector;
    if (store_size(rd, st, &bytes, &sector)) {
        fprintf(stderr, NAME ": %s: %s\n", rd->path, strerror(errno));
        return SPD_EXIT_FAILURE;
    }
    if (rd->block_device && !(rd->given & SPD_GIVEN_BLOCK_LENGTH))
        p->block_length = sector;
    if ((given && given != bytes) || bytes % p->block_length || !bytes) {
        char have[64];
        spd_format_size(bytes, have, 32);
        if (bytes >= 1024)
            snprintf(have + strlen(have), 32, " (%llu bytes)",
                     (unsigned long long)bytes);
        fprintf(stderr, NAME ": %s holds %s: %s\n", rd->path, have,
                given ? "not the size given" : bytes ? "not a whole number "
                "of blocks" : "no room for a disk");
        return SPD_EXIT_USAGE;
    }
    p->block_count = bytes / p->block_length;
    return 0;
}

/* A new (or empty) file of the size asked for: sparse, reading zeros. */
static int size_new_file(struct rawdisk *rd, const spd_params *p)
{
    if (!(rd->given & SPD_GIVEN_SIZE)) {
        fprintf(stderr, NAME ": %s %s; give --size to create the disk\n",
                rd->path, rd->created ? "does not exist" : "is empty");
        return SPD_EXIT_USAGE;
    }
    if (!ftruncate(rd->fd, (off_t)(p->block_count * p->block_length))) {
        rd->sized = !rd->created;
        return 0;
    }
    fprintf(stderr, NAME ": sizing %s: %s\n", rd->path, strerror(errno));
    return SPD_EXIT_FAILURE;
}

/* One process serves a store at a time. An OFD lock over all of it but
 * its last possible byte keeps a second one out (it belongs to our
 * descriptor, so nothing else the process closes drops it); a classic
 * lock on that last byte is there to be asked for the holder's pid, which
 * an OFD lock does not tell. Read-only runs share the store; a writer
 * shares it with nobody. */
#define PID_BYTE ((off_t)INT64_MAX - 1)

static int store_lock(struct rawdisk *rd, bool writable)
{
    short type = writable ? F_WRLCK : F_RDLCK;
    struct flock all = { .l_type = type, .l_whence = SEEK_SET,
                         .l_len = PID_BYTE };
    struct flock pid = { .l_type = type, .l_whence = SEEK_SET,
                         .l_start = PID_BYTE, .l_len = 1 };
    if (!fcntl(rd->fd, F_OFD_SETLK, &all)) {
        fcntl(rd->fd, F_SETLK, &pid);    /* only names us: may fail */
        return 0;
    }
    if (errno == ENOLCK || errno == EOPNOTSUPP || errno == EINVAL) {
        /* A file system without locks (some network ones): say so. */
        fprintf(stderr, NAME ": %s cannot be locked (%s): nothing keeps a "
                "second process from serving it\n", rd->path, strerror(errno));
        return 0;
    }
    if (errno != EAGAIN && errno != EACCES) {
        fprintf(stderr, NAME ": locking %s: %s\n", rd->path, strerror(errno));
        return SPD_EXIT_FAILURE;
    }
    pid.l_type = F_WRLCK;                /* any holder conflicts */
    if (!fcntl(rd->fd, F_GETLK, &pid) && pid.l_type != F_UNLCK &&
        pid.l_pid > 0)
        fprintf(stderr, NAME ": %s is in use by process %d; one process "
                "serves it at a time\n", rd->path, (int)pid.l_pid);
    else
        fprintf(stderr, NAME ": %s is in use by another process (locked); "
                "one process serves it at a time\n", rd->path);
    return SPD_EXIT_FAILURE;
}

static int open_store(struct rawdisk *rd, const spd_params *p,
                      const struct stat *st, bool exists)
{
    rd->block_device = exists && S_ISBLK(st->st_mode);
    if (exists && !rd->block_device && !S_ISREG(st->st_mode)) {
        fprintf(stderr, NAME ": %s is neither a file nor a block device\n",
                rd->path);
        return SPD_EXIT_USAGE;
    }
    /* O_EXCL: a new file must be ours; a device must not be mounted. */
    int flags = (p->write_protected && exists ? O_RDONLY : O_RDWR) |
                (exists ? 0 : O_CREAT) |
                (!exists || rd->block_device ? O_EXCL : 0) | O_CLOEXEC;
    if ((rd->fd = open(rd->path, flags, 0666)) >= 0) {
        rd->created = !exists;
        return store_lock(rd, (flags & O_ACCMODE) == O_RDWR);
    }
    fprintf(stderr, NAME ": %s: %s%s\n", rd->path, strerror(errno),
            errno == EACCES || errno == EROFS
                ? " (--read-only serves it read-only)" : "");
    return SPD_EXIT_FAILURE;
}

/* A mistyped device name (/dev/sdz) must not become a regular file in
 * /dev, where it would fill the memory-backed devtmpfs and hide the
 * mistake. */
static bool under_dev(const char *path)
{
    char *copy = strdup(path), *real = copy ? realpath(dirname(copy), NULL)
                                            : NULL;
    bool dev = real && (!strcmp(real, "/dev") || !strncmp(real, "/dev/", 5));
    free(real);
    free(copy);
    return dev;
}

static int backing_open(struct rawdisk *rd, spd_params *p)
{
    struct stat st = { 0 };
    int missing = stat(rd->path, &st) ? errno : 0;
    if (missing && missing != ENOENT) {
        fprintf(stderr, NAME ": %s: %s\n", rd->path, strerror(missing));
        return SPD_EXIT_FAILURE;
    }
    if (missing && under_dev(rd->path)) {
        fprintf(stderr, NAME ": %s: no such device (a backing file is never "
                "created under /dev)\n", rd->path);
        return SPD_EXIT_USAGE;
    }
    bool fresh = missing || (S_ISREG(st.st_mode) && st.st_size == 0);
    if (rd->partition && !fresh) {
        fprintf(stderr, NAME ": --partition: %s already exists; a new "
                "partition table would destroy its data\n", rd->path);
        return SPD_EXIT_USAGE;
    }
    int status = open_store(rd, p, &st, !missing);
    if (!status)
        status = fresh ? size_new_file(rd, p) : geometry_from_store(rd, p, &st);
    if (status)
        return status;
    rd->block_length = p->block_length;
    uint64_t bytes = p->block_count * rd->block_length;
    if (!p->unmap_supported || !unmap_probe(rd, &st, bytes))
        p->unmap_supported = false;
    p->unmap_reads_zero = p->unmap_supported && !rd->block_device;
    return 0;
}

/* Close the store (which drops the locks). A run that never got to serve
 * leaves no trace: a file it created is removed again, an empty file it
 * sized is empty again, without the UUID it stored. */
static void rawdisk_close(void *ctx, bool served)
{
    struct rawdisk *rd = ctx;
    if (!served && rd->fd >= 0 && rd->uuid_stored)
        fremovexattr(rd->fd, UUID_XATTR);
    if (!served && rd->fd >= 0 && (rd->sized || rd->created) &&
        ftruncate(rd->fd, 0))
        fprintf(stderr, NAME ": emptying %s again: %s\n", rd->path,
                strerror(errno));
    if (!served && rd->created)
        unlink(rd->path);
    if (rd->fd >= 0)
        close(rd->fd);
    rd->fd = -1;
    rd->created = rd->sized = rd->uuid_stored = false;
}

/* ---- the UUID kept with the store --------------------------------- */

/* FNV-1a over the canonical path, shaped as a name-based (version 5)
 * UUID: the same file always gives the same one. */
static void uuid_from_path(const char *path, const char *why, uint8_t uuid[16])
{
    char *real = realpath(path, NULL);
    uint64_t h[2] = { 0xcbf29ce484222325ull, 0x6c62272e07bb0142ull };
    for (int k = 0; k < 2; k++)
        for (const char *c = real ? real : path; *c; c++)
            h[k] = (h[k] ^ (uint8_t)*c) * 0x100000001b3ull;
    for (int i = 0; i < 16; i++)
        uuid[i] = (uint8_t)(h[i / 8] >> (8 * (i % 8)));
    uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x50);
    uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80);
    fprintf(stderr, NAME ": %s: %s; the UUID is derived from the path %s\n",
            path, why, real ? real : path);
    free(real);
}

/* The UUID in the file's user.spd.uuid, stored there on the first run.
 * 0, or -1 after printing why. */
static int uuid_keep(struct rawdisk *rd, uint8_t uuid[16])
{
    char text[64];
    ssize_t n = rd->block_device ? -1
              : fgetxattr(rd->fd, UUID_XATTR, text, sizeof text - 1);
    if (n >= 0) {
        text[n] = '\0';
        if (!spd_uuid_parse(text, uuid))
            return 0;
        fprintf(stderr, NAME ": %s: " UUID_XATTR " holds '%s', not a UUID "
                "(remove it with: setfattr -x " UUID_XATTR " %s)\n", rd->path,
                text, rd->path);
        return -1;
    }
    if (!rd->block_device && errno == ENODATA && !spd_uuid_generate(uuid)) {
        spd_uuid_format(uuid, text);
        if (!fsetxattr(rd->fd, UUID_XATTR, text, 36, XATTR_CREATE)) {
            rd->uuid_stored = true;
            return 0;
        }
    }
    char why[96];
    snprintf(why, sizeof why, rd->block_device ? "a block device keeps no "
             UUID_XATTR "%.0s" : "cannot keep " UUID_XATTR " (%s)",
             strerror(errno));
    uuid_from_path(rd->path, why, uuid);
    return 0;
}

/* ---- what spd_main() calls ---------------------------------------- */

/* The command line is read: open (or create) the store, take the geometry
 * from it, and the UUID kept with it. */
static int rawdisk_open(void *ctx, spd_params *params, unsigned given)
{
    struct rawdisk *rd = ctx;
    rd->given = given;
    if (!rd->path) {
        fprintf(stderr, NAME ": --file PATH is required\n");
        return SPD_EXIT_USAGE;
    }
    int status = backing_open(rd, params);
    if (!status && !(given & SPD_GIVEN_UUID) && uuid_keep(rd, params->uuid))
        status = SPD_EXIT_FAILURE;
    if (status)
        rawdisk_close(rd, false);
    return status;
}

/* The unit exists: a new image gets its partition table through it. */
static int rawdisk_ready(void *ctx, spd_unit *unit)
{
    struct rawdisk *rd = ctx;
    if (!rd->partition)
        return 0;
    spd_partition whole = { 0 };    /* from 1 MiB to the end */
    bool gpt = !strcmp(rd->partition, "gpt");
    if (!spd_unit_write_partition_table(unit, &whole, 1, gpt ? SPD_PARTITION_GPT
                                                             : SPD_PARTITION_MBR))
        return 0;
    fprintf(stderr, NAME ": --partition %s: %s\n", rd->partition, spd_errmsg());
    return SPD_EXIT_FAILURE;
}

int main(int argc, char **argv)
{
    static struct rawdisk rawdisk = { .fd = -1, .dsync_writes = true };
    const spd_device device = {
        SPD_DEVICE_INIT,
        .name = NAME,
        .summary = "Serve a disk backed by a file or a block device.",
        .ops = &rawdisk_ops,
        .ctx = &rawdisk,
        .size_help = "an existing file's or device's own; required for a "
                     "new file",
        .uuid_help = "kept in the file's user.spd.uuid attribute, else "
                     "derived from the path",
        .default_threads = 4,       /* pread/pwrite block: overlap them */
        .options = rawdisk_options,
        .option_count = 2,
        .take = rawdisk_take,
        .open = rawdisk_open,
        .ready = rawdisk_ready,
        .close = rawdisk_close,
    };
    return spd_main(argc, argv, &device);
}
