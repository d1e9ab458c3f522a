/*
 * nbd_server.c - the NBD server: exports, listening sockets, the accept
 * loop, and the life of each connection (one thread each: handshake, then
 * transmission until the client or the server ends it).
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/errmsg.h"
#include "transport/nbd_int.h"
#include "transport/uri.h"

/* Beyond this many clients at once, new ones are turned away. */
#define NBD_MAX_CONNECTIONS 1024

spd_nbd_server *spd_nbd_server_create(void)
{
    spd_nbd_server *server = calloc(1, sizeof *server);
    if (!server) {
        spd_set_error(ENOMEM, "out of memory");
        return NULL;
    }
    server->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (server->wake_fd < 0) {
        spd_set_error(errno, "eventfd: %s", strerror(errno));
        free(server);
        return NULL;
    }
    pthread_mutex_init(&server->lock, NULL);
    pthread_cond_init(&server->conns_gone, NULL);
    return server;
}

int spd_nbd_server_add(spd_nbd_server *server, const char *name,
                       spd_unit *unit, const char *description)
{
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
/* Listening                                                           */
/* ------------------------------------------------------------------ */

static int add_listener(spd_nbd_server *server, int fd, const char *unix_path)
{
    struct nbd_listener *l = realloc(server->listeners,
        (server->listener_count + 1) * sizeof *l);
    if (!l) {
        close(fd);
        return spd_set_error(ENOMEM, "out of memory");
    }
    server->listeners = l;
    l[server->listener_count].fd = fd;
    l[server->listener_count].unix_path = unix_path ? strdup(unix_path) : NULL;
    server->listener_count++;
    return 0;
}

/* A stale socket file (nobody accepting) may be replaced; a live one not. */
static int clear_stale_socket(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return 0;
    if (!S_ISSOCK(st.st_mode))
        return spd_set_error(EEXIST, "%s exists and is not a socket", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    strcpy(sa.sun_path, path);
    int live = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (fd >= 0)
        close(fd);
    if (live)
        return spd_set_error(EADDRINUSE, "%s: a server is already "
                             "listening there", path);
    unlink(path);
    return 0;
}

static int listen_unix(spd_nbd_server *server, const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    strcpy(sa.sun_path, path);      /* the URI parser bounded its length */
    int r = clear_stale_socket(path);
    if (r)
        return r;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        listen(fd, 128) < 0) {
        r = spd_set_error(errno, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return r;
    }
    return add_listener(server, fd, path);
}

static int listen_tcp(spd_nbd_server *server, const char *host,
                      const char *port)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC,
                              .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *res;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai)
        return spd_set_error(EINVAL, "%s:%s: %s", host, port,
                             gai_strerror(gai));
    int r = -EADDRNOTAVAIL, bound = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
        int one = 1;
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (ai->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0) {
            r = spd_set_error(errno, "%s:%s: %s", host, port, strerror(errno));
            close(fd);
            continue;
        }
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        if (!server->port && !getsockname(fd, (struct sockaddr *)&ss, &len))
            server->port = ntohs(ss.ss_family == AF_INET
                ? ((struct sockaddr_in *)&ss)->sin_port
                : ((struct sockaddr_in6 *)&ss)->sin6_port);
        if ((r = add_listener(server, fd, NULL)))
            break;
        bound++;
    }
    freeaddrinfo(res);
    return bound ? 0 : r;
}

int spd_nbd_server_listen(spd_nbd_server *server, const char *text)
{
    struct nbd_uri *uri = malloc(sizeof *uri);
    if (!uri)
        return spd_set_error(ENOMEM, "out of memory");
    int r = nbd_uri_parse(text, uri);
    if (!r)
        r = uri->is_unix ? listen_unix(server, uri->socket)
                         : listen_tcp(server, uri->host, uri->port);
    free(uri);
    return r;
}

int spd_nbd_server_port(const spd_nbd_server *server)
{
    return server->port;
}

/* ------------------------------------------------------------------ */
/* Connections                                                         */
/* ------------------------------------------------------------------ */

static void conn_free(struct nbd_conn *conn)
{
    pthread_mutex_destroy(&conn->out_lock);
    pthread_cond_destroy(&conn->idle);
    free(conn->in);
    free(conn);
}

static void *conn_thread(void *arg)
{
    struct nbd_conn *conn = arg;
    spd_nbd_server *server = conn->server;

    if (nbd_handshake(conn))
        nbd_transmission(conn);

    pthread_mutex_lock(&server->lock);
    for (struct nbd_conn **p = &server->conns; *p; p = &(*p)->next) {
        if (*p == conn) {
            *p = conn->next;
            break;
        }
    }
    /* Closed under the lock: stop() never shuts down a reused fd number. */
    close(conn->fd);
    if (--server->conn_count == 0)
        pthread_cond_broadcast(&server->conns_gone);
    pthread_mutex_unlock(&server->lock);
    conn_free(conn);
    return NULL;
}

static void conn_start(spd_nbd_server *server, int fd)
{
    struct nbd_conn *conn = calloc(1, sizeof *conn);
    if (!conn) {
        close(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conn->server = server;
    conn->fd = fd;
    pthread_mutex_init(&conn->out_lock, NULL);
    pthread_cond_init(&conn->idle, NULL);

    pthread_mutex_lock(&server->lock);
    bool full = server->conn_count >= NBD_MAX_CONNECTIONS || server->stopping;
    if (!full) {
        conn->next = server->conns;
        server->conns = conn;
        server->conn_count++;
    }
    pthread_mutex_unlock(&server->lock);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (full || pthread_create(&conn->thread, &attr, conn_thread, conn)) {
        if (!full) {
            pthread_mutex_lock(&server->lock);
            server->conns = conn->next;      /* it was just put first */
            if (--server->conn_count == 0)
                pthread_cond_broadcast(&server->conns_gone);
            pthread_mutex_unlock(&server->lock);
        }
        close(fd);
        conn_free(conn);
    }
    pthread_attr_destroy(&attr);
}

static void *accept_thread(void *arg)
{
    spd_nbd_server *server = arg;
    unsigned n = server->listener_count;
    struct pollfd *fds = calloc(n + 1, sizeof *fds);
    if (!fds)
        return NULL;
    for (unsigned i = 0; i < n; i++)
        fds[i] = (struct pollfd){ .fd = server->listeners[i].fd,
                                  .events = POLLIN };
    fds[n] = (struct pollfd){ .fd = server->wake_fd, .events = POLLIN };

    while (poll(fds, n + 1, -1) >= 0 || errno == EINTR) {
        if (fds[n].revents)
            break;
        for (unsigned i = 0; i < n; i++) {
            if (!fds[i].revents)
                continue;
            int fd = accept4(fds[i].fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0)
                conn_start(server, fd);
        }
    }
    free(fds);
    return NULL;
}

int spd_nbd_server_start(spd_nbd_server *server)
{
    if (!server->listener_count)
        return spd_set_error(EINVAL, "the NBD server listens nowhere: "
                             "call spd_nbd_server_listen first");
    if (!server->exports)
        return spd_set_error(EINVAL, "the NBD server has no export");
    int r = pthread_create(&server->accept_thread, NULL, accept_thread,
                           server);
    if (r)
        return spd_set_error(r, "pthread_create: %s", strerror(r));
    server->started = true;
    return 0;
}

void spd_nbd_server_stop(spd_nbd_server *server)
{
    if (server->started) {
        uint64_t one = 1;
        if (write(server->wake_fd, &one, sizeof one) < 0) {
            /* The counter cannot overflow from one write; nothing to do. */
        }
        pthread_join(server->accept_thread, NULL);
        server->started = false;
    }
    pthread_mutex_lock(&server->lock);
    server->stopping = true;
    /* Wake each connection from its recv: it then answers what it has in
     * flight and closes. */
    for (struct nbd_conn *c = server->conns; c; c = c->next)
        shutdown(c->fd, SHUT_RD);
    while (server->conn_count)
        pthread_cond_wait(&server->conns_gone, &server->lock);
    pthread_mutex_unlock(&server->lock);
}

void spd_nbd_server_destroy(spd_nbd_server *server)
{
    if (!server)
        return;
    spd_nbd_server_stop(server);
    for (unsigned i = 0; i < server->listener_count; i++) {
        close(server->listeners[i].fd);
        if (server->listeners[i].unix_path)
            unlink(server->listeners[i].unix_path);
        free(server->listeners[i].unix_path);
    }
    free(server->listeners);
    while (server->exports) {
        struct nbd_export *e = server->exports;
        server->exports = e->next;
        free(e->name);
        free(e->description);
        free(e);
    }
    close(server->wake_fd);
    pthread_mutex_destroy(&server->lock);
    pthread_cond_destroy(&server->conns_gone);
    free(server);
}
