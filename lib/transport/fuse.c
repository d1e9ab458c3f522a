/*
 * fuse.c - the FUSE export (see spd/fuse.h): one unit as one regular file,
 * the root inode of a FUSE filesystem mounted over that file, served with
 * the libfuse3 low-level API.
 *
 * Threads: libfuse's multi-threaded loop runs on a thread of ours and
 * starts its workers (each with its own /dev/fuse clone), which call the
 * handlers below. Reads, fsync and flush complete asynchronously: the
 * handler submits a block request with a buffer of ours and returns; the
 * request's done callback replies, on whatever thread completed it.
 * Writes run synchronously, straight from libfuse's receive buffer: that
 * buffer is reused as soon as the handler returns, so replying later would
 * need a copy of every byte written, while waiting only holds a worker
 * (the loop starts more, up to FUSE_MAX_WORKERS).
 *
 * Writes and fallocate's zeroing go through the core's byte-granular
 * calls (spd_unit_pwrite(), spd_unit_pzero()), which read, patch and
 * write back partial blocks and keep other writes off a block meanwhile.
 */
#define FUSE_USE_VERSION 312   /* 3.12 API: fuse_loop_cfg_*; Debian 12 has 3.14 */

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/errmsg.h"
#include "spd/fuse.h"

/* Worker threads libfuse may start; each blocked write holds one. */
#define FUSE_MAX_WORKERS 32
/* Read buffers are aligned for devices that do O_DIRECT I/O into them. */
#define FUSE_IO_ALIGN 4096
/* The largest read the kernel sends (libfuse asks for 256 pages). */
#define FUSE_MAX_READ (1024 * 1024)
/* Read buffers kept for reuse (more reads in flight allocate). */
#define FUSE_POOL_SLOTS 64
/* The file's attributes never change: the kernel may keep them long. */
#define FUSE_ATTR_TIMEOUT 3600.0

/* An export is a chain of mounts, one per path; the handle the caller
 * holds is the first. */
struct spd_fuse_export {
    struct spd_fuse_export *next;   /* the export's next mount */
    bool started;
    spd_unit *unit;                 /* NULL: nothing added yet */
    char *path;
    bool created;                   /* start made the file at path */
    bool stale_detached;            /* a dead server's mount was there */
    int path_fd;                    /* O_PATH: the very file mounted over */
    char mount_at[32];              /* what the mount is made on */
    uint64_t size;                  /* bytes */
    uint32_t block_length;
    bool unmap_zeroes;              /* unmap is supported and reads zeros */
    struct stat attr;               /* what getattr answers */
    dev_t under_dev;                /* the file we mount over, to tell */
    ino_t under_ino;                /* whether our mount still covers it */

    struct fuse_session *se;
    struct fuse_loop_config *loop_cfg;
    pthread_t thread;
    bool thread_started;

    /* Free read buffers of pool_cap bytes. Reusing them matters: a
     * fresh buffer this large is an mmap() and a page fault per page.
     * Each slot is taken and given back by one atomic exchange, so no
     * lock and no ABA problem. */
    size_t pool_cap;
    _Atomic(void *) pool[FUSE_POOL_SLOTS];

    /* Replies that done callbacks still owe, plus one reference the
     * export holds until stop. Stop drops its own and waits for 0 before
     * it destroys the session; idle_lock is taken only by the callback
     * that leaves the last reference, which is after that. */
    atomic_uint refs;
    pthread_mutex_t idle_lock;
    pthread_cond_t idle;
};

/* An asynchronous request: a block request and the FUSE request it
 * answers. Allocated behind its own (aligned) data buffer. */
struct fuse_io {
    spd_request req;
    fuse_req_t freq;
    spd_fuse_export *e;
    size_t skip;                    /* READ: reply len bytes from buf + skip */
    size_t len;
    void *mem;                      /* the allocation: data, then this */
    size_t data_len;
};

/* ------------------------------------------------------------------ */
/* Requests (statuses become errnos by spd_request_errno(), the one    */
/* mapping every errno-speaking transport shares)                      */
/* ------------------------------------------------------------------ */

static void *pool_get(spd_fuse_export *e)
{
    for (unsigned i = 0; i < FUSE_POOL_SLOTS; i++) {
        if (atomic_load_explicit(&e->pool[i], memory_order_relaxed)) {
            void *mem = atomic_exchange(&e->pool[i], NULL);
            if (mem)
                return mem;
        }
    }
    return NULL;
}

/* Keep mem for reuse, or free it when every slot is full. */
static void pool_put(spd_fuse_export *e, void *mem)
{
    for (unsigned i = 0; i < FUSE_POOL_SLOTS; i++) {
        void *empty = NULL;
        if (atomic_compare_exchange_strong(&e->pool[i], &empty, mem))
            return;
    }
    free(mem);
}

/* Buffers of up to pool_cap bytes come from the pool and go back to it. */
static bool pool_fits(const spd_fuse_export *e, size_t bytes)
{
    return bytes && bytes <= e->pool_cap;
}

/* An aligned buffer of bytes, with room for a struct fuse_io at offset
 * buffer_cap() behind the data. NULL when out of memory. */
static size_t buffer_cap(const spd_fuse_export *e, size_t bytes)
{
    return pool_fits(e, bytes) ? e->pool_cap : bytes;
}

static void *buffer_get(spd_fuse_export *e, size_t bytes)
{
    void *mem = pool_fits(e, bytes) ? pool_get(e) : NULL;
    if (!mem && posix_memalign(&mem, FUSE_IO_ALIGN,
                               buffer_cap(e, bytes) + sizeof(struct fuse_io)))
        return NULL;
    return mem;
}

static void buffer_put(spd_fuse_export *e, void *mem, size_t bytes)
{
    if (pool_fits(e, bytes))
        pool_put(e, mem);
    else
        free(mem);
}

/* A request whose reply the done callback sends, with data_len bytes of
 * data (the read buffer) before it. NULL when out of memory. */
static struct fuse_io *io_new(spd_fuse_export *e, fuse_req_t freq,
                              size_t data_len)
{
    uint8_t *mem = buffer_get(e, data_len);
    if (!mem)
        return NULL;
    struct fuse_io *io = (struct fuse_io *)(mem + buffer_cap(e, data_len));
    *io = (struct fuse_io){ .freq = freq, .e = e, .mem = mem,
                            .data_len = data_len };
    io->req.size = sizeof io->req;
    io->req.buf = data_len ? mem : NULL;
    io->req.opaque = io;
    return io;
}

static void io_free(struct fuse_io *io)
{
    buffer_put(io->e, io->mem, io->data_len);
}

static void io_submit(struct fuse_io *io)
{
    atomic_fetch_add(&io->e->refs, 1);
    spd_unit_submit(io->e->unit, &io->req);
}

/*
 * After the reply, drop the request's reference: lock-free while others
 * remain (always, until stop). The last one takes it to 0 under idle_lock,
 * so that stop, which only looks under that lock, cannot see 0 and free
 * the export while this thread still uses it.
 */
static void io_replied(spd_fuse_export *e)
{
    unsigned n = atomic_load(&e->refs);
    while (n > 1)
        if (atomic_compare_exchange_weak(&e->refs, &n, n - 1))
            return;
    pthread_mutex_lock(&e->idle_lock);
    if (atomic_fetch_sub(&e->refs, 1) == 1)
        pthread_cond_broadcast(&e->idle);
    pthread_mutex_unlock(&e->idle_lock);
}

/* ------------------------------------------------------------------ */
/* Operations                                                          */
/* ------------------------------------------------------------------ */

static void fs_init(void *userdata, struct fuse_conn_info *conn)
{
    /* The file's size and times never change, so the kernel has nothing
     * to learn from re-reading them before cached reads. */
    conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
    /* Let O_TRUNC reach open(), which ignores it, rather than arrive as a
     * truncation to 0 that setattr must refuse. */
    conn->want |= conn->capable & FUSE_CAP_ATOMIC_O_TRUNC;
}

static void fs_getattr(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi)
{
    spd_fuse_export *e = fuse_req_userdata(req);
    fuse_reply_attr(req, &e->attr, FUSE_ATTR_TIMEOUT);
}

/* A disk does not change size, owner or mode; times are accepted and not
 * kept (so touch works). */
static void fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
                       int to_set, struct fuse_file_info *fi)
{
    spd_fuse_export *e = fuse_req_userdata(req);
    int err = 0;
    if ((to_set & FUSE_SET_ATTR_SIZE) && (uint64_t)attr->st_size != e->size)
        err = EINVAL;
    else if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID |
                       FUSE_SET_ATTR_GID))
        err = EPERM;
    if (err)
        fuse_reply_err(req, err);
    else
        fuse_reply_attr(req, &e->attr, FUSE_ATTR_TIMEOUT);
}

static void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    /* O_TRUNC is ignored, as a block device ignores it. O_DIRECT needs
     * nothing here: the kernel serves it by its own direct I/O path, and
     * leaving fi->direct_io clear keeps the page cache (and mmap) for
     * everyone else. A descriptor that cannot write has nothing to flush
     * on close. */
    fi->noflush = (fi->flags & O_ACCMODE) == O_RDONLY;
    fuse_reply_open(req, fi);
}

static void read_done(spd_request *req)
{
    struct fuse_io *io = req->opaque;
    spd_fuse_export *e = io->e;
    int err = spd_request_errno(req);
    if (err)
        fuse_reply_err(io->freq, err);
    else
        fuse_reply_buf(io->freq, (const char *)req->buf + io->skip, io->len);
    io_free(io);
    io_replied(e);
}

/* Read the blocks that cover the range into a buffer of ours; the reply
 * is the requested part of it. Short at the end of the disk. */
static void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    spd_fuse_export *e = fuse_req_userdata(req);
    uint64_t pos = (uint64_t)off;
    if (off < 0 || pos >= e->size || !size) {
        fuse_reply_buf(req, NULL, 0);
        return;
    }
    if (size > e->size - pos)
        size = e->size - pos;

    uint32_t bl = e->block_length;
    uint64_t first = pos / bl;
    uint64_t blocks = (pos + size + bl - 1) / bl - first;
    struct fuse_io *io = io_new(e, req, blocks * bl);
    if (!io) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    io->skip = pos - first * bl;
    io->len = size;
    io->req.op = SPD_OP_READ;
    io->req.lba = first;
    io->req.blocks = blocks;
    io->req.done = read_done;
    io_submit(io);
}

/* Synchronous, from libfuse's buffer (see the top of the file). At or past
 * the end: ENOSPC; across it: a short write, as on a block device. */
static void fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
                     size_t size, off_t off, struct fuse_file_info *fi)
{
    spd_fuse_export *e = fuse_req_userdata(req);
    uint64_t pos = (uint64_t)off;
    if (off < 0 || pos >= e->size) {
        fuse_reply_err(req, ENOSPC);
        return;
    }
    if (size > e->size - pos)
        size = e->size - pos;

    int r = spd_unit_pwrite(e->unit, buf, size, pos, false);
    if (r)
        fuse_reply_err(req, -r);
    else
        fuse_reply_write(req, size);
}

static void flush_done(spd_request *req)
{
    struct fuse_io *io = req->opaque;
    spd_fuse_export *e = io->e;
    fuse_reply_err(io->freq, spd_request_errno(req));
    io_free(io);
    io_replied(e);
}

/* fsync() and close(): flush the whole unit, replying when it is done. */
static void submit_flush(fuse_req_t req)
{
    struct fuse_io *io = io_new(fuse_req_userdata(req), req, 0);
    if (!io) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    io->req.op = SPD_OP_FLUSH;          /* lba 0, blocks 0: everything */
    io->req.done = flush_done;
    io_submit(io);
}

static void fs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    submit_flush(req);
}

static void fs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
                     struct fuse_file_info *fi)
{
    submit_flush(req);
}

/* fallocate(2) on the disk: 0 or -errno (see spd/fuse.h). */
static int fallocate_range(spd_fuse_export *e, int mode, uint64_t off,
                           uint64_t len)
{
    const int zeroing = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;
    if (mode & ~(zeroing | FALLOC_FL_KEEP_SIZE))
        return -EOPNOTSUPP;
    if (!len || len > UINT64_MAX - off)
        return -EINVAL;
    uint64_t end = off + len;
    if (end > e->size && !(mode & FALLOC_FL_KEEP_SIZE))
        return -ENOSPC;                 /* it would grow the file */
    if (!(mode & zeroing))
        return 0;                       /* every block exists already */
    /* A hole must read as zeros; unmap alone does not promise that here,
     * and writing zeros is no deallocation. Callers fall back. */
    if ((mode & FALLOC_FL_PUNCH_HOLE) && !e->unmap_zeroes)
        return -EOPNOTSUPP;
    if (off >= e->size)
        return 0;
    /* Whole blocks unmapped where that reads back as zeros, else
     * written with zeros, like the partial blocks at either edge. */
    if (end > e->size)
        end = e->size;
    return spd_unit_pzero(e->unit, end - off, off, SPD_REQ_MAY_UNMAP, false);
}

static void fs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode,
                         off_t offset, off_t length,
                         struct fuse_file_info *fi)
{
    spd_fuse_export *e = fuse_req_userdata(req);
    if (offset < 0 || length < 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    fuse_reply_err(req, -fallocate_range(e, mode, (uint64_t)offset,
                                         (uint64_t)length));
}

static const struct fuse_lowlevel_ops fs_ops = {
    .init = fs_init,
    .getattr = fs_getattr,
    .setattr = fs_setattr,
    .open = fs_open,
    .read = fs_read,
    .write = fs_write,
    .flush = fs_flush,
    .fsync = fs_fsync,
    .fallocate = fs_fallocate,
};

/* ------------------------------------------------------------------ */
/* Mounting and serving                                                */
/* ------------------------------------------------------------------ */

/* The file to mount over: an existing regular file, or one we create;
 * never a symbolic link, which would put the disk over the file it names
 * (someone else's, perhaps). Held open, so that a privileged mount goes
 * on this very file even if the name changes meanwhile; fusermount3, for
 * an unprivileged one, does its own checks on the path. */
static int prepare_path(spd_fuse_export *e)
{
    int fd = open(e->path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        int made = open(e->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
                                 O_CLOEXEC, 0600);
        if (made < 0)
            return spd_set_error(errno, "cannot create %s: %s", e->path,
                                 strerror(errno));
        e->created = true;
        close(made);
        fd = open(e->path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0)
        return spd_set_error(errno, "%s: %s", e->path, strerror(errno));
    e->path_fd = fd;
    /* Forced to ask the file system: a dead FUSE server's attributes may
     * still be cached. */
    struct statx st;
    int err = statx(fd, "", AT_EMPTY_PATH | AT_STATX_FORCE_SYNC,
                    STATX_TYPE | STATX_INO, &st) ? errno : 0;
    if (err == ENOTCONN && !e->stale_detached) {
        /* The FUSE file of a server that died (killed, or its launcher
         * was): nothing can use it again, so detach it, as fusermount3
         * -uz would, and take the file under it. */
        close(fd);
        e->path_fd = -1;
        e->stale_detached = true;
        if (umount2(e->path, MNT_DETACH | UMOUNT_NOFOLLOW) != 0)
            return spd_set_error(ENOTCONN, "%s is the FUSE file of a server "
                                 "that is gone, and cannot be detached: "
                                 "%s (fusermount3 -uz %s)", e->path,
                                 strerror(errno), e->path);
        return prepare_path(e);
    }
    if (err)
        return spd_set_error(err, "%s: %s", e->path, strerror(err));
    if (S_ISLNK(st.stx_mode))
        return spd_set_error(ELOOP, "%s is a symbolic link: the FUSE export "
                             "mounts over a regular file, never through a "
                             "link", e->path);
    if (S_ISDIR(st.stx_mode))
        return spd_set_error(EISDIR, "%s is a directory: the FUSE export "
                             "mounts over a regular file", e->path);
    if (!S_ISREG(st.stx_mode))
        return spd_set_error(EINVAL, "%s is not a regular file", e->path);
    e->under_dev = makedev(st.stx_dev_major, st.stx_dev_minor);
    e->under_ino = st.stx_ino;
    if (geteuid() == 0)
        snprintf(e->mount_at, sizeof e->mount_at, "/proc/self/fd/%d", fd);
    return 0;
}

static int session_create(spd_fuse_export *e)
{
    char *argv[] = { "spd", "-o", "fsname=spd,subtype=spd", NULL };
    struct fuse_args args = FUSE_ARGS_INIT(3, argv);
    e->se = fuse_session_new(&args, &fs_ops, sizeof fs_ops, e);
    fuse_opt_free_args(&args);
    if (!e->se)
        return spd_set_error(ENOMEM, "cannot create a FUSE session");

    e->loop_cfg = fuse_loop_cfg_create();
    if (!e->loop_cfg)
        return spd_set_error(ENOMEM, "out of memory");
    /* A /dev/fuse descriptor per worker: no contention on one queue. */
    fuse_loop_cfg_set_clone_fd(e->loop_cfg, 1);
    fuse_loop_cfg_set_max_threads(e->loop_cfg, FUSE_MAX_WORKERS);
    /* Keep idle workers: starting threads costs more than they do. */
    fuse_loop_cfg_set_idle_threads(e->loop_cfg, FUSE_MAX_WORKERS);

    errno = 0;
    if (fuse_session_mount(e->se, e->mount_at[0] ? e->mount_at : e->path)) {
        int err = errno ? errno : EPERM;
        return spd_set_error(err, "cannot mount FUSE over %s (%s; libfuse "
                             "may have said more)", e->path, strerror(err));
    }
    return 0;
}

static void *serve(void *arg)
{
    spd_fuse_export *e = arg;
    fuse_session_loop_mt(e->se, e->loop_cfg);
    return NULL;
}

/* Start the loop on a thread that takes no signals (the program owns
 * them; libfuse's workers inherit the mask), then wait for the mount to
 * answer with the disk's size. */
static int serve_start(spd_fuse_export *e)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int err = pthread_create(&e->thread, NULL, serve, e);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err)
        return spd_set_error(err, "cannot start the FUSE thread: %s",
                             strerror(err));
    e->thread_started = true;

    struct stat st;
    if (stat(e->path, &st) != 0)
        return spd_set_error(errno, "the FUSE mount at %s does not answer: "
                             "%s", e->path, strerror(errno));
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != e->size)
        return spd_set_error(EIO, "%s does not show the FUSE export",
                             e->path);
    return 0;
}

/* Does our mount still cover PATH? Not when PATH shows the file beneath
 * (someone unmounted it): then another unmount could hit a mount below. */
static bool mounted_here(const spd_fuse_export *e)
{
    struct stat st;
    return lstat(e->path, &st) != 0 ||
           st.st_dev != e->under_dev || st.st_ino != e->under_ino;
}

/*
 * Take the mount away so the loop sees its connection end. Privileged: a
 * plain unmount while nobody has the file open; else abort the connection
 * (MNT_FORCE) and detach, since waiting would last as long as, say, an
 * attached loop device. Unprivileged: libfuse's lazy fusermount3 -u -z,
 * which also closes the session's descriptor (the workers read their own
 * clones).
 */
static void unmount(spd_fuse_export *e)
{
    if (!mounted_here(e))
        return;
    if (umount2(e->path, UMOUNT_NOFOLLOW) == 0)
        return;
    if (errno == EBUSY &&
        umount2(e->path, MNT_FORCE | MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
        return;
    if (errno == EPERM)
        fuse_session_unmount(e->se);
}

/* Drop the export's reference and wait until every done callback has
 * sent its reply (no new requests come: the loop has ended). */
static void wait_replies(spd_fuse_export *e)
{
    pthread_mutex_lock(&e->idle_lock);
    atomic_fetch_sub(&e->refs, 1);
    while (atomic_load(&e->refs))
        pthread_cond_wait(&e->idle, &e->idle_lock);
    pthread_mutex_unlock(&e->idle_lock);
}

/* Undo whatever start got done; e may be half started. */
static void mount_stop(spd_fuse_export *e)
{
    if (e->thread_started) {
        unmount(e);
        pthread_join(e->thread, NULL);
        wait_replies(e);
        e->thread_started = false;
    }
    if (e->se) {
        unmount(e);         /* by path: libfuse may only know mount_at */
        fuse_session_unmount(e->se);    /* closes the descriptor */
        fuse_session_destroy(e->se);
        e->se = NULL;
    }
    if (e->loop_cfg)
        fuse_loop_cfg_destroy(e->loop_cfg);
    e->loop_cfg = NULL;
    if (e->created)
        unlink(e->path);
    e->created = false;
    if (e->path_fd >= 0)
        close(e->path_fd);
    e->path_fd = -1;
    e->mount_at[0] = '\0';
}

static void mount_free(spd_fuse_export *e)
{
    for (unsigned i = 0; i < FUSE_POOL_SLOTS; i++)
        free(atomic_load(&e->pool[i]));
    pthread_mutex_destroy(&e->idle_lock);
    pthread_cond_destroy(&e->idle);
    free(e->path);
    free(e);
}

static spd_fuse_export *mount_new(void)
{
    spd_fuse_export *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->path_fd = -1;
    pthread_mutex_init(&e->idle_lock, NULL);
    pthread_cond_init(&e->idle, NULL);
    return e;
}

static int mount_set(spd_fuse_export *e, spd_unit *unit, const char *path)
{
    if (!(e->path = strdup(path)))
        return spd_set_error(ENOMEM, "out of memory");
    const spd_params *p = spd_unit_params(unit);
    e->unit = unit;
    e->block_length = p->block_length;
    e->size = p->block_count * p->block_length;
    e->unmap_zeroes = p->unmap_supported && p->unmap_reads_zero;
    /* The largest read, unaligned: one more block at either end. */
    e->pool_cap = FUSE_MAX_READ + 2 * (size_t)p->block_length;

    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    e->attr = (struct stat){
        .st_ino = FUSE_ROOT_ID,
        .st_mode = S_IFREG | (p->write_protected ? 0400 : 0600),
        .st_nlink = 1,
        .st_uid = getuid(),
        .st_gid = getgid(),
        .st_size = (off_t)e->size,
        .st_blksize = p->block_length,
        .st_blocks = (blkcnt_t)(e->size / 512),
        .st_atim = now, .st_mtim = now, .st_ctim = now,
    };
    return 0;
}

static int mount_start(spd_fuse_export *e)
{
    atomic_store(&e->refs, 1);
    int r = prepare_path(e);
    if (!r)
        r = session_create(e);
    if (!r)
        r = serve_start(e);
    return r;
}

spd_fuse_export *spd_fuse_export_create(void)
{
    spd_fuse_export *e = mount_new();
    if (!e)
        spd_set_error(ENOMEM, "out of memory");
    return e;
}

int spd_fuse_export_add(spd_fuse_export *e, spd_unit *unit, const char *path)
{
    if (!unit || !path || !path[0])
        return spd_set_error(EINVAL, "a unit and a path are required");
    if (e->started)
        return spd_set_error(EBUSY, "the FUSE export is started: add "
                             "paths before");
    for (spd_fuse_export *m = e; m && m->unit; m = m->next)
        if (!strcmp(m->path, path))
            return spd_set_error(EEXIST, "%s is already in the export", path);
    spd_fuse_export *m = e;
    if (e->unit) {
        if (!(m = mount_new()))
            return spd_set_error(ENOMEM, "out of memory");
    }
    int r = mount_set(m, unit, path);
    if (r) {
        if (m != e)
            mount_free(m);
        return r;
    }
    if (m != e) {
        spd_fuse_export **tail = &e->next;
        while (*tail)
            tail = &(*tail)->next;
        *tail = m;
    }
    return 0;
}

int spd_fuse_export_start(spd_fuse_export *e)
{
    if (e->started)
        return spd_set_error(EBUSY, "the FUSE export is already started");
    if (!e->unit)
        return spd_set_error(EINVAL, "the FUSE export has no path: call "
                             "spd_fuse_export_add first");
    if (access("/dev/fuse", F_OK) != 0)
        return spd_set_error(ENODEV, "no /dev/fuse: FUSE is not available");
    for (spd_fuse_export *m = e; m; m = m->next) {
        int r = mount_start(m);
        if (r) {
            for (spd_fuse_export *u = e; u != m->next; u = u->next)
                mount_stop(u);
            errno = -r;
            return r;
        }
    }
    e->started = true;
    return 0;
}

void spd_fuse_export_stop(spd_fuse_export *e)
{
    if (!e || !e->started)
        return;
    for (spd_fuse_export *m = e; m; m = m->next)
        mount_stop(m);
    e->started = false;
}

void spd_fuse_export_destroy(spd_fuse_export *e)
{
    spd_fuse_export_stop(e);
    while (e) {
        spd_fuse_export *next = e->next;
        mount_free(e);
        e = next;
    }
}
