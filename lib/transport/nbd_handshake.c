/*
 * nbd_handshake.c - the fixed newstyle handshake (proto.md "Handshake"):
 * greeting, client flags, then options until one starts transmission.
 * Each option is one small function reached through a table.
 */
#include <stdlib.h>
#include <string.h>

#include "util/bytes.h"
#include "transport/nbd_int.h"
#include "transport/tls.h"

/* Options longer than this end the connection (names are at most 4 KiB;
 * a meta context query list has no business being larger). */
#define NBD_OPTION_MAX (64u * 1024)

enum opt_result { OPT_CONTINUE, OPT_TRANSMIT, OPT_CLOSE };

struct option_call {
    struct nbd_conn *conn;
    uint32_t option;
    const uint8_t *data;
    uint32_t len;
};

static int send_reply(const struct option_call *o, uint32_t type,
                      const void *data, uint32_t len)
{
    uint8_t hdr[20];
    put_be64(hdr, NBD_REP_MAGIC);
    put_be32(hdr + 8, o->option);
    put_be32(hdr + 12, type);
    put_be32(hdr + 16, len);
    struct conn *c = &o->conn->c;
    if (conn_write_full(c, hdr, sizeof hdr) < 0 ||
        (len && conn_write_full(c, data, len) < 0))
        return -1;
    return 0;
}

/* An error reply with a message for people; CLOSE if it cannot be sent. */
static enum opt_result send_error(const struct option_call *o, uint32_t type,
                                  const char *message)
{
    return send_reply(o, type, message, (uint32_t)strlen(message))
           ? OPT_CLOSE : OPT_CONTINUE;
}

static enum opt_result send_ack(const struct option_call *o)
{
    return send_reply(o, NBD_REP_ACK, NULL, 0) ? OPT_CLOSE : OPT_CONTINUE;
}

/* Copy a wire string (no NUL inside) into a new C string, or NULL. */
static char *wire_string(const uint8_t *p, uint32_t len)
{
    if (memchr(p, '\0', len))
        return NULL;
    char *s = malloc(len + 1);
    if (s) {
        memcpy(s, p, len);
        s[len] = '\0';
    }
    return s;
}

/* ------------------------------------------------------------------ */
/* Options                                                             */
/* ------------------------------------------------------------------ */

static enum opt_result opt_export_name(const struct option_call *o)
{
    struct nbd_conn *conn = o->conn;
    char *name = wire_string(o->data, o->len);
    struct nbd_export *e = name ? nbd_find_export(conn->server, name) : NULL;
    free(name);
    if (!e)
        return OPT_CLOSE;       /* the protocol allows no error reply here */

    uint8_t reply[8 + 2 + 124] = { 0 };
    const spd_params *p = spd_unit_params(e->unit);
    put_be64(reply, p->block_count * p->block_length);
    put_be16(reply + 8, nbd_export_flags(e));
    size_t len = conn->no_zeroes ? 10 : sizeof reply;
    if (conn_write_full(&conn->c, reply, len) < 0)
        return OPT_CLOSE;
    conn->export = e;
    return OPT_TRANSMIT;
}

static enum opt_result opt_abort(const struct option_call *o)
{
    send_ack(o);
    return OPT_CLOSE;
}

static enum opt_result opt_list(const struct option_call *o)
{
    if (o->len)
        return send_error(o, NBD_REP_ERR_INVALID, "LIST takes no data");
    for (struct nbd_export *e = o->conn->server->exports; e; e = e->next) {
        size_t nlen = strlen(e->name);
        size_t dlen = e->description ? strlen(e->description) : 0;
        uint8_t *buf = malloc(4 + nlen + dlen);
        if (!buf)
            return OPT_CLOSE;
        put_be32(buf, (uint32_t)nlen);
        memcpy(buf + 4, e->name, nlen);
        if (dlen)
            memcpy(buf + 4 + nlen, e->description, dlen);
        int r = send_reply(o, NBD_REP_SERVER, buf, (uint32_t)(4 + nlen + dlen));
        free(buf);
        if (r)
            return OPT_CLOSE;
    }
    return send_ack(o);
}

/* Upgrade to TLS: ACK in the clear, then the TLS handshake, after which
 * every byte both ways is encrypted. What was negotiated before is
 * forgotten: a man in the middle may have chosen it. */
static enum opt_result opt_starttls(const struct option_call *o)
{
    struct nbd_conn *conn = o->conn;
    const struct tls_creds *creds = conn->server->tls_creds;
    if (!creds)
        return send_error(o, NBD_REP_ERR_UNSUP, "TLS is not offered");
    if (o->len)
        return send_error(o, NBD_REP_ERR_INVALID, "STARTTLS takes no data");
    if (conn->c.tls)
        return send_error(o, NBD_REP_ERR_INVALID, "TLS is on already");
    if (send_ack(o) != OPT_CONTINUE ||
        !(conn->c.tls = tls_accept(creds, conn->c.fd, conn->c.peer)))
        return OPT_CLOSE;
    conn->structured = false;
    conn->base_allocation = false;
    return OPT_CONTINUE;
}

/* With TLS required, nothing but STARTTLS and ABORT before it: not the
 * export list, structured replies, meta contexts nor an export. */
static bool tls_missing(const struct option_call *o)
{
    return o->conn->server->tls_mode == SPD_NBD_TLS_REQUIRE &&
           !o->conn->c.tls && o->option != NBD_OPT_STARTTLS &&
           o->option != NBD_OPT_ABORT;
}

static enum opt_result opt_structured_reply(const struct option_call *o)
{
    if (o->len)
        return send_error(o, NBD_REP_ERR_INVALID,
                          "STRUCTURED_REPLY takes no data");
    o->conn->structured = true;
    return send_ack(o);
}

static int send_info(const struct option_call *o, uint16_t type,
                     const void *data, size_t len)
{
    uint8_t *buf = malloc(2 + len);
    if (!buf)
        return -1;
    put_be16(buf, type);
    memcpy(buf + 2, data, len);
    int r = send_reply(o, NBD_REP_INFO, buf, (uint32_t)(2 + len));
    free(buf);
    return r;
}

/* The information replies of INFO and GO: the export always, block sizes
 * always (Spd has constraints), name and description when asked, each
 * once however often it was asked (the answer stays bounded by what the
 * export has, not by the length of the request). */
static int send_export_info(const struct option_call *o,
                            const struct nbd_export *e,
                            const uint8_t *requests, uint16_t count)
{
    const spd_params *p = spd_unit_params(e->unit);
    uint8_t export[10], sizes[12];
    put_be64(export, p->block_count * p->block_length);
    put_be16(export + 8, nbd_export_flags(e));
    put_be32(sizes, p->block_length);
    /* Preferred: a physical block, and never below a page. */
    put_be32(sizes + 4, p->physical_block_length > 4096
                            ? p->physical_block_length : 4096);
    put_be32(sizes + 8, p->max_transfer_length);
    if (send_info(o, NBD_INFO_EXPORT, export, sizeof export) ||
        send_info(o, NBD_INFO_BLOCK_SIZE, sizes, sizeof sizes))
        return -1;
    bool name = false, description = false;
    for (uint16_t i = 0; i < count; i++) {
        uint16_t type = get_be16(requests + 2 * i);
        name |= type == NBD_INFO_NAME;
        description |= type == NBD_INFO_DESCRIPTION;
    }
    if (name && send_info(o, NBD_INFO_NAME, e->name, strlen(e->name)))
        return -1;
    if (description && e->description &&
        send_info(o, NBD_INFO_DESCRIPTION, e->description,
                  strlen(e->description)))
        return -1;
    return 0;
}

/* Does an information request list ask for NBD_INFO_BLOCK_SIZE? */
static bool asks_block_size(const uint8_t *requests, uint16_t count)
{
    for (uint16_t i = 0; i < count; i++)
        if (get_be16(requests + 2 * i) == NBD_INFO_BLOCK_SIZE)
            return true;
    return false;
}

static enum opt_result opt_info_go(const struct option_call *o)
{
    /* name length, name, request count, requests */
    if (o->len < 6)
        return send_error(o, NBD_REP_ERR_INVALID, "option data too short");
    uint32_t nlen = get_be32(o->data);
    if (nlen > o->len - 6)
        return send_error(o, NBD_REP_ERR_INVALID, "name length too long");
    uint16_t count = get_be16(o->data + 4 + nlen);
    if ((uint32_t)count * 2 != o->len - 6 - nlen)
        return send_error(o, NBD_REP_ERR_INVALID,
                          "information request count does not match");
    char *name = wire_string(o->data + 4, nlen);
    if (!name)
        return send_error(o, NBD_REP_ERR_INVALID, "NUL in the export name");
    struct nbd_export *e = nbd_find_export(o->conn->server, name);
    free(name);
    if (!e)
        return send_error(o, NBD_REP_ERR_UNKNOWN, "no such export");
    if (send_export_info(o, e, o->data + 6 + nlen, count) ||
        send_ack(o) != OPT_CONTINUE)
        return OPT_CLOSE;
    if (o->option == NBD_OPT_INFO)
        return OPT_CONTINUE;
    o->conn->export = e;
    o->conn->block_sizes_agreed = asks_block_size(o->data + 6 + nlen, count);
    return OPT_TRANSMIT;
}

static int send_meta_context(const struct option_call *o)
{
    static const char name[] = NBD_META_BASE_ALLOCATION;
    uint8_t buf[4 + sizeof name - 1];
    put_be32(buf, NBD_META_BASE_ALLOCATION_ID);
    memcpy(buf + 4, name, sizeof name - 1);
    return send_reply(o, NBD_REP_META_CONTEXT, buf, sizeof buf);
}

/* Does a query select base:allocation? LIST also takes "base:". */
static bool query_matches(const uint8_t *q, uint32_t len, bool list)
{
    static const char full[] = NBD_META_BASE_ALLOCATION;
    if (len == sizeof full - 1 && !memcmp(q, full, len))
        return true;
    return list && len == 5 && !memcmp(q, "base:", 5);
}

static enum opt_result opt_meta_context(const struct option_call *o)
{
    bool list = o->option == NBD_OPT_LIST_META_CONTEXT;
    if (!list && !o->conn->structured)
        return send_error(o, NBD_REP_ERR_INVALID,
                          "SET_META_CONTEXT needs structured replies first");
    /* export name length, name, query count, then length-prefixed queries */
    if (o->len < 8)
        return send_error(o, NBD_REP_ERR_INVALID, "option data too short");
    uint32_t nlen = get_be32(o->data);
    if (nlen > o->len - 8)
        return send_error(o, NBD_REP_ERR_INVALID, "name length too long");
    char *name = wire_string(o->data + 4, nlen);
    if (!name)
        return send_error(o, NBD_REP_ERR_INVALID, "NUL in the export name");
    struct nbd_export *e = nbd_find_export(o->conn->server, name);
    free(name);

    uint32_t count = get_be32(o->data + 4 + nlen);
    const uint8_t *q = o->data + 8 + nlen, *end = o->data + o->len;
    bool selected = list && count == 0;     /* LIST of nothing: all */
    for (uint32_t i = 0; i < count; i++) {
        if (end - q < 4 || get_be32(q) > (uint32_t)(end - q - 4))
            return send_error(o, NBD_REP_ERR_INVALID, "query list too short");
        selected |= query_matches(q + 4, get_be32(q), list);
        q += 4 + get_be32(q);
    }
    if (q != end)
        return send_error(o, NBD_REP_ERR_INVALID, "junk after the queries");
    if (!e)
        return send_error(o, NBD_REP_ERR_UNKNOWN, "no such export");
    if (!list)
        o->conn->base_allocation = selected;
    if (selected && send_meta_context(o))
        return OPT_CLOSE;
    return send_ack(o);
}

static enum opt_result (*const option_handlers[])(const struct option_call *) = {
    [NBD_OPT_EXPORT_NAME] = opt_export_name,
    [NBD_OPT_ABORT] = opt_abort,
    [NBD_OPT_LIST] = opt_list,
    [NBD_OPT_STARTTLS] = opt_starttls,
    [NBD_OPT_INFO] = opt_info_go,
    [NBD_OPT_GO] = opt_info_go,
    [NBD_OPT_STRUCTURED_REPLY] = opt_structured_reply,
    [NBD_OPT_LIST_META_CONTEXT] = opt_meta_context,
    [NBD_OPT_SET_META_CONTEXT] = opt_meta_context,
};

static enum opt_result handle_option(struct option_call *o)
{
    if (tls_missing(o))
        return o->option == NBD_OPT_EXPORT_NAME   /* it has no error reply */
               ? OPT_CLOSE
               : send_error(o, NBD_REP_ERR_TLS_REQD, "TLS is required: "
                            "send STARTTLS first");
    size_t n = sizeof option_handlers / sizeof option_handlers[0];
    if (o->option < n && option_handlers[o->option])
        return option_handlers[o->option](o);
    return send_error(o, NBD_REP_ERR_UNSUP, "unknown option");
}

/* ------------------------------------------------------------------ */
/* The handshake                                                       */
/* ------------------------------------------------------------------ */

static bool greet(struct nbd_conn *conn)
{
    uint8_t hello[18], client[4];
    put_be64(hello, NBD_MAGIC);
    put_be64(hello + 8, NBD_OPTS_MAGIC);
    put_be16(hello + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
    if (conn_write_full(&conn->c, hello, sizeof hello) < 0 ||
        conn_read_full(&conn->c, client, sizeof client) < 0)
        return false;
    uint32_t flags = get_be32(client);
    /* A flag we do not know means a protocol we do not speak. */
    if (flags & ~(uint32_t)(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES))
        return false;
    conn->no_zeroes = flags & NBD_FLAG_C_NO_ZEROES;
    return true;
}

bool nbd_handshake(struct nbd_conn *conn)
{
    if (!greet(conn))
        return false;

    enum opt_result result = OPT_CONTINUE;
    uint8_t *data = NULL;
    while (result == OPT_CONTINUE) {
        uint8_t hdr[16];
        if (conn_read_full(&conn->c, hdr, sizeof hdr) < 0 ||
            get_be64(hdr) != NBD_OPTS_MAGIC)
            break;
        struct option_call o = { .conn = conn, .option = get_be32(hdr + 8),
                                 .len = get_be32(hdr + 12) };
        if (o.len > NBD_OPTION_MAX) {
            send_error(&o, NBD_REP_ERR_TOO_BIG, "option too long");
            break;
        }
        free(data);
        data = malloc(o.len ? o.len : 1);
        if (!data || conn_read_full(&conn->c, data, o.len) < 0)
            break;
        o.data = data;
        result = handle_option(&o);
    }
    free(data);
    if (result != OPT_TRANSMIT)
        return false;
    server_handshake_done(&conn->c);
    return true;
}
