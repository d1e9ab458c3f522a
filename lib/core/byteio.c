/*
 * byteio.c - byte-granular I/O on a unit: spd_unit_pread(),
 * spd_unit_pwrite() and spd_unit_pzero() for callers whose offsets and
 * lengths need not fall on block boundaries (the FUSE file, an NBD client
 * that did not ask for block sizes).
 *
 * A range splits into at most three parts: a partial head block, whole
 * blocks, a partial tail block. Whole blocks go to the unit as they are,
 * straight from or into the caller's buffer. A partial block is read
 * into a bounce block, patched and written back; in between, another
 * write of that block would be undone by the write-back. So every write
 * made here holds its blocks (byteio_hold): a read-modify-write
 * exclusively, a whole-block write shared. Two partial writes of one
 * block run one after the other, and a whole-block write racing a
 * partial one lands before its read or after its write-back, never under
 * it. Reads take no hold: a read racing a write may see either, as on
 * any disk.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/byteio.h"
#include "core/unit.h"

/* Bounce blocks are aligned for devices that do O_DIRECT I/O into them. */
#define BYTEIO_ALIGN 4096

/* ------------------------------------------------------------------ */
/* Holds                                                               */
/* ------------------------------------------------------------------ */

static bool holds_conflict(const struct byteio_hold *a,
                           const struct byteio_hold *b)
{
    return (a->exclusive || b->exclusive) &&
           a->lba < b->end && b->lba < a->end;
}

/* Must h wait: does a hold that came before it (taken, or waiting
 * itself) conflict with it? Holds are granted in the order they come, so
 * a stream of partial writes cannot starve a whole-block write nor the
 * other way round. holds_lock held. */
static bool hold_blocked(const spd_unit *unit, const struct byteio_hold *h)
{
    for (const struct byteio_hold *o = unit->holds; o != h; o = o->next)
        if (holds_conflict(o, h))
            return true;
    return false;
}

void byteio_hold(spd_unit *unit, struct byteio_hold *h, uint64_t lba,
                 uint64_t blocks, bool exclusive)
{
    *h = (struct byteio_hold){ .lba = lba, .end = lba + blocks,
                               .exclusive = exclusive };
    pthread_mutex_lock(&unit->holds_lock);
    struct byteio_hold **tail = &unit->holds;
    while (*tail)
        tail = &(*tail)->next;
    *tail = h;
    while (hold_blocked(unit, h))
        pthread_cond_wait(&unit->holds_free, &unit->holds_lock);
    pthread_mutex_unlock(&unit->holds_lock);
}

void byteio_release(spd_unit *unit, struct byteio_hold *h)
{
    pthread_mutex_lock(&unit->holds_lock);
    struct byteio_hold **p = &unit->holds;
    while (*p != h)
        p = &(*p)->next;
    *p = h->next;
    pthread_cond_broadcast(&unit->holds_free);
    pthread_mutex_unlock(&unit->holds_lock);
}

/* ------------------------------------------------------------------ */
/* Block requests                                                      */
/* ------------------------------------------------------------------ */

/* Run a request and wait for it: 0 or -errno. */
static int run(spd_unit *unit, spd_request *req)
{
    spd_unit_run(unit, req);
    return -spd_request_errno(req);
}

static int run_blocks(spd_unit *unit, spd_op op, uint64_t lba,
                      uint64_t blocks, void *buf, bool fua)
{
    spd_request req = { SPD_REQUEST_INIT, .op = op, .lba = lba,
                        .blocks = blocks, .buf = buf, .fua = fua };
    return run(unit, &req);
}

/* ------------------------------------------------------------------ */
/* Ranges in parts                                                     */
/* ------------------------------------------------------------------ */

enum byteio_kind { BYTEIO_READ, BYTEIO_WRITE, BYTEIO_ZERO };

struct byteio {
    spd_unit *unit;
    enum byteio_kind kind;
    uint8_t *buf;               /* the caller's (NULL for ZERO) */
    bool fua;
    uint32_t flags;             /* ZERO: SPD_REQ_* */
    uint8_t *bounce;            /* one block, for partial blocks */
};

/* Bytes [skip, skip + len) of block lba, len below a block. */
static int part_partial(struct byteio *b, uint64_t lba, uint32_t skip,
                        size_t len, uint8_t *data)
{
    spd_unit *unit = b->unit;
    if (b->kind == BYTEIO_READ) {
        int r = run_blocks(unit, SPD_OP_READ, lba, 1, b->bounce, false);
        if (!r)
            memcpy(data, b->bounce + skip, len);
        return r;
    }
    struct byteio_hold h;
    byteio_hold(unit, &h, lba, 1, true);
    int r = run_blocks(unit, SPD_OP_READ, lba, 1, b->bounce, false);
    if (!r) {
        if (data)
            memcpy(b->bounce + skip, data, len);
        else
            memset(b->bounce + skip, 0, len);
        r = run_blocks(unit, SPD_OP_WRITE, lba, 1, b->bounce, b->fua);
    }
    byteio_release(unit, &h);
    return r;
}

static int part_whole(struct byteio *b, uint64_t lba, uint64_t blocks,
                      uint8_t *data)
{
    spd_unit *unit = b->unit;
    if (b->kind == BYTEIO_READ)
        return run_blocks(unit, SPD_OP_READ, lba, blocks, data, false);
    struct byteio_hold h;
    byteio_hold(unit, &h, lba, blocks, false);
    int r;
    if (b->kind == BYTEIO_WRITE) {
        r = run_blocks(unit, SPD_OP_WRITE, lba, blocks, data, b->fua);
    } else {
        spd_request req = { SPD_REQUEST_INIT, .op = SPD_OP_WRITE_ZEROES,
                            .lba = lba, .blocks = blocks, .fua = b->fua,
                            .flags = b->flags };
        r = run(unit, &req);
    }
    byteio_release(unit, &h);
    return r;
}

/*
 * Bytes [off, off + len) in parts, in order. The range is checked first
 * (nothing is done when it is wrong): past the end a write or zero is
 * -ENOSPC and a read -EINVAL, as spd_request_errno() says of blocks.
 */
static int byteio_run(struct byteio *b, uint64_t off, uint64_t len)
{
    const spd_params *p = spd_unit_params(b->unit);
    uint32_t bl = p->block_length;
    uint64_t size = p->block_count * bl;
    if (off > size || len > size - off)
        return b->kind == BYTEIO_READ ? -EINVAL : -ENOSPC;
    if (!len)
        return 0;

    uint64_t end = off + len;
    uint32_t head = off % bl, tail = end % bl;
    bool partial = head || tail;
    /* Only a fast zero will do: a partial block would be written. */
    if (b->kind == BYTEIO_ZERO && partial && (b->flags & SPD_REQ_FAST_ZERO))
        return -ENOTSUP;
    if (partial && posix_memalign((void **)&b->bounce, BYTEIO_ALIGN, bl))
        return -ENOMEM;

    uint8_t *data = b->buf;
    int r = 0;
    if (head) {
        /* The head block, which may also be the tail. */
        size_t n = end - off < bl - head ? end - off : bl - head;
        r = part_partial(b, off / bl, head, n, data);
        off += n;
        data = data ? data + n : NULL;
    }
    uint64_t whole = (end - off) / bl;
    if (!r && whole) {
        r = part_whole(b, off / bl, whole, data);
        off += whole * bl;
        data = data ? data + whole * bl : NULL;
    }
    if (!r && off < end)
        r = part_partial(b, off / bl, 0, end - off, data);
    free(b->bounce);
    return r;
}

int spd_unit_pread(spd_unit *unit, void *buf, size_t len, uint64_t off)
{
    struct byteio b = { .unit = unit, .kind = BYTEIO_READ, .buf = buf };
    return byteio_run(&b, off, len);
}

int spd_unit_pwrite(spd_unit *unit, const void *buf, size_t len,
                    uint64_t off, bool fua)
{
    /* The buffer is only read: part_* copy from it or hand it to WRITE. */
    struct byteio b = { .unit = unit, .kind = BYTEIO_WRITE,
                        .buf = (uint8_t *)buf, .fua = fua };
    return byteio_run(&b, off, len);
}

int spd_unit_pzero(spd_unit *unit, uint64_t len, uint64_t off,
                   uint32_t flags, bool fua)
{
    struct byteio b = { .unit = unit, .kind = BYTEIO_ZERO, .fua = fua,
                        .flags = flags & (SPD_REQ_MAY_UNMAP |
                                          SPD_REQ_FAST_ZERO) };
    return byteio_run(&b, off, len);
}
