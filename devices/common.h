/*
 * common.h - what the example devices share, so that each device program
 * shows only its own storage code: the command line (the options every
 * device has, plus the program's own), creating and starting the unit, and
 * the self-check that shows the disk through the SCSI engine.
 *
 * A device's main() reads: parse options -> set up its storage -> create
 * the unit -> run what was asked (--check; exports later) -> destroy.
 */
#ifndef SPD_DEVICES_COMMON_H
#define SPD_DEVICES_COMMON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "serve.h"
#include "spd/spd.h"

/* Exit statuses of the device programs. */
#define DEVICE_EXIT_OK      0
#define DEVICE_EXIT_FAILURE 1
#define DEVICE_EXIT_USAGE   2
#define DEVICE_CONTINUE     (-1)   /* device_parse(): go on */

/* One of a program's own options, parsed with the common ones. */
struct device_option {
    const char *name;        /* long name, without the dashes */
    int short_name;          /* its letter, or 0 for a long option only */
    const char *arg;         /* argument name in --help ("PATH"); NULL: none */
    const char *help;        /* the --help text, default included */
};

/* What a program tells device_parse() about itself. */
struct device_program {
    const char *name;            /* "spd-ramdisk": the prefix of messages */
    const char *summary;         /* one line for --help */
    const char *size_help;       /* how the size is chosen when none given */
    const char *uuid_help;       /* where the UUID comes from by default */
    /* Dispatcher threads without --threads: 0 runs requests on the
     * transports' threads (best for memory), more suit blocking I/O. */
    unsigned default_threads;
    const struct device_option *options;
    unsigned option_count;
    /* Take options[i] with its argument: 0, or -1 after printing a
     * one-line message naming the option and value. */
    int (*take)(void *ctx, unsigned i, const char *arg);
    /* After the last option: check the program's own requirements; 0, or
     * -1 after printing why. May be NULL. */
    int (*finish)(void *ctx);
    void *ctx;
};

/* The command line, and what device_unit_create() opened for it. */
struct device_config {
    const struct device_program *program;
    spd_params params;           /* block_count stays 0 until resolved */
    uint64_t size;               /* --size in bytes; 0: not given */
    bool block_length_given;
    bool uuid_given;
    unsigned debug_mask;
    const char *debug_log;       /* --debug-log FILE, or NULL */
    int threads;                 /* -1: the program's default */
    bool check;                  /* --check */
    struct serve_options exports;  /* --nbd, --fuse, --pid-file */
    FILE *debug_file;            /* opened by device_unit_create() */
};

/* Parse the command line into cfg (unit defaults: 512-byte blocks, cache
 * and unmap on). Returns DEVICE_CONTINUE, or the status to exit with:
 * 0 after --help or --version, DEVICE_EXIT_USAGE after a message. */
int device_parse(struct device_config *cfg, const struct device_program *prog,
                 int argc, char **argv);

/* Set params.block_count from --size or --block-count (which must agree
 * when both are given), or from default_size bytes when neither was; a
 * default_size of 0 makes one of them required. 0, or DEVICE_EXIT_USAGE
 * after a message. */
int device_resolve_size(struct device_config *cfg, uint64_t default_size);

/* Create the unit (cfg->params must be complete), attach the debug log and
 * start the dispatcher threads (none with --threads 0). NULL after
 * printing why. */
spd_unit *device_unit_create(struct device_config *cfg, const spd_ops *ops,
                             void *ctx);

/* Destroy the unit (NULL is fine) and close the debug log. */
void device_unit_destroy(struct device_config *cfg, spd_unit *unit);

/* Run the mode the command line asked for; returns the exit status. */
int device_run(struct device_config *cfg, spd_unit *unit);

/* Exercise the unit through the SCSI engine as an initiator would, one
 * line per step on out. Blocks it overwrites are saved first and restored
 * at the end; on a write-protected unit nothing is written. 0 when every
 * step passed, 1 otherwise. */
int device_selfcheck(spd_unit *unit, FILE *out);

/* "64 MiB", "1.5 GiB", "512 bytes": a size for people. */
void device_format_size(uint64_t bytes, char *text, size_t len);

#endif
