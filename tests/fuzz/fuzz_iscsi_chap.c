/*
 * fuzz_iscsi_chap.c - arbitrary CHAP keys through the iSCSI target's CHAP
 * code (iscsi_chap.c) as the security stage uses it: the challenge for a
 * CHAP_A list, then the check of CHAP_N/CHAP_R and, for mutual CHAP, the
 * target's answer to CHAP_I/CHAP_C; every value also decoded as a binary
 * value (0x hex, 0b base64).
 *
 * The secrets: users "alice" and "bob", and the target's own (mutual)
 * name "target" with its secret.
 *
 * Input: one mode byte, then a text of key=value pairs (each ended by a
 * NUL). Mode bit 0: CHAP_R is replaced by the right answer for CHAP_N
 * (when it names a user) to the challenge just made, so the checks after
 * it are reached; bit 1: that answer in base64 rather than hex; bit 2:
 * CHAP_C is replaced by the target's own challenge (a reflection).
 * Without CHAP_A in the text, the challenge is made for CHAP_A=5.
 *
 * Invariants: a challenge is made exactly when the list offers MD5 (5),
 * and its answer is CHAP_A=5, CHAP_I and a CHAP_C of the challenge kept;
 * an answer is accepted exactly when it is the MD5 of the identifier, the
 * user's secret and the challenge; the right answer (mode bit 0) is
 * accepted unless a mutual part is malformed; a reflected challenge is
 * refused; the target's mutual answer is the MD5 of CHAP_I, its secret
 * and CHAP_C; the user name kept for the log is printable; a decoded
 * binary value reads back the same from its hex and base64 forms.
 */
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memunit.h"
#include "transport/iscsi_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size);

#define MAX_KEYS   64
#define MAX_BINARY 1024                 /* as the target takes */
#define DIGEST_LEN 16

enum {
    MODE_RIGHT_ANSWER = 0x01,
    MODE_BASE64 = 0x02,
    MODE_REFLECT = 0x04,
};

static uint8_t alice_secret[] = "alice-secret-1234";
static uint8_t bob_secret[] = "bob's secret, with spaces";
static uint8_t target_secret[] = "the-target-secret";
static struct iscsi_chap_user users[] = {
    { "alice", alice_secret, sizeof alice_secret - 1 },
    { "bob", bob_secret, sizeof bob_secret - 1 },
};
static const struct iscsi_chap secrets = {
    .users = users, .user_count = 2, .mutual_name = "target",
    .mutual_secret = target_secret, .mutual_len = sizeof target_secret - 1,
};

static void md5(uint8_t id, const uint8_t *secret, size_t secret_len,
                const uint8_t *challenge, size_t challenge_len,
                uint8_t digest[DIGEST_LEN])
{
    uint8_t buf[1 + 256 + MAX_BINARY];
    buf[0] = id;
    memcpy(buf + 1, secret, secret_len);
    memcpy(buf + 1 + secret_len, challenge, challenge_len);
    memunit_require(gnutls_hash_fast(GNUTLS_DIG_MD5, buf,
                                     1 + secret_len + challenge_len,
                                     digest) == 0, "MD5");
}

static void encode_hex(const uint8_t *b, size_t n, char *out)
{
    static const char digits[] = "0123456789ABCDEF";
    *out++ = '0';
    *out++ = 'x';
    for (size_t i = 0; i < n; i++) {
        *out++ = digits[b[i] >> 4];
        *out++ = digits[b[i] & 15];
    }
    *out = '\0';
}

static void encode_base64(const uint8_t *b, size_t n, char *out)
{
    static const char digits[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    *out++ = '0';
    *out++ = 'b';
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)b[i] << 16 |
                     (i + 1 < n ? (uint32_t)b[i + 1] << 8 : 0) |
                     (i + 2 < n ? b[i + 2] : 0);
        *out++ = digits[v >> 18];
        *out++ = digits[(v >> 12) & 63];
        *out++ = i + 1 < n ? digits[(v >> 6) & 63] : '=';
        *out++ = i + 2 < n ? digits[v & 63] : '=';
    }
    *out = '\0';
}

/* A decoded value reads back the same from both forms. */
static void check_decode(const char *value)
{
    static uint8_t got[MAX_BINARY], again[MAX_BINARY];
    static char text[2 * MAX_BINARY + 8];
    int n = iscsi_binary_decode(value, got, sizeof got);
    memunit_require(n >= -1 && n <= MAX_BINARY && n != 0,
                    "a length of at least one byte, or -1");
    if (n <= 0)
        return;
    encode_hex(got, (size_t)n, text);
    memunit_require(iscsi_binary_decode(text, again, sizeof again) == n &&
                    !memcmp(got, again, (size_t)n), "hex reads back");
    encode_base64(got, (size_t)n, text);
    memunit_require(iscsi_binary_decode(text, again, sizeof again) == n &&
                    !memcmp(got, again, (size_t)n), "base64 reads back");
}

static const char *get(const struct iscsi_kv *kv, int n, const char *key)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(kv[i].key, key))
            return kv[i].value;
    return NULL;
}

/* The pairs of an answer text (a copy in *copy, to free). */
static int answer_pairs(const struct iscsi_text *t, char **copy,
                        struct iscsi_kv *kv)
{
    *copy = malloc(t->len + 1);
    memunit_require(*copy != NULL, "out of memory");
    memcpy(*copy, t->buf, t->len);
    int n = iscsi_kv_parse(*copy, t->len, kv, MAX_KEYS);
    memunit_require(n >= 0, "the answer is a valid text");
    return n;
}

static const struct iscsi_chap_user *find_user(const char *name)
{
    for (unsigned i = 0; i < secrets.user_count; i++)
        if (!strcmp(secrets.users[i].name, name))
            return &secrets.users[i];
    return NULL;
}

/* The challenge: made exactly when MD5 is offered, and sent as kept. */
static bool challenge(struct iscsi_chap_state *s, const char *algorithms)
{
    struct iscsi_text out = { 0 };
    uint16_t st = iscsi_chap_challenge(s, algorithms, &out);
    memunit_require((st == ISCSI_LOGIN_OK) == iscsi_list_has(algorithms, "5"),
                    "a challenge exactly when MD5 is offered");
    if (!st) {
        char *copy;
        struct iscsi_kv kv[MAX_KEYS];
        int n = answer_pairs(&out, &copy, kv);
        const char *a = get(kv, n, "CHAP_A"), *i = get(kv, n, "CHAP_I");
        const char *c = get(kv, n, "CHAP_C");
        uint64_t id;
        uint8_t chal[MAX_BINARY];
        memunit_require(n == 3 && a && !strcmp(a, "5") && i &&
                        !iscsi_parse_number(i, &id) && id == s->id && c &&
                        iscsi_binary_decode(c, chal, sizeof chal) ==
                            ISCSI_CHAP_CHALLENGE_LEN &&
                        !memcmp(chal, s->challenge, sizeof s->challenge),
                        "CHAP_A=5, CHAP_I and CHAP_C as kept");
        free(copy);
    }
    iscsi_text_free(&out);
    return st == ISCSI_LOGIN_OK;
}

static void check(struct iscsi_chap_state *s, const char *name,
                  const char *resp, const char *id_text, const char *chal)
{
    struct iscsi_text out = { 0 };
    uint16_t st = iscsi_chap_check(s, name, resp, id_text, chal, &out);
    memunit_require(st == ISCSI_LOGIN_OK || st == ISCSI_LOGIN_AUTH_FAILED,
                    "accepted or authentication failed");
    for (const char *c = s->user; *c; c++)
        memunit_require(*c >= ' ' && *c <= '~', "the user name kept is "
                        "printable");

    const struct iscsi_chap_user *u = find_user(name);
    uint8_t got[MAX_BINARY], want[DIGEST_LEN];
    bool right = false;
    if (u && iscsi_binary_decode(resp, got, sizeof got) == DIGEST_LEN) {
        md5(s->id, u->secret, u->secret_len, s->challenge,
            sizeof s->challenge, want);
        right = !memcmp(got, want, DIGEST_LEN);
    }
    /* A mutual challenge the target answers: well-formed, not ours. */
    uint64_t id = 0;
    int len = 0;
    bool mutual_ok = id_text && chal && !iscsi_parse_number(id_text, &id) &&
        id <= 255 && (len = iscsi_binary_decode(chal, got, sizeof got)) > 0 &&
        !((size_t)len == sizeof s->challenge &&
          !memcmp(got, s->challenge, sizeof s->challenge));
    if (st == ISCSI_LOGIN_OK)
        memunit_require(right, "only the right answer is accepted");
    if (right && ((!id_text && !chal) || mutual_ok))
        memunit_require(st == ISCSI_LOGIN_OK, "the right answer is accepted");

    if (st == ISCSI_LOGIN_OK && (id_text || chal)) {
        /* Mutual: the target's answer to CHAP_I and CHAP_C. */
        memunit_require(mutual_ok, "a mutual answer only to a well-formed "
                        "challenge that is not the target's own");
        md5((uint8_t)id, secrets.mutual_secret, secrets.mutual_len, got,
            (size_t)len, want);
        char *copy;
        struct iscsi_kv kv[MAX_KEYS];
        int n = answer_pairs(&out, &copy, kv);
        const char *rn = get(kv, n, "CHAP_N"), *rr = get(kv, n, "CHAP_R");
        uint8_t answer[MAX_BINARY];
        memunit_require(n == 2 && rn && !strcmp(rn, "target") && rr &&
                        iscsi_binary_decode(rr, answer, sizeof answer) ==
                            DIGEST_LEN && !memcmp(answer, want, DIGEST_LEN),
                        "the target's mutual answer");
        free(copy);
    } else {
        memunit_require(out.len == 0, "no answer text unless accepted "
                        "with a mutual challenge");
    }
    iscsi_text_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = input[0];
    size_t len = size - 1;
    char *text = malloc(len ? len : 1);
    memunit_require(text != NULL, "out of memory");
    if (len)
        memcpy(text, input + 1, len);
    struct iscsi_kv kv[MAX_KEYS];
    int n = iscsi_kv_parse(text, len, kv, MAX_KEYS);
    for (int i = 0; i < n; i++)
        check_decode(kv[i].value);

    struct iscsi_chap_state s = { .secrets = &secrets };
    const char *algorithms = n > 0 ? get(kv, n, "CHAP_A") : NULL;
    if (n >= 0 && challenge(&s, algorithms ? algorithms : "5")) {
        const char *name = get(kv, n, "CHAP_N"), *resp = get(kv, n, "CHAP_R");
        const char *chal = get(kv, n, "CHAP_C");
        char right[2 * DIGEST_LEN + 8], mine[2 * ISCSI_CHAP_CHALLENGE_LEN + 8];
        const struct iscsi_chap_user *u = name ? find_user(name) : NULL;
        if ((mode & MODE_RIGHT_ANSWER) && u) {
            uint8_t digest[DIGEST_LEN];
            md5(s.id, u->secret, u->secret_len, s.challenge,
                sizeof s.challenge, digest);
            if (mode & MODE_BASE64)
                encode_base64(digest, sizeof digest, right);
            else
                encode_hex(digest, sizeof digest, right);
            resp = right;
        }
        if (mode & MODE_REFLECT) {
            encode_hex(s.challenge, sizeof s.challenge, mine);
            chal = mine;
        }
        if (name && resp)
            check(&s, name, resp, get(kv, n, "CHAP_I"), chal);
    }
    free(text);
    return 0;
}
