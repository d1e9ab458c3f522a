/*
 * serve.c - exporting the unit until a signal says stop (see cli.h): the
 * export options and their checks, the exports themselves, the signals,
 * and readiness (pid file, sd_notify). Every export is set up before the
 * pid file appears and READY=1 is sent, so whoever waits for either finds
 * the disk ready.
 *
 * This is the one file of the device CLI that calls the export API.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/cli.h"
#include "spd/fuse.h"
#include "spd/iscsi.h"
#include "spd/nbd.h"
#include "spd/tcmu.h"
#include "spd/ublk.h"

/* ------------------------------------------------------------------ */
/* Options                                                             */
/* ------------------------------------------------------------------ */

/* ADDR:PORT, [V6]:PORT, ADDR, :PORT or iscsi://ADDR[:PORT][/]: the port,
 * when there is one, a number up to 65535. */
static bool iscsi_portal_check(const char *portal)
{
    if (cli_systemd_address(portal))
        return true;
    if (!strncmp(portal, "iscsi://", 8))
        portal += 8;
    const char *end = portal[0] == '[' ? strchr(portal, ']') : portal;
    if (!end || !*portal)
        return false;
    const char *colon = strchr(end, ':');
    if (!colon)
        return true;
    const char *port = colon + 1;
    size_t digits = strspn(port, "0123456789");
    if (!digits || digits > 5 || (port[digits] && strcmp(port + digits, "/")))
        return false;
    return atoi(port) <= 65535;
}

/* A pid file goes in a folder that exists: found now, not after the
 * exports are up. */
static bool folder_exists(const char *path)
{
    char copy[4096];
    struct stat st;
    snprintf(copy, sizeof copy, "%s", path);
    return !stat(dirname(copy), &st) && S_ISDIR(st.st_mode);
}

/* --max-memory and --max-connection-memory SIZE: 1M at least. */
static int memory_limit(struct cli_config *cfg, const char *name,
                        const char *arg)
{
    spd_server_options *o = &cfg->exports.server;
    uint64_t v;
    if (cli_parse_size(arg, &v) || v < 1024 * 1024)
        return cli_usage_error(cfg, "--%s %s: not a size of 1M or more "
                               "(K, M, G, T suffixes)", name, arg);
    if (!strcmp(name, "max-memory"))
        o->max_memory = v;
    else
        o->max_connection_memory = v;
    return 0;
}

/* --max-connections and --max-connections-per-peer N (1 to 65536),
 * --handshake-timeout and --idle-timeout SECONDS (1 to 1000000, as the
 * server takes them). */
static int server_limit(struct cli_config *cfg, const char *name,
                        const char *arg)
{
    spd_server_options *o = &cfg->exports.server;
    bool connections = !strncmp(name, "max-connections", 15);
    unsigned long max = connections ? 65536 : 1000000;
    char *end;
    errno = 0;
    unsigned long v = strtoul(arg, &end, 10);
    if (!*arg || *end || arg[0] == '-' || errno || !v || v > max)
        return cli_usage_error(cfg, "--%s %s: not a number from 1 to %lu",
                               name, arg, max);
    if (!strcmp(name, "max-connections-per-peer"))
        o->max_connections_per_peer = (unsigned)v;
    else if (connections)
        o->max_connections = (unsigned)v;
    else if (!strcmp(name, "handshake-timeout"))
        o->handshake_timeout = (unsigned)v;
    else
        o->idle_timeout = (unsigned)v;
    return 0;
}

/* --ublk[=ID], --queues N, --queue-depth N, --ublk-recovery. The kernel
 * is asked now whether it serves ublk at all, so that a missing driver
 * ends the program with one line and SPD_EXIT_USAGE. */
static int ublk_option(struct cli_config *cfg, const char *name,
                       const char *arg)
{
    struct cli_exports *e = &cfg->exports;
    unsigned long max = !strcmp(name, "queues") ? 64
                      : !strcmp(name, "queue-depth") ? SPD_UBLK_MAX_QUEUE_DEPTH
                      : 1048575;   /* the kernel's largest device number */
    unsigned long v = 0;
    if (arg) {
        char *end;
        errno = 0;
        v = strtoul(arg, &end, 10);
        if (!*arg || *end || arg[0] == '-' || errno || v > max ||
            (!v && strcmp(name, "ublk")))
            return cli_usage_error(cfg, "--%s %s: not a number from %d to "
                                   "%lu", name, arg, strcmp(name, "ublk") != 0,
                                   max);
    }
    if (!strcmp(name, "ublk-recovery")) {
        e->ublk_recovery = true;
    } else if (!strcmp(name, "queues")) {
        e->ublk_queues = (unsigned)v;
    } else if (!strcmp(name, "queue-depth")) {
        e->ublk_depth = (unsigned)v;
    } else {
        if (e->ublk)
            return cli_usage_error(cfg, "only one --ublk");
        if (spd_ublk_available())
            return cli_usage_error(cfg, "--ublk: %s", spd_errmsg());
        e->ublk = true;
        e->ublk_id = arg ? (int)v : -1;
    }
    return 0;
}

/* --tcmu NAME, --tcmu-loop[=NAME]: one of them. As for ublk, the kernel
 * is asked now whether it has TCMU (and tcm_loop). --tcmu-reservations
 * WHO: lio or spd. */
static int tcmu_option(struct cli_config *cfg, const char *name,
                       const char *arg)
{
    struct cli_exports *e = &cfg->exports;
    if (!strcmp(name, "tcmu-reservations")) {
        if (strcmp(arg, "lio") && strcmp(arg, "spd"))
            return cli_usage_error(cfg, "--tcmu-reservations %s: neither "
                                   "lio nor spd", arg);
        e->tcmu_reservations = arg;
        return 0;
    }
    if (e->tcmu)
        return cli_usage_error(cfg, "only one --tcmu or --tcmu-loop");
    if (arg && spd_tcmu_name_check(arg))
        return cli_usage_error(cfg, "--%s %s: %s", name, arg, spd_errmsg());
    e->tcmu_loop = !strcmp(name, "tcmu-loop");
    if (spd_tcmu_available(e->tcmu_loop))
        return cli_usage_error(cfg, "--%s: %s", name, spd_errmsg());
    e->tcmu = true;
    e->tcmu_name = arg;
    return 0;
}

/* --tls MODE, --tls-certificates DIR, --tls-psk FILE, --tls-verify-peer
 * (the files are read once the whole command line is known). */
static int tls_option(struct cli_config *cfg, const char *name,
                      const char *arg)
{
    static const char *const modes[] = {
        [SPD_NBD_TLS_OFF] = "off", [SPD_NBD_TLS_ON] = "on",
        [SPD_NBD_TLS_REQUIRE] = "require",
    };
    spd_nbd_tls *t = &cfg->exports.tls;
    if (!strcmp(name, "tls-certificates")) {
        t->certificates = arg;
    } else if (!strcmp(name, "tls-psk")) {
        t->psk_file = arg;
    } else if (!strcmp(name, "tls-verify-peer")) {
        t->verify_peer = true;
    } else {
        unsigned m = 0;
        while (m < 3 && strcmp(arg, modes[m]))
            m++;
        if (m == 3)
            return cli_usage_error(cfg, "--tls %s: not off, on or require",
                                   arg);
        t->mode = (spd_nbd_tls_mode)m;
    }
    return 0;
}

int cli_tls_finish(struct cli_config *cfg)
{
    spd_nbd_tls *t = &cfg->exports.tls;
    const struct cli_exports *e = &cfg->exports;
    bool creds = t->certificates || t->psk_file || t->verify_peer;
    if (t->mode == SPD_NBD_TLS_OFF && creds)
        return cli_usage_error(cfg, "TLS credentials given but --tls is off: "
                               "add --tls=on or --tls=require");
    if (t->mode != SPD_NBD_TLS_OFF && !e->nbd_count)
        return cli_usage_error(cfg, "--tls needs an NBD export (--nbd)");
    for (unsigned i = 0; i < e->nbd_count; i++)
        if (!strncmp(e->nbd_uris[i], "nbds", 4) &&
            t->mode != SPD_NBD_TLS_REQUIRE)
            return cli_usage_error(cfg, "--nbd %s: nbds addresses need "
                                   "--tls=require", e->nbd_uris[i]);
    if (t->mode == SPD_NBD_TLS_OFF)
        return 0;
    if (!t->certificates == !t->psk_file)
        return cli_usage_error(cfg, "--tls=%s needs --tls-certificates DIR "
                               "or --tls-psk FILE (one of the two)",
                               t->mode == SPD_NBD_TLS_ON ? "on" : "require");
    /* Load them once now: a bad file is refused before anything is served. */
    spd_nbd_server *probe = spd_nbd_server_create(NULL);
    int r = probe ? spd_nbd_server_set_tls(probe, t) : -errno;
    spd_nbd_server_destroy(probe);
    if (r)
        return cli_usage_error(cfg, "TLS: %s", spd_errmsg());
    return 0;
}

int cli_export_option(struct cli_config *cfg, const char *name,
                      const char *arg)
{
    if (!strncmp(name, "ublk", 4) || !strncmp(name, "queue", 5))
        return ublk_option(cfg, name, arg);
    if (!strncmp(name, "tcmu", 4))
        return tcmu_option(cfg, name, arg);
    struct cli_exports *e = &cfg->exports;
    if (!strcmp(name, "nbd")) {
        char export_name[4097];
        if (e->nbd_count == CLI_MAX_NBD)
            return cli_usage_error(cfg, "at most %d --nbd options",
                                   CLI_MAX_NBD);
        if (!cli_systemd_address(arg) &&
            spd_nbd_uri_export_name(arg, export_name, sizeof export_name))
            return cli_usage_error(cfg, "--nbd %s: %s", arg, spd_errmsg());
        e->nbd_uris[e->nbd_count++] = arg;
    } else if (!strcmp(name, "fuse")) {
        if (e->fuse_count == CLI_MAX_FUSE)
            return cli_usage_error(cfg, "at most %d --fuse options",
                                   CLI_MAX_FUSE);
        for (unsigned i = 0; i < e->fuse_count; i++)
            if (!strcmp(e->fuse_paths[i], arg))
                return cli_usage_error(cfg, "--fuse %s given twice", arg);
        e->fuse_paths[e->fuse_count++] = arg;
    } else if (!strcmp(name, "iscsi")) {
        if (e->iscsi)
            return cli_usage_error(cfg, "only one --iscsi");
        if (arg && !iscsi_portal_check(arg))
            return cli_usage_error(cfg, "--iscsi %s: not ADDR:PORT with a "
                                   "port from 0 to 65535", arg);
        e->iscsi = true;
        e->iscsi_portal = arg;
    } else if (!strcmp(name, "iscsi-target")) {
        if (spd_iscsi_name_check(arg))
            return cli_usage_error(cfg, "--iscsi-target %s: %s", arg,
                                   spd_errmsg());
        e->iscsi_target = arg;
    } else if (!strcmp(name, "chap-file")) {
        if (access(arg, R_OK))
            return cli_usage_error(cfg, "--chap-file %s: %s", arg,
                                   strerror(errno));
        e->chap_file = arg;
    } else if (!strncmp(name, "tls", 3)) {
        return tls_option(cfg, name, arg);
    } else if (!strcmp(name, "socket-mode")) {
        char *end;
        unsigned long mode = strtoul(arg, &end, 8);
        if (!*arg || *end || arg[0] == '-' || mode > 0777 || !mode)
            return cli_usage_error(cfg, "--socket-mode %s: not an octal mode "
                                   "from 1 to 777", arg);
        e->server.socket_mode = (unsigned)mode;
    } else if (!strcmp(name, "max-connections") ||
               !strcmp(name, "max-connections-per-peer") ||
               !strcmp(name, "handshake-timeout") ||
               !strcmp(name, "idle-timeout")) {
        return server_limit(cfg, name, arg);
    } else if (!strcmp(name, "max-memory") ||
               !strcmp(name, "max-connection-memory")) {
        return memory_limit(cfg, name, arg);
    } else if (!strcmp(name, "pid-file")) {
        if (!*arg || !folder_exists(arg))
            return cli_usage_error(cfg, "--pid-file %s: no such folder", arg);
        e->pid_file = arg;
    }
    return 0;
}

bool cli_exports_wanted(const struct cli_exports *e)
{
    return e->nbd_count || e->fuse_count || e->iscsi || e->ublk || e->tcmu;
}

/* ------------------------------------------------------------------ */
/* Signals                                                             */
/* ------------------------------------------------------------------ */

/* Every signal whose default action ends the process and that is not a
 * fault of the program itself (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT,
 * SIGTRAP and SIGSYS keep their default), plus SIGHUP. */
static void stop_signals(sigset_t *set)
{
    static const int signals[] = {
        SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM,
        SIGVTALRM, SIGPROF, SIGXCPU, SIGXFSZ, SIGIO, SIGPWR, SIGSTKFLT,
    };
    sigemptyset(set);
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
        sigaddset(set, signals[i]);
    for (int s = SIGRTMIN; s <= SIGRTMAX; s++)
        sigaddset(set, s);
}

void cli_block_signals(void)
{
    sigset_t set;
    stop_signals(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    /* A client vanishing must not kill the server. */
    signal(SIGPIPE, SIG_IGN);
}

/* Log rotation: the debug log's file descriptor now points to a new file
 * at the same path, under the same FILE, so no thread ever sees it
 * closed. */
static void debug_log_reopen(const struct cli_config *cfg, FILE *file)
{
    if (!file)
        return;
    int fd = open(cfg->debug_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
                  0666);
    fflush(file);
    if (fd < 0 || dup2(fd, fileno(file)) < 0)
        fprintf(stderr, "%s: SIGHUP: reopening --debug-log %s: %s\n",
                cfg->dev->name, cfg->debug_log, strerror(errno));
    if (fd >= 0)
        close(fd);
}

/* Failover: --alua-file read again and its states applied to the unit,
 * which tells the initiators; states (CLI_ALUA_MAX bytes) is the list in
 * force, said on stderr whether it changed or not. */
static void alua_reload(spd_unit *unit, const struct cli_config *cfg,
                        char *states)
{
    char text[CLI_ALUA_MAX], why[CLI_ALUA_MAX];
    const char *program = cfg->dev->name;
    if (!cfg->alua_file)
        return;
    const char *failed = cli_alua_file_read(cfg->alua_file, text, why) ? why
                       : spd_unit_set_alua(unit, text) ? spd_errmsg()
                       : NULL;
    if (failed) {
        fprintf(stderr, "%s: SIGHUP: --alua-file %s: %s; the states stay "
                "%s\n", program, cfg->alua_file, failed, states);
        return;
    }
    memcpy(states, text, sizeof text);
    fprintf(stderr, "%s: SIGHUP: ALUA states now %s\n", program, states);
}

/* Wait for a signal that ends the program; SIGHUP reopens the log and
 * reads the ALUA states again. */
static int wait_for_stop(spd_unit *unit, const struct cli_config *cfg,
                         FILE *debug_file)
{
    char states[CLI_ALUA_MAX];
    sigset_t set;
    int sig = 0;
    snprintf(states, sizeof states, "%s", cfg->alua ? cfg->alua : "");
    stop_signals(&set);
    for (;;) {
        if (sigwait(&set, &sig))
            continue;
        if (sig != SIGHUP)
            return sig;
        debug_log_reopen(cfg, debug_file);
        alua_reload(unit, cfg, states);
    }
}

/* ------------------------------------------------------------------ */
/* Readiness                                                           */
/* ------------------------------------------------------------------ */

/* Written whole to a new file of its own beside the pid file (O_EXCL,
 * O_NOFOLLOW: never through someone's link), then renamed over it: a
 * reader never sees half a number. */
static int pid_file_write(const char *path, const char *program)
{
    char tmp[4096], text[32];
    int n = snprintf(text, sizeof text, "%d\n", (int)getpid());
    snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  0644);
    bool ok = fd >= 0 && write(fd, text, (size_t)n) == n;
    if (fd >= 0 && close(fd))
        ok = false;
    if (ok && !rename(tmp, path))
        return 0;
    fprintf(stderr, "%s: --pid-file %s: %s\n", program, path, strerror(errno));
    if (fd >= 0)
        unlink(tmp);
    return -1;
}

/* sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET, a path
 * or, starting with '@', a name in the abstract namespace. */
static void notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    size_t len = path ? strlen(path) : 0;
    if (!len || (path[0] != '/' && path[0] != '@') ||
        len >= sizeof addr.sun_path)
        return;
    memcpy(addr.sun_path, path, len);
    if (path[0] == '@')
        addr.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&addr,
           (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
    close(fd);
}

/* ------------------------------------------------------------------ */
/* Exports                                                             */
/* ------------------------------------------------------------------ */

/* How many listeners the server has so far. */
static unsigned nbd_listeners(const spd_nbd_server *server)
{
    char uri[8];
    unsigned n = 0;
    while (spd_nbd_server_listener_uri(server, n, uri, sizeof uri) !=
           -ENOENT)
        n++;
    return n;
}

/* Say where a client finds the export name on listener i: the listener's
 * URI with the name in its path. */
static void nbd_print(const spd_nbd_server *server, unsigned i,
                      const char *name, const char *program)
{
    char uri[4200];
    if (spd_nbd_server_listener_uri(server, i, uri, sizeof uri))
        return;
    char *query = strchr(uri, '?');            /* nbd+unix:///?socket=PATH */
    if (query)
        fprintf(stderr, "%s: serving %.*s%s%s\n", program,
                (int)(query - uri), uri, name, query);
    else
        fprintf(stderr, "%s: serving %s/%s\n", program, uri, name);
}

/* The export name an --nbd address gives ("" for systemd sockets). */
static void nbd_export_name(const char *address, char *name, size_t size)
{
    name[0] = '\0';
    if (!cli_systemd_address(address))
        spd_nbd_uri_export_name(address, name, size);
}

/* NBD: one server, the unit exported under each URI's name. */
static spd_nbd_server *nbd_start(spd_unit *unit, const struct cli_config *cfg)
{
    const struct cli_exports *e = &cfg->exports;
    const char *program = cfg->dev->name;
    unsigned first[CLI_MAX_NBD + 1] = { 0 };
    spd_nbd_server *server = spd_nbd_server_create(&e->server);
    if (!server || spd_nbd_server_set_tls(server, &e->tls))
        goto fail;
    for (unsigned i = 0; i < e->nbd_count; i++) {
        char name[4097];
        nbd_export_name(e->nbd_uris[i], name, sizeof name);
        int r = spd_nbd_server_add(server, unit, name, program);
        if ((r && r != -EEXIST) ||
            spd_nbd_server_listen(server, e->nbd_uris[i]))
            goto fail;
        first[i + 1] = nbd_listeners(server);
    }
    if (spd_nbd_server_start(server))
        goto fail;
    /* The listeners each URI opened (a host name may give several). */
    for (unsigned i = 0; i < e->nbd_count; i++) {
        char name[4097];
        nbd_export_name(e->nbd_uris[i], name, sizeof name);
        for (unsigned l = first[i]; l < first[i + 1]; l++)
            nbd_print(server, l, name, program);
    }
    return server;
fail:
    fprintf(stderr, "%s: NBD: %s\n", program, spd_errmsg());
    spd_nbd_server_destroy(server);
    return NULL;
}

/* iSCSI: the unit as LUN 0 of one target. Without --iscsi-target the name
 * is made from the program and the unit's UUID, so a rawdisk keeps it. */
static spd_iscsi_target *iscsi_start(spd_unit *unit,
                                     const struct cli_config *cfg)
{
    const struct cli_exports *e = &cfg->exports;
    const char *program = cfg->dev->name;
    char iqn[224], uuid[37], uri[300];
    spd_uuid_format(spd_unit_params(unit)->uuid, uuid);
    if (e->iscsi_target)
        snprintf(iqn, sizeof iqn, "%s", e->iscsi_target);
    else
        snprintf(iqn, sizeof iqn, "iqn.2026-11.org.spd:%s.%.8s",
                 strncmp(program, "spd-", 4) ? program : program + 4, uuid);
    for (char *c = iqn; *c; c++)        /* iSCSI names are lower case */
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c + 32);

    spd_iscsi_target *tgt = spd_iscsi_target_create(&e->server);
    if (!tgt || spd_iscsi_target_add(tgt, unit, iqn, 0) ||
        (e->chap_file && spd_iscsi_target_set_chap(tgt, NULL, e->chap_file)) ||
        spd_iscsi_target_listen(tgt, e->iscsi_portal) ||
        spd_iscsi_target_start(tgt)) {
        fprintf(stderr, "%s: iSCSI: %s\n", program, spd_errmsg());
        spd_iscsi_target_destroy(tgt);
        return NULL;
    }
    for (unsigned i = 0; !spd_iscsi_target_listener_uri(tgt, i, uri,
                                                         sizeof uri); i++)
        fprintf(stderr, "%s: serving %s/%s/0%s\n", program, uri, iqn,
                e->chap_file ? " (CHAP required)" : "");
    return tgt;
}

/* FUSE: one export, the unit as the file at each path. */
static spd_fuse_export *fuse_start(spd_unit *unit,
                                   const struct cli_config *cfg)
{
    const struct cli_exports *e = &cfg->exports;
    const char *program = cfg->dev->name;
    spd_fuse_export *fuse = spd_fuse_export_create();
    int r = fuse ? 0 : -errno;
    for (unsigned i = 0; !r && i < e->fuse_count; i++)
        r = spd_fuse_export_add(fuse, unit, e->fuse_paths[i]);
    if (r || spd_fuse_export_start(fuse)) {
        fprintf(stderr, "%s: FUSE: %s\n", program, spd_errmsg());
        spd_fuse_export_destroy(fuse);
        return NULL;
    }
    for (unsigned i = 0; i < e->fuse_count; i++)
        fprintf(stderr, "%s: serving the file %s\n", program,
                e->fuse_paths[i]);
    return fuse;
}

/* ublk: the unit as /dev/ublkbN. */
static spd_ublk_export *ublk_start(spd_unit *unit,
                                   const struct cli_config *cfg)
{
    const struct cli_exports *e = &cfg->exports;
    const char *program = cfg->dev->name;
    spd_ublk_options o = { SPD_UBLK_OPTIONS_INIT, .queues = e->ublk_queues,
                           .queue_depth = e->ublk_depth,
                           .recovery = e->ublk_recovery };
    o.id = e->ublk_id;
    spd_ublk_export *ublk = spd_ublk_export_create(&o);
    if (!ublk || spd_ublk_export_add(ublk, unit) ||
        spd_ublk_export_start(ublk)) {
        fprintf(stderr, "%s: ublk: %s\n", program, spd_errmsg());
        spd_ublk_export_destroy(ublk);
        return NULL;
    }
    fprintf(stderr, "%s: serving /dev/ublkb%d%s%s\n", program,
            spd_ublk_export_id(ublk),
            e->ublk_recovery ? " (it outlives this process)" : "",
            spd_ublk_export_user_copy(ublk)
                ? ", data copied straight to and from the device's memory"
                : "");
    return ublk;
}

/* TCMU: the unit as backstore user_0/NAME, with --tcmu-loop also a local
 * SCSI disk. Without a name it is made from the program and the unit's
 * UUID, as the iSCSI target's is. */
static spd_tcmu_export *tcmu_start(spd_unit *unit,
                                   const struct cli_config *cfg)
{
    const struct cli_exports *e = &cfg->exports;
    const char *program = cfg->dev->name;
    char name[SPD_TCMU_NAME_MAX + 1], uuid[37], disk[32];
    spd_uuid_format(spd_unit_params(unit)->uuid, uuid);
    if (e->tcmu_name)
        snprintf(name, sizeof name, "%s", e->tcmu_name);
    else
        snprintf(name, sizeof name, "%.40s-%.8s",
                 strncmp(program, "spd-", 4) ? program : program + 4, uuid);
    spd_tcmu_options o = { SPD_TCMU_OPTIONS_INIT, .name = name,
                           .loop = e->tcmu_loop };
    if (e->tcmu_reservations && !strcmp(e->tcmu_reservations, "spd"))
        o.reservations = SPD_TCMU_RESERVATIONS_SPD;
    spd_tcmu_export *tcmu = spd_tcmu_export_create(&o);
    if (!tcmu || spd_tcmu_export_add(tcmu, unit) ||
        spd_tcmu_export_start(tcmu)) {
        fprintf(stderr, "%s: TCMU: %s\n", program, spd_errmsg());
        spd_tcmu_export_destroy(tcmu);
        return NULL;
    }
    if (!e->tcmu_loop)
        fprintf(stderr, "%s: serving the TCMU backstore %s\n", program,
                spd_tcmu_export_backstore(tcmu));
    else if (!spd_tcmu_export_disk(tcmu, disk, sizeof disk))
        fprintf(stderr, "%s: serving /dev/%s (tcm_loop, backstore %s)\n",
                program, disk, spd_tcmu_export_backstore(tcmu));
    else
        fprintf(stderr, "%s: serving the TCMU backstore %s through tcm_loop "
                "(no disk seen yet)\n", program,
                spd_tcmu_export_backstore(tcmu));
    return tcmu;
}

int cli_serve(spd_unit *unit, const struct cli_config *cfg, FILE *debug_file,
              bool *served)
{
    const struct cli_exports *e = &cfg->exports;
    const char *program = cfg->dev->name;
    spd_nbd_server *nbd = NULL;
    spd_iscsi_target *iscsi = NULL;
    spd_fuse_export *fuse = NULL;
    spd_ublk_export *ublk = NULL;
    spd_tcmu_export *tcmu = NULL;
    bool pid_written = false;
    int status = SPD_EXIT_FAILURE;

    if (e->nbd_count && !(nbd = nbd_start(unit, cfg)))
        goto out;
    if (e->iscsi && !(iscsi = iscsi_start(unit, cfg)))
        goto out;
    if (e->fuse_count && !(fuse = fuse_start(unit, cfg)))
        goto out;
    if (e->ublk && !(ublk = ublk_start(unit, cfg)))
        goto out;
    if (e->tcmu && !(tcmu = tcmu_start(unit, cfg)))
        goto out;
    if (e->pid_file && pid_file_write(e->pid_file, program))
        goto out;
    pid_written = e->pid_file;
    *served = true;
    notify("READY=1");

    int sig = wait_for_stop(unit, cfg, debug_file);
    fprintf(stderr, "%s: %s: stopping\n", program, strsignal(sig));
    notify("STOPPING=1");
    status = SPD_EXIT_OK;
out:
    /* Clients first (their requests finish), then make the data stable. */
    spd_nbd_server_destroy(nbd);
    spd_iscsi_target_destroy(iscsi);
    spd_fuse_export_destroy(fuse);
    spd_ublk_export_destroy(ublk);
    spd_tcmu_export_destroy(tcmu);
    spd_request flush = { SPD_REQUEST_INIT, .op = SPD_OP_FLUSH };
    spd_status st = spd_unit_run(unit, &flush);
    if (!spd_status_good(&st)) {
        fprintf(stderr, "%s: the final flush failed\n", program);
        status = SPD_EXIT_FAILURE;
    }
    if (pid_written)
        unlink(e->pid_file);
    return status;
}
