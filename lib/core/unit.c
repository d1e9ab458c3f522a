/*
 * unit.c - the unit core: parameters, the registry of units, lifecycle,
 * and block requests (checks, splitting at the max transfer length,
 * completion and the combining of split statuses).
 *
 * Every transport reaches a device through spd_unit_submit(), so range
 * checks, write protection and splitting happen here once; the device's
 * callbacks only ever see in-range pieces of at most max_transfer_length.
 * Block policy lives here too: how to zero a range (unmap or write), FUA
 * for a device that cannot do it (a flush after), allocation status within
 * a call budget, and what a failed request means as an errno.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "util/errmsg.h"
#include "spd/scsi.h"
#include "core/unit.h"

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static spd_unit *registry;
static unsigned registry_numbers;

/* ------------------------------------------------------------------ */
/* Parameters                                                          */
/* ------------------------------------------------------------------ */

static int check_text(const char *field, const char *text, size_t max)
{
    const char *end = memchr(text, '\0', max + 1);
    if (!end)
        return spd_set_error(EINVAL, "%s is longer than %zu characters",
                             field, max);
    for (const char *c = text; c < end; c++)
        if (*c < 0x20 || *c > 0x7e)
            return spd_set_error(EINVAL, "%s has a character that is not "
                                 "printable ASCII", field);
    return 0;
}

/* A physical block is 2^n logical ones, n < 16 (READ CAPACITY(16)'s
 * LBPPBE has four bits). Checked only where the caller has the field. */
static int check_physical(const spd_params *p)
{
    if (p->size < offsetof(spd_params, physical_block_length) +
                  sizeof p->physical_block_length || !p->physical_block_length)
        return 0;
    uint32_t pbl = p->physical_block_length, bl = p->block_length;
    uint32_t ratio = pbl / bl;
    if (pbl % bl || (ratio & (ratio - 1)) || ratio > 1u << 15)
        return spd_set_error(EINVAL, "physical_block_length %u is not "
                             "block_length %u times a power of two up to "
                             "32768", pbl, bl);
    return 0;
}

int spd_params_check(const spd_params *p)
{
    static const uint8_t zero_uuid[16];
    uint32_t bl = p->block_length;
    int r;

    if (p->size < offsetof(spd_params, max_transfer_length) +
                  sizeof p->max_transfer_length)
        return spd_set_error(EINVAL, "spd_params.size is %u: initialise the "
                             "parameters with SPD_PARAMS_INIT", p->size);
    if (!memcmp(p->uuid, zero_uuid, 16))
        return spd_set_error(EINVAL, "uuid is all zeros: give the unit an "
                             "identity (spd_uuid_generate)");
    if (bl < 512 || bl > 65536 || (bl & (bl - 1)))
        return spd_set_error(EINVAL, "block_length %u is not a power of two "
                             "from 512 to 65536", bl);
    if (p->block_count == 0)
        return spd_set_error(EINVAL, "block_count is 0: a unit needs at "
                             "least one block");
    if (p->block_count > UINT64_MAX / bl)
        return spd_set_error(EINVAL, "block_count %llu of %u bytes exceeds "
                             "2^64 bytes", (unsigned long long)p->block_count,
                             bl);
    if ((r = check_text("product_id", p->product_id, SPD_PRODUCT_ID_MAX)) ||
        (r = check_text("product_revision", p->product_revision,
                        SPD_PRODUCT_REVISION_MAX)))
        return r;
    if (p->unmap_reads_zero && !p->unmap_supported)
        return spd_set_error(EINVAL, "unmap_reads_zero needs "
                             "unmap_supported");
    if (p->max_transfer_length % bl)
        return spd_set_error(EINVAL, "max_transfer_length %u is not a "
                             "multiple of block_length %u",
                             p->max_transfer_length, bl);
    if ((r = check_physical(p)))
        return r;
    return scsi_port_groups_check(p);
}

static int check_ops(const spd_ops *ops, const spd_params *p)
{
    if (ops->size < offsetof(spd_ops, unmap) + sizeof ops->unmap)
        return spd_set_error(EINVAL, "spd_ops.size is %u: initialise the "
                             "operations with SPD_OPS_INIT", ops->size);
    /* Members after extent exist only in a device built with them. */
    bool lends = ops->size >= offsetof(spd_ops, write_lend) +
                              sizeof ops->write_lend;
    if (!ops->read && !(lends && ops->read_lend))
        return spd_set_error(EINVAL, "spd_ops.read (or read_lend) is "
                             "required");
    if (!ops->write && !(lends && ops->write_lend) && !p->write_protected)
        return spd_set_error(EINVAL, "spd_ops.write (or write_lend) is "
                             "required unless the unit is write protected");
    if (!ops->unmap && p->unmap_supported)
        return spd_set_error(EINVAL, "spd_ops.unmap is required with "
                             "unmap_supported");
    bool has_pr = ops->size >= offsetof(spd_ops, pr_update) +
                               sizeof ops->pr_update;
    if (has_pr && !ops->pr_load != !ops->pr_update)
        return spd_set_error(EINVAL, "spd_ops.pr_load and pr_update go "
                             "together");
    return 0;
}

/* ------------------------------------------------------------------ */
/* Registry and lifecycle                                              */
/* ------------------------------------------------------------------ */

static int registry_add(spd_unit *unit)
{
    int r = 0;
    pthread_mutex_lock(&registry_lock);
    for (spd_unit *u = registry; u; u = u->registry_next) {
        if (!memcmp(u->params.uuid, unit->params.uuid, 16)) {
            char text[37];
            spd_uuid_format(unit->params.uuid, text);
            r = spd_set_error(EEXIST, "a unit with uuid %s already exists "
                              "in this process", text);
            goto out;
        }
    }
    unit->number = registry_numbers++;
    unit->registry_next = registry;
    registry = unit;
out:
    pthread_mutex_unlock(&registry_lock);
    return r;
}

static void registry_remove(spd_unit *unit)
{
    pthread_mutex_lock(&registry_lock);
    for (spd_unit **p = &registry; *p; p = &(*p)->registry_next) {
        if (*p == unit) {
            *p = unit->registry_next;
            break;
        }
    }
    pthread_mutex_unlock(&registry_lock);
}

spd_unit *spd_unit_create(const spd_params *params, const spd_ops *ops,
                          void *ctx)
{
    if (!params || !ops) {
        spd_set_error(EINVAL, "spd_unit_create: params and ops are required");
        return NULL;
    }
    if (spd_params_check(params) || check_ops(ops, params))
        return NULL;

    spd_unit *unit = calloc(1, sizeof *unit);
    if (!unit) {
        spd_set_error(ENOMEM, "spd_unit_create: out of memory");
        return NULL;
    }
    /* Fields the caller was not built with stay zero. */
    memcpy(&unit->params, params, params->size < sizeof unit->params
                                  ? params->size : sizeof unit->params);
    unit->params.size = sizeof unit->params;
    if (!unit->params.physical_block_length)
        unit->params.physical_block_length = params->block_length;
    if (!unit->params.max_transfer_length)
        unit->params.max_transfer_length =
            params->block_length > SPD_DEFAULT_MAX_TRANSFER
                ? params->block_length : SPD_DEFAULT_MAX_TRANSFER;
    /* Fields the device was not built with stay zero (NULL). */
    memcpy(&unit->ops, ops,
           ops->size < sizeof unit->ops ? ops->size : sizeof unit->ops);
    unit->ctx = ctx;
    unit->max_blocks = unit->params.max_transfer_length /
                       unit->params.block_length;
    scsi_lu_init(&unit->lu, &unit->params, unit->max_blocks);
    struct scsi_pr_store store = { unit->ops.pr_load, unit->ops.pr_update,
                                   ctx };
    scsi_pr_share(&unit->lu, unit->ops.pr_load ? &store : NULL);
    pthread_mutex_init(&unit->lock, NULL);
    pthread_mutex_init(&unit->ops_lock, NULL);
    pthread_cond_init(&unit->work, NULL);
    pthread_cond_init(&unit->idle, NULL);
    pthread_mutex_init(&unit->holds_lock, NULL);
    pthread_cond_init(&unit->holds_free, NULL);
    if (registry_add(unit)) {
        int saved = errno;
        pthread_mutex_destroy(&unit->lock);
        pthread_mutex_destroy(&unit->ops_lock);
        pthread_cond_destroy(&unit->work);
        pthread_cond_destroy(&unit->idle);
        pthread_mutex_destroy(&unit->holds_lock);
        pthread_cond_destroy(&unit->holds_free);
        scsi_pr_fini(&unit->lu);
        scsi_lu_fini(&unit->lu);
        free(unit);
        errno = saved;
        return NULL;
    }
    return unit;
}

int spd_unit_start(spd_unit *unit, unsigned threads)
{
    return dispatch_start(unit, threads);
}

void spd_unit_shutdown(spd_unit *unit)
{
    spd_status not_ready;
    unit_not_ready(&not_ready);

    pthread_mutex_lock(&unit->lock);
    bool first = !unit->stopping;
    unit->stopping = true;
    struct spd_io *queued = dispatch_take_queue(unit);
    pthread_cond_broadcast(&unit->work);
    pthread_cond_broadcast(&unit->idle);
    pthread_mutex_unlock(&unit->lock);

    /* Fail what no device call has started, outside the lock: completion
     * runs the submitters' callbacks. */
    while (first && queued) {
        struct spd_io *io = queued;
        queued = io->next;
        unit_fail_io(io, &not_ready);
    }
}

void spd_unit_wait(spd_unit *unit)
{
    pthread_mutex_lock(&unit->lock);
    while (!unit->stopping || unit->inflight)
        pthread_cond_wait(&unit->idle, &unit->lock);
    pthread_mutex_unlock(&unit->lock);
    dispatch_join(unit);
}

void spd_unit_destroy(spd_unit *unit)
{
    if (!unit)
        return;
    spd_unit_shutdown(unit);
    spd_unit_wait(unit);
    registry_remove(unit);
    pthread_mutex_destroy(&unit->lock);
    pthread_mutex_destroy(&unit->ops_lock);
    pthread_cond_destroy(&unit->work);
    pthread_cond_destroy(&unit->idle);
    pthread_mutex_destroy(&unit->holds_lock);
    pthread_cond_destroy(&unit->holds_free);
    scsi_pr_fini(&unit->lu);
    scsi_lu_fini(&unit->lu);
    free(unit);
}

const spd_params *spd_unit_params(const spd_unit *unit)
{
    return &unit->params;
}

int spd_unit_resize(spd_unit *unit, uint64_t block_count)
{
    if (!unit)
        return spd_set_error(EINVAL, "no unit");
    uint32_t bl = unit->params.block_length;
    if (block_count == 0 || block_count > UINT64_MAX / bl)
        return spd_set_error(EINVAL, "block_count %llu: from 1 to 2^64 bytes "
                             "of %u-byte blocks",
                             (unsigned long long)block_count, bl);
    if (__atomic_exchange_n(&unit->params.block_count, block_count,
                            __ATOMIC_RELAXED) != block_count)
        scsi_lu_capacity_changed(&unit->lu);
    return 0;
}

int spd_unit_set_alua(spd_unit *unit, const char *states)
{
    if (!unit || !states)
        return spd_set_error(EINVAL, "spd_unit_set_alua: unit and states "
                             "are required");
    return scsi_lu_set_alua(&unit->lu, &unit->params, states);
}

void spd_unit_reservations_changed(spd_unit *unit)
{
    if (unit)
        scsi_pr_changed(&unit->lu);
}

bool spd_unit_lends_memory(const spd_unit *unit)
{
    return unit->ops.read_lend || unit->ops.write_lend;
}

void *spd_unit_context(const spd_unit *unit)
{
    return unit->ctx;
}

bool unit_begin(spd_unit *unit)
{
    pthread_mutex_lock(&unit->lock);
    bool open = !unit->stopping;
    unit->inflight += open;
    pthread_mutex_unlock(&unit->lock);
    return open;
}

void unit_end(spd_unit *unit)
{
    pthread_mutex_lock(&unit->lock);
    if (--unit->inflight == 0 && unit->stopping)
        pthread_cond_broadcast(&unit->idle);
    pthread_mutex_unlock(&unit->lock);
}

void unit_not_ready(spd_status *status)
{
    /* SPC-4: LOGICAL UNIT NOT READY, CAUSE NOT REPORTABLE. */
    spd_status_set_sense(status, SPD_KEY_NOT_READY,
                         SPD_ASC(SPD_ASC_LUN_NOT_READY),
                         SPD_ASCQ(SPD_ASC_LUN_NOT_READY));
}

/* ------------------------------------------------------------------ */
/* Statuses                                                            */
/* ------------------------------------------------------------------ */

static void set_sense(spd_status *st, uint8_t key, uint16_t asc)
{
    spd_status_set_sense(st, key, SPD_ASC(asc), SPD_ASCQ(asc));
}

/* The one mapping from a device's -errno to sense (documented in spd.h). */
static void status_from_errno(spd_status *st, int err, spd_op op)
{
    switch (err) {
    case EIO:
        set_sense(st, SPD_KEY_MEDIUM_ERROR,
                  op == SPD_OP_READ || op == SPD_OP_EXTENTS
                  ? SPD_ASC_UNRECOVERED_READ_ERROR : SPD_ASC_WRITE_ERROR);
        break;
    case EROFS:
    case EPERM:
        set_sense(st, SPD_KEY_DATA_PROTECT, SPD_ASC_WRITE_PROTECTED);
        break;
    case ENOSPC:
        set_sense(st, SPD_KEY_DATA_PROTECT, SPD_ASC_SPACE_ALLOCATION_FAILED);
        break;
    default:
        set_sense(st, SPD_KEY_HARDWARE_ERROR, SPD_ASC_INTERNAL_TARGET_FAILURE);
        break;
    }
}

int spd_status_errno(const spd_status *st)
{
    if (spd_status_good(st))
        return 0;
    switch (st->sense_key) {
    case SPD_KEY_DATA_PROTECT:
        return st->asc == SPD_ASC(SPD_ASC_SPACE_ALLOCATION_FAILED) &&
               st->ascq == SPD_ASCQ(SPD_ASC_SPACE_ALLOCATION_FAILED)
               ? ENOSPC : EROFS;
    case SPD_KEY_ILLEGAL_REQUEST:
        return EINVAL;
    case SPD_KEY_NOT_READY:
        return ESHUTDOWN;
    default:
        return EIO;
    }
}

static bool status_is(const spd_status *st, uint8_t key, uint16_t asc)
{
    return st->scsi_status == SPD_STATUS_CHECK_CONDITION &&
           st->sense_key == key && st->asc == SPD_ASC(asc) &&
           st->ascq == SPD_ASCQ(asc);
}

/* A fast zero refused (see request_check): how the status says it. */
#define FAST_ZERO_REFUSED SPD_ASC_INVALID_FIELD_IN_CDB

int spd_request_errno(const spd_request *req)
{
    const spd_status *st = &req->status;
    bool writes = req->op == SPD_OP_WRITE || req->op == SPD_OP_WRITE_SAME ||
                  req->op == SPD_OP_WRITE_ZEROES;

    if (status_is(st, SPD_KEY_ILLEGAL_REQUEST, SPD_ASC_LBA_OUT_OF_RANGE))
        return writes ? ENOSPC : EINVAL;
    if (status_is(st, SPD_KEY_ILLEGAL_REQUEST,
                  SPD_ASC_INVALID_COMMAND_OPERATION_CODE))
        return EOPNOTSUPP;
    if (req->op == SPD_OP_WRITE_ZEROES && (req->flags & SPD_REQ_FAST_ZERO) &&
        status_is(st, SPD_KEY_ILLEGAL_REQUEST, FAST_ZERO_REFUSED))
        return ENOTSUP;
    return spd_status_errno(st);
}

static bool range_ok(const spd_unit *unit, uint64_t lba, uint64_t blocks)
{
    /* Atomic: spd_unit_resize() may change it meanwhile. */
    uint64_t count = __atomic_load_n(&unit->params.block_count,
                                     __ATOMIC_RELAXED);
    return lba < count && blocks <= count - lba;
}

/* WRITE_ZEROES may unmap instead of writing: when the submitter allows it
 * and unmapped blocks read back as zeros. */
static bool zero_by_unmap(const spd_unit *unit, const spd_request *req)
{
    return req->op == SPD_OP_WRITE_ZEROES &&
           (req->flags & SPD_REQ_MAY_UNMAP) && unit->params.unmap_reads_zero;
}

/* Check a request against the unit; false with *st set when it must fail. */
static bool request_check(const spd_unit *unit, const spd_request *req,
                          spd_status *st)
{
    const spd_params *p = &unit->params;
    bool writes = req->op == SPD_OP_WRITE || req->op == SPD_OP_WRITE_SAME ||
                  req->op == SPD_OP_UNMAP || req->op == SPD_OP_WRITE_ZEROES;
    uint32_t flags = req->op == SPD_OP_WRITE_ZEROES
                     ? SPD_REQ_MAY_UNMAP | SPD_REQ_FAST_ZERO : 0;

    if (req->op > SPD_OP_EXTENTS ||
        (req->op == SPD_OP_UNMAP && !p->unmap_supported)) {
        set_sense(st, SPD_KEY_ILLEGAL_REQUEST,
                  SPD_ASC_INVALID_COMMAND_OPERATION_CODE);
        return false;
    }
    if ((req->flags & ~flags) ||
        (req->op == SPD_OP_EXTENTS && (!req->extents || !req->extent_max))) {
        set_sense(st, SPD_KEY_ILLEGAL_REQUEST, SPD_ASC_INVALID_FIELD_IN_CDB);
        return false;
    }
    if (writes && p->write_protected) {
        set_sense(st, SPD_KEY_DATA_PROTECT, SPD_ASC_WRITE_PROTECTED);
        return false;
    }
    bool in_range = true;
    if (req->op == SPD_OP_UNMAP) {
        for (uint32_t i = 0; i < req->desc_count && in_range; i++)
            in_range = range_ok(unit, req->descs[i].lba, req->descs[i].blocks);
    } else {
        in_range = range_ok(unit, req->lba, req->blocks);
    }
    if (!in_range) {
        set_sense(st, SPD_KEY_ILLEGAL_REQUEST, SPD_ASC_LBA_OUT_OF_RANGE);
        return false;
    }
    /* Writing zeros block by block is not the fast zeroing asked for. */
    if (req->op == SPD_OP_WRITE_ZEROES && (req->flags & SPD_REQ_FAST_ZERO) &&
        !zero_by_unmap(unit, req)) {
        set_sense(st, SPD_KEY_ILLEGAL_REQUEST, FAST_ZERO_REFUSED);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* Requests and their ios                                              */
/* ------------------------------------------------------------------ */

/* Pieces of one request in the device at once. A request's memory is
 * bounded by this, not by its size: a WRITE SAME may cover 2^32 blocks, a
 * device may take one block per call. */
#define UNIT_WINDOW 32

/* A request in flight: the pieces it is split into (issued through a
 * window of io slots), and their outcome. All fields but req, pieces and
 * pattern are guarded by unit->lock. */
struct request_track {
    spd_request *req;
    uint64_t pieces;                /* device calls the request takes */
    uint64_t next;                  /* the next piece to issue */
    uint64_t done;                  /* pieces complete */
    uint64_t failed_index;          /* first failed piece so far */
    bool issuing;                   /* a thread is in track_issue() */
    bool by_unmap;                  /* WRITE_ZEROES: pieces unmap */
    bool flush_after;               /* FUA the device does not do itself */
    struct spd_io *free;            /* slots not in use, linked by next */
    void *pattern;                  /* WRITE_SAME/ZEROES: a chunk of it */
    struct spd_io ios[];            /* min(pieces, UNIT_WINDOW) slots */
};

static void request_done(spd_unit *unit, spd_request *req)
{
    log_request(unit, req);
    req->done(req);
    unit_end(unit);
}

/* Blocks one unmap piece of a WRITE_ZEROES covers (spd_unmap_desc). */
#define UNMAP_PIECE UINT32_MAX

/* How many device calls a request takes. */
static uint64_t request_io_count(const spd_unit *unit, const spd_request *req)
{
    uint64_t total = 0;
    switch (req->op) {
    case SPD_OP_WRITE_ZEROES:
        if (zero_by_unmap(unit, req))
            return req->blocks / UNMAP_PIECE + (req->blocks % UNMAP_PIECE != 0);
        /* fall through */
    case SPD_OP_READ:
    case SPD_OP_WRITE:
    case SPD_OP_WRITE_SAME:
        return req->blocks / unit->max_blocks +
               (req->blocks % unit->max_blocks != 0);
    case SPD_OP_EXTENTS:
        return req->blocks ? 1 : 0;
    case SPD_OP_FLUSH:
        return unit->ops.flush ? 1 : 0;
    case SPD_OP_UNMAP:
        for (uint32_t i = 0; i < req->desc_count; i++)
            total += req->descs[i].blocks;
        return total ? 1 : 0;
    }
    return 0;
}

/* A chunk-sized buffer holding WRITE SAME's block over and over, or
 * zeros for WRITE_ZEROES: the one zero buffer every transport's zeroing
 * uses. */
static void *pattern_fill(const spd_unit *unit, const spd_request *req)
{
    size_t bl = unit->params.block_length;
    uint64_t blocks = req->blocks < unit->max_blocks ? req->blocks
                                                      : unit->max_blocks;
    if (req->op == SPD_OP_WRITE_ZEROES)
        return calloc(blocks, bl);
    uint8_t *pattern = malloc(blocks * bl);
    for (uint64_t i = 0; pattern && i < blocks; i++)
        memcpy(pattern + i * bl, req->buf, bl);
    return pattern;
}

/* FUA, handled here once: an unmap cannot carry it, and a device without
 * SPD_OPS_FUA gets plain writes; either way a flush follows. */
static bool needs_flush_after(const spd_unit *unit, const spd_request *req,
                              bool by_unmap)
{
    if (!req->fua || !unit->ops.flush)
        return false;
    switch (req->op) {
    case SPD_OP_UNMAP:
        return true;
    case SPD_OP_WRITE_ZEROES:
        if (by_unmap)
            return true;
        /* fall through */
    case SPD_OP_WRITE:
    case SPD_OP_WRITE_SAME:
        return !(unit->ops.flags & SPD_OPS_FUA);
    default:
        return false;
    }
}

static struct request_track *track_new(spd_unit *unit, spd_request *req,
                                       uint64_t pieces)
{
    size_t slots = pieces < UNIT_WINDOW ? (size_t)pieces : UNIT_WINDOW;
    struct request_track *t = calloc(1, sizeof *t + slots * sizeof t->ios[0]);
    if (!t)
        return NULL;
    t->req = req;
    t->pieces = pieces;
    t->failed_index = UINT64_MAX;
    t->by_unmap = zero_by_unmap(unit, req);
    t->flush_after = needs_flush_after(unit, req, t->by_unmap);
    if ((req->op == SPD_OP_WRITE_SAME ||
         (req->op == SPD_OP_WRITE_ZEROES && !t->by_unmap)) &&
        !(t->pattern = pattern_fill(unit, req))) {
        free(t);
        return NULL;
    }
    for (size_t i = 0; i < slots; i++) {
        t->ios[i].next = t->free;
        t->free = &t->ios[i];
    }
    return t;
}

/* Set up slot io as piece i of the request. */
static void piece_init(spd_unit *unit, struct request_track *t,
                       struct spd_io *io, uint64_t i)
{
    spd_request *req = t->req;
    size_t bl = unit->params.block_length;
    uint64_t offset = i * unit->max_blocks;
    uint64_t left = req->blocks - offset;
    *io = (struct spd_io){
        .unit = unit, .track = t, .index = i, .op = req->op,
        .fua = req->fua && (unit->ops.flags & SPD_OPS_FUA),
        .lba = req->lba + offset,
        .blocks = (uint32_t)(left < unit->max_blocks ? left
                                                     : unit->max_blocks),
    };
    switch (req->op) {
    case SPD_OP_READ:
    case SPD_OP_WRITE:
        io->buf = (uint8_t *)req->buf + offset * bl;
        break;
    case SPD_OP_WRITE_ZEROES:
        if (t->by_unmap) {
            offset = i * UNMAP_PIECE;
            left = req->blocks - offset;
            io->op = SPD_OP_UNMAP;
            io->fua = false;
            io->desc = (spd_unmap_desc){ .lba = req->lba + offset,
                .blocks = (uint32_t)(left < UNMAP_PIECE ? left : UNMAP_PIECE) };
            io->descs = &io->desc;
            io->desc_count = 1;
            io->lba = io->blocks = 0;
            break;
        }
        /* fall through */
    case SPD_OP_WRITE_SAME:
        io->op = SPD_OP_WRITE;
        io->buf = t->pattern;
        break;
    case SPD_OP_EXTENTS:
        io->fua = false;
        break;
    case SPD_OP_FLUSH:
        io->lba = req->lba;
        /* Ranges beyond a uint32_t flush to the end: more, never less. */
        io->blocks = req->blocks > UINT32_MAX ? 0 : (uint32_t)req->blocks;
        break;
    case SPD_OP_UNMAP:
        io->descs = req->descs;
        io->desc_count = req->desc_count;
        break;
    }
}

/* The range a request touched, as a flush's lba and blocks (0: to the
 * end). */
static void request_span(const spd_request *req, uint64_t *lba,
                         uint32_t *blocks)
{
    uint64_t first = req->lba, end = req->lba + req->blocks;
    if (req->op == SPD_OP_UNMAP) {
        first = UINT64_MAX, end = 0;
        for (uint32_t i = 0; i < req->desc_count; i++) {
            const spd_unmap_desc *d = &req->descs[i];
            if (d->lba < first)
                first = d->lba;
            if (d->lba + d->blocks > end)
                end = d->lba + d->blocks;
        }
    }
    *lba = first;
    *blocks = end - first > UINT32_MAX ? 0 : (uint32_t)(end - first);
}

/* After a good FUA write the device could not make stable itself: one
 * more piece, a flush of the range, in a slot now free. False when there
 * is nothing to flush. */
static bool track_flush_after(spd_unit *unit, struct request_track *t)
{
    if (!t->flush_after || !spd_status_good(&t->req->status))
        return false;
    t->flush_after = false;
    struct spd_io *io = t->free;
    pthread_mutex_lock(&unit->lock);
    t->free = io->next;
    t->pieces++;
    t->next++;
    pthread_mutex_unlock(&unit->lock);
    *io = (struct spd_io){ .unit = unit, .track = t, .index = t->pieces - 1,
                           .op = SPD_OP_FLUSH };
    request_span(t->req, &io->lba, &io->blocks);
    dispatch_io(unit, io);
    return true;
}

static void track_finish(spd_unit *unit, struct request_track *t)
{
    spd_request *req = t->req;
    if (track_flush_after(unit, t))
        return;
    free(t->pattern);
    free(t);
    request_done(unit, req);
}

/* Issue pieces while slots are free. One thread at a time: an io that
 * completes inside its device call, or on another thread meanwhile, only
 * returns its slot, and this loop reuses it, so completions never recurse.
 * Whoever sees the last piece done with nobody issuing completes the
 * request. */
static void track_issue(spd_unit *unit, struct request_track *t)
{
    pthread_mutex_lock(&unit->lock);
    if (t->issuing) {
        pthread_mutex_unlock(&unit->lock);
        return;
    }
    t->issuing = true;
    while (t->next < t->pieces) {
        if (unit->stopping) {
            /* Pieces never started fail at once, as queued ones do. */
            if (t->next < t->failed_index) {
                t->failed_index = t->next;
                unit_not_ready(&t->req->status);
            }
            t->done += t->pieces - t->next;
            t->next = t->pieces;
            break;
        }
        struct spd_io *io = t->free;
        if (!io)
            break;
        t->free = io->next;
        uint64_t i = t->next++;
        pthread_mutex_unlock(&unit->lock);
        piece_init(unit, t, io, i);
        dispatch_io(unit, io);
        pthread_mutex_lock(&unit->lock);
    }
    t->issuing = false;
    bool last = t->done == t->pieces;
    pthread_mutex_unlock(&unit->lock);
    if (last)
        track_finish(unit, t);
}

void spd_unit_submit(spd_unit *unit, spd_request *req)
{
    req->status = (spd_status){ 0 };
    if (req->size >= sizeof *req && req->op == SPD_OP_EXTENTS)
        req->extent_count = 0;
    if (req->size < offsetof(spd_request, copy)) {
        /* Built against other headers: nothing in it can be trusted
         * beyond the fields every version has. */
        set_sense(&req->status, SPD_KEY_ILLEGAL_REQUEST,
                  SPD_ASC_INVALID_FIELD_IN_CDB);
        req->done(req);
        return;
    }
    if (!unit_begin(unit)) {
        unit_not_ready(&req->status);
        log_request(unit, req);
        req->done(req);
        return;
    }
    if (!request_check(unit, req, &req->status)) {
        request_done(unit, req);
        return;
    }
    uint64_t pieces = request_io_count(unit, req);
    if (pieces == 0) {
        request_done(unit, req);
        return;
    }
    struct request_track *t = track_new(unit, req, pieces);
    if (!t) {
        status_from_errno(&req->status, ENOMEM, req->op);
        request_done(unit, req);
        return;
    }
    track_issue(unit, t);
}

/* Record a piece's outcome and return its slot: the next piece goes out
 * in it, or the request completes. */
static void io_finish(struct spd_io *io)
{
    struct request_track *t = io->track;
    spd_unit *unit = io->unit;

    pthread_mutex_lock(&unit->lock);
    /* A split request reports its first failing piece. */
    if (!spd_status_good(&io->status) && io->index < t->failed_index) {
        t->failed_index = io->index;
        t->req->status = io->status;
    }
    t->done++;
    io->next = t->free;
    t->free = io;
    bool last = !t->issuing && t->done == t->pieces;
    bool more = !t->issuing && t->next < t->pieces;
    pthread_mutex_unlock(&unit->lock);
    if (last)
        track_finish(unit, t);
    else if (more)
        track_issue(unit, t);
}

void unit_fail_io(struct spd_io *io, const spd_status *status)
{
    io->status = *status;
    io_finish(io);
}

/* The allocation status of the request's range, merged runs into its
 * extents, within SPD_EXTENT_CALLS device calls. On the dispatcher like
 * any device call, so a serial device never sees extent beside another
 * call. SPD_OK, or a -errno when not even the first run is known. */
static int run_extents(spd_unit *unit, spd_request *req)
{
    uint64_t lba = req->lba, end = req->lba + req->blocks;
    unsigned calls = SPD_EXTENT_CALLS;
    uint32_t n = 0;

    if (!unit->ops.extent) {
        req->extents[0] = (spd_extent){ .blocks = req->blocks, .mapped = true };
        req->extent_count = 1;
        return SPD_OK;
    }
    while (lba < end && calls--) {
        uint64_t left = end - lba;
        uint32_t want = left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
        bool mapped = true;
        int64_t run = unit->ops.extent(unit->ctx, lba, want, &mapped);
        if (run <= 0) {
            if (n)
                break;
            return run < 0 && run >= -4095 ? (int)run : -EIO;
        }
        /* Keep a device's mistake from overrunning the range. */
        if (run > want)
            run = want;
        if (n && req->extents[n - 1].mapped == mapped)
            req->extents[n - 1].blocks += (uint64_t)run;
        else if (n == req->extent_max)
            break;
        else
            req->extents[n++] = (spd_extent){ .blocks = (uint64_t)run,
                                              .mapped = mapped };
        lba += (uint64_t)run;
    }
    req->extent_count = n;
    return SPD_OK;
}

typedef int copy_fn(spd_request *req, uint64_t offset, const struct iovec *iov,
                    unsigned count);

/* The request's copy(), for a READ or WRITE that has one (requests from
 * before it end earlier). */
static copy_fn *copy_of(const spd_request *req)
{
    if (req->op != SPD_OP_READ && req->op != SPD_OP_WRITE)
        return NULL;
    return req->size >= offsetof(spd_request, copy) + sizeof req->copy
               ? req->copy : NULL;
}

/* Where the piece starts in its request's data. */
static uint64_t piece_offset(const struct spd_io *io)
{
    return (io->lba - io->track->req->lba) * io->unit->params.block_length;
}

static uint64_t piece_bytes(const struct spd_io *io)
{
    return (uint64_t)io->blocks * io->unit->params.block_length;
}

/* The request's copy() of the piece's data from offset in the piece: 0, or
 * -errno (a positive result is no errno: EIO). */
static int piece_copy(struct spd_io *io, uint64_t offset,
                      const struct iovec *iov, unsigned count)
{
    spd_request *req = io->track->req;
    int r = req->copy(req, piece_offset(io) + offset, iov, count);
    return r > 0 ? -EIO : r;
}

/* A piece whose device call uses buf, of a request that copies its data
 * itself: from buf after a good read, into buf before a write. */
static int copy_buf(struct spd_io *io)
{
    struct iovec v = { io->buf, (size_t)piece_bytes(io) };
    return piece_copy(io, 0, &v, 1);
}

/* From a lend: the next pieces of the data, into or out of the device's
 * memory. */
int spd_io_lend(spd_io *io, const struct iovec *iov, unsigned count)
{
    uint64_t len = 0;
    for (unsigned i = 0; i < count; i++)
        len += iov[i].iov_len;
    bool read = io->op == SPD_OP_READ;
    if ((!read && io->op != SPD_OP_WRITE) || io->copy_buf ||
        io->lent + len > piece_bytes(io))
        return -EINVAL;   /* not from a lend, or past the io's blocks */
    if (copy_of(io->track->req)) {
        int r = piece_copy(io, io->lent, iov, count);
        if (r)
            return r;
    } else {
        uint8_t *at = (uint8_t *)io->buf + io->lent;
        for (unsigned i = 0; i < count; i++) {
            if (read)
                memcpy(at, iov[i].iov_base, iov[i].iov_len);
            else
                memcpy(iov[i].iov_base, at, iov[i].iov_len);
            at += iov[i].iov_len;
        }
    }
    io->lent += len;
    return 0;
}

/* A read or write piece: on memory the device lends where that saves its
 * copy (the request copies the data itself) or where it has no read or
 * write, else with buf (and the request's copy from or into it). */
static int run_data(spd_unit *unit, struct spd_io *io)
{
    const spd_ops *ops = &unit->ops;
    bool read = io->op == SPD_OP_READ;
    int (*lend)(void *, spd_io *, uint64_t, uint32_t) =
        read ? ops->read_lend : ops->write_lend;
    bool plain = read ? ops->read != NULL : ops->write != NULL;
    bool copies = copy_of(io->track->req) != NULL;
    if (lend && (!plain || (copies && !io->fua))) {
        io->lent = 0;
        int r = lend(unit->ctx, io, io->lba, io->blocks);
        if (r == SPD_OK && io->lent != piece_bytes(io))
            r = -EFAULT;   /* the device lent less: its bug */
        return r;
    }
    io->copy_buf = copies;
    if (read)
        return ops->read(unit->ctx, io, io->buf, io->lba, io->blocks,
                         io->fua);
    int r = copies ? copy_buf(io) : SPD_OK;
    return r ? r : ops->write(unit->ctx, io, io->buf, io->lba, io->blocks,
                              io->fua);
}

void unit_run_io(struct spd_io *io)
{
    spd_unit *unit = io->unit;
    const spd_ops *ops = &unit->ops;
    bool serial = !(ops->flags & SPD_OPS_PARALLEL);
    int r = -EINVAL;

    if (serial)
        pthread_mutex_lock(&unit->ops_lock);
    switch (io->op) {
    case SPD_OP_READ:
    case SPD_OP_WRITE:
    case SPD_OP_WRITE_SAME:
        r = run_data(unit, io);
        break;
    case SPD_OP_FLUSH:
        r = ops->flush(unit->ctx, io, io->lba, io->blocks);
        break;
    case SPD_OP_UNMAP:
        r = ops->unmap(unit->ctx, io, io->descs, io->desc_count);
        break;
    case SPD_OP_EXTENTS:
        r = run_extents(unit, io->track->req);
        break;
    case SPD_OP_WRITE_ZEROES:
        break;
    }
    if (serial)
        pthread_mutex_unlock(&unit->ops_lock);
    /* After SPD_PENDING the io is the device's: it may be complete already. */
    if (r != SPD_PENDING)
        spd_io_complete(io, r);
}

void spd_io_complete(spd_io *io, int result)
{
    if (result == SPD_OK && io->copy_buf && io->op == SPD_OP_READ)
        result = copy_buf(io);
    if (result == SPD_OK)
        io->status = (spd_status){ 0 };
    else if (result < 0)
        status_from_errno(&io->status, -result, io->op);
    else if (result != SPD_CHECK ||
             io->status.scsi_status != SPD_STATUS_CHECK_CONDITION)
        /* SPD_CHECK without sense, or a stray value: the device's bug. */
        set_sense(&io->status, SPD_KEY_HARDWARE_ERROR,
                  SPD_ASC_INTERNAL_TARGET_FAILURE);
    io_finish(io);
}

int spd_io_set_sense(spd_io *io, uint8_t key, uint8_t asc, uint8_t ascq,
                     bool info_valid, uint64_t information)
{
    spd_status_set_sense(&io->status, key, asc, ascq);
    if (info_valid)
        spd_status_set_info(&io->status, information);
    return SPD_CHECK;
}

spd_unit *spd_io_unit(spd_io *io)
{
    return io->unit;
}

/* ------------------------------------------------------------------ */
/* Synchronous use                                                     */
/* ------------------------------------------------------------------ */

struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
};

static void waiter_init(struct waiter *w)
{
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    w->done = false;
}

static void waiter_signal(struct waiter *w)
{
    pthread_mutex_lock(&w->lock);
    w->done = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static void waiter_wait(struct waiter *w)
{
    pthread_mutex_lock(&w->lock);
    while (!w->done)
        pthread_cond_wait(&w->cond, &w->lock);
    pthread_mutex_unlock(&w->lock);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
}

static void run_request_done(spd_request *req)
{
    waiter_signal(req->opaque);
}

spd_status spd_unit_run(spd_unit *unit, spd_request *req)
{
    struct waiter w;
    waiter_init(&w);
    req->done = run_request_done;
    req->opaque = &w;
    spd_unit_submit(unit, req);
    waiter_wait(&w);
    return req->status;
}

static void run_scsi_done(spd_scsi_cmd *cmd)
{
    waiter_signal(cmd->opaque);
}

int spd_unit_scsi_run(spd_unit *unit, spd_scsi_cmd *cmd)
{
    struct waiter w;
    waiter_init(&w);
    cmd->done = run_scsi_done;
    cmd->opaque = &w;
    spd_unit_scsi(unit, cmd);
    waiter_wait(&w);
    return cmd->scsi_status;
}

int64_t spd_unit_extent(spd_unit *unit, uint64_t lba, uint32_t blocks,
                        bool *mapped)
{
    spd_extent extent;
    spd_request req = { SPD_REQUEST_INIT, .op = SPD_OP_EXTENTS, .lba = lba,
                        .blocks = blocks, .extents = &extent,
                        .extent_max = 1 };
    if (!blocks || !range_ok(unit, lba, blocks))
        return -EINVAL;
    spd_status st = spd_unit_run(unit, &req);
    if (!spd_status_good(&st) || !req.extent_count)
        return spd_status_errno(&st) == ESHUTDOWN ? -ESHUTDOWN : -EIO;
    *mapped = extent.mapped;
    return (int64_t)extent.blocks;
}
