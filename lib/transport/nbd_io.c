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
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "util/bytes.h"
#include "transport/nbd_int.h"
#include "spd/scsi.h"

#define NBD_REQUEST_SIZE 28
/* At most this many extents in one block status reply. */
#define NBD_MAX_EXTENTS 1024
/* A block status request's data: the reply's extents, then the unit's. */
#define NBD_EXTENTS_AT  ((4 + 8 * NBD_MAX_EXTENTS + 15) & ~(size_t)15)
/* Buffers this large are kept for the next request instead of freed: a
 * fresh one costs a page fault per 4 KiB, more than copying the data. */
#define NBD_SPARE_MIN (64u * 1024)
#define NBD_SPARES 16
/* Data bytes a connection may hold in requests not yet answered (READ
 * replies, WRITE payloads, extents) before it stops taking new ones:
 * without a bound a batch of 28-byte READs of 32 MiB each holds 32 MiB
 * apiece until the batch is answered. */
#define NBD_MAX_HELD (2 * (size_t)NBD_MAX_PAYLOAD)

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
    size_t held;                      /* bytes counted in conn->held */
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

static struct nbd_reply *reply_new(struct nbd_conn *conn, const uint8_t *hdr,
                                   size_t data_len)
{
    struct nbd_reply *r = NULL;
    if (data_len >= NBD_SPARE_MIN) {
        pthread_mutex_lock(&conn->c.lock);
        r = spare_take(conn, data_len);
        pthread_mutex_unlock(&conn->c.lock);
    }
    size_t capacity = r ? r->capacity : data_len;
    if (!r && !(r = malloc(sizeof *r + data_len)))
        return NULL;
    memset(r, 0, sizeof *r);
    r->capacity = capacity;
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
    free(r);
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
    conn->held -= r->held;
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
static uint32_t nbd_error(const struct nbd_reply *r)
{
    int err = spd_request_errno(&r->req);
    if (err == EROFS)
        return NBD_EPERM;
    if (err == EOPNOTSUPP && r->type != NBD_CMD_WRITE_ZEROES)
        return NBD_EINVAL;
    return (uint32_t)err;
}

/* base:allocation extents, from the unit's, in the reply's data. */
static void block_status_reply(struct nbd_reply *r)
{
    const spd_params *p = spd_unit_params(r->conn->export->unit);
    const spd_extent *ext = r->req.extents;
    uint32_t bl = p->block_length;

    put_be32(r->data, NBD_META_BASE_ALLOCATION_ID);
    for (uint32_t i = 0; i < r->req.extent_count; i++) {
        uint8_t *e = r->data + 4 + 8 * i;
        put_be32(e, (uint32_t)(ext[i].blocks * bl));
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

static void submit(struct nbd_reply *r, spd_op op, void *buf)
{
    const spd_params *p = spd_unit_params(r->conn->export->unit);
    r->req = (spd_request){ SPD_REQUEST_INIT,
        .op = op, .fua = r->flags & NBD_CMD_FLAG_FUA,
        .lba = r->offset / p->block_length,
        .blocks = r->length / p->block_length,
        .buf = buf, .done = request_done, .opaque = r,
    };
    switch (op) {
    case SPD_OP_UNMAP:
        r->desc = (spd_unmap_desc){ r->req.lba, (uint32_t)r->req.blocks };
        r->req.descs = &r->desc;
        r->req.desc_count = 1;
        break;
    case SPD_OP_WRITE_ZEROES:
        r->req.flags = (r->flags & NBD_CMD_FLAG_NO_HOLE ? 0 : SPD_REQ_MAY_UNMAP) |
                       (r->flags & NBD_CMD_FLAG_FAST_ZERO ? SPD_REQ_FAST_ZERO : 0);
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
    if (!r->length || r->offset % p->block_length ||
        r->length % p->block_length)
        return NBD_EINVAL;
    if (r->type == NBD_CMD_BLOCK_STATUS && !conn->base_allocation)
        return NBD_EINVAL;
    return 0;
}

static void request_start(struct nbd_reply *r)
{
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

/* Count a request holding need bytes in, unless the connection holds
 * NBD_MAX_HELD bytes with it: false then (take it once replies went
 * out). */
static bool hold_room(struct nbd_conn *conn, size_t need)
{
    pthread_mutex_lock(&conn->c.lock);
    bool room = !conn->held || conn->held + need <= NBD_MAX_HELD;
    if (room) {
        conn->held += need;
        conn->c.pending++;
    }
    pthread_mutex_unlock(&conn->c.lock);
    return room;
}

/* The request is not taken after all. */
static void hold_undo(struct nbd_conn *conn, size_t need)
{
    pthread_mutex_lock(&conn->c.lock);
    conn->held -= need;
    conn->c.pending--;
    pthread_mutex_unlock(&conn->c.lock);
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

    size_t need = request_data_len(hdr);
    if (!hold_room(conn, need))
        return CONN_PAUSE;
    struct nbd_reply *r = reply_new(conn, hdr, need);
    if (!r) {
        hold_undo(conn, need);
        return CONN_CLOSE;
    }
    r->held = need;
    c->in_start += NBD_REQUEST_SIZE;
    if (type == NBD_CMD_WRITE && take_payload(conn, r) < 0) {
        hold_undo(conn, need);           /* the client left mid-write */
        free(r);
        return CONN_CLOSE;
    }
    if (type == NBD_CMD_READ && length > NBD_MAX_PAYLOAD)
        reply_error(r, r->flags & NBD_CMD_FLAG_DF ? NBD_EOVERFLOW : NBD_EINVAL);
    else
        request_start(r);
    return CONN_PARSED;
}

const struct conn_ops nbd_conn_ops = {
    .parse = parse_one,
    .fill = reply_fill,
    .release = reply_release,
};

void nbd_transmission(struct nbd_conn *conn)
{
    conn_run(&conn->c);
    while (conn->spares) {
        struct nbd_reply *spare = conn->spares;
        conn->spares = spare->next;
        free(spare);
    }
}
