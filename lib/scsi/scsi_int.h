/*
 * scsi_int.h - private to the SCSI engine (lib/scsi/): the opcode table's
 * row, the decoded CDB every handler works from, and the helpers shared by
 * opcodes.c (table, preamble, entry points), spc.c (SPC-4 commands), sbc.c
 * (SBC-3 commands) and sense.c.
 *
 * The flow for every CDB: scsi_decode() finds the row, checks the CDB once
 * (length, reserved bits against the row's usage mask, the row's own field
 * checks, write protection, LBA range) and fills a struct scsi_args; the
 * row's handler then builds the answer or the block request from it.
 *
 * Comments cite SPC-4 and SBC-3 by command and clause title rather than
 * number: clause numbers move between revisions.
 */
#ifndef SPD_SCSI_INT_H
#define SPD_SCSI_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/bytes.h"          /* get_be16..64, put_be16..64 */
#include "scsi/engine.h"

/* ------------------------------------------------------------------ */
/* Limits the engine advertises (VPD B0h) and enforces.                */
/* ------------------------------------------------------------------ */

#define SCSI_MAX_UNMAP_LBAS        0xffffffffu  /* per UNMAP command */
#define SCSI_MAX_UNMAP_DESCS       256u         /* per UNMAP command */
#define SCSI_MAX_WRITE_SAME_BLOCKS 0xffffffffu  /* fits spd_unmap_desc */
#define SCSI_MAX_CAW_BLOCKS        255u         /* per COMPARE AND WRITE */

/* Largest immediate answer any handler builds (REPORT SUPPORTED OPERATION
 * CODES with timeouts is the biggest). */
#define SCSI_REPLY_MAX 2048

/* ------------------------------------------------------------------ */
/* The opcode table.                                                    */
/* ------------------------------------------------------------------ */

/* Row flags. */
enum {
    ROW_SA     = 0x01,  /* byte 1 bits 4-0 hold a service action (row.sa) */
    ROW_MEDIUM = 0x02,  /* medium access: lba/count checked against capacity */
    ROW_WRITES = 0x04,  /* writes or unmaps: fails on a write-protected unit */
    ROW_UNMAP  = 0x08,  /* exists only when the unit supports unmap */
    ROW_NO_UA  = 0x10,  /* runs despite a pending unit attention */
    /* Reservations (pr.c): what another nexus's reservation forbids. */
    ROW_PR_READ  = 0x20,  /* conflicts with exclusive access types */
    ROW_PR_WRITE = 0x40,  /* conflicts with every type */
    ROW_PR_SPC2  = 0x80,  /* conflicts with another's RESERVE(6)/(10) only */
    ROW_SA_STRICT = 0x100, /* unknown service action: INVALID FIELD IN CDB */
    /* Target port groups (alua.c): what runs on a port in standby, and
     * what runs on an unavailable one (and in standby too). */
    ROW_STANDBY     = 0x200,
    ROW_UNAVAILABLE = 0x400,
};

/* How many bytes a command moves and which way (scsi_plan). */
enum scsi_xfer {
    XFER_NONE,       /* no data */
    XFER_BLOCKS,     /* args.blocks logical blocks, row.dir */
    XFER_ONE_BLOCK,  /* WRITE SAME: one block out, none with NDOB */
    XFER_ALLOC,      /* data in: the allocation length in row.count */
    XFER_PARAM,      /* data out: the parameter list length in row.count */
    XFER_FIXED,      /* data in: row.fixed_len bytes */
    XFER_COMPARE,    /* VERIFY: args.blocks blocks out when args.bytchk */
    XFER_DOUBLE,     /* COMPARE AND WRITE: twice args.blocks blocks out */
};

/* A big-endian field of a CDB: byte offset and size in bytes (0: none);
 * bits, when not 0, keeps only that many low bits (READ(6)'s 21-bit LBA). */
struct scsi_field {
    uint8_t off;
    uint8_t size;
    uint8_t bits;
};

struct scsi_args;
struct scsi_row;

/* Command-specific CDB checks, run by the preamble after the generic ones
 * (so scsi_plan sees them too): false with *st set to fail the command. May
 * adjust args (blocks, length, flags). */
typedef bool scsi_check_fn(const struct scsi_lu *lu, struct scsi_args *a,
                           spd_status *st);

/* Execute a command whose CDB passed the preamble. */
typedef enum scsi_action scsi_handler_fn(struct scsi_lu *lu,
                                         struct scsi_task *task,
                                         const struct scsi_args *a);

struct scsi_row {
    const char *name;           /* as in the standard: "READ(10)" */
    uint8_t opcode;
    uint8_t sa;                 /* service action, with ROW_SA */
    uint8_t cdb_len;
    uint16_t flags;             /* ROW_* */
    uint8_t dir;                /* spd_data_dir for XFER_BLOCKS */
    uint8_t xfer;               /* enum scsi_xfer */
    uint8_t fixed_len;          /* XFER_FIXED */
    struct scsi_field lba;      /* LOGICAL BLOCK ADDRESS */
    struct scsi_field count;    /* TRANSFER/ALLOCATION/PARAMETER LIST LENGTH
                                   or NUMBER OF LOGICAL BLOCKS */
    scsi_check_fn *check;       /* optional */
    scsi_handler_fn *handler;
    /* CDB USAGE DATA (SPC-4 REPORT SUPPORTED OPERATION CODES): byte 0 the
     * opcode, then a 1 for every bit the device server looks at. Any other
     * bit set in a CDB is rejected with INVALID FIELD IN CDB and a pointer
     * to it. */
    uint8_t usage[16];
};

/* The CDB after the preamble. */
struct scsi_args {
    const struct scsi_row *row;
    const uint8_t *cdb;         /* at least row->cdb_len bytes */
    uint64_t lba;               /* row.lba, 0 without */
    uint64_t blocks;            /* medium commands: blocks it covers */
    uint32_t count;             /* row.count as read from the CDB */
    bool fua;                   /* READ/WRITE(10/12/16) FUA bit */
    bool unmap;                 /* WRITE SAME UNMAP bit */
    bool ndob;                  /* WRITE SAME(16) NDOB bit */
    bool bytchk;                /* VERIFY BYTCHK 01b: compare data-out */
    spd_data_dir dir;           /* what scsi_plan reports */
    uint32_t length;            /* bytes, what scsi_plan reports */
};

/* The highest set bit of a nonzero byte: where a field pointer points when
 * several reserved bits are set. */
static inline int scsi_highest_bit(uint8_t v)
{
    int bit = 7;
    while (bit > 0 && !(v & (1u << bit)))
        bit--;
    return bit;
}

/* opcodes.c */
const struct scsi_row *scsi_row_find(const uint8_t *cdb, uint8_t cdb_len);
bool scsi_row_supported(const struct scsi_lu *lu, const struct scsi_row *row);
bool scsi_decode(const struct scsi_lu *lu, const uint8_t *cdb,
                 uint8_t cdb_len, struct scsi_args *a, spd_status *st);
/* Copy an immediate answer of avail bytes into task->data: at most the
 * allocation length and at most data_len bytes. Returns SCSI_DONE. */
enum scsi_action scsi_reply(struct scsi_task *task, const uint8_t *buf,
                            size_t avail, uint32_t alloc);
uint64_t scsi_field_get(const uint8_t *cdb, struct scsi_field f);

/* sense.c */
/* A check condition from a named code (enum spd_asc). */
void scsi_sense_set(spd_status *st, uint8_t key, uint16_t asc);
/* ILLEGAL REQUEST with a plain additional sense code, no field pointer. */
void scsi_illegal(spd_status *st, uint16_t asc);
/* Sense data for key/asc/ascq whatever the status (REQUEST SENSE). */
uint8_t scsi_sense_write(const spd_status *st, bool descriptor, uint8_t *buf,
                         uint8_t cap);

/* nexus.c: the slot of a nexus in lu->nexus (find: -1 when unknown;
 * slot: made when new, -1 when full); a pending unit attention taken
 * into *st (false: none); the check before every handler (false: the
 * command ends with task->status). nexus_lock held but for scsi_gate. */
int scsi_nexus_find(const struct scsi_lu *lu, const spd_scsi_nexus *id);
int scsi_nexus_slot(struct scsi_lu *lu, const spd_scsi_nexus *id);
bool scsi_ua_take(struct scsi_lu *lu, int slot, spd_status *st);
/* Whether a command of row from nexus would report a unit attention
 * (without taking it; a nexus not seen yet has power on's). */
bool scsi_ua_pending(struct scsi_lu *lu, const spd_scsi_nexus *nexus,
                     const struct scsi_row *row);
bool scsi_gate(struct scsi_lu *lu, struct scsi_task *task,
               const struct scsi_args *a);

/* pr.c: whether a reservation lets slot run the command (nexus_lock
 * held); the reservation commands. */
bool scsi_pr_allows(const struct scsi_lu *lu, int slot,
                    const struct scsi_args *a);
scsi_check_fn spc_prout_check, spc_reserve10_check;
/* pr.c: whether a TYPE is one of the reservation types Spd knows; the
 * shared state loaded again when the device said it changed (or always,
 * with force): false with *st set when it could not be (nexus_lock not
 * held). */
bool scsi_pr_type_valid(uint8_t type);
bool scsi_pr_refresh(struct scsi_lu *lu, bool force, spd_status *st);
scsi_handler_fn spc_prin, spc_prout, spc_reserve, spc_release;

/* xcopy.c: EXTENDED COPY and RECEIVE COPY RESULTS; the next request of
 * a copy (scsi_io_again); a copy's outcome kept for RECEIVE COPY
 * RESULTS (nexus_lock not held). */
scsi_handler_fn spc_xcopy, spc_rcr;
bool scsi_copy_again(struct scsi_lu *lu, struct scsi_task *task);
void scsi_copy_record(struct scsi_lu *lu, int slot, uint8_t list_id,
                      bool keep, unsigned segments, uint32_t blocks);

/* alua.c: this process's target port group (also its port's relative
 * target port identifier); whether its state lets the row run (false:
 * *st set); REPORT TARGET PORT GROUPS. */
uint16_t scsi_port_group(const spd_params *p);
bool scsi_alua_allows(const struct scsi_lu *lu, const struct scsi_row *row,
                      spd_status *st);
scsi_handler_fn spc_report_tpgs;

/* spc.c: the NAA designator of VPD 83h. */
void scsi_lu_naa(const struct scsi_lu *lu, uint8_t out[16]);

/* spc.c: the bytes INQUIRY answers for a LUN a target lacks. */
uint32_t scsi_absent_inquiry_len(const uint8_t *cdb);

/* spc.c checks and handlers. */
scsi_check_fn spc_inquiry_check, spc_mode_sense_check, spc_mode_select_check,
    spc_report_luns_check, spc_prevent_check;
scsi_handler_fn spc_good, spc_request_sense, spc_inquiry, spc_mode_sense,
    spc_mode_select, spc_report_luns;

/* opcodes.c: REPORT SUPPORTED OPERATION CODES. */
scsi_check_fn spc_rsoc_check;
scsi_handler_fn spc_rsoc;

/* sbc.c checks and handlers. */
scsi_check_fn sbc_rw_check, sbc_verify_check, sbc_write_same_check,
    sbc_read_capacity_check;
/* SBC-3 "Sanitize operations": the unit's state (scsi_lu.sanitize). */
enum scsi_sanitize { SANITIZE_NONE, SANITIZE_RUNNING, SANITIZE_FAILED };
bool scsi_sanitize_allows(const struct scsi_lu *lu, const struct scsi_row *row,
                          spd_status *st);

scsi_check_fn sbc_get_lba_status_check, sbc_caw_check, sbc_sanitize_check,
    sbc_overwrite_check, sbc_write_verify_check;
scsi_handler_fn sbc_rw, sbc_verify, sbc_write_same, sbc_sync_cache,
    sbc_unmap, sbc_read_capacity10, sbc_read_capacity16, sbc_get_lba_status,
    sbc_caw, sbc_orwrite, sbc_sanitize, sbc_overwrite, sbc_exit_failure_mode,
    sbc_read_defect_data;

#endif /* SPD_SCSI_INT_H */
