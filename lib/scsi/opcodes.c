/*
 * opcodes.c - the opcode table, the one place that says which commands Spd
 * implements and how their CDBs look; the preamble every CDB goes through;
 * the engine's entry points; and REPORT SUPPORTED OPERATION CODES, which
 * answers from the same table.
 */
#include <string.h>

#include "scsi/scsi_int.h"

/* Field layouts, as SBC-3 and SPC-4 place them. */
#define F(o, s) { .off = (o), .size = (s), .bits = 0 }
#define LBA6    { .off = 1, .size = 3, .bits = 21 }   /* READ(6), WRITE(6) */

/*
 * One row per operation code and service action, sorted by opcode. The
 * usage masks are the CDB USAGE DATA of SPC-4 (REPORT SUPPORTED
 * OPERATION CODES, one_command parameter data): protection fields
 * (RDPROTECT, WRPROTECT, VRPROTECT) are listed and checked by the row's
 * check function; GROUP NUMBER (no grouping function), ANCHOR (no anchored
 * LBAs) and the control byte (no NACA, no linked commands) are not, so a
 * CDB setting them fails with INVALID FIELD IN CDB.
 *
 * On a port whose target port group is in standby, only rows with
 * ROW_STANDBY or ROW_UNAVAILABLE run, on an unavailable one only those
 * with ROW_UNAVAILABLE: the commands SPC-4 lists for those states that
 * Spd has ("Standby state", "Unavailable state"), and READ CAPACITY(16)
 * in standby too, as Linux's own target allows, so that a host sizes the
 * disk on every path.
 */
/* PERSISTENT RESERVE IN and OUT: service actions, each checked; another's
 * RESERVE(6)/(10) conflicts; they run in standby. */
#define ROW_PR_COMMAND (ROW_SA | ROW_SA_STRICT | ROW_PR_SPC2 | ROW_STANDBY)

static const struct scsi_row scsi_rows[] = {
    { .name = "TEST UNIT READY", .opcode = SPD_SCSI_TEST_UNIT_READY,
      .cdb_len = 6, .flags = ROW_PR_READ, .xfer = XFER_NONE, .handler = spc_good,
      .usage = { 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 } },
    { .name = "REQUEST SENSE", .opcode = SPD_SCSI_REQUEST_SENSE,
      .cdb_len = 6, .flags = ROW_NO_UA | ROW_UNAVAILABLE, .xfer = XFER_ALLOC,
      .count = F(4, 1), .handler = spc_request_sense,
      .usage = { 0x03, 0x01, 0x00, 0x00, 0xff, 0x00 } },
    { .name = "READ(6)", .opcode = SPD_SCSI_READ_6, .cdb_len = 6,
      .flags = ROW_PR_READ | ROW_MEDIUM, .dir = SPD_DIR_IN, .xfer = XFER_BLOCKS,
      .lba = LBA6, .count = F(4, 1), .check = sbc_rw_check,
      .handler = sbc_rw,
      .usage = { 0x08, 0x1f, 0xff, 0xff, 0xff, 0x00 } },
    { .name = "WRITE(6)", .opcode = SPD_SCSI_WRITE_6, .cdb_len = 6,
      .flags = ROW_PR_WRITE | ROW_MEDIUM | ROW_WRITES, .dir = SPD_DIR_OUT,
      .xfer = XFER_BLOCKS, .lba = LBA6, .count = F(4, 1),
      .check = sbc_rw_check, .handler = sbc_rw,
      .usage = { 0x0a, 0x1f, 0xff, 0xff, 0xff, 0x00 } },
    { .name = "INQUIRY", .opcode = SPD_SCSI_INQUIRY, .cdb_len = 6,
      .flags = ROW_NO_UA | ROW_UNAVAILABLE,
      .xfer = XFER_ALLOC, .count = F(3, 2), .check = spc_inquiry_check,
      .handler = spc_inquiry,
      .usage = { 0x12, 0x01, 0xff, 0xff, 0xff, 0x00 } },
    { .name = "MODE SELECT(6)", .opcode = SPD_SCSI_MODE_SELECT_6,
      .cdb_len = 6, .flags = ROW_PR_WRITE | ROW_STANDBY, .xfer = XFER_PARAM,
      .count = F(4, 1),
      .check = spc_mode_select_check, .handler = spc_mode_select,
      .usage = { 0x15, 0x11, 0x00, 0x00, 0xff, 0x00 } },
    { .name = "RESERVE(6)", .opcode = SPD_SCSI_RESERVE_6, .cdb_len = 6,
      .xfer = XFER_NONE, .handler = spc_reserve,
      .usage = { 0x16, 0x00, 0x00, 0x00, 0x00, 0x00 } },
    { .name = "RELEASE(6)", .opcode = SPD_SCSI_RELEASE_6, .cdb_len = 6,
      .xfer = XFER_NONE, .handler = spc_release,
      .usage = { 0x17, 0x00, 0x00, 0x00, 0x00, 0x00 } },
    { .name = "MODE SENSE(6)", .opcode = SPD_SCSI_MODE_SENSE_6,
      .cdb_len = 6, .flags = ROW_PR_READ | ROW_STANDBY, .xfer = XFER_ALLOC,
      .count = F(4, 1),
      .check = spc_mode_sense_check, .handler = spc_mode_sense,
      .usage = { 0x1a, 0x08, 0xff, 0xff, 0xff, 0x00 } },
    { .name = "START STOP UNIT", .opcode = SPD_SCSI_START_STOP_UNIT,
      .cdb_len = 6, .flags = ROW_PR_READ, .xfer = XFER_NONE, .handler = spc_good,
      .usage = { 0x1b, 0x01, 0x00, 0x0f, 0xf7, 0x00 } },
    { .name = "PREVENT ALLOW MEDIUM REMOVAL",
      .opcode = SPD_SCSI_PREVENT_ALLOW, .cdb_len = 6, .flags = ROW_PR_READ, .xfer = XFER_NONE,
      .check = spc_prevent_check, .handler = spc_good,
      .usage = { 0x1e, 0x00, 0x00, 0x00, 0x03, 0x00 } },
    { .name = "READ CAPACITY(10)", .opcode = SPD_SCSI_READ_CAPACITY_10,
      .cdb_len = 10, .xfer = XFER_FIXED, .fixed_len = 8, .lba = F(2, 4),
      .check = sbc_read_capacity_check, .handler = sbc_read_capacity10,
      .usage = { 0x25, 0x00, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x01,
                 0x00 } },
    { .name = "READ(10)", .opcode = SPD_SCSI_READ_10, .cdb_len = 10,
      .flags = ROW_PR_READ | ROW_MEDIUM, .dir = SPD_DIR_IN, .xfer = XFER_BLOCKS,
      .lba = F(2, 4), .count = F(7, 2), .check = sbc_rw_check,
      .handler = sbc_rw,
      .usage = { 0x28, 0xf8, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff,
                 0x00 } },
    { .name = "WRITE(10)", .opcode = SPD_SCSI_WRITE_10, .cdb_len = 10,
      .flags = ROW_PR_WRITE | ROW_MEDIUM | ROW_WRITES, .dir = SPD_DIR_OUT,
      .xfer = XFER_BLOCKS, .lba = F(2, 4), .count = F(7, 2),
      .check = sbc_rw_check, .handler = sbc_rw,
      .usage = { 0x2a, 0xf8, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff,
                 0x00 } },
    { .name = "WRITE AND VERIFY(10)", .opcode = SPD_SCSI_WRITE_AND_VERIFY_10,
      .cdb_len = 10, .flags = ROW_MEDIUM | ROW_WRITES | ROW_PR_WRITE,
      .dir = SPD_DIR_OUT, .xfer = XFER_BLOCKS, .lba = F(2, 4),
      .count = F(7, 2), .check = sbc_write_verify_check, .handler = sbc_rw,
      .usage = { 0x2e, 0xf6, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff,
                 0x00 } },
    { .name = "VERIFY(10)", .opcode = SPD_SCSI_VERIFY_10, .cdb_len = 10,
      .flags = ROW_PR_READ | ROW_MEDIUM, .dir = SPD_DIR_OUT, .xfer = XFER_COMPARE,
      .lba = F(2, 4), .count = F(7, 2), .check = sbc_verify_check,
      .handler = sbc_verify,
      .usage = { 0x2f, 0xf6, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff,
                 0x00 } },
    { .name = "PRE-FETCH(10)", .opcode = SPD_SCSI_PRE_FETCH_10,
      .cdb_len = 10, .flags = ROW_MEDIUM | ROW_PR_READ, .xfer = XFER_NONE,
      .lba = F(2, 4), .count = F(7, 2), .handler = spc_good,
      .usage = { 0x34, 0x02, 0xff, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff,
                 0x00 } },
    { .name = "SYNCHRONIZE CACHE(10)",
      .opcode = SPD_SCSI_SYNCHRONIZE_CACHE_10, .cdb_len = 10,
      .flags = ROW_PR_WRITE | ROW_MEDIUM, .xfer = XFER_NONE, .lba = F(2, 4),
      .count = F(7, 2), .handler = sbc_sync_cache,
      .usage = { 0x35, 0x06, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff,
                 0x00 } },
    { .name = "READ DEFECT DATA(10)", .opcode = SPD_SCSI_READ_DEFECT_DATA_10,
      .cdb_len = 10, .flags = ROW_PR_READ, .xfer = XFER_ALLOC,
      .count = F(7, 2), .handler = sbc_read_defect_data,
      .usage = { 0x37, 0x00, 0x1f, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
                 0x00 } },
    { .name = "WRITE SAME(10)", .opcode = SPD_SCSI_WRITE_SAME_10,
      .cdb_len = 10, .flags = ROW_PR_WRITE | ROW_MEDIUM | ROW_WRITES,
      .xfer = XFER_ONE_BLOCK, .lba = F(2, 4), .count = F(7, 2),
      .check = sbc_write_same_check, .handler = sbc_write_same,
      .usage = { 0x41, 0xe8, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff,
                 0x00 } },
    { .name = "UNMAP", .opcode = SPD_SCSI_UNMAP, .cdb_len = 10,
      .flags = ROW_PR_WRITE | ROW_WRITES | ROW_UNMAP, .xfer = XFER_PARAM,
      .count = F(7, 2), .handler = sbc_unmap,
      .usage = { 0x42, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
                 0x00 } },
    { .name = "SANITIZE", .opcode = SPD_SCSI_SANITIZE,
      .sa = SPD_SA_SANITIZE_OVERWRITE, .cdb_len = 10,
      .flags = ROW_SA | ROW_SA_STRICT | ROW_WRITES | ROW_PR_WRITE,
      .xfer = XFER_PARAM, .count = F(7, 2), .check = sbc_overwrite_check,
      .handler = sbc_overwrite,
      .usage = { 0x48, 0xbf, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
                 0x00 } },
    { .name = "SANITIZE", .opcode = SPD_SCSI_SANITIZE,
      .sa = SPD_SA_SANITIZE_BLOCK_ERASE, .cdb_len = 10,
      .flags = ROW_SA | ROW_SA_STRICT | ROW_UNMAP | ROW_WRITES | ROW_PR_WRITE,
      .xfer = XFER_PARAM, .count = F(7, 2), .check = sbc_sanitize_check,
      .handler = sbc_sanitize,
      .usage = { 0x48, 0xbf, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
                 0x00 } },
    { .name = "SANITIZE", .opcode = SPD_SCSI_SANITIZE,
      .sa = SPD_SA_SANITIZE_EXIT_FAILURE_MODE, .cdb_len = 10,
      .flags = ROW_SA | ROW_SA_STRICT | ROW_UNMAP | ROW_WRITES | ROW_PR_WRITE,
      .xfer = XFER_PARAM, .count = F(7, 2), .check = sbc_sanitize_check,
      .handler = sbc_exit_failure_mode,
      .usage = { 0x48, 0xbf, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
                 0x00 } },
    { .name = "MODE SELECT(10)", .opcode = SPD_SCSI_MODE_SELECT_10,
      .cdb_len = 10, .flags = ROW_PR_WRITE | ROW_STANDBY, .xfer = XFER_PARAM,
      .count = F(7, 2),
      .check = spc_mode_select_check, .handler = spc_mode_select,
      .usage = { 0x55, 0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
                 0x00 } },
    { .name = "RESERVE(10)", .opcode = SPD_SCSI_RESERVE_10, .cdb_len = 10,
      .xfer = XFER_NONE, .check = spc_reserve10_check, .handler = spc_reserve,
      .usage = { 0x56, 0x12, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                 0x00 } },
    { .name = "RELEASE(10)", .opcode = SPD_SCSI_RELEASE_10, .cdb_len = 10,
      .xfer = XFER_NONE, .check = spc_reserve10_check, .handler = spc_release,
      .usage = { 0x57, 0x12, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                 0x00 } },
    { .name = "MODE SENSE(10)", .opcode = SPD_SCSI_MODE_SENSE_10,
      .cdb_len = 10, .flags = ROW_PR_READ | ROW_STANDBY, .xfer = XFER_ALLOC,
      .count = F(7, 2), .check = spc_mode_sense_check,
      .handler = spc_mode_sense,
      .usage = { 0x5a, 0x18, 0xff, 0xff, 0x00, 0x00, 0x00, 0xff, 0xff,
                 0x00 } },
    { .name = "PERSISTENT RESERVE IN", .opcode = SPD_SCSI_PERSISTENT_RESERVE_IN,
      .sa = 0, .cdb_len = 10, .flags = ROW_PR_COMMAND,
      .xfer = XFER_ALLOC, .count = F(7, 2), .handler = spc_prin,   /* READ KEYS */
      .usage = { 0x5e, 0x1f, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
                 0x00 } },
    { .name = "PERSISTENT RESERVE IN", .opcode = SPD_SCSI_PERSISTENT_RESERVE_IN,
      .sa = 1, .cdb_len = 10, .flags = ROW_PR_COMMAND,
      .xfer = XFER_ALLOC, .count = F(7, 2), .handler = spc_prin,   /* READ RESERVATION */
      .usage = { 0x5e, 0x1f, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
                 0x00 } },
    { .name = "PERSISTENT RESERVE IN", .opcode = SPD_SCSI_PERSISTENT_RESERVE_IN,
      .sa = 2, .cdb_len = 10, .flags = ROW_PR_COMMAND,
      .xfer = XFER_ALLOC, .count = F(7, 2), .handler = spc_prin,   /* REPORT CAPABILITIES */
      .usage = { 0x5e, 0x1f, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
                 0x00 } },
    { .name = "PERSISTENT RESERVE IN", .opcode = SPD_SCSI_PERSISTENT_RESERVE_IN,
      .sa = 3, .cdb_len = 10, .flags = ROW_PR_COMMAND,
      .xfer = XFER_ALLOC, .count = F(7, 2), .handler = spc_prin,   /* READ FULL STATUS */
      .usage = { 0x5e, 0x1f, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
                 0x00 } },
    { .name = "PERSISTENT RESERVE OUT", .opcode = SPD_SCSI_PERSISTENT_RESERVE_OUT,
      .sa = 0, .cdb_len = 10, .flags = ROW_PR_COMMAND,
      .xfer = XFER_PARAM, .count = F(5, 4), .check = spc_prout_check,
      .handler = spc_prout,     /* REGISTER */
      .usage = { 0x5f, 0x1f, 0xff, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
                 0x00 } },
    { .name = "PERSISTENT RESERVE OUT", .opcode = SPD_SCSI_PERSISTENT_RESERVE_OUT,
      .sa = 1, .cdb_len = 10, .flags = ROW_PR_COMMAND,
      .xfer = XFER_PARAM, .count = F(5, 4), .check = spc_prout_check,
      .handler = spc_prout,     /* RESERVE */
      .usage = { 0x5f, 0x1f, 0xff, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
                 0x00 } },
    { .name = "PERSISTENT RESERVE OUT", .opcode = SPD_SCSI_PERSISTENT_RESERVE_OUT,
      .sa = 2, .cdb_len = 10, .flags = ROW_PR_COMMAND,
      .xfer = XFER_PARAM, .count = F(5, 4), .check = spc_prout_check,
      .handler = spc_prout,     /* RELEASE */
      .usage = { 0x5f, 0x1f, 0xff, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
                 0x00 } },
    { .name = "PERSISTENT RESERVE OUT", .opcode = SPD_SCSI_PERSISTENT_RESERVE_OUT,
      .sa = 3, .cdb_len = 10, .flags = ROW_PR_COMMAND,
      .xfer = XFER_PARAM, .count = F(5, 4), .check = spc_prout_check,
      .handler = spc_prout,     /* CLEAR */
      .usage = { 0x5f, 0x1f, 0xff, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
                 0x00 } },
    { .name = "PERSISTENT RESERVE OUT", .opcode = SPD_SCSI_PERSISTENT_RESERVE_OUT,
      .sa = 4, .cdb_len = 10, .flags = ROW_PR_COMMAND,
      .xfer = XFER_PARAM, .count = F(5, 4), .check = spc_prout_check,
      .handler = spc_prout,     /* PREEMPT */
      .usage = { 0x5f, 0x1f, 0xff, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
                 0x00 } },
    { .name = "PERSISTENT RESERVE OUT", .opcode = SPD_SCSI_PERSISTENT_RESERVE_OUT,
      .sa = 5, .cdb_len = 10, .flags = ROW_PR_COMMAND,
      .xfer = XFER_PARAM, .count = F(5, 4), .check = spc_prout_check,
      .handler = spc_prout,     /* PREEMPT AND ABORT */
      .usage = { 0x5f, 0x1f, 0xff, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
                 0x00 } },
    { .name = "PERSISTENT RESERVE OUT", .opcode = SPD_SCSI_PERSISTENT_RESERVE_OUT,
      .sa = 6, .cdb_len = 10, .flags = ROW_PR_COMMAND,
      .xfer = XFER_PARAM, .count = F(5, 4), .check = spc_prout_check,
      .handler = spc_prout,     /* REGISTER AND IGNORE EXISTING KEY */
      .usage = { 0x5f, 0x1f, 0xff, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
                 0x00 } },
    { .name = "PERSISTENT RESERVE OUT", .opcode = SPD_SCSI_PERSISTENT_RESERVE_OUT,
      .sa = 7, .cdb_len = 10, .flags = ROW_PR_COMMAND,
      .xfer = XFER_PARAM, .count = F(5, 4), .check = spc_prout_check,
      .handler = spc_prout,     /* REGISTER AND MOVE */
      .usage = { 0x5f, 0x1f, 0xff, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
                 0x00 } },
    { .name = "EXTENDED COPY(LID1)", .opcode = SPD_SCSI_EXTENDED_COPY,
      .cdb_len = 16, .flags = ROW_WRITES | ROW_PR_WRITE, .xfer = XFER_PARAM,
      .count = F(10, 4), .handler = spc_xcopy,
      .usage = { 0x83, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                 0x00, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00 } },
    { .name = "RECEIVE COPY RESULTS", .opcode = SPD_SCSI_RECEIVE_COPY_RESULTS,
      .sa = SPD_SA_COPY_STATUS, .cdb_len = 16, .flags = ROW_SA,
      .xfer = XFER_ALLOC, .count = F(10, 4), .handler = spc_rcr,
      .usage = { 0x84, 0x1f, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                 0x00, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00 } },
    { .name = "RECEIVE COPY RESULTS", .opcode = SPD_SCSI_RECEIVE_COPY_RESULTS,
      .sa = SPD_SA_OPERATING_PARAMETERS, .cdb_len = 16, .flags = ROW_SA,
      .xfer = XFER_ALLOC, .count = F(10, 4), .handler = spc_rcr,
      .usage = { 0x84, 0x1f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                 0x00, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00 } },
    { .name = "READ(16)", .opcode = SPD_SCSI_READ_16, .cdb_len = 16,
      .flags = ROW_PR_READ | ROW_MEDIUM, .dir = SPD_DIR_IN, .xfer = XFER_BLOCKS,
      .lba = F(2, 8), .count = F(10, 4), .check = sbc_rw_check,
      .handler = sbc_rw,
      .usage = { 0x88, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00 } },
    { .name = "COMPARE AND WRITE", .opcode = SPD_SCSI_COMPARE_AND_WRITE,
      .cdb_len = 16, .flags = ROW_MEDIUM | ROW_WRITES | ROW_PR_WRITE,
      .dir = SPD_DIR_OUT, .xfer = XFER_DOUBLE, .lba = F(2, 8),
      .count = F(13, 1), .check = sbc_caw_check, .handler = sbc_caw,
      .usage = { 0x89, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                 0xff, 0x00, 0x00, 0x00, 0xff, 0x00, 0x00 } },
    { .name = "WRITE(16)", .opcode = SPD_SCSI_WRITE_16, .cdb_len = 16,
      .flags = ROW_PR_WRITE | ROW_MEDIUM | ROW_WRITES, .dir = SPD_DIR_OUT,
      .xfer = XFER_BLOCKS, .lba = F(2, 8), .count = F(10, 4),
      .check = sbc_rw_check, .handler = sbc_rw,
      .usage = { 0x8a, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00 } },
    { .name = "ORWRITE(16)", .opcode = SPD_SCSI_ORWRITE_16, .cdb_len = 16,
      .flags = ROW_MEDIUM | ROW_WRITES | ROW_PR_WRITE, .dir = SPD_DIR_OUT,
      .xfer = XFER_BLOCKS, .lba = F(2, 8), .count = F(10, 4),
      .check = sbc_rw_check, .handler = sbc_orwrite,
      .usage = { 0x8b, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00 } },
    { .name = "WRITE AND VERIFY(16)", .opcode = SPD_SCSI_WRITE_AND_VERIFY_16,
      .cdb_len = 16, .flags = ROW_MEDIUM | ROW_WRITES | ROW_PR_WRITE,
      .dir = SPD_DIR_OUT, .xfer = XFER_BLOCKS, .lba = F(2, 8),
      .count = F(10, 4), .check = sbc_write_verify_check, .handler = sbc_rw,
      .usage = { 0x8e, 0xf6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00 } },
    { .name = "VERIFY(16)", .opcode = SPD_SCSI_VERIFY_16, .cdb_len = 16,
      .flags = ROW_PR_READ | ROW_MEDIUM, .dir = SPD_DIR_OUT, .xfer = XFER_COMPARE,
      .lba = F(2, 8), .count = F(10, 4), .check = sbc_verify_check,
      .handler = sbc_verify,
      .usage = { 0x8f, 0xf6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00 } },
    { .name = "PRE-FETCH(16)", .opcode = SPD_SCSI_PRE_FETCH_16,
      .cdb_len = 16, .flags = ROW_MEDIUM | ROW_PR_READ, .xfer = XFER_NONE,
      .lba = F(2, 8), .count = F(10, 4), .handler = spc_good,
      .usage = { 0x90, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, 0x00 } },
    { .name = "SYNCHRONIZE CACHE(16)",
      .opcode = SPD_SCSI_SYNCHRONIZE_CACHE_16, .cdb_len = 16,
      .flags = ROW_PR_WRITE | ROW_MEDIUM, .xfer = XFER_NONE, .lba = F(2, 8),
      .count = F(10, 4), .handler = sbc_sync_cache,
      .usage = { 0x91, 0x06, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00 } },
    { .name = "WRITE SAME(16)", .opcode = SPD_SCSI_WRITE_SAME_16,
      .cdb_len = 16, .flags = ROW_PR_WRITE | ROW_MEDIUM | ROW_WRITES,
      .xfer = XFER_ONE_BLOCK, .lba = F(2, 8), .count = F(10, 4),
      .check = sbc_write_same_check, .handler = sbc_write_same,
      .usage = { 0x93, 0xe9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00 } },
    { .name = "READ CAPACITY(16)", .opcode = SPD_SCSI_SERVICE_ACTION_IN_16,
      .sa = SPD_SA_READ_CAPACITY_16, .cdb_len = 16,
      .flags = ROW_SA | ROW_STANDBY,
      .xfer = XFER_ALLOC, .lba = F(2, 8), .count = F(10, 4),
      .check = sbc_read_capacity_check, .handler = sbc_read_capacity16,
      .usage = { 0x9e, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00 } },
    { .name = "GET LBA STATUS", .opcode = SPD_SCSI_SERVICE_ACTION_IN_16,
      .sa = SPD_SA_GET_LBA_STATUS, .cdb_len = 16,
      .flags = ROW_PR_READ | ROW_SA | ROW_UNMAP, .xfer = XFER_ALLOC, .lba = F(2, 8),
      .count = F(10, 4), .check = sbc_get_lba_status_check,
      .handler = sbc_get_lba_status,
      .usage = { 0x9e, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00 } },
    { .name = "REPORT LUNS", .opcode = SPD_SCSI_REPORT_LUNS, .cdb_len = 12,
      .flags = ROW_NO_UA | ROW_UNAVAILABLE,
      .xfer = XFER_ALLOC, .count = F(6, 4), .check = spc_report_luns_check,
      .handler = spc_report_luns,
      .usage = { 0xa0, 0x00, 0xff, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
                 0xff, 0x00, 0x00 } },
    { .name = "REPORT TARGET PORT GROUPS", .opcode = SPD_SCSI_MAINTENANCE_IN,
      .sa = SPD_SA_REPORT_TARGET_PORT_GROUPS, .cdb_len = 12,
      .flags = ROW_SA | ROW_UNAVAILABLE,
      .xfer = XFER_ALLOC, .count = F(6, 4), .handler = spc_report_tpgs,
      .usage = { 0xa3, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
                 0xff, 0x00, 0x00 } },
    { .name = "REPORT SUPPORTED OPERATION CODES",
      .opcode = SPD_SCSI_MAINTENANCE_IN,
      .sa = SPD_SA_REPORT_SUPPORTED_OPCODES, .cdb_len = 12, .flags = ROW_SA,
      .xfer = XFER_ALLOC, .count = F(6, 4), .check = spc_rsoc_check,
      .handler = spc_rsoc,
      .usage = { 0xa3, 0x1f, 0x87, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                 0xff, 0x00, 0x00 } },
    { .name = "READ(12)", .opcode = SPD_SCSI_READ_12, .cdb_len = 12,
      .flags = ROW_PR_READ | ROW_MEDIUM, .dir = SPD_DIR_IN, .xfer = XFER_BLOCKS,
      .lba = F(2, 4), .count = F(6, 4), .check = sbc_rw_check,
      .handler = sbc_rw,
      .usage = { 0xa8, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                 0xff, 0x00, 0x00 } },
    { .name = "WRITE(12)", .opcode = SPD_SCSI_WRITE_12, .cdb_len = 12,
      .flags = ROW_PR_WRITE | ROW_MEDIUM | ROW_WRITES, .dir = SPD_DIR_OUT,
      .xfer = XFER_BLOCKS, .lba = F(2, 4), .count = F(6, 4),
      .check = sbc_rw_check, .handler = sbc_rw,
      .usage = { 0xaa, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                 0xff, 0x00, 0x00 } },
    { .name = "WRITE AND VERIFY(12)", .opcode = SPD_SCSI_WRITE_AND_VERIFY_12,
      .cdb_len = 12, .flags = ROW_MEDIUM | ROW_WRITES | ROW_PR_WRITE,
      .dir = SPD_DIR_OUT, .xfer = XFER_BLOCKS, .lba = F(2, 4),
      .count = F(6, 4), .check = sbc_write_verify_check, .handler = sbc_rw,
      .usage = { 0xae, 0xf6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                 0xff, 0x00, 0x00 } },
    { .name = "VERIFY(12)", .opcode = SPD_SCSI_VERIFY_12, .cdb_len = 12,
      .flags = ROW_MEDIUM | ROW_PR_READ, .dir = SPD_DIR_OUT,
      .xfer = XFER_COMPARE, .lba = F(2, 4), .count = F(6, 4),
      .check = sbc_verify_check, .handler = sbc_verify,
      .usage = { 0xaf, 0xf6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                 0xff, 0x00, 0x00 } },
    { .name = "READ DEFECT DATA(12)", .opcode = SPD_SCSI_READ_DEFECT_DATA_12,
      .cdb_len = 12, .flags = ROW_PR_READ, .xfer = XFER_ALLOC,
      .count = F(6, 4), .handler = sbc_read_defect_data,
      .usage = { 0xb7, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                 0xff, 0x00, 0x00 } },
};

#define ROW_COUNT (sizeof scsi_rows / sizeof scsi_rows[0])

/* RSOC's answer for every row, each with its timeouts descriptor. */
#define RSOC_DESC_LEN     8
#define RSOC_TIMEOUTS_LEN 12
_Static_assert(4 + ROW_COUNT * (RSOC_DESC_LEN + RSOC_TIMEOUTS_LEN) <=
               SCSI_REPLY_MAX, "SCSI_REPLY_MAX too small for RSOC");

/* ------------------------------------------------------------------ */
/* Table lookup                                                         */
/* ------------------------------------------------------------------ */

static bool opcode_has_sa(uint8_t opcode)
{
    for (size_t i = 0; i < ROW_COUNT; i++)
        if (scsi_rows[i].opcode == opcode)
            return scsi_rows[i].flags & ROW_SA;
    return false;
}

/* An unknown service action of these opcodes is an invalid field (SPC-4
 * PERSISTENT RESERVE IN/OUT, SBC-3 SANITIZE); of the others, an invalid
 * operation code, as initiators probe for them. */
static bool opcode_sa_strict(uint8_t opcode)
{
    for (size_t i = 0; i < ROW_COUNT; i++)
        if (scsi_rows[i].opcode == opcode)
            return scsi_rows[i].flags & ROW_SA_STRICT;
    return false;
}

static bool opcode_known(uint8_t opcode)
{
    for (size_t i = 0; i < ROW_COUNT; i++)
        if (scsi_rows[i].opcode == opcode)
            return true;
    return false;
}

/* The row for an opcode and (for opcodes with them) service action. */
static const struct scsi_row *row_lookup(uint8_t opcode, uint8_t sa)
{
    for (size_t i = 0; i < ROW_COUNT; i++) {
        const struct scsi_row *row = &scsi_rows[i];
        if (row->opcode == opcode && (!(row->flags & ROW_SA) || row->sa == sa))
            return row;
    }
    return NULL;
}

const struct scsi_row *scsi_row_find(const uint8_t *cdb, uint8_t cdb_len)
{
    if (cdb_len < 1 || (opcode_has_sa(cdb[0]) && cdb_len < 2))
        return NULL;
    return row_lookup(cdb[0], cdb_len >= 2 ? cdb[1] & 0x1f : 0);
}

bool scsi_row_supported(const struct scsi_lu *lu, const struct scsi_row *row)
{
    return !(row->flags & ROW_UNMAP) || lu->params->unmap_supported;
}

const char *spd_cdb_name(const uint8_t *cdb, uint8_t cdb_len)
{
    const struct scsi_row *row = cdb ? scsi_row_find(cdb, cdb_len) : NULL;
    return row ? row->name : "UNKNOWN";
}

/* ------------------------------------------------------------------ */
/* The preamble                                                         */
/* ------------------------------------------------------------------ */

uint64_t scsi_field_get(const uint8_t *cdb, struct scsi_field f)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < f.size; i++)
        v = v << 8 | cdb[f.off + i];
    if (f.bits && f.bits < 64)
        v &= (UINT64_C(1) << f.bits) - 1;
    return v;
}

/* Bits the row's usage mask does not list (SPC-4 "Reserved": a reserved
 * bit set is an error). The opcode byte is the row's own. */
static bool check_reserved(const struct scsi_row *row, const uint8_t *cdb,
                           spd_status *st)
{
    for (uint16_t i = 1; i < row->cdb_len; i++) {
        uint8_t bad = (uint8_t)(cdb[i] & ~row->usage[i]);
        if (bad) {
            scsi_invalid_field(st, true, i, scsi_highest_bit(bad));
            return false;
        }
    }
    return true;
}

/* What scsi_plan reports: direction and byte count. */
static bool compute_transfer(const struct scsi_lu *lu, struct scsi_args *a,
                             spd_status *st)
{
    const struct scsi_row *row = a->row;
    uint64_t bytes = 0;
    spd_data_dir dir = SPD_DIR_NONE;

    switch ((enum scsi_xfer)row->xfer) {
    case XFER_NONE:
        break;
    case XFER_COMPARE:
        if (!a->bytchk)
            break;
        /* fall through */
    case XFER_BLOCKS:
    case XFER_DOUBLE:
        /* blocks < 2^32 and block_length <= 2^16: no overflow. */
        bytes = a->blocks * lu->params->block_length;
        if (row->xfer == XFER_DOUBLE)
            bytes *= 2;
        if (bytes > UINT32_MAX) {
            scsi_invalid_field(st, true, row->count.off, -1);
            return false;
        }
        dir = (spd_data_dir)row->dir;
        break;
    case XFER_ONE_BLOCK:
        bytes = a->ndob ? 0 : lu->params->block_length;
        dir = SPD_DIR_OUT;
        break;
    case XFER_ALLOC:
        bytes = a->count;
        dir = SPD_DIR_IN;
        break;
    case XFER_PARAM:
        bytes = a->count;
        dir = SPD_DIR_OUT;
        break;
    case XFER_FIXED:
        bytes = row->fixed_len;
        dir = SPD_DIR_IN;
        break;
    }
    a->length = (uint32_t)bytes;
    a->dir = bytes ? dir : SPD_DIR_NONE;
    return true;
}

/* SBC-3 "Logical blocks": an LBA range must lie within the capacity, even
 * when it is empty. */
static bool range_ok(const struct scsi_lu *lu, uint64_t lba, uint64_t blocks)
{
    uint64_t count = lu->params->block_count;
    return lba < count && blocks <= count - lba;
}

/*
 * Every CDB passes here once, in this order: operation code (and service
 * action), CDB length, reserved bits, the command's own fields, write
 * protection, LBA range; a command that fails here has no other effect.
 * The unit's state comes after (scsi_gate).
 */
bool scsi_decode(const struct scsi_lu *lu, const uint8_t *cdb,
                 uint8_t cdb_len, struct scsi_args *a, spd_status *st)
{
    *a = (struct scsi_args){ .cdb = cdb };
    const struct scsi_row *row = scsi_row_find(cdb, cdb_len);

    if (!row && cdb_len == 1 && opcode_known(cdb[0])) {
        scsi_invalid_field(st, true, 0, -1);    /* no room for the SA */
        return false;
    }
    if (!row && cdb_len >= 2 && opcode_sa_strict(cdb[0])) {
        scsi_invalid_field(st, true, 1, 4);     /* SERVICE ACTION */
        return false;
    }
    if (!row || !scsi_row_supported(lu, row)) {
        if (cdb_len == 0)
            scsi_invalid_field(st, true, 0, -1);
        else
            scsi_illegal(st, SPD_ASC_INVALID_COMMAND_OPERATION_CODE);
        return false;
    }
    if (cdb_len < row->cdb_len) {
        scsi_invalid_field(st, true, 0, -1);
        return false;
    }
    a->row = row;
    if (!check_reserved(row, cdb, st))
        return false;
    a->lba = scsi_field_get(cdb, row->lba);
    a->count = (uint32_t)scsi_field_get(cdb, row->count);
    if (row->flags & ROW_MEDIUM)
        a->blocks = a->count;
    if (row->check && !row->check(lu, a, st))
        return false;
    if (!compute_transfer(lu, a, st))
        return false;
    if ((row->flags & ROW_WRITES) &&
        (lu->params->write_protected || atomic_load(&lu->swp))) {
        scsi_sense_set(st, SPD_KEY_DATA_PROTECT, SPD_ASC_WRITE_PROTECTED);
        return false;
    }
    if ((row->flags & ROW_MEDIUM) && !range_ok(lu, a->lba, a->blocks)) {
        scsi_illegal(st, SPD_ASC_LBA_OUT_OF_RANGE);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* Entry points                                                         */
/* ------------------------------------------------------------------ */

_Static_assert(sizeof(struct scsi_args) <= SCSI_STATE_SIZE,
               "SCSI_STATE_SIZE too small for the decoded CDB");

/* FCP-4 (which iSCSI follows for residuals): with less data-out than the
 * CDB says, the command runs without the data beyond it. A block write is
 * cut down to the whole blocks within it (none: nothing is written, GOOD);
 * other commands fail. */
static bool shorten_write(const struct scsi_lu *lu, struct scsi_args *a,
                          uint32_t data_out, spd_status *st)
{
    if (a->row->xfer != XFER_BLOCKS) {
        scsi_illegal(st, SPD_ASC_INVALID_FIELD_IN_CIU);
        return false;
    }
    a->blocks = data_out / lu->params->block_length;
    a->length = (uint32_t)a->blocks * lu->params->block_length;
    return true;
}

/* The data-in room a command needs: what its answer can hold at most. */
static uint32_t data_in_room(const struct scsi_lu *lu,
                             const struct scsi_args *a, unsigned lun_count)
{
    uint32_t most = a->length;
    if (a->row->handler == spc_report_luns)
        most = 8 + 8 * (lun_count ? lun_count : 1);
    else if (lu->absent && a->row->handler == spc_inquiry)
        most = scsi_absent_inquiry_len(a->cdb);
    return most < a->length ? most : a->length;
}

int scsi_plan(struct scsi_lu *lu, const spd_scsi_nexus *nexus,
              const uint8_t *cdb, uint8_t cdb_len, uint32_t data_out,
              unsigned lun_count, struct scsi_plan *plan, void *state,
              spd_status *status)
{
    struct scsi_args a;
    *plan = (struct scsi_plan){ 0 };
    *status = (spd_status){ 0 };
    /* A LUN the target lacks answers INQUIRY and REPORT LUNS only. */
    if (lu->absent && cdb_len &&
        cdb[0] != SPD_SCSI_INQUIRY && cdb[0] != SPD_SCSI_REPORT_LUNS) {
        scsi_illegal(status, SPD_ASC_LOGICAL_UNIT_NOT_SUPPORTED);
        return SPD_CHECK;
    }
    if (!scsi_decode(lu, cdb, cdb_len, &a, status))
        return SPD_CHECK;
    /* A port's access state refuses a command before its data moves,
     * unless a unit attention comes first (scsi_gate). */
    spd_status refused = { 0 };
    if (!scsi_alua_allows(lu, a.row, &refused) &&
        !scsi_ua_pending(lu, nexus, a.row)) {
        *status = refused;
        return SPD_CHECK;
    }
    /* SBC-3 COMPARE AND WRITE: the data-out is both halves, exactly. */
    if (a.row->xfer == XFER_DOUBLE && data_out != SPD_SCSI_NO_LIMIT &&
        data_out != a.length) {
        scsi_invalid_field(status, true, a.row->count.off, -1);
        return SPD_CHECK;
    }
    /* WRITE SAME: one block (none with NDOB); more or less data-out is a
     * malformed command, not a residual (as LIO answers it). */
    if (a.row->xfer == XFER_ONE_BLOCK && data_out != SPD_SCSI_NO_LIMIT &&
        data_out != a.length) {
        scsi_illegal(status, SPD_ASC_INVALID_FIELD_IN_CIU);
        return SPD_CHECK;
    }
    plan->dir = a.dir;
    plan->transfer_length = a.length;
    if (a.dir == SPD_DIR_OUT && data_out < a.length &&
        !shorten_write(lu, &a, data_out, status)) {
        *plan = (struct scsi_plan){ 0 };
        return SPD_CHECK;
    }
    plan->buffer_length = a.dir == SPD_DIR_IN ? data_in_room(lu, &a, lun_count)
                                              : a.length;
    memcpy(state, &a, sizeof a);
    return 0;
}

static void task_start(struct scsi_task *task)
{
    task->status = (spd_status){ 0 };
    task->data_in_len = 0;
    task->io = (spd_request){ SPD_REQUEST_INIT };
    if (!task->data)
        task->data_len = 0;
}

enum scsi_action scsi_execute_planned(struct scsi_lu *lu,
                                      struct scsi_task *task,
                                      const void *state)
{
    struct scsi_args a;
    memcpy(&a, state, sizeof a);
    a.cdb = task->cdb;      /* the state may have moved with its command */
    task_start(task);
    if (!scsi_gate(lu, task, &a))
        return SCSI_DONE;
    return a.row->handler(lu, task, &a);
}

enum scsi_action scsi_execute(struct scsi_lu *lu, struct scsi_task *task)
{
    struct scsi_args a;
    task_start(task);
    if (!scsi_decode(lu, task->cdb, task->cdb_len, &a, &task->status) ||
        !scsi_gate(lu, task, &a))
        return SCSI_DONE;
    return a.row->handler(lu, task, &a);
}

enum scsi_action scsi_reply(struct scsi_task *task, const uint8_t *buf,
                            size_t avail, uint32_t alloc)
{
    size_t n = avail;
    if (n > alloc)
        n = alloc;
    if (n > task->data_len)
        n = task->data_len;
    if (n)
        memcpy(task->data, buf, n);
    task->data_in_len = (uint32_t)n;
    return SCSI_DONE;
}

/* ------------------------------------------------------------------ */
/* REPORT SUPPORTED OPERATION CODES (SPC-4)                             */
/* ------------------------------------------------------------------ */

enum {
    RSOC_ALL = 0,           /* every command */
    RSOC_ONE = 1,           /* one opcode without service actions */
    RSOC_ONE_SA = 2,        /* one opcode and service action */
    RSOC_ONE_EITHER = 3,    /* one command, service action if it has them */
};

#define RSOC_SUPPORT_NONE     0x01  /* SUPPORT 001b: not supported */
#define RSOC_SUPPORT_STANDARD 0x03  /* SUPPORT 011b: as the standard says */

bool spc_rsoc_check(const struct scsi_lu *lu, struct scsi_args *a,
                    spd_status *st)
{
    (void)lu;
    uint8_t options = a->cdb[2] & 0x07;
    uint8_t opcode = a->cdb[3];

    if (options > RSOC_ONE_EITHER) {
        scsi_invalid_field(st, true, 2, 2);
        return false;
    }
    /* SPC-4 REPORTING OPTIONS: the option must suit the opcode. */
    if ((options == RSOC_ONE && opcode_has_sa(opcode)) ||
        (options == RSOC_ONE_SA && opcode_known(opcode) &&
         !opcode_has_sa(opcode))) {
        scsi_invalid_field(st, true, 3, -1);
        return false;
    }
    return true;
}

/* Command timeouts descriptor (SPC-4): no timeouts specified. */
static size_t put_timeouts(uint8_t *p)
{
    memset(p, 0, RSOC_TIMEOUTS_LEN);
    put_be16(p, RSOC_TIMEOUTS_LEN - 2);
    return RSOC_TIMEOUTS_LEN;
}

/* All_commands parameter data (SPC-4). */
static size_t rsoc_all(const struct scsi_lu *lu, bool rctd, uint8_t *buf)
{
    size_t n = 4;
    for (size_t i = 0; i < ROW_COUNT; i++) {
        const struct scsi_row *row = &scsi_rows[i];
        if (!scsi_row_supported(lu, row))
            continue;
        uint8_t *d = buf + n;
        memset(d, 0, RSOC_DESC_LEN);
        d[0] = row->opcode;
        if (row->flags & ROW_SA)
            put_be16(d + 2, row->sa);
        d[5] = (uint8_t)((rctd ? 0x02 : 0) |            /* CTDP */
                         (row->flags & ROW_SA ? 0x01 : 0));  /* SERVACTV */
        put_be16(d + 6, row->cdb_len);
        n += RSOC_DESC_LEN;
        if (rctd)
            n += put_timeouts(buf + n);
    }
    put_be32(buf, (uint32_t)(n - 4));
    return n;
}

/* One_command parameter data (SPC-4). */
static size_t rsoc_one(const struct scsi_lu *lu, const uint8_t *cdb,
                       uint8_t *buf)
{
    bool rctd = cdb[2] & 0x80;
    uint8_t options = cdb[2] & 0x07;
    uint8_t opcode = cdb[3];
    uint16_t sa = get_be16(cdb + 4);
    const struct scsi_row *row = NULL;

    if (options == RSOC_ONE || !opcode_has_sa(opcode))
        row = row_lookup(opcode, 0);
    else if (sa <= 0x1f)
        row = row_lookup(opcode, (uint8_t)sa);

    memset(buf, 0, 4);
    if (!row || !scsi_row_supported(lu, row)) {
        buf[1] = RSOC_SUPPORT_NONE;
        return 4;
    }
    buf[1] = (uint8_t)((rctd ? 0x80 : 0) | RSOC_SUPPORT_STANDARD);
    put_be16(buf + 2, row->cdb_len);
    memcpy(buf + 4, row->usage, row->cdb_len);
    size_t n = 4 + (size_t)row->cdb_len;
    if (rctd)
        n += put_timeouts(buf + n);
    return n;
}

enum scsi_action spc_rsoc(struct scsi_lu *lu, struct scsi_task *task,
                          const struct scsi_args *a)
{
    uint8_t buf[SCSI_REPLY_MAX];
    size_t n = (a->cdb[2] & 0x07) == RSOC_ALL
                   ? rsoc_all(lu, a->cdb[2] & 0x80, buf)
                   : rsoc_one(lu, a->cdb, buf);
    return scsi_reply(task, buf, n, a->count);
}
