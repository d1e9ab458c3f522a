/* spd-launcherd - starts, stops and keeps Spd storage devices by class and
 * instance name, on requests over a Unix socket (spd-launcherd(8)).
 *
 * One thread, one poll() loop: the control socket and its clients, each
 * instance's readiness socket and output pipe, and a signalfd for SIGCHLD
 * and the signals that end it. A start or stop request is answered when
 * its instance is ready or gone, so its client waits in the loop too. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "blockdev.h"
#include "instance.h"
#include "proto.h"
#include "spd/version.h"

#ifndef SPD_SYSCONFDIR
#define SPD_SYSCONFDIR "/etc"
#endif
#ifndef SPD_STATEDIR
#define SPD_STATEDIR "/var"
#endif

#define CLIENTS_MAX 64
#define REQUEST_TIMEOUT_MS 10000  /* a client that sends nothing leaves */
#define INSTANCES_MAX 256   /* two descriptors each in the poll set */

enum wait_for { WAIT_REQUEST, WAIT_START, WAIT_STOP };

struct client {
    int fd;
    struct caller who;
    enum wait_for wait;
    struct inst *inst;
    struct timespec accepted;
};

static struct launcher L;
static struct client clients[CLIENTS_MAX];
static int nclients;
static bool shutting_down;

/* ------------------------------------------------------------------ */
/* Replies                                                             */
/* ------------------------------------------------------------------ */

static void client_close(struct client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    *c = clients[--nclients];
}

/* Answer a client (once: it is closed then); 0 for the callers. */
static int reply(struct client *c, const char *status, const char *body)
{
    struct sbuf b = { 0 };
    sb_printf(&b, "%s\n%s", status, body);
    if (!b.err && b.len > PROTO_REPLY_MAX) {
        sb_free(&b);
        sb_printf(&b, "error\nthe reply is too large\n");
    }
    if (!b.err && send(c->fd, b.p, b.len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        fprintf(stderr, "reply to pid %d: %s\n", (int)c->who.pid,
                strerror(errno));
    sb_free(&b);
    close(c->fd);
    c->fd = -1;   /* removed by settle() */
    return 0;
}

static int reply_error(struct client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int reply_error(struct client *c, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    return reply(c, "error", line);
}

static void reply_record(struct client *c, const struct inst *i)
{
    struct sbuf b = { 0 };
    inst_record(i, &b);
    reply(c, "ok", b.p ? b.p : "");
    sb_free(&b);
}

/* ------------------------------------------------------------------ */
/* Requests                                                            */
/* ------------------------------------------------------------------ */

/* Root, the user who started it, and whom its class allows. */
static bool may_query(const struct caller *who, const struct inst *i)
{
    struct lclass c;
    char err[600];
    return who->uid == 0 || who->uid == i->owner ||
           (!class_load(L.config_dir, i->class, &c, err, sizeof err) &&
            class_allows(&c, who));
}

static int not_allowed(struct client *c, const char *what,
                       const char *class)
{
    return reply_error(c, "not allowed: uid %u may not %s instances of class %s",
                (unsigned)c->who.uid, what, class);
}

static int req_start(struct client *c, char **w, int n)
{
    struct lclass cls;
    char err[600];
    if (n < 3)
        return reply_error(c, "usage: start CLASS NAME [ARG...]");
    if (class_load(L.config_dir, w[1], &cls, err, sizeof err))
        return reply_error(c, "%s", err);
    if (!class_allows(&cls, &c->who))
        return not_allowed(c, "start", w[1]);
    if (!proto_name_ok(w[2]))
        return reply_error(c, "'%.80s' is not an instance name (letters, "
                           "digits, '.', '_', '+', '-')", w[2]);
    struct inst *i = inst_find(&L, w[1], w[2]);
    if (i && i->state != INST_EXITED)
        return reply_error(c, "%s %s is already running (pid %d)", w[1],
                           w[2], (int)i->pid);
    if (i)
        inst_forget(&L, i);
    int count = 0;
    for (struct inst *o = L.list; o; o = o->next)
        count++;
    if (count >= INSTANCES_MAX)
        return reply_error(c, "too many instances (%d)", count);
    i = inst_start(&L, &cls, w[2], w + 3, n - 3, c->who.uid, err,
                   sizeof err);
    if (!i)
        return reply_error(c, "%s", err);
    c->wait = WAIT_START;
    c->inst = i;
    return 0;
}

/* What keeps the instance's kernel devices busy: mounts, holders, open
 * descriptors, and loop devices over its FUSE files, which may also be
 * open themselves (in another process than the device). */
static int in_use(const struct inst *i, struct sbuf *why)
{
    char devs[BDEV_MAX][64];
    int n, count = 0;
    inst_devices(i, devs, &n, BDEV_MAX);
    for (int d = 0; d < n; d++)
        count = bdev_users(devs[d], true, why, count);
    for (int e = 0; e < i->nexports; e++) {
        const char *file = i->exports[e];
        if (file[0] == '/' && strncmp(file, "/dev/", 5))
            count = bdev_openers(&file, 1, i->pid, why, count);
    }
    return count;
}

/* A forced stop takes down what it can first: the mounts, then the loop
 * devices over the instance's FUSE files. */
static void release(const struct inst *i)
{
    char devs[BDEV_MAX][64], file[4200];
    int n;
    inst_devices(i, devs, &n, BDEV_MAX);
    for (int d = 0; d < n; d++) {
        bdev_unmount_all(devs[d], true);
        if (!bdev_loop_file(devs[d], file, sizeof file) &&
            bdev_loop_detach(devs[d], 1000))   /* short: all clients wait */
            fprintf(stderr, "%s/%s: cannot detach /dev/%s: %s\n", i->class,
                    i->name, devs[d], strerror(errno));
    }
}

static int req_stop(struct client *c, char **w, int n)
{
    bool force = n == 4 && !strcmp(w[3], "force");
    if (n != 3 && !force)
        return reply_error(c, "usage: stop CLASS NAME [force]");
    struct inst *i = inst_find(&L, w[1], w[2]);
    if (!i)
        return reply_error(c, "%s %s is not running", w[1], w[2]);
    if (!may_query(&c->who, i))
        return not_allowed(c, "stop", w[1]);
    if (i->state == INST_EXITED) {
        char text[128], line[300];
        inst_status_text(i->status, text, sizeof text);
        snprintf(line, sizeof line, "%s %s had %s\n", i->class, i->name,
                 text);
        inst_unsave(&L, i);
        inst_forget(&L, i);
        return reply(c, "ok", line);
    }
    struct sbuf why = { 0 };
    if (!force && in_use(i, &why)) {
        reply_error(c, "%s %s is in use: %s (eject it, or stop --force)",
                    w[1], w[2], why.p ? why.p : "");
        sb_free(&why);
        return 0;
    }
    sb_free(&why);
    if (force)
        release(i);
    inst_unsave(&L, i);
    inst_stop(i);
    c->wait = WAIT_STOP;
    c->inst = i;
    return 0;
}

/* SIGHUP to a running instance, as systemd's reload: a device program
 * reopens its --debug-log and applies its --alua-file again. */
static int req_reload(struct client *c, char **w, int n)
{
    if (n != 3)
        return reply_error(c, "usage: reload CLASS NAME");
    struct inst *i = inst_find(&L, w[1], w[2]);
    if (!i || i->state != INST_RUNNING)
        return reply_error(c, "%s %s is not running", w[1], w[2]);
    if (!may_query(&c->who, i))
        return not_allowed(c, "reload", w[1]);
    if (kill(i->pid, SIGHUP))
        return reply_error(c, "%s %s: SIGHUP to pid %d: %s", w[1], w[2],
                           (int)i->pid, strerror(errno));
    fprintf(stderr, "%s/%s: SIGHUP (reload) for uid %u\n", i->class, i->name,
            (unsigned)c->who.uid);
    return reply(c, "ok", "");
}

static int req_info(struct client *c, char **w, int n)
{
    if (n != 3)
        return reply_error(c, "usage: info CLASS NAME");
    struct inst *i = inst_find(&L, w[1], w[2]);
    if (!i)
        return reply_error(c, "%s %s is not running", w[1], w[2]);
    if (!may_query(&c->who, i))
        return not_allowed(c, "query", w[1]);
    reply_record(c, i);
    return 0;
}

static int req_list(struct client *c)
{
    struct sbuf b = { 0 };
    sb_add(&b, "", 0);
    for (struct inst *i = L.list; i; i = i->next)
        if (may_query(&c->who, i))
            inst_record(i, &b);
    reply(c, "ok", b.p ? b.p : "");
    sb_free(&b);
    return 0;
}

static void class_record(struct sbuf *b, const char *name,
                         const struct caller *who)
{
    struct lclass c;
    char err[600];
    proto_value(b, "class", name);
    if (class_load(L.config_dir, name, &c, err, sizeof err)) {
        proto_value(b, "error", err);
    } else {
        proto_value(b, "executable", c.executable);
        sb_printf(b, "arguments %d\nuser %u\npersistent %s\nallowed %s\n",
                  c.nargs, (unsigned)c.uid, c.persistent ? "yes" : "no",
                  class_allows(&c, who) ? "yes" : "no");
    }
    sb_add(b, "\n", 1);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int req_classes(struct client *c)
{
    struct dirent **names;
    struct sbuf b = { 0 };
    int n = scandir(L.config_dir, &names, NULL, by_name);
    if (n < 0)
        return reply_error(c, "%s: %s", L.config_dir, strerror(errno));
    sb_add(&b, "", 0);
    for (int k = 0; k < n; k++) {
        char *dot = strrchr(names[k]->d_name, '.');
        if (dot && !strcmp(dot, ".conf") && names[k]->d_name[0] != '.') {
            *dot = '\0';
            class_record(&b, names[k]->d_name, &c->who);
        }
        free(names[k]);
    }
    free(names);
    reply(c, "ok", b.p ? b.p : "");
    sb_free(&b);
    return 0;
}

static int on_request(struct client *c)
{
    char msg[PROTO_REQUEST_MAX], *w[PROTO_WORDS_MAX];
    ssize_t len = recv(c->fd, msg, sizeof msg, MSG_DONTWAIT);
    if (len < 0 && errno == EAGAIN)
        return 0;
    int n = len > 0 ? proto_split(msg, (size_t)len, w, PROTO_WORDS_MAX) : -1;
    if (n < 1)
        return reply_error(c, "malformed request");
    if (shutting_down)
        return reply_error(c, "the launcher is stopping");
    if (!strcmp(w[0], "start"))
        return req_start(c, w, n);
    if (!strcmp(w[0], "stop"))
        return req_stop(c, w, n);
    if (!strcmp(w[0], "reload"))
        return req_reload(c, w, n);
    if (!strcmp(w[0], "info"))
        return req_info(c, w, n);
    if (!strcmp(w[0], "list") && n == 1)
        return req_list(c);
    if (!strcmp(w[0], "classes") && n == 1)
        return req_classes(c);
    return reply_error(c, "unknown request '%.40s'", w[0]);
}

/* ------------------------------------------------------------------ */
/* Events                                                              */
/* ------------------------------------------------------------------ */

/* Answer the clients whose instance is now ready or gone; then forget
 * the instances stopped on request or whose start failed. */
static void settle(void)
{
    for (int k = 0; k < nclients; k++) {
        struct client *c = &clients[k];
        struct inst *i = c->inst;
        char text[128];
        if (!i || c->fd < 0)
            continue;
        if (c->wait == WAIT_START && i->state == INST_RUNNING) {
            reply_record(c, i);
        } else if (c->wait == WAIT_START && i->state == INST_EXITED) {
            inst_status_text(i->status, text, sizeof text);
            reply_error(c, "%s %s %s before it was ready: %s", i->class,
                        i->name, text, i->late ? "no readiness in time"
                                               : i->last);
            i->stopped = true;   /* a failed start leaves nothing */
        } else if (c->wait == WAIT_STOP && i->state == INST_EXITED) {
            reply(c, "ok", "");
            i->stopped = true;
        }
    }
    for (int k = nclients - 1; k >= 0; k--)
        if (clients[k].fd < 0)
            client_close(&clients[k]);
    for (struct inst *i = L.list, *next; i; i = next) {
        next = i->next;
        if (i->state == INST_RUNNING && i->persistent && !i->saved) {
            inst_save(&L, i);   /* ready: worth starting again */
            i->saved = true;
        }
        if (i->stopped)
            inst_forget(&L, i);
    }
}

static void reap(void)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        for (struct inst *i = L.list; i; i = i->next)
            if (i->pid == pid && i->state != INST_EXITED)
                inst_on_exit(i, status);
}

static void shut_down(void)
{
    if (!shutting_down)
        fprintf(stderr, "stopping every instance\n");
    shutting_down = true;
    for (struct inst *i = L.list; i; i = i->next)
        inst_stop(i);
}

static void on_signal(int sfd)
{
    struct signalfd_siginfo si;
    while (read(sfd, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGCHLD)
            reap();
        else
            shut_down();
    }
}

static void on_accept(int lfd)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (fd < 0)
        return;
    if (nclients == CLIENTS_MAX ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len)) {
        close(fd);
        return;
    }
    int size = PROTO_REPLY_MAX * 2;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    struct client *c = &clients[nclients++];
    *c = (struct client){ fd, { cred.pid, cred.uid, cred.gid, 0, { 0 } },
                          WAIT_REQUEST, NULL, { 0, 0 } };
    len = sizeof c->who.groups;
    if (!getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, c->who.groups, &len))
        c->who.ngroups = (int)(len / sizeof(gid_t));
    clock_gettime(CLOCK_MONOTONIC, &c->accepted);
}

static long ms_until(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long ms = (t->tv_sec - now.tv_sec) * 1000 +
              (t->tv_nsec - now.tv_nsec) / 1000000;
    return ms < 0 ? 0 : ms;
}

/* A client silent since it connected is dropped, so that a few idle
 * connections cannot take every slot. */
static long client_deadlines(void)
{
    long next = -1;
    for (int k = nclients - 1; k >= 0; k--) {
        if (clients[k].wait != WAIT_REQUEST)
            continue;
        struct timespec t = clients[k].accepted;
        t.tv_sec += REQUEST_TIMEOUT_MS / 1000;
        long ms = ms_until(&t);
        if (ms == 0)
            client_close(&clients[k]);
        else if (next < 0 || ms < next)
            next = ms;
    }
    return next;
}

/* SIGKILL what missed its deadline; the poll timeout until the next. */
static int deadlines(void)
{
    long next = client_deadlines();
    for (struct inst *i = L.list; i; i = i->next) {
        if (i->state != INST_STARTING && i->state != INST_STOPPING)
            continue;
        long ms = ms_until(&i->deadline);
        if (ms == 0 && !i->late) {
            fprintf(stderr, "%s/%s: %s in time: SIGKILL\n", i->class,
                    i->name, i->state == INST_STARTING ? "not ready"
                                                       : "not stopped");
            i->late = true;
            inst_kill(i);
        } else if (ms > 0 && (next < 0 || ms < next)) {
            next = ms;
        }
    }
    return next > 1000000 ? 1000000 : (int)next;
}

static bool any_alive(void)
{
    for (struct inst *i = L.list; i; i = i->next)
        if (i->state != INST_EXITED)
            return true;
    return false;
}

/* ------------------------------------------------------------------ */
/* Start-up                                                            */
/* ------------------------------------------------------------------ */

/* sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET. */
static void notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    size_t len = path ? strlen(path) : 0;
    if (!len || (path[0] != '/' && path[0] != '@') || len >= sizeof a.sun_path)
        return;
    memcpy(a.sun_path, path, len);
    if (path[0] == '@')
        a.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&a,
           (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
    close(fd);
}

/* The socket systemd passes (spd-launcherd.socket), or -1. */
static int socket_from_systemd(void)
{
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
    if (!pid || !fds || atol(pid) != (long)getpid() || atoi(fds) != 1)
        return -1;
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return 3;
}

/* Our own socket: a stale one (nobody listening) is replaced; a live one
 * means another launcher runs. Everyone may connect: SO_PEERCRED and the
 * classes decide what each caller may do. */
static int socket_listen(const char *path)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof a.sun_path) {
        fprintf(stderr, "spd-launcherd: --socket %s: too long\n", path);
        return -1;
    }
    strcpy(a.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd >= 0 && !connect(fd, (struct sockaddr *)&a, sizeof a)) {
        fprintf(stderr, "spd-launcherd: another launcher serves %s\n", path);
        close(fd);
        return -1;
    }
    struct stat st;
    if (!lstat(path, &st) && S_ISSOCK(st.st_mode))
        unlink(path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) ||
        chmod(path, 0666) || listen(fd, 64)) {
        fprintf(stderr, "spd-launcherd: %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static int make_dir(const char *path, mode_t mode)
{
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", path);
    for (char *p = copy + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(copy, 0755);
            *p = '/';
        }
    if (mkdir(copy, mode) && errno != EEXIST) {
        fprintf(stderr, "spd-launcherd: %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: spd-launcherd [--config-dir DIR] [--socket PATH] "
               "[--state-dir DIR] [--run-dir DIR]\n"
               "defaults: %s/spd/classes.d, %s, %s/lib/spd/launcher, the "
               "socket's folder\n", SPD_SYSCONFDIR, PROTO_SOCKET,
               SPD_STATEDIR);
}

static int parse_options(int argc, char **argv, const char **socket_path)
{
    static const struct option opts[] = {
        { "config-dir", required_argument, NULL, 'c' },
        { "socket", required_argument, NULL, 's' },
        { "state-dir", required_argument, NULL, 'S' },
        { "run-dir", required_argument, NULL, 'r' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { 0 } };
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'c': L.config_dir = optarg; break;
        case 's': *socket_path = optarg; break;
        case 'S': L.state_dir = optarg; break;
        case 'r': L.run_dir = optarg; break;
        case 'h': usage(stdout); exit(0);
        case 'V': printf("spd-launcherd %s\n", SPD_VERSION_STRING); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "spd-launcherd: unexpected argument '%s'\n",
                argv[optind]);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* The loop                                                            */
/* ------------------------------------------------------------------ */

enum { MAX_FDS = 2 + CLIENTS_MAX + 2 * INSTANCES_MAX };

static void loop(int sfd, int lfd)
{
    struct pollfd p[MAX_FDS];
    struct inst *owner[MAX_FDS];
    while (!shutting_down || any_alive()) {
        int timeout = deadlines(), n = 0;
        p[n++] = (struct pollfd){ sfd, POLLIN, 0 };
        p[n++] = (struct pollfd){ shutting_down ? -1 : lfd, POLLIN, 0 };
        for (int k = 0; k < nclients; k++)
            p[n++] = (struct pollfd){ clients[k].fd,
                clients[k].wait == WAIT_REQUEST ? POLLIN : 0, 0 };
        for (struct inst *i = L.list; i && n + 2 <= MAX_FDS; i = i->next) {
            owner[n] = i;
            p[n++] = (struct pollfd){ i->notify_fd, POLLIN, 0 };
            owner[n] = i;
            p[n++] = (struct pollfd){ i->out_fd, POLLIN, 0 };
        }
        if (poll(p, (nfds_t)n, timeout) < 0 && errno != EINTR)
            break;
        for (int k = n - 1; k >= 2 + nclients; k--)
            if (p[k].revents && p[k].fd == owner[k]->notify_fd)
                inst_on_notify(owner[k]);
            else if (p[k].revents)
                inst_on_output(owner[k]);
        for (int k = nclients - 1; k >= 0; k--)
            if (p[2 + k].revents & POLLIN)
                on_request(&clients[k]);
            else if (p[2 + k].revents)
                client_close(&clients[k]);   /* gone while waiting */
        if (p[0].revents)
            on_signal(sfd);
        settle();
        if (p[1].revents)
            on_accept(lfd);
    }
}

int main(int argc, char **argv)
{
    const char *socket_path = PROTO_SOCKET;
    static char run_dir[4096];
    L.config_dir = SPD_SYSCONFDIR "/spd/classes.d";
    L.state_dir = SPD_STATEDIR "/lib/spd/launcher";
    if (parse_options(argc, argv, &socket_path))
        return 2;
    if (!L.run_dir) {
        snprintf(run_dir, sizeof run_dir, "%s", socket_path);
        char *slash = strrchr(run_dir, '/');
        if (slash && slash != run_dir)
            *slash = '\0';
        else
            strcpy(run_dir, slash ? "/" : ".");
        L.run_dir = run_dir;
    }
    setvbuf(stderr, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    int lfd = socket_from_systemd();
    if (lfd < 0 && (make_dir(L.run_dir, 0755) ||
                    (lfd = socket_listen(socket_path)) < 0))
        return 1;
    if (sfd < 0 || make_dir(L.state_dir, 0700) || make_dir(L.run_dir, 0755))
        return 1;
    fprintf(stderr, "spd-launcherd %s: classes in %s, state in %s, "
            "listening on %s\n", SPD_VERSION_STRING, L.config_dir,
            L.state_dir, socket_path);
    bdev_clean_dead_fuse(L.run_dir);    /* left by a launcher killed */
    inst_restore(&L);
    notify("READY=1");
    loop(sfd, lfd);
    notify("STOPPING=1");
    while (L.list)
        inst_forget(&L, L.list);
    fprintf(stderr, "spd-launcherd: stopped\n");
    return 0;
}
