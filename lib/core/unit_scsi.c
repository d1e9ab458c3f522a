/*
 * unit_scsi.c - SCSI commands on a unit: the engine decodes the CDB (once:
 * a planned command keeps its decoding), the unit core runs the block
 * request it asks for, the engine finishes the status, and the sense is
 * built in the format the unit has chosen.
 */
#include <stdlib.h>
#include <string.h>

#include "spd/scsi.h"
#include "core/byteio.h"
#include "core/unit.h"

/* One command between the engine and the core. */
struct scsi_run {
    struct scsi_task task;
    spd_scsi_cmd *cmd;
    spd_unit *unit;
    struct byteio_hold hold;    /* the blocks a write holds, when held */
    bool held;
};

_Static_assert(sizeof ((spd_scsi_cmd *)0)->plan_state >= SCSI_STATE_SIZE,
               "spd_scsi_cmd.plan_state too small");

/* The engine's logical unit for a command: a missing LUN has a stand-in. */
static struct scsi_lu *cmd_lu(spd_unit *unit)
{
    return unit ? &unit->lu : scsi_absent_lu();
}

void spd_scsi_cmd_set_status(spd_unit *unit, spd_scsi_cmd *cmd,
                             const spd_status *status)
{
    cmd->status = *status;
    cmd->scsi_status = status->scsi_status;
    cmd->data_in_len = 0;
    cmd->sense_len = scsi_sense_build(status, scsi_lu_d_sense(cmd_lu(unit)),
                                      cmd->sense, sizeof cmd->sense);
}

static void cmd_finish(spd_unit *unit, spd_scsi_cmd *cmd)
{
    cmd->scsi_status = cmd->status.scsi_status;
    cmd->sense_len = scsi_sense_build(&cmd->status,
                                      scsi_lu_d_sense(cmd_lu(unit)),
                                      cmd->sense, sizeof cmd->sense);
    if (unit)
        log_scsi(unit, cmd);
    cmd->done(cmd);
}

static void run_complete(struct scsi_run *run)
{
    spd_unit *unit = run->unit;
    spd_scsi_cmd *cmd = run->cmd;

    cmd->status = run->task.status;
    cmd->data_in_len = run->task.data_in_len;
    if (run->held)
        byteio_release(unit, &run->hold);
    scsi_task_fini(&run->task);
    free(run);
    cmd_finish(unit, cmd);
    if (unit)
        unit_end(unit);
}

/* The blocks a request writes, as one range: UNMAP's descriptors by the
 * span they cover. */
static bool io_writes(const spd_request *io, uint64_t *lba, uint64_t *blocks)
{
    switch (io->op) {
    case SPD_OP_WRITE:
    case SPD_OP_WRITE_ZEROES:
    case SPD_OP_WRITE_SAME:
        *lba = io->lba;
        *blocks = io->blocks;
        return true;
    case SPD_OP_UNMAP: {
        uint64_t lo = UINT64_MAX, hi = 0;
        for (uint32_t i = 0; i < io->desc_count; i++) {
            const spd_unmap_desc *d = &io->descs[i];
            lo = d->lba < lo ? d->lba : lo;
            hi = d->lba + d->blocks > hi ? d->lba + d->blocks : hi;
        }
        *lba = lo;
        *blocks = hi > lo ? hi - lo : 0;
        return hi > lo;
    }
    default:
        return false;
    }
}

/* SBC-3 COMPARE AND WRITE (and ORWRITE) is atomic: it holds its blocks
 * alone from the read to the end of the write, and every write of a SCSI
 * command holds its blocks shared (EXTENDED COPY: all it will write, from
 * the start), so none lands between the read and the write.
 * (Byte-granular writes, spd_unit_pwrite(), hold theirs too.) Holds are
 * taken here, on the submitting thread, never in a completion. */
static void run_hold(struct scsi_run *run)
{
    uint64_t lba, blocks;
    const struct scsi_task *t = &run->task;
    if (t->rmw == RMW_COMPARE || t->rmw == RMW_OR) {
        byteio_hold(run->unit, &run->hold, t->io.lba, t->io.blocks, true);
        run->held = true;
    } else if (t->rmw == RMW_COPY ? scsi_copy_span(t, &lba, &blocks)
                                  : io_writes(&t->io, &lba, &blocks)) {
        byteio_hold(run->unit, &run->hold, lba, blocks, false);
        run->held = true;
    }
}

static void run_io_done(spd_request *req)
{
    struct scsi_run *run = req->opaque;
    scsi_io_done(&run->unit->lu, &run->task);
    if (scsi_io_again(&run->unit->lu, &run->task)) {
        run->task.io.done = run_io_done;
        run->task.io.opaque = run;
        spd_unit_submit(run->unit, &run->task.io);
        return;
    }
    run_complete(run);
}

/* A plan that failed: the command ends as planned. */
static bool plan_failed(const spd_scsi_cmd *cmd)
{
    return cmd->planned && !spd_status_good(&cmd->status);
}

void spd_unit_scsi(spd_unit *unit, spd_scsi_cmd *cmd)
{
    cmd->data_in_len = 0;
    if (cmd->size < sizeof *cmd) {
        /* Built against other headers (see SPD_SCSI_CMD_INIT). */
        spd_status_set_sense(&cmd->status, SPD_KEY_ILLEGAL_REQUEST,
                             SPD_ASC(SPD_ASC_INVALID_FIELD_IN_CDB),
                             SPD_ASCQ(SPD_ASC_INVALID_FIELD_IN_CDB));
        cmd_finish(unit, cmd);
        return;
    }
    if (plan_failed(cmd)) {
        cmd_finish(unit, cmd);
        return;
    }
    cmd->status = (spd_status){ 0 };
    if (!unit && !cmd->planned) {
        /* Only a plan knows what a missing LUN answers. */
        spd_status_set_sense(&cmd->status, SPD_KEY_ILLEGAL_REQUEST,
                             SPD_ASC(SPD_ASC_LOGICAL_UNIT_NOT_SUPPORTED),
                             SPD_ASCQ(SPD_ASC_LOGICAL_UNIT_NOT_SUPPORTED));
        cmd_finish(unit, cmd);
        return;
    }
    if (unit && !unit_begin(unit)) {
        unit_not_ready(&cmd->status);
        cmd_finish(unit, cmd);
        return;
    }
    struct scsi_run *run = calloc(1, sizeof *run);
    if (!run) {
        spd_status_set_sense(&cmd->status, SPD_KEY_HARDWARE_ERROR,
                             SPD_ASC(SPD_ASC_INTERNAL_TARGET_FAILURE),
                             SPD_ASCQ(SPD_ASC_INTERNAL_TARGET_FAILURE));
        cmd_finish(unit, cmd);
        if (unit)
            unit_end(unit);
        return;
    }
    run->cmd = cmd;
    run->unit = unit;
    run->task.cdb = cmd->cdb;
    run->task.cdb_len = cmd->cdb_len < SPD_CDB_MAX ? cmd->cdb_len : SPD_CDB_MAX;
    run->task.data = cmd->data;
    run->task.data_len = cmd->data ? cmd->data_len : 0;
    run->task.luns = cmd->luns;
    run->task.lun_count = cmd->lun_count;
    run->task.nexus = cmd->nexus;

    struct scsi_lu *lu = cmd_lu(unit);
    enum scsi_action action =
        cmd->planned ? scsi_execute_planned(lu, &run->task, cmd->plan_state)
                     : scsi_execute(lu, &run->task);
    /* A missing LUN's answers are immediate. */
    if (action == SCSI_DONE || !unit) {
        run_complete(run);
        return;
    }
    run_hold(run);
    run->task.io.done = run_io_done;
    run->task.io.opaque = run;
    spd_unit_submit(unit, &run->task.io);
}

void spd_unit_scsi_nexus_lost(spd_unit *unit, const spd_scsi_nexus *nexus)
{
    if (unit && nexus)
        scsi_nexus_lost(&unit->lu, nexus);
}

void spd_unit_scsi_reset(spd_unit *unit)
{
    if (unit)
        scsi_lu_reset(&unit->lu);
}

int spd_unit_scsi_plan(spd_unit *unit, spd_scsi_cmd *cmd, uint32_t data_out)
{
    struct scsi_plan plan;
    uint8_t cdb_len = cmd->cdb_len < SPD_CDB_MAX ? cmd->cdb_len : SPD_CDB_MAX;

    if (cmd->size < sizeof *cmd)
        return SPD_CHECK;
    cmd->planned = true;
    cmd->status = (spd_status){ 0 };
    int r = scsi_plan(cmd_lu(unit), cmd->nexus, cmd->cdb, cdb_len, data_out,
                      cmd->luns ? cmd->lun_count : 0, &plan, cmd->plan_state,
                      &cmd->status);
    cmd->dir = plan.dir;
    cmd->transfer_length = plan.transfer_length;
    cmd->buffer_length = plan.buffer_length;
    if (r)
        spd_scsi_cmd_set_status(unit, cmd, &cmd->status);
    return r;
}
