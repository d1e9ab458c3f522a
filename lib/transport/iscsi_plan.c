/*
 * iscsi_plan.c - what a SCSI command will do, decided before any data
 * moves: which logical unit it is for (SAM LUN addressing), then the
 * engine's plan with the target's LUN list and the Data-Out the initiator
 * announced: direction, length, the buffer it needs, or its failure. The
 * engine answers REPORT LUNS and the commands for a LUN that does not
 * exist.
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

/* ------------------------------------------------------------------ */
/* Planning a command                                                  */
/* ------------------------------------------------------------------ */

void iscsi_plan_command(struct iscsi_conn *conn, spd_scsi_cmd *cmd,
                        const uint8_t *lun_field, uint32_t edtl_out,
                        struct iscsi_plan *p)
{
    const struct iscsi_node *node = conn->node;
    unsigned lun;
    *p = (struct iscsi_plan){ 0 };
    if (iscsi_lun_decode(lun_field, &lun))
        p->lu = iscsi_find_lu(node, lun);
    p->unit = p->lu ? p->lu->unit : NULL;
    cmd->luns = node->lus;
    cmd->lun_count = node->lu_count;
    if (spd_unit_scsi_plan(p->unit, cmd, edtl_out)) {
        p->failed = true;
        return;
    }
    if (cmd->buffer_length > ISCSI_MAX_TRANSFER) {
        spd_status st;
        spd_status_set_sense(&st, SPD_KEY_ILLEGAL_REQUEST,
                             SPD_ASC(SPD_ASC_INVALID_FIELD_IN_CDB),
                             SPD_ASCQ(SPD_ASC_INVALID_FIELD_IN_CDB));
        spd_scsi_cmd_set_status(p->unit, cmd, &st);
        p->failed = true;
        return;
    }
    p->dir = cmd->dir;
    p->spdtl = cmd->transfer_length;
    p->buf_len = cmd->buffer_length;
    p->need = p->dir == SPD_DIR_OUT ? p->buf_len : 0;
}
