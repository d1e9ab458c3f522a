/*
 * iscsi_pdu.c - the full feature phase: PDUs are parsed in batches from a
 * receive buffer (digests checked once negotiated), dispatched by opcode,
 * and answers go through one send queue, many PDUs per sendmsg().
 *
 * Answers go through the connection's send queue (conn.h). Sequence
 * numbers (StatSN, ExpCmdSN, MaxCmdSN) and header digests are filled in
 * when a message is queued, under conn->c.lock, so they go out in order.
 *
 * Here too: NOP-Out/NOP-In (answers, and pings of idle initiators), Text
 * (SendTargets, with continuation both ways), Logout, SNACK (not at
 * ErrorRecoveryLevel 0) and Reject.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "util/crc.h"
#include "transport/iscsi_int.h"

#define TEXT_MAX_KEYS 64
/* Data of the requests held behind CmdSN gaps, per connection: beyond
 * it, one more is refused (Reject, out of resources). Requests that wait
 * carry little (a ping's data, a Text negotiation's keys). */
#define HELD_PDU_BYTES (1024u * 1024)

/* ------------------------------------------------------------------ */
/* Digests                                                             */
/* ------------------------------------------------------------------ */

uint32_t iscsi_data_digest(const uint8_t *data, uint32_t len)
{
    static const uint8_t zeros[4];
    return crc32c(crc32c(0, data, len), zeros, pad4(len));
}

void iscsi_slot_trailer(const struct iscsi_conn *conn, uint8_t *slot,
                        const uint8_t *data, uint32_t len)
{
    uint32_t pad = pad4(len);
    memset(slot + ISCSI_SLOT_TRAILER, 0, pad);
    if (conn->p.data_digest && len)
        put_le32(slot + ISCSI_SLOT_TRAILER + pad, iscsi_data_digest(data, len));
}

/* ------------------------------------------------------------------ */
/* The send queue                                                      */
/* ------------------------------------------------------------------ */

/* A message was sent or dropped. c->lock held. */
static void out_release(struct conn *c, struct conn_out *co)
{
    struct iscsi_conn *conn = iscsi_conn_of(c);
    struct iscsi_out *out = (struct iscsi_out *)co;
    if (out->close_after) {
        conn->close_now = true;
        conn_wake(c);
    }
    if (out->kind == ISCSI_OUT_TASK)
        iscsi_task_release(conn, (struct iscsi_task *)out);
    else
        free(out);
    conn_done_locked(c);
}

/* The bytes of a message's PDUs on the wire. */
static size_t out_bytes(const struct iscsi_conn *conn,
                        const struct iscsi_out *out)
{
    size_t hlen = ISCSI_BHS_LEN + (conn->p.header_digest ? ISCSI_DIGEST_LEN : 0);
    size_t n = 0;
    for (uint32_t i = 0; i < out->npdu; i++) {
        uint32_t len = get_be24(out->slots[i] + 5);
        n += hlen + len;
        if (len)
            n += pad4(len) + (conn->p.data_digest ? ISCSI_DIGEST_LEN : 0);
    }
    return n;
}

/* Each PDU: header (and digest), data, padding and data digest. */
static unsigned out_fill(struct conn *c, struct conn_out *co, size_t skip,
                         struct iovec *iov, unsigned max)
{
    struct iscsi_conn *conn = iscsi_conn_of(c);
    struct iscsi_out *m = (struct iscsi_out *)co;
    size_t hlen = ISCSI_BHS_LEN + (conn->p.header_digest ? ISCSI_DIGEST_LEN : 0);
    bool dd = conn->p.data_digest;
    unsigned n = 0;
    for (uint32_t i = 0; i < m->npdu && n < max; i++) {
        uint8_t *slot = m->slots[i];
        uint32_t len = get_be24(slot + 5);
        n = conn_iov_add(iov, n, max, &skip, slot, hlen);
        if (!len)
            continue;
        uint32_t off = (slot[0] & ISCSI_OP_MASK) == ISCSI_OP_DATA_IN
                       ? get_be32(slot + 40) : 0;
        n = conn_iov_add(iov, n, max, &skip, m->data + off, len);
        n = conn_iov_add(iov, n, max, &skip, slot + ISCSI_SLOT_TRAILER,
                         pad4(len) + (dd ? ISCSI_DIGEST_LEN : 0));
    }
    return n;
}

void iscsi_window_update(struct iscsi_conn *conn)
{
    uint32_t cand = conn->exp_cmd_sn + ISCSI_QUEUE_DEPTH - 1 -
                    conn->window_used;
    /* MaxCmdSN never moves back. */
    if (conn->window_used <= ISCSI_QUEUE_DEPTH && sn_lt(conn->max_cmd_sn, cand))
        conn->max_cmd_sn = cand;
}

void iscsi_queue_locked(struct iscsi_conn *conn, struct iscsi_out *out)
{
    for (uint32_t i = 0; i < out->npdu; i++) {
        put_be32(out->slots[i] + 28, conn->exp_cmd_sn);
        put_be32(out->slots[i] + 32, conn->max_cmd_sn);
    }
    uint8_t *last = out->slots[out->npdu - 1];
    if (out->sn == ISCSI_SN_PEEK)
        put_be32(last + 24, conn->stat_sn);
    else if (out->sn == ISCSI_SN_TAKE)
        put_be32(last + 24, conn->stat_sn++);
    if (conn->p.header_digest)
        for (uint32_t i = 0; i < out->npdu; i++)
            put_le32(out->slots[i] + ISCSI_BHS_LEN,
                     crc32c(0, out->slots[i], ISCSI_BHS_LEN));
    if (out->kind != ISCSI_OUT_TASK)
        conn->c.pending++;
    out->co.bytes = out_bytes(conn, out);
    conn_queue_locked(&conn->c, &out->co);
}

void iscsi_queue(struct iscsi_conn *conn, struct iscsi_out *out)
{
    pthread_mutex_lock(&conn->c.lock);
    iscsi_queue_locked(conn, out);
    pthread_mutex_unlock(&conn->c.lock);
}

struct iscsi_msg *iscsi_msg_new(uint8_t opcode, uint32_t len)
{
    struct iscsi_msg *m = malloc(sizeof *m + len);
    if (!m)
        return NULL;
    memset(m, 0, sizeof *m);
    m->out.slots = &m->slot;
    m->out.npdu = 1;
    m->out.data = m->data;
    m->out.kind = ISCSI_OUT_FREE;
    m->out.sn = ISCSI_SN_TAKE;
    m->slot[0] = opcode;
    m->slot[1] = ISCSI_FLAG_FINAL;
    return m;
}

void iscsi_msg_set_data(struct iscsi_conn *conn, struct iscsi_msg *m,
                        uint32_t len)
{
    put_be24(m->slot + 5, len);
    iscsi_slot_trailer(conn, m->slot, m->data, len);
}

void iscsi_reject(struct iscsi_conn *conn, const uint8_t *hdr, uint8_t reason)
{
    struct iscsi_msg *m = iscsi_msg_new(ISCSI_OP_REJECT, ISCSI_BHS_LEN);
    if (!m)
        return;
    m->slot[2] = reason;
    put_be32(m->slot + 16, ISCSI_RSVD_TAG);
    memcpy(m->data, hdr, ISCSI_BHS_LEN);      /* the rejected header */
    iscsi_msg_set_data(conn, m, ISCSI_BHS_LEN);
    iscsi_queue(conn, &m->out);
}

/* ------------------------------------------------------------------ */
/* Command numbering                                                   */
/* ------------------------------------------------------------------ */

bool iscsi_cmdsn_take(struct iscsi_conn *conn, uint32_t cmdsn, bool task)
{
    /* Outside [ExpCmdSN, MaxCmdSN]: silently ignored (RFC 7143 "Command
     * Numbering and Acknowledging"). */
    if (sn_lt(cmdsn, conn->exp_cmd_sn) || sn_lt(conn->max_cmd_sn, cmdsn))
        return false;
    uint8_t bit = (uint8_t)(1u << (cmdsn & 7));
    uint8_t *byte = &conn->ahead[(cmdsn >> 3) & 31];
    if (cmdsn != conn->exp_cmd_sn) {
        /* Ahead of a gap: remember it was seen (a command waits for
         * the gap, iscsi_tasks_release). */
        if (*byte & bit)
            return false;                   /* a duplicate */
        *byte |= bit;
        conn->window_used += task;
        return true;
    }
    conn->window_used += task;
    conn->exp_cmd_sn++;
    for (;;) {
        uint32_t sn = conn->exp_cmd_sn;
        uint8_t b = (uint8_t)(1u << (sn & 7));
        uint8_t *p = &conn->ahead[(sn >> 3) & 31];
        if (!(*p & b))
            break;
        *p &= (uint8_t)~b;
        conn->exp_cmd_sn++;
    }
    iscsi_window_update(conn);
    return true;
}

/* Take a non-immediate PDU's CmdSN: false when it is to be ignored. */
static bool cmdsn_check(struct iscsi_conn *conn, const uint8_t *hdr)
{
    if (hdr[0] & ISCSI_OP_IMMEDIATE)
        return true;
    pthread_mutex_lock(&conn->c.lock);
    bool ok = iscsi_cmdsn_take(conn, get_be32(hdr + 24), false);
    pthread_mutex_unlock(&conn->c.lock);
    return ok;
}

/* ------------------------------------------------------------------ */
/* Receiving data segments                                             */
/* ------------------------------------------------------------------ */

/* recv() at most len bytes: the count, or -1 (EOF, error, timeout). */
static ssize_t recv_some(int fd, void *buf, size_t len)
{
    ssize_t n;
    do
        n = recv(fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
    return n > 0 ? n : -1;
}

int iscsi_recv_segment(struct iscsi_conn *conn, uint8_t *dst, uint32_t keep,
                       uint32_t len)
{
    struct conn *c = &conn->c;
    uint8_t scratch[16384];
    uint32_t crc = 0, pos = 0;
    bool dd = conn->p.data_digest && len;

    while (pos < len) {
        size_t have = c->in_end - c->in_start;
        const uint8_t *src;
        size_t n;
        if (have) {
            n = have < len - pos ? have : len - pos;
            src = c->in + c->in_start;
            if (pos < keep)
                memcpy(dst + pos, src, n < keep - pos ? n : keep - pos);
            c->in_start += n;
        } else {
            /* Straight from the socket into the buffer it is for. */
            uint8_t *to = pos < keep ? dst + pos : scratch;
            size_t room = pos < keep ? keep - pos : sizeof scratch;
            if (room > len - pos)
                room = len - pos;
            ssize_t got = recv_some(c->fd, to, room);
            if (got < 0)
                return -1;
            n = (size_t)got;
            src = to;
        }
        if (dd)
            crc = crc32c(crc, src, n);
        pos += (uint32_t)n;
    }

    uint8_t trailer[8];
    uint32_t tlen = pad4(len) + (dd ? ISCSI_DIGEST_LEN : 0);
    size_t have = c->in_end - c->in_start;
    size_t from_buf = have < tlen ? have : tlen;
    memcpy(trailer, c->in + c->in_start, from_buf);
    c->in_start += from_buf;
    if (from_buf < tlen &&
        net_read_full(c->fd, trailer + from_buf, tlen - from_buf))
        return -1;
    if (!dd)
        return 0;
    crc = crc32c(crc, trailer, pad4(len));
    return crc == get_le32(trailer + pad4(len)) ? 0 : 1;
}

/* ------------------------------------------------------------------ */
/* NOP, Text, Logout                                                   */
/* ------------------------------------------------------------------ */

uint32_t iscsi_new_ttt(struct iscsi_conn *conn)
{
    if (++conn->next_ttt == ISCSI_RSVD_TAG)
        conn->next_ttt = 1;
    return conn->next_ttt;
}

static void ping(struct iscsi_conn *conn)
{
    struct iscsi_msg *m = iscsi_msg_new(ISCSI_OP_NOP_IN, 0);
    if (!m)
        return;
    conn->ping_ttt = iscsi_new_ttt(conn);
    conn->ping_sent = true;
    put_be32(m->slot + 16, ISCSI_RSVD_TAG);
    put_be32(m->slot + 20, conn->ping_ttt);
    m->out.sn = ISCSI_SN_PEEK;            /* no answer expected from us */
    iscsi_queue(conn, &m->out);
}

static int nop_out(struct iscsi_conn *conn, const uint8_t *hdr,
                   const uint8_t *data, uint32_t len)
{
    uint32_t itt = get_be32(hdr + 16), ttt = get_be32(hdr + 20);
    if (itt == ISCSI_RSVD_TAG) {
        /* The answer to our ping, or a one-way NOP: nothing to send. */
        if (ttt == conn->ping_ttt)
            conn->ping_sent = false;
        if (!(hdr[0] & ISCSI_OP_IMMEDIATE))
            cmdsn_check(conn, hdr);
        return 0;
    }
    if (!cmdsn_check(conn, hdr))
        return 0;
    if (ttt != ISCSI_RSVD_TAG) {
        iscsi_reject(conn, hdr, ISCSI_REJECT_PROTOCOL);
        return 0;
    }
    uint32_t max = atomic_load(&conn->max_xmit_dsl);
    if (len > max)
        len = max;
    struct iscsi_msg *m = iscsi_msg_new(ISCSI_OP_NOP_IN, len);
    if (!m)
        return -1;
    memcpy(m->slot + 8, hdr + 8, 8);          /* LUN */
    put_be32(m->slot + 16, itt);
    put_be32(m->slot + 20, ISCSI_RSVD_TAG);
    memcpy(m->data, data, len);               /* the ping data back */
    iscsi_msg_set_data(conn, m, len);
    iscsi_queue(conn, &m->out);
    return 0;
}

/* Send the next piece of conn->text_out (or an empty response). */
static void text_send(struct iscsi_conn *conn, const uint8_t *req, bool final)
{
    uint32_t max = atomic_load(&conn->max_xmit_dsl);
    size_t left = conn->text_out_len - conn->text_out_off;
    uint32_t len = left < max ? (uint32_t)left : max;
    bool more = left > len;
    struct iscsi_msg *m = iscsi_msg_new(ISCSI_OP_TEXT_RSP, len);
    if (!m)
        return;
    m->slot[1] = more ? ISCSI_FLAG_CONTINUE : final ? ISCSI_FLAG_FINAL : 0;
    memcpy(m->slot + 8, req + 8, 8);
    memcpy(m->slot + 16, req + 16, 4);        /* ITT */
    conn->text_ttt = more || !final ? iscsi_new_ttt(conn) : ISCSI_RSVD_TAG;
    put_be32(m->slot + 20, conn->text_ttt);
    if (len)
        memcpy(m->data, conn->text_out + conn->text_out_off, len);
    conn->text_out_off += len;
    if (!more) {
        free(conn->text_out);
        conn->text_out = NULL;
        conn->text_out_len = conn->text_out_off = 0;
    }
    iscsi_msg_set_data(conn, m, len);
    iscsi_queue(conn, &m->out);
}

/* The keys of a complete Text Request, answered into out. */
static void text_keys(struct iscsi_conn *conn, struct iscsi_kv *kv, int n,
                      struct iscsi_text *out)
{
    for (int i = 0; i < n; i++) {
        const char *key = kv[i].key, *value = kv[i].value;
        uint64_t v;
        if (!strcmp(key, "SendTargets")) {
            if (!iscsi_send_targets(conn, value, out))
                iscsi_text_add(out, key, "Reject");
        } else if (!strcmp(key, "MaxRecvDataSegmentLength")) {
            /* Declarative, may change in full feature phase. */
            if (!iscsi_parse_number(value, &v) && v >= 512 && v <= 16777215)
                atomic_store(&conn->max_xmit_dsl, (uint32_t)v);
        } else {
            /* The other operational keys are for the login only. */
            iscsi_text_add(out, key,
                           iscsi_key_rank(key) >= 0 ? "Reject"
                                                    : "NotUnderstood");
        }
    }
}

static int text_request(struct iscsi_conn *conn, const uint8_t *hdr,
                        const uint8_t *data, uint32_t len)
{
    bool final = hdr[1] & ISCSI_FLAG_FINAL;
    bool cont = hdr[1] & ISCSI_FLAG_CONTINUE;
    uint32_t ttt = get_be32(hdr + 20);
    if (!cmdsn_check(conn, hdr))
        return 0;
    if (final && cont) {
        iscsi_reject(conn, hdr, ISCSI_REJECT_PROTOCOL);
        return 0;
    }
    if (ttt != ISCSI_RSVD_TAG && ttt != conn->text_ttt) {
        iscsi_reject(conn, hdr, ISCSI_REJECT_INVALID_FIELD);
        return 0;
    }
    if (ttt != ISCSI_RSVD_TAG && conn->text_out && !len) {
        text_send(conn, hdr, true);           /* the next piece */
        return 0;
    }
    if (ttt == ISCSI_RSVD_TAG) {
        /* A new negotiation: forget an unfinished one. */
        conn->text_in_len = 0;
        free(conn->text_out);
        conn->text_out = NULL;
        conn->text_out_len = conn->text_out_off = 0;
    }
    if (conn->text_in_len + len > ISCSI_TEXT_MAX) {
        iscsi_reject(conn, hdr, ISCSI_REJECT_PROTOCOL);
        conn->text_in_len = 0;
        return 0;
    }
    if (len) {
        uint8_t *buf = realloc(conn->text_in, conn->text_in_len + len);
        if (!buf)
            return -1;
        conn->text_in = buf;
        memcpy(buf + conn->text_in_len, data, len);
        conn->text_in_len += len;
    }
    if (cont) {
        text_send(conn, hdr, false);          /* empty: send the rest */
        return 0;
    }

    struct iscsi_kv kv[TEXT_MAX_KEYS];
    struct iscsi_text out = { 0 };
    int n = iscsi_kv_parse((char *)conn->text_in, conn->text_in_len, kv,
                           TEXT_MAX_KEYS);
    conn->text_in_len = 0;
    if (n < 0) {
        iscsi_reject(conn, hdr, ISCSI_REJECT_PROTOCOL);
        return 0;
    }
    text_keys(conn, kv, n, &out);
    if (out.failed) {
        iscsi_text_free(&out);
        iscsi_reject(conn, hdr, ISCSI_REJECT_RESOURCES);
        return 0;
    }
    conn->text_out = out.buf;
    conn->text_out_len = out.len;
    conn->text_out_off = 0;
    text_send(conn, hdr, final);
    return 0;
}

static void logout_respond(struct iscsi_conn *conn, const uint8_t *hdr,
                           uint8_t response, bool close_after)
{
    struct iscsi_msg *m = iscsi_msg_new(ISCSI_OP_LOGOUT_RSP, 0);
    if (!m)
        return;
    m->slot[2] = response;
    memcpy(m->slot + 16, hdr + 16, 4);
    if (!response)
        put_be16(m->slot + 40, (uint16_t)conn->p.time2wait);
    m->out.close_after = close_after;
    iscsi_queue(conn, &m->out);
}

static int logout_request(struct iscsi_conn *conn, const uint8_t *hdr)
{
    if (!cmdsn_check(conn, hdr))
        return 0;
    uint8_t reason = hdr[1] & 0x7f;
    uint16_t cid = get_be16(hdr + 20);
    switch (reason) {
    case ISCSI_LOGOUT_SESSION:
        break;
    case ISCSI_LOGOUT_CONNECTION:
        if (cid != conn->cid) {
            logout_respond(conn, hdr, ISCSI_LOGOUT_RSP_NO_CID, false);
            return 0;
        }
        break;
    case ISCSI_LOGOUT_RECOVERY:
        logout_respond(conn, hdr, ISCSI_LOGOUT_RSP_NO_RECOVERY, false);
        return 0;
    default:
        iscsi_reject(conn, hdr, ISCSI_REJECT_INVALID_FIELD);
        return 0;
    }
    /* Answered once every command in the units has completed. */
    memcpy(conn->logout_hdr, hdr, ISCSI_BHS_LEN);
    conn->logging_out = true;
    return 0;
}

/* ------------------------------------------------------------------ */
/* The receive loop                                                    */
/* ------------------------------------------------------------------ */

/* A PDU whose data segment is in the buffer as a whole. */
static int dispatch(struct iscsi_conn *conn, const uint8_t *hdr,
                    const uint8_t *data, uint32_t len)
{
    switch (hdr[0] & ISCSI_OP_MASK) {
    case ISCSI_OP_NOP_OUT:
        return nop_out(conn, hdr, data, len);
    case ISCSI_OP_TEXT_REQ:
        return text_request(conn, hdr, data, len);
    case ISCSI_OP_TMF_REQ:
        return iscsi_task_mgmt(conn, hdr);
    case ISCSI_OP_LOGOUT_REQ:
        return logout_request(conn, hdr);
    case ISCSI_OP_SNACK_REQ:
    case ISCSI_OP_LOGIN_REQ:
        /* No SNACK at ErrorRecoveryLevel 0; no login after login. */
        iscsi_reject(conn, hdr, ISCSI_REJECT_PROTOCOL);
        return 0;
    default:
        iscsi_reject(conn, hdr, ISCSI_REJECT_UNSUPPORTED);
        return 0;
    }
}

/* ------------------------------------------------------------------ */
/* Requests after a CmdSN gap                                          */
/* ------------------------------------------------------------------ */

/*
 * A non-immediate NOP-Out, Task Management, Text or Logout request whose
 * CmdSN is ahead of ExpCmdSN waits, with its data, until the commands
 * numbered before it arrived (RFC 7143 "Command Numbering and
 * Acknowledging": non-immediate commands are delivered in CmdSN order),
 * as SCSI commands wait (iscsi_scsi.c). Its CmdSN is taken only when it
 * runs, so the commands after it wait for it in turn; immediate requests
 * run at once.
 */
struct iscsi_held_pdu {
    uint32_t cmdsn;
    uint32_t len;                       /* of the data segment */
    uint8_t hdr[ISCSI_BHS_LEN];
    uint8_t data[];
};

static void held_free(struct iscsi_conn *conn, struct iscsi_held_pdu **slot)
{
    conn->held_pdu_bytes -= (*slot)->len;
    conn->held_pdu_count--;
    free(*slot);
    *slot = NULL;
}

/* Keep a request that is ahead of a CmdSN gap: true when it was kept (or
 * dealt with), false when it is to run now (in turn, or to be dropped by
 * its handler's CmdSN check). */
static bool hold_if_ahead(struct iscsi_conn *conn, const uint8_t *hdr,
                          const uint8_t *data, uint32_t len)
{
    uint8_t op = hdr[0] & ISCSI_OP_MASK;
    if ((hdr[0] & ISCSI_OP_IMMEDIATE) ||
        (op != ISCSI_OP_NOP_OUT && op != ISCSI_OP_TMF_REQ &&
         op != ISCSI_OP_TEXT_REQ && op != ISCSI_OP_LOGOUT_REQ))
        return false;
    uint32_t sn = get_be32(hdr + 24);
    pthread_mutex_lock(&conn->c.lock);
    bool ahead = sn_lt(conn->exp_cmd_sn, sn) &&
                 !sn_lt(conn->max_cmd_sn, sn) &&
                 !(conn->ahead[(sn >> 3) & 31] & (1u << (sn & 7)));
    pthread_mutex_unlock(&conn->c.lock);
    if (!ahead)
        return false;
    /* The window spans fewer CmdSNs than there are slots: another
     * request in this one is a duplicate, or one whose CmdSN a SCSI
     * command took since. */
    struct iscsi_held_pdu **slot = &conn->held_pdus[sn % ISCSI_QUEUE_DEPTH];
    if (*slot && (*slot)->cmdsn == sn)
        return true;                            /* a duplicate: ignored */
    if (*slot)
        held_free(conn, slot);
    struct iscsi_held_pdu *h = NULL;
    if (conn->held_pdu_bytes + len <= HELD_PDU_BYTES)
        h = malloc(sizeof *h + len);
    if (!h) {
        /* Refused, its CmdSN used up so the window moves on. */
        pthread_mutex_lock(&conn->c.lock);
        iscsi_cmdsn_take(conn, sn, false);
        pthread_mutex_unlock(&conn->c.lock);
        iscsi_reject(conn, hdr, ISCSI_REJECT_RESOURCES);
        return true;
    }
    h->cmdsn = sn;
    h->len = len;
    memcpy(h->hdr, hdr, ISCSI_BHS_LEN);
    if (len)
        memcpy(h->data, data, len);
    *slot = h;
    conn->held_pdu_count++;
    conn->held_pdu_bytes += len;
    return true;
}

/* Run what waited for a gap that is now filled, in CmdSN order: held SCSI
 * commands, then the held request next in turn, and so on. 0, or -1 to
 * close the connection. */
static int held_release(struct iscsi_conn *conn)
{
    iscsi_tasks_release(conn);
    while (conn->held_pdu_count) {
        pthread_mutex_lock(&conn->c.lock);
        uint32_t next = conn->exp_cmd_sn;
        pthread_mutex_unlock(&conn->c.lock);
        struct iscsi_held_pdu **slot =
            &conn->held_pdus[next % ISCSI_QUEUE_DEPTH];
        if (!*slot || (*slot)->cmdsn != next)
            return 0;
        struct iscsi_held_pdu *h = *slot;
        *slot = NULL;
        conn->held_pdu_count--;
        conn->held_pdu_bytes -= h->len;
        int r = dispatch(conn, h->hdr, h->data, h->len);    /* takes next */
        free(h);
        if (r < 0)
            return -1;
        iscsi_tasks_release(conn);
    }
    return 0;
}

/* The end of the connection: what still waits goes with it. */
static void held_drop_all(struct iscsi_conn *conn)
{
    for (unsigned i = 0; i < ISCSI_QUEUE_DEPTH && conn->held_pdu_count; i++)
        if (conn->held_pdus[i])
            held_free(conn, &conn->held_pdus[i]);
}

static enum conn_parse parse_one(struct conn *c)
{
    struct iscsi_conn *conn = iscsi_conn_of(c);
    if (atomic_load(&conn->close_now) || conn->logging_out)
        return CONN_CLOSE;
    size_t avail = c->in_end - c->in_start;
    if (avail < ISCSI_BHS_LEN)
        return CONN_NEED_MORE;
    conn->ping_sent = false;                    /* it is alive */
    uint8_t *hdr = c->in + c->in_start;
    uint32_t ahs = hdr[4] * 4u;
    uint32_t hlen = ISCSI_BHS_LEN + ahs +
                    (conn->p.header_digest ? ISCSI_DIGEST_LEN : 0);
    if (avail < hlen)
        return CONN_NEED_MORE;
    if (conn->p.header_digest &&
        crc32c(0, hdr, ISCSI_BHS_LEN + ahs) !=
            get_le32(hdr + ISCSI_BHS_LEN + ahs))
        return CONN_CLOSE;       /* the lengths cannot be trusted: no framing */
    uint32_t dsl = get_be24(hdr + 5);
    if (dsl > conn->p.max_recv_dsl) {
        iscsi_reject(conn, hdr, ISCSI_REJECT_PROTOCOL);
        return CONN_CLOSE;
    }

    uint8_t op = hdr[0] & ISCSI_OP_MASK;
    if (op == ISCSI_OP_SCSI_CMD || op == ISCSI_OP_DATA_OUT) {
        /* The data goes straight to the command's buffer. */
        uint8_t copy[ISCSI_BHS_LEN + 1020];
        memcpy(copy, hdr, ISCSI_BHS_LEN + ahs);
        c->in_start += hlen;
        int r = op == ISCSI_OP_SCSI_CMD ? iscsi_scsi_command(conn, copy)
                                        : iscsi_data_out(conn, copy);
        if (r < 0 || held_release(conn))
            return CONN_CLOSE;
        conn_flush_if(c, ISCSI_FLUSH_BYTES);
        return CONN_PARSED;
    }

    bool dd = conn->p.data_digest && dsl;
    size_t total = hlen + dsl + pad4(dsl) + (dd ? ISCSI_DIGEST_LEN : 0);
    if (avail < total)
        return CONN_NEED_MORE;
    const uint8_t *data = hdr + hlen;
    c->in_start += total;
    if (dd && iscsi_data_digest(data, dsl) !=
              get_le32(data + dsl + pad4(dsl))) {
        iscsi_reject(conn, hdr, ISCSI_REJECT_DIGEST);
        return CONN_PARSED;
    }
    if (hold_if_ahead(conn, hdr, data, dsl))
        return CONN_PARSED;
    if (dispatch(conn, hdr, data, dsl) < 0)
        return CONN_CLOSE;
    /* A NOP-Out may fill a gap too. */
    if (held_release(conn))
        return CONN_CLOSE;
    /* A session kept alive by NOP-Outs alone is idle all the same. */
    return op == ISCSI_OP_NOP_OUT ? CONN_KEEPALIVE : CONN_PARSED;
}

/* Idle for a while: ping, or give up on an initiator that did not answer
 * the last ping. */
static bool idle_ping(struct conn *c)
{
    struct iscsi_conn *conn = iscsi_conn_of(c);
    if (conn->ping_sent)
        return false;
    ping(conn);
    return true;
}

/* Commands still waiting for data will not get it; those in the units
 * finish and are answered (conn_run waits for that). */
static void input_end(struct conn *c)
{
    iscsi_tasks_drop(iscsi_conn_of(c));
}

/* Everything was answered: the Logout Response goes last. */
static bool finish(struct conn *c)
{
    struct iscsi_conn *conn = iscsi_conn_of(c);
    if (!conn->logging_out || conn->logout_answered)
        return false;
    conn->logout_answered = true;
    logout_respond(conn, conn->logout_hdr, ISCSI_LOGOUT_RSP_OK, true);
    return true;
}

const struct conn_ops iscsi_conn_ops = {
    .parse = parse_one,
    .fill = out_fill,
    .release = out_release,
    .ping = idle_ping,
    .input_end = input_end,
    .finish = finish,
    .trim = iscsi_task_cache_trim,
};

void iscsi_full_feature(struct iscsi_conn *conn)
{
    conn->c.ping_ms = ISCSI_PING_SECONDS * 1000;
    iscsi_window_update(conn);
    conn_run(&conn->c);
    held_drop_all(conn);
    iscsi_task_cache_free(conn);
}
