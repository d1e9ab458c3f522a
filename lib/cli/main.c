/*
 * main.c - spd_main(): a device program from parsing the command line to
 * the last flush (see include/spd/cli.h). The parts live beside it:
 * options.c, serve.c, selfcheck.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

/* The storage is open from open() to close(); served says how far the run
 * got, for close(). */
struct run {
    const struct cli_config *cfg;
    spd_unit *unit;
    FILE *debug_file;
    bool opened, served;
};

/* Ask the device to open its storage, then check what it made of the
 * parameters. */
static int storage_open(struct run *run, struct cli_config *cfg)
{
    const spd_device *dev = cfg->dev;
    if (!(cfg->given & SPD_GIVEN_UUID) && spd_uuid_generate(cfg->params.uuid)) {
        fprintf(stderr, "%s: no random UUID: %s\n", dev->name, strerror(errno));
        return SPD_EXIT_FAILURE;
    }
    if (dev->open) {
        int r = dev->open(dev->ctx, &cfg->params, cfg->given);
        if (r)
            return r == SPD_EXIT_USAGE ? r : SPD_EXIT_FAILURE;
        run->opened = true;
    }
    if (!cfg->params.block_count)
        return cli_usage_error(cfg, "give the size with --size or "
                               "--block-count");
    if (!cfg->params.unmap_supported)
        cfg->params.unmap_reads_zero = false;
    if (spd_params_check(&cfg->params)) {
        fprintf(stderr, "%s: %s\n", dev->name, spd_errmsg());
        return SPD_EXIT_USAGE;
    }
    return 0;
}

/* The unit with its debug log and dispatcher threads. */
static int unit_create(struct run *run, const struct cli_config *cfg)
{
    const spd_device *dev = cfg->dev;
    if (cfg->debug_log &&
        !(run->debug_file = fopen(cfg->debug_log, "ae"))) {
        fprintf(stderr, "%s: --debug-log %s: %s\n", dev->name, cfg->debug_log,
                strerror(errno));
        return SPD_EXIT_USAGE;
    }
    if (!(run->unit = spd_unit_create(&cfg->params, dev->ops, dev->ctx))) {
        fprintf(stderr, "%s: %s\n", dev->name, spd_errmsg());
        return SPD_EXIT_FAILURE;
    }
    spd_unit_set_debug_log(run->unit, cfg->debug_mask, run->debug_file);
    int r = cfg->threads ? spd_unit_start(run->unit, (unsigned)cfg->threads)
                         : 0;
    if (r) {
        fprintf(stderr, "%s: starting %d threads: %s\n", dev->name,
                cfg->threads, strerror(-r));
        return SPD_EXIT_FAILURE;
    }
    if (dev->ready && (r = dev->ready(dev->ctx, run->unit)))
        return r == SPD_EXIT_USAGE ? r : SPD_EXIT_FAILURE;
    return 0;
}

static int run_mode(struct run *run, const struct cli_config *cfg)
{
    const spd_device *dev = cfg->dev;
    if (!cfg->check)
        return cli_serve(run->unit, cfg, run->debug_file, &run->served);
    run->served = true;
    int status = cli_selfcheck(run->unit, stdout) ? SPD_EXIT_FAILURE
                                                  : SPD_EXIT_OK;
    if (dev->report)
        dev->report(dev->ctx, stdout);
    return status;
}

int spd_main(int argc, char **argv, const spd_device *device)
{
    struct cli_config cfg;
    struct run run = { .cfg = &cfg };

    if (!device || device->size < sizeof(uint32_t) || !device->name ||
        !device->ops) {
        fprintf(stderr, "%s: spd_main: the device needs SPD_DEVICE_INIT, a "
                "name and ops\n", argc > 0 ? argv[0] : "spd");
        return SPD_EXIT_FAILURE;
    }
    /* Before any thread exists, so that only cli_serve() takes them. */
    cli_block_signals();
    int status = cli_parse(&cfg, device, argc, argv);
    if (status != CLI_CONTINUE)
        return status;
    if (!(status = storage_open(&run, &cfg)) &&
        !(status = unit_create(&run, &cfg)))
        status = run_mode(&run, &cfg);

    if (run.unit)
        spd_unit_destroy(run.unit);
    if (run.debug_file)
        fclose(run.debug_file);
    if (device->report && cfg.debug_mask && !cfg.check)
        device->report(device->ctx, stderr);
    if (run.opened && device->close)
        device->close(device->ctx, run.served);
    return status;
}

void spd_format_size(uint64_t bytes, char *buf, size_t size)
{
    static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB",
                                         "EiB" };
    if (bytes < 1024) {
        snprintf(buf, size, "%llu bytes", (unsigned long long)bytes);
        return;
    }
    double v = (double)bytes / 1024;
    unsigned u = 0;
    while (v >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1024;
        u++;
    }
    if (v == (double)(uint64_t)v)
        snprintf(buf, size, "%llu %s", (unsigned long long)v, units[u]);
    else
        snprintf(buf, size, "%.1f %s", v, units[u]);
}
