/*
 * target_nbd.c - an NBD export through libnbd's asynchronous API: one
 * connection per thread, up to the queue depth of commands in flight on
 * it, completions taken by nbd_poll().
 *
 * Unmap is NBD_CMD_TRIM. The protocol promises nothing of a trimmed
 * range's content until it is written again, so trimmed blocks are not
 * expected to read as zeros (--unmap-zeroes=yes asks for it anyway).
 */
#include <errno.h>
#include <libnbd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stgtest.h"

struct stg_conn {
    struct nbd_handle *h;
    uint32_t block_size;
};

static int nbd_done(void *user_data, int *error)
{
    struct stg_op *op = user_data;
    op->error = *error;
    if (*error)
        snprintf(op->detail, sizeof op->detail, "%s", strerror(*error));
    stg_complete(op);
    return 1;                   /* retire the command */
}

static void nbd_target_close(struct stg_conn *c)
{
    if (c)
        nbd_close(c->h);
    free(c);
}

static struct stg_conn *nbd_target_open(const char *uri,
                                        const struct stg_target_options *opt,
                                        struct stg_geometry *geo, char *err,
                                        size_t len)
{
    struct stg_conn *c = calloc(1, sizeof *c);
    if (!c || !(c->h = nbd_create())) {
        snprintf(err, len, "out of memory");
        free(c);
        return NULL;
    }
    nbd_set_pread_initialize(c->h, false);    /* every read is checked */
    if (nbd_connect_uri(c->h, uri) < 0) {
        snprintf(err, len, "%s", nbd_get_error());
        nbd_target_close(c);
        return NULL;
    }
    int64_t size = nbd_get_size(c->h);
    int64_t minimum = nbd_get_block_size(c->h, LIBNBD_SIZE_MINIMUM);
    int64_t maximum = nbd_get_block_size(c->h, LIBNBD_SIZE_MAXIMUM);
    uint32_t block = opt->block_size ? opt->block_size
                   : minimum > 512 ? (uint32_t)minimum : 512;
    c->block_size = block;
    *geo = (struct stg_geometry){
        .blocks = size > 0 ? (uint64_t)size / block : 0,
        .block_size = block,
        /* libnbd refuses requests above 64 MiB; servers that say nothing
         * are safe with 32 MiB (the protocol's advice). */
        .max_transfer = maximum > 0 ? (uint32_t)maximum : 32u << 20,
        .can_flush = nbd_can_flush(c->h) == 1,
        .can_unmap = nbd_can_trim(c->h) == 1,
        .unmap_zeroes = false,
        .unmap_rule = "NBD promises nothing of trimmed blocks",
    };
    return c;
}

static int nbd_target_submit(struct stg_conn *c, struct stg_op *op)
{
    nbd_completion_callback cb = { .callback = nbd_done, .user_data = op };
    size_t bytes = (size_t)op->blocks * c->block_size;
    uint64_t offset = op->lba * c->block_size;
    int64_t r = -1;
    switch (op->kind) {
    case STG_READ:
        r = nbd_aio_pread(c->h, op->buf, bytes, offset, cb, 0);
        break;
    case STG_WRITE:
        r = nbd_aio_pwrite(c->h, op->buf, bytes, offset, cb, 0);
        break;
    case STG_FLUSH:
        r = nbd_aio_flush(c->h, cb, 0);
        break;
    case STG_UNMAP:
        r = nbd_aio_trim(c->h, bytes, offset, cb, 0);
        break;
    case STG_KINDS:
        break;
    }
    if (r < 0) {
        snprintf(op->detail, sizeof op->detail, "%s", nbd_get_error());
        return -(nbd_get_errno() ? nbd_get_errno() : EIO);
    }
    return 0;
}

static int nbd_target_wait(struct stg_conn *c, int timeout_ms)
{
    if (nbd_poll(c->h, timeout_ms) < 0)
        return -(nbd_get_errno() ? nbd_get_errno() : EIO);
    return 0;
}

const struct stg_target stg_nbd_target = {
    .name = "nbd",
    .open = nbd_target_open,
    .submit = nbd_target_submit,
    .wait = nbd_target_wait,
    .close = nbd_target_close,
};
