/*
 * nbd_server.c - the NBD server: its exports, and the life of each
 * connection (handshake, then transmission until the client or the server
 * ends it) on the shared network server core (server.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/errmsg.h"
#include "transport/nbd_int.h"
#include "transport/tls.h"
#include "transport/uri.h"

static const struct server_proto nbd_proto;

spd_nbd_server *spd_nbd_server_create(const spd_server_options *options)
{
    spd_nbd_server *server = calloc(1, sizeof *server);
    if (!server) {
        spd_set_error(ENOMEM, "out of memory");
        return NULL;
    }
    int r = server_init(&server->srv, &nbd_proto, server, options);
    if (r) {
        free(server);
        errno = -r;
        return NULL;
    }
    return server;
}

int spd_nbd_server_add(spd_nbd_server *server, spd_unit *unit,
                       const char *name, const char *description)
{
    if (!name)
        name = "";
    if (!unit)
        return spd_set_error(EINVAL, "no unit for export '%s'", name);
    if (strlen(name) > 4096)
        return spd_set_error(EINVAL, "export name longer than 4096 bytes");
    for (struct nbd_export *e = server->exports; e; e = e->next)
        if (!strcmp(e->name, name))
            return spd_set_error(EEXIST, "export '%s' already exists", name);

    struct nbd_export *e = calloc(1, sizeof *e);
    if (!e || !(e->name = strdup(name)) ||
        (description && !(e->description = strdup(description)))) {
        if (e)
            free(e->name);
        free(e);
        return spd_set_error(ENOMEM, "out of memory");
    }
    e->unit = unit;
    /* Keep the order of adding: the first export is the default one. */
    struct nbd_export **tail = &server->exports;
    while (*tail)
        tail = &(*tail)->next;
    *tail = e;
    return 0;
}

struct nbd_export *nbd_find_export(spd_nbd_server *server, const char *name)
{
    for (struct nbd_export *e = server->exports; e; e = e->next)
        if (!strcmp(e->name, name))
            return e;
    return name[0] ? NULL : server->exports;
}

uint16_t nbd_export_flags(const struct nbd_export *export)
{
    const spd_params *p = spd_unit_params(export->unit);
    /* A flush reaches the device itself, so it covers writes completed on
     * every connection: multi-conn is safe. */
    uint16_t flags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH |
                     NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_DF |
                     NBD_FLAG_CAN_MULTI_CONN;
    if (p->write_protected)
        flags |= NBD_FLAG_READ_ONLY;
    else
        flags |= NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_FAST_ZERO;
    if (p->unmap_supported && !p->write_protected)
        flags |= NBD_FLAG_SEND_TRIM;
    return flags;
}

/* ------------------------------------------------------------------ */
/* Listening and connections                                           */
/* ------------------------------------------------------------------ */

int spd_nbd_server_listen(spd_nbd_server *server, const char *text)
{
    if (!text)
        return spd_set_error(EINVAL, "no address to listen on");
    int r = server_listen_systemd(&server->srv, text);
    if (r <= 0)
        return r;
    struct nbd_uri *uri = malloc(sizeof *uri);
    if (!uri)
        return spd_set_error(ENOMEM, "out of memory");
    r = nbd_uri_parse(text, uri);
    server->nbds_listener |= !r && uri->tls;
    if (!r)
        r = uri->is_unix ? server_listen_unix(&server->srv, uri->socket)
                         : server_listen_tcp(&server->srv, uri->host,
                                             uri->port);
    free(uri);
    return r;
}

int spd_nbd_server_listener_uri(const spd_nbd_server *server, unsigned index,
                                char *buf, size_t size)
{
    if (server->tls_mode != SPD_NBD_TLS_REQUIRE)
        return server_listener_uri(&server->srv, index, buf, size);
    /* "nbd://..." one byte on, then "nbds" over its start. */
    if (size < 2)
        return -ENOSPC;
    int r = server_listener_uri(&server->srv, index, buf + 1, size - 1);
    if (!r)
        memcpy(buf, "nbds", 4);
    return r;
}

int spd_nbd_server_set_tls(spd_nbd_server *server, const spd_nbd_tls *tls)
{
    if (!tls || tls->size < sizeof(uint32_t))
        return spd_set_error(EINVAL, "spd_nbd_tls without its size: use "
                             "SPD_NBD_TLS_INIT");
    if (server->srv.started)
        return spd_set_error(EBUSY, "TLS is chosen before the server starts");
    spd_nbd_tls t = { SPD_NBD_TLS_INIT };
    memcpy(&t, tls, tls->size < sizeof t ? tls->size : sizeof t);
    if (t.mode != SPD_NBD_TLS_OFF && t.mode != SPD_NBD_TLS_ON &&
        t.mode != SPD_NBD_TLS_REQUIRE)
        return spd_set_error(EINVAL, "TLS mode %d: neither off, on nor "
                             "require", (int)t.mode);
    struct tls_creds *creds = NULL;
    if (t.mode != SPD_NBD_TLS_OFF) {
        int r = tls_creds_new(&creds, t.certificates, t.psk_file,
                              t.verify_peer);
        if (r)
            return r;
    }
    tls_creds_free(server->tls_creds);
    server->tls_creds = creds;
    server->tls_mode = t.mode;
    return 0;
}

int spd_nbd_server_port(const spd_nbd_server *server)
{
    return server_port(&server->srv);
}

static struct conn *nbd_conn_new(void *owner, int fd)
{
    struct nbd_conn *conn = calloc(1, sizeof *conn);
    if (!conn)
        return NULL;
    if (conn_init(&conn->c, fd, &nbd_conn_ops, NBD_INPUT_BUFFER)) {
        free(conn);
        return NULL;
    }
    conn->server = owner;
    return &conn->c;
}

static void nbd_serve(struct conn *c)
{
    struct nbd_conn *conn = (struct nbd_conn *)c;
    if (nbd_handshake(conn))
        nbd_transmission(conn);
    tls_close(c->tls);
    c->tls = NULL;
}

static void nbd_conn_free(struct conn *c)
{
    conn_fini(c);
    free(c);
}

static const struct server_proto nbd_proto = {
    .scheme = "nbd",
    .conn_new = nbd_conn_new,
    .serve = nbd_serve,
    .conn_free = nbd_conn_free,
};

int spd_nbd_server_start(spd_nbd_server *server)
{
    if (!server->exports)
        return spd_set_error(EINVAL, "the NBD server has no export");
    if (server->nbds_listener && server->tls_mode != SPD_NBD_TLS_REQUIRE)
        return spd_set_error(EINVAL, "nbds:// and nbds+unix:// addresses "
                             "need TLS required");
    return server_start(&server->srv);
}

void spd_nbd_server_stop(spd_nbd_server *server)
{
    server_stop(&server->srv);
}

void spd_nbd_server_destroy(spd_nbd_server *server)
{
    if (!server)
        return;
    server_fini(&server->srv);
    tls_creds_free(server->tls_creds);
    while (server->exports) {
        struct nbd_export *e = server->exports;
        server->exports = e->next;
        free(e->name);
        free(e->description);
        free(e);
    }
    free(server);
}
