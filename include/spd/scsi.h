/*
 * scsi.h - SCSI names Spd uses: operation codes, sense keys and additional
 * sense codes. Devices that need a precise error use these with
 * spd_io_set_sense(); transports use them to read statuses.
 */
#ifndef SPD_SCSI_H
#define SPD_SCSI_H

#include <stddef.h>
#include <stdint.h>

/* Operation codes (SPC-4, SBC-3). */
enum spd_scsi_opcode {
    SPD_SCSI_TEST_UNIT_READY = 0x00,
    SPD_SCSI_REQUEST_SENSE = 0x03,
    SPD_SCSI_READ_6 = 0x08,
    SPD_SCSI_WRITE_6 = 0x0a,
    SPD_SCSI_INQUIRY = 0x12,
    SPD_SCSI_MODE_SELECT_6 = 0x15,
    SPD_SCSI_RESERVE_6 = 0x16,
    SPD_SCSI_RELEASE_6 = 0x17,
    SPD_SCSI_MODE_SENSE_6 = 0x1a,
    SPD_SCSI_START_STOP_UNIT = 0x1b,
    SPD_SCSI_PREVENT_ALLOW = 0x1e,
    SPD_SCSI_READ_CAPACITY_10 = 0x25,
    SPD_SCSI_READ_10 = 0x28,
    SPD_SCSI_WRITE_10 = 0x2a,
    SPD_SCSI_WRITE_AND_VERIFY_10 = 0x2e,
    SPD_SCSI_VERIFY_10 = 0x2f,
    SPD_SCSI_PRE_FETCH_10 = 0x34,
    SPD_SCSI_SYNCHRONIZE_CACHE_10 = 0x35,
    SPD_SCSI_READ_DEFECT_DATA_10 = 0x37,
    SPD_SCSI_WRITE_SAME_10 = 0x41,
    SPD_SCSI_UNMAP = 0x42,
    SPD_SCSI_SANITIZE = 0x48,
    SPD_SCSI_MODE_SELECT_10 = 0x55,
    SPD_SCSI_RESERVE_10 = 0x56,
    SPD_SCSI_RELEASE_10 = 0x57,
    SPD_SCSI_MODE_SENSE_10 = 0x5a,
    SPD_SCSI_PERSISTENT_RESERVE_IN = 0x5e,
    SPD_SCSI_PERSISTENT_RESERVE_OUT = 0x5f,
    SPD_SCSI_EXTENDED_COPY = 0x83,
    SPD_SCSI_RECEIVE_COPY_RESULTS = 0x84,
    SPD_SCSI_READ_16 = 0x88,
    SPD_SCSI_COMPARE_AND_WRITE = 0x89,
    SPD_SCSI_WRITE_16 = 0x8a,
    SPD_SCSI_ORWRITE_16 = 0x8b,
    SPD_SCSI_WRITE_AND_VERIFY_16 = 0x8e,
    SPD_SCSI_VERIFY_16 = 0x8f,
    SPD_SCSI_PRE_FETCH_16 = 0x90,
    SPD_SCSI_SYNCHRONIZE_CACHE_16 = 0x91,
    SPD_SCSI_WRITE_SAME_16 = 0x93,
    SPD_SCSI_SERVICE_ACTION_IN_16 = 0x9e,
    SPD_SCSI_REPORT_LUNS = 0xa0,
    SPD_SCSI_MAINTENANCE_IN = 0xa3,
    SPD_SCSI_READ_12 = 0xa8,
    SPD_SCSI_WRITE_12 = 0xaa,
    SPD_SCSI_WRITE_AND_VERIFY_12 = 0xae,
    SPD_SCSI_VERIFY_12 = 0xaf,
    SPD_SCSI_READ_DEFECT_DATA_12 = 0xb7,
};

/* Service actions. */
#define SPD_SA_READ_CAPACITY_16        0x10   /* of SERVICE ACTION IN(16) */
#define SPD_SA_GET_LBA_STATUS          0x12   /* of SERVICE ACTION IN(16) */
#define SPD_SA_REPORT_TARGET_PORT_GROUPS 0x0a /* of MAINTENANCE IN */
#define SPD_SA_REPORT_SUPPORTED_OPCODES 0x0c  /* of MAINTENANCE IN */
#define SPD_SA_EXTENDED_COPY_LID1      0x00   /* of EXTENDED COPY */
#define SPD_SA_COPY_STATUS             0x00   /* of RECEIVE COPY RESULTS */
#define SPD_SA_OPERATING_PARAMETERS    0x03   /* of RECEIVE COPY RESULTS */
#define SPD_SA_SANITIZE_OVERWRITE      0x01   /* of SANITIZE */
#define SPD_SA_SANITIZE_BLOCK_ERASE    0x02   /* of SANITIZE */
#define SPD_SA_SANITIZE_EXIT_FAILURE_MODE 0x1f  /* of SANITIZE */

/* Sense keys. */
enum spd_sense_key {
    SPD_KEY_NO_SENSE        = 0x0,
    SPD_KEY_RECOVERED_ERROR = 0x1,
    SPD_KEY_NOT_READY       = 0x2,
    SPD_KEY_MEDIUM_ERROR    = 0x3,
    SPD_KEY_HARDWARE_ERROR  = 0x4,
    SPD_KEY_ILLEGAL_REQUEST = 0x5,
    SPD_KEY_UNIT_ATTENTION  = 0x6,
    SPD_KEY_DATA_PROTECT    = 0x7,
    SPD_KEY_COPY_ABORTED    = 0xa,
    SPD_KEY_ABORTED_COMMAND = 0xb,
    SPD_KEY_MISCOMPARE      = 0xe,
};

/* Additional sense code and qualifier pairs, as (asc << 8 | ascq). */
enum spd_asc {
    SPD_ASC_NO_ADDITIONAL_SENSE             = 0x0000,
    SPD_ASC_LUN_NOT_READY                   = 0x0400,
    SPD_ASC_LUN_BECOMING_READY              = 0x0401,
    SPD_ASC_LUN_NOT_READY_INIT_REQUIRED     = 0x0402,
    SPD_ASC_LUN_NOT_ACCESSIBLE_STANDBY      = 0x040b,  /* ALUA standby */
    SPD_ASC_LUN_NOT_ACCESSIBLE_UNAVAILABLE  = 0x040c,  /* ALUA unavailable */
    SPD_ASC_SANITIZE_IN_PROGRESS            = 0x041b,
    SPD_ASC_UNREACHABLE_COPY_TARGET         = 0x0804,
    SPD_ASC_WRITE_ERROR                     = 0x0c00,
    SPD_ASC_UNEXPECTED_UNSOLICITED_DATA     = 0x0c0c,
    SPD_ASC_NOT_ENOUGH_UNSOLICITED_DATA     = 0x0c0d,
    SPD_ASC_INVALID_FIELD_IN_CIU            = 0x0e03,
    SPD_ASC_UNRECOVERED_READ_ERROR          = 0x1100,
    SPD_ASC_PARAMETER_LIST_LENGTH_ERROR     = 0x1a00,
    SPD_ASC_MISCOMPARE_DURING_VERIFY        = 0x1d00,
    SPD_ASC_INVALID_COMMAND_OPERATION_CODE  = 0x2000,
    SPD_ASC_LBA_OUT_OF_RANGE                = 0x2100,
    SPD_ASC_INVALID_FIELD_IN_CDB            = 0x2400,
    SPD_ASC_LOGICAL_UNIT_NOT_SUPPORTED      = 0x2500,
    SPD_ASC_INVALID_FIELD_IN_PARAMETER_LIST = 0x2600,
    SPD_ASC_PARAMETER_NOT_SUPPORTED         = 0x2601,
    SPD_ASC_PARAMETER_VALUE_INVALID         = 0x2602,
    SPD_ASC_INVALID_RELEASE_OF_PR           = 0x2604,
    SPD_ASC_TOO_MANY_TARGET_DESCRIPTORS     = 0x2606,
    SPD_ASC_UNSUPPORTED_TARGET_DESCRIPTOR   = 0x2607,
    SPD_ASC_TOO_MANY_SEGMENT_DESCRIPTORS    = 0x2608,
    SPD_ASC_UNSUPPORTED_SEGMENT_DESCRIPTOR  = 0x2609,
    SPD_ASC_WRITE_PROTECTED                 = 0x2700,
    SPD_ASC_SPACE_ALLOCATION_FAILED         = 0x2707,
    SPD_ASC_MEDIUM_MAY_HAVE_CHANGED         = 0x2800,
    SPD_ASC_POWER_ON_RESET                  = 0x2900,
    SPD_ASC_BUS_DEVICE_RESET                = 0x2903,
    SPD_ASC_PARAMETERS_CHANGED              = 0x2a00,
    SPD_ASC_MODE_PARAMETERS_CHANGED         = 0x2a01,
    SPD_ASC_RESERVATIONS_PREEMPTED          = 0x2a03,
    SPD_ASC_RESERVATIONS_RELEASED           = 0x2a04,
    SPD_ASC_REGISTRATIONS_PREEMPTED         = 0x2a05,
    SPD_ASC_ASYMMETRIC_ACCESS_STATE_CHANGED = 0x2a06,
    SPD_ASC_CAPACITY_DATA_CHANGED           = 0x2a09,
    SPD_ASC_SANITIZE_COMMAND_FAILED         = 0x3103,
    SPD_ASC_SAVING_PARAMETERS_NOT_SUPPORTED = 0x3900,
    SPD_ASC_MEDIUM_NOT_PRESENT              = 0x3a00,
    SPD_ASC_REPORTED_LUNS_DATA_CHANGED      = 0x3f0e,
    SPD_ASC_INTERNAL_TARGET_FAILURE         = 0x4400,
    SPD_ASC_INSUFFICIENT_REGISTRATION_RESOURCES = 0x5504,
    SPD_ASC_CRC_ERROR                       = 0x4705,  /* PROTOCOL SERVICE CRC ERROR */
    SPD_ASC_COMMAND_PHASE_ERROR             = 0x4a00,
    SPD_ASC_DATA_PHASE_ERROR                = 0x4b00,
    SPD_ASC_INVALID_TARGET_PORT_TRANSFER_TAG = 0x4b01,
    SPD_ASC_TOO_MUCH_WRITE_DATA             = 0x4b02,
    SPD_ASC_DATA_OFFSET_ERROR               = 0x4b05,
};

#define SPD_ASC(code)  ((uint8_t)((code) >> 8))
#define SPD_ASCQ(code) ((uint8_t)((code) & 0xff))

/* A readable name for an additional sense code, for logs ("LBA OUT OF
 * RANGE"); "ASC xxh/xxh" style text for codes without a name. */
const char *spd_asc_name(uint8_t asc, uint8_t ascq);
/* A readable name for a sense key ("ILLEGAL REQUEST"). */
const char *spd_sense_key_name(uint8_t key);
/* The name of the command a CDB holds ("READ(10)"), or "UNKNOWN". */
const char *spd_cdb_name(const uint8_t *cdb, uint8_t cdb_len);

struct spd_status;   /* spd/spd.h */
/* Decode sense data of either format (fixed 70h/71h, descriptor 72h/73h)
 * as an initiator received it into a check condition status: sense key,
 * ASC/ASCQ, information (info_valid) and the sense key specific bytes
 * (sks, zero unless SKSV). 0, or -EINVAL when the bytes are no sense data
 * of a known format. */
int spd_sense_parse(const uint8_t *sense, size_t len, struct spd_status *status);

#endif /* SPD_SCSI_H */
