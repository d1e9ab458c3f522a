/*
 * iscsi_serve.c - a test helper: export fresh in-memory units as an
 * iSCSI target.
 *
 *     iscsi_serve ADDRESS IQN SIZE_MB BLOCK_LENGTH [--write-protect]
 *                 [--chap FILE] [--luns N] [--threads N] [--no-unmap]
 *
 * ADDRESS is what spd_iscsi_target_listen() takes; port 0 (such as
 * 127.0.0.1:0) picks a free port. Prints "ready iscsi://HOST:PORT" (the
 * real port) once listening and serves until SIGTERM or SIGINT, then
 * stops the target (commands in the units finish) and exits 0.
 * --luns N exports N units as LUNs 0..N-1 (default 1); --threads N starts
 * N dispatcher threads per unit, so commands complete on other threads
 * than the connection's (default 0: they run inline, as a fast device
 * would). --no-unmap leaves thin provisioning (UNMAP, LBPME) out. The
 * device is a plain parallel memory array: no delay, unmapped
 * blocks read as zeros.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spd/iscsi.h"
#include "spd/spd.h"
#include "memunit.h"

#define MAX_LUNS 16

static int usage(void)
{
    fprintf(stderr, "usage: iscsi_serve ADDR:PORT IQN SIZE_MB BLOCK_LENGTH "
            "[--write-protect] [--chap FILE] [--luns N] [--threads N] "
            "[--no-unmap] [--physical-block-length N]\n");
    return 2;
}

static bool parse_uint(const char *s, unsigned long long max,
                       unsigned long long *v)
{
    char *end;
    errno = 0;
    *v = strtoull(s, &end, 10);
    return *s && !*end && !errno && *v <= max;
}

int main(int argc, char **argv)
{
    if (argc < 5)
        return usage();
    const char *addr = argv[1], *iqn = argv[2], *chap = NULL;
    unsigned long long mb, bl, luns = 1, threads = 0, pbl = 0;
    bool write_protect = false, unmap = true;
    if (!parse_uint(argv[3], 1 << 20, &mb) || !mb ||
        !parse_uint(argv[4], 65536, &bl))
        return usage();
    for (int i = 5; i < argc; i++) {
        if (!strcmp(argv[i], "--write-protect"))
            write_protect = true;
        else if (!strcmp(argv[i], "--no-unmap"))
            unmap = false;
        else if (!strcmp(argv[i], "--chap") && i + 1 < argc)
            chap = argv[++i];
        else if (!strcmp(argv[i], "--luns") && i + 1 < argc &&
                 parse_uint(argv[i + 1], MAX_LUNS, &luns) && luns)
            i++;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc &&
                 parse_uint(argv[i + 1], 64, &threads))
            i++;
        else if (!strcmp(argv[i], "--physical-block-length") && i + 1 < argc &&
                 parse_uint(argv[i + 1], 1 << 24, &pbl))
            i++;
        else
            return usage();
    }

    /* Block the stop signals before any thread exists, so every thread
     * inherits the mask and sigwait() below is the one that takes them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct memunit *mems[MAX_LUNS] = { 0 };
    spd_iscsi_target *tgt = spd_iscsi_target_create(NULL);
    int status = 1;
    if (!tgt)
        goto fail;
    for (unsigned i = 0; i < luns; i++) {
        spd_params p = { SPD_PARAMS_INIT,
            .block_count = (mb << 20) / bl,
            .block_length = (uint32_t)bl,
            .write_protected = write_protect,
            .cache_supported = true,
            .unmap_supported = unmap,
            .unmap_reads_zero = unmap,
            .physical_block_length = (uint32_t)pbl,
        };
        if (spd_uuid_generate(p.uuid) ||
            !(mems[i] = memunit_create_modes(&p, SPD_OPS_PARALLEL,
                                             MEMUNIT_FAST)) ||
            (threads && spd_unit_start(mems[i]->unit, (unsigned)threads)) ||
            spd_iscsi_target_add(tgt, mems[i]->unit, iqn, i))
            goto fail;
    }
    if ((chap && spd_iscsi_target_set_chap(tgt, NULL, chap)) ||
        spd_iscsi_target_listen(tgt, addr) || spd_iscsi_target_start(tgt))
        goto fail;
    char uri[128];
    if (spd_iscsi_target_listener_uri(tgt, 0, uri, sizeof uri))
        goto fail;
    printf("ready %s\n", uri);
    fflush(stdout);

    int sig;
    sigwait(&stop, &sig);
    status = 0;
    goto out;
fail:
    fprintf(stderr, "iscsi_serve: %s\n", spd_errmsg());
out:
    spd_iscsi_target_destroy(tgt);
    for (unsigned i = 0; i < luns; i++)
        if (mems[i])
            memunit_destroy(mems[i]);
    return status;
}
