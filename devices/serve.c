/*
 * serve.c - exporting a device's unit until a signal says stop (see
 * serve.h). Every export is set up before the pid file appears, so a
 * script that waits for the pid file finds the disk ready.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "serve.h"
#include "spd/fuse.h"
#include "spd/iscsi.h"
#include "spd/nbd.h"

void serve_block_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    /* A client vanishing must not kill the server. */
    signal(SIGPIPE, SIG_IGN);
}

int serve_option(struct serve_options *o, const char *name, const char *arg,
                 const char *program)
{
    if (!strcmp(name, "nbd")) {
        char export_name[4097];
        if (o->nbd_count == SERVE_MAX_NBD) {
            fprintf(stderr, "%s: at most %d --nbd options\n", program,
                    SERVE_MAX_NBD);
            return -1;
        }
        if (spd_nbd_uri_export_name(arg, export_name, sizeof export_name)) {
            fprintf(stderr, "%s: --nbd %s: %s\n", program, arg, spd_errmsg());
            return -1;
        }
        o->nbd_uris[o->nbd_count++] = arg;
        return 1;
    }
    if (!strcmp(name, "fuse")) {
        o->fuse_path = arg;
        return 1;
    }
    if (!strcmp(name, "iscsi")) {
        o->iscsi = true;
        o->iscsi_portal = arg;
        return 1;
    }
    if (!strcmp(name, "iscsi-target")) {
        o->iscsi_target = arg;
        return 1;
    }
    if (!strcmp(name, "chap-file")) {
        o->chap_file = arg;
        return 1;
    }
    if (!strcmp(name, "pid-file")) {
        o->pid_file = arg;
        return 1;
    }
    return 0;
}

bool serve_wanted(const struct serve_options *o)
{
    return o->nbd_count || o->fuse_path || o->iscsi;
}

/* NBD: one server, the unit exported under each URI's name. */
static spd_nbd_server *start_nbd(spd_unit *unit, const struct serve_options *o,
                                 const char *program)
{
    spd_nbd_server *server = spd_nbd_server_create(NULL);
    if (!server)
        goto fail;
    for (unsigned i = 0; i < o->nbd_count; i++) {
        char name[4097];
        spd_nbd_uri_export_name(o->nbd_uris[i], name, sizeof name);
        int r = spd_nbd_server_add(server, unit, name, program);
        if ((r && r != -EEXIST) || spd_nbd_server_listen(server, o->nbd_uris[i]))
            goto fail;
    }
    if (spd_nbd_server_start(server))
        goto fail;
    for (unsigned i = 0; i < o->nbd_count; i++)
        fprintf(stderr, "%s: serving %s\n", program, o->nbd_uris[i]);
    return server;
fail:
    fprintf(stderr, "%s: NBD: %s\n", program, spd_errmsg());
    spd_nbd_server_destroy(server);
    return NULL;
}

/* iSCSI: the unit as LUN 0 of one target. Without --iscsi-target the name
 * is made from the program and the unit's UUID, so a rawdisk keeps it. */
static spd_iscsi_target *start_iscsi(spd_unit *unit,
                                     const struct serve_options *o,
                                     const char *program)
{
    char iqn[224], uuid[37];
    spd_uuid_format(spd_unit_params(unit)->uuid, uuid);
    if (o->iscsi_target)
        snprintf(iqn, sizeof iqn, "%s", o->iscsi_target);
    else
        snprintf(iqn, sizeof iqn, "iqn.2026-11.org.spd:%s.%.8s",
                 strncmp(program, "spd-", 4) ? program : program + 4, uuid);

    spd_iscsi_target *tgt = spd_iscsi_target_create(NULL);
    if (!tgt || spd_iscsi_target_add(tgt, unit, iqn, 0) ||
        (o->chap_file && spd_iscsi_target_set_chap(tgt, NULL, o->chap_file)) ||
        spd_iscsi_target_listen(tgt, o->iscsi_portal) ||
        spd_iscsi_target_start(tgt)) {
        fprintf(stderr, "%s: iSCSI: %s\n", program, spd_errmsg());
        spd_iscsi_target_destroy(tgt);
        return NULL;
    }
    fprintf(stderr, "%s: serving iscsi://%s/%s/0%s\n", program,
            o->iscsi_portal ? o->iscsi_portal : "127.0.0.1:3260", iqn,
            o->chap_file ? " (CHAP required)" : "");
    return tgt;
}

static int write_pid_file(const char *path, const char *program)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    /* Written whole, then renamed: a reader never sees half a number. */
    if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) ||
        rename(tmp, path)) {
        fprintf(stderr, "%s: --pid-file %s: %s\n", program, path,
                strerror(errno));
        return -1;
    }
    return 0;
}

static int wait_for_stop(void)
{
    sigset_t set;
    int sig = 0;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    while (sigwait(&set, &sig))
        ;
    return sig;
}

int serve(spd_unit *unit, const struct serve_options *o, const char *program)
{
    spd_nbd_server *nbd = NULL;
    spd_iscsi_target *iscsi = NULL;
    spd_fuse_export *fuse = NULL;
    int status = 1;

    if (o->nbd_count && !(nbd = start_nbd(unit, o, program)))
        goto out;
    if (o->iscsi && !(iscsi = start_iscsi(unit, o, program)))
        goto out;
    if (o->fuse_path) {
        if (!(fuse = spd_fuse_export_create()) ||
            spd_fuse_export_add(fuse, unit, o->fuse_path) ||
            spd_fuse_export_start(fuse)) {
            fprintf(stderr, "%s: FUSE: %s\n", program, spd_errmsg());
            goto out;
        }
        fprintf(stderr, "%s: serving the file %s\n", program, o->fuse_path);
    }
    if (o->pid_file && write_pid_file(o->pid_file, program))
        goto out;

    int sig = wait_for_stop();
    fprintf(stderr, "%s: %s: stopping\n", program, strsignal(sig));
    status = 0;
out:
    /* Clients first (their requests finish), then make the data stable. */
    spd_nbd_server_destroy(nbd);
    spd_iscsi_target_destroy(iscsi);
    spd_fuse_export_destroy(fuse);
    spd_request flush = { SPD_REQUEST_INIT, .op = SPD_OP_FLUSH };
    spd_status st = spd_unit_run(unit, &flush);
    if (!spd_status_good(&st)) {
        fprintf(stderr, "%s: the final flush failed\n", program);
        status = 1;
    }
    if (o->pid_file)
        unlink(o->pid_file);
    return status;
}
