/*
 * cli.h - a whole device program in one call: spd_main() reads the command
 * line every Spd device shares (size, identity, write protection, cache,
 * unmap, threads, debug log, the NBD, iSCSI and FUSE exports, pid file,
 * the self-check), opens the device's storage through its hooks, creates
 * the unit, serves it until a signal says stop and cleans up.
 *
 * The smallest device:
 *
 *     static const spd_ops ops = { SPD_OPS_INIT, .read = r, .write = w };
 *     int main(int argc, char **argv)
 *     {
 *         spd_device dev = { SPD_DEVICE_INIT, .name = "mydisk", .ops = &ops,
 *                            .default_size = 64 << 20, .open = my_open };
 *         return spd_main(argc, argv, &dev);
 *     }
 *
 * Exit statuses: SPD_EXIT_OK after serving until a signal (or a passed
 * self-check, --help, --version), SPD_EXIT_FAILURE when something failed
 * at run time, SPD_EXIT_USAGE for a bad command line (one line on stderr,
 * nothing served).
 */
#ifndef SPD_CLI_H
#define SPD_CLI_H

#include <stdio.h>

#include "spd/spd.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SPD_EXIT_OK      0
#define SPD_EXIT_FAILURE 1
#define SPD_EXIT_USAGE   2

/* One of a device's own options, parsed with the common ones. */
typedef struct spd_device_option {
    const char *name;        /* long name, without the dashes */
    int short_name;          /* its letter, or 0 for a long option only */
    const char *arg;         /* argument name in --help ("PATH"); NULL: none */
    const char *help;        /* the --help text, default included */
} spd_device_option;

/* What spd_device.open() is told about the command line (bits). */
#define SPD_GIVEN_SIZE         0x1u  /* --size or --block-count */
#define SPD_GIVEN_BLOCK_LENGTH 0x2u  /* --block-length */
#define SPD_GIVEN_UUID         0x4u  /* --uuid */

/*
 * A device program. Start the initializer with SPD_DEVICE_INIT: new fields
 * are only ever added at the end. Only name and ops are required. Every
 * hook gets ctx; a hook that fails prints one line, prefixed with the
 * program's name, and returns the exit status (SPD_EXIT_FAILURE or
 * SPD_EXIT_USAGE).
 */
typedef struct spd_device {
    uint32_t size;               /* sizeof(spd_device): SPD_DEVICE_INIT */
    const char *built_with;      /* SPD_VERSION_STRING: SPD_DEVICE_INIT */
    const char *name;            /* "spd-ramdisk": prefix of every message */
    const char *version;         /* --version; NULL: the Spd version built
                                    with */
    const char *summary;         /* one line for --help */
    const spd_ops *ops;          /* the device's code */
    void *ctx;                   /* for ops and hooks */
    /* Bytes without --size/--block-count; 0: one of them is required,
     * unless open() finds the size itself (then say so in size_help). */
    uint64_t default_size;
    const char *size_help;       /* --help's default for --size, or NULL */
    const char *uuid_help;       /* --help's default for --uuid, or NULL:
                                    "a new random one each run" */
    /* Dispatcher threads without --threads: 0 runs requests on the
     * exports' own threads (best when the device never blocks). */
    unsigned default_threads;

    /* The device's own options, and the hook that takes them one by one
     * (index into options, the argument or NULL): 0, or an exit status. */
    const spd_device_option *options;
    unsigned option_count;
    int (*take)(void *ctx, unsigned index, const char *arg);

    /* Open the storage once the command line is read. params holds every
     * option; block_count is set when SPD_GIVEN_SIZE is in given or from
     * default_size, else 0 and open() must set it; the uuid is random
     * unless SPD_GIVEN_UUID. open() may change the geometry, identity and
     * unmap_supported (storage that cannot unmap). NULL: nothing to open.
     * Not called for --help and --version, nor after a bad option. */
    int (*open)(void *ctx, spd_params *params, unsigned given);
    /* The unit exists, nothing is served yet (for example to write a
     * partition table through it). Optional. */
    int (*ready)(void *ctx, spd_unit *unit);
    /* A few lines about the device, printed after --check (to stdout) and
     * on exit with --debug (to stderr). Optional. */
    void (*report)(void *ctx, FILE *out);
    /* Called once after open() succeeded, when the unit is gone: served
     * tells whether the run got as far as every export being up, or the
     * check being run (a device may remove or shrink again storage it
     * created or sized for a run that failed to start). */
    void (*close)(void *ctx, bool served);
} spd_device;

#define SPD_DEVICE_INIT \
    .size = sizeof(spd_device), .built_with = SPD_VERSION_STRING

/*
 * Run the device program: parse argv, open the storage, create the unit,
 * then run --check or serve every export until SIGINT, SIGTERM or any
 * other signal that would end the process (SIGHUP reopens the debug log;
 * SIGPIPE is ignored). Serving stops the exports after their requests in
 * flight are answered, flushes the unit, unmounts FUSE, removes the pid
 * file and returns SPD_EXIT_OK. Call it from main() before any thread is
 * created: it blocks the signals it waits for.
 */
int spd_main(int argc, char **argv, const spd_device *device);

/* "64 MiB", "1.5 GiB", "512 bytes": a size for people, in buf. */
void spd_format_size(uint64_t bytes, char *buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* SPD_CLI_H */
