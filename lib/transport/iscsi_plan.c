/*
 * iscsi_plan.c - what a SCSI command will do, decided before any data
 * moves: which logical unit it is for (SAM LUN addressing), what its CDB
 * transfers and which way (the engine's plan), how that meets the
 * initiator's expected length (FCP-4's rules for residuals), and the few
 * answers the target gives itself: REPORT LUNS from its own list, and
 * INQUIRY or LOGICAL UNIT NOT SUPPORTED for a LUN that does not exist.
 */
#include <string.h>

#include "transport/iscsi_int.h"
#include "spd/scsi.h"

/* ------------------------------------------------------------------ */
/* LUN numbers                                                         */
/* ------------------------------------------------------------------ */

/* SAM-5 peripheral (LUN < 256) and flat (up to 16383) addressing. */
bool iscsi_lun_decode(const uint8_t *f, unsigned *lun)
{
    for (int i = 2; i < 8; i++)
        if (f[i])
            return false;
    switch (f[0] >> 6) {
    case 0:
        if (f[0] & 0x3f)
            return false;           /* a bus other than 0 */
        *lun = f[1];
        return true;
    case 1:
        *lun = (unsigned)(f[0] & 0x3f) << 8 | f[1];
        return true;
    default:
        return false;
    }
}

static void lun_encode(unsigned lun, uint8_t *f)
{
    memset(f, 0, 8);
    if (lun < 256) {
        f[1] = (uint8_t)lun;
    } else {
        f[0] = (uint8_t)(0x40 | lun >> 8);
        f[1] = (uint8_t)lun;
    }
}

/* ------------------------------------------------------------------ */
/* Planning a command                                                  */
/* ------------------------------------------------------------------ */

static void plan_fail(struct iscsi_plan *p, uint8_t key, uint8_t asc,
                      uint8_t ascq)
{
    p->failed = true;
    spd_status_set_sense(&p->status, key, asc, ascq);
    p->dir = SPD_DIR_NONE;
    p->buf_len = p->need = 0;
}

/* Where a block write keeps its TRANSFER LENGTH: offset and size. */
static bool write_length_field(const uint8_t *cdb, unsigned *off,
                               unsigned *size)
{
    switch (cdb[0]) {
    case SPD_SCSI_WRITE_6:
        *off = 4, *size = 1;
        return true;
    case SPD_SCSI_WRITE_10:
        *off = 7, *size = 2;
        return true;
    case SPD_SCSI_WRITE_12:
        *off = 6, *size = 4;
        return true;
    case SPD_SCSI_WRITE_16:
        *off = 10, *size = 4;
        return true;
    default:
        return false;
    }
}

/*
 * Less Data-Out announced than the CDB writes. FCP-4 (which iSCSI
 * follows for residuals): process the command, but without the data
 * beyond the expected length. A block write is cut down to the whole
 * blocks within it (the CDB's TRANSFER LENGTH rewritten); other commands
 * fail with INVALID FIELD IN COMMAND INFORMATION UNIT. The residual
 * (overflow) still counts from the CDB as sent.
 */
static void plan_short_write(uint8_t *cdb, uint8_t cdb_len, uint32_t edtl,
                             struct iscsi_plan *p)
{
    unsigned off, size;
    uint32_t block = spd_unit_params(p->unit)->block_length;
    uint32_t blocks = edtl / block;
    uint32_t full = p->spdtl;
    if (!write_length_field(cdb, &off, &size)) {
        p->failed = true;
        spd_status_set_sense(&p->status, SPD_KEY_ILLEGAL_REQUEST, 0x0e, 0x03);
        return;
    }
    if (!blocks) {
        p->synthetic = ISCSI_SYN_NOTHING;   /* WRITE(6) cannot even say 0 */
        return;
    }
    for (unsigned i = 0; i < size; i++)
        cdb[off + i] = (uint8_t)(blocks >> 8 * (size - 1 - i));
    spd_data_dir dir;
    if (spd_unit_scsi_plan(p->unit, cdb, cdb_len, &dir, &p->need,
                           &p->status)) {
        p->failed = true;
        return;
    }
    p->buf_len = p->need;
    p->spdtl = full;
}

void iscsi_plan_command(struct iscsi_conn *conn, uint8_t *cdb, uint8_t cdb_len,
                        const uint8_t *lun_field, uint32_t edtl_out,
                        struct iscsi_plan *p)
{
    const struct iscsi_node *node = conn->node;
    unsigned lun;
    *p = (struct iscsi_plan){ 0 };
    if (iscsi_lun_decode(lun_field, &lun))
        p->lu = iscsi_find_lu(node, lun);
    p->unit = p->lu ? p->lu->unit : NULL;
    /* A unit to check CDBs with when the LUN does not exist. */
    spd_unit *check = p->unit ? p->unit : node->lus[0].unit;

    if (cdb[0] == SPD_SCSI_REPORT_LUNS ||
        (!p->lu && cdb[0] == SPD_SCSI_INQUIRY)) {
        if (spd_unit_scsi_plan(check, cdb, cdb_len, &p->dir, &p->spdtl,
                               &p->status)) {
            p->failed = true;
            p->dir = SPD_DIR_NONE;
            return;
        }
        if (cdb[0] == SPD_SCSI_REPORT_LUNS) {
            p->synthetic = ISCSI_SYN_REPORT_LUNS;
            p->buf_len = min_u32(p->spdtl, 8 + 8 * node->lu_count);
        } else {
            p->synthetic = ISCSI_SYN_INQUIRY;
            p->buf_len = min_u32(p->spdtl, cdb[1] & 1 ? 4 : 36);
        }
        return;
    }
    if (!p->lu) {
        plan_fail(p, SPD_KEY_ILLEGAL_REQUEST,
                  SPD_ASC(SPD_ASC_LOGICAL_UNIT_NOT_SUPPORTED),
                  SPD_ASCQ(SPD_ASC_LOGICAL_UNIT_NOT_SUPPORTED));
        return;
    }
    if (spd_unit_scsi_plan(p->unit, cdb, cdb_len, &p->dir, &p->spdtl,
                           &p->status)) {
        p->failed = true;
        p->dir = SPD_DIR_NONE;
        return;
    }
    if (p->spdtl > ISCSI_MAX_TRANSFER) {
        plan_fail(p, SPD_KEY_ILLEGAL_REQUEST,
                  SPD_ASC(SPD_ASC_INVALID_FIELD_IN_CDB),
                  SPD_ASCQ(SPD_ASC_INVALID_FIELD_IN_CDB));
        return;
    }
    if (p->dir == SPD_DIR_OUT) {
        if (edtl_out < p->spdtl)
            plan_short_write(cdb, cdb_len, edtl_out, p);
        else
            p->need = p->buf_len = p->spdtl;
    } else if (p->dir == SPD_DIR_IN) {
        p->buf_len = p->spdtl;
    }
}

/* REPORT LUNS from the target's list (the engine knows only LUN 0). */
static uint32_t report_luns(const struct iscsi_node *node, const uint8_t *cdb,
                            uint8_t *buf, uint32_t cap)
{
    unsigned count = cdb[2] == 0x01 ? 0 : node->lu_count;  /* 01h: W-LUNs */
    uint8_t entry[8] = { 0 };
    uint32_t n = 0;
    put_be32(entry, 8 * count);
    for (uint32_t i = 0; i < 8 && n < cap; i++)
        buf[n++] = entry[i];
    for (unsigned l = 0; l < count; l++) {
        lun_encode(node->lus[l].lun, entry);
        for (uint32_t i = 0; i < 8 && n < cap; i++)
            buf[n++] = entry[i];
    }
    return n;
}

/* INQUIRY for a LUN that does not exist: peripheral qualifier 3 (SPC-4:
 * not capable of supporting a device on this logical unit), type 1Fh. */
static uint32_t inquiry_no_lun(const uint8_t *cdb, uint8_t *buf, uint32_t cap)
{
    uint8_t d[36] = { 0x7f };
    uint32_t len = 36;
    if (cdb[1] & 1) {
        d[1] = cdb[2];              /* the page asked for, empty */
        len = 4;
    } else {
        d[2] = 0x06;                /* SPC-4 */
        d[3] = 0x02;                /* response data format 2 */
        d[4] = 31;
        memset(d + 8, ' ', 28);
    }
    len = min_u32(len, cap);
    memcpy(buf, d, len);
    return len;
}

uint32_t iscsi_synthetic_answer(const struct iscsi_conn *conn, int synthetic,
                                const uint8_t *cdb, uint8_t *buf, uint32_t cap)
{
    switch (synthetic) {
    case ISCSI_SYN_REPORT_LUNS:
        return report_luns(conn->node, cdb, buf, cap);
    case ISCSI_SYN_INQUIRY:
        return inquiry_no_lun(cdb, buf, cap);
    default:
        return 0;
    }
}
