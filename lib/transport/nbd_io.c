/*
 * nbd_io.c - NBD transmission: parse requests in batches from a receive
 * buffer, check them, hand them to the unit core, and send the replies in
 * completion order, many per system call.
 *
 * The connection thread reads; a request completes on whatever thread the
 * device finished it (often the connection thread itself, with no
 * dispatcher). Replies go through the connection's send queue (conn.h).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "util/bytes.h"
#include "core/byteio.h"
#include "transport/nbd_int.h"
#include "spd/scsi.h"

#define NBD_REQUEST_SIZE 28
/* At most this many extents in one block status reply. */
#define NBD_MAX_EXTENTS 1024
/* A block status request's data: the reply's extents, then the unit's. */
#define NBD_EXTENTS_AT  ((4 + 8 * NBD_MAX_EXTENTS + 15) & ~(size_t)15)
/* Buffers this large are kept for the next request instead of freed: a
 * fresh one costs a page fault per 4 KiB, more than copying the data.
 * They count against the connection's memory ceiling (memory.h), which
 * bounds what requests in flight and spares hold together; they go back
 * when it is reached, and after an idle second. */
#define NBD_SPARE_MIN MEM_MAP_MIN
#define NBD_SPARES 16

/* One request from arrival to its reply on the wire. */
struct nbd_reply {
    struct conn_out out;              /* in the send queue */
    struct nbd_reply *next;           /* conn->spares */
    struct nbd_conn *conn;
    spd_request req;
    spd_unmap_desc desc;
    uint64_t cookie;
    uint64_t offset;
    uint32_t length;
    uint16_t type;
    uint16_t flags;
    uint32_t error;                   /* NBD error, 0 for success */
    uint8_t hdr[32];                  /* the reply header, built at the end */
    uint32_t hdr_len;
    uint32_t payload_len;             /* bytes of data[] that follow it */
    size_t capacity;                  /* bytes data[] can hold */
    size_t size;                      /* allocated (mem_size()), counted
                                         in conn->c.mem */
    struct byteio_hold hold;          /* a byte-addressing client's write */
    _Alignas(64) uint8_t data[];      /* READ/WRITE data, or extents */
};

/* A spare big enough, or NULL. conn->c.lock held. */
static struct nbd_reply *spare_take(struct nbd_conn *conn, size_t data_len)
{
    for (struct nbd_reply **p = &conn->spares; *p; p = &(*p)->next) {
        if ((*p)->capacity >= data_len) {
            struct nbd_reply *r = *p;
            *p = r->next;
            conn->spare_count--;
            return r;
        }
    }
    return NULL;
}

/* Free r and give its memory back. conn->c.lock held. */
static void reply_destroy(struct nbd_conn *conn, struct nbd_reply *r)
{
    size_t size = r->size;
    mem_free(r, size);
    mem_release(&conn->c.mem, size);
}

/* Give the spares back until bytes more fit (SIZE_MAX: all). c.lock
 * held. */
static bool spares_drop(struct nbd_conn *conn, size_t bytes)
{
    while (conn->spares) {
        if (bytes != SIZE_MAX && mem_reserve(&conn->c.mem, bytes))
            return true;
        struct nbd_reply *r = conn->spares;
        conn->spares = r->next;
        conn->spare_count--;
        reply_destroy(conn, r);
    }
    return bytes != SIZE_MAX && mem_reserve(&conn->c.mem, bytes);
}

/* A reply for the request hdr with data_len bytes of data, counted as
 * pending; NULL with *full set when memory is short (take it once replies
 * went out), else when out of memory. */
static struct nbd_reply *reply_new(struct nbd_conn *conn, const uint8_t *hdr,
                                   size_t data_len, bool *full)
{
    struct nbd_reply *r = NULL;
    size_t size = mem_size(sizeof *r + data_len);
    pthread_mutex_lock(&conn->c.lock);
    if (data_len >= NBD_SPARE_MIN)
        r = spare_take(conn, data_len);
    *full = !r && !spares_drop(conn, size);
    if (!*full)
        conn->c.pending++;
    pthread_mutex_unlock(&conn->c.lock);
    if (*full)
        return NULL;
    if (r) {
        size = r->size;
    } else if (!(r = mem_alloc(size))) {
        pthread_mutex_lock(&conn->c.lock);
        mem_release(&conn->c.mem, size);
        conn->c.pending--;
        pthread_mutex_unlock(&conn->c.lock);
        return NULL;
    }
    memset(r, 0, sizeof *r);
    r->size = size;
    r->capacity = size - sizeof *r;
    r->conn = conn;
    r->flags = get_be16(hdr + 4);
    r->type = get_be16(hdr + 6);
    r->cookie = get_be64(hdr + 8);
    r->offset = get_be64(hdr + 16);
    r->length = get_be32(hdr + 24);
    return r;
}

/* Keep a large reply's buffer for reuse, or free it. c.lock held. */
static void reply_free(struct nbd_conn *conn, struct nbd_reply *r)
{
    if (r->capacity >= NBD_SPARE_MIN && conn->spare_count < NBD_SPARES) {
        r->next = conn->spares;
        conn->spares = r;
        conn->spare_count++;
        return;
    }
    reply_destroy(conn, r);
}

/* ------------------------------------------------------------------ */
/* Sending                                                             */
/* ------------------------------------------------------------------ */

static void reply_build_header(struct nbd_reply *r)
{
    struct nbd_conn *conn = r->conn;
    bool read_data = r->type == NBD_CMD_READ && !r->error;
    bool status = r->type == NBD_CMD_BLOCK_STATUS && !r->error;

    if (conn->structured && (r->type == NBD_CMD_READ || status)) {
        /* One chunk, flagged DONE: the data is complete before we send. */
        uint16_t type = read_data ? NBD_REPLY_TYPE_OFFSET_DATA
                        : status ? NBD_REPLY_TYPE_BLOCK_STATUS
                                 : NBD_REPLY_TYPE_ERROR;
        put_be32(r->hdr, NBD_STRUCTURED_REPLY_MAGIC);
        put_be16(r->hdr + 4, NBD_REPLY_FLAG_DONE);
        put_be16(r->hdr + 6, type);
        put_be64(r->hdr + 8, r->cookie);
        if (read_data) {
            put_be32(r->hdr + 16, 8 + r->payload_len);
            put_be64(r->hdr + 20, r->offset);
            r->hdr_len = 28;
        } else if (status) {
            put_be32(r->hdr + 16, r->payload_len);
            r->hdr_len = 20;
        } else {
            put_be32(r->hdr + 16, 6);            /* error, empty message */
            put_be32(r->hdr + 20, r->error);
            put_be16(r->hdr + 24, 0);
            r->hdr_len = 26;
            r->payload_len = 0;
        }
        return;
    }
    put_be32(r->hdr, NBD_SIMPLE_REPLY_MAGIC);
    put_be32(r->hdr + 4, r->error);
    put_be64(r->hdr + 8, r->cookie);
    r->hdr_len = 16;
    if (!read_data)
        r->payload_len = 0;
}

static unsigned reply_fill(struct conn *c, struct conn_out *o, size_t skip,
                           struct iovec *iov, unsigned max)
{
    (void)c;
    struct nbd_reply *r = (struct nbd_reply *)o;
    unsigned n = conn_iov_add(iov, 0, max, &skip, r->hdr, r->hdr_len);
    return conn_iov_add(iov, n, max, &skip, r->data, r->payload_len);
}

/* A reply went out (or the client is gone). c->lock held. */
static void reply_release(struct conn *c, struct conn_out *o)
{
    struct nbd_conn *conn = (struct nbd_conn *)c;
    struct nbd_reply *r = (struct nbd_reply *)o;
    reply_free(conn, r);
    conn_done_locked(c);
}

static void reply_queue(struct nbd_reply *r)
{
    reply_build_header(r);
    r->out.bytes = r->hdr_len + r->payload_len;
    conn_queue(&r->conn->c, &r->out);
}

static void reply_error(struct nbd_reply *r, uint32_t error)
{
    r->error = error;
    reply_queue(r);
}

/* ------------------------------------------------------------------ */
/* Requests                                                            */
/* ------------------------------------------------------------------ */

/* A request's outcome as an NBD error: the protocol's error values are
 * Linux errno values, but a write-protected export answers EPERM, and a
 * command the export did not advertise EINVAL. */
static uint32_t wire_error(uint16_t type, int err)
{
    if (err == EROFS)
        return NBD_EPERM;
    if (err == EOPNOTSUPP && type != NBD_CMD_WRITE_ZEROES)
        return NBD_EINVAL;
    return (uint32_t)err;
}

static uint32_t nbd_error(const struct nbd_reply *r)
{
    return wire_error(r->type, spd_request_errno(&r->req));
}

/* base:allocation extents, from the unit's, in the reply's data. */
static void block_status_reply(struct nbd_reply *r)
{
    const spd_params *p = spd_unit_params(r->conn->export->unit);
    const spd_extent *ext = r->req.extents;
    uint32_t bl = p->block_length;

    /* A byte-addressing client's offset may fall inside the first block:
     * the first extent starts there (the last may end past the request,
     * as the protocol allows). */
    uint32_t skip = (uint32_t)(r->offset % bl);
    put_be32(r->data, NBD_META_BASE_ALLOCATION_ID);
    for (uint32_t i = 0; i < r->req.extent_count; i++) {
        uint8_t *e = r->data + 4 + 8 * i;
        put_be32(e, (uint32_t)(ext[i].blocks * bl) - (i ? 0 : skip));
        put_be32(e + 4, ext[i].mapped ? 0 : NBD_STATE_HOLE |
                 (p->unmap_reads_zero ? NBD_STATE_ZERO : 0));
    }
    r->payload_len = 4 + 8 * r->req.extent_count;
}

static void request_done(spd_request *req)
{
    struct nbd_reply *r = req->opaque;
    r->error = nbd_error(r);
    if (!r->error && r->type == NBD_CMD_READ)
        r->payload_len = r->length;
    if (!r->error && r->type == NBD_CMD_BLOCK_STATUS)
        block_status_reply(r);
    reply_queue(r);
}

static uint32_t zero_flags(const struct nbd_reply *r)
{
    return (r->flags & NBD_CMD_FLAG_NO_HOLE ? 0 : SPD_REQ_MAY_UNMAP) |
           (r->flags & NBD_CMD_FLAG_FAST_ZERO ? SPD_REQ_FAST_ZERO : 0);
}

/* Build r->req for op on the request's range, ready to submit. */
static void request_prepare(struct nbd_reply *r, spd_op op, void *buf)
{
    const spd_params *p = spd_unit_params(r->conn->export->unit);
    r->req = (spd_request){ SPD_REQUEST_INIT,
        .op = op, .fua = r->flags & NBD_CMD_FLAG_FUA,
        .lba = r->offset / p->block_length,
        .blocks = (r->offset % p->block_length + r->length +
                   p->block_length - 1) / p->block_length,
        .buf = buf, .done = request_done, .opaque = r,
    };
    switch (op) {
    case SPD_OP_UNMAP:
        r->desc = (spd_unmap_desc){ r->req.lba, (uint32_t)r->req.blocks };
        r->req.descs = &r->desc;
        r->req.desc_count = 1;
        break;
    case SPD_OP_WRITE_ZEROES:
        r->req.flags = zero_flags(r);
        break;
    case SPD_OP_EXTENTS:
        r->req.buf = NULL;
        r->req.extents = (spd_extent *)(void *)(r->data + NBD_EXTENTS_AT);
        r->req.extent_max = r->flags & NBD_CMD_FLAG_REQ_ONE ? 1
                                                            : NBD_MAX_EXTENTS;
        break;
    default:
        break;
    }
}

static void submit(struct nbd_reply *r, spd_op op, void *buf)
{
    request_prepare(r, op, buf);
    spd_unit_submit(r->conn->export->unit, &r->req);
}

/* Flags each command may carry. */
static uint16_t allowed_flags(uint16_t type, bool structured)
{
    switch (type) {
    case NBD_CMD_READ:
        return structured ? NBD_CMD_FLAG_DF : 0;
    case NBD_CMD_WRITE:
    case NBD_CMD_TRIM:
        return NBD_CMD_FLAG_FUA;
    case NBD_CMD_WRITE_ZEROES:
        return NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO;
    case NBD_CMD_BLOCK_STATUS:
        return NBD_CMD_FLAG_REQ_ONE;
    default:
        return 0;
    }
}

/* The protocol's own checks (flags, alignment, lengths); ranges,
 * permissions and what the unit supports are the core's: 0 or the NBD
 * error to answer. */
static uint32_t request_check(const struct nbd_reply *r)
{
    const struct nbd_conn *conn = r->conn;
    const spd_params *p = spd_unit_params(conn->export->unit);

    if (r->flags & ~allowed_flags(r->type, conn->structured))
        return NBD_EINVAL;
    if (r->type == NBD_CMD_FLUSH)
        return r->offset || r->length ? NBD_EINVAL : 0;
    /* Block status of any byte range, for a client that did not ask
     * for block sizes: the blocks that hold it (request_prepare). */
    bool bytes_ok = r->type == NBD_CMD_BLOCK_STATUS && !conn->block_sizes_agreed;
    if (!r->length || (!bytes_ok && (r->offset % p->block_length ||
                                     r->length % p->block_length)))
        return NBD_EINVAL;
    if (r->type == NBD_CMD_BLOCK_STATUS && !conn->base_allocation)
        return NBD_EINVAL;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Clients that address bytes                                          */
/* ------------------------------------------------------------------ */

/*
 * A client that did not ask for block sizes (block_sizes_agreed false:
 * nbd-client, the kernel's 512-byte requests) may address any byte, as
 * the protocol's default constraints let it; it is served rather than
 * refused. Reads, writes and zeroing that do not fall on the unit's
 * blocks run through the core's byte-granular calls, on this thread:
 * they are few, since such clients still send mostly whole blocks. Every
 * write such a client sends holds its blocks while in flight, so that a
 * read-modify-write of one of them waits for it and the other way round.
 */

static void held_write_done(spd_request *req)
{
    struct nbd_reply *r = req->opaque;
    byteio_release(r->conn->export->unit, &r->hold);
    request_done(req);
}

/* Submit a write of blocks [lba, lba + blocks), holding them. */
static void held_submit(struct nbd_reply *r, spd_op op, void *buf,
                        uint64_t lba, uint64_t blocks)
{
    spd_unit *unit = r->conn->export->unit;
    request_prepare(r, op, buf);
    r->req.lba = lba;
    r->req.blocks = blocks;
    r->req.done = held_write_done;
    if (op == SPD_OP_UNMAP) {
        r->desc = (spd_unmap_desc){ lba, (uint32_t)blocks };
        r->req.desc_count = blocks ? 1 : 0;
    }
    byteio_hold(unit, &r->hold, lba, blocks, false);
    spd_unit_submit(unit, &r->req);
}

/* Discard only whole blocks: the bytes of a partial one stay as they are
 * (a trimmed range's contents are the server's choice). A range with no
 * whole block still gets the core's checks. */
static void bytes_trim(struct nbd_reply *r)
{
    const spd_params *p = spd_unit_params(r->conn->export->unit);
    uint32_t bl = p->block_length;
    uint64_t size = p->block_count * bl;
    if (r->offset > size || r->length > size - r->offset) {
        reply_error(r, NBD_EINVAL);
        return;
    }
    uint64_t first = (r->offset + bl - 1) / bl;
    uint64_t end = (r->offset + r->length) / bl;
    held_submit(r, SPD_OP_UNMAP, NULL, first, end > first ? end - first : 0);
}

/* A read, write or zeroing off the unit's blocks, waited for. */
static void bytes_run(struct nbd_reply *r)
{
    spd_unit *unit = r->conn->export->unit;
    bool fua = r->flags & NBD_CMD_FLAG_FUA;
    int err;
    if (r->type == NBD_CMD_READ)
        err = spd_unit_pread(unit, r->data, r->length, r->offset);
    else if (r->type == NBD_CMD_WRITE)
        err = spd_unit_pwrite(unit, r->data, r->length, r->offset, fua);
    else
        err = spd_unit_pzero(unit, r->length, r->offset, zero_flags(r), fua);
    r->error = wire_error(r->type, -err);
    if (!r->error && r->type == NBD_CMD_READ)
        r->payload_len = r->length;
    reply_queue(r);
}

/* Start a byte-addressing client's request: true when taken here, false
 * for what the block path serves as it is (aligned reads, flushes, block
 * status, anything else). */
static bool bytes_start(struct nbd_reply *r)
{
    uint32_t bl = spd_unit_params(r->conn->export->unit)->block_length;
    bool aligned = r->offset % bl == 0 && r->length % bl == 0;
    if (r->conn->block_sizes_agreed ||
        (r->type != NBD_CMD_READ && r->type != NBD_CMD_WRITE &&
         r->type != NBD_CMD_TRIM && r->type != NBD_CMD_WRITE_ZEROES) ||
        (r->type == NBD_CMD_READ && aligned))
        return false;
    if ((r->flags & ~allowed_flags(r->type, r->conn->structured)) ||
        !r->length)
        reply_error(r, NBD_EINVAL);
    else if (r->type == NBD_CMD_TRIM)
        bytes_trim(r);
    else if (!aligned)
        bytes_run(r);
    else if (r->type == NBD_CMD_WRITE)
        held_submit(r, SPD_OP_WRITE, r->data, r->offset / bl, r->length / bl);
    else
        held_submit(r, SPD_OP_WRITE_ZEROES, NULL, r->offset / bl,
                    r->length / bl);
    return true;
}

static void request_start(struct nbd_reply *r)
{
    if (bytes_start(r))
        return;
    uint32_t error = request_check(r);
    if (error) {
        reply_error(r, error);
        return;
    }
    switch (r->type) {
    case NBD_CMD_READ:
        submit(r, SPD_OP_READ, r->data);
        break;
    case NBD_CMD_WRITE:
        submit(r, SPD_OP_WRITE, r->data);
        break;
    case NBD_CMD_FLUSH:
        r->req = (spd_request){ SPD_REQUEST_INIT, .op = SPD_OP_FLUSH, .done = request_done,
                                .opaque = r };
        spd_unit_submit(r->conn->export->unit, &r->req);
        break;
    case NBD_CMD_TRIM:
        submit(r, SPD_OP_UNMAP, NULL);
        break;
    case NBD_CMD_WRITE_ZEROES:
        submit(r, SPD_OP_WRITE_ZEROES, NULL);
        break;
    case NBD_CMD_BLOCK_STATUS:
        submit(r, SPD_OP_EXTENTS, NULL);
        break;
    default:
        reply_error(r, NBD_EINVAL);
        break;
    }
}

/* ------------------------------------------------------------------ */
/* Receiving                                                           */
/* ------------------------------------------------------------------ */

/* The space a request needs behind its reply header. */
static size_t request_data_len(const uint8_t *hdr)
{
    uint16_t type = get_be16(hdr + 6);
    uint32_t length = get_be32(hdr + 24);
    if (type == NBD_CMD_READ || type == NBD_CMD_WRITE)
        return length <= NBD_MAX_PAYLOAD ? length : 0;
    if (type == NBD_CMD_BLOCK_STATUS)
        return NBD_EXTENTS_AT + NBD_MAX_EXTENTS * sizeof(spd_extent);
    return 0;
}

/* Take a WRITE's payload: what the buffer holds, then the rest from the
 * socket straight into the request. */
static int take_payload(struct nbd_conn *conn, struct nbd_reply *r)
{
    struct conn *c = &conn->c;
    size_t have = c->in_end - c->in_start;
    size_t take = have < r->length ? have : r->length;
    memcpy(r->data, c->in + c->in_start, take);
    c->in_start += take;
    if (take < r->length)
        return conn_read_full(c, r->data + take, r->length - take);
    return 0;
}

static enum conn_parse parse_one(struct conn *c)
{
    struct nbd_conn *conn = (struct nbd_conn *)c;
    if (c->in_end - c->in_start < NBD_REQUEST_SIZE)
        return CONN_NEED_MORE;
    const uint8_t *hdr = c->in + c->in_start;
    if (get_be32(hdr) != NBD_REQUEST_MAGIC)
        return CONN_CLOSE;               /* lost framing: nothing to trust */
    uint16_t type = get_be16(hdr + 6);
    if (type == NBD_CMD_DISC)
        return CONN_CLOSE;
    uint32_t length = get_be32(hdr + 24);
    if (type == NBD_CMD_WRITE && length > NBD_MAX_PAYLOAD)
        return CONN_CLOSE;   /* the protocol's denial-of-service threshold */

    bool full;
    struct nbd_reply *r = reply_new(conn, hdr, request_data_len(hdr), &full);
    if (!r)
        return full ? CONN_PAUSE : CONN_CLOSE;
    c->in_start += NBD_REQUEST_SIZE;
    if (type == NBD_CMD_WRITE && take_payload(conn, r) < 0) {
        pthread_mutex_lock(&c->lock);   /* the client left mid-write */
        reply_release(c, &r->out);
        pthread_mutex_unlock(&c->lock);
        return CONN_CLOSE;
    }
    if (type == NBD_CMD_READ && length > NBD_MAX_PAYLOAD)
        reply_error(r, r->flags & NBD_CMD_FLAG_DF ? NBD_EOVERFLOW : NBD_EINVAL);
    else
        request_start(r);
    return CONN_PARSED;
}

/* Idle: the spares go back to the system. c->lock held. */
static void spares_trim(struct conn *c)
{
    spares_drop((struct nbd_conn *)c, SIZE_MAX);
}

const struct conn_ops nbd_conn_ops = {
    .parse = parse_one,
    .fill = reply_fill,
    .release = reply_release,
    .trim = spares_trim,
};

void nbd_transmission(struct nbd_conn *conn)
{
    conn_run(&conn->c);
    pthread_mutex_lock(&conn->c.lock);
    spares_drop(conn, SIZE_MAX);
    pthread_mutex_unlock(&conn->c.lock);
}
