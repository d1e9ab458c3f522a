/*
 * iscsi_scsi.c - SCSI commands over iSCSI (RFC 7143 "SCSI Command",
 * "SCSI Data-Out", "Ready To Transfer", "SCSI Data-In", "SCSI Response",
 * "Task Management Function Request").
 *
 * A command becomes a task: its CDB is planned first (direction, length,
 * early failure) so the target knows how much Data-Out to take; the data
 * arrives as immediate data, unsolicited Data-Out (when InitialR2T=No) and
 * Data-Out answering R2Ts, straight into the task's buffer; then the unit
 * runs the CDB on that buffer. A read's data goes out from the very
 * buffer the device filled, in Data-In PDUs of the initiator's
 * MaxRecvDataSegmentLength with the status in the last one (S bit) when
 * good; otherwise a SCSI Response carries status and sense. Residuals
 * compare the initiator's expected length with what the CDB moves.
 *
 * The engine answers REPORT LUNS from the target's LUN list, and the
 * commands for a LUN that does not exist.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/iscsi_int.h"
#include "spd/scsi.h"

enum task_state {
    TASK_DATA,              /* collecting Data-Out */
    TASK_HELD,              /* ready, waiting for a CmdSN gap to fill */
    TASK_RUNNING,           /* in the unit */
    TASK_DONE,              /* response queued */
};

struct iscsi_r2t {
    uint32_t ttt, offset, length, done, datasn;
};

/* A task management response waiting for aborted tasks to leave the
 * units. */
struct iscsi_tmf {
    struct iscsi_msg *msg;
    unsigned waiting;
};

struct iscsi_task {
    struct iscsi_out out;           /* first: the response (ISCSI_OUT_TASK) */
    struct iscsi_task *hnext;       /* conn->tasks bucket */
    struct iscsi_conn *conn;
    const struct iscsi_lu *lu;      /* NULL: no such LUN */
    spd_unit *unit;
    uint32_t itt;
    uint32_t cmdsn;
    uint8_t lun[8];
    uint8_t state;                  /* enum task_state */
    bool immediate;
    bool in_window;                 /* holds a place in the CmdSN window */
    bool retired;                   /* place given back */
    bool aborted;
    bool failed;                    /* outcome set before execution */
    struct iscsi_tmf *tmf;
    spd_data_dir dir;
    uint32_t spdtl;                 /* what the CDB transfers */
    uint32_t edtl_in, edtl_out;     /* what the initiator expects */

    /* Data-Out. */
    uint32_t need;                  /* bytes the command uses */
    uint32_t received;              /* the next buffer offset expected */
    uint32_t unsol_end;             /* unsolicited data may go up to here */
    bool unsol_open;                /* unsolicited Data-Out still to come */
    uint32_t unsol_datasn;
    uint32_t r2t_next;              /* offset the next R2T asks from */
    uint32_t r2tsn;
    unsigned r2t_count;
    struct iscsi_r2t r2t[ISCSI_MAX_R2T];

    spd_scsi_cmd cmd;
    uint8_t *buf;
    uint32_t buf_len;
    uint32_t cap;                   /* room in data[] */
    size_t size;                    /* allocated (mem_size()), counted in
                                       conn->c.mem */
    uint8_t slot_one[ISCSI_SLOT];
    uint8_t sense[2 + SPD_SENSE_MAX];
    _Alignas(64) uint8_t data[];
};

/* ------------------------------------------------------------------ */
/* The task table                                                      */
/* ------------------------------------------------------------------ */

static struct iscsi_task **bucket(struct iscsi_conn *conn, uint32_t itt)
{
    return &conn->tasks[(itt ^ itt >> 8) % ISCSI_TASK_BUCKETS];
}

static struct iscsi_task *task_find(struct iscsi_conn *conn, uint32_t itt)
{
    for (struct iscsi_task *t = *bucket(conn, itt); t; t = t->hnext)
        if (t->itt == itt)
            return t;
    return NULL;
}

static void task_unlink(struct iscsi_conn *conn, struct iscsi_task *t)
{
    for (struct iscsi_task **p = bucket(conn, t->itt); *p; p = &(*p)->hnext) {
        if (*p == t) {
            *p = t->hnext;
            return;
        }
    }
}

/* Give the task's place in the window back. Lock held. */
static void task_retire(struct iscsi_conn *conn, struct iscsi_task *t)
{
    if (t->retired)
        return;
    t->retired = true;
    if (t->in_window) {
        conn->window_used--;
        iscsi_window_update(conn);
    }
    if (t->immediate)
        conn->immediate_used--;
}

/* Free t and give its memory back. Lock held. */
static void task_destroy(struct iscsi_conn *conn, struct iscsi_task *t)
{
    size_t size = t->size;
    mem_free(t, size);
    mem_release(&conn->c.mem, size);
}

void iscsi_task_release(struct iscsi_conn *conn, struct iscsi_task *t)
{
    if (t->out.slots && t->out.slots != &t->slot_one)
        free(t->out.slots);
    if (conn->cache_count < ISCSI_CACHE_TASKS &&
        conn->cache_bytes + t->cap <= ISCSI_CACHE_BYTES) {
        t->hnext = conn->cache;
        conn->cache = t;
        conn->cache_count++;
        conn->cache_bytes += t->cap;
        return;
    }
    task_destroy(conn, t);
}

/* A kept task with room for len bytes, the smallest that fits, or NULL.
 * Lock held. */
static struct iscsi_task *cache_take(struct iscsi_conn *conn, uint32_t len)
{
    struct iscsi_task **best = NULL;
    for (struct iscsi_task **p = &conn->cache; *p; p = &(*p)->hnext)
        if ((*p)->cap >= len && (!best || (*p)->cap < (*best)->cap))
            best = p;
    if (!best)
        return NULL;
    struct iscsi_task *t = *best;
    *best = t->hnext;
    conn->cache_count--;
    conn->cache_bytes -= t->cap;
    return t;
}

/* Give kept tasks back until bytes more fit (SIZE_MAX: all of them).
 * Lock held. */
static bool cache_drop(struct iscsi_conn *conn, size_t bytes)
{
    while (conn->cache) {
        if (bytes != SIZE_MAX && mem_reserve(&conn->c.mem, bytes))
            return true;
        struct iscsi_task *t = conn->cache;
        conn->cache = t->hnext;
        conn->cache_count--;
        conn->cache_bytes -= t->cap;
        task_destroy(conn, t);
    }
    return bytes != SIZE_MAX && mem_reserve(&conn->c.mem, bytes);
}

void iscsi_task_cache_trim(struct conn *c)
{
    cache_drop(iscsi_conn_of(c), SIZE_MAX);
}

void iscsi_task_cache_free(struct iscsi_conn *conn)
{
    pthread_mutex_lock(&conn->c.lock);
    cache_drop(conn, SIZE_MAX);
    pthread_mutex_unlock(&conn->c.lock);
}

/* A task that will send nothing: gone now. Lock held. */
static void task_drop(struct iscsi_conn *conn, struct iscsi_task *t)
{
    if (t->state == TASK_HELD) {
        conn->held[t->cmdsn % ISCSI_QUEUE_DEPTH] = NULL;
        conn->held_count--;
    }
    task_unlink(conn, t);
    task_retire(conn, t);
    iscsi_task_release(conn, t);
    conn_done_locked(&conn->c);
}

void iscsi_tasks_drop(struct iscsi_conn *conn)
{
    pthread_mutex_lock(&conn->c.lock);
    for (unsigned b = 0; b < ISCSI_TASK_BUCKETS; b++) {
        struct iscsi_task *t = conn->tasks[b];
        while (t) {
            struct iscsi_task *next = t->hnext;
            if (t->state == TASK_DATA || t->state == TASK_HELD)
                task_drop(conn, t);
            t = next;
        }
    }
    pthread_mutex_unlock(&conn->c.lock);
}

/* ------------------------------------------------------------------ */
/* Responses                                                           */
/* ------------------------------------------------------------------ */

static void build_scsi_rsp(struct iscsi_task *t, uint8_t rflags,
                           uint32_t resid)
{
    spd_scsi_cmd *cmd = &t->cmd;
    uint8_t *slot = t->slot_one;
    uint32_t len = 0;
    memset(slot, 0, ISCSI_SLOT);
    slot[0] = ISCSI_OP_SCSI_RSP;
    slot[1] = ISCSI_FLAG_FINAL | rflags;
    slot[3] = cmd->scsi_status;
    if (cmd->sense_len) {
        /* SenseLength, then the sense data. */
        put_be16(t->sense, cmd->sense_len);
        memcpy(t->sense + 2, cmd->sense, cmd->sense_len);
        len = 2u + cmd->sense_len;
    }
    put_be24(slot + 5, len);
    put_be32(slot + 16, t->itt);
    put_be32(slot + 36, t->dir == SPD_DIR_OUT ? t->r2tsn : 0);  /* ExpDataSN */
    if (rflags)
        put_be32(slot + 44, resid);
    iscsi_slot_trailer(t->conn, slot, t->sense, len);
    t->out = (struct iscsi_out){ .slots = &t->slot_one, .npdu = 1,
                                 .data = t->sense, .sn = ISCSI_SN_TAKE,
                                 .kind = ISCSI_OUT_TASK };
}

/* The end of the piece starting at off: within the initiator's segment
 * size, and never across a burst (a Data-In sequence is at most
 * MaxBurstLength). */
static uint32_t piece_len(uint32_t off, uint32_t total, uint32_t seg,
                          uint32_t burst)
{
    uint32_t n = total - off;
    uint32_t to_burst = burst - off % burst;
    if (n > to_burst)
        n = to_burst;
    return n < seg ? n : seg;
}

/* Data-In PDUs for send bytes, the status in the last: false when out of
 * memory. */
static bool build_data_in(struct iscsi_task *t, uint32_t send, uint8_t rflags,
                          uint32_t resid)
{
    struct iscsi_conn *conn = t->conn;
    uint32_t seg = atomic_load(&conn->max_xmit_dsl);
    uint32_t burst = conn->p.max_burst;
    uint32_t n = 0;
    for (uint32_t off = 0; off < send; n++)
        off += piece_len(off, send, seg, burst);

    uint8_t (*slots)[ISCSI_SLOT] = n == 1 ? &t->slot_one
                                          : malloc((size_t)n * ISCSI_SLOT);
    if (!slots)
        return false;
    uint32_t off = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *slot = slots[i];
        uint32_t len = piece_len(off, send, seg, burst);
        bool last = i == n - 1;
        memset(slot, 0, ISCSI_BHS_LEN);
        slot[0] = ISCSI_OP_DATA_IN;
        if (last || (off + len) % burst == 0)
            slot[1] = ISCSI_FLAG_FINAL;
        if (last) {
            slot[1] |= ISCSI_DATA_STATUS | rflags;
            slot[3] = t->cmd.scsi_status;
            if (rflags)
                put_be32(slot + 44, resid);
        }
        put_be24(slot + 5, len);
        put_be32(slot + 16, t->itt);
        put_be32(slot + 20, ISCSI_RSVD_TAG);
        put_be32(slot + 36, i);                    /* DataSN */
        put_be32(slot + 40, off);                  /* Buffer Offset */
        iscsi_slot_trailer(conn, slot, t->buf + off, len);
        off += len;
    }
    t->out = (struct iscsi_out){ .slots = slots, .npdu = n, .data = t->buf,
                                 .sn = ISCSI_SN_TAKE, .kind = ISCSI_OUT_TASK };
    return true;
}

static void build_response(struct iscsi_task *t)
{
    spd_scsi_cmd *cmd = &t->cmd;
    bool good = cmd->scsi_status == SPD_STATUS_GOOD;
    uint32_t moved, expected;

    /* Residuals: what the command moves against what was expected. */
    if (t->dir == SPD_DIR_IN) {
        moved = good ? cmd->data_in_len : 0;
        expected = t->edtl_in;
    } else if (t->dir == SPD_DIR_OUT) {
        moved = t->spdtl;
        expected = t->edtl_out;
    } else {
        moved = 0;
        expected = t->edtl_in > t->edtl_out ? t->edtl_in : t->edtl_out;
    }
    uint8_t rflags = 0;
    uint32_t resid = 0;
    if (moved > expected) {
        rflags = ISCSI_RSP_OVERFLOW;
        resid = moved - expected;
    } else if (moved < expected) {
        rflags = ISCSI_RSP_UNDERFLOW;
        resid = expected - moved;
    }

    uint32_t send = 0;
    if (good && t->dir == SPD_DIR_IN)
        send = cmd->data_in_len < t->edtl_in ? cmd->data_in_len : t->edtl_in;
    if (send && build_data_in(t, send, rflags, resid))
        return;
    if (send) {
        /* No memory for the PDU headers: let the initiator retry. */
        cmd->scsi_status = SPD_STATUS_BUSY;
        cmd->sense_len = 0;
        rflags = expected ? ISCSI_RSP_UNDERFLOW : 0;
        resid = expected;
    }
    build_scsi_rsp(t, rflags, resid);
}

static void tmf_answer_locked(struct iscsi_conn *conn, struct iscsi_tmf *tmf)
{
    iscsi_queue_locked(conn, &tmf->msg->out);
    free(tmf);
}

/* The command is over: queue its response, unless it was aborted. */
static void task_respond(struct iscsi_task *t)
{
    struct iscsi_conn *conn = t->conn;
    build_response(t);
    pthread_mutex_lock(&conn->c.lock);
    if (t->aborted) {
        struct iscsi_tmf *tmf = t->tmf;
        task_drop(conn, t);
        if (tmf && --tmf->waiting == 0)
            tmf_answer_locked(conn, tmf);
    } else {
        task_unlink(conn, t);
        task_retire(conn, t);
        t->state = TASK_DONE;
        iscsi_queue_locked(conn, &t->out);
    }
    pthread_mutex_unlock(&conn->c.lock);
}

static void task_done(spd_scsi_cmd *cmd)
{
    task_respond(cmd->opaque);
}

/* ------------------------------------------------------------------ */
/* Execution                                                           */
/* ------------------------------------------------------------------ */

static void task_execute(struct iscsi_task *t)
{
    spd_scsi_cmd *cmd = &t->cmd;
    t->state = TASK_RUNNING;
    if (t->failed) {
        task_respond(t);
        return;
    }
    cmd->data = t->buf;
    cmd->data_len = t->dir == SPD_DIR_OUT ? t->need : t->buf_len;
    cmd->done = task_done;
    cmd->opaque = t;
    spd_unit_scsi(t->unit, cmd);
}

static int issue_r2t(struct iscsi_conn *conn, struct iscsi_task *t)
{
    struct iscsi_r2t *r = NULL;
    for (unsigned i = 0; i < ISCSI_MAX_R2T && !r; i++)
        if (!t->r2t[i].length)
            r = &t->r2t[i];
    struct iscsi_msg *m = r ? iscsi_msg_new(ISCSI_OP_R2T, 0) : NULL;
    if (!m)
        return -1;
    uint32_t len = min_u32(t->need - t->r2t_next, conn->p.max_burst);
    *r = (struct iscsi_r2t){ .ttt = iscsi_new_ttt(conn),
                             .offset = t->r2t_next, .length = len };
    memcpy(m->slot + 8, t->lun, 8);
    put_be32(m->slot + 16, t->itt);
    put_be32(m->slot + 20, r->ttt);
    put_be32(m->slot + 36, t->r2tsn++);
    put_be32(m->slot + 40, r->offset);
    put_be32(m->slot + 44, len);
    m->out.sn = ISCSI_SN_PEEK;
    t->r2t_next += len;
    t->r2t_count++;
    iscsi_queue(conn, &m->out);
    return 0;
}

/* All data in: run it, or hold it while a command numbered before it
 * has not arrived (RFC 7143: commands reach the SCSI layer in CmdSN
 * order). */
static void task_ready(struct iscsi_conn *conn, struct iscsi_task *t)
{
    pthread_mutex_lock(&conn->c.lock);
    bool hold = t->in_window && !sn_lt(t->cmdsn, conn->exp_cmd_sn);
    if (hold) {
        t->state = TASK_HELD;
        conn->held[t->cmdsn % ISCSI_QUEUE_DEPTH] = t;
        conn->held_count++;
    }
    pthread_mutex_unlock(&conn->c.lock);
    if (!hold)
        task_execute(t);
}

void iscsi_tasks_release(struct iscsi_conn *conn)
{
    /* Only the connection thread holds or drops held tasks: no lock
     * needed to see there are none (the common case). */
    if (!conn->held_count)
        return;
    for (;;) {
        struct iscsi_task *t = NULL;
        pthread_mutex_lock(&conn->c.lock);
        /* The window holds at most ISCSI_QUEUE_DEPTH CmdSNs before
         * ExpCmdSN that can still be held: oldest first. */
        for (uint32_t back = ISCSI_QUEUE_DEPTH; back && conn->held_count && !t;
             back--) {
            uint32_t sn = conn->exp_cmd_sn - back;
            struct iscsi_task **h = &conn->held[sn % ISCSI_QUEUE_DEPTH];
            if (*h && (*h)->cmdsn == sn) {
                t = *h;
                *h = NULL;
                conn->held_count--;
            }
        }
        pthread_mutex_unlock(&conn->c.lock);
        if (!t)
            return;
        task_execute(t);
    }
}

/* After data arrived: ask for more, or run the command. */
static int task_advance(struct iscsi_conn *conn, struct iscsi_task *t)
{
    if (t->unsol_open)
        return 0;
    if (t->received < t->need) {
        if (t->r2t_next < t->received)
            t->r2t_next = t->received;
        while (t->r2t_count < conn->p.max_r2t && t->r2t_count < ISCSI_MAX_R2T &&
               t->r2t_next < t->need)
            if (issue_r2t(conn, t))
                return -1;
        return 0;
    }
    if (!t->r2t_count)
        task_ready(conn, t);
    return 0;
}

/* ------------------------------------------------------------------ */
/* PDU handlers                                                        */
/* ------------------------------------------------------------------ */

/* Read past a data segment nobody wants. */
static int skip_segment(struct iscsi_conn *conn, uint32_t len)
{
    return iscsi_recv_segment(conn, NULL, 0, len) < 0 ? -1 : 0;
}

/* Extended CDB and bidirectional read length AHS: 0 or -1. */
static int parse_ahs(const uint8_t *hdr, spd_scsi_cmd *cmd, uint32_t *bidi)
{
    const uint8_t *a = hdr + ISCSI_BHS_LEN;
    uint32_t total = hdr[4] * 4u;
    for (uint32_t pos = 0; pos < total; ) {
        if (total - pos < 4)
            return -1;
        uint32_t len = get_be16(a + pos);
        uint8_t type = a[pos + 2];
        uint32_t span = (3 + len + 3) & ~3u;
        if (pos + span > total)
            return -1;
        if (type == ISCSI_AHS_EXTENDED_CDB) {
            if (len < 2 || 16 + len - 1 > SPD_CDB_MAX)
                return -1;
            memcpy(cmd->cdb + 16, a + pos + 4, len - 1);
            cmd->cdb_len = (uint8_t)(16 + len - 1);
        } else if (type == ISCSI_AHS_BIDI_LENGTH) {
            if (len != 5)
                return -1;
            *bidi = get_be32(a + pos + 4);
        }
        pos += span;
    }
    return 0;
}

int iscsi_scsi_command(struct iscsi_conn *conn, const uint8_t *hdr)
{
    uint32_t dsl = get_be24(hdr + 5);
    bool immediate = hdr[0] & ISCSI_OP_IMMEDIATE;
    bool final = hdr[1] & ISCSI_FLAG_FINAL;
    bool rd = hdr[1] & ISCSI_CMD_READ, wr = hdr[1] & ISCSI_CMD_WRITE;
    uint32_t itt = get_be32(hdr + 16), edtl = get_be32(hdr + 20);
    spd_scsi_cmd cmd = { SPD_SCSI_CMD_INIT, .cdb_len = 16,
                         .nexus = &conn->nexus };
    uint32_t bidi = 0;

    memcpy(cmd.cdb, hdr + 32, 16);
    if (conn->discovery || parse_ahs(hdr, &cmd, &bidi) ||
        (dsl && (!wr || !conn->p.immediate_data || dsl > conn->p.first_burst ||
                 dsl > edtl)) ||
        (!final && (!wr || conn->p.initial_r2t))) {
        /* A command this session cannot take, or data against the
         * negotiated rules: nothing sensible to go on with. */
        iscsi_reject(conn, hdr, ISCSI_REJECT_PROTOCOL);
        return -1;
    }

    pthread_mutex_lock(&conn->c.lock);
    if (task_find(conn, itt)) {
        pthread_mutex_unlock(&conn->c.lock);
        iscsi_reject(conn, hdr, ISCSI_REJECT_TASK_ACTIVE);
        return -1;
    }
    bool take = immediate ? conn->immediate_used < ISCSI_MAX_IMMEDIATE
                          : iscsi_cmdsn_take(conn, get_be32(hdr + 24), true);
    conn->immediate_used += immediate && take;
    pthread_mutex_unlock(&conn->c.lock);
    if (!take) {
        if (immediate)
            iscsi_reject(conn, hdr, ISCSI_REJECT_IMMEDIATE);
        return skip_segment(conn, dsl);     /* outside the window: ignored */
    }

    uint32_t edtl_out = wr ? edtl : 0;
    uint32_t edtl_in = rd ? (wr ? bidi : edtl) : 0;
    struct iscsi_plan p;
    iscsi_plan_command(conn, &cmd, hdr + 8, edtl_out, &p);

    /* The buffer is counted against the memory ceilings before it is
     * made; a command that does not fit ends with TASK SET FULL at once
     * (the initiator retries it later), so that no Data-Out waits. */
    size_t size = mem_size(sizeof(struct iscsi_task) + p.buf_len);
    pthread_mutex_lock(&conn->c.lock);
    struct iscsi_task *t = cache_take(conn, p.buf_len);
    if (!t && !p.buf_len)
        mem_charge(&conn->c.mem, size);     /* no data: never refused */
    else if (!t && !cache_drop(conn, size)) {
        spd_status full = { .scsi_status = ISCSI_STATUS_TASK_SET_FULL };
        spd_scsi_cmd_set_status(p.unit, &cmd, &full);
        p.failed = true;
        p.dir = SPD_DIR_NONE;
        p.buf_len = p.need = 0;
        size = sizeof *t;
        mem_charge(&conn->c.mem, size);
    }
    pthread_mutex_unlock(&conn->c.lock);

    if (t) {
        size = t->size;
    } else if (!(t = mem_alloc(size))) {
        pthread_mutex_lock(&conn->c.lock);
        mem_release(&conn->c.mem, size);
        pthread_mutex_unlock(&conn->c.lock);
        return -1;                  /* out of memory: the session ends */
    }
    memset(t, 0, sizeof *t);
    t->size = size;
    t->cap = (uint32_t)(size - sizeof *t);
    t->conn = conn;
    t->lu = p.lu;
    t->unit = p.unit;
    t->itt = itt;
    t->cmdsn = get_be32(hdr + 24);
    memcpy(t->lun, hdr + 8, 8);
    t->immediate = immediate;
    t->in_window = !immediate;
    t->failed = p.failed;
    t->dir = p.dir;
    t->spdtl = p.spdtl;
    t->edtl_in = edtl_in;
    t->edtl_out = edtl_out;
    t->need = p.need;
    t->buf = t->data;
    t->buf_len = p.buf_len;
    t->cmd = cmd;

    pthread_mutex_lock(&conn->c.lock);
    struct iscsi_task **b = bucket(conn, itt);
    t->hnext = *b;
    *b = t;
    conn->c.pending++;
    pthread_mutex_unlock(&conn->c.lock);

    if (dsl) {
        int r = iscsi_recv_segment(conn, t->buf, min_u32(dsl, t->need), dsl);
        if (r) {
            if (r > 0)      /* no recovery of a digest error at ERL 0 */
                iscsi_reject(conn, hdr, ISCSI_REJECT_DIGEST);
            return -1;
        }
    }
    t->received = dsl;
    t->unsol_open = !final;
    t->unsol_end = final ? dsl : min_u32(conn->p.first_burst, edtl_out);
    return task_advance(conn, t);
}

/*
 * A Data-Out that breaks the rules. With no recovery at ErrorRecoveryLevel
 * 0 the PDU is rejected and its data skipped, and a task still collecting
 * data ends with CHECK CONDITION, ABORTED COMMAND (RFC 7143: a Reject
 * never ends a task by itself); the connection goes on.
 */
static int data_out_error(struct iscsi_conn *conn, const uint8_t *hdr,
                          struct iscsi_task *t, uint8_t reason, uint16_t asc,
                          bool skip)
{
    iscsi_reject(conn, hdr, reason);
    if (skip && skip_segment(conn, get_be24(hdr + 5)))
        return -1;
    if (t && t->state == TASK_DATA) {
        spd_status st;
        spd_status_set_sense(&st, SPD_KEY_ABORTED_COMMAND, SPD_ASC(asc),
                             SPD_ASCQ(asc));
        spd_scsi_cmd_set_status(t->unit, &t->cmd, &st);
        t->failed = true;
        task_execute(t);
    }
    return 0;
}

int iscsi_data_out(struct iscsi_conn *conn, const uint8_t *hdr)
{
    uint32_t dsl = get_be24(hdr + 5);
    bool final = hdr[1] & ISCSI_FLAG_FINAL;
    uint32_t itt = get_be32(hdr + 16), ttt = get_be32(hdr + 20);
    uint32_t datasn = get_be32(hdr + 36), offset = get_be32(hdr + 40);

    pthread_mutex_lock(&conn->c.lock);
    struct iscsi_task *t = task_find(conn, itt);
    bool collecting = t && t->state == TASK_DATA;
    pthread_mutex_unlock(&conn->c.lock);
    if (!t)
        return skip_segment(conn, dsl);  /* for an aborted task: dropped */
    if (!collecting)                     /* data after all was in */
        return data_out_error(conn, hdr, NULL, ISCSI_REJECT_PROTOCOL,
                              SPD_ASC_NO_ADDITIONAL_SENSE, true);

    /* DataPDUInOrder and DataSequenceInOrder are Yes: data comes at
     * increasing offsets, each sequence numbered from 0. */
    struct iscsi_r2t *r = NULL;
    uint32_t limit, expect_sn;
    if (ttt == ISCSI_RSVD_TAG) {
        if (!t->unsol_open)              /* unexpected unsolicited data */
            return data_out_error(conn, hdr, t, ISCSI_REJECT_PROTOCOL,
                                  SPD_ASC_UNEXPECTED_UNSOLICITED_DATA, true);
        limit = t->unsol_end;
        expect_sn = t->unsol_datasn;
    } else {
        for (unsigned i = 0; i < ISCSI_MAX_R2T && !r; i++)
            if (t->r2t[i].length && t->r2t[i].ttt == ttt)
                r = &t->r2t[i];
        if (!r || t->unsol_open)         /* INVALID TARGET PORT TRANSFER TAG */
            return data_out_error(conn, hdr, t, ISCSI_REJECT_INVALID_FIELD,
                                  SPD_ASC_INVALID_TARGET_PORT_TRANSFER_TAG, true);
        limit = r->offset + r->length;
        expect_sn = r->datasn;
    }
    if (datasn != expect_sn)             /* DATA PHASE ERROR */
        return data_out_error(conn, hdr, t, ISCSI_REJECT_PROTOCOL,
                              SPD_ASC_DATA_PHASE_ERROR, true);
    if (offset != t->received ||         /* DATA OFFSET ERROR */
        (r && offset != r->offset + r->done))  /* not this R2T's range */
        return data_out_error(conn, hdr, t, ISCSI_REJECT_PROTOCOL,
                              SPD_ASC_DATA_OFFSET_ERROR, true);
    if (dsl > limit - offset)            /* TOO MUCH WRITE DATA */
        return data_out_error(conn, hdr, t, ISCSI_REJECT_PROTOCOL,
                              SPD_ASC_TOO_MUCH_WRITE_DATA, true);

    uint32_t keep = offset < t->need ? min_u32(dsl, t->need - offset) : 0;
    int rr = iscsi_recv_segment(conn, keep ? t->buf + offset : NULL, keep,
                                dsl);
    if (rr < 0)
        return -1;
    if (rr > 0)                          /* PROTOCOL SERVICE CRC ERROR */
        return data_out_error(conn, hdr, t, ISCSI_REJECT_DIGEST, SPD_ASC_CRC_ERROR, false);
    t->received += dsl;
    if (!r) {
        t->unsol_datasn++;
        if (final)
            t->unsol_open = false;
    } else {
        r->datasn++;
        r->done += dsl;
        if (r->done == r->length) {
            *r = (struct iscsi_r2t){ 0 };
            t->r2t_count--;
        } else if (final) {              /* a short sequence */
            return data_out_error(conn, hdr, t, ISCSI_REJECT_PROTOCOL,
                                  SPD_ASC_NOT_ENOUGH_UNSOLICITED_DATA, false);
        }
    }
    return task_advance(conn, t);
}

/* ------------------------------------------------------------------ */
/* Task management                                                     */
/* ------------------------------------------------------------------ */

/* Abort one task: gone now if still collecting data; if in the unit, its
 * response is dropped and tmf answers once it is out. Lock held. */
static void abort_task(struct iscsi_conn *conn, struct iscsi_task *t,
                       struct iscsi_tmf *tmf)
{
    if (t->state == TASK_DATA || t->state == TASK_HELD) {
        task_drop(conn, t);
        return;
    }
    if (!t->aborted) {
        t->aborted = true;
        t->tmf = tmf;
        tmf->waiting++;
    }
}

/* Every task of lu (NULL: of every LUN). Lock held. */
static void abort_all(struct iscsi_conn *conn, const struct iscsi_lu *lu,
                      struct iscsi_tmf *tmf)
{
    for (unsigned b = 0; b < ISCSI_TASK_BUCKETS; b++) {
        struct iscsi_task *t = conn->tasks[b];
        while (t) {
            struct iscsi_task *next = t->hnext;
            if (!lu || t->lu == lu)
                abort_task(conn, t, tmf);
            t = next;
        }
    }
}

int iscsi_task_mgmt(struct iscsi_conn *conn, const uint8_t *hdr)
{
    uint8_t function = hdr[1] & 0x7f;
    uint32_t cmdsn = get_be32(hdr + 24);
    uint32_t ref_itt = get_be32(hdr + 20), ref_cmdsn = get_be32(hdr + 32);

    pthread_mutex_lock(&conn->c.lock);
    bool take = (hdr[0] & ISCSI_OP_IMMEDIATE) ||
                iscsi_cmdsn_take(conn, cmdsn, false);
    pthread_mutex_unlock(&conn->c.lock);
    if (!take)
        return 0;
    if (conn->discovery) {
        iscsi_reject(conn, hdr, ISCSI_REJECT_PROTOCOL);
        return 0;
    }
    struct iscsi_msg *m = iscsi_msg_new(ISCSI_OP_TMF_RSP, 0);
    struct iscsi_tmf *tmf = calloc(1, sizeof *tmf);
    if (!m || !tmf) {
        free(m);
        free(tmf);
        return -1;
    }
    tmf->msg = m;
    memcpy(m->slot + 16, hdr + 16, 4);             /* ITT */

    unsigned lun;
    const struct iscsi_lu *lu = iscsi_lun_decode(hdr + 8, &lun)
                                ? iscsi_find_lu(conn->node, lun) : NULL;
    uint8_t response = ISCSI_TMF_RSP_COMPLETE;
    pthread_mutex_lock(&conn->c.lock);
    switch (function) {
    case ISCSI_TMF_ABORT_TASK: {
        struct iscsi_task *t = task_find(conn, ref_itt);
        if (!lu)
            response = ISCSI_TMF_RSP_NO_LUN;
        else if (t && t->lu == lu)
            abort_task(conn, t, tmf);
        else if (t || sn_lt(ref_cmdsn, conn->exp_cmd_sn) ||
                 !sn_lt(ref_cmdsn, cmdsn))
            /* Answered already (or never sent): no such task. A CmdSN
             * not yet received counts as received and aborted. */
            response = ISCSI_TMF_RSP_NO_TASK;
        break;
    }
    case ISCSI_TMF_ABORT_TASK_SET:
    case ISCSI_TMF_CLEAR_TASK_SET:
    case ISCSI_TMF_LUN_RESET:
        if (!lu) {
            response = ISCSI_TMF_RSP_NO_LUN;
            break;
        }
        abort_all(conn, lu, tmf);
        if (function == ISCSI_TMF_LUN_RESET)
            spd_unit_scsi_reset(lu->unit);
        break;
    case ISCSI_TMF_TARGET_WARM_RESET:
    case ISCSI_TMF_TARGET_COLD_RESET:
        abort_all(conn, NULL, tmf);
        for (unsigned i = 0; i < conn->node->lu_count; i++)
            spd_unit_scsi_reset(conn->node->lus[i].unit);
        /* A cold reset ends the connection once answered. */
        m->out.close_after = function == ISCSI_TMF_TARGET_COLD_RESET;
        break;
    case ISCSI_TMF_CLEAR_ACA:
        response = ISCSI_TMF_RSP_NOT_SUPPORTED;    /* NACA is never set */
        break;
    case ISCSI_TMF_TASK_REASSIGN:
        response = ISCSI_TMF_RSP_NO_REASSIGN;      /* ERL 0 */
        break;
    default:
        response = ISCSI_TMF_RSP_REJECTED;
        break;
    }
    m->slot[2] = response;
    if (!tmf->waiting)
        tmf_answer_locked(conn, tmf);
    pthread_mutex_unlock(&conn->c.lock);
    return 0;
}
