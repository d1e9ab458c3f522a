/*
 * target_iscsi.c - an iSCSI LUN through libiscsi's asynchronous API
 * (iscsi://[USER%SECRET@]HOST[:PORT]/IQN/LUN): one session per thread,
 * READ(16), WRITE(16), SYNCHRONIZE CACHE(16) and UNMAP, completions taken
 * by iscsi_service() when poll() says the socket is ready.
 *
 * READ CAPACITY(16) gives the geometry and says whether unmapped blocks
 * read as zeros (LBPRZ); the Block Limits page, the largest transfer and
 * the largest unmap.
 */
#include <errno.h>
#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stgtest.h"

#define INITIATOR "iqn.2026-11.org.spd:stgtest"

struct stg_conn {
    struct iscsi_context *iscsi;
    int lun;
    uint32_t block_size;
};

static void iscsi_done(struct iscsi_context *iscsi, int status,
                       void *command_data, void *private_data)
{
    struct stg_op *op = private_data;
    struct scsi_task *task = command_data;
    op->error = 0;
    if (status == SCSI_STATUS_CHECK_CONDITION && task) {
        op->error = EIO;
        snprintf(op->detail, sizeof op->detail, "CHECK CONDITION: %s, %s",
                 scsi_sense_key_str(task->sense.key),
                 scsi_sense_ascq_str(task->sense.ascq));
    } else if (status != SCSI_STATUS_GOOD) {
        op->error = EIO;
        snprintf(op->detail, sizeof op->detail, "%s", iscsi_get_error(iscsi));
    }
    free((void *)op->target_data);            /* a read's iovec */
    op->target_data = 0;
    if (task)
        scsi_free_scsi_task(task);
    stg_complete(op);
}

static void iscsi_target_close(struct stg_conn *c)
{
    if (!c)
        return;
    if (c->iscsi) {
        iscsi_logout_sync(c->iscsi);
        iscsi_destroy_context(c->iscsi);
    }
    free(c);
}

static int connect_url(struct stg_conn *c, const char *url, char *err,
                       size_t len)
{
    struct iscsi_url *u = iscsi_parse_full_url(c->iscsi, url);
    if (!u) {
        snprintf(err, len, "%s", iscsi_get_error(c->iscsi));
        return -1;
    }
    iscsi_set_targetname(c->iscsi, u->target);
    iscsi_set_session_type(c->iscsi, ISCSI_SESSION_NORMAL);
    iscsi_set_header_digest(c->iscsi, ISCSI_HEADER_DIGEST_NONE_CRC32C);
    if (u->user[0])
        iscsi_set_initiator_username_pwd(c->iscsi, u->user, u->passwd);
    c->lun = u->lun;
    int r = iscsi_full_connect_sync(c->iscsi, u->portal, u->lun);
    iscsi_destroy_url(u);
    if (r) {
        snprintf(err, len, "%s", iscsi_get_error(c->iscsi));
        return -1;
    }
    return 0;
}

/* READ CAPACITY(16) and the Block Limits page. */
static int read_geometry(struct stg_conn *c, struct stg_geometry *geo,
                         char *err, size_t len)
{
    struct scsi_task *t = iscsi_readcapacity16_sync(c->iscsi, c->lun);
    struct scsi_readcapacity16 *rc = NULL;
    if (!t || t->status != SCSI_STATUS_GOOD ||
        !(rc = scsi_datain_unmarshall(t))) {
        snprintf(err, len, "READ CAPACITY(16) failed: %s",
                 iscsi_get_error(c->iscsi));
        if (t)
            scsi_free_scsi_task(t);
        return -1;
    }
    *geo = (struct stg_geometry){
        .blocks = rc->returned_lba + 1,
        .block_size = rc->block_length,
        .can_flush = true,
        .can_unmap = rc->lbpme,
        .unmap_zeroes = rc->lbpme && rc->lbprz,
        .unmap_rule = rc->lbprz ? "the target reports LBPRZ 1"
                                : "the target reports LBPRZ 0",
    };
    scsi_free_scsi_task(t);

    t = iscsi_inquiry_sync(c->iscsi, c->lun, 1,
                           SCSI_INQUIRY_PAGECODE_BLOCK_LIMITS, 64);
    struct scsi_inquiry_block_limits *bl = NULL;
    if (t && t->status == SCSI_STATUS_GOOD &&
        (bl = scsi_datain_unmarshall(t))) {
        if (bl->max_xfer_len &&
            (uint64_t)bl->max_xfer_len * geo->block_size < UINT32_MAX)
            geo->max_transfer = bl->max_xfer_len * geo->block_size;
        geo->max_unmap_blocks = bl->max_unmap == UINT32_MAX ? 0
                                                            : bl->max_unmap;
    }
    if (t)
        scsi_free_scsi_task(t);
    return 0;
}

static struct stg_conn *iscsi_target_open(const char *url,
                                          const struct stg_target_options *opt,
                                          struct stg_geometry *geo,
                                          char *err, size_t len)
{
    struct stg_conn *c = calloc(1, sizeof *c);
    if (!c || !(c->iscsi = iscsi_create_context(INITIATOR))) {
        snprintf(err, len, "out of memory");
        free(c);
        return NULL;
    }
    if (connect_url(c, url, err, len) || read_geometry(c, geo, err, len)) {
        iscsi_target_close(c);
        return NULL;
    }
    if (opt->block_size && opt->block_size != geo->block_size) {
        snprintf(err, len, "the LUN has %u-byte blocks, not %u",
                 geo->block_size, opt->block_size);
        iscsi_target_close(c);
        return NULL;
    }
    c->block_size = geo->block_size;
    return c;
}

static int iscsi_target_submit(struct stg_conn *c, struct stg_op *op)
{
    uint32_t bytes = op->blocks * c->block_size;
    struct scsi_task *t = NULL;
    struct scsi_iovec *iov;
    struct unmap_list range = { .lba = op->lba, .num = op->blocks };
    switch (op->kind) {
    case STG_READ:          /* straight into the buffer, no copy */
        if (!(iov = malloc(sizeof *iov)))
            return -ENOMEM;
        *iov = (struct scsi_iovec){ .iov_base = op->buf, .iov_len = bytes };
        op->target_data = (uintptr_t)iov;
        t = iscsi_read16_iov_task(c->iscsi, c->lun, op->lba, bytes,
                                  (int)c->block_size, 0, 0, 0, 0, 0,
                                  iscsi_done, op, iov, 1);
        break;
    case STG_WRITE:
        t = iscsi_write16_task(c->iscsi, c->lun, op->lba, op->buf, bytes,
                               (int)c->block_size, 0, 0, 0, 0, 0,
                               iscsi_done, op);
        break;
    case STG_FLUSH:
        t = iscsi_synchronizecache16_task(c->iscsi, c->lun, 0, 0, 0, 0,
                                          iscsi_done, op);
        break;
    case STG_UNMAP:
        t = iscsi_unmap_task(c->iscsi, c->lun, 0, 0, &range, 1,
                             iscsi_done, op);
        break;
    case STG_KINDS:
        break;
    }
    if (!t) {
        free((void *)op->target_data);
        op->target_data = 0;
        snprintf(op->detail, sizeof op->detail, "%s",
                 iscsi_get_error(c->iscsi));
        return -EIO;
    }
    return 0;
}

static int iscsi_target_wait(struct stg_conn *c, int timeout_ms)
{
    struct pollfd p = { .fd = iscsi_get_fd(c->iscsi),
                        .events = (short)iscsi_which_events(c->iscsi) };
    if (!p.events)              /* reconnecting: libiscsi asks to wait */
        return poll(NULL, 0, timeout_ms < 100 ? timeout_ms : 100) < 0 &&
               errno != EINTR ? -errno : 0;
    int n = poll(&p, 1, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    if (iscsi_service(c->iscsi, n ? p.revents : 0) < 0)
        return -EIO;
    return 0;
}

const struct stg_target stg_iscsi_target = {
    .name = "iscsi",
    .open = iscsi_target_open,
    .submit = iscsi_target_submit,
    .wait = iscsi_target_wait,
    .close = iscsi_target_close,
};
