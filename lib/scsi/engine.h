/*
 * engine.h - the SCSI block command engine (SPC-4 / SBC-3 subset), inside
 * libspd.
 *
 * Pure code: a CDB and data in; either an immediate answer (data-in bytes,
 * status, sense) or one block request for the unit core to run. No
 * threads, no I/O, so it is tested exhaustively in-process.
 */
#ifndef SPD_SCSI_ENGINE_H
#define SPD_SCSI_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "spd/scsi.h"
#include "spd/spd.h"

/* What the engine knows of the logical unit. */
struct scsi_lu {
    const spd_params *params;          /* validated */
    uint32_t max_transfer_blocks;      /* params->max_transfer_length / block_length */
    /* Control mode page D_SENSE: descriptor-format sense. Changeable by
     * MODE SELECT; read and written only on the caller's serialised path. */
    bool d_sense;
    /* Allocation status for GET LBA STATUS, as spd_unit_extent(): how many
     * blocks from lba (1 to blocks) share *mapped, or -errno. Called from
     * scsi_execute() on the caller's thread; NULL: every block mapped. */
    int64_t (*extent)(void *ctx, uint64_t lba, uint32_t blocks, bool *mapped);
    void *extent_ctx;
};

/* An extent callback for a unit core's scsi_lu: ctx is the spd_unit. */
int64_t scsi_unit_extent(void *ctx, uint64_t lba, uint32_t blocks,
                         bool *mapped);

enum scsi_action {
    SCSI_DONE,   /* status and data_in_len are final */
    SCSI_IO,     /* run the block request in task->io, then call scsi_io_done() */
};

struct scsi_task {
    /* In: as in spd_scsi_cmd. */
    const uint8_t *cdb;
    uint8_t  cdb_len;
    void    *data;
    uint32_t data_len;

    /* Out. */
    spd_status status;
    uint32_t data_in_len;

    /* For SCSI_IO: the request to run (done/opaque are the caller's to
     * set). Buffers point into data, or into memory the engine allocated
     * and scsi_task_fini() frees. */
    spd_request io;
    void *owned;          /* engine allocation (unmap descriptors, pattern, bounce) */
    bool compare;         /* VERIFY BYTCHK 01b: io.buf (owned) is compared
                             with data in scsi_io_done() */
};

/*
 * Direction and length in bytes a CDB will transfer. Returns 0, or
 * SPD_CHECK with *status set when the command will fail whatever the data
 * (unknown opcode, bad field, LBA out of range, write protected).
 */
int scsi_plan(const struct scsi_lu *lu, const uint8_t *cdb, uint8_t cdb_len,
              spd_data_dir *dir, uint32_t *length, spd_status *status);

/* Decode and execute a CDB (see enum scsi_action). */
enum scsi_action scsi_execute(struct scsi_lu *lu, struct scsi_task *task);

/* After a SCSI_IO request completed with task->io.status: set the task's
 * final status and data_in_len. */
void scsi_io_done(const struct scsi_lu *lu, struct scsi_task *task);

/* Free what the engine allocated for the task. */
void scsi_task_fini(struct scsi_task *task);

/* Build sense data for a status in fixed (70h) or descriptor (72h) format;
 * returns its length (0 for GOOD). */
uint8_t scsi_sense_build(const spd_status *status, bool descriptor,
                         uint8_t *buf, uint8_t cap);

/* The status for an invalid field: ILLEGAL REQUEST, INVALID FIELD IN CDB
 * (or PARAMETER LIST when in_cdb is false), with the field pointer to byte
 * and bit (bit < 0: no bit pointer). */
void scsi_invalid_field(spd_status *status, bool in_cdb, uint16_t byte, int bit);

#endif /* SPD_SCSI_ENGINE_H */
