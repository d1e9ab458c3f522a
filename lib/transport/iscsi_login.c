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
 *
 * Guessing secrets is slowed down: each failed login waits before its
 * answer, longer after each failure from the same address or for the same
 * user name, and each failure is logged; an address has at most
 * LOGIN_PER_PEER logins in progress at once.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "transport/iscsi_int.h"

#define CHAP_MD5          5
#define CHAP_DIGEST_LEN   16
#define CHAP_CHALLENGE_LEN 32
#define CHAP_MAX_BINARY   1024        /* RFC 7143: challenges up to 1024 bytes */
#define LOGIN_MAX_KEYS    256
#define LOGIN_PER_PEER    8           /* logins in progress per address */
#define LOGIN_DELAY_MS    500         /* after a first failure, doubling */
#define LOGIN_DELAY_MAX_MS 16000
#define LOGIN_FORGET_MS   (10 * 60 * 1000)  /* failures this old are over */
#define THROTTLE_SLOTS    256

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
    const struct iscsi_chap *chap;      /* secrets required, or NULL */
    enum auth_state auth;
    uint8_t chap_id;
    uint8_t challenge[CHAP_CHALLENGE_LEN];
    bool declared;                      /* our MaxRecvDataSegmentLength */
    bool sent_tpgt;
    uint32_t stat_sn, exp_cmd_sn;
    uint32_t itt;
    char text[ISCSI_TEXT_MAX];          /* request text, across C bits */
    size_t text_len;
    char addr[INET6_ADDRSTRLEN];        /* the peer's, "" for a Unix socket */
    char user[ISCSI_NAME_MAX + 1];      /* CHAP_N given, "" before */
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
/* Throttling: failures and logins in progress, shared by connections  */
/* ------------------------------------------------------------------ */

/* One address ("a:" ADDR) or user name ("u:" NAME) with a recent
 * failure or a login in progress. */
struct throttle {
    char name[2 + ISCSI_NAME_MAX + 1];
    unsigned failures, in_login;
    bool refusal_logged;
    int64_t last_ms;                    /* of the last failure */
};

static struct throttle throttles[THROTTLE_SLOTS];
static pthread_mutex_t throttle_lock = PTHREAD_MUTEX_INITIALIZER;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The entry of kind:name, made when missing (reusing the one forgotten
 * longest), or NULL when the table is busy. throttle_lock held. */
static struct throttle *throttle_get(char kind, const char *name)
{
    char key[sizeof throttles[0].name];
    snprintf(key, sizeof key, "%c:%s", kind, name);
    int64_t now = mono_ms();
    struct throttle *spare = NULL;
    for (unsigned i = 0; i < THROTTLE_SLOTS; i++) {
        struct throttle *t = &throttles[i];
        if (t->failures && now - t->last_ms > LOGIN_FORGET_MS)
            t->failures = 0;
        if (!strcmp(t->name, key))
            return t;
        if (!t->in_login && !t->failures &&
            (!spare || t->last_ms < spare->last_ms))
            spare = t;
    }
    if (spare) {
        memset(spare, 0, sizeof *spare);
        strcpy(spare->name, key);
    }
    return spare;
}

/* A login from addr begins: false (logged once) when it already has
 * LOGIN_PER_PEER in progress. */
static bool throttle_enter(const char *addr, const char *peer)
{
    pthread_mutex_lock(&throttle_lock);
    struct throttle *t = *addr ? throttle_get('a', addr) : NULL;
    bool ok = !t || t->in_login < LOGIN_PER_PEER;
    if (t && ok)
        t->in_login++;
    if (t && !ok && !t->refusal_logged) {
        t->refusal_logged = true;
        fprintf(stderr, "spd: iscsi: refused a login from %s: %u logins "
                "from that address in progress already\n", peer,
                LOGIN_PER_PEER);
    }
    pthread_mutex_unlock(&throttle_lock);
    return ok;
}

static void throttle_leave(const char *addr)
{
    pthread_mutex_lock(&throttle_lock);
    struct throttle *t = *addr ? throttle_get('a', addr) : NULL;
    if (t && t->in_login && --t->in_login < LOGIN_PER_PEER)
        t->refusal_logged = false;
    pthread_mutex_unlock(&throttle_lock);
}

static unsigned delay_ms(unsigned failures)
{
    unsigned ms = LOGIN_DELAY_MS;
    while (--failures && ms < LOGIN_DELAY_MAX_MS)
        ms *= 2;
    return ms < LOGIN_DELAY_MAX_MS ? ms : LOGIN_DELAY_MAX_MS;
}

/* A failed authentication: counted, logged, and the wait before its
 * answer in milliseconds. */
static unsigned throttle_fail(const struct login *l)
{
    pthread_mutex_lock(&throttle_lock);
    unsigned worst = 0;
    struct throttle *t[2] = {
        *l->addr ? throttle_get('a', l->addr) : NULL,
        *l->user ? throttle_get('u', l->user) : NULL,
    };
    for (unsigned i = 0; i < 2; i++) {
        if (!t[i])
            continue;
        t[i]->failures++;
        t[i]->last_ms = mono_ms();
        if (t[i]->failures > worst)
            worst = t[i]->failures;
    }
    pthread_mutex_unlock(&throttle_lock);
    unsigned ms = delay_ms(worst ? worst : 1);
    fprintf(stderr, "spd: iscsi: authentication failed for %s%s%s from %s "
            "(%u failures); answering in %u ms\n",
            *l->user ? "user \"" : "no user", l->user, *l->user ? "\"" : "",
            l->conn->c.peer, worst, ms);
    return ms;
}

/* Authenticated: the user's failures are over. */
static void throttle_pass(const struct login *l)
{
    if (!*l->user)
        return;
    pthread_mutex_lock(&throttle_lock);
    struct throttle *t = throttle_get('u', l->user);
    if (t)
        t->failures = 0;
    pthread_mutex_unlock(&throttle_lock);
}

/* Wait ms, or less when the server stops. */
static void login_sleep(struct conn *c, unsigned ms)
{
    int64_t end = mono_ms() + ms, left;
    while (!atomic_load(&c->stop) && (left = end - mono_ms()) > 0) {
        struct pollfd p = { .fd = c->wake_fd, .events = POLLIN };
        uint64_t drain;
        if (poll(&p, 1, (int)left) > 0 &&
            read(c->wake_fd, &drain, sizeof drain) < 0) {
            /* Nothing to drain: fine. */
        }
    }
}

/* The peer's address without the port: "" when it has none. */
static void peer_addr(int fd, char *buf, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    buf[0] = 0;
    if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
        return;
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, buf,
                  (socklen_t)size);
    else if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, buf,
                  (socklen_t)size);
}

/* ------------------------------------------------------------------ */
/* Binary values: 0x hex or 0b base64 (RFC 7143 "binary-value")         */
/* ------------------------------------------------------------------ */

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int b64_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Decode into out (at most cap bytes): length, or -1. */
static int decode_binary(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        s += 2;
        size_t digits = strlen(s);
        if (!digits)
            return -1;
        bool odd = digits & 1;       /* a leading 0 nibble is implied */
        for (size_t i = 0; i < digits; ) {
            int hi = odd && i == 0 ? 0 : hex_val(s[i++]);
            int lo = hex_val(s[i++]);
            if (hi < 0 || lo < 0 || n == cap)
                return -1;
            out[n++] = (uint8_t)(hi << 4 | lo);
            odd = false;
        }
        return (int)n;
    }
    if (s[0] == '0' && (s[1] == 'b' || s[1] == 'B')) {
        s += 2;
        uint32_t acc = 0;
        int bits = 0;
        size_t len = strlen(s);
        while (len && s[len - 1] == '=')
            len--;
        if (!len)
            return -1;
        for (size_t i = 0; i < len; i++) {
            int v = b64_val(s[i]);
            if (v < 0)
                return -1;
            acc = acc << 6 | (uint32_t)v;
            bits += 6;
            if (bits >= 8) {
                bits -= 8;
                if (n == cap)
                    return -1;
                out[n++] = (uint8_t)(acc >> bits);
            }
        }
        return (int)n;
    }
    return -1;
}

static void encode_hex(const uint8_t *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    *out++ = '0';
    *out++ = 'x';
    for (size_t i = 0; i < n; i++) {
        *out++ = digits[b[i] >> 4];
        *out++ = digits[b[i] & 15];
    }
    *out = '\0';
}

/* RFC 1994: MD5 over the identifier, the secret and the challenge. */
static int chap_md5(uint8_t id, const uint8_t *secret, size_t secret_len,
                    const uint8_t *challenge, size_t challenge_len,
                    uint8_t digest[CHAP_DIGEST_LEN])
{
    size_t len = 1 + secret_len + challenge_len;
    uint8_t *buf = malloc(len);
    if (!buf)
        return -1;
    buf[0] = id;
    memcpy(buf + 1, secret, secret_len);
    memcpy(buf + 1 + secret_len, challenge, challenge_len);
    int r = gnutls_hash_fast(GNUTLS_DIG_MD5, buf, len, digest);
    explicit_bzero(buf, len);
    free(buf);
    return r < 0 ? -1 : 0;
}

static bool same_digest(const uint8_t *a, const uint8_t *b)
{
    uint8_t diff = 0;
    for (int i = 0; i < CHAP_DIGEST_LEN; i++)
        diff |= a[i] ^ b[i];
    return !diff;
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

static bool in_list(const char *list, const char *word)
{
    size_t wlen = strlen(word);
    for (const char *s = list; *s; ) {
        size_t n = strcspn(s, ",");
        if (n == wlen && !strncmp(s, word, n))
            return true;
        s += n;
        if (*s)
            s++;
    }
    return false;
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
    l->chap = iscsi_node_chap(conn->tgt, conn->node);
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
    if (l->chap) {
        if (!in_list(value, "CHAP"))
            return fail(a, ISCSI_LOGIN_AUTH_FAILED);
        iscsi_text_add(&a->text, "AuthMethod", "CHAP");
        l->auth = AUTH_WANT_A;
        return ISCSI_LOGIN_OK;
    }
    if (!in_list(value, "None"))
        return fail(a, ISCSI_LOGIN_AUTH_FAILED);
    iscsi_text_add(&a->text, "AuthMethod", "None");
    l->auth = AUTH_DONE;
    return ISCSI_LOGIN_OK;
}

static uint16_t chap_algorithm(struct login *l, const char *value,
                               struct answer *a)
{
    char buf[8];
    snprintf(buf, sizeof buf, "%d", CHAP_MD5);
    if (l->auth != AUTH_WANT_A)
        return fail(a, ISCSI_LOGIN_INITIATOR_ERROR);
    if (!in_list(value, buf))
        return fail(a, ISCSI_LOGIN_AUTH_FAILED);
    if (getrandom(&l->chap_id, 1, 0) != 1 ||
        getrandom(l->challenge, sizeof l->challenge, 0) !=
            (ssize_t)sizeof l->challenge)
        return fail(a, ISCSI_LOGIN_TARGET_ERROR);
    char hex[2 * CHAP_CHALLENGE_LEN + 3];
    encode_hex(l->challenge, sizeof l->challenge, hex);
    iscsi_text_add(&a->text, "CHAP_A", buf);
    iscsi_text_addf(&a->text, "CHAP_I", "%u", l->chap_id);
    iscsi_text_add(&a->text, "CHAP_C", hex);
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
    const char *id_text = kv_get(kv, n, "CHAP_I");
    const char *chal_text = kv_get(kv, n, "CHAP_C");
    uint8_t got[CHAP_MAX_BINARY], want[CHAP_DIGEST_LEN];

    if (l->auth != AUTH_CHALLENGED || !name || !resp)
        return fail(a, ISCSI_LOGIN_AUTH_FAILED);
    /* Kept for the throttle and log lines: printable only. */
    snprintf(l->user, sizeof l->user, "%s", name);
    for (char *c = l->user; *c; c++)
        if (*c < ' ' || *c > '~')
            *c = '?';
    const struct iscsi_chap_user *user = NULL;
    for (unsigned i = 0; i < l->chap->user_count; i++)
        if (!strcmp(l->chap->users[i].name, name))
            user = &l->chap->users[i];
    if (!user || decode_binary(resp, got, sizeof got) != CHAP_DIGEST_LEN ||
        chap_md5(l->chap_id, user->secret, user->secret_len, l->challenge,
                 sizeof l->challenge, want) || !same_digest(got, want))
        return fail(a, ISCSI_LOGIN_AUTH_FAILED);

    if (!id_text && !chal_text) {
        l->auth = AUTH_DONE;
        return ISCSI_LOGIN_OK;
    }
    /* Mutual CHAP: only with the target's own secret, and never for a
     * challenge that is ours sent back (a reflection attack). */
    uint64_t id;
    int len;
    if (!id_text || !chal_text || !l->chap->mutual_name ||
        iscsi_parse_number(id_text, &id) || id > 255 ||
        (len = decode_binary(chal_text, got, sizeof got)) <= 0 ||
        ((size_t)len == sizeof l->challenge &&
         !memcmp(got, l->challenge, sizeof l->challenge)) ||
        chap_md5((uint8_t)id, l->chap->mutual_secret, l->chap->mutual_len,
                 got, (size_t)len, want))
        return fail(a, ISCSI_LOGIN_AUTH_FAILED);
    char hex[2 * CHAP_DIGEST_LEN + 3];
    encode_hex(want, sizeof want, hex);
    iscsi_text_add(&a->text, "CHAP_N", l->chap->mutual_name);
    iscsi_text_add(&a->text, "CHAP_R", hex);
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
    struct iscsi_conn *conn = l->conn;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(kv[j].key, kv[i].key))
                return fail(a, ISCSI_LOGIN_INITIATOR_ERROR);   /* twice */
    for (int rank = 0; rank < iscsi_key_count(); rank++) {
        for (int i = 0; i < n; i++) {
            bool fatal = false;
            if (iscsi_key_rank(kv[i].key) != rank)
                continue;
            iscsi_key_negotiate(&conn->p, conn->discovery, kv[i].key,
                                kv[i].value, &a->text, &fatal);
            if (fatal)
                return fail(a, ISCSI_LOGIN_INITIATOR_ERROR);
        }
    }
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
    if (conn->p.first_burst > conn->p.max_burst)
        conn->p.first_burst = conn->p.max_burst;
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
        iscsi_text_add(&a->text, "TargetPortalGroupTag", "1");
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
        if (l->chap && l->auth != AUTH_DONE) {
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
            if (l->auth == AUTH_START && l->chap)
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
    peer_addr(conn->c.fd, l->addr, sizeof l->addr);
    if (!throttle_enter(l->addr, conn->c.peer)) {
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
            login_sleep(&conn->c, throttle_fail(l));
        if (!a.status && a.transit && a.nsg == ISCSI_STAGE_FULL) {
            throttle_pass(l);
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
    throttle_leave(l->addr);
    explicit_bzero(l, sizeof *l);
    free(l);
    return full;
}
