/*
 * ram_device.h - the fast in-memory device the test servers (fuse_serve,
 * iscsi_serve) export: plain memcpy, callbacks in parallel, unmap zeros.
 * Unlike memunit it neither sleeps nor records, so it can be measured.
 */
#ifndef SPD_TEST_RAM_DEVICE_H
#define SPD_TEST_RAM_DEVICE_H

#include <string.h>

#include "spd/spd.h"

struct ram {
    uint8_t *data;
    size_t size;             /* bytes at data (for the owner to free) */
    size_t block_length;
};

static int ram_read(void *ctx, spd_io *io, void *buf, uint64_t lba,
                    uint32_t blocks, bool fua)
{
    struct ram *r = ctx;
    memcpy(buf, r->data + lba * r->block_length, blocks * r->block_length);
    return SPD_OK;
}

static int ram_write(void *ctx, spd_io *io, const void *buf, uint64_t lba,
                     uint32_t blocks, bool fua)
{
    struct ram *r = ctx;
    memcpy(r->data + lba * r->block_length, buf, blocks * r->block_length);
    return SPD_OK;
}

static int ram_unmap(void *ctx, spd_io *io, const spd_unmap_desc *descs,
                     uint32_t count)
{
    struct ram *r = ctx;
    for (uint32_t i = 0; i < count; i++)
        memset(r->data + descs[i].lba * r->block_length, 0,
               descs[i].blocks * r->block_length);
    return SPD_OK;
}

static const spd_ops ram_ops = {
    SPD_OPS_INIT,
    .flags = SPD_OPS_PARALLEL,
    .read = ram_read,
    .write = ram_write,
    .unmap = ram_unmap,
};

#endif
