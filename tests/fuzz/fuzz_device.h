/*
 * fuzz_device.h - the storage device the fuzz targets serve: blocks in
 * memory (or none, for a unit too large to hold), and on every call an
 * assertion of what the unit core promises a device (spd.h): a range
 * inside the unit, at most max_transfer_length bytes, no write to a
 * write-protected unit, no unmap without unmap_supported. A broken
 * promise aborts, which libFuzzer and the driver report as a crash with
 * the input that caused it.
 *
 * Header only (static inline) so each fuzz program is one file plus the
 * driver; both targets include it.
 */
#ifndef SPD_FUZZ_DEVICE_H
#define SPD_FUZZ_DEVICE_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spd/scsi.h"
#include "spd/spd.h"

/* Abort with a message when a promise is broken (never compiled out,
 * unlike assert()). */
static inline void fuzz_require(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz: invariant broken: %s\n", what);
        abort();
    }
}

struct fuzz_device {
    spd_params params;          /* as given to spd_unit_create */
    spd_unit *unit;
    uint32_t max_blocks;        /* per call, as the unit computed it */
    uint8_t *data;              /* block_count * block_length, or NULL */
    uint8_t *mapped;            /* per block: written since unmapped */
    int64_t fail_lba;           /* read/write touching it fails (-1: none) */
};

/* The content of a block of a unit without memory, as READ returns it. */
static inline uint8_t fuzz_sparse_byte(uint64_t lba, uint32_t offset)
{
    return (uint8_t)(lba * 131 + offset / 64 + 7);
}

static inline void fuzz_device_range(const struct fuzz_device *d,
                                     uint64_t lba, uint32_t blocks,
                                     const char *op)
{
    uint64_t count = d->params.block_count;
    if (lba >= count || blocks > count - lba || blocks > d->max_blocks) {
        fprintf(stderr, "fuzz: %s lba %llu blocks %u on a unit of %llu "
                "blocks, at most %u per call\n", op, (unsigned long long)lba,
                blocks, (unsigned long long)count, d->max_blocks);
        fuzz_require(false, "device call outside the unit");
    }
}

/* The injected failure: -EIO for a read, a sense with information for a
 * write (both of the device's ways to fail). */
static inline int fuzz_device_fault(struct fuzz_device *d, spd_io *io,
                                    uint64_t lba, uint32_t blocks, bool write)
{
    if (d->fail_lba < 0 || (uint64_t)d->fail_lba < lba ||
        (uint64_t)d->fail_lba - lba >= blocks)
        return SPD_OK;
    if (!write)
        return -EIO;
    return spd_io_set_sense(io, SPD_KEY_MEDIUM_ERROR,
                            SPD_ASC(SPD_ASC_WRITE_ERROR),
                            SPD_ASCQ(SPD_ASC_WRITE_ERROR), true,
                            (uint64_t)d->fail_lba);
}

static inline int fuzz_device_read(void *ctx, spd_io *io, void *buf,
                                   uint64_t lba, uint32_t blocks, bool fua)
{
    struct fuzz_device *d = ctx;
    size_t bl = d->params.block_length;
    fuzz_device_range(d, lba, blocks, "read");
    fuzz_require(blocks > 0 && buf != NULL, "read of nothing");
    int r = fuzz_device_fault(d, io, lba, blocks, false);
    if (r != SPD_OK)
        return r;
    if (d->data) {
        memcpy(buf, d->data + lba * bl, blocks * bl);
        return SPD_OK;
    }
    uint8_t *p = buf;
    for (uint32_t b = 0; b < blocks; b++)
        for (uint32_t i = 0; i < bl; i++)
            p[b * bl + i] = fuzz_sparse_byte(lba + b, i);
    return SPD_OK;
}

static inline int fuzz_device_write(void *ctx, spd_io *io, const void *buf,
                                    uint64_t lba, uint32_t blocks, bool fua)
{
    struct fuzz_device *d = ctx;
    size_t bl = d->params.block_length;
    fuzz_device_range(d, lba, blocks, "write");
    fuzz_require(blocks > 0 && buf != NULL, "write of nothing");
    fuzz_require(!d->params.write_protected, "write to a write-protected unit");
    int r = fuzz_device_fault(d, io, lba, blocks, true);
    if (r != SPD_OK)
        return r;
    if (d->data) {
        memcpy(d->data + lba * bl, buf, blocks * bl);
        memset(d->mapped + lba, 1, blocks);
        return SPD_OK;
    }
    /* Nothing is kept; touch both ends so ASan sees a short buffer. */
    const volatile uint8_t *p = buf;
    (void)p[0];
    (void)p[blocks * bl - 1];
    return SPD_OK;
}

static inline int fuzz_device_flush(void *ctx, spd_io *io, uint64_t lba,
                                    uint32_t blocks)
{
    struct fuzz_device *d = ctx;
    uint64_t count = d->params.block_count;
    fuzz_require(lba < count && blocks <= count - lba,
                 "flush outside the unit");
    return SPD_OK;
}

static inline int fuzz_device_unmap(void *ctx, spd_io *io,
                                    const spd_unmap_desc *descs,
                                    uint32_t count)
{
    struct fuzz_device *d = ctx;
    size_t bl = d->params.block_length;
    fuzz_require(d->params.unmap_supported, "unmap without unmap_supported");
    fuzz_require(!d->params.write_protected, "unmap of a write-protected unit");
    fuzz_require(count > 0 && descs != NULL, "unmap of no ranges");
    for (uint32_t i = 0; i < count; i++) {
        uint64_t lba = descs[i].lba, blocks = descs[i].blocks;
        uint64_t n = d->params.block_count;
        fuzz_require(lba < n && blocks <= n - lba, "unmap outside the unit");
        if (!d->data)
            continue;
        /* Unmapped blocks read zeros when promised, else junk. */
        memset(d->data + lba * bl, d->params.unmap_reads_zero ? 0 : 0xa5,
               blocks * bl);
        memset(d->mapped + lba, 0, blocks);
    }
    return SPD_OK;
}

static inline int64_t fuzz_device_extent(void *ctx, uint64_t lba,
                                         uint32_t blocks, bool *mapped)
{
    struct fuzz_device *d = ctx;
    uint64_t count = d->params.block_count;
    fuzz_require(blocks > 0 && lba < count && blocks <= count - lba,
                 "extent query outside the unit");
    if (d->fail_lba >= 0 && (uint64_t)d->fail_lba == lba)
        return -EIO;
    /* Runs end at every 16th block too, as a device may answer: the
     * caller joins them. Without memory every block is mapped. */
    uint32_t run = 1;
    while (run < blocks && (lba + run) % 16 &&
           (!d->mapped || d->mapped[lba + run] == d->mapped[lba]))
        run++;
    *mapped = !d->mapped || d->mapped[lba];
    return run;
}

/* Set up the device's memory for a geometry (block_count, block_length of
 * params): blocks kept in memory when store is true, none otherwise. */
static inline void fuzz_device_init(struct fuzz_device *d,
                                    const spd_params *params, bool store)
{
    memset(d, 0, sizeof *d);
    d->params = *params;
    d->fail_lba = -1;
    if (!store)
        return;
    size_t bytes = params->block_count * params->block_length;
    d->data = malloc(bytes);
    d->mapped = malloc(params->block_count);
    fuzz_require(d->data && d->mapped, "out of memory");
    memset(d->mapped, 1, params->block_count);
    for (size_t i = 0; i < bytes; i++)
        d->data[i] = (uint8_t)(i * 7 + i / 512);
}

/* Create the unit over the device (no dispatcher: calls run on the
 * submitting thread). params must keep the device's geometry; the other
 * fields may change from one unit to the next. */
static inline void fuzz_device_open(struct fuzz_device *d,
                                    const spd_params *params)
{
    static const spd_ops ops = {
        SPD_OPS_INIT,
        .read = fuzz_device_read,
        .write = fuzz_device_write,
        .flush = fuzz_device_flush,
        .unmap = fuzz_device_unmap,
        .extent = fuzz_device_extent,
    };
    fuzz_require(params->block_count == d->params.block_count &&
                 params->block_length == d->params.block_length,
                 "unit of the device's geometry");
    d->params = *params;
    d->unit = spd_unit_create(params, &ops, d);
    if (!d->unit)
        fprintf(stderr, "fuzz: spd_unit_create: %s\n", spd_errmsg());
    fuzz_require(d->unit != NULL, "unit created");
    d->max_blocks = spd_unit_params(d->unit)->max_transfer_length /
                    params->block_length;
}

static inline void fuzz_device_close(struct fuzz_device *d)
{
    spd_unit_destroy(d->unit);
    d->unit = NULL;
}

/* Close the unit and free the memory. */
static inline void fuzz_device_fini(struct fuzz_device *d)
{
    if (d->unit)
        fuzz_device_close(d);
    free(d->data);
    free(d->mapped);
    memset(d, 0, sizeof *d);
}

#endif /* SPD_FUZZ_DEVICE_H */
