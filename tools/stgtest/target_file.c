/*
 * target_file.c - a block device or a regular file, opened with O_DIRECT
 * (unless --buffered) and driven through io_uring: one ring and one file
 * descriptor per thread.
 *
 * Unmap punches a hole in a file (FALLOC_FL_PUNCH_HOLE through the ring),
 * which the file system fills with zeros, so unmapped blocks of a file
 * must read as zeros. On a block device it is BLKDISCARD (synchronous:
 * the ring then carries a no-op to complete it in order), and the kernel
 * no longer promises what a discarded range reads as.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "stgtest.h"

struct stg_conn {
    int fd;
    bool block_device;
    uint32_t block_size;
    struct io_uring ring;
    bool ring_ready;
};

static void file_target_close(struct stg_conn *c)
{
    if (!c)
        return;
    if (c->ring_ready)
        io_uring_queue_exit(&c->ring);
    if (c->fd >= 0)
        close(c->fd);
    free(c);
}

/* A block device's discard limit, from sysfs: 0 when it cannot discard. */
static uint64_t discard_max_bytes(dev_t dev)
{
    char path[96];
    unsigned long long v = 0;
    snprintf(path, sizeof path, "/sys/dev/block/%u:%u/queue/discard_max_bytes",
             major(dev), minor(dev));
    FILE *f = fopen(path, "r");
    if (!f) {           /* a partition: the queue is its disk's */
        snprintf(path, sizeof path,
                 "/sys/dev/block/%u:%u/../queue/discard_max_bytes",
                 major(dev), minor(dev));
        f = fopen(path, "r");
    }
    if (f) {
        if (fscanf(f, "%llu", &v) != 1)
            v = 0;
        fclose(f);
    }
    return v;
}

static int describe(struct stg_conn *c, const struct stg_target_options *opt,
                    struct stg_geometry *geo, char *err, size_t len)
{
    struct stat st;
    uint64_t bytes = 0;
    int logical = 512;
    if (fstat(c->fd, &st))
        return snprintf(err, len, "%s", strerror(errno)), -1;
    c->block_device = S_ISBLK(st.st_mode);
    if (c->block_device) {
        if (ioctl(c->fd, BLKGETSIZE64, &bytes) ||
            ioctl(c->fd, BLKSSZGET, &logical))
            return snprintf(err, len, "%s", strerror(errno)), -1;
    } else if (S_ISREG(st.st_mode)) {
        bytes = (uint64_t)st.st_size;
        logical = 4096;         /* safe for O_DIRECT on any file system */
    } else {
        return snprintf(err, len, "not a block device or regular file"), -1;
    }
    uint32_t block = opt->block_size ? opt->block_size : (uint32_t)logical;
    *geo = (struct stg_geometry){
        .blocks = bytes / block,
        .block_size = block,
        .can_flush = true,
        .can_unmap = c->block_device ? discard_max_bytes(st.st_rdev) > 0
                                     : true,
        .unmap_zeroes = !c->block_device,
        .unmap_rule = c->block_device
            ? "the kernel promises nothing of discarded blocks"
            : "a punched hole reads as zeros",
    };
    c->block_size = block;
    return 0;
}

static struct stg_conn *file_target_open(const char *path,
                                         const struct stg_target_options *opt,
                                         struct stg_geometry *geo, char *err,
                                         size_t len)
{
    struct stg_conn *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, len, "out of memory");
        return NULL;
    }
    c->fd = open(path, O_RDWR | O_CLOEXEC | (opt->buffered ? 0 : O_DIRECT));
    if (c->fd < 0) {
        snprintf(err, len, "%s%s", strerror(errno), errno == EINVAL &&
                 !opt->buffered ? " (no O_DIRECT here: try --buffered)" : "");
        file_target_close(c);
        return NULL;
    }
    if (describe(c, opt, geo, err, len)) {
        file_target_close(c);
        return NULL;
    }
    int r = io_uring_queue_init(opt->queue_depth * 2, &c->ring, 0);
    if (r < 0) {
        snprintf(err, len, "io_uring: %s", strerror(-r));
        file_target_close(c);
        return NULL;
    }
    c->ring_ready = true;
    return c;
}

static int file_target_submit(struct stg_conn *c, struct stg_op *op)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&c->ring);
    if (!sqe)
        return -EBUSY;
    uint64_t offset = op->lba * c->block_size;
    unsigned bytes = op->blocks * c->block_size;
    switch (op->kind) {
    case STG_READ:
        io_uring_prep_read(sqe, c->fd, op->buf, bytes, offset);
        break;
    case STG_WRITE:
        io_uring_prep_write(sqe, c->fd, op->buf, bytes, offset);
        break;
    case STG_FLUSH:
        io_uring_prep_fsync(sqe, c->fd, IORING_FSYNC_DATASYNC);
        break;
    case STG_UNMAP:
        if (c->block_device) {
            uint64_t range[2] = { offset, bytes };
            op->target_data = ioctl(c->fd, BLKDISCARD, range) ? (uintptr_t)errno
                                                              : 0;
            io_uring_prep_nop(sqe);
        } else {
            io_uring_prep_fallocate(sqe, c->fd, FALLOC_FL_PUNCH_HOLE |
                                    FALLOC_FL_KEEP_SIZE, offset, bytes);
        }
        break;
    case STG_KINDS:
        break;
    }
    io_uring_sqe_set_data(sqe, op);
    int r = io_uring_submit(&c->ring);
    return r < 0 ? r : 0;
}

static void file_done(struct stg_conn *c, struct stg_op *op, int res)
{
    op->error = 0;
    if (res < 0)
        op->error = -res;
    else if (op->kind == STG_UNMAP && op->target_data)
        op->error = (int)op->target_data;
    else if ((op->kind == STG_READ || op->kind == STG_WRITE) &&
             (unsigned)res != op->blocks * c->block_size) {
        op->error = EIO;
        snprintf(op->detail, sizeof op->detail, "short transfer: %d of %u "
                 "bytes", res, op->blocks * c->block_size);
    }
    if (op->error && !op->detail[0])
        snprintf(op->detail, sizeof op->detail, "%s", strerror(op->error));
    stg_complete(op);
}

static int file_target_wait(struct stg_conn *c, int timeout_ms)
{
    struct io_uring_cqe *cqe;
    struct __kernel_timespec ts = { .tv_sec = timeout_ms / 1000,
                                    .tv_nsec = (timeout_ms % 1000) * 1000000L };
    int r = io_uring_wait_cqe_timeout(&c->ring, &cqe, &ts);
    if (r == -ETIME || r == -EINTR)
        return 0;
    if (r < 0)
        return r;
    while (io_uring_peek_cqe(&c->ring, &cqe) == 0) {
        struct stg_op *op = io_uring_cqe_get_data(cqe);
        int res = cqe->res;
        io_uring_cqe_seen(&c->ring, cqe);
        file_done(c, op, res);
    }
    return 0;
}

const struct stg_target stg_file_target = {
    .name = "file",
    .open = file_target_open,
    .submit = file_target_submit,
    .wait = file_target_wait,
    .close = file_target_close,
};
