/*
 * cli.h - the parts of spd_main() (include/spd/cli.h): the command line
 * (options.c), the exports, signals and readiness (serve.c), the
 * self-check (selfcheck.c), and the flow that joins them (main.c).
 *
 * spd_main() reads: parse and validate every option -> open the device's
 * storage -> create the unit -> run --check or serve -> clean up.
 */
#ifndef SPD_CLI_INT_H
#define SPD_CLI_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <string.h>

#include "spd/cli.h"
#include "spd/nbd.h"
#include "spd/server.h"

#define CLI_CONTINUE  (-1)   /* cli_parse(): go on */
#define CLI_MAX_NBD   16
#define CLI_MAX_FUSE  16
/* Room for an --alua list: every group as "65535:unavailable,". */
#define CLI_ALUA_MAX  (SPD_PORT_GROUPS_MAX * 18 + 1)

/* "systemd" or "systemd:NAME": the sockets systemd passed (LISTEN_FDS). */
static inline bool cli_systemd_address(const char *address)
{
    return !strncmp(address, "systemd", 7) &&
           (!address[7] || address[7] == ':');
}

/* --nbd, --iscsi, --fuse, --pid-file: what serve.c exports. */
struct cli_exports {
    const char *nbd_uris[CLI_MAX_NBD];
    unsigned nbd_count;
    const char *fuse_paths[CLI_MAX_FUSE];
    unsigned fuse_count;
    bool iscsi;                       /* --iscsi given */
    const char *iscsi_portal;         /* its ADDR:PORT, or NULL: 127.0.0.1:3260 */
    const char *iscsi_target;         /* --iscsi-target IQN, or NULL: made up */
    const char *chap_file;            /* --chap-file FILE */
    const char *pid_file;
    bool ublk;                        /* --ublk given */
    int ublk_id;                      /* its ID, or -1: the kernel's choice */
    unsigned ublk_queues;             /* --queues, 0: the default */
    unsigned ublk_depth;              /* --queue-depth, 0: the default */
    bool ublk_recovery;               /* --ublk-recovery */
    bool tcmu;                        /* --tcmu or --tcmu-loop given */
    bool tcmu_loop;                   /* --tcmu-loop */
    const char *tcmu_name;            /* its NAME, or NULL: made up */
    const char *tcmu_reservations;    /* --tcmu-reservations lio|spd */
    /* --socket-mode, --max-connections, --handshake-timeout,
     * --idle-timeout: for both network exports (0: the defaults). */
    spd_server_options server;
    /* --tls, --tls-certificates, --tls-psk, --tls-verify-peer. */
    spd_nbd_tls tls;
};

/* The command line. */
struct cli_config {
    const spd_device *dev;
    spd_params params;           /* block_count 0 until resolved */
    uint64_t size;               /* --size in bytes; 0: not given */
    unsigned given;              /* SPD_GIVEN_* */
    unsigned debug_mask;
    const char *debug_log;       /* --debug-log FILE, or NULL */
    int threads;                 /* -1: the device's default */
    bool check;                  /* --check */
    unsigned port_group;         /* --port-group, 0: not given */
    const char *alua;            /* --alua, or the content of --alua-file,
                                    or NULL */
    const char *alua_file;       /* --alua-file PATH, or NULL */
    char alua_text[CLI_ALUA_MAX];  /* --alua-file's content */
    struct cli_exports exports;
};

/* options.c: parse and validate the whole command line into cfg. Returns
 * CLI_CONTINUE, or the status to exit with: 0 after --help or --version,
 * SPD_EXIT_USAGE after one line on stderr. */
/* A number with an optional K, M, G or T suffix (powers of 1024): 0,
 * -EINVAL when it is no such number, -ERANGE when it does not fit in 64
 * bits. */
int cli_parse_size(const char *text, uint64_t *bytes);

int cli_parse(struct cli_config *cfg, const spd_device *dev, int argc,
              char **argv);

/* options.c: the --alua list in the file path, one line (white space
 * around it ignored), into text (CLI_ALUA_MAX bytes): 0, or -1 with why
 * (CLI_ALUA_MAX bytes) said. The list itself is not checked. */
int cli_alua_file_read(const char *path, char *text, char *why);

/* options.c: the "one line" of a refused command line; SPD_EXIT_USAGE. */
__attribute__((format(printf, 2, 3)))
int cli_usage_error(const struct cli_config *cfg, const char *fmt, ...);

/* serve.c: take one export option (long name without dashes and its
 * argument, NULL for a missing optional one), validated now so that a bad
 * value is refused before anything is served: 0, or SPD_EXIT_USAGE after
 * a message. */
int cli_export_option(struct cli_config *cfg, const char *name,
                      const char *arg);

/* serve.c: after the last option, whether the TLS options agree with
 * each other and with the --nbd addresses, and whether the credentials
 * load: 0, or SPD_EXIT_USAGE after a message. */
int cli_tls_finish(struct cli_config *cfg);

/* serve.c: whether any export was asked for. */
bool cli_exports_wanted(const struct cli_exports *e);

/* serve.c: block the signals serve() waits for, in this thread and every
 * thread created after it, and ignore SIGPIPE. */
void cli_block_signals(void);

/* serve.c: export the unit, announce readiness (pid file, sd_notify), wait
 * for a signal that ends the program (SIGHUP reopens debug_file from
 * cfg->debug_log and applies cfg->alua_file again), then stop the
 * exports, flush, and remove the pid file.
 * *served becomes true once every export is up. SPD_EXIT_OK, or
 * SPD_EXIT_FAILURE after printing why. */
int cli_serve(spd_unit *unit, const struct cli_config *cfg, FILE *debug_file,
              bool *served);

/* selfcheck.c: exercise the unit through the SCSI engine, one line per
 * step on out. Blocks it overwrites are saved first and restored at the
 * end; on a write-protected unit nothing is written. 0 when every step
 * passed, 1 otherwise. */
int cli_selfcheck(spd_unit *unit, FILE *out);

#endif
