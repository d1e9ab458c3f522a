/*
 * uri.c - parse NBD URIs (the NBD project's uri.md):
 *   nbd://HOST[:PORT][/EXPORT]  and  nbd+unix:///[EXPORT]?socket=PATH
 * and their TLS forms nbds:// and nbds+unix://.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/errmsg.h"
#include "spd/nbd.h"
#include "transport/uri.h"

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decode len bytes of src into dst (size bytes with the NUL). */
static int decode(const char *src, size_t len, char *dst, size_t size,
                  const char *what)
{
    size_t out = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '%') {
            int hi = i + 2 < len ? hex_digit(src[i + 1]) : -1;
            int lo = i + 2 < len ? hex_digit(src[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return spd_set_error(EINVAL, "bad %%-escape in the %s", what);
            c = (char)(hi << 4 | lo);
            if (!c)
                return spd_set_error(EINVAL, "NUL in the %s", what);
            i += 2;
        }
        if (out + 1 >= size)
            return spd_set_error(EINVAL, "the %s is too long", what);
        dst[out++] = c;
    }
    dst[out] = '\0';
    return 0;
}

/* HOST or [V6] with an optional :PORT, from authority (len bytes). */
static int parse_authority(const char *a, size_t len, struct nbd_uri *uri)
{
    const char *host = a, *port = NULL;
    size_t host_len = len;

    if (len && a[0] == '[') {
        const char *close = memchr(a, ']', len);
        if (!close)
            return spd_set_error(EINVAL, "missing ']' after an IPv6 address");
        host = a + 1;
        host_len = (size_t)(close - host);
        if (close + 1 < a + len) {
            if (close[1] != ':')
                return spd_set_error(EINVAL, "junk after ']' in the URI");
            port = close + 2;
        }
    } else {
        const char *colon = memchr(a, ':', len);
        if (colon) {
            host_len = (size_t)(colon - a);
            port = colon + 1;
        }
    }
    if (host_len >= sizeof uri->host)
        return spd_set_error(EINVAL, "the host name is too long");
    if (host_len) {
        memcpy(uri->host, host, host_len);
        uri->host[host_len] = '\0';
    } else {
        strcpy(uri->host, "127.0.0.1");    /* loopback unless told */
    }
    snprintf(uri->port, sizeof uri->port, "%d", SPD_NBD_DEFAULT_PORT);
    if (port) {
        size_t plen = (size_t)(a + len - port);
        char digits[8] = "";
        if (plen == 0 || plen > 5 || strspn(port, "0123456789") < plen)
            return spd_set_error(EINVAL, "the port must be a number from "
                                 "0 to 65535");
        memcpy(digits, port, plen);
        if (atoi(digits) > 65535)
            return spd_set_error(EINVAL, "the port must be a number from "
                                 "0 to 65535");
        snprintf(uri->port, sizeof uri->port, "%d", atoi(digits));
    }
    return 0;
}

/* The query: only socket=PATH, and only for nbd+unix. */
static int parse_query(const char *q, struct nbd_uri *uri)
{
    while (*q) {
        size_t len = strcspn(q, "&");
        if (len > 7 && !strncmp(q, "socket=", 7)) {
            if (!uri->is_unix)
                return spd_set_error(EINVAL, "socket= belongs to nbd+unix:// "
                                     "URIs");
            int r = decode(q + 7, len - 7, uri->socket, sizeof uri->socket,
                           "socket path");
            if (r)
                return r;
        } else {
            return spd_set_error(EINVAL, "unsupported URI query '%.*s'",
                                 (int)len, q);
        }
        q += len + (q[len] == '&');
    }
    if (uri->is_unix && !uri->socket[0])
        return spd_set_error(EINVAL, "nbd+unix:// needs ?socket=PATH");
    return 0;
}

int nbd_uri_parse(const char *text, struct nbd_uri *uri)
{
    memset(uri, 0, sizeof *uri);
    const char *rest = text + 3;
    uri->tls = !strncmp(text, "nbds", 4);
    rest += uri->tls;
    if (strncmp(text, "nbd", 3)) {
        rest = NULL;
    } else if (!strncmp(rest, "://", 3)) {
        rest += 3;
    } else if (!strncmp(rest, "+unix://", 8)) {
        uri->is_unix = true;
        rest += 8;
    } else {
        rest = NULL;
    }
    if (!rest) {
        return spd_set_error(EINVAL, "'%s' is not an NBD URI (nbd://HOST:PORT/"
                             "NAME or nbd+unix:///NAME?socket=PATH)", text);
    }

    size_t auth_len = strcspn(rest, "/?#");
    if (strchr(rest, '#'))
        return spd_set_error(EINVAL, "'%s': fragments are not allowed", text);
    int r;
    if (uri->is_unix) {
        if (auth_len)
            return spd_set_error(EINVAL, "'%s': nbd+unix:// takes no host "
                                 "(write nbd+unix:///NAME?socket=PATH)", text);
    } else if ((r = parse_authority(rest, auth_len, uri))) {
        return r;
    }
    rest += auth_len;
    const char *query = strchr(rest, '?');
    size_t path_len = query ? (size_t)(query - rest) : strlen(rest);
    if (path_len && (r = decode(rest + 1, path_len - 1, uri->name,
                                sizeof uri->name, "export name")))
        return r;
    return parse_query(query ? query + 1 : "", uri);
}

int spd_nbd_uri_export_name(const char *text, char *name, size_t size)
{
    struct nbd_uri *uri = malloc(sizeof *uri);
    if (!uri)
        return spd_set_error(ENOMEM, "out of memory");
    int r = nbd_uri_parse(text, uri);
    if (!r && strlen(uri->name) >= size)
        r = spd_set_error(EINVAL, "export name too long");
    if (!r)
        strcpy(name, uri->name);
    free(uri);
    return r;
}
