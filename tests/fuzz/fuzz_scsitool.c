/*
 * fuzz_scsitool.c - what a target answers, as spd-scsitool reads it:
 * arbitrary data-in through the tool's decoders (INQUIRY, VPD pages, MODE
 * SENSE(10), READ CAPACITY, GET LBA STATUS, REPORT LUNS) and arbitrary
 * sense bytes through spd_sense_parse() and the status printer, text and
 * JSON. A target may be anybody's: none of it may read outside the bytes
 * it got or loop without end.
 *
 * Input: one byte choosing the decoder (its low 3 bits) and the output
 * form (bit 3: JSON), then the data (or the sense bytes, at most 96).
 *
 * Invariants: spd_sense_parse() returns 0 or -EINVAL; 0 only for the
 * response codes 70h to 73h, with a sense key of 4 bits and the sense key
 * specific bytes zero unless SKSV.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scsitool.h"
#include "spd/scsi.h"

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size);

static void check_sense(const uint8_t *sense, size_t len)
{
    spd_status st;
    int r = spd_sense_parse(sense, len, &st);
    if (r != 0 && r != -EINVAL)
        abort();
    if (r)
        return;
    if ((sense[0] & 0x7f) < 0x70 || (sense[0] & 0x7f) > 0x73 ||
        st.sense_key > 0x0f ||
        st.scsi_status != SPD_STATUS_CHECK_CONDITION ||
        (!(st.sks[0] & 0x80) && (st.sks[1] || st.sks[2])))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size)
{
    static void (*const decoders[])(const uint8_t *, size_t) = {
        decode_inquiry, decode_vpd, decode_mode_sense10, decode_capacity10,
        decode_capacity16, decode_lba_status, decode_luns, decode_port_groups,
        decode_pr_keys, decode_pr_reservation,
    };
    static bool quiet;
    if (!quiet && !freopen("/dev/null", "w", stdout))
        abort();
    quiet = true;
    if (!size)
        return 0;
    unsigned which = input[0] & 7;
    const uint8_t *data = input + 1;
    size_t len = size - 1;
    /* A copy of exactly len bytes, so a read past them is a sanitizer's
     * report, not a read of the next input byte. */
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, len);
    out_begin(input[0] & 0x08);
    if (which < 7) {
        decoders[which](copy, len);
    } else {
        struct xfer x = { .status = SPD_STATUS_CHECK_CONDITION };
        x.sense_len = (uint8_t)(len < sizeof x.sense ? len : sizeof x.sense);
        memcpy(x.sense, copy, x.sense_len);
        check_sense(copy, len);
        decode_status(&x);
    }
    out_end();
    free(copy);
    return 0;
}
