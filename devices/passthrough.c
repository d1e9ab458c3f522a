/*
 * spd-passthrough - a disk that forwards every request to another block
 * device or file through io_uring: the Linux counterpart of WinSpd's
 * passthrough.
 *
 * It shows the asynchronous side of the device API: read, write, flush
 * and unmap put their work on a ring and return SPD_PENDING at once; one
 * completion thread reaps the ring and ends each io with
 * spd_io_complete(). No call blocks, so the requests run on the exports'
 * own threads and as many are in flight as the clients send.
 *
 * What the client asks for reaches the store as it asked: FUA as a
 * RWF_DSYNC write, SYNCHRONIZE CACHE as fdatasync, UNMAP as a hole punched
 * in a file, or on a block device as write zeroes with unmap (reads zero
 * after) where the device has it, else as a discard; write zeroes with
 * unmap allowed become the same punch (libspd zeroes by unmap where
 * unmapped blocks read as zeros). The unit takes the store's logical
 * block size.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <liburing.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "spd/cli.h"

#define NAME       "spd-passthrough"
#define RING_DEPTH 256

enum unmap_kind { UNMAP_NONE, UNMAP_PUNCH, UNMAP_DISCARD };

struct passthrough {
    const char *path;             /* --file */
    int fd;
    bool block_device;
    uint32_t block_length;
    int logical, physical;        /* the store's sector sizes */
    enum unmap_kind unmap;
    struct io_uring ring;
    bool ring_up;
    pthread_mutex_t sq_lock;      /* submitters share the ring's SQ */
    pthread_t reaper;
};

/* One io in flight: a read or write resubmitted until whole (a file may
 * answer short), or pending ring operations of one unmap or flush. Only
 * the completion thread touches it once it is submitted. */
struct ptio {
    spd_io *io;
    int op;                       /* IORING_OP_*: READ, WRITE, FALLOCATE, FSYNC */
    char *buf;
    size_t len, done;
    off_t off;
    int rw_flags;                 /* RWF_DSYNC for FUA */
    unsigned pending;             /* ring operations not yet complete */
    int result;                   /* the first failure */
};

/* ---- the ring ------------------------------------------------------ */

/* Queue one operation of p; len and off are the piece still to do. */
static void queue_op(struct passthrough *pt, struct ptio *p, size_t len,
                     off_t off)
{
    pthread_mutex_lock(&pt->sq_lock);
    struct io_uring_sqe *sqe;
    while (!(sqe = io_uring_get_sqe(&pt->ring)))
        io_uring_submit(&pt->ring);               /* the SQ is full */
    switch (p->op) {
    case IORING_OP_READ:
    case IORING_OP_WRITE:
        io_uring_prep_rw(p->op, sqe, pt->fd, p->buf + p->done,
                         (unsigned)len, (uint64_t)off);
        sqe->rw_flags = p->rw_flags;
        break;
    case IORING_OP_FALLOCATE:
        io_uring_prep_fallocate(sqe, pt->fd, FALLOC_FL_PUNCH_HOLE |
                                FALLOC_FL_KEEP_SIZE, off, (off_t)len);
        break;
    default:
        io_uring_prep_fsync(sqe, pt->fd, IORING_FSYNC_DATASYNC);
    }
    io_uring_sqe_set_data(sqe, p);
    io_uring_submit(&pt->ring);
    pthread_mutex_unlock(&pt->sq_lock);
}

static int start_rw(struct passthrough *pt, spd_io *io, int op, void *buf,
                    uint64_t lba, uint32_t blocks, bool fua)
{
    struct ptio *p = malloc(sizeof *p);
    if (!p)
        return -ENOMEM;
    *p = (struct ptio){ .io = io, .op = op, .buf = buf, .pending = 1,
                        .len = (size_t)blocks * pt->block_length,
                        .off = (off_t)(lba * pt->block_length),
                        .rw_flags = fua ? RWF_DSYNC : 0 };
    queue_op(pt, p, p->len, p->off);
    return SPD_PENDING;
}

/* A completion: a short transfer goes on with the rest; the last
 * operation of an io completes it. */
static void reap_one(struct passthrough *pt, struct ptio *p, int res)
{
    bool rw = p->op == IORING_OP_READ || p->op == IORING_OP_WRITE;
    if (rw && (res > 0 || res == -EAGAIN || res == -EINTR)) {
        p->done += res > 0 ? (size_t)res : 0;
        if (p->done < p->len) {
            queue_op(pt, p, p->len - p->done, p->off + (off_t)p->done);
            return;
        }
        res = 0;
    } else if (rw && res == 0 && p->len) {
        res = -EIO;                               /* the store shrank */
    }
    if (res < 0 && !p->result)
        p->result = res;
    if (--p->pending)
        return;
    spd_io_complete(p->io, p->result ? p->result : SPD_OK);
    free(p);
}

/* The completion thread; a completion without an io (a NOP) ends it. */
static void *reaper(void *arg)
{
    struct passthrough *pt = arg;
    for (;;) {
        struct io_uring_cqe *cqe;
        int r = io_uring_wait_cqe(&pt->ring, &cqe);
        if (r == -EINTR)
            continue;
        if (r < 0)
            abort();                  /* the ring is gone: nothing can end */
        struct ptio *p = io_uring_cqe_get_data(cqe);
        int res = cqe->res;
        io_uring_cqe_seen(&pt->ring, cqe);
        if (!p)
            return NULL;
        reap_one(pt, p, res);
    }
}

/* ---- the operations -------------------------------------------------- */

static int pt_read(void *ctx, spd_io *io, void *buf, uint64_t lba,
                   uint32_t blocks, bool fua)
{
    return start_rw(ctx, io, IORING_OP_READ, buf, lba, blocks, false);
}

static int pt_write(void *ctx, spd_io *io, const void *buf, uint64_t lba,
                    uint32_t blocks, bool fua)
{
    return start_rw(ctx, io, IORING_OP_WRITE, (void *)buf, lba, blocks, fua);
}

static int pt_flush(void *ctx, spd_io *io, uint64_t lba, uint32_t blocks)
{
    struct passthrough *pt = ctx;
    struct ptio *p = malloc(sizeof *p);
    if (!p)
        return -ENOMEM;
    *p = (struct ptio){ .io = io, .op = IORING_OP_FSYNC, .pending = 1 };
    queue_op(pt, p, 0, 0);
    return SPD_PENDING;
}

/* Punches go on the ring, one per range; a discard is an ioctl, which
 * io_uring of this liburing cannot carry, so it is done here. */
static int pt_unmap(void *ctx, spd_io *io, const spd_unmap_desc *descs,
                    uint32_t count)
{
    struct passthrough *pt = ctx;
    uint64_t bl = pt->block_length;
    if (pt->unmap == UNMAP_DISCARD) {
        for (uint32_t i = 0; i < count; i++) {
            uint64_t range[2] = { descs[i].lba * bl, descs[i].blocks * bl };
            if (ioctl(pt->fd, BLKDISCARD, range))
                return -errno;
        }
        return SPD_OK;
    }
    unsigned ranges = 0;
    for (uint32_t i = 0; i < count; i++)
        ranges += descs[i].blocks != 0;          /* a punch of 0 is EINVAL */
    struct ptio *p = ranges ? malloc(sizeof *p) : NULL;
    if (!p)
        return ranges ? -ENOMEM : SPD_OK;
    /* pending counts every range before the first can complete */
    *p = (struct ptio){ .io = io, .op = IORING_OP_FALLOCATE, .pending = ranges };
    for (uint32_t i = 0; i < count; i++)
        if (descs[i].blocks)
            queue_op(pt, p, descs[i].blocks * bl, (off_t)(descs[i].lba * bl));
    return SPD_PENDING;
}

static const spd_ops passthrough_ops = {
    SPD_OPS_INIT,
    .flags = SPD_OPS_PARALLEL | SPD_OPS_FUA,  /* the ring takes any thread */
    .read = pt_read,
    .write = pt_write,
    .flush = pt_flush,
    .unmap = pt_unmap,
};

/* ---- the store ------------------------------------------------------- */

static const spd_device_option passthrough_options[] = {
    { "file", 'f', "PATH", "the block device or file to forward to "
      "(required; it must exist, and gives the disk its size)" },
};

static int pt_take(void *ctx, unsigned i, const char *arg)
{
    struct passthrough *pt = ctx;
    if (pt->path) {
        fprintf(stderr, NAME ": --file %s: only one --file\n", arg);
        return SPD_EXIT_USAGE;
    }
    pt->path = arg;
    return 0;
}

/* A number from the device's queue in sysfs (a partition's is its
 * disk's), or 0. */
static unsigned long long queue_limit(const struct stat *st, const char *name)
{
    unsigned long long v = 0;
    for (int parent = 0; parent < 2 && !v; parent++) {
        char path[128];
        snprintf(path, sizeof path, "/sys/dev/block/%u:%u/%squeue/%s",
                 major(st->st_rdev), minor(st->st_rdev),
                 parent ? "../" : "", name);
        FILE *f = fopen(path, "r");
        if (f && fscanf(f, "%llu", &v) != 1)
            v = 0;
        if (f)
            fclose(f);
    }
    return v;
}

/* How the store unmaps: a file by punching holes (tried past the end,
 * where it changes nothing); a device by write zeroes with unmap, which
 * reads zeros after, or by discard, which may not. */
static enum unmap_kind unmap_probe(struct passthrough *pt,
                                   const struct stat *st, uint64_t bytes)
{
    if (!pt->block_device)
        return fallocate(pt->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                         (off_t)bytes, pt->block_length) ? UNMAP_NONE
                                                         : UNMAP_PUNCH;
    if (queue_limit(st, "write_zeroes_max_bytes"))
        return UNMAP_PUNCH;
    return queue_limit(st, "discard_max_bytes") ? UNMAP_DISCARD : UNMAP_NONE;
}

/* Size and sector sizes of the store. */
static int store_geometry(struct passthrough *pt, const struct stat *st,
                          uint64_t *bytes)
{
    *bytes = (uint64_t)st->st_size;
    pt->logical = pt->physical = 512;
    if (!pt->block_device)
        return 0;
    return ioctl(pt->fd, BLKGETSIZE64, bytes) ||
           ioctl(pt->fd, BLKSSZGET, &pt->logical) ||
           ioctl(pt->fd, BLKPBSZGET, &pt->physical) ? -1 : 0;
}

static int store_open(struct passthrough *pt, spd_params *p, unsigned given)
{
    struct stat st = { 0 };
    if (!stat(pt->path, &st) && !S_ISBLK(st.st_mode) && !S_ISREG(st.st_mode)) {
        fprintf(stderr, NAME ": %s is neither a file nor a block device\n",
                pt->path);
        return SPD_EXIT_USAGE;
    }
    /* O_EXCL on a block device: never one that is mounted. */
    int flags = (p->write_protected ? O_RDONLY : O_RDWR) | O_CLOEXEC |
                (S_ISBLK(st.st_mode) ? O_EXCL : 0);
    if ((pt->fd = open(pt->path, flags)) < 0 || fstat(pt->fd, &st)) {
        fprintf(stderr, NAME ": %s: %s\n", pt->path, strerror(errno));
        return SPD_EXIT_FAILURE;
    }
    pt->block_device = S_ISBLK(st.st_mode);
    if (!pt->block_device && flock(pt->fd, (p->write_protected ? LOCK_SH
                                           : LOCK_EX) | LOCK_NB)) {
        fprintf(stderr, NAME ": %s is in use by another process\n", pt->path);
        return SPD_EXIT_FAILURE;
    }
    uint64_t bytes, asked = p->block_count * p->block_length;
    if (store_geometry(pt, &st, &bytes)) {
        fprintf(stderr, NAME ": %s: %s\n", pt->path, strerror(errno));
        return SPD_EXIT_FAILURE;
    }
    if (!(given & SPD_GIVEN_BLOCK_LENGTH))
        p->block_length = (uint32_t)pt->logical;
    const char *wrong = (given & SPD_GIVEN_SIZE) && asked != bytes
                            ? "not the size given"
                      : p->block_length < (uint32_t)pt->logical
                            ? "blocks cannot be smaller than its sectors"
                      : !bytes || bytes % p->block_length
                            ? "not a whole number of blocks" : NULL;
    if (wrong) {
        fprintf(stderr, NAME ": %s holds %llu bytes of %d-byte sectors: %s\n",
                pt->path, (unsigned long long)bytes, pt->logical, wrong);
        return SPD_EXIT_USAGE;
    }
    pt->block_length = p->block_length;
    p->block_count = bytes / p->block_length;
    if (!p->physical_block_length && (uint32_t)pt->physical > p->block_length)
        p->physical_block_length = (uint32_t)pt->physical;
    pt->unmap = p->unmap_supported ? unmap_probe(pt, &st, bytes) : UNMAP_NONE;
    p->unmap_supported = pt->unmap != UNMAP_NONE;
    p->unmap_reads_zero = pt->unmap == UNMAP_PUNCH;
    return 0;
}

static void pt_close(void *ctx, bool served)
{
    struct passthrough *pt = ctx;
    if (pt->ring_up) {                        /* a NOP ends the reaper */
        pthread_mutex_lock(&pt->sq_lock);
        struct io_uring_sqe *sqe;
        while (!(sqe = io_uring_get_sqe(&pt->ring)))
            io_uring_submit(&pt->ring);
        io_uring_prep_nop(sqe);
        io_uring_sqe_set_data(sqe, NULL);
        io_uring_submit(&pt->ring);
        pthread_mutex_unlock(&pt->sq_lock);
        pthread_join(pt->reaper, NULL);
        io_uring_queue_exit(&pt->ring);
        pt->ring_up = false;
    }
    if (pt->fd >= 0)
        close(pt->fd);
    pt->fd = -1;
}

static int pt_open(void *ctx, spd_params *params, unsigned given)
{
    struct passthrough *pt = ctx;
    if (!pt->path) {
        fprintf(stderr, NAME ": --file PATH is required\n");
        return SPD_EXIT_USAGE;
    }
    int status = store_open(pt, params, given), r = 0;
    if (!status && (r = io_uring_queue_init(RING_DEPTH, &pt->ring, 0)) < 0) {
        fprintf(stderr, NAME ": io_uring: %s\n", strerror(-r));
        status = SPD_EXIT_FAILURE;
    }
    if (!status && (r = pthread_create(&pt->reaper, NULL, reaper, pt))) {
        io_uring_queue_exit(&pt->ring);
        fprintf(stderr, NAME ": thread: %s\n", strerror(r));
        status = SPD_EXIT_FAILURE;
    }
    pt->ring_up = !status;
    if (status)
        pt_close(pt, false);
    return status;
}

static void pt_report(void *ctx, FILE *out)
{
    static const char *const how[] = {
        [UNMAP_NONE] = "none", [UNMAP_PUNCH] = "punch hole (reads zeros)",
        [UNMAP_DISCARD] = "discard" };
    struct passthrough *pt = ctx;
    fprintf(out, "store: %s, %s; sectors: %d logical, %d physical; unmap: %s\n",
            pt->path, pt->block_device ? "block device" : "file", pt->logical,
            pt->physical, how[pt->unmap]);
}

int main(int argc, char **argv)
{
    static struct passthrough pt = { .fd = -1,
                                     .sq_lock = PTHREAD_MUTEX_INITIALIZER };
    const spd_device device = {
        SPD_DEVICE_INIT,
        .name = NAME,
        .summary = "Serve a block device or file, forwarding through io_uring.",
        .ops = &passthrough_ops,
        .ctx = &pt,
        .size_help = "the store's own",
        .default_threads = 0,       /* nothing blocks: the exports' threads */
        .options = passthrough_options,
        .option_count = 1,
        .take = pt_take,
        .open = pt_open,
        .report = pt_report,
        .close = pt_close,
    };
    return spd_main(argc, argv, &device);
}
