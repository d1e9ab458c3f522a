/*
 * spd-rbd - a disk kept in a Ceph RBD image, served through librbd.
 *
 * Every request becomes one asynchronous librbd call (rbd_aio_read2,
 * rbd_aio_write2, rbd_aio_discard, rbd_aio_flush) and returns SPD_PENDING;
 * librbd's completion callback ends the io with spd_io_complete(). Nothing
 * blocks, so requests run on the exports' own threads and as many are in
 * flight as the clients send. A cluster that stalls (an OSD restarting)
 * makes requests wait while librbd retries: none fails.
 *
 * Several gateways may serve one image: librbd's cache is off, so a write
 * is in the cluster when it completes and a read always asks the cluster,
 * and a gateway never answers from stale data another one overwrote.
 * Discard is set to zero partial ranges too (rbd_skip_partial_discard
 * off), so unmapped blocks read as zeros and the core zeroes by unmap.
 * FUA is a write and then a flush (the core's default). Extents come from
 * the object map (rbd_diff_iterate2) when the image has a valid fast-diff.
 *
 * The unit's UUID, unless given, is derived from the cluster, the pool
 * and the image (and snapshot), so every gateway of one image reports the
 * same serial number and device identifiers.
 *
 * Persistent reservations live in the image: the engine's state blob, in
 * hex, is the image metadata "spd.pr" (rbd image-meta). A PERSISTENT
 * RESERVE OUT changes it under a RADOS lock of our own on the image's
 * header object (not librbd's lock, which the gateways' writes pass
 * between them); a metadata change fires every gateway's update watch,
 * which has the engine load the state again.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rados/librados.h>
#include <rbd/librbd.h>

#include "spd/cli.h"

#define NAME "spd-rbd"

/* librbd's callback may stop rbd_diff_iterate2 with a negative value,
 * which it hands back: this one means "seen enough". */
#define DIFF_STOP (-9000)

/* The reservations' metadata key and lock (name and longest hold: a
 * gateway that dies holding it does not block the others longer). */
#define PR_KEY "spd.pr"
#define PR_LOCK "spd.pr"
#define PR_LOCK_SECONDS 30

struct rbd {
    const char *pool, *image, *snap, *conf, *id;   /* the options */
    unsigned timeout;                              /* seconds, --timeout */
    rados_t cluster;
    rados_ioctx_t ioctx;
    rbd_image_t img;
    bool watching;
    uint64_t watch;                 /* rbd_update_watch's handle */
    _Atomic uint64_t seen;          /* the image size last reported */
    _Atomic(spd_unit *) unit;       /* once served: resized with the image */
    uint32_t block_length;
    uint64_t bytes, object_size, features;
    char fsid[40];
    char header[128];               /* the header object, for PR_LOCK */
    char cookie[64];                /* this gateway's, for PR_LOCK */
};

/* ---- the operations ------------------------------------------------- */

static void aio_done(rbd_completion_t c, void *arg)
{
    ssize_t r = rbd_aio_get_return_value(c);
    rbd_aio_release(c);
    spd_io_complete(arg, r < 0 ? (int)r : SPD_OK);
}

/* Start one librbd call with a completion that ends io. */
enum aio_kind { AIO_READ, AIO_WRITE, AIO_FLUSH };

static int aio_start(struct rbd *rb, spd_io *io, enum aio_kind kind,
                     void *buf, uint64_t lba, uint64_t blocks)
{
    rbd_completion_t c;
    int r = rbd_aio_create_completion(io, aio_done, &c);
    if (r < 0)
        return r;
    uint64_t off = lba * rb->block_length;
    size_t len = (size_t)(blocks * rb->block_length);
    switch (kind) {
    case AIO_READ:
        r = rbd_aio_read2(rb->img, off, len, buf, c, 0);
        break;
    case AIO_WRITE:
        r = rbd_aio_write2(rb->img, off, len, buf, c, 0);
        break;
    default:
        r = rbd_aio_flush(rb->img, c);
    }
    if (r < 0) {
        rbd_aio_release(c);
        return r;
    }
    return SPD_PENDING;
}

static int rb_read(void *ctx, spd_io *io, void *buf, uint64_t lba,
                   uint32_t blocks, bool fua)
{
    return aio_start(ctx, io, AIO_READ, buf, lba, blocks);
}

static int rb_write(void *ctx, spd_io *io, const void *buf, uint64_t lba,
                    uint32_t blocks, bool fua)
{
    return aio_start(ctx, io, AIO_WRITE, (void *)buf, lba, blocks);
}

static int rb_flush(void *ctx, spd_io *io, uint64_t lba, uint32_t blocks)
{
    return aio_start(ctx, io, AIO_FLUSH, NULL, 0, 0);
}

/* An unmap of several ranges: one discard each, the last to complete
 * ends the io with the first failure. */
struct unmap {
    spd_io *io;
    atomic_uint pending;
    atomic_int result;
};

/* Keep the first failure. */
static void unmap_failed(struct unmap *u, int r)
{
    int none = 0;
    atomic_compare_exchange_strong(&u->result, &none, r);
}

static void unmap_done(rbd_completion_t c, void *arg)
{
    struct unmap *u = arg;
    ssize_t r = rbd_aio_get_return_value(c);
    rbd_aio_release(c);
    if (r < 0)
        unmap_failed(u, (int)r);
    if (atomic_fetch_sub(&u->pending, 1) == 1) {
        spd_io_complete(u->io, atomic_load(&u->result));
        free(u);
    }
}

static int rb_unmap(void *ctx, spd_io *io, const spd_unmap_desc *descs,
                    uint32_t count)
{
    struct rbd *rb = ctx;
    struct unmap *u = malloc(sizeof *u);
    if (!u)
        return -ENOMEM;
    u->io = io;
    atomic_init(&u->result, 0);
    /* One extra count, dropped at the end, so that no completion ends the
     * io before every range is started. */
    atomic_init(&u->pending, 1);
    for (uint32_t i = 0; i < count; i++) {
        uint64_t bl = rb->block_length;
        rbd_completion_t c;
        if (!descs[i].blocks)
            continue;
        int r = rbd_aio_create_completion(u, unmap_done, &c);
        atomic_fetch_add(&u->pending, 1);
        if (!r && (r = rbd_aio_discard(rb->img, descs[i].lba * bl,
                                       descs[i].blocks * bl, c)) < 0)
            rbd_aio_release(c);
        if (r < 0) {
            unmap_failed(u, r);
            atomic_fetch_sub(&u->pending, 1);
            break;
        }
    }
    if (atomic_fetch_sub(&u->pending, 1) == 1) {
        int r = atomic_load(&u->result);
        free(u);
        return r;
    }
    return SPD_PENDING;
}

/* rbd_diff_iterate2 from the image's creation: the allocated runs of the
 * range, in order. Collects the state of the first byte and how far it
 * goes, then stops. */
struct diff {
    uint64_t start, end;    /* the range asked about, bytes */
    uint64_t run;           /* bytes from start in the first state */
    bool mapped;
};

static int diff_cb(uint64_t off, size_t len, int exists, void *arg)
{
    struct diff *d = arg;
    if (!exists)
        return 0;
    uint64_t end = off + len;
    if (off < d->start)                  /* whole objects start earlier */
        off = d->start;
    if (end <= off)
        return 0;
    if (!d->mapped && off > d->start) {  /* a hole up to here */
        d->run = off - d->start;
        return DIFF_STOP;
    }
    if (d->mapped && off > d->start + d->run)   /* data, then a hole */
        return DIFF_STOP;
    d->mapped = true;
    d->run = end - d->start;
    return 0;
}

static int64_t rb_extent(void *ctx, uint64_t lba, uint32_t blocks,
                         bool *mapped)
{
    struct rbd *rb = ctx;
    uint64_t flags = 0;
    *mapped = true;
    /* Without a valid object map the answer would cost a request per
     * object: call it all data, as qemu does. */
    if (!(rb->features & RBD_FEATURE_FAST_DIFF) ||
        rbd_get_flags(rb->img, &flags) < 0 ||
        (flags & RBD_FLAG_FAST_DIFF_INVALID))
        return blocks;
    uint64_t bl = rb->block_length;
    struct diff d = { .start = lba * bl, .end = (lba + blocks) * bl };
    /* Whole objects from the object map: ask from the object's start. */
    uint64_t from = d.start - d.start % rb->object_size;
    int r = rbd_diff_iterate2(rb->img, NULL, from, d.end - from, 1, 1,
                              diff_cb, &d);
    if (r < 0 && r != DIFF_STOP)
        return r;
    *mapped = d.mapped;
    uint64_t run = d.run && d.run < d.end - d.start ? d.run : d.end - d.start;
    run /= bl;
    return run ? (int64_t)run : 1;
}

/* ---- persistent reservations in the image's metadata --------------- */

static int hex_value(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int rb_pr_load(void *ctx, void *buf, size_t cap)
{
    struct rbd *rb = ctx;
    size_t len = 2 * cap + 1;
    char *hex = malloc(len);
    if (!hex)
        return -ENOMEM;
    int r = rbd_metadata_get(rb->img, PR_KEY, hex, &len);
    if (r == -ENOENT)
        r = 0;
    else if (r == -ERANGE)
        r = -EINVAL;                /* too long to be ours */
    else if (r >= 0) {
        size_t n = strlen(hex);
        r = n % 2 ? -EINVAL : (int)(n / 2);
        for (size_t i = 0; r > 0 && i < n / 2; i++) {
            int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
            if (hi < 0 || lo < 0)
                r = -EINVAL;
            ((uint8_t *)buf)[i] = (uint8_t)(hi << 4 | lo);
        }
    }
    free(hex);
    return r;
}

static int pr_store(struct rbd *rb, const uint8_t *buf, size_t len)
{
    char *hex = malloc(2 * len + 1);
    if (!hex)
        return -ENOMEM;
    for (size_t i = 0; i < len; i++)
        snprintf(hex + 2 * i, 3, "%02x", buf[i]);
    hex[2 * len] = '\0';
    int r = rbd_metadata_set(rb->img, PR_KEY, hex);
    free(hex);
    return r;
}

/* The lock, waited for while another gateway holds it: at most until
 * its hold would have expired. */
static int pr_lock(struct rbd *rb)
{
    struct timeval hold = { PR_LOCK_SECONDS, 0 };
    for (int tries = 0; tries < PR_LOCK_SECONDS * 200; tries++) {
        int r = rados_lock_exclusive(rb->ioctx, rb->header, PR_LOCK,
                                     rb->cookie, "spd-rbd reservations",
                                     &hold, 0);
        if (r != -EBUSY)
            return r == -EEXIST ? 0 : r;    /* EEXIST: ours already */
        nanosleep(&(struct timespec){ 0, 5000000 }, NULL);
    }
    return -ETIMEDOUT;
}

static int rb_pr_update(void *ctx, int (*apply)(void *, void *, size_t),
                        void *arg)
{
    struct rbd *rb = ctx;
    uint8_t *buf = malloc(SPD_PR_STATE_MAX);
    if (!buf)
        return -ENOMEM;
    int r = pr_lock(rb);
    if (r == 0) {
        r = rb_pr_load(rb, buf, SPD_PR_STATE_MAX);
        if (r >= 0)
            r = apply(arg, buf, (size_t)r);
        if (r > 0) {
            int s = pr_store(rb, buf, (size_t)r);
            r = s < 0 ? s : r;
        }
        rados_unlock(rb->ioctx, rb->header, PR_LOCK, rb->cookie);
    }
    free(buf);
    return r;
}

static spd_ops rbd_ops = {
    SPD_OPS_INIT,
    .flags = SPD_OPS_PARALLEL,      /* librbd takes calls from any thread */
    .read = rb_read,
    .write = rb_write,
    .flush = rb_flush,
    .unmap = rb_unmap,
    .extent = rb_extent,
    .pr_load = rb_pr_load,
    .pr_update = rb_pr_update,
};

/* ---- the image ------------------------------------------------------ */

static const spd_device_option rbd_options[] = {
    { "pool", 0, "POOL", "the pool holding the image (default rbd)" },
    { "image", 0, "NAME", "the RBD image to serve (required)" },
    { "snap", 0, "SNAP", "serve this snapshot of the image, read-only" },
    { "conf", 0, "FILE", "the Ceph configuration file (default: "
      "$CEPH_CONF, then /etc/ceph/ceph.conf and the usual places)" },
    { "id", 0, "CLIENT", "the Ceph client name without \"client.\", "
      "whose key is used (default admin)" },
    { "timeout", 0, "SECONDS", "how long to wait for the cluster at "
      "start before giving up (default 10)" },
};

static int rb_take(void *ctx, unsigned i, const char *arg)
{
    struct rbd *rb = ctx;
    const char **slot[] = { &rb->pool, &rb->image, &rb->snap, &rb->conf,
                            &rb->id };
    if (i < sizeof slot / sizeof *slot) {
        if (!*arg) {
            fprintf(stderr, NAME ": --%s: empty\n", rbd_options[i].name);
            return SPD_EXIT_USAGE;
        }
        *slot[i] = arg;
        return 0;
    }
    char *end;
    unsigned long t = strtoul(arg, &end, 10);
    if (*end || !*arg || t == 0 || t > 3600) {
        fprintf(stderr, NAME ": --timeout %s: not a number of seconds from "
                "1 to 3600\n", arg);
        return SPD_EXIT_USAGE;
    }
    rb->timeout = (unsigned)t;
    return 0;
}

/* A name for what went wrong in each step, in one line. */
static int fail(const char *what, int r)
{
    const char *why = r == -ETIMEDOUT ? "the cluster did not answer in time "
                                        "(is a monitor reachable?)"
                    : r == -EACCES || r == -EPERM
                        ? "permission denied (a bad or missing key?)"
                    : strerror(-r);
    fprintf(stderr, NAME ": %s: %s\n", what, why);
    return SPD_EXIT_USAGE;
}

static int cluster_connect(struct rbd *rb)
{
    char t[16];
    snprintf(t, sizeof t, "%u", rb->timeout);
    int r = rados_create(&rb->cluster, rb->id);
    if (r < 0)
        return fail("rados", r);
    if ((r = rados_conf_read_file(rb->cluster, rb->conf)) < 0 && rb->conf)
        return fail(rb->conf, r);
    rados_conf_parse_env(rb->cluster, NULL);      /* CEPH_ARGS */
    char mon[8] = "";
    if (rados_conf_get(rb->cluster, "mon_host", mon, sizeof mon) != -ENAMETOOLONG
        && !mon[0]) {
        fprintf(stderr, NAME ": no monitor address: no Ceph configuration "
                "found (give --conf FILE or set CEPH_CONF)\n");
        return SPD_EXIT_USAGE;
    }
    /* Ours win over the file: one line of our own instead of the
     * library's log on stderr; a bounded wait for the monitors at start
     * only (no rados_*_op_timeout: a stalled cluster must make requests
     * wait, not fail); no cache (several gateways); discards that always
     * zero. */
    static const char *const set[][2] = {
        { "log_to_stderr", "false" }, { "err_to_stderr", "false" },
        { "rbd_cache", "false" }, { "rbd_skip_partial_discard", "false" },
    };
    for (size_t i = 0; i < sizeof set / sizeof *set; i++)
        rados_conf_set(rb->cluster, set[i][0], set[i][1]);
    rados_conf_set(rb->cluster, "client_mount_timeout", t);
    char who[160];
    snprintf(who, sizeof who, "connecting to the cluster%s%s as client.%s",
             rb->conf ? " of " : "", rb->conf ? rb->conf : "", rb->id);
    if ((r = rados_connect(rb->cluster)) < 0)
        return fail(who, r);
    size_t n = rados_cluster_fsid(rb->cluster, rb->fsid, sizeof rb->fsid);
    rb->fsid[n < sizeof rb->fsid ? n : 0] = '\0';
    return 0;
}

static int image_open(struct rbd *rb, bool read_only)
{
    char what[600];
    snprintf(what, sizeof what, "pool %s", rb->pool);
    int r = rados_ioctx_create(rb->cluster, rb->pool, &rb->ioctx);
    if (r == -ENOENT) {
        fprintf(stderr, NAME ": pool %s does not exist\n", rb->pool);
        return SPD_EXIT_USAGE;
    }
    if (r < 0)
        return fail(what, r);
    r = read_only ? rbd_open_read_only(rb->ioctx, rb->image, &rb->img,
                                       rb->snap)
                  : rbd_open(rb->ioctx, rb->image, &rb->img, NULL);
    if (r == -ENOENT) {
        rb->img = NULL;
        fprintf(stderr, NAME ": no image %s%s%s in pool %s\n", rb->image,
                rb->snap ? " with a snapshot " : "", rb->snap ? rb->snap : "",
                rb->pool);
        return SPD_EXIT_USAGE;
    }
    if (r < 0) {
        rb->img = NULL;
        snprintf(what, sizeof what, "image %s/%s", rb->pool, rb->image);
        return fail(what, r);
    }
    rbd_image_info_t info;
    if ((r = rbd_stat(rb->img, &info, sizeof info)) < 0 ||
        (r = rbd_get_features(rb->img, &rb->features)) < 0)
        return fail(rb->image, r);
    rb->bytes = info.size;
    rb->object_size = info.obj_size ? info.obj_size : 4 << 20;
    return 0;
}

/* The same UUID on every gateway of an image: 128 bits of two FNV-1a
 * hashes over the cluster's fsid, the pool's id and the image's id. */
static void derive_uuid(struct rbd *rb, uint8_t uuid[16])
{
    char id[64] = "", key[400];
    rbd_get_id(rb->img, id, sizeof id);
    snprintf(key, sizeof key, "%s/%lld/%s@%s", rb->fsid,
             (long long)rados_ioctx_get_id(rb->ioctx), id,
             rb->snap ? rb->snap : "");
    for (int half = 0; half < 2; half++) {
        uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)half;
        for (const char *c = key; *c; c++)
            h = (h ^ (uint8_t)*c) * 0x100000001b3ull;
        for (int i = 0; i < 8; i++)
            uuid[half * 8 + i] = (uint8_t)(h >> (8 * i));
    }
    uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x80);   /* version 8: custom */
    uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80);   /* RFC 9562 variant */
}

/* The header object the reservations' lock is on (format 2 images: by
 * the image's id), and this gateway's cookie for it. A snapshot, read
 * only, keeps reservations of its own. */
static void pr_names(struct rbd *rb)
{
    char id[64] = "";
    if (rbd_get_id(rb->img, id, sizeof id) == 0)
        snprintf(rb->header, sizeof rb->header, "rbd_header.%s", id);
    else
        snprintf(rb->header, sizeof rb->header, "%s.rbd", rb->image);
    snprintf(rb->cookie, sizeof rb->cookie, "spd-rbd.%llu",
             (unsigned long long)rados_get_instance_id(rb->cluster));
    if (rb->snap) {
        rbd_ops.pr_load = NULL;
        rbd_ops.pr_update = NULL;
    }
}

/* The image's header changed (a resize, a snapshot, a lock, metadata):
 * the reservations are loaded again, and the disk takes a new size, or
 * says once per new size that it keeps its own. */
static void header_changed(void *arg)
{
    struct rbd *rb = arg;
    uint64_t size;
    /* Maybe the reservations (a metadata change). */
    spd_unit_reservations_changed(atomic_load(&rb->unit));
    if (rbd_get_size(rb->img, &size) < 0 || atomic_exchange(&rb->seen, size)
                                                == size)
        return;
    char now[32];
    spd_format_size(size, now, sizeof now);
    spd_unit *unit = atomic_load(&rb->unit);
    uint64_t blocks = size / rb->block_length;
    if (unit && blocks && spd_unit_resize(unit, blocks) == 0)
        fprintf(stderr, NAME ": image %s/%s is now %s: the disk is resized "
                "(new NBD connections and every iSCSI initiator see it)\n",
                rb->pool, rb->image, now);
    else
        fprintf(stderr, NAME ": image %s/%s is now %s: the disk keeps its "
                "size\n", rb->pool, rb->image, now);
}

/* Served: from now on a resize of the image resizes the disk. */
static int rb_ready(void *ctx, spd_unit *unit)
{
    struct rbd *rb = ctx;
    atomic_store(&rb->unit, unit);
    header_changed(rb);     /* a resize between open and now */
    return 0;
}

static void rb_close(void *ctx, bool served)
{
    struct rbd *rb = ctx;
    if (rb->watching)
        rbd_update_unwatch(rb->img, rb->watch);
    rb->watching = false;
    if (rb->img)
        rbd_close(rb->img);                /* flushes and waits */
    if (rb->ioctx)
        rados_ioctx_destroy(rb->ioctx);
    if (rb->cluster)
        rados_shutdown(rb->cluster);
    rb->img = NULL;
    rb->ioctx = NULL;
    rb->cluster = NULL;
}

static int rb_open_all(struct rbd *rb, spd_params *p, unsigned given)
{
    if (!rb->image) {
        fprintf(stderr, NAME ": --image NAME is required\n");
        return SPD_EXIT_USAGE;
    }
    if (rb->snap)
        p->write_protected = true;
    int status = cluster_connect(rb);
    if (!status)
        status = image_open(rb, p->write_protected);
    if (status)
        return status;
    uint64_t asked = p->block_count * p->block_length;
    const char *wrong = (given & SPD_GIVEN_SIZE) && asked != rb->bytes
                            ? "not the size given"
                      : !rb->bytes || rb->bytes % p->block_length
                            ? "not a whole number of blocks" : NULL;
    if (wrong) {
        fprintf(stderr, NAME ": image %s/%s holds %llu bytes: %s\n", rb->pool,
                rb->image, (unsigned long long)rb->bytes, wrong);
        return SPD_EXIT_USAGE;
    }
    rb->block_length = p->block_length;
    p->block_count = rb->bytes / p->block_length;
    p->unmap_reads_zero = p->unmap_supported;
    if (!(given & SPD_GIVEN_UUID))
        derive_uuid(rb, p->uuid);
    pr_names(rb);
    atomic_init(&rb->seen, rb->bytes);
    rb->watching = !rb->snap &&
                   rbd_update_watch(rb->img, &rb->watch, header_changed, rb) == 0;
    return 0;
}

static int rb_open(void *ctx, spd_params *p, unsigned given)
{
    int status = rb_open_all(ctx, p, given);
    if (status)
        rb_close(ctx, false);
    return status;
}

static void rb_report(void *ctx, FILE *out)
{
    struct rbd *rb = ctx;
    char size[32];
    spd_format_size(rb->bytes, size, sizeof size);
    fprintf(out, "image: %s/%s%s%s, %s, objects of %llu KiB, fast-diff %s; "
            "cluster %s as client.%s\n", rb->pool, rb->image,
            rb->snap ? "@" : "", rb->snap ? rb->snap : "", size,
            (unsigned long long)(rb->object_size >> 10),
            rb->features & RBD_FEATURE_FAST_DIFF ? "on" : "off", rb->fsid,
            rb->id);
}

int main(int argc, char **argv)
{
    static struct rbd rb = { .pool = "rbd", .id = "admin", .timeout = 10 };
    const spd_device device = {
        SPD_DEVICE_INIT,
        .name = NAME,
        .summary = "Serve a Ceph RBD image through librbd.",
        .ops = &rbd_ops,
        .ctx = &rb,
        .size_help = "the image's",
        .uuid_help = "derived from the cluster, pool and image: the same on "
                     "every gateway",
        .default_threads = 0,       /* librbd calls return at once */
        .options = rbd_options,
        .option_count = sizeof rbd_options / sizeof *rbd_options,
        .take = rb_take,
        .open = rb_open,
        .ready = rb_ready,
        .report = rb_report,
        .close = rb_close,
    };
    return spd_main(argc, argv, &device);
}
