/*
 * iscsi_keys.c - text keys (RFC 7143 "Text Mode Negotiation" and "Login
 * and Text Operational Text Keys"): parsing key=value pairs, negotiating
 * the operational keys from one table, iSCSI names, and SendTargets.
 *
 * The answers follow the RFC's rules: a value out of range or of the wrong
 * form is answered with key=Reject (the default then stays); a key that
 * does not apply (one of a normal session's keys in a discovery session,
 * FirstBurstLength without unsolicited data) with key=Irrelevant; a key
 * nobody defined with key=NotUnderstood (iscsi_login.c, iscsi_pdu.c).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "transport/iscsi_int.h"

/* ------------------------------------------------------------------ */
/* Texts                                                               */
/* ------------------------------------------------------------------ */

static void text_append(struct iscsi_text *t, const char *s, size_t len)
{
    if (t->failed)
        return;
    if (t->len + len > ISCSI_TEXT_MAX) {
        t->failed = true;
        return;
    }
    if (t->len + len > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 512;
        while (cap < t->len + len)
            cap *= 2;
        char *buf = realloc(t->buf, cap);
        if (!buf) {
            t->failed = true;
            return;
        }
        t->buf = buf;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, s, len);
    t->len += len;
}

void iscsi_text_add(struct iscsi_text *t, const char *key, const char *value)
{
    text_append(t, key, strlen(key));
    text_append(t, "=", 1);
    text_append(t, value, strlen(value) + 1);     /* with its NUL */
}

void iscsi_text_addf(struct iscsi_text *t, const char *key, const char *fmt,
                     ...)
{
    char value[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(value, sizeof value, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof value) {
        t->failed = true;
        return;
    }
    iscsi_text_add(t, key, value);
}

void iscsi_text_free(struct iscsi_text *t)
{
    free(t->buf);
    *t = (struct iscsi_text){ 0 };
}

int iscsi_kv_parse(char *data, size_t len, struct iscsi_kv *kv, int max)
{
    int n = 0;
    size_t pos = 0;
    while (pos < len) {
        char *s = data + pos;
        char *nul = memchr(s, '\0', len - pos);
        size_t slen = nul ? (size_t)(nul - s) : len - pos;
        if (!nul)
            return -1;            /* every pair ends with a NUL */
        pos += slen + 1;
        if (!slen)
            continue;             /* padding NULs */
        char *eq = memchr(s, '=', slen);
        /* RFC 7143: key names up to 63 bytes, values up to 8192. */
        if (!eq || eq == s || eq - s > 63 || slen - (size_t)(eq - s) > 8193)
            return -1;
        if (n == max)
            return -1;
        *eq = '\0';
        kv[n++] = (struct iscsi_kv){ s, eq + 1 };
    }
    return n;
}

bool iscsi_list_has(const char *list, const char *word)
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

int iscsi_parse_number(const char *s, uint64_t *v)
{
    uint64_t n = 0;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        s += 2;
        if (!*s || strlen(s) > 16)
            return -1;
        for (; *s; s++) {
            if (!isxdigit((unsigned char)*s))
                return -1;
            n = n << 4 | (uint64_t)(isdigit((unsigned char)*s)
                                    ? *s - '0' : (*s | 0x20) - 'a' + 10);
        }
    } else {
        if (!*s || strlen(s) > 19)
            return -1;
        for (; *s; s++) {
            if (!isdigit((unsigned char)*s))
                return -1;
            n = n * 10 + (uint64_t)(*s - '0');
        }
    }
    *v = n;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Operational keys                                                    */
/* ------------------------------------------------------------------ */

void iscsi_params_default(struct iscsi_params *p)
{
    /* RFC 7143 defaults, and ours for what we declare. */
    *p = (struct iscsi_params){
        .max_recv_dsl = ISCSI_MAX_RECV_DSL,
        .max_xmit_dsl = ISCSI_LOGIN_DSL,
        .max_burst = 262144,
        .first_burst = 65536,
        .initial_r2t = true,
        .immediate_data = true,
        .max_r2t = 1,
        .time2wait = 2,
        .time2retain = 20,
    };
}

enum key_kind {
    KEY_DIGEST,       /* list of None, CRC32C: the first we know */
    KEY_OR,           /* boolean, result Yes when either says Yes */
    KEY_AND,          /* boolean, result Yes when both say Yes */
    KEY_MIN,          /* number, the smaller */
    KEY_MAX,          /* number, the larger */
    KEY_DECLARE,      /* the initiator's MaxRecvDataSegmentLength */
};

struct key_def {
    const char *name;
    uint8_t kind;
    bool normal_only;          /* Irrelevant in discovery sessions */
    uint32_t lo, hi;           /* valid range of numbers */
    uint32_t ours;             /* our value: a number, or 1/0 for Yes/No */
    size_t field;              /* offsetof(struct iscsi_params, ...) */
};

/* Keys whose result is fixed: nothing to store. */
#define NO_FIELD ((size_t)-1)

#define P(f) offsetof(struct iscsi_params, f)
/* In the order answers are worked out: MaxBurstLength bounds
 * FirstBurstLength, which needs InitialR2T and ImmediateData. */
static const struct key_def key_defs[] = {
    { "HeaderDigest", KEY_DIGEST, false, 0, 0, 0, P(header_digest) },
    { "DataDigest", KEY_DIGEST, false, 0, 0, 0, P(data_digest) },
    { "MaxRecvDataSegmentLength", KEY_DECLARE, false, 512, 16777215, 0,
      P(max_xmit_dsl) },
    { "MaxConnections", KEY_MIN, true, 1, 65535, 1, NO_FIELD },
    { "InitialR2T", KEY_OR, true, 0, 1, 0, P(initial_r2t) },
    { "ImmediateData", KEY_AND, true, 0, 1, 1, P(immediate_data) },
    { "MaxBurstLength", KEY_MIN, true, 512, 16777215, ISCSI_MAX_BURST,
      P(max_burst) },
    { "FirstBurstLength", KEY_MIN, true, 512, 16777215, ISCSI_MAX_BURST,
      P(first_burst) },
    { "DefaultTime2Wait", KEY_MAX, false, 0, 3600, 2, P(time2wait) },
    { "DefaultTime2Retain", KEY_MIN, false, 0, 3600, 20, P(time2retain) },
    { "MaxOutstandingR2T", KEY_MIN, true, 1, 65535, ISCSI_MAX_R2T, P(max_r2t) },
    { "DataPDUInOrder", KEY_OR, true, 0, 1, 1, NO_FIELD },
    { "DataSequenceInOrder", KEY_OR, true, 0, 1, 1, NO_FIELD },
    { "ErrorRecoveryLevel", KEY_MIN, false, 0, 2, 0, NO_FIELD },
    { "IFMarker", KEY_AND, false, 0, 1, 0, NO_FIELD },
    { "OFMarker", KEY_AND, false, 0, 1, 0, NO_FIELD },
    { "iSCSIProtocolLevel", KEY_MIN, false, 0, 31, 1, NO_FIELD },
};
#undef P

static bool parse_bool(const char *v, bool *b)
{
    if (!strcmp(v, "Yes"))
        *b = true;
    else if (!strcmp(v, "No"))
        *b = false;
    else
        return false;
    return true;
}

/* The first of a comma-separated list we know: CRC32C or None. */
static const char *pick_digest(const char *list)
{
    const char *s = list;
    while (*s) {
        size_t n = strcspn(s, ",");
        if (n == 6 && !strncmp(s, "CRC32C", 6))
            return "CRC32C";
        if (n == 4 && !strncmp(s, "None", 4))
            return "None";
        s += n;
        if (*s)
            s++;
    }
    return NULL;
}

static void set_field(struct iscsi_params *p, const struct key_def *d,
                      uint32_t v)
{
    if (d->field == NO_FIELD)
        return;
    uint8_t *f = (uint8_t *)p + d->field;
    if (d->kind == KEY_DIGEST || d->kind == KEY_OR || d->kind == KEY_AND)
        *(bool *)f = v != 0;
    else
        *(uint32_t *)f = v;
}

static bool first_burst_irrelevant(const struct iscsi_params *p)
{
    return p->initial_r2t && !p->immediate_data;
}

int iscsi_key_rank(const char *key)
{
    for (size_t i = 0; i < sizeof key_defs / sizeof key_defs[0]; i++)
        if (!strcmp(key_defs[i].name, key))
            return (int)i;
    return -1;
}

int iscsi_key_count(void)
{
    return (int)(sizeof key_defs / sizeof key_defs[0]);
}

bool iscsi_key_negotiate(struct iscsi_params *p, bool discovery,
                         const char *key, const char *value,
                         struct iscsi_text *out, bool *fatal)
{
    const struct key_def *d = NULL;
    for (size_t i = 0; i < sizeof key_defs / sizeof key_defs[0]; i++)
        if (!strcmp(key_defs[i].name, key))
            d = &key_defs[i];
    if (!d)
        return false;
    /* The initiator answering something we offered: nothing to say. */
    if (!strcmp(value, "Reject") || !strcmp(value, "Irrelevant") ||
        !strcmp(value, "NotUnderstood"))
        return true;
    if (d->normal_only && discovery) {
        iscsi_text_add(out, key, "Irrelevant");
        return true;
    }

    uint64_t n = 0;
    bool b = false;
    switch ((enum key_kind)d->kind) {
    case KEY_DIGEST: {
        const char *pick = pick_digest(value);
        if (!pick) {
            iscsi_text_add(out, key, "Reject");
            return true;
        }
        set_field(p, d, !strcmp(pick, "CRC32C"));
        iscsi_text_add(out, key, pick);
        return true;
    }
    case KEY_OR:
    case KEY_AND:
        if (!parse_bool(value, &b)) {
            iscsi_text_add(out, key, "Reject");
            return true;
        }
        b = d->kind == KEY_OR ? b || d->ours : b && d->ours;
        set_field(p, d, b);
        iscsi_text_add(out, key, b ? "Yes" : "No");
        return true;
    case KEY_DECLARE:
        /* Declarative: no answer; a bad value ends the login. */
        if (iscsi_parse_number(value, &n) || n < d->lo || n > d->hi) {
            *fatal = true;
            return true;
        }
        set_field(p, d, (uint32_t)n);
        return true;
    case KEY_MIN:
    case KEY_MAX:
        if (iscsi_parse_number(value, &n) || n < d->lo || n > d->hi) {
            iscsi_text_add(out, key, "Reject");
            return true;
        }
        if (d->field == offsetof(struct iscsi_params, first_burst) &&
            first_burst_irrelevant(p)) {
            iscsi_text_add(out, key, "Irrelevant");
            return true;
        }
        if (d->kind == KEY_MIN && n > d->ours)
            n = d->ours;
        if (d->kind == KEY_MAX && n < d->ours)
            n = d->ours;
        if (d->field == offsetof(struct iscsi_params, first_burst) &&
            n > p->max_burst)
            n = p->max_burst;     /* FirstBurstLength <= MaxBurstLength */
        set_field(p, d, (uint32_t)n);
        iscsi_text_addf(out, key, "%u", (unsigned)n);
        return true;
    }
    return true;
}

int iscsi_keys_negotiate(struct iscsi_params *p, bool discovery,
                         const struct iscsi_kv *kv, int n,
                         struct iscsi_text *out)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(kv[j].key, kv[i].key))
                return -1;                      /* a key twice */
    /* In the order of the table, as some keys depend on others. */
    for (int rank = 0; rank < iscsi_key_count(); rank++) {
        for (int i = 0; i < n; i++) {
            bool fatal = false;
            if (iscsi_key_rank(kv[i].key) != rank)
                continue;
            iscsi_key_negotiate(p, discovery, kv[i].key, kv[i].value, out,
                                &fatal);
            if (fatal)
                return -1;
        }
    }
    if (p->first_burst > p->max_burst)
        p->first_burst = p->max_burst;
    return 0;
}

/* ------------------------------------------------------------------ */
/* iSCSI names (RFC 7143 "iSCSI Names")                                 */
/* ------------------------------------------------------------------ */

static bool all_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
            return false;
    return s[n] == '\0';
}

/* A normalized (lower case) name of the three types. */
bool iscsi_name_valid(const char *name)
{
    size_t len = strlen(name);
    if (!len || len > ISCSI_NAME_MAX)
        return false;
    if (!strncmp(name, "eui.", 4))
        return len == 20 && all_hex(name + 4, 16);
    if (!strncmp(name, "naa.", 4))
        return (len == 20 && all_hex(name + 4, 16)) ||
               (len == 36 && all_hex(name + 4, 32));
    if (strncmp(name, "iqn.", 4))
        return false;
    /* iqn.YYYY-MM.naming-authority[:unique] */
    const char *d = name + 4;
    for (int i = 0; i < 7; i++) {
        if (i == 4 ? d[i] != '-' : !isdigit((unsigned char)d[i]))
            return false;
    }
    int month = (d[5] - '0') * 10 + (d[6] - '0');
    if (month < 1 || month > 12 || d[7] != '.' || !d[8] || d[8] == '.' ||
        d[8] == ':')
        return false;
    for (const char *c = d + 8; *c; c++)
        if (!islower((unsigned char)*c) && !isdigit((unsigned char)*c) &&
            *c != '-' && *c != '.' && *c != ':')
            return false;
    return true;
}

/* ------------------------------------------------------------------ */
/* SendTargets                                                         */
/* ------------------------------------------------------------------ */

/* The portal the initiator reached: the connection's local address. */
static void portal_of(int fd, char *buf, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char host[INET6_ADDRSTRLEN] = "127.0.0.1";
    int port = SPD_ISCSI_DEFAULT_PORT;
    if (!getsockname(fd, (struct sockaddr *)&ss, &len)) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
            port = ntohs(sin->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
            port = ntohs(sin6->sin6_port);
            snprintf(buf, size, "[%s]:%d", host, port);
            return;
        }
    }
    snprintf(buf, size, "%s:%d", host, port);
}

bool iscsi_send_targets(struct iscsi_conn *conn, const char *what,
                        struct iscsi_text *out)
{
    /* All: every target (discovery sessions must, normal sessions may, as
     * LIO does); "": the session's own; else one name of valid form. */
    bool all = !strcmp(what, "All");
    char name[ISCSI_NAME_MAX + 1];
    size_t len = strlen(what);
    if (!all && *what) {
        if (len > ISCSI_NAME_MAX)
            return false;
        for (size_t i = 0; i <= len; i++)
            name[i] = (char)tolower((unsigned char)what[i]);
        if (!iscsi_name_valid(name))
            return false;
    }
    if (!all && !*what && !conn->node)
        return false;             /* a discovery session has no target */

    char portal[INET6_ADDRSTRLEN + 16], address[INET6_ADDRSTRLEN + 24];
    portal_of(conn->c.fd, portal, sizeof portal);
    for (const struct iscsi_node *n = conn->tgt->nodes; n; n = n->next) {
        bool want = all || (!*what ? n == conn->node : !strcmp(name, n->name));
        if (!want)
            continue;
        iscsi_text_add(out, "TargetName", n->name);
        /* ",TAG": the target's portal group tag. */
        snprintf(address, sizeof address, "%s,%u", portal,
                 (unsigned)iscsi_node_tpgt(n));
        iscsi_text_add(out, "TargetAddress", address);
    }
    return true;
}
