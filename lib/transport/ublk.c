/*
 * ublk.c - the ublk export (see spd/ublk.h): the device's life through the
 * control commands (ublk_ctrl.c), and one thread per queue serving the
 * kernel's requests.
 *
 * A queue thread owns an io_uring on /dev/ublkcN. For each tag (a slot of
 * the queue) it keeps one command in the kernel: FETCH_REQ at first, then
 * COMMIT_AND_FETCH_REQ, which returns the last request's result and waits
 * for the next. When a command completes, the request's descriptor is in
 * the queue's shared descriptor array (mmap of /dev/ublkcN); the thread
 * submits it to the unit and goes on. Completions come back on any
 * thread: they push the tag on the queue's lock-free list and, when the
 * list was empty, write the queue's eventfd, which the thread always has a
 * read posted on. The thread empties the list before each wait, so a
 * completion on the thread itself needs no wakeup.
 *
 * All io_uring commands of a queue are issued by its thread, as the kernel
 * requires (it serves a queue for one task).
 *
 * Data moves one of two ways, chosen when the device is added. Usually the
 * kernel copies between the request's pages and the tag's buffer as it
 * hands out a write and as the thread commits a read. When the unit's
 * device lends its memory (a RAM disk), the device is added with
 * UBLK_F_USER_COPY instead: a read's data goes from the device's memory
 * straight into the request with pwritev() on /dev/ublkcN, a write's from
 * the request into the device's memory with preadv(), each on the thread
 * that runs the device's call (the tag's buffer serves a device that
 * lends only one way).
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "util/errmsg.h"
#include "spd/ublk.h"
#include "transport/ublk_int.h"

#define UBLK_DEFAULT_DEPTH 64
/* Per-tag buffers: the largest request (the kernel's max_io_buf_bytes).
 * Their pages are touched only when used. */
#define UBLK_MAX_IO_BYTES  (1024 * 1024)
/* Discards and write-zeroes of up to 1 GiB at once. */
#define UBLK_MAX_DISCARD_SECTORS (1u << 21)
#define UBLK_EVENT_TAG     UINT64_MAX  /* user_data of the eventfd read */
/* How long start waits for a dead process's device to be ready for
 * recovery (the kernel notices the death within a few seconds). */
#define UBLK_RECOVERY_WAIT_S 30

struct ublk_queue;

/* One slot of a queue: its buffer and the unit request it is serving. */
struct ublk_tag {
    spd_request req;
    spd_unmap_desc desc;
    struct ublk_queue *q;
    struct ublk_tag *next;      /* on the queue's done list */
    void *buf;
    int32_t result;             /* for COMMIT: bytes, or -errno */
    uint16_t tag;
    bool live;                  /* a command of ours is in the kernel */
};

struct ublk_queue {
    spd_ublk_export *e;
    uint16_t id;
    pthread_t thread;
    bool thread_started;
    struct io_uring ring;
    bool ring_ready;
    const struct ublksrv_io_desc *descs;  /* shared with the kernel */
    size_t descs_len;
    int efd;                    /* completions' wakeup */
    uint64_t efd_value;         /* where the posted read lands */
    struct ublk_tag *tags;
    unsigned live;              /* tags with a command in the kernel */
    unsigned inflight;          /* requests handed to the unit */
    _Atomic(struct ublk_tag *) done;   /* completed, to commit */
    atomic_bool stopping;
    int setup_error;            /* 0, or -errno if the thread failed */
    /* Start waits for every thread to post its fetches. */
    pthread_mutex_t *ready_lock;
    pthread_cond_t *ready_cond;
    unsigned *ready_count;
};

struct spd_ublk_export {
    spd_ublk_options opt;
    spd_unit *unit;
    struct ublk_ctrl *ctrl;
    bool unprivileged;
    bool started;
    struct ublksrv_ctrl_dev_info info;   /* as the kernel has it */
    uint64_t features;                   /* the kernel's UBLK_F_* */
    int cdev;                            /* /dev/ublkcN */
    struct ublk_queue *queues;
    unsigned queue_count;
    pthread_mutex_t ready_lock;
    pthread_cond_t ready_cond;
    unsigned ready_count;
};

/* The queue the calling thread serves, if any. */
static _Thread_local struct ublk_queue *current_queue;

/* ------------------------------------------------------------------ */
/* Requests                                                            */
/* ------------------------------------------------------------------ */

static void tag_done(spd_request *req)
{
    struct ublk_tag *t = req->opaque;
    struct ublk_queue *q = t->q;
    if (!spd_status_good(&req->status))
        t->result = -spd_request_errno(req);
    struct ublk_tag *head = atomic_load_explicit(&q->done,
                                                 memory_order_relaxed);
    do
        t->next = head;
    while (!atomic_compare_exchange_weak_explicit(&q->done, &head, t,
                                                  memory_order_release,
                                                  memory_order_relaxed));
    /* The first on an empty list wakes the thread, unless it is that
     * thread, which empties the list before it waits. */
    if (!head && current_queue != q) {
        uint64_t one = 1;
        while (write(q->efd, &one, sizeof one) < 0 && errno == EINTR)
            ;
    }
}

/* Whether the process copies the data itself (UBLK_F_USER_COPY). */
static bool user_copy(const spd_ublk_export *e)
{
    return e->info.flags & UBLK_F_USER_COPY;
}

/* User copy: a read's data into the kernel's request, a write's out of
 * it, at offset in the request; iov is the device's lent memory, or the
 * tag's buffer. */
static int tag_copy(spd_request *req, uint64_t offset, const struct iovec *iov,
                    unsigned count)
{
    struct ublk_tag *t = req->opaque;
    size_t want = 0;
    for (unsigned i = 0; i < count; i++)
        want += iov[i].iov_len;
    off_t pos = (off_t)ublk_pos(t->q->id, t->tag, offset);
    ssize_t n = req->op == SPD_OP_READ
                    ? pwritev(t->q->e->cdev, iov, (int)count, pos)
                    : preadv(t->q->e->cdev, iov, (int)count, pos);
    /* Never commit a read with less copied: the rest of the request's
     * pages would reach the reader as they were. */
    return n < 0 ? -errno : (size_t)n == want ? 0 : -EIO;
}

/* Post a FETCH (first) or COMMIT_AND_FETCH for tag t. */
static void tag_post(struct ublk_queue *q, struct ublk_tag *t, bool commit)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);
    if (!sqe) {
        io_uring_submit(&q->ring);
        sqe = io_uring_get_sqe(&q->ring);
    }
    io_uring_prep_rw(IORING_OP_URING_CMD, sqe, q->e->cdev, NULL, 0, 0);
    sqe->cmd_op = commit ? UBLK_U_IO_COMMIT_AND_FETCH_REQ : UBLK_U_IO_FETCH_REQ;
    struct ublksrv_io_cmd *cmd = (struct ublksrv_io_cmd *)sqe->cmd;
    *cmd = (struct ublksrv_io_cmd){ .q_id = q->id, .tag = t->tag,
                                    .result = commit ? t->result : -1,
                                    .addr = user_copy(q->e) ? 0 :
                                            (uint64_t)(uintptr_t)t->buf };
    io_uring_sqe_set_data64(sqe, t->tag);
    if (!t->live) {
        t->live = true;
        q->live++;
    }
}

static void post_event_read(struct ublk_queue *q)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);
    if (!sqe) {
        io_uring_submit(&q->ring);
        sqe = io_uring_get_sqe(&q->ring);
    }
    io_uring_prep_read(sqe, q->efd, &q->efd_value, sizeof q->efd_value, 0);
    io_uring_sqe_set_data64(sqe, UBLK_EVENT_TAG);
}

/* Commit every completed request (and fetch the tag's next one). */
static void commit_done(struct ublk_queue *q)
{
    struct ublk_tag *t = atomic_exchange_explicit(&q->done, NULL,
                                                  memory_order_acquire);
    while (t) {
        struct ublk_tag *next = t->next;
        q->inflight--;
        tag_post(q, t, true);
        t = next;
    }
}

/* The kernel sent request t: hand it to the unit, or answer at once. */
static void tag_serve(struct ublk_queue *q, struct ublk_tag *t)
{
    const struct ublksrv_io_desc *iod = &q->descs[t->tag];
    const spd_params *p = spd_unit_params(q->e->unit);
    unsigned shift = (unsigned)__builtin_ctz(p->block_length) - 9;
    uint64_t lba = iod->start_sector >> shift;
    uint64_t blocks = iod->nr_sectors >> shift;
    uint32_t flags = iod->op_flags;

    t->req = (spd_request){ SPD_REQUEST_INIT, .lba = lba, .blocks = blocks,
                            .buf = t->buf, .done = tag_done, .opaque = t };
    t->result = 0;
    switch (ublksrv_get_op(iod)) {
    case UBLK_IO_OP_READ:
        t->req.op = SPD_OP_READ;
        t->req.copy = user_copy(q->e) ? tag_copy : NULL;
        t->result = (int32_t)(iod->nr_sectors << 9);
        break;
    case UBLK_IO_OP_WRITE:
        t->req.op = SPD_OP_WRITE;
        t->req.fua = flags & UBLK_IO_F_FUA;
        t->req.copy = user_copy(q->e) ? tag_copy : NULL;
        t->result = (int32_t)(iod->nr_sectors << 9);
        break;
    case UBLK_IO_OP_FLUSH:
        t->req = (spd_request){ SPD_REQUEST_INIT, .op = SPD_OP_FLUSH,
                                .done = tag_done, .opaque = t };
        break;
    case UBLK_IO_OP_DISCARD:
        t->desc = (spd_unmap_desc){ .lba = lba, .blocks = (uint32_t)blocks };
        t->req.op = SPD_OP_UNMAP;
        t->req.descs = &t->desc;
        t->req.desc_count = 1;
        break;
    case UBLK_IO_OP_WRITE_ZEROES:
        t->req.op = SPD_OP_WRITE_ZEROES;
        t->req.flags = flags & UBLK_IO_F_NOUNMAP ? 0 : SPD_REQ_MAY_UNMAP;
        break;
    default:
        t->result = -EOPNOTSUPP;
        tag_post(q, t, true);
        return;
    }
    q->inflight++;
    spd_unit_submit(q->e->unit, &t->req);
}

/* ------------------------------------------------------------------ */
/* Queue threads                                                       */
/* ------------------------------------------------------------------ */

static int queue_setup(struct ublk_queue *q)
{
    spd_ublk_export *e = q->e;
    unsigned depth = e->info.queue_depth;
    long page = sysconf(_SC_PAGESIZE);
    size_t max_len = ((size_t)SPD_UBLK_MAX_QUEUE_DEPTH *
                      sizeof(struct ublksrv_io_desc) + (size_t)page - 1) &
                     ~((size_t)page - 1);

    q->descs_len = ((size_t)depth * sizeof(struct ublksrv_io_desc) +
                    (size_t)page - 1) & ~((size_t)page - 1);
    void *m = mmap(NULL, q->descs_len, PROT_READ, MAP_SHARED | MAP_POPULATE,
                   e->cdev, (off_t)(UBLKSRV_CMD_BUF_OFFSET + q->id * max_len));
    if (m == MAP_FAILED)
        return -errno;
    q->descs = m;
    /* The kernel's completions of our commands run as task work of this
     * thread: with DEFER_TASKRUN only when it waits for completions, in
     * a batch, never interrupting it while it serves requests. Kernels
     * before 6.1 refuse the flag and get an ordinary ring. */
    int r = io_uring_queue_init(depth + 2, &q->ring,
                                IORING_SETUP_COOP_TASKRUN |
                                IORING_SETUP_SINGLE_ISSUER |
                                IORING_SETUP_DEFER_TASKRUN);
    if (r == -EINVAL)
        r = io_uring_queue_init(depth + 2, &q->ring, 0);
    if (r)
        return r;
    q->ring_ready = true;
    for (unsigned i = 0; i < depth; i++)
        tag_post(q, &q->tags[i], false);
    post_event_read(q);
    r = io_uring_submit(&q->ring);
    return r < 0 ? r : 0;
}

static void queue_ready(struct ublk_queue *q, int error)
{
    pthread_mutex_lock(q->ready_lock);
    q->setup_error = error;
    (*q->ready_count)++;
    pthread_cond_broadcast(q->ready_cond);
    pthread_mutex_unlock(q->ready_lock);
}

/* Handle one completion of the ring. */
static void queue_cqe(struct ublk_queue *q, const struct io_uring_cqe *cqe)
{
    uint64_t data = io_uring_cqe_get_data64(cqe);
    if (data == UBLK_EVENT_TAG) {
        post_event_read(q);   /* completions may still come */
        return;
    }
    struct ublk_tag *t = &q->tags[data];
    if (cqe->res == UBLK_IO_RES_OK) {
        tag_serve(q, t);
        return;
    }
    /* UBLK_IO_RES_ABORT: the device is going away; anything else: the
     * kernel refused the command. Either way the tag is done. */
    t->live = false;
    q->live--;
}

static void *queue_thread(void *arg)
{
    struct ublk_queue *q = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    current_queue = q;
    int r = queue_setup(q);
    queue_ready(q, r);
    if (r)
        return NULL;

    /* Until the kernel has aborted every tag (the device stopped) or the
     * export stops, and nothing is left with the unit. */
    while ((q->live && !atomic_load(&q->stopping)) || q->inflight) {
        commit_done(q);
        struct io_uring_cqe *cqe;
        r = io_uring_submit_and_wait(&q->ring, 1);
        if (r < 0 && r != -EINTR && r != -EBUSY && r != -EAGAIN)
            break;
        unsigned head, n = 0;
        io_uring_for_each_cqe(&q->ring, head, cqe) {
            queue_cqe(q, cqe);
            n++;
        }
        io_uring_cq_advance(&q->ring, n);
    }
    return NULL;
}

static void queue_wake(struct ublk_queue *q)
{
    uint64_t one = 1;
    atomic_store(&q->stopping, true);
    if (write(q->efd, &one, sizeof one) < 0) {
        /* The counter cannot overflow with our writes. */
    }
}

static void queues_free(spd_ublk_export *e)
{
    for (unsigned i = 0; i < e->queue_count; i++) {
        struct ublk_queue *q = &e->queues[i];
        if (q->thread_started) {
            queue_wake(q);
            pthread_join(q->thread, NULL);
        }
        if (q->ring_ready)
            io_uring_queue_exit(&q->ring);   /* cancels what is left */
        if (q->descs)
            munmap((void *)q->descs, q->descs_len);
        if (q->efd >= 0)
            close(q->efd);
        for (unsigned t = 0; q->tags && t < e->info.queue_depth; t++)
            free(q->tags[t].buf);
        free(q->tags);
    }
    free(e->queues);
    e->queues = NULL;
    e->queue_count = 0;
}

/* Start a thread per queue and wait until each has posted its fetches. */
static int queues_start(spd_ublk_export *e)
{
    unsigned n = e->info.nr_hw_queues, depth = e->info.queue_depth;
    size_t buf_len = e->info.max_io_buf_bytes;
    e->queues = calloc(n, sizeof *e->queues);
    if (!e->queues)
        return -ENOMEM;
    e->queue_count = n;
    e->ready_count = 0;
    for (unsigned i = 0; i < n; i++) {
        struct ublk_queue *q = &e->queues[i];
        *q = (struct ublk_queue){ .e = e, .id = (uint16_t)i, .efd = -1,
                                  .ready_lock = &e->ready_lock,
                                  .ready_cond = &e->ready_cond,
                                  .ready_count = &e->ready_count };
        q->efd = eventfd(0, EFD_CLOEXEC);
        q->tags = calloc(depth, sizeof *q->tags);
        if (q->efd < 0 || !q->tags)
            return -ENOMEM;
        for (unsigned t = 0; t < depth; t++) {
            q->tags[t] = (struct ublk_tag){ .q = q, .tag = (uint16_t)t };
            if (posix_memalign(&q->tags[t].buf, 4096, buf_len))
                return -ENOMEM;
        }
    }
    int r = 0;
    unsigned started = 0;
    for (; started < n && !r; started++) {
        r = -pthread_create(&e->queues[started].thread, NULL, queue_thread,
                            &e->queues[started]);
        e->queues[started].thread_started = !r;
    }
    started -= r != 0;
    pthread_mutex_lock(&e->ready_lock);
    while (e->ready_count < started)
        pthread_cond_wait(&e->ready_cond, &e->ready_lock);
    pthread_mutex_unlock(&e->ready_lock);
    for (unsigned i = 0; i < started && !r; i++)
        r = e->queues[i].setup_error;
    return r;
}

/* ------------------------------------------------------------------ */
/* The device                                                          */
/* ------------------------------------------------------------------ */

/* A control command for our device. */
static int dev_cmd(spd_ublk_export *e, uint32_t op, void *buf, uint16_t len,
                   uint64_t data)
{
    return ublk_ctrl_cmd(e->ctrl, op, e->info.dev_id,
                         e->unprivileged && op != UBLK_U_CMD_ADD_DEV, buf,
                         len, data);
}

/* An unprivileged process must name /dev/ublkcN (GET_DEV_INFO2); root
 * need not, and a device's node may be missing. */
static int get_info(spd_ublk_export *e)
{
    return dev_cmd(e, e->unprivileged ? UBLK_U_CMD_GET_DEV_INFO2
                                      : UBLK_U_CMD_GET_DEV_INFO,
                   &e->info, sizeof e->info, 0);
}

static unsigned shift_of(uint32_t n)
{
    return (unsigned)__builtin_ctz(n);
}

/* The disk's geometry and features, from the unit's parameters. */
static struct ublk_params params_of(const spd_ublk_export *e)
{
    const spd_params *p = spd_unit_params(e->unit);
    struct ublk_params up = {
        .len = sizeof up,
        .types = UBLK_PARAM_TYPE_BASIC,
        .basic = {
            .logical_bs_shift = (uint8_t)shift_of(p->block_length),
            .physical_bs_shift = (uint8_t)shift_of(p->physical_block_length),
            .io_min_shift = (uint8_t)shift_of(p->physical_block_length),
            .io_opt_shift = (uint8_t)shift_of(p->physical_block_length),
            .max_sectors = e->info.max_io_buf_bytes >> 9,
            .dev_sectors = p->block_count << (shift_of(p->block_length) - 9),
        },
    };
    if (p->write_protected)
        up.basic.attrs |= UBLK_ATTR_READ_ONLY;
    if (p->cache_supported)
        up.basic.attrs |= UBLK_ATTR_VOLATILE_CACHE | UBLK_ATTR_FUA;
    if (p->unmap_supported && !p->write_protected) {
        uint32_t max = UBLK_MAX_DISCARD_SECTORS;
        up.types |= UBLK_PARAM_TYPE_DISCARD;
        up.discard = (struct ublk_param_discard){
            .discard_granularity = p->block_length,
            .max_discard_sectors = max,
            .max_write_zeroes_sectors = max,
            .max_discard_segments = 1,   /* one range per request */
        };
    }
    return up;
}

/* The largest request the kernel may send: the unit's max transfer, at
 * most UBLK_MAX_IO_BYTES. */
static uint32_t io_bytes_of(const spd_unit *unit)
{
    const spd_params *p = spd_unit_params(unit);
    uint32_t max = p->max_transfer_length ? p->max_transfer_length
                                          : SPD_DEFAULT_MAX_TRANSFER;
    if (max > UBLK_MAX_IO_BYTES)
        max = UBLK_MAX_IO_BYTES;
    max &= ~4095u;   /* the kernel counts whole pages */
    return max ? max : 4096;
}

static bool process_alive(int32_t pid)
{
    return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

/* Open /dev/ublkcN, which udev or devtmpfs makes as the device is added. */
static int open_cdev(spd_ublk_export *e)
{
    char path[32];
    snprintf(path, sizeof path, "/dev/ublkc%u", e->info.dev_id);
    for (int i = 0; i < 500; i++) {
        e->cdev = open(path, O_RDWR | O_CLOEXEC);
        if (e->cdev >= 0 || (errno != ENOENT && errno != EACCES))
            break;
        nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
    }
    if (e->cdev < 0)
        return spd_set_error(errno, "%s: %s", path, strerror(errno));
    return 0;
}

/*
 * An existing device of our id: take it over when it waits for recovery
 * with our geometry, delete it when the process that served it is gone
 * and it cannot be recovered. 1: taken over (recovery started), 0:
 * deleted, or -errno.
 */
static int claim_existing(spd_ublk_export *e)
{
    unsigned id = e->info.dev_id;
    for (int waited = 0;; waited++) {
        if (get_info(e) < 0)
            return 0;   /* gone meanwhile */
        if (process_alive(e->info.ublksrv_pid) &&
            e->info.state != UBLK_S_DEV_QUIESCED)
            return spd_set_error(EEXIST, "ublk device %u is served by "
                                 "process %d", id, e->info.ublksrv_pid);
        bool recoverable = e->info.flags & UBLK_F_USER_RECOVERY;
        if (!e->opt.recovery || !recoverable) {
            dev_cmd(e, UBLK_U_CMD_STOP_DEV, NULL, 0, 0);   /* if not yet */
            int r = dev_cmd(e, UBLK_U_CMD_DEL_DEV, NULL, 0, 0);
            return r < 0 ? spd_set_error(-r, "ublk device %u, left by a "
                                         "process that died, cannot be "
                                         "deleted: %s", id, strerror(-r))
                         : 0;
        }
        if (e->info.state == UBLK_S_DEV_QUIESCED)
            break;
        if (waited >= UBLK_RECOVERY_WAIT_S * 10)
            return spd_set_error(EBUSY, "ublk device %u did not become "
                                 "ready for recovery", id);
        nanosleep(&(struct timespec){ .tv_nsec = 100000000 }, NULL);
    }
    struct ublk_params up = { .len = sizeof up }, want = params_of(e);
    int r = dev_cmd(e, UBLK_U_CMD_GET_PARAMS, &up, sizeof up, 0);
    if (r < 0)
        return spd_set_error(-r, "ublk device %u: parameters: %s", id,
                             strerror(-r));
    if (up.basic.dev_sectors != want.basic.dev_sectors ||
        up.basic.logical_bs_shift != want.basic.logical_bs_shift)
        return spd_set_error(EINVAL, "ublk device %u has another size or "
                             "block size than this unit: not recovered", id);
    for (int i = 0; (r = dev_cmd(e, UBLK_U_CMD_START_USER_RECOVERY, NULL, 0,
                                 0)) == -EBUSY && i < UBLK_RECOVERY_WAIT_S * 10;
         i++)
        nanosleep(&(struct timespec){ .tv_nsec = 100000000 }, NULL);
    if (r < 0)
        return spd_set_error(-r, "ublk device %u: recovery: %s", id,
                             strerror(-r));
    return 1;
}

/* ADD_DEV: a new device with our id (or the kernel's choice). */
static int add_device(spd_ublk_export *e)
{
    e->info = (struct ublksrv_ctrl_dev_info){
        .nr_hw_queues = (uint16_t)e->opt.queues,
        .queue_depth = (uint16_t)e->opt.queue_depth,
        .max_io_buf_bytes = io_bytes_of(e->unit),
        .dev_id = e->opt.id < 0 ? UBLK_NO_ID : (uint32_t)e->opt.id,
        .ublksrv_pid = getpid(),
        .flags = UBLK_F_CMD_IOCTL_ENCODE |
                 (e->opt.recovery ? UBLK_F_USER_RECOVERY |
                                    UBLK_F_USER_RECOVERY_REISSUE : 0) |
                 (e->unprivileged ? UBLK_F_UNPRIVILEGED_DEV : 0) |
                 /* The kernel refuses it to unprivileged devices. */
                 (spd_unit_lends_memory(e->unit) && !e->unprivileged
                      ? e->features & UBLK_F_USER_COPY : 0),
    };
    int r = dev_cmd(e, UBLK_U_CMD_ADD_DEV, &e->info, sizeof e->info, 0);
    if (r == -EPERM || r == -EACCES)
        return spd_set_error(EPERM, "adding a ublk device is not permitted "
                             "(root, or a kernel that allows unprivileged "
                             "ublk and its udev rule)");
    if (r < 0)
        return spd_set_error(-r, "adding ublk device%s: %s",
                             e->opt.id < 0 ? "" : " (the id given)",
                             strerror(-r));
    /* The kernel drops the unprivileged mode for a caller with
     * CAP_SYS_ADMIN, and recovery for an unprivileged device. */
    e->unprivileged = e->info.flags & UBLK_F_UNPRIVILEGED_DEV;
    return 0;
}

int spd_ublk_available(void)
{
    struct ublk_ctrl *ctrl;
    int r = ublk_ctrl_open(&ctrl, NULL);
    ublk_ctrl_close(r ? NULL : ctrl);
    return r;
}

spd_ublk_export *spd_ublk_export_create(const spd_ublk_options *options)
{
    spd_ublk_options o = { SPD_UBLK_OPTIONS_INIT };
    if (options) {
        if (options->size < sizeof(uint32_t) || options->size > sizeof o) {
            spd_set_error(EINVAL, "ublk options of unknown size %u",
                          options->size);
            return NULL;
        }
        memcpy(&o, options, options->size);
    }
    if (o.queue_depth > SPD_UBLK_MAX_QUEUE_DEPTH || o.queues > 64 ||
        o.id < -1) {
        spd_set_error(EINVAL, "ublk: queues 1 to 64, depth 1 to %d, id -1 "
                      "or more", SPD_UBLK_MAX_QUEUE_DEPTH);
        return NULL;
    }
    o.queues = o.queues ? o.queues : 1;
    o.queue_depth = o.queue_depth ? o.queue_depth : UBLK_DEFAULT_DEPTH;
    spd_ublk_export *e = calloc(1, sizeof *e);
    if (!e) {
        spd_set_error(ENOMEM, "out of memory");
        return NULL;
    }
    e->opt = o;
    e->cdev = -1;
    pthread_mutex_init(&e->ready_lock, NULL);
    pthread_cond_init(&e->ready_cond, NULL);
    return e;
}

int spd_ublk_export_add(spd_ublk_export *e, spd_unit *unit)
{
    if (!unit)
        return spd_set_error(EINVAL, "ublk: no unit");
    if (e->unit)
        return spd_set_error(EBUSY, "ublk: one unit per export");
    if (spd_unit_params(unit)->block_length > 4096)
        return spd_set_error(EINVAL, "ublk takes blocks of 512 to 4096 "
                             "bytes, not %u",
                             spd_unit_params(unit)->block_length);
    e->unit = unit;
    return 0;
}

/* Undo a start: threads, buffers, the device (unless left for recovery
 * by a process that dies: that is the kernel's), the control channel. */
static void teardown(spd_ublk_export *e, bool added)
{
    if (added)
        dev_cmd(e, UBLK_U_CMD_STOP_DEV, NULL, 0, 0);
    queues_free(e);
    if (e->cdev >= 0)
        close(e->cdev);
    e->cdev = -1;
    /* DEL_DEV waits until /dev/ublkcN is closed: now. */
    if (added)
        dev_cmd(e, UBLK_U_CMD_DEL_DEV, NULL, 0, 0);
    ublk_ctrl_close(e->ctrl);
    e->ctrl = NULL;
}

int spd_ublk_export_start(spd_ublk_export *e)
{
    if (e->started)
        return spd_set_error(EBUSY, "ublk: already started");
    if (!e->unit)
        return spd_set_error(EINVAL, "ublk: no unit added");
    int r = ublk_ctrl_open(&e->ctrl, &e->features);
    if (r)
        return r;
    e->unprivileged = geteuid() != 0;
    bool recovering = false;   /* a dead process's device taken over */
    if (e->opt.id >= 0) {
        e->info.dev_id = (uint32_t)e->opt.id;
        r = claim_existing(e);
        if (r < 0)
            goto fail;
        recovering = r == 1;
    }
    if (!recovering && (r = add_device(e)) < 0)
        goto fail;
    if (!recovering && e->opt.recovery &&
        !(e->info.flags & UBLK_F_USER_RECOVERY)) {
        r = spd_set_error(EPERM, "ublk recovery needs CAP_SYS_ADMIN: the "
                          "kernel does not offer it to unprivileged devices");
        goto fail_added;
    }
    /* First the node: an unprivileged process's commands are checked
     * against its access to it, which a udev rule grants a moment after
     * the device is added. */
    if ((r = open_cdev(e)) < 0)
        goto fail_added;
    if (!recovering) {
        struct ublk_params up = params_of(e);
        r = dev_cmd(e, UBLK_U_CMD_SET_PARAMS, &up, sizeof up, 0);
        if (r < 0) {
            spd_set_error(-r, "ublk device %u: parameters: %s",
                          e->info.dev_id, strerror(-r));
            goto fail_added;
        }
    }
    if ((r = queues_start(e)) < 0) {
        spd_set_error(-r, "ublk device %u: queues: %s", e->info.dev_id,
                      strerror(-r));
        goto fail_added;
    }
    r = dev_cmd(e, recovering ? UBLK_U_CMD_END_USER_RECOVERY
                              : UBLK_U_CMD_START_DEV, NULL, 0,
                (uint64_t)getpid());
    if (r < 0) {
        spd_set_error(-r, "ublk device %u: %s: %s", e->info.dev_id,
                      recovering ? "end of recovery" : "start",
                      strerror(-r));
        goto fail_added;
    }
    e->started = true;
    return 0;

fail_added:
    /* A device being recovered stays for another try. */
    teardown(e, !recovering);
    return r;
fail:
    teardown(e, false);
    return r;
}

int spd_ublk_export_id(const spd_ublk_export *e)
{
    return e && e->started ? (int)e->info.dev_id : -1;
}

bool spd_ublk_export_user_copy(const spd_ublk_export *e)
{
    return e && e->started && user_copy(e) && spd_unit_lends_memory(e->unit);
}

void spd_ublk_export_stop(spd_ublk_export *e)
{
    if (!e || !e->started)
        return;
    /* STOP_DEV removes the disk after its requests finish (the queue
     * threads serve them meanwhile) and aborts the fetches. */
    teardown(e, true);
    e->started = false;
}

void spd_ublk_export_destroy(spd_ublk_export *e)
{
    if (!e)
        return;
    spd_ublk_export_stop(e);
    pthread_mutex_destroy(&e->ready_lock);
    pthread_cond_destroy(&e->ready_cond);
    free(e);
}
