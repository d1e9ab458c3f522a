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
    if (!strcmp(name, "pid-file")) {
        o->pid_file = arg;
        return 1;
    }
    return 0;
}

bool serve_wanted(const struct serve_options *o)
{
    return o->nbd_count || o->fuse_path;
}

void serve_usage(FILE *out)
{
    fputs("Exports (the device runs until SIGINT or SIGTERM):\n"
          "  --nbd URI            serve NBD at URI, more than once allowed:\n"
          "                       nbd://127.0.0.1:10809/NAME (TCP; 0.0.0.0 or\n"
          "                       [::] for all interfaces),\n"
          "                       nbd+unix:///NAME?socket=PATH (Unix socket)\n"
          "  --fuse PATH          show the disk as the regular file PATH on a\n"
          "                       FUSE mount (losetup turns it into /dev/loopN)\n"
          "  --pid-file FILE      write the process id to FILE once serving\n",
          out);
}

/* NBD: one server, the unit exported under each URI's name. */
static spd_nbd_server *start_nbd(spd_unit *unit, const struct serve_options *o,
                                 const char *program)
{
    spd_nbd_server *server = spd_nbd_server_create();
    if (!server)
        goto fail;
    for (unsigned i = 0; i < o->nbd_count; i++) {
        char name[4097];
        spd_nbd_uri_export_name(o->nbd_uris[i], name, sizeof name);
        int r = spd_nbd_server_add(server, name, unit, program);
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
    spd_fuse_export *fuse = NULL;
    int status = 1;

    if (o->nbd_count && !(nbd = start_nbd(unit, o, program)))
        goto out;
    if (o->fuse_path) {
        if (!(fuse = spd_fuse_export_start(unit, o->fuse_path))) {
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
    if (fuse)
        spd_fuse_export_stop(fuse);
    spd_request flush = { .op = SPD_OP_FLUSH };
    spd_status st = spd_unit_run(unit, &flush);
    if (!spd_status_good(&st)) {
        fprintf(stderr, "%s: the final flush failed\n", program);
        status = 1;
    }
    if (o->pid_file)
        unlink(o->pid_file);
    return status;
}
