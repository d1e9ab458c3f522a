/*
 * fuzz_iscsi_keys.c - arbitrary login text through the iSCSI target's key
 * parser and negotiation (iscsi_keys.c), as a Login Request's data is
 * handled: split into key=value pairs (iscsi_kv_parse), the operational
 * keys negotiated in the order of the key table (iscsi_keys_negotiate),
 * every value also read as a number and an iSCSI name.
 *
 * Input: one mode byte, then the text (key=value pairs, each ended by a
 * NUL, as on the wire). Mode bit 0: a discovery session (keys of normal
 * sessions are Irrelevant); bit 1: the text is negotiated twice, as a
 * second Login Request with the same keys would be.
 *
 * Invariants: the pairs lie inside the text, keys of 1 to 63 bytes
 * without '='; the negotiated parameters stay within RFC 7143's ranges and
 * ours (a discovery session keeps the defaults of the normal-only keys);
 * the answer is itself a valid text, answers only keys that were asked,
 * each at most once, with a value of the forms the RFC allows.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "memunit.h"
#include "transport/iscsi_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size);

#define MAX_KEYS 256                    /* as a login takes */

enum {
    MODE_DISCOVERY = 0x01,
    MODE_TWICE = 0x02,
};

static bool is_decimal(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* A number's text as iscsi_parse_number() reads it. */
static void check_number(const char *s)
{
    uint64_t v;
    if (iscsi_parse_number(s, &v))
        return;
    char back[32];
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        snprintf(back, sizeof back, "%llx", (unsigned long long)v);
        const char *digits = s + 2;
        while (*digits == '0' && digits[1])
            digits++;
        memunit_require(strlen(digits) <= 16 && !strcasecmp(back, digits),
                        "a hex number reads as its digits");
    } else {
        memunit_require(is_decimal(s) && strlen(s) <= 19,
                        "a decimal number has only digits");
        snprintf(back, sizeof back, "%llu", (unsigned long long)v);
        const char *digits = s;
        while (*digits == '0' && digits[1])
            digits++;
        memunit_require(!strcmp(back, digits), "a decimal number's value");
    }
}

static void check_params(const struct iscsi_params *p, bool discovery)
{
    struct iscsi_params d;
    iscsi_params_default(&d);
    memunit_require(p->max_recv_dsl == ISCSI_MAX_RECV_DSL,
                    "our MaxRecvDataSegmentLength is ours");
    memunit_require(p->max_xmit_dsl >= 512 && p->max_xmit_dsl <= 16777215,
                    "MaxRecvDataSegmentLength in range");
    memunit_require(p->max_burst >= 512 && p->max_burst <= ISCSI_MAX_BURST,
                    "MaxBurstLength in range");
    memunit_require(p->first_burst >= 512 && p->first_burst <= p->max_burst,
                    "FirstBurstLength in range, not over MaxBurstLength");
    memunit_require(p->max_r2t >= 1 && p->max_r2t <= ISCSI_MAX_R2T,
                    "MaxOutstandingR2T in range");
    memunit_require(p->time2wait >= 2 && p->time2wait <= 3600,
                    "DefaultTime2Wait in range");
    memunit_require(p->time2retain <= 20, "DefaultTime2Retain in range");
    if (discovery)
        memunit_require(p->initial_r2t == d.initial_r2t &&
                        p->immediate_data == d.immediate_data &&
                        p->max_burst == d.max_burst &&
                        p->first_burst == d.first_burst &&
                        p->max_r2t == d.max_r2t,
                        "a discovery session keeps the normal-only keys");
}

static bool answer_value_valid(const char *v)
{
    static const char *const words[] = {
        "Reject", "Irrelevant", "None", "CRC32C", "Yes", "No",
    };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (!strcmp(v, words[i]))
            return true;
    return is_decimal(v);
}

/* The answer parses, and answers asked keys once each. */
static void check_answer(const struct iscsi_text *out,
                         const struct iscsi_kv *asked, int n)
{
    memunit_require(!out->failed, "the answer fits");
    if (!out->len)
        return;
    char *copy = malloc(out->len);
    memunit_require(copy != NULL, "out of memory");
    memcpy(copy, out->buf, out->len);
    struct iscsi_kv *kv = calloc(MAX_KEYS, sizeof *kv);
    memunit_require(kv != NULL, "out of memory");
    int m = iscsi_kv_parse(copy, out->len, kv, MAX_KEYS);
    memunit_require(m >= 0 && m <= n, "the answer is a valid text");
    for (int i = 0; i < m; i++) {
        bool was_asked = false;
        for (int j = 0; j < n; j++)
            was_asked |= !strcmp(asked[j].key, kv[i].key);
        memunit_require(was_asked, "only asked keys are answered");
        memunit_require(iscsi_key_rank(kv[i].key) >= 0,
                        "only known keys are answered");
        for (int j = 0; j < i; j++)
            memunit_require(strcmp(kv[j].key, kv[i].key),
                            "each key answered once");
        memunit_require(answer_value_valid(kv[i].value),
                        "answers are of the RFC's forms");
    }
    free(kv);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size)
{
    if (size < 1)
        return 0;
    bool discovery = input[0] & MODE_DISCOVERY;
    size_t len = size - 1;
    /* Exactly the text's bytes, so ASan sees any read past them. */
    char *text = malloc(len ? len : 1);
    memunit_require(text != NULL, "out of memory");
    if (len)
        memcpy(text, input + 1, len);
    struct iscsi_kv *kv = calloc(MAX_KEYS, sizeof *kv);
    memunit_require(kv != NULL, "out of memory");

    int n = iscsi_kv_parse(text, len, kv, MAX_KEYS);
    memunit_require(n >= -1 && n <= MAX_KEYS, "a pair count or -1");
    for (int i = 0; i < n; i++) {
        size_t klen = strlen(kv[i].key);
        memunit_require(kv[i].key >= text && kv[i].value > kv[i].key &&
                        kv[i].value + strlen(kv[i].value) < text + len,
                        "pairs lie inside the text");
        memunit_require(klen >= 1 && klen <= 63 &&
                        !strchr(kv[i].key, '='),
                        "keys of 1 to 63 bytes without '='");
        check_number(kv[i].value);
        iscsi_name_valid(kv[i].value);
    }

    struct iscsi_params p;
    iscsi_params_default(&p);
    for (int round = 0; n >= 0 && round < (input[0] & MODE_TWICE ? 2 : 1);
         round++) {
        struct iscsi_text out = { 0 };
        if (iscsi_keys_negotiate(&p, discovery, kv, n, &out) == 0) {
            check_params(&p, discovery);
            check_answer(&out, kv, n);
        }
        iscsi_text_free(&out);
    }
    free(kv);
    free(text);
    return 0;
}
