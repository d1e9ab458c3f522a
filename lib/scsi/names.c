/*
 * names.c - readable names of sense keys and additional sense codes, for
 * logs and error messages (SPC-4, "Sense key and additional sense code
 * definitions" and the ASC/ASCQ table of annex D).
 */
#include <stdio.h>

#include "scsi/scsi_int.h"

static const struct {
    uint16_t code;          /* asc << 8 | ascq */
    const char *name;
} asc_names[] = {
    { SPD_ASC_NO_ADDITIONAL_SENSE, "NO ADDITIONAL SENSE INFORMATION" },
    { SPD_ASC_LUN_NOT_READY, "LOGICAL UNIT NOT READY, CAUSE NOT REPORTABLE" },
    { 0x0401, "LOGICAL UNIT IS IN PROCESS OF BECOMING READY" },
    { 0x0402, "LOGICAL UNIT NOT READY, INITIALIZING COMMAND REQUIRED" },
    { SPD_ASC_WRITE_ERROR, "WRITE ERROR" },
    { SPD_ASC_UNRECOVERED_READ_ERROR, "UNRECOVERED READ ERROR" },
    { SPD_ASC_PARAMETER_LIST_LENGTH_ERROR, "PARAMETER LIST LENGTH ERROR" },
    { SPD_ASC_MISCOMPARE_DURING_VERIFY,
      "MISCOMPARE DURING VERIFY OPERATION" },
    { SPD_ASC_INVALID_COMMAND_OPERATION_CODE,
      "INVALID COMMAND OPERATION CODE" },
    { SPD_ASC_LBA_OUT_OF_RANGE, "LOGICAL BLOCK ADDRESS OUT OF RANGE" },
    { SPD_ASC_INVALID_FIELD_IN_CDB, "INVALID FIELD IN CDB" },
    { SPD_ASC_LOGICAL_UNIT_NOT_SUPPORTED, "LOGICAL UNIT NOT SUPPORTED" },
    { SPD_ASC_INVALID_FIELD_IN_PARAMETER_LIST,
      "INVALID FIELD IN PARAMETER LIST" },
    { 0x2601, "PARAMETER NOT SUPPORTED" },
    { 0x2602, "PARAMETER VALUE INVALID" },
    { SPD_ASC_WRITE_PROTECTED, "WRITE PROTECTED" },
    { SPD_ASC_SPACE_ALLOCATION_FAILED,
      "SPACE ALLOCATION FAILED WRITE PROTECT" },
    { 0x2800, "NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED" },
    { SPD_ASC_POWER_ON_RESET,
      "POWER ON, RESET, OR BUS DEVICE RESET OCCURRED" },
    { SPD_ASC_PARAMETERS_CHANGED, "PARAMETERS CHANGED" },
    { 0x2a01, "MODE PARAMETERS CHANGED" },
    { 0x2a09, "CAPACITY DATA HAS CHANGED" },
    { 0x3a00, "MEDIUM NOT PRESENT" },
    { SPD_ASC_SAVING_PARAMETERS_NOT_SUPPORTED,
      "SAVING PARAMETERS NOT SUPPORTED" },
    { 0x3f0e, "REPORTED LUNS DATA HAS CHANGED" },
    { SPD_ASC_INTERNAL_TARGET_FAILURE, "INTERNAL TARGET FAILURE" },
    { SPD_ASC_COMMAND_PHASE_ERROR, "COMMAND PHASE ERROR" },
    { SPD_ASC_DATA_PHASE_ERROR, "DATA PHASE ERROR" },
};

/* SPC-4 sense key table; 0Ch is obsolete. */
static const char *const key_names[16] = {
    [SPD_KEY_NO_SENSE] = "NO SENSE",
    [SPD_KEY_RECOVERED_ERROR] = "RECOVERED ERROR",
    [SPD_KEY_NOT_READY] = "NOT READY",
    [SPD_KEY_MEDIUM_ERROR] = "MEDIUM ERROR",
    [SPD_KEY_HARDWARE_ERROR] = "HARDWARE ERROR",
    [SPD_KEY_ILLEGAL_REQUEST] = "ILLEGAL REQUEST",
    [SPD_KEY_UNIT_ATTENTION] = "UNIT ATTENTION",
    [SPD_KEY_DATA_PROTECT] = "DATA PROTECT",
    [0x8] = "BLANK CHECK",
    [0x9] = "VENDOR SPECIFIC",
    [0xa] = "COPY ABORTED",
    [SPD_KEY_ABORTED_COMMAND] = "ABORTED COMMAND",
    [0xd] = "VOLUME OVERFLOW",
    [SPD_KEY_MISCOMPARE] = "MISCOMPARE",
    [0xf] = "COMPLETED",
};

/* Names for codes without one are formatted per thread. */
static _Thread_local char unnamed[32];

const char *spd_asc_name(uint8_t asc, uint8_t ascq)
{
    uint16_t code = (uint16_t)(asc << 8 | ascq);
    for (size_t i = 0; i < sizeof asc_names / sizeof asc_names[0]; i++)
        if (asc_names[i].code == code)
            return asc_names[i].name;
    snprintf(unnamed, sizeof unnamed, "ASC 0x%02x/0x%02x", asc, ascq);
    return unnamed;
}

const char *spd_sense_key_name(uint8_t key)
{
    if (key < 16 && key_names[key])
        return key_names[key];
    snprintf(unnamed, sizeof unnamed, "SENSE KEY 0x%02x", key);
    return unnamed;
}
