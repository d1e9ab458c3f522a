/*
 * iscsi_login.c - the login phase (RFC 7143 "Login and Full Feature Phase
 * Negotiation"): Login Requests are read one at a time, checked (version,
 * stages, transit rules), their keys answered, and each gets a Login
 * Response; any error ends the login with a status class and detail and
 * closes the connection.
 *
 * Security stage: AuthMethod None, or CHAP (RFC 1994) with MD5 when the
 * target has secrets: AuthMethod=CHAP, then CHAP_A -> CHAP_A/CHAP_I/CHAP_C,
 * then CHAP_N/CHAP_R (and, for mutual CHAP, the initiator's own CHAP_I and
 * CHAP_C, answered with the target's CHAP_N/CHAP_R).
 * The exchange itself and the throttle of failures are in iscsi_chap.c.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "transport/iscsi_int.h"

#define LOGIN_MAX_KEYS    256

enum auth_state {
    AUTH_START,         /* no AuthMethod chosen yet */
    AUTH_WANT_A,        /* AuthMethod=CHAP: CHAP_A expected */
    AUTH_CHALLENGED,    /* CHAP_N/CHAP_R expected */
    AUTH_DONE,          /* None chosen, or CHAP verified */
};

struct login {
    struct iscsi_conn *conn;
    bool first_seen;
    int stage;                          /* CSG the next request must have */
    enum auth_state auth;
    struct iscsi_chap_state chap;       /* .secrets: required, or NULL */
    bool declared;                      /* our MaxRecvDataSegmentLength */
    bool sent_tpgt;
    uint32_t stat_sn, exp_cmd_sn;
    uint32_t itt;
    char text[ISCSI_TEXT_MAX];          /* request text, across C bits */
    size_t text_len;
    char addr[INET6_ADDRSTRLEN];        /* the peer's, "" for a Unix socket */
};

/* What one request gets back. */
struct answer {
    uint16_t status;
    bool transit;
    int nsg;
    struct iscsi_text text;
};

static uint16_t fail(struct answer *a, uint16_t status)
{
    a->status = status;
    return status;
}

/* ------------------------------------------------------------------ */
/* Keys                                                                */
/* ------------------------------------------------------------------ */

static const char *kv_get(const struct iscsi_kv *kv, int n, const char *key)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(kv[i].key, key))
            return kv[i].value;
    return NULL;
}

/* Keys only the first request carries: who logs in to what. */
static uint16_t leading_keys(struct login *l, const struct iscsi_kv *kv,
                             int n, struct answer *a)
{
    struct iscsi_conn *conn = l->conn;
    const char *initiator = kv_get(kv, n, "InitiatorName");
    const char *type = kv_get(kv, n, "SessionType");
    const char *target = kv_get(kv, n, "TargetName");

    if (!initiator || !*initiator)
        return fail(a, ISCSI_LOGIN_MISSING_PARAMETER);
    if (strlen(initiator) > ISCSI_NAME_MAX)
        return fail(a, ISCSI_LOGIN_INITIATOR_ERROR);
    for (const char *c = initiator; *c; c++)
        if (*c <= ' ' || *c > '~')
            return fail(a, ISCSI_LOGIN_INITIATOR_ERROR);
    strcpy(conn->initiator, initiator);

    if (type && strcmp(type, "Normal") && strcmp(type, "Discovery"))
        return fail(a, ISCSI_LOGIN_NO_SESSION_TYPE);
    conn->discovery = type && !strcmp(type, "Discovery");
    if (!conn->discovery) {
        if (!target || !*target)
            return fail(a, ISCSI_LOGIN_MISSING_PARAMETER);
        conn->node = iscsi_find_node(conn->tgt, target);
        if (!conn->node)
            return fail(a, ISCSI_LOGIN_NOT_FOUND);
    }
    l->chap.secrets = iscsi_node_chap(conn->tgt, conn->node);
    return ISCSI_LOGIN_OK;
}

/* The same leading key again later must not change. */
static bool leading_key(const char *key)
{
    return !strcmp(key, "InitiatorName") || !strcmp(key, "SessionType") ||
           !strcmp(key, "TargetName") || !strcmp(key, "InitiatorAlias");
}

static bool security_key(const char *key)
{
    return !strcmp(key, "AuthMethod") || !strncmp(key, "CHAP_", 5);
}

static uint16_t auth_method(struct login *l, const char *value,
                            struct answer *a)
{
    if (l->auth != AUTH_START)
        return fail(a, ISCSI_LOGIN_INITIATOR_ERROR);
    if (l->chap.secrets) {
        if (!iscsi_list_has(value, "CHAP"))
            return fail(a, ISCSI_LOGIN_AUTH_FAILED);
        iscsi_text_add(&a->text, "AuthMethod", "CHAP");
        l->auth = AUTH_WANT_A;
        return ISCSI_LOGIN_OK;
    }
    if (!iscsi_list_has(value, "None"))
        return fail(a, ISCSI_LOGIN_AUTH_FAILED);
    iscsi_text_add(&a->text, "AuthMethod", "None");
    l->auth = AUTH_DONE;
    return ISCSI_LOGIN_OK;
}

static uint16_t chap_algorithm(struct login *l, const char *value,
                               struct answer *a)
{
    if (l->auth != AUTH_WANT_A)
        return fail(a, ISCSI_LOGIN_INITIATOR_ERROR);
    uint16_t st = iscsi_chap_challenge(&l->chap, value, &a->text);
    if (st)
        return fail(a, st);
    l->auth = AUTH_CHALLENGED;
    return ISCSI_LOGIN_OK;
}

/* CHAP_N/CHAP_R, and CHAP_I/CHAP_C when the initiator wants the target
 * to prove itself too. */
static uint16_t chap_response(struct login *l, const struct iscsi_kv *kv,
                              int n, struct answer *a)
{
    const char *name = kv_get(kv, n, "CHAP_N");
    const char *resp = kv_get(kv, n, "CHAP_R");
    if (l->auth != AUTH_CHALLENGED || !name || !resp)
        return fail(a, ISCSI_LOGIN_AUTH_FAILED);
    uint16_t st = iscsi_chap_check(&l->chap, name, resp,
                                   kv_get(kv, n, "CHAP_I"),
                                   kv_get(kv, n, "CHAP_C"), &a->text);
    if (st)
        return fail(a, st);
    l->auth = AUTH_DONE;
    return ISCSI_LOGIN_OK;
}

static uint16_t security_keys(struct login *l, const struct iscsi_kv *kv,
                              int n, struct answer *a)
{
    const char *v;
    uint16_t st = ISCSI_LOGIN_OK;
    if ((v = kv_get(kv, n, "AuthMethod")))
        st = auth_method(l, v, a);
    if (!st && (v = kv_get(kv, n, "CHAP_A")))
        st = chap_algorithm(l, v, a);
    if (!st && (kv_get(kv, n, "CHAP_N") || kv_get(kv, n, "CHAP_R")))
        st = chap_response(l, kv, n, a);
    else if (!st && (kv_get(kv, n, "CHAP_I") || kv_get(kv, n, "CHAP_C")))
        st = fail(a, ISCSI_LOGIN_AUTH_FAILED);
    return st;
}

/* Every other key: negotiated (in the order of the key table, as some
 * depend on others), or not understood. */
static uint16_t other_keys(struct login *l, const struct iscsi_kv *kv, int n,
                           struct answer *a)
{
    if (iscsi_keys_negotiate(&l->conn->p, l->conn->discovery, kv, n,
                             &a->text))
        return fail(a, ISCSI_LOGIN_INITIATOR_ERROR);
    for (int i = 0; i < n; i++) {
        const char *key = kv[i].key;
        if (leading_key(key) || security_key(key) || iscsi_key_rank(key) >= 0)
            continue;
        /* Keys only a target sends. */
        if (!strcmp(key, "TargetAlias") || !strcmp(key, "TargetAddress") ||
            !strcmp(key, "TargetPortalGroupTag"))
            return fail(a, ISCSI_LOGIN_INITIATOR_ERROR);
        iscsi_text_add(&a->text, key, "NotUnderstood");
    }
    return ISCSI_LOGIN_OK;
}

/* ------------------------------------------------------------------ */
/* One request                                                         */
/* ------------------------------------------------------------------ */

static uint16_t check_header(struct login *l, const uint8_t *hdr, int *csg,
                             int *nsg, bool *transit, bool *cont)
{
    struct iscsi_conn *conn = l->conn;
    uint8_t flags = hdr[1];
    *transit = flags & ISCSI_LOGIN_TRANSIT;
    *cont = flags & ISCSI_FLAG_CONTINUE;
    *csg = (flags >> 2) & 3;
    *nsg = flags & 3;

    if (!l->first_seen) {
        if (hdr[3] > 0)                  /* Version-min: we speak 0 */
            return ISCSI_LOGIN_UNSUPPORTED_VERSION;
        if (*csg == ISCSI_STAGE_OPERATIONAL)
            l->stage = *csg;             /* the security stage is skipped */
        memcpy(conn->isid, hdr + 8, 6);
        conn->cid = get_be16(hdr + 20);
        l->itt = get_be32(hdr + 16);
        l->exp_cmd_sn = get_be32(hdr + 24);
        uint16_t tsih = get_be16(hdr + 14);
        if (tsih) {
            /* Adding a connection to a session: one per session here. */
            bool exists = false;
            struct server *srv = &conn->tgt->srv;
            pthread_mutex_lock(&srv->lock);
            for (struct conn *c = srv->conns; c; c = c->next)
                exists |= iscsi_conn_of(c)->logged_in &&
                          iscsi_conn_of(c)->tsih == tsih;
            pthread_mutex_unlock(&srv->lock);
            return exists ? ISCSI_LOGIN_TOO_MANY_CONNS
                          : ISCSI_LOGIN_NO_SESSION;
        }
    } else if (memcmp(conn->isid, hdr + 8, 6) || get_be16(hdr + 14)) {
        return ISCSI_LOGIN_INITIATOR_ERROR;
    }
    if ((*transit && *cont) || *csg != l->stage ||
        *csg == ISCSI_STAGE_FULL || *csg == 2)
        return ISCSI_LOGIN_INITIATOR_ERROR;
    if (*transit && (*nsg <= *csg || *nsg == 2))
        return ISCSI_LOGIN_INITIATOR_ERROR;
    return ISCSI_LOGIN_OK;
}

static uint16_t process(struct login *l, int csg, bool transit, int nsg,
                        struct answer *a)
{
    struct iscsi_conn *conn = l->conn;
    struct iscsi_kv *kv = calloc(LOGIN_MAX_KEYS, sizeof *kv);
    if (!kv)
        return fail(a, ISCSI_LOGIN_NO_RESOURCES);
    int n = iscsi_kv_parse(l->text, l->text_len, kv, LOGIN_MAX_KEYS);
    uint16_t st = ISCSI_LOGIN_OK;
    if (n < 0) {
        st = fail(a, ISCSI_LOGIN_INITIATOR_ERROR);
        goto out;
    }
    if (!l->first_seen) {
        if ((st = leading_keys(l, kv, n, a)))
            goto out;
        l->first_seen = true;
    } else {
        for (int i = 0; i < n; i++) {
            if (leading_key(kv[i].key) && strcmp(kv[i].key, "InitiatorAlias")) {
                st = fail(a, ISCSI_LOGIN_INITIATOR_ERROR);
                goto out;
            }
        }
    }
    if (!l->sent_tpgt && !conn->discovery) {
        /* RFC 7143: in the first response of a normal session. */
        char tag[8];
        snprintf(tag, sizeof tag, "%u", (unsigned)iscsi_node_tpgt(conn->node));
        iscsi_text_add(&a->text, "TargetPortalGroupTag", tag);
        l->sent_tpgt = true;
    }

    if (csg == ISCSI_STAGE_SECURITY) {
        if ((st = security_keys(l, kv, n, a)))
            goto out;
    } else {
        for (int i = 0; i < n; i++) {
            if (security_key(kv[i].key)) {
                st = fail(a, ISCSI_LOGIN_INITIATOR_ERROR);
                goto out;
            }
        }
        /* Skipping the security stage is only for targets without
         * secrets. */
        if (l->chap.secrets && l->auth != AUTH_DONE) {
            st = fail(a, ISCSI_LOGIN_AUTH_FAILED);
            goto out;
        }
        l->auth = AUTH_DONE;
    }
    if ((st = other_keys(l, kv, n, a)))
        goto out;

    if (csg == ISCSI_STAGE_OPERATIONAL || (transit && nsg == ISCSI_STAGE_FULL)) {
        if (!l->declared) {
            iscsi_text_addf(&a->text, "MaxRecvDataSegmentLength", "%u",
                            conn->p.max_recv_dsl);
            l->declared = true;
        }
    }
    if (transit) {
        if (csg == ISCSI_STAGE_SECURITY && l->auth != AUTH_DONE) {
            /* Still authenticating: stay (no AuthMethod at all with
             * secrets required is a failure). */
            if (l->auth == AUTH_START && l->chap.secrets)
                st = fail(a, ISCSI_LOGIN_AUTH_FAILED);
            else if (l->auth == AUTH_START)
                l->auth = AUTH_DONE;    /* AuthMethod defaults to None */
        }
        if (!st && (csg != ISCSI_STAGE_SECURITY || l->auth == AUTH_DONE)) {
            a->transit = true;
            a->nsg = nsg;
        }
    }
    if (a->text.failed)
        st = fail(a, ISCSI_LOGIN_NO_RESOURCES);
out:
    free(kv);
    return st;
}

/* ------------------------------------------------------------------ */
/* The login loop                                                      */
/* ------------------------------------------------------------------ */

/* One Login Response with len bytes of text. */
static int send_pdu(struct login *l, const uint8_t *req, uint8_t flags,
                    uint16_t status, uint16_t tsih, const char *text,
                    size_t len)
{
    uint8_t hdr[ISCSI_BHS_LEN] = { ISCSI_OP_LOGIN_RSP, flags };
    put_be24(hdr + 5, (uint32_t)len);
    memcpy(hdr + 8, req + 8, 6);                       /* ISID */
    put_be16(hdr + 14, tsih);
    memcpy(hdr + 16, req + 16, 4);                     /* ITT */
    put_be32(hdr + 24, l->stat_sn++);
    put_be32(hdr + 28, l->exp_cmd_sn);
    put_be32(hdr + 32, l->exp_cmd_sn + ISCSI_QUEUE_DEPTH - 1);
    hdr[36] = (uint8_t)(status >> 8);
    hdr[37] = (uint8_t)status;

    static const uint8_t zeros[4];
    int fd = l->conn->c.fd;
    if (net_write_full(fd, hdr, sizeof hdr) ||
        (len && net_write_full(fd, text, len)) ||
        net_write_full(fd, zeros, pad4((uint32_t)len)))
        return -1;
    return 0;
}

static int read_request(struct login *l, uint8_t *hdr, uint8_t **data,
                        uint32_t *len);

/*
 * The answer to a request: text longer than a login PDU may carry goes in
 * pieces with the C bit, each asked for by an empty Login Request (RFC
 * 7143 "Text Mode Negotiation"); the last piece carries T and NSG.
 */
static int send_response(struct login *l, const uint8_t *req, int csg,
                         const struct answer *a)
{
    if (a->status)
        return send_pdu(l, req, 0, a->status, 0, NULL, 0);
    uint8_t next[ISCSI_BHS_LEN];
    const char *text = a->text.buf;
    size_t left = a->text.len;
    for (;;) {
        size_t len = left < ISCSI_LOGIN_DSL ? left : ISCSI_LOGIN_DSL;
        bool more = left > len;
        uint8_t flags = (uint8_t)(csg << 2);
        uint16_t tsih = 0;
        if (more) {
            flags |= ISCSI_FLAG_CONTINUE;
        } else if (a->transit) {
            flags |= ISCSI_LOGIN_TRANSIT | (uint8_t)a->nsg;
            if (a->nsg == ISCSI_STAGE_FULL)
                tsih = l->conn->tsih;
        }
        if (send_pdu(l, req, flags, 0, tsih, text, len))
            return -1;
        if (!more)
            return 0;
        text += len;
        left -= len;
        uint8_t *data;
        uint32_t dlen;
        if (read_request(l, next, &data, &dlen))
            return -1;
        free(data);
        if ((next[0] & ISCSI_OP_MASK) != ISCSI_OP_LOGIN_REQ || dlen ||
            (next[1] & (ISCSI_LOGIN_TRANSIT | ISCSI_FLAG_CONTINUE)) ||
            ((next[1] >> 2) & 3) != csg || memcmp(next + 8, req + 8, 6)) {
            /* Not the empty request for the next piece. */
            send_pdu(l, next, 0, ISCSI_LOGIN_INITIATOR_ERROR, 0, NULL, 0);
            return -1;
        }
        req = next;
    }
}

/* Read one PDU of the login phase (no digests yet): 0 or -1. */
static int read_request(struct login *l, uint8_t *hdr, uint8_t **data,
                        uint32_t *len)
{
    int fd = l->conn->c.fd;
    uint8_t ahs[1024];
    *data = NULL;
    if (net_read_full(fd, hdr, ISCSI_BHS_LEN))
        return -1;
    *len = get_be24(hdr + 5);
    if ((hdr[4] && net_read_full(fd, ahs, hdr[4] * 4u)) ||
        *len > ISCSI_TEXT_MAX)
        return -1;
    uint32_t total = *len + pad4(*len);
    if (total && (!(*data = malloc(total)) ||
                  net_read_full(fd, *data, total))) {
        free(*data);
        *data = NULL;
        return -1;
    }
    return 0;
}

static void login_done(struct login *l)
{
    struct iscsi_conn *conn = l->conn;
    conn->stat_sn = l->stat_sn;         /* the next one, after the last
                                           Login Response */
    conn->exp_cmd_sn = l->exp_cmd_sn;
    conn->max_cmd_sn = l->exp_cmd_sn + ISCSI_QUEUE_DEPTH - 1;
    conn->max_xmit_dsl = conn->p.max_xmit_dsl;
}

bool iscsi_login(struct iscsi_conn *conn)
{
    struct login *l = calloc(1, sizeof *l);
    if (!l)
        return false;
    l->conn = conn;
    if (!iscsi_login_enter(&conn->c, l->addr, sizeof l->addr)) {
        free(l);
        return false;
    }
    iscsi_params_default(&conn->p);
    if (getrandom(&l->stat_sn, sizeof l->stat_sn, 0) != sizeof l->stat_sn)
        l->stat_sn = 1;

    bool full = false;
    for (;;) {
        uint8_t hdr[ISCSI_BHS_LEN];
        uint8_t *data;
        uint32_t len;
        if (read_request(l, hdr, &data, &len))
            break;
        struct answer a = { 0 };
        int csg = l->stage, nsg = 0;
        bool transit = false, cont = false;
        uint8_t op = hdr[0] & ISCSI_OP_MASK;

        if (op != ISCSI_OP_LOGIN_REQ) {
            /* Only Login Requests until the login ends. */
            free(data);
            if (l->first_seen) {
                a.status = ISCSI_LOGIN_INVALID_REQUEST;
                send_response(l, hdr, csg, &a);
            }
            break;
        }
        a.status = check_header(l, hdr, &csg, &nsg, &transit, &cont);
        if (!a.status && l->text_len + len > sizeof l->text)
            a.status = ISCSI_LOGIN_INITIATOR_ERROR;
        if (!a.status && len) {
            memcpy(l->text + l->text_len, data, len);
            l->text_len += len;
        }
        free(data);
        if (!a.status && !cont) {
            a.status = process(l, csg, transit, nsg, &a);
            l->text_len = 0;
        }
        if (a.status == ISCSI_LOGIN_AUTH_FAILED)
            iscsi_chap_failed(&conn->c, l->addr, l->chap.user);
        if (!a.status && a.transit && a.nsg == ISCSI_STAGE_FULL) {
            iscsi_chap_passed(l->chap.user);
            iscsi_session_begin(conn);      /* the TSIH for the response */
        }
        int sent = send_response(l, hdr, csg, &a);
        iscsi_text_free(&a.text);
        if (sent || a.status)
            break;
        if (a.transit) {
            l->stage = a.nsg;
            if (a.nsg == ISCSI_STAGE_FULL) {
                login_done(l);
                full = true;
                break;
            }
        }
    }
    iscsi_login_leave(l->addr);
    explicit_bzero(l, sizeof *l);
    free(l);
    return full;
}
