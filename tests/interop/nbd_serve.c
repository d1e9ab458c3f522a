/*
 * nbd_serve.c - a test helper: export a fresh in-memory unit over NBD
 * with the server options given, to test the network server core.
 *
 *     nbd_serve ADDRESS SIZE_MB [--max-connections N] [--idle-timeout S]
 *               [--handshake-timeout S] [--threads N]
 *
 * ADDRESS is what spd_nbd_server_listen() takes (nbd://127.0.0.1:0,
 * nbd+unix:///?socket=PATH, systemd, systemd:NAME). Prints "listening
 * URI" for each listener (the real port after port 0), then "ready", and
 * serves until SIGTERM or SIGINT; then stops the server and prints
 * "stopped" before exiting 0. --threads N starts N dispatcher threads
 * (default 2), so requests complete on other threads than the
 * connection's.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memunit.h"
#include "spd/nbd.h"
#include "spd/spd.h"

static int usage(void)
{
    fprintf(stderr, "usage: nbd_serve ADDRESS SIZE_MB [--max-connections N] "
            "[--idle-timeout S] [--handshake-timeout S] [--threads N]\n");
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
    if (argc < 3)
        return usage();
    spd_server_options opt = { SPD_SERVER_OPTIONS_INIT };
    unsigned long long mb, v, threads = 2;
    if (!parse_uint(argv[2], 1 << 16, &mb) || !mb)
        return usage();
    for (int i = 3; i < argc; i++) {
        if (i + 1 >= argc || !parse_uint(argv[i + 1], 1000000, &v))
            return usage();
        if (!strcmp(argv[i], "--max-connections"))
            opt.max_connections = (unsigned)v;
        else if (!strcmp(argv[i], "--idle-timeout"))
            opt.idle_timeout = (unsigned)v;
        else if (!strcmp(argv[i], "--handshake-timeout"))
            opt.handshake_timeout = (unsigned)v;
        else if (!strcmp(argv[i], "--threads") && v <= 64)
            threads = v;
        else
            return usage();
        i++;
    }

    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    spd_params p = { SPD_PARAMS_INIT,
        .block_count = ((uint64_t)mb << 20) / 512,
        .block_length = 512,
        .cache_supported = true,
        .unmap_supported = true,
        .unmap_reads_zero = true,
    };
    spd_nbd_server *server = NULL;
    struct memunit *m = NULL;
    int status = 1;
    if (spd_uuid_generate(p.uuid) ||
        !(m = memunit_create_modes(&p, SPD_OPS_PARALLEL, MEMUNIT_FAST)) ||
        (threads && spd_unit_start(m->unit, (unsigned)threads)) ||
        !(server = spd_nbd_server_create(&opt)) ||
        spd_nbd_server_add(server, m->unit, "", "nbd_serve") ||
        spd_nbd_server_listen(server, argv[1]) ||
        spd_nbd_server_start(server))
        goto fail;
    char uri[256];
    for (unsigned i = 0; !spd_nbd_server_listener_uri(server, i, uri,
                                                      sizeof uri); i++)
        printf("listening %s\n", uri);
    printf("ready\n");
    fflush(stdout);

    int sig;
    sigwait(&stop, &sig);
    spd_nbd_server_stop(server);
    printf("stopped\n");
    fflush(stdout);
    status = 0;
    goto out;
fail:
    fprintf(stderr, "nbd_serve: %s\n", spd_errmsg());
out:
    spd_nbd_server_destroy(server);
    if (m)
        memunit_destroy(m);
    return status;
}
