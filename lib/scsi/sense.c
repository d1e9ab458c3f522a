/*
 * sense.c - the one place sense data is built (SPC-4 "Sense data"), and
 * the helpers handlers use to set a check condition from a named code.
 */
#include <errno.h>
#include <string.h>

#include "scsi/scsi_int.h"

#define FIXED_LEN       18  /* 70h format: additional sense length 10 */
#define DESC_HEADER_LEN 8   /* 72h format header */
#define INFO_DESC_LEN   12  /* information descriptor, type 00h */
#define SKS_DESC_LEN    8   /* sense key specific descriptor, type 02h */
#define SKSV            0x80

void scsi_sense_set(spd_status *st, uint8_t key, uint16_t asc)
{
    spd_status_set_sense(st, key, SPD_ASC(asc), SPD_ASCQ(asc));
}

void scsi_illegal(spd_status *st, uint16_t asc)
{
    scsi_sense_set(st, SPD_KEY_ILLEGAL_REQUEST, asc);
}

/* SPC-4 "Field pointer sense key specific data". */
void scsi_invalid_field(spd_status *status, bool in_cdb, uint16_t byte, int bit)
{
    scsi_illegal(status, in_cdb ? SPD_ASC_INVALID_FIELD_IN_CDB
                                : SPD_ASC_INVALID_FIELD_IN_PARAMETER_LIST);
    status->sks[0] = (uint8_t)(SKSV | (in_cdb ? 0x40 : 0) |        /* C/D */
                               (bit >= 0 ? 0x08 | (bit & 7) : 0)); /* BPV */
    put_be16(status->sks + 1, byte);
}

/* Fixed format (SPC-4). The INFORMATION field has four bytes: a larger
 * value is left out, with VALID zero. */
static size_t sense_fixed(const spd_status *st, uint8_t *p)
{
    bool valid = st->info_valid && st->information <= UINT32_MAX;
    memset(p, 0, FIXED_LEN);
    p[0] = (uint8_t)((valid ? 0x80 : 0) | 0x70);
    p[2] = st->sense_key & 0x0f;
    if (valid)
        put_be32(p + 3, (uint32_t)st->information);
    p[7] = FIXED_LEN - 8;
    p[12] = st->asc;
    p[13] = st->ascq;
    if (st->sks[0] & SKSV)
        memcpy(p + 15, st->sks, 3);
    return FIXED_LEN;
}

/* Descriptor format (SPC-4): information and sense key specific
 * descriptors when the status has them. */
static size_t sense_descriptor(const spd_status *st, uint8_t *p)
{
    size_t n = DESC_HEADER_LEN;
    memset(p, 0, DESC_HEADER_LEN + INFO_DESC_LEN + SKS_DESC_LEN);
    p[0] = 0x72;
    p[1] = st->sense_key & 0x0f;
    p[2] = st->asc;
    p[3] = st->ascq;
    if (st->info_valid) {                   /* information, type 00h */
        p[n] = 0x00;
        p[n + 1] = INFO_DESC_LEN - 2;
        p[n + 2] = 0x80;                    /* VALID */
        put_be64(p + n + 4, st->information);
        n += INFO_DESC_LEN;
    }
    if (st->sks[0] & SKSV) {                /* sense key specific, 02h */
        p[n] = 0x02;
        p[n + 1] = SKS_DESC_LEN - 2;
        memcpy(p + n + 4, st->sks, 3);
        n += SKS_DESC_LEN;
    }
    p[7] = (uint8_t)(n - DESC_HEADER_LEN);
    return n;
}

uint8_t scsi_sense_write(const spd_status *st, bool descriptor, uint8_t *buf,
                         uint8_t cap)
{
    uint8_t sense[DESC_HEADER_LEN + INFO_DESC_LEN + SKS_DESC_LEN];
    size_t n = descriptor ? sense_descriptor(st, sense)
                          : sense_fixed(st, sense);
    if (n > cap)
        n = cap;
    memcpy(buf, sense, n);
    return (uint8_t)n;
}

uint8_t scsi_sense_build(const spd_status *status, bool descriptor,
                         uint8_t *buf, uint8_t cap)
{
    if (status->scsi_status != SPD_STATUS_CHECK_CONDITION)
        return 0;
    return scsi_sense_write(status, descriptor, buf, cap);
}

/* Reading sense is the inverse of the above, for programs that get sense
 * bytes from elsewhere (SG_IO, an iSCSI initiator): both formats, their
 * information and sense key specific fields. */
static void parse_descriptors(const uint8_t *p, size_t len, spd_status *st)
{
    size_t end = (size_t)DESC_HEADER_LEN + p[7];
    if (end > len)
        end = len;
    for (size_t n = DESC_HEADER_LEN; n + 2 <= end; n += 2 + p[n + 1]) {
        const uint8_t *d = p + n;
        size_t dlen = 2 + (size_t)d[1];
        if (n + dlen > end)
            break;
        if (d[0] == 0x00 && dlen >= INFO_DESC_LEN) {
            st->info_valid = d[2] & 0x80;
            st->information = get_be64(d + 4);
        } else if (d[0] == 0x02 && dlen >= SKS_DESC_LEN) {
            memcpy(st->sks, d + 4, 3);
        }
    }
}

int spd_sense_parse(const uint8_t *sense, size_t len, struct spd_status *st)
{
    uint8_t code = len ? sense[0] & 0x7f : 0;
    *st = (spd_status){ .scsi_status = SPD_STATUS_CHECK_CONDITION };
    if ((code == 0x70 || code == 0x71) && len >= 3) {
        st->sense_key = sense[2] & 0x0f;
        st->info_valid = (sense[0] & 0x80) && len >= 7;
        st->information = st->info_valid ? get_be32(sense + 3) : 0;
        st->asc = len > 12 ? sense[12] : 0;
        st->ascq = len > 13 ? sense[13] : 0;
        if (len >= 18)
            memcpy(st->sks, sense + 15, 3);
    } else if ((code == 0x72 || code == 0x73) && len >= 4) {
        st->sense_key = sense[1] & 0x0f;
        st->asc = sense[2];
        st->ascq = sense[3];
        if (len > DESC_HEADER_LEN)
            parse_descriptors(sense, len, st);
    } else {
        return -EINVAL;
    }
    if (!(st->sks[0] & SKSV))
        memset(st->sks, 0, 3);
    return 0;
}
