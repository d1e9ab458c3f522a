/* instance.c - the device processes spd-launcherd runs. */
#include "instance.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "blockdev.h"

struct inst *inst_find(struct launcher *l, const char *class,
                       const char *name)
{
    for (struct inst *i = l->list; i; i = i->next)
        if (!strcmp(i->class, class) && !strcmp(i->name, name))
            return i;
    return NULL;
}

/* A datagram socket in the abstract namespace for the child's
 * $NOTIFY_SOCKET; the sender's pid is checked on every message. */
static int notify_socket(char *env, size_t size)
{
    static unsigned seq;
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    int n = snprintf(a.sun_path + 1, sizeof a.sun_path - 1,
                     "spd-launcherd/%d/%u", (int)getpid(), ++seq);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 ||
        bind(fd, (struct sockaddr *)&a,
             (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n)) ||
        setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    snprintf(env, size, "NOTIFY_SOCKET=@%s", a.sun_path + 1);
    return fd;
}

/* The user and group of the class; the supplementary groups of that
 * user, or none. */
static int drop_privileges(const struct lclass *c)
{
    if (c->uid == geteuid() && c->gid == getegid())
        return 0;
    struct passwd *pw = getpwuid(c->uid);
    if ((pw ? initgroups(pw->pw_name, c->gid) : setgroups(0, NULL)) ||
        setresgid(c->gid, c->gid, c->gid) ||
        setresuid(c->uid, c->uid, c->uid))
        return -1;
    return 0;
}

/* In the child: everything that may fail is reported on the pipe that
 * the launcher logs, with status 127. */
static void child(const struct lclass *c, char **argv, const char *notify,
                  int out, pid_t launcher)
{
    int null = open("/dev/null", O_RDONLY);
    if (null < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 ||
        dup2(out, 2) < 0)
        _exit(127);
    close_range(3, ~0U, 0);
    setsid();
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    if (chdir(c->directory)) {
        fprintf(stderr, "cannot enter %s: %s\n", c->directory,
                strerror(errno));
        _exit(127);
    }
    if (drop_privileges(c)) {
        fprintf(stderr, "cannot become user %u group %u: %s\n",
                (unsigned)c->uid, (unsigned)c->gid, strerror(errno));
        _exit(127);
    }
    /* After the change of user, which clears it: the child dies with
     * the launcher, even one killed by SIGKILL; and if the launcher died
     * already, before the call, its parent is someone else now. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != launcher)
        _exit(127);
    char *env[] = { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                    "/sbin:/bin", (char *)notify, NULL };
    execve(argv[0], argv, env);
    fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

static char **copy_args(char **args, int nargs)
{
    char **copy = calloc((size_t)nargs + 1, sizeof *copy);
    for (int i = 0; copy && i < nargs; i++)
        if (!(copy[i] = strdup(args[i]))) {
            for (int j = 0; j < i; j++)
                free(copy[j]);
            free(copy);
            return NULL;
        }
    return copy;
}

static void inst_free(struct inst *i)
{
    for (int a = 0; i->args && a < i->nargs; a++)
        free(i->args[a]);
    free(i->args);
    free(i->argv);
    if (i->notify_fd >= 0)
        close(i->notify_fd);
    if (i->out_fd >= 0)
        close(i->out_fd);
    free(i);
}

static void set_deadline(struct inst *i, int seconds)
{
    clock_gettime(CLOCK_MONOTONIC, &i->deadline);
    i->deadline.tv_sec += seconds;
}

static int spawn(struct inst *i, const struct lclass *c)
{
    char notify[128];
    int pipefd[2] = { -1, -1 };
    i->notify_fd = notify_socket(notify, sizeof notify);
    if (i->notify_fd < 0 || pipe2(pipefd, O_CLOEXEC))
        return -1;
    i->out_fd = pipefd[0];
    fcntl(i->out_fd, F_SETFL, O_NONBLOCK);
    pid_t launcher = getpid();
    i->pid = fork();
    if (i->pid == 0)
        child(c, i->argv, notify, pipefd[1], launcher);
    int err = errno;
    close(pipefd[1]);
    errno = err;
    return i->pid < 0 ? -1 : 0;
}

struct inst *inst_start(struct launcher *l, const struct lclass *c,
                        const char *name, char **args, int nargs,
                        uid_t owner, char *err, size_t errsize)
{
    struct inst *i = calloc(1, sizeof *i);
    if (!i) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    i->notify_fd = i->out_fd = -1;
    snprintf(i->class, sizeof i->class, "%s", c->name);
    snprintf(i->name, sizeof i->name, "%s", name);
    i->argv = class_argv(c, name, l->run_dir, args, nargs, err, errsize);
    if (!i->argv || !(i->args = copy_args(args, nargs))) {
        if (i->argv)
            snprintf(err, errsize, "out of memory");
        inst_free(i);
        return NULL;
    }
    i->nargs = nargs;
    i->owner = owner;
    i->persistent = c->persistent;
    i->stop_timeout = c->stop_timeout;
    i->started = time(NULL);
    if (spawn(i, c)) {
        snprintf(err, errsize, "cannot start %s: %s", i->argv[0],
                 strerror(errno));
        inst_free(i);
        return NULL;
    }
    set_deadline(i, c->ready_timeout);
    fprintf(stderr, "%s/%s: started for uid %u, pid %d\n", i->class,
            i->name, (unsigned)owner, (int)i->pid);
    i->next = l->list;
    l->list = i;
    return i;
}

void inst_on_notify(struct inst *i)
{
    char data[512], control[CMSG_SPACE(sizeof(struct ucred))];
    struct iovec iov = { data, sizeof data - 1 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
                        .msg_control = control,
                        .msg_controllen = sizeof control };
    ssize_t n;
    while ((n = recvmsg(i->notify_fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC))
           >= 0) {
        struct cmsghdr *h = CMSG_FIRSTHDR(&m);
        struct ucred cred = { 0 };
        if (h && h->cmsg_type == SCM_CREDENTIALS)
            memcpy(&cred, CMSG_DATA(h), sizeof cred);
        data[n] = '\0';
        /* Only the instance itself may say it is ready. */
        if (cred.pid == i->pid && i->state == INST_STARTING &&
            (!strncmp(data, "READY=1", 7) || strstr(data, "\nREADY=1"))) {
            i->state = INST_RUNNING;
            fprintf(stderr, "%s/%s: ready\n", i->class, i->name);
        }
        m.msg_controllen = sizeof control;
    }
}

/* "PROGRAM: serving WHAT": an NBD or iSCSI URI, "the file PATH" (FUSE),
 * or "/dev/ublkbN ...". */
static void note_export(struct inst *i, const char *line)
{
    const char *s = strstr(line, ": serving ");
    if (!s || i->nexports == INST_EXPORTS_MAX)
        return;
    s += strlen(": serving ");
    char *e = i->exports[i->nexports++];
    if (!strncmp(s, "the file ", 9))
        snprintf(e, sizeof i->exports[0], "%s", s + 9);
    else
        snprintf(e, sizeof i->exports[0], "%.*s", (int)strcspn(s, " "), s);
}

static void output_line(struct inst *i, char *line)
{
    fprintf(stderr, "%s/%s: %s\n", i->class, i->name, line);
    snprintf(i->last, sizeof i->last, "%s", line);
    note_export(i, line);
}

void inst_on_output(struct inst *i)
{
    ssize_t n;
    while ((n = read(i->out_fd, i->line + i->line_len,
                     sizeof i->line - 1 - i->line_len)) > 0) {
        i->line_len += (size_t)n;
        i->line[i->line_len] = '\0';
        char *start = i->line, *nl;
        while ((nl = strchr(start, '\n'))) {
            *nl = '\0';
            output_line(i, start);
            start = nl + 1;
        }
        i->line_len = strlen(start);
        memmove(i->line, start, i->line_len + 1);
        if (i->line_len == sizeof i->line - 1) {   /* a very long line */
            output_line(i, i->line);
            i->line_len = 0;
        }
    }
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        if (i->line_len)
            output_line(i, i->line);
        i->line_len = 0;
        close(i->out_fd);
        i->out_fd = -1;
    }
}

void inst_status_text(int status, char *out, size_t size)
{
    if (WIFEXITED(status))
        snprintf(out, size, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(out, size, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(out, size, "wait status %#x", status);
}

void inst_on_exit(struct inst *i, int status)
{
    char text[128];
    if (i->out_fd >= 0)
        inst_on_output(i);      /* its last words, while the pipe has them */
    if (i->notify_fd >= 0)
        close(i->notify_fd);
    i->notify_fd = -1;
    i->state = INST_EXITED;
    i->status = status;
    i->nexports = 0;
    inst_status_text(status, text, sizeof text);
    fprintf(stderr, "%s/%s: pid %d %s\n", i->class, i->name, (int)i->pid,
            text);
}

void inst_stop(struct inst *i)
{
    if (i->state == INST_EXITED || i->state == INST_STOPPING)
        return;
    i->state = INST_STOPPING;
    kill(i->pid, SIGTERM);
    set_deadline(i, i->stop_timeout);
}

void inst_kill(struct inst *i)
{
    if (i->state != INST_EXITED)
        kill(i->pid, SIGKILL);
}

void inst_forget(struct launcher *l, struct inst *i)
{
    for (struct inst **p = &l->list; *p; p = &(*p)->next)
        if (*p == i) {
            *p = i->next;
            break;
        }
    inst_free(i);
}

void inst_devices(const struct inst *i, char names[][64], int *n, int max)
{
    *n = 0;
    for (int e = 0; e < i->nexports; e++) {
        const char *x = i->exports[e];
        if (!strncmp(x, "/dev/", 5) && *n < max) {
            snprintf(names[(*n)++], 64, "%s", x + 5);
        } else if (x[0] == '/') {
            struct bdev_list loops;
            bdev_loops_of(x, &loops);
            for (int k = 0; k < loops.n && *n < max; k++)
                snprintf(names[(*n)++], 64, "%s", loops.name[k]);
        }
    }
}

const char *inst_state_name(const struct inst *i)
{
    static const char *names[] = { "starting", "running", "stopping",
                                   "exited" };
    return names[i->state];
}

static void command_line(const struct inst *i, struct sbuf *b)
{
    for (char **a = i->argv; *a; a++) {
        bool plain = **a && !strpbrk(*a, " \t'\"\\$`");
        sb_printf(b, plain ? "%s%s" : "%s'%s'", a == i->argv ? "" : " ", *a);
    }
}

void inst_record(const struct inst *i, struct sbuf *b)
{
    char text[256], devs[BDEV_MAX][64];
    int ndevs;
    struct passwd *pw = getpwuid(i->owner);
    proto_value(b, "class", i->class);
    proto_value(b, "name", i->name);
    sb_printf(b, "state %s\npid %d\nowner %s\nstarted %lld\n",
              inst_state_name(i), (int)i->pid,
              pw ? pw->pw_name : "?", (long long)i->started);
    if (i->state == INST_EXITED) {
        inst_status_text(i->status, text, sizeof text);
        proto_value(b, "status", text);
        proto_value(b, "last", i->last);
    } else {
        sb_printf(b, "uptime %lld\n", (long long)(time(NULL) - i->started));
    }
    sb_printf(b, "persistent %s\n", i->persistent ? "yes" : "no");
    struct sbuf cmd = { 0 };
    command_line(i, &cmd);
    proto_value(b, "command", cmd.p ? cmd.p : "");
    sb_free(&cmd);
    for (int e = 0; e < i->nexports; e++)
        proto_value(b, "export", i->exports[e]);
    inst_devices(i, devs, &ndevs, BDEV_MAX);
    for (int d = 0; d < ndevs; d++)
        sb_printf(b, "device /dev/%s\n", devs[d]);
    sb_add(b, "\n", 1);
}
