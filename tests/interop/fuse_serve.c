/*
 * fuse_serve.c - a test helper: export a fresh in-memory unit over FUSE.
 *
 *     fuse_serve PATH SIZE_MB BLOCK_LENGTH
 *
 * Mounts the disk as the file PATH, prints "ready" once it is there, and
 * serves until SIGTERM or SIGINT, then unmounts and exits 0. The device is
 * a plain parallel memory array (unmapped blocks read as zeros); requests
 * run on the FUSE threads, with no dispatcher in between.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spd/fuse.h"
#include "spd/spd.h"
#include "memunit.h"

static int usage(void)
{
    fprintf(stderr, "usage: fuse_serve PATH SIZE_MB BLOCK_LENGTH\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return usage();
    char *end;
    unsigned long long mb = strtoull(argv[2], &end, 10);
    if (*end || !mb)
        return usage();
    unsigned long bl = strtoul(argv[3], &end, 10);
    if (*end)
        return usage();

    /* Block the stop signals before any thread exists, so every thread
     * inherits the mask and sigwait() below is the one that takes them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    spd_params params = { SPD_PARAMS_INIT,
        .block_count = mb * 1024 * 1024 / (bl ? bl : 1),
        .block_length = (uint32_t)bl,
        .unmap_supported = true,
        .unmap_reads_zero = true,
    };
    if (spd_uuid_generate(params.uuid) < 0 || spd_params_check(&params) < 0) {
        fprintf(stderr, "fuse_serve: %s\n", spd_errmsg());
        return 1;
    }
    struct memunit *m = memunit_create_modes(&params, SPD_OPS_PARALLEL,
                                             MEMUNIT_FAST);
    if (!m) {
        fprintf(stderr, "fuse_serve: %s\n", spd_errmsg());
        return 1;
    }
    spd_fuse_export *e = spd_fuse_export_create();
    int r = e ? spd_fuse_export_add(e, m->unit, argv[1]) : -errno;
    if (!r)
        r = spd_fuse_export_start(e);
    if (r) {
        int err = -r;
        spd_fuse_export_destroy(e);
        fprintf(stderr, "fuse_serve: %s\n", spd_errmsg());
        memunit_destroy(m);
        return err == EPERM || err == EACCES || err == ENODEV ? 77 : 1;
    }
    printf("ready\n");
    fflush(stdout);

    int sig;
    sigwait(&stop, &sig);
    spd_fuse_export_destroy(e);
    memunit_destroy(m);
    return 0;
}
