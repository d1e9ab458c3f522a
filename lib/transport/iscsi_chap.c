/*
 * iscsi_chap.c - CHAP for the login's security stage (RFC 1994 with MD5,
 * RFC 7143 "CHAP Considerations"): the challenge, the check of the
 * initiator's answer, the target's own answer for mutual CHAP, binary
 * values in hex and base64; and the throttle that slows down guessing.
 *
 * Guessing secrets is slowed down: each failed authentication waits
 * before its answer, longer after each failure from the same address or
 * for the same user name, and each failure is logged; an address has at
 * most LOGINS_PER_ADDRESS logins in progress at once.
 */
#include <arpa/inet.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/bytes.h"
#include "transport/iscsi_int.h"

#define CHAP_MD5          5
#define CHAP_DIGEST_LEN   16
#define CHAP_MAX_BINARY   1024        /* RFC 7143: challenges up to 1024 bytes */

/*
 * The throttle. Constants, not options: they cost an initiator that knows
 * its secret nothing (it never fails), and no value an administrator
 * could pick would serve better; an option would only offer a way to
 * switch the defence off. The delay doubles from CHAP_FAIL_DELAY_MS with
 * each failure of the address or user name, up to CHAP_FAIL_DELAY_MAX_MS
 * (about 4 guesses a minute per address and per name once there), and the
 * count is forgotten CHAP_FAIL_FORGET_MS after the last failure.
 * LOGINS_PER_ADDRESS bounds the logins one address holds at once, so that
 * slow unauthenticated logins from one place leave room for the others.
 */
#define LOGINS_PER_ADDRESS     8
#define CHAP_FAIL_DELAY_MS     500
#define CHAP_FAIL_DELAY_MAX_MS 16000
#define CHAP_FAIL_FORGET_MS    (10 * 60 * 1000)
#define THROTTLE_SLOTS         256    /* addresses and names remembered */

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
        if (t->failures && now - t->last_ms > CHAP_FAIL_FORGET_MS)
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
 * LOGINS_PER_ADDRESS in progress. */
static bool throttle_enter(const char *addr, const char *peer)
{
    pthread_mutex_lock(&throttle_lock);
    struct throttle *t = *addr ? throttle_get('a', addr) : NULL;
    bool ok = !t || t->in_login < LOGINS_PER_ADDRESS;
    if (t && ok)
        t->in_login++;
    if (t && !ok && !t->refusal_logged) {
        t->refusal_logged = true;
        fprintf(stderr, "spd: iscsi: refused a login from %s: %u logins "
                "from that address in progress already\n", peer,
                LOGINS_PER_ADDRESS);
    }
    pthread_mutex_unlock(&throttle_lock);
    return ok;
}

static void throttle_leave(const char *addr)
{
    pthread_mutex_lock(&throttle_lock);
    struct throttle *t = *addr ? throttle_get('a', addr) : NULL;
    if (t && t->in_login && --t->in_login < LOGINS_PER_ADDRESS)
        t->refusal_logged = false;
    pthread_mutex_unlock(&throttle_lock);
}

static unsigned delay_ms(unsigned failures)
{
    unsigned ms = CHAP_FAIL_DELAY_MS;
    while (--failures && ms < CHAP_FAIL_DELAY_MAX_MS)
        ms *= 2;
    return ms < CHAP_FAIL_DELAY_MAX_MS ? ms : CHAP_FAIL_DELAY_MAX_MS;
}

/* A failed authentication: counted, logged, and the wait in
 * milliseconds before its answer. */
static unsigned throttle_fail(const char *addr, const char *user,
                              const char *peer)
{
    pthread_mutex_lock(&throttle_lock);
    unsigned worst = 0;
    struct throttle *t[2] = {
        *addr ? throttle_get('a', addr) : NULL,
        *user ? throttle_get('u', user) : NULL,
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
            *user ? "user \"" : "no user", user, *user ? "\"" : "",
            peer, worst, ms);
    return ms;
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

bool iscsi_login_enter(struct conn *c, char *addr, size_t size)
{
    snprintf(addr, size, "%s", c->host);     /* the server's, at accept */
    return throttle_enter(addr, c->peer);
}

void iscsi_login_leave(const char *addr)
{
    throttle_leave(addr);
}

void iscsi_chap_failed(struct conn *c, const char *addr, const char *user)
{
    login_sleep(c, throttle_fail(addr, user, c->peer));
}

void iscsi_chap_passed(const char *user)
{
    if (!*user)
        return;
    pthread_mutex_lock(&throttle_lock);
    struct throttle *t = throttle_get('u', user);
    if (t)
        t->failures = 0;
    pthread_mutex_unlock(&throttle_lock);
}

/* ------------------------------------------------------------------ */
/* Binary values: 0x hex or 0b base64 (RFC 7143 "binary-value")         */
/* ------------------------------------------------------------------ */

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

int iscsi_binary_decode(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        s += 2;
        size_t digits = strlen(s);
        if (!digits)
            return -1;
        bool odd = digits & 1;       /* a leading 0 nibble is implied */
        for (size_t i = 0; i < digits; ) {
            int hi = odd && i == 0 ? 0 : hex_digit(s[i++]);
            int lo = hex_digit(s[i++]);
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
        size_t len = strlen(s), pad = 0;
        while (len && s[len - 1] == '=') {
            len--;
            pad++;
        }
        /* RFC 4648: whole groups of four when padded, and never a lone
         * character in the last group (it holds no whole byte). */
        if (!len || len % 4 == 1 || pad > 2 || (pad && (len + pad) % 4))
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
/* The exchange                                                        */
/* ------------------------------------------------------------------ */

uint16_t iscsi_chap_challenge(struct iscsi_chap_state *s,
                              const char *algorithms, struct iscsi_text *out)
{
    char md5[8];
    snprintf(md5, sizeof md5, "%d", CHAP_MD5);
    if (!iscsi_list_has(algorithms, md5))
        return ISCSI_LOGIN_AUTH_FAILED;
    if (getrandom(&s->id, 1, 0) != 1 ||
        getrandom(s->challenge, sizeof s->challenge, 0) !=
            (ssize_t)sizeof s->challenge)
        return ISCSI_LOGIN_TARGET_ERROR;
    char hex[2 * ISCSI_CHAP_CHALLENGE_LEN + 3];
    encode_hex(s->challenge, sizeof s->challenge, hex);
    iscsi_text_add(out, "CHAP_A", md5);
    iscsi_text_addf(out, "CHAP_I", "%u", s->id);
    iscsi_text_add(out, "CHAP_C", hex);
    return ISCSI_LOGIN_OK;
}

uint16_t iscsi_chap_check(struct iscsi_chap_state *s, const char *name,
                          const char *response, const char *id_text,
                          const char *challenge, struct iscsi_text *out)
{
    const struct iscsi_chap *secrets = s->secrets;
    uint8_t got[CHAP_MAX_BINARY], want[CHAP_DIGEST_LEN];

    /* Kept for the throttle and log lines: printable only. */
    snprintf(s->user, sizeof s->user, "%s", name);
    for (char *c = s->user; *c; c++)
        if (*c < ' ' || *c > '~')
            *c = '?';
    const struct iscsi_chap_user *user = NULL;
    for (unsigned i = 0; i < secrets->user_count; i++)
        if (!strcmp(secrets->users[i].name, name))
            user = &secrets->users[i];
    if (!user ||
        iscsi_binary_decode(response, got, sizeof got) != CHAP_DIGEST_LEN ||
        chap_md5(s->id, user->secret, user->secret_len, s->challenge,
                 sizeof s->challenge, want) || !same_digest(got, want))
        return ISCSI_LOGIN_AUTH_FAILED;
    if (!id_text && !challenge)
        return ISCSI_LOGIN_OK;

    /* Mutual CHAP: only with the target's own secret, and never for a
     * challenge that is ours sent back (a reflection attack). */
    uint64_t id;
    int len;
    if (!id_text || !challenge || !secrets->mutual_name ||
        iscsi_parse_number(id_text, &id) || id > 255 ||
        (len = iscsi_binary_decode(challenge, got, sizeof got)) <= 0 ||
        ((size_t)len == sizeof s->challenge &&
         !memcmp(got, s->challenge, sizeof s->challenge)) ||
        chap_md5((uint8_t)id, secrets->mutual_secret, secrets->mutual_len,
                 got, (size_t)len, want))
        return ISCSI_LOGIN_AUTH_FAILED;
    char hex[2 * CHAP_DIGEST_LEN + 3];
    encode_hex(want, sizeof want, hex);
    iscsi_text_add(out, "CHAP_N", secrets->mutual_name);
    iscsi_text_add(out, "CHAP_R", hex);
    return ISCSI_LOGIN_OK;
}
