/*
 * iscsi_int.h - the iSCSI target's wire constants (RFC 7143) and the state
 * shared by its files:
 *
 *   iscsi_target.c  target names, LUNs, CHAP secrets, the life of each
 *                   connection on the server core (server.h), session
 *                   reinstatement;
 *   iscsi_login.c   the login phase: stages, keys, login responses;
 *   iscsi_chap.c    CHAP, and the throttle of failed logins;
 *   iscsi_keys.c    text keys: parsing, negotiation, SendTargets;
 *   iscsi_pdu.c     full feature phase: receiving PDUs in batches,
 *                   digests, the send queue, NOP, Text, Logout, Reject;
 *   iscsi_plan.c    what a command will do: its LUN, direction and
 *                   length, residual rules, answers the target gives;
 *   iscsi_scsi.c    SCSI commands: Data-Out, R2T, Data-In, responses,
 *                   task management.
 *
 * Threads: each connection has its own thread that reads and parses; a
 * command completes on whatever thread its unit finished it. Everything a
 * completion touches (the send queue, sequence numbers, the task table)
 * is under conn->c.lock.
 */
#ifndef SPD_ISCSI_INT_H
#define SPD_ISCSI_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/bytes.h"
#include "transport/net.h"
#include "transport/server.h"
#include "spd/iscsi.h"

/* ------------------------------------------------------------------ */
/* Wire format                                                         */
/* ------------------------------------------------------------------ */

#define ISCSI_BHS_LEN     48
#define ISCSI_DIGEST_LEN  4
#define ISCSI_RSVD_TAG    0xffffffffu

/* Opcodes (byte 0, bits 5-0); ISCSI_OP_IMMEDIATE is the I bit. */
enum {
    ISCSI_OP_NOP_OUT    = 0x00,
    ISCSI_OP_SCSI_CMD   = 0x01,
    ISCSI_OP_TMF_REQ    = 0x02,
    ISCSI_OP_LOGIN_REQ  = 0x03,
    ISCSI_OP_TEXT_REQ   = 0x04,
    ISCSI_OP_DATA_OUT   = 0x05,
    ISCSI_OP_LOGOUT_REQ = 0x06,
    ISCSI_OP_SNACK_REQ  = 0x10,
    ISCSI_OP_NOP_IN     = 0x20,
    ISCSI_OP_SCSI_RSP   = 0x21,
    ISCSI_OP_TMF_RSP    = 0x22,
    ISCSI_OP_LOGIN_RSP  = 0x23,
    ISCSI_OP_TEXT_RSP   = 0x24,
    ISCSI_OP_DATA_IN    = 0x25,
    ISCSI_OP_LOGOUT_RSP = 0x26,
    ISCSI_OP_R2T        = 0x31,
    ISCSI_OP_ASYNC      = 0x32,
    ISCSI_OP_REJECT     = 0x3f,
};
#define ISCSI_OP_IMMEDIATE 0x40
#define ISCSI_OP_MASK      0x3f

/* Byte 1 flags. */
#define ISCSI_FLAG_FINAL     0x80
#define ISCSI_FLAG_CONTINUE  0x40   /* Text and Login: C */
#define ISCSI_CMD_READ       0x40   /* SCSI Command: R */
#define ISCSI_CMD_WRITE      0x20   /* SCSI Command: W */
#define ISCSI_LOGIN_TRANSIT  0x80   /* Login: T */
#define ISCSI_RSP_OVERFLOW   0x04   /* SCSI Response and Data-In: O */
#define ISCSI_RSP_UNDERFLOW  0x02   /* U */
#define ISCSI_DATA_STATUS    0x01   /* Data-In: S */

/* Login stages. */
enum {
    ISCSI_STAGE_SECURITY    = 0,
    ISCSI_STAGE_OPERATIONAL = 1,
    ISCSI_STAGE_FULL        = 3,
};

/* Login status: class << 8 | detail. */
enum {
    ISCSI_LOGIN_OK                 = 0x0000,
    ISCSI_LOGIN_INITIATOR_ERROR    = 0x0200,
    ISCSI_LOGIN_AUTH_FAILED        = 0x0201,
    ISCSI_LOGIN_FORBIDDEN          = 0x0202,
    ISCSI_LOGIN_NOT_FOUND          = 0x0203,
    ISCSI_LOGIN_UNSUPPORTED_VERSION = 0x0205,
    ISCSI_LOGIN_TOO_MANY_CONNS     = 0x0206,
    ISCSI_LOGIN_MISSING_PARAMETER  = 0x0207,
    ISCSI_LOGIN_NO_SESSION_TYPE    = 0x0209,
    ISCSI_LOGIN_NO_SESSION         = 0x020a,
    ISCSI_LOGIN_INVALID_REQUEST    = 0x020b,
    ISCSI_LOGIN_TARGET_ERROR       = 0x0300,
    ISCSI_LOGIN_UNAVAILABLE        = 0x0301,
    ISCSI_LOGIN_NO_RESOURCES       = 0x0302,
};

/* Reject reasons. */
enum {
    ISCSI_REJECT_DIGEST        = 0x02,
    ISCSI_REJECT_SNACK         = 0x03,
    ISCSI_REJECT_PROTOCOL      = 0x04,
    ISCSI_REJECT_UNSUPPORTED   = 0x05,
    ISCSI_REJECT_IMMEDIATE     = 0x06,
    ISCSI_REJECT_TASK_ACTIVE   = 0x07,
    ISCSI_REJECT_INVALID_FIELD = 0x09,
    ISCSI_REJECT_RESOURCES     = 0x0a,
    ISCSI_REJECT_LOGOUT        = 0x0c,
};

/* Task management functions and responses. */
enum {
    ISCSI_TMF_ABORT_TASK      = 1,
    ISCSI_TMF_ABORT_TASK_SET  = 2,
    ISCSI_TMF_CLEAR_ACA       = 3,
    ISCSI_TMF_CLEAR_TASK_SET  = 4,
    ISCSI_TMF_LUN_RESET       = 5,
    ISCSI_TMF_TARGET_WARM_RESET = 6,
    ISCSI_TMF_TARGET_COLD_RESET = 7,
    ISCSI_TMF_TASK_REASSIGN   = 8,
};
enum {
    ISCSI_TMF_RSP_COMPLETE      = 0,
    ISCSI_TMF_RSP_NO_TASK       = 1,
    ISCSI_TMF_RSP_NO_LUN        = 2,
    ISCSI_TMF_RSP_NO_REASSIGN   = 4,
    ISCSI_TMF_RSP_NOT_SUPPORTED = 5,
    ISCSI_TMF_RSP_REJECTED      = 255,
};

/* Logout reasons and responses. */
enum {
    ISCSI_LOGOUT_SESSION    = 0,
    ISCSI_LOGOUT_CONNECTION = 1,
    ISCSI_LOGOUT_RECOVERY   = 2,
};
enum {
    ISCSI_LOGOUT_RSP_OK          = 0,
    ISCSI_LOGOUT_RSP_NO_CID      = 1,
    ISCSI_LOGOUT_RSP_NO_RECOVERY = 2,
};

/* AHS types. */
#define ISCSI_AHS_EXTENDED_CDB 1
#define ISCSI_AHS_BIDI_LENGTH  2

/* SAM status the transport itself answers with. */
#define ISCSI_STATUS_TASK_SET_FULL 0x28

/* ------------------------------------------------------------------ */
/* Limits                                                              */
/* ------------------------------------------------------------------ */

#define ISCSI_NAME_MAX        223
#define ISCSI_MAX_LUN         16383
#define ISCSI_QUEUE_DEPTH     128         /* commands per session */
#define ISCSI_MAX_IMMEDIATE   64          /* immediate commands at once */
#define ISCSI_MAX_RECV_DSL    262144      /* our MaxRecvDataSegmentLength */
#define ISCSI_LOGIN_DSL       8192        /* the default, used in login */
#define ISCSI_MAX_BURST       16776192    /* ours for MaxBurstLength, FirstBurstLength */
#define ISCSI_MAX_R2T         16          /* ours for MaxOutstandingR2T */
#define ISCSI_TEXT_MAX        65536       /* a whole text or login negotiation */
/* Commands moving more than this fail with INVALID FIELD IN CDB. */
#define ISCSI_MAX_TRANSFER    (64u * 1024 * 1024)
/* The connection thread sends what is queued before the end of a batch
 * once this much data waits: the initiator gets big reads sooner and
 * sends its next commands while the next reads are copied. */
#define ISCSI_FLUSH_BYTES     (256u * 1024)
/* Released tasks kept per connection for reuse: buffers the device reads
 * into stay mapped (fresh large buffers cost a page fault per page).
 * Data buffers, these included, count against the memory ceilings
 * (memory.h): beyond them a command gets TASK SET FULL. */
#define ISCSI_CACHE_TASKS     64
#define ISCSI_CACHE_BYTES     (64u * 1024 * 1024)
/* Idle this long: NOP-In ping; a second time without answer: drop. */
#ifndef ISCSI_PING_SECONDS
#define ISCSI_PING_SECONDS    30
#endif
#define ISCSI_INPUT_BUFFER    (2u * ISCSI_MAX_RECV_DSL)
#define ISCSI_TASK_BUCKETS    256

/* Serial number arithmetic (RFC 1982, 32 bits). */
static inline bool sn_lt(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) < 0;
}

static inline uint32_t pad4(uint32_t len)
{
    return (4 - (len & 3)) & 3;
}

/* Digests travel least significant byte first. */
static inline void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* ------------------------------------------------------------------ */
/* Target configuration                                                */
/* ------------------------------------------------------------------ */

struct iscsi_chap_user {
    char *name;
    uint8_t *secret;
    size_t secret_len;
};

struct iscsi_chap {
    struct iscsi_chap_user *users;      /* initiators that may log in */
    unsigned user_count;
    char *mutual_name;                  /* the target's own, or NULL */
    uint8_t *mutual_secret;
    size_t mutual_len;
};

/* A LUN and its unit: the engine's spd_scsi_lun, so that a node's list is
 * the one REPORT LUNS reports. */
#define iscsi_lu spd_scsi_lun

/* One target name and its logical units (sorted by LUN). */
struct iscsi_node {
    struct iscsi_node *next;
    char name[ISCSI_NAME_MAX + 1];
    struct iscsi_lu *lus;
    unsigned lu_count;
    struct iscsi_chap *chap;            /* NULL: the target's default */
};

struct iscsi_conn;

struct spd_iscsi_target {
    struct server srv;                  /* listeners, connections */
    struct iscsi_node *nodes;
    struct iscsi_chap *chap;            /* default: discovery and others */
    uint16_t next_tsih;                 /* under srv.lock */
};

/* ------------------------------------------------------------------ */
/* Connections                                                         */
/* ------------------------------------------------------------------ */

/* Operational parameters of a session (one connection each). */
struct iscsi_params {
    bool header_digest;
    bool data_digest;
    uint32_t max_recv_dsl;      /* ours: the largest data segment we take */
    uint32_t max_xmit_dsl;      /* the initiator's: our Data-In pieces */
    uint32_t max_burst;
    uint32_t first_burst;
    bool initial_r2t;
    bool immediate_data;
    uint32_t max_r2t;
    uint32_t time2wait;
    uint32_t time2retain;
};

/*
 * A message for the initiator: one or more PDUs, each in a slot holding
 * its header, header digest, then padding and data digest for its data
 * segment. PDU i's data is at data + (its Buffer Offset for Data-In, else
 * 0), DataSegmentLength bytes.
 */
#define ISCSI_SLOT 64
#define ISCSI_SLOT_TRAILER (ISCSI_BHS_LEN + ISCSI_DIGEST_LEN)

/* How the last PDU of a message uses StatSN. */
enum iscsi_sn {
    ISCSI_SN_NONE,      /* no StatSN field (Data-In without S) */
    ISCSI_SN_PEEK,      /* carries the next StatSN, does not take it */
    ISCSI_SN_TAKE,      /* takes the next StatSN */
};

enum iscsi_out_kind {
    ISCSI_OUT_FREE,     /* free() the message once sent */
    ISCSI_OUT_TASK,     /* a task's response: release the task */
};

struct iscsi_out {
    struct conn_out co;         /* in the send queue */
    uint8_t (*slots)[ISCSI_SLOT];
    uint32_t npdu;
    const uint8_t *data;
    uint8_t sn;                 /* enum iscsi_sn */
    uint8_t kind;               /* enum iscsi_out_kind */
    bool close_after;           /* Logout Response: end the connection */
};

/* A standalone message of one PDU with its data after it. */
struct iscsi_msg {
    struct iscsi_out out;
    uint8_t slot[ISCSI_SLOT];
    _Alignas(8) uint8_t data[];
};

struct iscsi_task;
struct iscsi_tmf;

struct iscsi_conn {
    struct conn c;                      /* socket, input, send queue, lock */
    spd_iscsi_target *tgt;

    /* Set by login; read-only afterwards. */
    bool logged_in;                     /* full feature phase reached */
    bool discovery;
    const struct iscsi_node *node;      /* NULL in discovery sessions */
    char initiator[ISCSI_NAME_MAX + 1];
    uint8_t isid[6];
    spd_scsi_nexus nexus;               /* initiator name + ISID */
    uint16_t tsih;
    uint16_t cid;
    struct iscsi_params p;
    _Atomic uint32_t max_xmit_dsl;      /* may change by Text in FFP */

    /* Receive side: the connection thread only. */
    uint32_t next_ttt;
    uint8_t *text_in;                   /* Text Request data with C set */
    size_t text_in_len;
    char *text_out;                     /* Text Response still to send */
    size_t text_out_len, text_out_off;
    uint32_t text_ttt;
    bool ping_sent;                     /* no answer to our NOP-In yet */
    uint32_t ping_ttt;
    bool logging_out;
    bool logout_answered;
    uint8_t logout_hdr[ISCSI_BHS_LEN];

    /* Under c.lock (c.pending: tasks and messages not released). */
    _Atomic bool close_now;             /* a message closing it went out */
    uint32_t stat_sn;
    uint32_t exp_cmd_sn, max_cmd_sn;
    uint8_t ahead[32];                  /* CmdSNs got ahead of ExpCmdSN */
    unsigned window_used;               /* non-immediate tasks alive */
    /* Commands ready but ahead of a CmdSN gap, by CmdSN mod the window:
     * they reach the units in CmdSN order, once the gap is filled.
     * Changed by the connection thread only. */
    struct iscsi_task *held[ISCSI_QUEUE_DEPTH];
    unsigned held_count;
    /* Non-SCSI requests ahead of a CmdSN gap (iscsi_pdu.c), likewise.
     * The connection thread only. */
    struct iscsi_held_pdu *held_pdus[ISCSI_QUEUE_DEPTH];
    unsigned held_pdu_count;
    size_t held_pdu_bytes;
    unsigned immediate_used;
    unsigned pending;                   /* tasks and messages not released */
    struct iscsi_task *tasks[ISCSI_TASK_BUCKETS];
    struct iscsi_task *cache;           /* released tasks kept for reuse */
    unsigned cache_count;
    uint64_t cache_bytes;
};

/* ------------------------------------------------------------------ */
/* Functions shared between the files                                   */
/* ------------------------------------------------------------------ */

static inline struct iscsi_conn *iscsi_conn_of(struct conn *c)
{
    return (struct iscsi_conn *)c;
}

/* iscsi_target.c */
const struct iscsi_node *iscsi_find_node(const spd_iscsi_target *tgt,
                                         const char *name);
const struct iscsi_chap *iscsi_node_chap(const spd_iscsi_target *tgt,
                                         const struct iscsi_node *node);
const struct iscsi_lu *iscsi_find_lu(const struct iscsi_node *node,
                                     unsigned lun);
/* The target portal group tag of a target (its units' port group). */
uint16_t iscsi_node_tpgt(const struct iscsi_node *node);
/* A new TSIH for a session that reaches full feature phase, after ending
 * an older session of the same initiator port (reinstatement). */
uint16_t iscsi_session_begin(struct iscsi_conn *conn);

/* iscsi_login.c: the login phase; true when full feature phase begins. */
bool iscsi_login(struct iscsi_conn *conn);

/* iscsi_keys.c */
struct iscsi_kv {
    char *key;
    char *value;
};

/* A growing text of key=value pairs. */
struct iscsi_text {
    char *buf;
    size_t len, cap;
    bool failed;                        /* out of memory or too long */
};

void iscsi_text_add(struct iscsi_text *t, const char *key, const char *value);
void iscsi_text_addf(struct iscsi_text *t, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void iscsi_text_free(struct iscsi_text *t);
/* Split data (len bytes, modified in place) into pairs: count, or -1 when
 * malformed or more than max pairs. */
int iscsi_kv_parse(char *data, size_t len, struct iscsi_kv *kv, int max);
/* Negotiate one operational key (not the login-only ones): true when the
 * key is known (an answer may have been added to out), false for keys
 * this table does not know. *fatal is set for values that end a login. */
bool iscsi_key_negotiate(struct iscsi_params *p, bool discovery,
                         const char *key, const char *value,
                         struct iscsi_text *out, bool *fatal);
/* Where a key comes in the order keys are negotiated (some depend on
 * others), or -1 for keys iscsi_key_negotiate() does not know; and how
 * many it knows. */
int iscsi_key_rank(const char *key);
int iscsi_key_count(void);
/* Negotiate the operational keys among a login request's n pairs, in the
 * order of the key table, answers into out: 0, or -1 when a key came
 * twice or a value ends the login. The other keys are the caller's. */
int iscsi_keys_negotiate(struct iscsi_params *p, bool discovery,
                         const struct iscsi_kv *kv, int n,
                         struct iscsi_text *out);
/* Whether a comma-separated list of values holds word. */
bool iscsi_list_has(const char *list, const char *word);
/* Parse a numerical value (decimal or 0x hex): 0, or -1. */
int iscsi_parse_number(const char *s, uint64_t *v);
/* The default parameters before negotiation. */
void iscsi_params_default(struct iscsi_params *p);
/* SendTargets: append TargetName/TargetAddress lines for what (All, a
 * name, or "" for the session's own target); false for a bad value. */
bool iscsi_send_targets(struct iscsi_conn *conn, const char *what,
                        struct iscsi_text *out);
bool iscsi_name_valid(const char *name);

/* iscsi_chap.c: CHAP (RFC 1994 with MD5) in the security stage, and the
 * throttle of logins (failures delayed per address and user name, logins
 * in progress limited per address). Statuses are ISCSI_LOGIN_*. */
#define ISCSI_CHAP_CHALLENGE_LEN 32
struct iscsi_chap_state {
    const struct iscsi_chap *secrets;   /* the target's (NULL: no CHAP) */
    uint8_t id;                         /* CHAP_I and CHAP_C we sent */
    uint8_t challenge[ISCSI_CHAP_CHALLENGE_LEN];
    char user[ISCSI_NAME_MAX + 1];      /* CHAP_N given, printable; "" */
};
/* CHAP_A (the algorithms offered): CHAP_A, CHAP_I and CHAP_C into out. */
uint16_t iscsi_chap_challenge(struct iscsi_chap_state *s,
                              const char *algorithms, struct iscsi_text *out);
/* CHAP_N and CHAP_R checked; with CHAP_I and CHAP_C (either may be NULL),
 * mutual CHAP: the target's CHAP_N and CHAP_R into out. */
uint16_t iscsi_chap_check(struct iscsi_chap_state *s, const char *name,
                          const char *response, const char *id,
                          const char *challenge, struct iscsi_text *out);
/* A binary value (0x hex, 0b base64) into out: its length (at most cap),
 * or -1 when malformed or longer. */
int iscsi_binary_decode(const char *s, uint8_t *out, size_t cap);
/* A login from c's peer begins (its address, "" for none, into addr):
 * false (logged once) when that address has too many in progress. */
bool iscsi_login_enter(struct conn *c, char *addr, size_t size);
void iscsi_login_leave(const char *addr);
/* A failed authentication: counted, logged, and waited for. */
void iscsi_chap_failed(struct conn *c, const char *addr, const char *user);
/* Authenticated: the user name's failures are over. */
void iscsi_chap_passed(const char *user);

/* iscsi_pdu.c: full feature phase. */
void iscsi_full_feature(struct iscsi_conn *conn);
extern const struct conn_ops iscsi_conn_ops;
/* Fill in a message's sequence numbers and digests and queue it; sends at
 * once unless the connection thread is busy. Takes conn->c.lock. */
void iscsi_queue(struct iscsi_conn *conn, struct iscsi_out *out);
void iscsi_queue_locked(struct iscsi_conn *conn, struct iscsi_out *out);
/* A one-PDU message with room for len bytes of data, header zeroed with
 * the opcode and F bit set; NULL when out of memory. */
struct iscsi_msg *iscsi_msg_new(uint8_t opcode, uint32_t len);
/* Set DataSegmentLength and the data digest of a one-PDU message. */
void iscsi_msg_set_data(struct iscsi_conn *conn, struct iscsi_msg *m,
                        uint32_t len);
/* Send a Reject for the header hdr. */
void iscsi_reject(struct iscsi_conn *conn, const uint8_t *hdr, uint8_t reason);
/* Recompute MaxCmdSN after window_used changed. conn->c.lock held. */
void iscsi_window_update(struct iscsi_conn *conn);
/* Check a non-immediate CmdSN against the window and take it: true when
 * the PDU is to be processed, false when it must be dropped unseen. A
 * task takes a place in the window too. conn->c.lock held. */
bool iscsi_cmdsn_take(struct iscsi_conn *conn, uint32_t cmdsn, bool task);
/* Run, in CmdSN order, the held commands whose gap is filled. */
void iscsi_tasks_release(struct iscsi_conn *conn);
/* A Target Transfer Tag for an R2T, a ping or a text continuation. */
uint32_t iscsi_new_ttt(struct iscsi_conn *conn);
/* The padding and data digest that follow a slot's data segment of len
 * bytes at data. */
void iscsi_slot_trailer(const struct iscsi_conn *conn, uint8_t *slot,
                        const uint8_t *data, uint32_t len);
/* Data digests over len bytes and their padding. */
uint32_t iscsi_data_digest(const uint8_t *data, uint32_t len);
/* Receive a data segment of len bytes (plus padding and digest) whose
 * first keep bytes go to dst (NULL: nowhere): from the input buffer, then
 * the socket. 0, 1 for a bad data digest, -1 when the connection failed. */
int iscsi_recv_segment(struct iscsi_conn *conn, uint8_t *dst, uint32_t keep,
                       uint32_t len);

/* iscsi_plan.c */
/* What a command will do. */
struct iscsi_plan {
    const struct iscsi_lu *lu;  /* NULL: no such LUN */
    spd_unit *unit;             /* the LUN's unit, or NULL */
    bool failed;                /* the command's outcome is set already */
    spd_data_dir dir;
    uint32_t spdtl;             /* bytes the CDB (as sent) transfers */
    uint32_t buf_len;           /* the buffer the command needs */
    uint32_t need;              /* of it, Data-Out to collect */
};

static inline uint32_t min_u32(uint32_t a, uint32_t b)
{
    return a < b ? a : b;
}

/* SAM peripheral and flat LUN addressing: false for other forms. */
bool iscsi_lun_decode(const uint8_t *field, unsigned *lun);
/* Plan a command (the plan stays in cmd for spd_unit_scsi()); a write is
 * cut down to the Data-Out the initiator announced. */
void iscsi_plan_command(struct iscsi_conn *conn, spd_scsi_cmd *cmd,
                        const uint8_t *lun_field, uint32_t edtl_out,
                        struct iscsi_plan *p);


/* iscsi_scsi.c */
/* The PDU handlers: 0 to go on, -1 to close the connection. hdr is the
 * header (BHS and AHS), the data segment still unread. */
int iscsi_scsi_command(struct iscsi_conn *conn, const uint8_t *hdr);
int iscsi_data_out(struct iscsi_conn *conn, const uint8_t *hdr);
int iscsi_task_mgmt(struct iscsi_conn *conn, const uint8_t *hdr);
/* End of the connection: drop the tasks still waiting for data. */
void iscsi_tasks_drop(struct iscsi_conn *conn);
/* Free a task whose response went out (or was dropped). Lock held. */
void iscsi_task_release(struct iscsi_conn *conn, struct iscsi_task *task);
/* Free the tasks kept for reuse, at the end of the connection; trim:
 * the same when idle (conn_ops, c->lock held). */
void iscsi_task_cache_free(struct iscsi_conn *conn);
void iscsi_task_cache_trim(struct conn *c);

#endif /* SPD_ISCSI_INT_H */
