/* server.c - see server.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util/errmsg.h"
#include "transport/server.h"

#define SERVER_MAX_CONNECTIONS 1024
#define SERVER_MAX_PER_PEER 64
/* A refused peer is named in the log once in this long. */
#define SERVER_REFUSAL_LOG_MS 60000
/* Connections with nothing in flight this long give spare buffers back;
 * the accept thread looks twice as often. */
#define SERVER_TRIM_IDLE_MS 1000
#define SERVER_HANDSHAKE_TIMEOUT 60
#define SERVER_SOCKET_MODE 0600      /* Unix sockets: this user only */
/* Seconds: their milliseconds fit in 32 bits. */
#define SERVER_TIMEOUT_MAX 1000000
/* A stopping server waits this long for connections to answer what they
 * have in flight before it cuts them off. */
#define SERVER_STOP_GRACE_S 5
/* After accept() fails for want of descriptors or memory. */
#define SERVER_ACCEPT_PAUSE_MS 1000
/* Systemd passes its sockets from this descriptor on (sd_listen_fds). */
#define SD_LISTEN_FDS_START 3

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int server_init(struct server *s, const struct server_proto *proto,
                void *owner, const spd_server_options *options)
{
    memset(s, 0, sizeof *s);
    if (options && options->size < sizeof(uint32_t))
        return spd_set_error(EINVAL, "spd_server_options without its size: "
                             "use SPD_SERVER_OPTIONS_INIT");
    if (options) {
        size_t n = options->size < sizeof s->opt ? options->size
                                                 : sizeof s->opt;
        memcpy(&s->opt, options, n);
    }
    s->opt.size = sizeof s->opt;
    if (s->opt.handshake_timeout > SERVER_TIMEOUT_MAX ||
        s->opt.idle_timeout > SERVER_TIMEOUT_MAX)
        return spd_set_error(EINVAL, "timeouts are at most %d seconds",
                             SERVER_TIMEOUT_MAX);
    if (s->opt.socket_mode & ~0777u)
        return spd_set_error(EINVAL, "socket mode %o: only permission bits "
                             "(0 to 0777)", s->opt.socket_mode);
    if (!s->opt.socket_mode)
        s->opt.socket_mode = SERVER_SOCKET_MODE;
    if ((s->opt.max_memory && s->opt.max_memory < MEM_CEILING_MIN) ||
        (s->opt.max_connection_memory &&
         s->opt.max_connection_memory < MEM_CEILING_MIN) ||
        s->opt.max_memory > SIZE_MAX || s->opt.max_connection_memory > SIZE_MAX)
        return spd_set_error(EINVAL, "memory ceilings are at least %llu "
                             "bytes", (unsigned long long)MEM_CEILING_MIN);
    if (!s->opt.max_connections)
        s->opt.max_connections = SERVER_MAX_CONNECTIONS;
    if (!s->opt.max_connections_per_peer)
        s->opt.max_connections_per_peer = SERVER_MAX_PER_PEER;
    if (s->opt.max_connections_per_peer > s->opt.max_connections)
        s->opt.max_connections_per_peer = s->opt.max_connections;
    if (!s->opt.max_connection_memory)
        s->opt.max_connection_memory = MEM_CONNECTION_DEFAULT;
    mem_process_limit((size_t)s->opt.max_memory);
    if (!s->opt.handshake_timeout)
        s->opt.handshake_timeout = SERVER_HANDSHAKE_TIMEOUT;
    s->proto = proto;
    s->owner = owner;
    s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->wake_fd < 0)
        return spd_set_error(errno, "eventfd: %s", strerror(errno));
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->changed, NULL);
    return 0;
}

void server_fini(struct server *s)
{
    server_stop(s);
    for (unsigned i = 0; i < s->listener_count; i++) {
        close(s->listeners[i].fd);
        if (s->listeners[i].unix_path)
            unlink(s->listeners[i].unix_path);
        free(s->listeners[i].unix_path);
    }
    free(s->listeners);
    close(s->wake_fd);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->changed);
}

/* ------------------------------------------------------------------ */
/* Listening                                                           */
/* ------------------------------------------------------------------ */

static int add_listener(struct server *s, int fd, const char *unix_path)
{
    struct server_listener *l = realloc(s->listeners,
        (s->listener_count + 1) * sizeof *l);
    char *path = unix_path ? strdup(unix_path) : NULL;
    if (!l || (unix_path && !path)) {
        if (l)
            s->listeners = l;
        free(path);
        close(fd);
        return spd_set_error(ENOMEM, "out of memory");
    }
    s->listeners = l;
    l[s->listener_count++] = (struct server_listener){ fd, path };
    return 0;
}

int server_listen_tcp(struct server *s, const char *host, const char *port)
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
        if ((r = add_listener(s, fd, NULL)))
            break;
        bound++;
    }
    freeaddrinfo(res);
    return bound ? 0 : r;
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

int server_listen_unix(struct server *s, const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (!*path || strlen(path) >= sizeof sa.sun_path)
        return spd_set_error(EINVAL, "bad Unix socket path '%s'", path);
    strcpy(sa.sun_path, path);
    int r = clear_stale_socket(path);
    if (r)
        return r;
    /* The socket file takes the mode before anyone can connect (nobody
     * can before listen): bind applies the umask, so set it again after,
     * on the file bind made (never through a link put in its place). */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    mode_t mode = (mode_t)s->opt.socket_mode;
    bool bound = false;
    if (fd < 0 || fchmod(fd, mode) < 0 ||
        !(bound = !bind(fd, (struct sockaddr *)&sa, sizeof sa)) ||
        fchmodat(AT_FDCWD, path, mode, AT_SYMLINK_NOFOLLOW) < 0 ||
        listen(fd, 128) < 0) {
        r = spd_set_error(errno, "%s: %s", path, strerror(errno));
        if (bound)
            unlink(path);
        if (fd >= 0)
            close(fd);
        return r;
    }
    return add_listener(s, fd, path);
}

/* Descriptors taken from systemd by any server of the process. */
static pthread_mutex_t systemd_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char systemd_taken[1024];

/* The n-th name of LISTEN_FDNAMES (colon-separated), or "". */
static void fd_name(const char *names, unsigned n, char *buf, size_t size)
{
    buf[0] = '\0';
    for (unsigned i = 0; names && i < n; i++) {
        names = strchr(names, ':');
        if (names)
            names++;
    }
    if (!names)
        return;
    size_t len = strcspn(names, ":");
    if (len >= size)
        len = size - 1;
    memcpy(buf, names, len);
    buf[len] = '\0';
}

int server_listen_systemd(struct server *s, const char *address)
{
    const char *want = NULL;
    if (!strncmp(address, "systemd:", 8))
        want = address + 8;
    else if (strcmp(address, "systemd"))
        return 1;
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
    char *end;
    long n = fds ? strtol(fds, &end, 10) : 0;
    if (!pid || !fds || *end || n <= 0 ||
        strtol(pid, NULL, 10) != (long)getpid())
        return spd_set_error(ENOENT, "%s: no socket passed by systemd "
                             "(LISTEN_FDS, LISTEN_PID)", address);
    if (n > (long)(sizeof systemd_taken - SD_LISTEN_FDS_START))
        n = (long)(sizeof systemd_taken - SD_LISTEN_FDS_START);
    int r = 0, found = 0;
    pthread_mutex_lock(&systemd_lock);
    for (int fd = SD_LISTEN_FDS_START; !r && fd < SD_LISTEN_FDS_START + n;
         fd++) {
        char name[256];
        fd_name(getenv("LISTEN_FDNAMES"), (unsigned)(fd - SD_LISTEN_FDS_START),
                name, sizeof name);
        if ((want && strcmp(want, name)) || systemd_taken[fd])
            continue;
        int listening = 0;
        socklen_t len = sizeof listening;
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 ||
            !listening) {
            r = spd_set_error(EINVAL, "%s: descriptor %d is not a listening "
                              "socket", address, fd);
            break;
        }
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        if (!(r = add_listener(s, fd, NULL))) {
            systemd_taken[fd] = 1;
            found++;
        }
    }
    pthread_mutex_unlock(&systemd_lock);
    if (!r && !found)
        r = spd_set_error(ENOENT, "%s: no socket of that name passed by "
                          "systemd (LISTEN_FDNAMES)", address);
    return r;
}

/* A socket address as HOST:PORT ([V6]:PORT), or the path. */
static void format_addr(const struct sockaddr_storage *ss, char *buf,
                        size_t size)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        snprintf(buf, size, "%s:%d", host, ntohs(in->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        snprintf(buf, size, "[%s]:%d", host, ntohs(in6->sin6_port));
    } else if (ss->ss_family == AF_UNIX) {
        snprintf(buf, size, "%s", ((const struct sockaddr_un *)ss)->sun_path);
    } else {
        snprintf(buf, size, "?");
    }
}

int server_listener_uri(const struct server *s, unsigned index, char *buf,
                        size_t size)
{
    if (index >= s->listener_count)
        return -ENOENT;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    memset(&ss, 0, sizeof ss);
    if (getsockname(s->listeners[index].fd, (struct sockaddr *)&ss, &len) < 0)
        return -errno;
    char addr[sizeof(struct sockaddr_un) + 8];
    format_addr(&ss, addr, sizeof addr);
    int n = ss.ss_family == AF_UNIX
            ? snprintf(buf, size, "%s+unix:///?socket=%s", s->proto->scheme,
                       addr)
            : snprintf(buf, size, "%s://%s", s->proto->scheme, addr);
    return n < 0 || (size_t)n >= size ? -ENOSPC : 0;
}

int server_port(const struct server *s)
{
    for (unsigned i = 0; i < s->listener_count; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        if (getsockname(s->listeners[i].fd, (struct sockaddr *)&ss, &len) < 0)
            continue;
        if (ss.ss_family == AF_INET)
            return ntohs(((struct sockaddr_in *)&ss)->sin_port);
        if (ss.ss_family == AF_INET6)
            return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Connections                                                         */
/* ------------------------------------------------------------------ */

static void peer_name(int fd, char *buf, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    memset(&ss, 0, sizeof ss);
    if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0) {
        snprintf(buf, size, "?");
    } else if (ss.ss_family == AF_UNIX) {
        struct ucred cred;
        socklen_t clen = sizeof cred;
        if (!getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen))
            snprintf(buf, size, "a local process (pid %d)", (int)cred.pid);
        else
            snprintf(buf, size, "a local process");
    } else {
        format_addr(&ss, buf, size);
    }
}

/* The peer's address without the port, for the limit per peer; "" for
 * a Unix socket. */
static void peer_host(int fd, char *buf, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    memset(&ss, 0, sizeof ss);
    buf[0] = '\0';
    if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
        return;
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, buf,
                  (socklen_t)size);
    else if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, buf,
                  (socklen_t)size);
}

/* Connections from host. s->lock held. */
static unsigned peer_count(const struct server *s, const char *host)
{
    unsigned n = 0;
    for (const struct conn *c = s->conns; c; c = c->next)
        n += !strcmp(c->host, host);
    return n;
}

/* Whether a refusal of host is to be logged: once a minute per peer, so
 * that a flood does not flood the log too. s->lock held. */
static bool refusal_to_log(struct server *s, const char *host)
{
    int64_t now = now_ms();
    struct server_refusal *oldest = &s->refused[0];
    for (unsigned i = 0; i < SERVER_REFUSALS; i++) {
        struct server_refusal *r = &s->refused[i];
        if (r->at && !strcmp(r->host, host)) {
            if (now - r->at < SERVER_REFUSAL_LOG_MS)
                return false;
            oldest = r;
            break;
        }
        if (r->at < oldest->at)
            oldest = r;
    }
    snprintf(oldest->host, sizeof oldest->host, "%s", host);
    oldest->at = now;
    return true;
}

void server_handshake_done(struct conn *c)
{
    struct server *s = c->server;
    pthread_mutex_lock(&s->lock);
    c->deadline_ms = 0;
    pthread_mutex_unlock(&s->lock);
    c->idle_ms = s->opt.idle_timeout * 1000;
}

static void *conn_thread(void *arg)
{
    struct conn *c = arg;
    struct server *s = c->server;
    /* Once the count drops, stop() may return and the server go. */
    const struct server_proto *proto = s->proto;

    proto->serve(c);

    pthread_mutex_lock(&s->lock);
    for (struct conn **p = &s->conns; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    /* Closed under the lock: stop() never shuts down a reused number. */
    close(c->fd);
    s->conn_count--;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
    proto->conn_free(c);
    return NULL;
}

/* Serve the accepted socket fd on a thread of its own: 0, or the errno
 * when there were no resources for it (fd stays open, to try again). */
static int conn_accepted(struct server *s, int fd)
{
    char peer[sizeof ((struct conn *)0)->peer];
    char host[sizeof ((struct conn *)0)->host];
    peer_host(fd, host, sizeof host);
    pthread_mutex_lock(&s->lock);
    bool full = s->conn_count >= s->opt.max_connections;
    bool peer_full = !full && *host &&
                     peer_count(s, host) >= s->opt.max_connections_per_peer;
    bool log = (full || peer_full) && refusal_to_log(s, host);
    bool refuse = full || peer_full || s->stopping;
    pthread_mutex_unlock(&s->lock);
    if (refuse) {
        if (log) {
            peer_name(fd, peer, sizeof peer);
            fprintf(stderr, "spd: %s: refused a connection from %s: %u "
                    "connections%s at once already (not logged again for "
                    "this address for a minute)\n", s->proto->scheme, peer,
                    full ? s->opt.max_connections
                         : s->opt.max_connections_per_peer,
                    full ? "" : " from that address");
        }
        close(fd);
        return 0;
    }

    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* Blocking reads and writes (handshake, a message's remainder) give
     * up on a peer that stalls this long. */
    struct timeval tv = { .tv_sec = s->opt.handshake_timeout };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct conn *c = s->proto->conn_new(s->owner, fd);
    if (!c)
        return errno ? errno : ENOMEM;
    c->server = s;
    c->send_ms = s->opt.handshake_timeout * 1000;
    c->deadline_ms = now_ms() + (int64_t)s->opt.handshake_timeout * 1000;
    c->mem.limit = (size_t)s->opt.max_connection_memory;
    peer_name(fd, c->peer, sizeof c->peer);
    memcpy(c->host, host, sizeof host);

    pthread_mutex_lock(&s->lock);
    c->next = s->conns;
    s->conns = c;
    s->conn_count++;
    pthread_mutex_unlock(&s->lock);

    pthread_attr_t attr;
    pthread_t thread;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int err = pthread_create(&thread, &attr, conn_thread, c);
    if (err) {
        pthread_mutex_lock(&s->lock);
        s->conns = c->next;             /* it was just put first */
        s->conn_count--;
        pthread_cond_broadcast(&s->changed);
        pthread_mutex_unlock(&s->lock);
        s->proto->conn_free(c);
    }
    pthread_attr_destroy(&attr);
    return err == EAGAIN ? ENOMEM : err;
}

/* Cut off handshakes past their deadline, and have connections idle for
 * a while give their spare buffers back; the milliseconds until this is
 * to be done again, or -1. */
static int server_timers(struct server *s)
{
    int64_t now = now_ms(), next = INT64_MAX;
    pthread_mutex_lock(&s->lock);
    if (s->conns)
        next = now + SERVER_TRIM_IDLE_MS / 2;
    for (struct conn *c = s->conns; c; c = c->next) {
        if (c->ops->trim) {
            pthread_mutex_lock(&c->lock);
            if (!c->pending && now - atomic_load(&c->active_ms) >=
                               SERVER_TRIM_IDLE_MS)
                c->ops->trim(c);
            pthread_mutex_unlock(&c->lock);
        }
        if (!c->deadline_ms)
            continue;
        if (c->deadline_ms <= now) {
            c->deadline_ms = 0;
            shutdown(c->fd, SHUT_RDWR);
        } else if (c->deadline_ms < next) {
            next = c->deadline_ms;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return next == INT64_MAX ? -1 : (int)(next - now);
}

/* Taking a client failed: true when accepting should pause (out of
 * descriptors or memory) rather than spin on a listener that stays
 * readable. */
static bool accept_failed(struct server *s, int err)
{
    if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM)
        return false;                   /* the client left first, say */
    if (!s->accept_error_logged)
        fprintf(stderr, "spd: %s: accepting a connection: %s; pausing new "
                "connections\n", s->proto->scheme, strerror(err));
    s->accept_error_logged = true;
    return true;
}

/* Serve the accepted fd: true when there was no room for it, and then
 * *held = fd waits for the pause to end (the client is not dropped). */
static bool take(struct server *s, int fd, int *held)
{
    int err = conn_accepted(s, fd);
    if (!err) {
        s->accept_error_logged = false;
        return false;
    }
    if (accept_failed(s, err)) {
        *held = fd;
        return true;
    }
    close(fd);
    return false;
}

static void *accept_thread(void *arg)
{
    struct server *s = arg;
    unsigned n = s->listener_count;
    struct pollfd *fds = calloc(n + 1, sizeof *fds);
    if (!fds)
        return NULL;
    fds[n] = (struct pollfd){ .fd = s->wake_fd, .events = POLLIN };
    bool pause = false;
    int held = -1;

    for (;;) {
        for (unsigned i = 0; i < n; i++)
            fds[i] = (struct pollfd){ .fd = s->listeners[i].fd,
                                      .events = pause ? 0 : POLLIN };
        int timeout = server_timers(s);
        if (pause && (timeout < 0 || timeout > SERVER_ACCEPT_PAUSE_MS))
            timeout = SERVER_ACCEPT_PAUSE_MS;
        if (poll(fds, n + 1, timeout) < 0 && errno != EINTR)
            break;
        if (fds[n].revents)
            break;
        pause = false;
        if (held >= 0) {
            int fd = held;
            held = -1;
            pause = take(s, fd, &held);
        }
        for (unsigned i = 0; i < n && !pause; i++) {
            if (!fds[i].revents)
                continue;
            int fd = accept4(fds[i].fd, NULL, NULL, SOCK_CLOEXEC);
            pause = fd < 0 ? accept_failed(s, errno) : take(s, fd, &held);
        }
    }
    if (held >= 0)
        close(held);
    free(fds);
    return NULL;
}

int server_start(struct server *s)
{
    if (s->started)
        return spd_set_error(EBUSY, "the %s server is already started",
                             s->proto->scheme);
    if (!s->listener_count)
        return spd_set_error(EINVAL, "the %s server listens nowhere: call "
                             "listen first", s->proto->scheme);
    pthread_mutex_lock(&s->lock);
    s->stopping = false;
    pthread_mutex_unlock(&s->lock);
    int r = pthread_create(&s->accept_thread, NULL, accept_thread, s);
    if (r)
        return spd_set_error(r, "pthread_create: %s", strerror(r));
    s->started = true;
    return 0;
}

void server_stop(struct server *s)
{
    if (s->started) {
        uint64_t one = 1, drain;
        if (write(s->wake_fd, &one, sizeof one) < 0) {
            /* One write cannot overflow the counter: nothing to do. */
        }
        pthread_join(s->accept_thread, NULL);
        if (read(s->wake_fd, &drain, sizeof drain) < 0) {
            /* Nothing was there: fine. */
        }
        s->started = false;
    }
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    /* Each connection takes no more requests, answers those in flight and
     * closes. */
    for (struct conn *c = s->conns; c; c = c->next) {
        atomic_store(&c->stop, true);
        conn_wake(c);
        shutdown(c->fd, SHUT_RD);
    }
    struct timespec grace;
    clock_gettime(CLOCK_REALTIME, &grace);
    grace.tv_sec += SERVER_STOP_GRACE_S;
    while (s->conn_count &&
           pthread_cond_timedwait(&s->changed, &s->lock, &grace) != ETIMEDOUT)
        ;
    /* Those still there wait for a peer that does not read: their sends
     * fail now, and they end once their units answered. */
    for (struct conn *c = s->conns; c; c = c->next)
        shutdown(c->fd, SHUT_RDWR);
    while (s->conn_count)
        pthread_cond_wait(&s->changed, &s->lock);
    pthread_mutex_unlock(&s->lock);
}
