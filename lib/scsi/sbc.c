/*
 * sbc.c - the block commands (SBC-3): READ and WRITE in their four sizes,
 * VERIFY, WRITE SAME, SYNCHRONIZE CACHE, UNMAP, READ CAPACITY. Each turns
 * into at most one block request (struct spd_request) for the unit core;
 * the preamble (opcodes.c) has checked the CDB, write protection and the
 * LBA range first.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scsi/scsi_int.h"

static enum scsi_action no_memory(struct scsi_task *task)
{
    scsi_sense_set(&task->status, SPD_KEY_HARDWARE_ERROR,
                   SPD_ASC_INTERNAL_TARGET_FAILURE);
    return SCSI_DONE;
}

/* SBC-3 "Protection information model": without protection information
 * (PROTECT 0 in INQUIRY)
 * RDPROTECT, WRPROTECT and VRPROTECT must be zero. */
static bool protect_zero(const struct scsi_args *a, spd_status *st)
{
    if (a->cdb[1] & 0xe0) {
        scsi_invalid_field(st, true, 1, 7);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* READ and WRITE (6), (10), (12), (16) (SBC-3)                         */
/* ------------------------------------------------------------------ */

bool sbc_rw_check(const struct scsi_lu *lu, struct scsi_args *a,
                  spd_status *st)
{
    (void)lu;
    if (a->row->cdb_len == 6) {
        /* SBC-3 READ(6)/WRITE(6): TRANSFER LENGTH 0 means 256 blocks.
         * No FUA, no protection field. */
        if (a->blocks == 0)
            a->blocks = 256;
        return true;
    }
    if (!protect_zero(a, st))
        return false;
    a->fua = a->cdb[1] & 0x08;      /* DPO (0x10) is a hint: ignored */
    return true;
}

enum scsi_action sbc_rw(struct scsi_lu *lu, struct scsi_task *task,
                        const struct scsi_args *a)
{
    bool write = a->row->dir == SPD_DIR_OUT;
    void *buf = task->data;
    uint64_t blocks = a->blocks;

    if (blocks == 0)        /* SBC-3: a zero length is not an error */
        return SCSI_DONE;
    if (task->data_len < a->length) {
        if (write) {
            /* Less data than the CDB says: the transfer length is wrong. */
            scsi_invalid_field(&task->status, true, a->row->count.off, -1);
            return SCSI_DONE;
        }
        /* A buffer shorter than the transfer (an iSCSI overflow): read
         * only the blocks that reach into it, so the memory and the reads
         * a CDB costs are bounded by the initiator's buffer, not by a
         * transfer length of up to 4 GiB. A partial last block goes
         * through a bounce buffer; scsi_io_done hands back what fits. */
        size_t bl = lu->params->block_length;
        blocks = (task->data_len + bl - 1) / bl;
        if (blocks == 0)
            return SCSI_DONE;
        if (task->data_len % bl &&
            !(buf = task->owned = malloc(blocks * bl)))
            return no_memory(task);
    }
    task->io = (spd_request){ SPD_REQUEST_INIT,
        .op = write ? SPD_OP_WRITE : SPD_OP_READ,
        .fua = a->fua, .lba = a->lba, .blocks = blocks, .buf = buf,
    };
    return SCSI_IO;
}

/* VERIFY with BYTCHK 01b and COMPARE AND WRITE (SBC-3): the blocks read,
 * in io.buf, against the data-out. A difference is a MISCOMPARE whose INFORMATION is the offset
 * of the first differing byte within the transfer. */
static void verify_compare(const struct scsi_lu *lu, struct scsi_task *task)
{
    size_t len = (size_t)task->io.blocks * lu->params->block_length;
    const uint8_t *medium = task->io.buf, *out = task->data;

    assert(len <= task->data_len);
    if (!memcmp(medium, out, len))
        return;
    size_t off = 0;
    while (medium[off] == out[off])
        off++;
    scsi_sense_set(&task->status, SPD_KEY_MISCOMPARE,
                   SPD_ASC_MISCOMPARE_DURING_VERIFY);
    spd_status_set_info(&task->status, off);
}

static void gls_answer(struct scsi_task *task);

void scsi_io_done(struct scsi_lu *lu, struct scsi_task *task)
{
    task->status = task->io.status;
    if (task->sanitize)
        atomic_store(&lu->sanitize, spd_status_good(&task->status)
                                        ? SANITIZE_NONE : SANITIZE_FAILED);
    if (task->io.op == SPD_OP_EXTENTS) {
        if (spd_status_good(&task->status))
            gls_answer(task);
        else if (task->status.sense_key == SPD_KEY_MEDIUM_ERROR)
            spd_status_set_info(&task->status, task->io.lba);
        return;
    }
    if (task->io.op != SPD_OP_READ || !spd_status_good(&task->status) ||
        task->rmw == RMW_COPY)
        return;
    if (task->compare || task->rmw == RMW_COMPARE) {
        verify_compare(lu, task);
        return;
    }
    if (task->rmw == RMW_OR) {
        uint8_t *medium = task->io.buf;
        const uint8_t *out = task->data;
        size_t len = (size_t)task->io.blocks * lu->params->block_length;
        for (size_t i = 0; i < len; i++)
            medium[i] |= out[i];
        return;
    }
    uint64_t bytes = task->io.blocks * lu->params->block_length;
    uint32_t n = bytes < task->data_len ? (uint32_t)bytes : task->data_len;
    if (task->io.buf != task->data && n)
        memcpy(task->data, task->io.buf, n);
    task->data_in_len = n;
}

/* The write of a read-modify-write once the read went well (and, for
 * COMPARE AND WRITE, matched): the second half of the data-out, or the
 * ORed blocks. */
bool scsi_io_again(struct scsi_lu *lu, struct scsi_task *task)
{
    if (task->rmw == RMW_COPY)
        return scsi_copy_again(lu, task);
    if (task->rmw == RMW_NONE || task->io.op != SPD_OP_READ ||
        !spd_status_good(&task->status))
        return false;
    size_t len = (size_t)task->io.blocks * lu->params->block_length;
    task->io = (spd_request){ SPD_REQUEST_INIT,
        .op = SPD_OP_WRITE, .fua = task->io.fua, .lba = task->io.lba,
        .blocks = task->io.blocks,
        .buf = task->rmw == RMW_OR ? task->io.buf
                                   : (uint8_t *)task->data + len,
    };
    return true;
}

void scsi_task_fini(struct scsi_task *task)
{
    free(task->owned);
    task->owned = NULL;
}

/* ------------------------------------------------------------------ */
/* VERIFY and SYNCHRONIZE CACHE (SBC-3)                                 */
/* ------------------------------------------------------------------ */

/* SBC-3 VERIFY: BYTCHK 00b checks the medium only (here: the range
 * check), 01b compares the data-out with the blocks; 10b and 11b are not
 * supported. */
bool sbc_verify_check(const struct scsi_lu *lu, struct scsi_args *a,
                      spd_status *st)
{
    (void)lu;
    if (!protect_zero(a, st))
        return false;
    switch ((a->cdb[1] >> 1) & 0x03) {
    case 0:
        break;
    case 1:
        a->bytchk = true;
        break;
    default:
        scsi_invalid_field(st, true, 1, 2);
        return false;
    }
    return true;
}

/* BYTCHK 01b: read the range into a buffer of its own, the size of the
 * transfer (which the preamble bounds to 4 GiB and the data-out must
 * hold), and compare in scsi_io_done(). Zero blocks: nothing to compare. */
enum scsi_action sbc_verify(struct scsi_lu *lu, struct scsi_task *task,
                            const struct scsi_args *a)
{
    (void)lu;
    if (!a->bytchk || a->blocks == 0)
        return SCSI_DONE;
    if (task->data_len < a->length) {
        /* As for WRITE: less data than the CDB says. */
        scsi_invalid_field(&task->status, true, a->row->count.off, -1);
        return SCSI_DONE;
    }
    void *buf = task->owned = malloc(a->length);
    if (!buf)
        return no_memory(task);
    task->compare = true;
    task->io = (spd_request){ SPD_REQUEST_INIT,
        .op = SPD_OP_READ, .lba = a->lba, .blocks = a->blocks, .buf = buf,
    };
    return SCSI_IO;
}

/* WRITE AND VERIFY (SBC-3): a write, whose verification (BYTCHK 00b:
 * the medium; 01b: against the data just written) cannot fail here. */
bool sbc_write_verify_check(const struct scsi_lu *lu, struct scsi_args *a,
                            spd_status *st)
{
    (void)lu;
    if (!protect_zero(a, st))
        return false;
    if (a->cdb[1] & 0x04) {                 /* BYTCHK 1xb */
        scsi_invalid_field(st, true, 1, 2);
        return false;
    }
    return true;
}

/* PRE-FETCH (SBC-3) is a hint: GOOD once the range checks pass. */

/* NUMBER OF LOGICAL BLOCKS 0 means to the end of the medium, as it does
 * for the device's flush; IMMED is accepted and the flush still waited
 * for. */
enum scsi_action sbc_sync_cache(struct scsi_lu *lu, struct scsi_task *task,
                                const struct scsi_args *a)
{
    (void)lu;
    task->io = (spd_request){ SPD_REQUEST_INIT,
        .op = SPD_OP_FLUSH, .lba = a->lba, .blocks = a->blocks,
    };
    return SCSI_IO;
}

/* ------------------------------------------------------------------ */
/* WRITE SAME (10), (16) (SBC-3)                                        */
/* ------------------------------------------------------------------ */

bool sbc_write_same_check(const struct scsi_lu *lu, struct scsi_args *a,
                          spd_status *st)
{
    const spd_params *p = lu->params;
    if (!protect_zero(a, st))
        return false;
    a->unmap = a->cdb[1] & 0x08;
    a->ndob = a->row->cdb_len == 16 && (a->cdb[1] & 0x01);
    if (a->unmap && !p->unmap_supported) {      /* LBPWS 0 */
        scsi_invalid_field(st, true, 1, 3);
        return false;
    }
    /* WSNZ is 0: zero blocks means to the end of the medium. */
    if (a->blocks == 0 && a->lba < p->block_count)
        a->blocks = p->block_count - a->lba;
    if (a->blocks > SCSI_MAX_WRITE_SAME_BLOCKS) {
        scsi_invalid_field(st, true, a->row->count.off, -1);
        return false;
    }
    return true;
}

static bool all_zero(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i])
            return false;
    return true;
}

/* Zeros (a zero block, or NDOB) are the core's WRITE_ZEROES. With UNMAP
 * set, SBC-3 (WRITE SAME, and "Unmapping LBAs") lets the device server
 * unmap instead of writing when the blocks then read back as the data
 * would have: the core does when unmapped blocks read zero. */
enum scsi_action sbc_write_same(struct scsi_lu *lu, struct scsi_task *task,
                                const struct scsi_args *a)
{
    size_t bl = lu->params->block_length;

    if (!a->ndob && task->data_len < bl) {
        scsi_invalid_field(&task->status, true, a->row->count.off, -1);
        return SCSI_DONE;
    }
    /* SBC-4: with UNMAP the device server unmaps when it can, whatever
     * the block (a thin unit's blocks then read as it reads unmapped
     * ones). */
    if (a->unmap && !a->ndob && !all_zero(task->data, bl)) {
        spd_unmap_desc *d = task->owned = malloc(sizeof *d);
        if (!d)
            return no_memory(task);
        *d = (spd_unmap_desc){ .lba = a->lba, .blocks = (uint32_t)a->blocks };
        task->io = (spd_request){ SPD_REQUEST_INIT,
            .op = SPD_OP_UNMAP, .descs = d, .desc_count = 1 };
        return SCSI_IO;
    }
    if (a->ndob || all_zero(task->data, bl)) {
        task->io = (spd_request){ SPD_REQUEST_INIT,
            .op = SPD_OP_WRITE_ZEROES, .lba = a->lba, .blocks = a->blocks,
            .flags = a->unmap ? SPD_REQ_MAY_UNMAP : 0,
        };
        return SCSI_IO;
    }
    task->io = (spd_request){ SPD_REQUEST_INIT,
        .op = SPD_OP_WRITE_SAME, .lba = a->lba, .blocks = a->blocks,
        .buf = task->data,
    };
    return SCSI_IO;
}

/* ------------------------------------------------------------------ */
/* UNMAP (SBC-3)                                                        */
/* ------------------------------------------------------------------ */

#define UNMAP_HEADER_LEN 8
#define UNMAP_DESC_LEN   16

static bool list_error(spd_status *st, uint16_t asc)
{
    scsi_illegal(st, asc);
    return false;
}

/* The header (SBC-3 UNMAP parameter list): UNMAP DATA LENGTH counts the
 * bytes after itself, UNMAP BLOCK DESCRIPTOR DATA LENGTH those after the
 * header; both must lie within what was sent and agree. Sets *count. */
static bool unmap_header(const uint8_t *p, size_t len, uint32_t *count,
                         spd_status *st)
{
    if (len < UNMAP_HEADER_LEN)
        return list_error(st, SPD_ASC_PARAMETER_LIST_LENGTH_ERROR);
    size_t data_len = get_be16(p), desc_len = get_be16(p + 2);
    if (data_len + 2 > len || desc_len + UNMAP_HEADER_LEN > len)
        return list_error(st, SPD_ASC_PARAMETER_LIST_LENGTH_ERROR);
    if (desc_len + UNMAP_HEADER_LEN - 2 > data_len) {
        scsi_invalid_field(st, false, 2, -1);
        return false;
    }
    /* An incomplete last descriptor is ignored. */
    *count = (uint32_t)(desc_len / UNMAP_DESC_LEN);
    if (*count > SCSI_MAX_UNMAP_DESCS) {
        scsi_invalid_field(st, false, 2, -1);
        return false;
    }
    return true;
}

/* The descriptors: all in range, within the LBA count limit; those of zero
 * blocks dropped. Fills descs, sets *used. */
static bool unmap_descriptors(const struct scsi_lu *lu, const uint8_t *p,
                              uint32_t count, spd_unmap_desc *descs,
                              uint32_t *used, spd_status *st)
{
    uint64_t capacity = lu->params->block_count, total = 0;
    *used = 0;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *d = p + UNMAP_HEADER_LEN + (size_t)i * UNMAP_DESC_LEN;
        uint64_t lba = get_be64(d);
        uint32_t blocks = get_be32(d + 8);
        if (blocks == 0)
            continue;
        if (lba >= capacity || blocks > capacity - lba)
            return list_error(st, SPD_ASC_LBA_OUT_OF_RANGE);
        total += blocks;
        descs[(*used)++] = (spd_unmap_desc){ .lba = lba, .blocks = blocks };
    }
    if (total > SCSI_MAX_UNMAP_LBAS) {
        scsi_invalid_field(st, false, UNMAP_HEADER_LEN + 8, -1);
        return false;
    }
    return true;
}

enum scsi_action sbc_unmap(struct scsi_lu *lu, struct scsi_task *task,
                           const struct scsi_args *a)
{
    size_t len = a->count < task->data_len ? a->count : task->data_len;
    uint32_t count, used;

    if (a->count == 0)      /* SBC-3: not an error */
        return SCSI_DONE;
    if (!unmap_header(task->data, len, &count, &task->status) || !count)
        return SCSI_DONE;
    spd_unmap_desc *descs = malloc(count * sizeof *descs);
    if (!(task->owned = descs))
        return no_memory(task);
    if (!unmap_descriptors(lu, task->data, count, descs, &used,
                           &task->status) || !used)
        return SCSI_DONE;
    task->io = (spd_request){ SPD_REQUEST_INIT, .op = SPD_OP_UNMAP, .descs = descs,
                              .desc_count = used };
    return SCSI_IO;
}

/* ------------------------------------------------------------------ */
/* READ CAPACITY (10), (16) (SBC-3)                                     */
/* ------------------------------------------------------------------ */

/* PMI 0 (the only meaningful case: no delays anywhere) needs LBA 0. */
bool sbc_read_capacity_check(const struct scsi_lu *lu, struct scsi_args *a,
                             spd_status *st)
{
    (void)lu;
    bool pmi = a->cdb[a->row->cdb_len - 2] & 0x01;
    if (!pmi && a->lba != 0) {
        scsi_invalid_field(st, true, a->row->lba.off, -1);
        return false;
    }
    return true;
}

enum scsi_action sbc_read_capacity10(struct scsi_lu *lu,
                                     struct scsi_task *task,
                                     const struct scsi_args *a)
{
    (void)a;
    uint64_t last = lu->params->block_count - 1;
    uint8_t buf[8];
    /* FFFFFFFFh: use READ CAPACITY(16). */
    put_be32(buf, last > 0xfffffffe ? 0xffffffff : (uint32_t)last);
    put_be32(buf + 4, lu->params->block_length);
    return scsi_reply(task, buf, sizeof buf, sizeof buf);
}

enum scsi_action sbc_read_capacity16(struct scsi_lu *lu,
                                     struct scsi_task *task,
                                     const struct scsi_args *a)
{
    const spd_params *p = lu->params;
    uint8_t buf[32] = { 0 };
    put_be64(buf, p->block_count - 1);
    put_be32(buf + 8, p->block_length);
    /* No protection; 2^LBPPBE logical blocks per physical block, the first
     * aligned at LBA 0. */
    if (p->physical_block_length > p->block_length)
        buf[13] = (uint8_t)__builtin_ctz(p->physical_block_length /
                                         p->block_length);
    buf[14] = (uint8_t)((p->unmap_supported ? 0x80 : 0) |      /* LBPME */
                        (p->unmap_reads_zero ? 0x40 : 0));     /* LBPRZ */
    return scsi_reply(task, buf, sizeof buf, a->count);
}

/* ------------------------------------------------------------------ */
/* READ DEFECT DATA (10), (12) (SBC-3)                                  */
/* ------------------------------------------------------------------ */

/* No defects: a header for the format asked, the lists neither given
 * (PLISTV, GLISTV 0) nor long. */
enum scsi_action sbc_read_defect_data(struct scsi_lu *lu,
                                      struct scsi_task *task,
                                      const struct scsi_args *a)
{
    (void)lu;
    bool twelve = a->row->cdb_len == 12;
    uint8_t buf[8] = { 0 };
    buf[1] = a->cdb[twelve ? 1 : 2] & 0x07;     /* DEFECT LIST FORMAT */
    return scsi_reply(task, buf, twelve ? 8 : 4, a->count);
}

/* ------------------------------------------------------------------ */
/* GET LBA STATUS (SBC-3)                                               */
/* ------------------------------------------------------------------ */

#define GLS_HEADER_LEN 8
#define GLS_DESC_LEN   16
#define GLS_MAPPED      0x0     /* PROVISIONING STATUS: mapped */
#define GLS_DEALLOCATED 0x1     /* PROVISIONING STATUS: deallocated */

/* The STARTING LOGICAL BLOCK ADDRESS must lie within the medium. */
bool sbc_get_lba_status_check(const struct scsi_lu *lu, struct scsi_args *a,
                              spd_status *st)
{
    if (a->lba >= lu->params->block_count) {
        scsi_illegal(st, SPD_ASC_LBA_OUT_OF_RANGE);
        return false;
    }
    return true;
}

/* Descriptors that fit the allocation length (and the reply buffer), at
 * least one; the allocation length then truncates the answer. */
static size_t gls_fit(uint64_t alloc)
{
    size_t max = (SCSI_REPLY_MAX - GLS_HEADER_LEN) / GLS_DESC_LEN;
    uint64_t fit = alloc > GLS_HEADER_LEN
                       ? (alloc - GLS_HEADER_LEN) / GLS_DESC_LEN : 0;
    return fit < 1 ? 1 : fit > max ? max : (size_t)fit;
}

/* The allocation status from the starting LBA to the end of the medium,
 * asked of the unit core as an EXTENTS request (which bounds the device
 * calls it costs); gls_answer() formats it. */
enum scsi_action sbc_get_lba_status(struct scsi_lu *lu,
                                    struct scsi_task *task,
                                    const struct scsi_args *a)
{
    size_t fit = gls_fit(a->count);
    spd_extent *extents = task->owned = malloc(fit * sizeof *extents);
    if (!extents)
        return no_memory(task);
    task->alloc = a->count;
    task->io = (spd_request){ SPD_REQUEST_INIT,
        .op = SPD_OP_EXTENTS, .lba = a->lba,
        .blocks = lu->params->block_count - a->lba,
        .extents = extents, .extent_max = (uint32_t)fit,
    };
    return SCSI_IO;
}

/* LBA status descriptors from the extents; a run longer than a
 * descriptor holds (UINT32_MAX blocks) takes several. */
static void gls_answer(struct scsi_task *task)
{
    const spd_request *req = &task->io;
    uint8_t buf[SCSI_REPLY_MAX];
    size_t fit = gls_fit(task->alloc), n = 0;
    uint64_t lba = req->lba;

    memset(buf, 0, GLS_HEADER_LEN);
    for (uint32_t i = 0; i < req->extent_count && n < fit; i++) {
        uint64_t left = req->extents[i].blocks;
        while (left && n < fit) {
            uint32_t run = left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
            uint8_t *d = buf + GLS_HEADER_LEN + n++ * GLS_DESC_LEN;
            memset(d, 0, GLS_DESC_LEN);
            put_be64(d, lba);
            put_be32(d + 8, run);
            d[12] = req->extents[i].mapped ? GLS_MAPPED : GLS_DEALLOCATED;
            lba += run;
            left -= run;
        }
    }
    size_t len = GLS_HEADER_LEN + n * GLS_DESC_LEN;
    put_be32(buf, (uint32_t)(len - 4));     /* PARAMETER DATA LENGTH */
    scsi_reply(task, buf, len, (uint32_t)task->alloc);
}

/* ------------------------------------------------------------------ */
/* COMPARE AND WRITE, ORWRITE (SBC-3)                                   */
/* ------------------------------------------------------------------ */

/* NUMBER OF LOGICAL BLOCKS up to the MAXIMUM COMPARE AND WRITE LENGTH of
 * VPD B0h; 0 is not an error and does nothing. */
bool sbc_caw_check(const struct scsi_lu *lu, struct scsi_args *a,
                   spd_status *st)
{
    (void)lu;
    if (!protect_zero(a, st))
        return false;
    if (a->blocks > SCSI_MAX_CAW_BLOCKS) {
        scsi_invalid_field(st, true, 13, -1);
        return false;
    }
    a->fua = a->cdb[1] & 0x08;
    return true;
}

static enum scsi_action sbc_rmw_start(struct scsi_lu *lu,
                                      struct scsi_task *task,
                                      const struct scsi_args *a,
                                      enum scsi_rmw rmw);

/* The data-out holds the verify data, then the write data. The blocks
 * are read and compared (scsi_io_done), then written (scsi_io_again);
 * the core holds them against every other write across both. */
enum scsi_action sbc_caw(struct scsi_lu *lu, struct scsi_task *task,
                         const struct scsi_args *a)
{
    return sbc_rmw_start(lu, task, a, RMW_COMPARE);
}

/* ORWRITE(16) (SBC-3), BMOP 0: the blocks become their OR with the
 * data-out. */
enum scsi_action sbc_orwrite(struct scsi_lu *lu, struct scsi_task *task,
                             const struct scsi_args *a)
{
    return sbc_rmw_start(lu, task, a, RMW_OR);
}

/* Start a read-modify-write with the read of the blocks into a buffer of
 * the engine's. */
static enum scsi_action sbc_rmw_start(struct scsi_lu *lu,
                                      struct scsi_task *task,
                                      const struct scsi_args *a,
                                      enum scsi_rmw rmw)
{
    (void)lu;
    if (a->blocks == 0)
        return SCSI_DONE;
    if (task->data_len < a->length) {
        scsi_invalid_field(&task->status, true, a->row->count.off, -1);
        return SCSI_DONE;
    }
    size_t len = (size_t)a->blocks * lu->params->block_length;
    void *buf = task->owned = malloc(len);
    if (!buf)
        return no_memory(task);
    task->rmw = (uint8_t)rmw;
    task->io = (spd_request){ SPD_REQUEST_INIT,
        .op = SPD_OP_READ, .fua = a->fua, .lba = a->lba, .blocks = a->blocks,
        .buf = buf,
    };
    return SCSI_IO;
}

/* ------------------------------------------------------------------ */
/* SANITIZE (SBC-3)                                                     */
/* ------------------------------------------------------------------ */

/* BLOCK ERASE and EXIT FAILURE MODE take no parameter list. */
bool sbc_sanitize_check(const struct scsi_lu *lu, struct scsi_args *a,
                        spd_status *st)
{
    (void)lu;
    if (a->count != 0) {
        scsi_invalid_field(st, true, 7, -1);
        return false;
    }
    return true;
}

/*
 * SBC-3 "Sanitize operations": while a sanitize runs, only the commands a
 * port in the unavailable state runs (INQUIRY, REPORT LUNS, REQUEST
 * SENSE, ...: the same list) run; the others end NOT READY, SANITIZE IN
 * PROGRESS. After one failed, medium access ends MEDIUM ERROR, SANITIZE
 * COMMAND FAILED until a sanitize succeeds or EXIT FAILURE MODE.
 */
bool scsi_sanitize_allows(const struct scsi_lu *lu, const struct scsi_row *row,
                          spd_status *st)
{
    uint8_t state = atomic_load(&lu->sanitize);
    if (state == SANITIZE_RUNNING && !(row->flags & ROW_UNAVAILABLE)) {
        scsi_sense_set(st, SPD_KEY_NOT_READY, SPD_ASC_SANITIZE_IN_PROGRESS);
        return false;
    }
    if (state == SANITIZE_FAILED && (row->flags & ROW_MEDIUM)) {
        scsi_sense_set(st, SPD_KEY_MEDIUM_ERROR,
                       SPD_ASC_SANITIZE_COMMAND_FAILED);
        return false;
    }
    return true;
}

/* A sanitize starts (one at a time: a second that got past the gate
 * meanwhile is refused) and runs io over the whole unit. */
static enum scsi_action sanitize_start(struct scsi_lu *lu,
                                       struct scsi_task *task)
{
    uint8_t state = atomic_load(&lu->sanitize);
    do {
        if (state == SANITIZE_RUNNING) {
            scsi_sense_set(&task->status, SPD_KEY_NOT_READY,
                           SPD_ASC_SANITIZE_IN_PROGRESS);
            return SCSI_DONE;
        }
    } while (!atomic_compare_exchange_weak(&lu->sanitize, &state,
                                           SANITIZE_RUNNING));
    task->sanitize = true;
    return SCSI_IO;
}

enum scsi_action sbc_exit_failure_mode(struct scsi_lu *lu,
                                       struct scsi_task *task,
                                       const struct scsi_args *a)
{
    (void)task, (void)a;
    uint8_t failed = SANITIZE_FAILED;
    atomic_compare_exchange_strong(&lu->sanitize, &failed, SANITIZE_NONE);
    return SCSI_DONE;
}

/* OVERWRITE: a parameter list of the 4-byte header and a pattern of 1 to
 * block length bytes. */
bool sbc_overwrite_check(const struct scsi_lu *lu, struct scsi_args *a,
                         spd_status *st)
{
    if (a->count <= 4 || a->count > lu->params->block_length + 4) {
        scsi_invalid_field(st, true, 7, -1);
        return false;
    }
    return true;
}

/* OVERWRITE: every block written with the pattern, repeated to fill it.
 * The device gets the last pass only (inverted when INVERT and the count
 * is even): earlier passes over a logical block reach no other medium
 * than the last one does, so they would only take longer. */
enum scsi_action sbc_overwrite(struct scsi_lu *lu, struct scsi_task *task,
                               const struct scsi_args *a)
{
    const uint8_t *p = task->data;
    uint32_t bl = lu->params->block_length;
    if (task->data_len < 4) {
        scsi_illegal(&task->status, SPD_ASC_PARAMETER_LIST_LENGTH_ERROR);
        return SCSI_DONE;
    }
    uint8_t passes = p[0] & 0x1f;
    uint16_t len = get_be16(p + 2);
    if ((p[0] & 0x60) || !passes) {     /* TEST, OVERWRITE COUNT */
        scsi_invalid_field(&task->status, false, 0, -1);
        return SCSI_DONE;
    }
    if (!len || len > bl || len + 4u > a->count) {
        scsi_invalid_field(&task->status, false, 2, -1);
        return SCSI_DONE;
    }
    uint8_t *block = task->owned = malloc(bl);
    if (!block)
        return no_memory(task);
    bool invert = (p[0] & 0x80) && passes % 2 == 0;
    for (uint32_t i = 0; i < bl; i++)
        block[i] = (uint8_t)(p[4 + i % len] ^ (invert ? 0xff : 0));
    task->io = (spd_request){ SPD_REQUEST_INIT,
        .op = SPD_OP_WRITE_SAME, .lba = 0,
        .blocks = lu->params->block_count, .buf = block,
    };
    return sanitize_start(lu, task);
}

/* BLOCK ERASE: every block unmapped (zeroed where unmapped blocks do not
 * read as zeros); IMMED is accepted and the erase still waited for. */
enum scsi_action sbc_sanitize(struct scsi_lu *lu, struct scsi_task *task,
                              const struct scsi_args *a)
{
    (void)a;
    task->io = (spd_request){ SPD_REQUEST_INIT,
        .op = SPD_OP_WRITE_ZEROES, .lba = 0,
        .blocks = lu->params->block_count, .flags = SPD_REQ_MAY_UNMAP,
    };
    return sanitize_start(lu, task);
}
