/*
 * unit_scsi.c - SCSI commands on a unit: the engine decodes the CDB, the
 * unit core runs the block request it asks for, the engine finishes the
 * status, and the sense is built in the format the unit has chosen.
 */
#include <stdlib.h>
#include <string.h>

#include "spd/scsi.h"
#include "core/unit.h"

/* One command between the engine and the core. */
struct scsi_run {
    struct scsi_task task;
    spd_scsi_cmd *cmd;
    spd_unit *unit;
};

static void cmd_finish(spd_unit *unit, spd_scsi_cmd *cmd)
{
    cmd->scsi_status = cmd->status.scsi_status;
    cmd->sense_len = scsi_sense_build(&cmd->status, unit->lu.d_sense,
                                      cmd->sense, sizeof cmd->sense);
    log_scsi(unit, cmd);
    cmd->done(cmd);
}

static void run_complete(struct scsi_run *run)
{
    spd_unit *unit = run->unit;
    spd_scsi_cmd *cmd = run->cmd;

    cmd->status = run->task.status;
    cmd->data_in_len = run->task.data_in_len;
    scsi_task_fini(&run->task);
    free(run);
    cmd_finish(unit, cmd);
    unit_end(unit);
}

static void run_io_done(spd_request *req)
{
    struct scsi_run *run = req->opaque;
    scsi_io_done(&run->unit->lu, &run->task);
    run_complete(run);
}

void spd_unit_scsi(spd_unit *unit, spd_scsi_cmd *cmd)
{
    cmd->status = (spd_status){ 0 };
    cmd->data_in_len = 0;
    if (cmd->size < sizeof *cmd) {
        /* Built against other headers (see SPD_SCSI_CMD_INIT). */
        spd_status_set_sense(&cmd->status, SPD_KEY_ILLEGAL_REQUEST,
                             SPD_ASC(SPD_ASC_INVALID_FIELD_IN_CDB),
                             SPD_ASCQ(SPD_ASC_INVALID_FIELD_IN_CDB));
        cmd_finish(unit, cmd);
        return;
    }
    if (!unit_begin(unit)) {
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
        unit_end(unit);
        return;
    }
    run->cmd = cmd;
    run->unit = unit;
    run->task.cdb = cmd->cdb;
    run->task.cdb_len = cmd->cdb_len < SPD_CDB_MAX ? cmd->cdb_len : SPD_CDB_MAX;
    run->task.data = cmd->data;
    run->task.data_len = cmd->data ? cmd->data_len : 0;

    if (scsi_execute(&unit->lu, &run->task) == SCSI_DONE) {
        run_complete(run);
        return;
    }
    run->task.io.done = run_io_done;
    run->task.io.opaque = run;
    spd_unit_submit(unit, &run->task.io);
}

int spd_unit_scsi_plan(spd_unit *unit, const uint8_t *cdb, uint8_t cdb_len,
                       spd_data_dir *dir, uint32_t *length,
                       spd_status *status)
{
    *status = (spd_status){ 0 };
    return scsi_plan(&unit->lu, cdb,
                     cdb_len < SPD_CDB_MAX ? cdb_len : SPD_CDB_MAX, dir,
                     length, status);
}
