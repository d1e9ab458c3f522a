/*
 * spc.c - the primary commands (SPC-4) a disk answers from its parameters:
 * TEST UNIT READY, REQUEST SENSE, INQUIRY and its VPD pages, MODE SENSE
 * and MODE SELECT, REPORT LUNS, START STOP UNIT, PREVENT ALLOW MEDIUM
 * REMOVAL. The preamble (opcodes.c) has checked each CDB before its
 * handler runs.
 */
#include <string.h>

#include "scsi/scsi_int.h"

#define VENDOR_ID        "SPD     "     /* T10 vendor identification */
#define DEFAULT_PRODUCT  "Spd disk"
#define XSTR(x)          STR(x)
#define STR(x)           #x
#define DEFAULT_REVISION XSTR(SPD_VERSION_MAJOR) "." XSTR(SPD_VERSION_MINOR)

/* TEST UNIT READY, START STOP UNIT, PREVENT ALLOW MEDIUM REMOVAL, VERIFY
 * with BYTCHK 0: everything was checked, nothing more to do. */
enum scsi_action spc_good(struct scsi_lu *lu, struct scsi_task *task,
                          const struct scsi_args *a)
{
    (void)lu; (void)task; (void)a;
    return SCSI_DONE;
}

/* SPC-4 REQUEST SENSE: sense is returned with each status, so the only
 * pending sense is a unit attention, reported here and cleared; else NO
 * SENSE. In the format the DESC bit asks for. */
enum scsi_action spc_request_sense(struct scsi_lu *lu, struct scsi_task *task,
                                   const struct scsi_args *a)
{
    spd_status pending = { 0 };
    if (!lu->absent) {
        pthread_mutex_lock(&lu->nexus_lock);
        scsi_ua_take(lu, task->slot, &pending);
        pthread_mutex_unlock(&lu->nexus_lock);
    }
    uint8_t buf[SPD_SENSE_MAX];
    uint8_t n = scsi_sense_write(&pending, a->cdb[1] & 0x01, buf, sizeof buf);
    return scsi_reply(task, buf, n, a->count);
}

/* SBC-3 PREVENT ALLOW MEDIUM REMOVAL: PREVENT values 10b and 11b are
 * obsolete. */
bool spc_prevent_check(const struct scsi_lu *lu, struct scsi_args *a,
                       spd_status *st)
{
    (void)lu;
    if (a->cdb[4] & 0x02) {
        scsi_invalid_field(st, true, 4, 1);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* INQUIRY and the VPD pages (SPC-4, SBC-3)                            */
/* ------------------------------------------------------------------ */

/* Copy text into an ASCII field, padded with spaces (SPC-4 ASCII fields). */
static void put_padded(uint8_t *dst, const char *text, size_t width)
{
    size_t len = strnlen(text, width);
    memcpy(dst, text, len);
    memset(dst + len, ' ', width - len);
}

static size_t vpd_header(uint8_t *buf, uint8_t page, uint16_t page_len)
{
    memset(buf, 0, 4 + (size_t)page_len);
    buf[0] = 0x00;          /* peripheral: connected, direct access block */
    buf[1] = page;
    put_be16(buf + 2, page_len);
    return 4 + (size_t)page_len;
}

static void uuid_hex(const uint8_t uuid[16], char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = digits[uuid[i] >> 4];
        out[2 * i + 1] = digits[uuid[i] & 0x0f];
    }
}

/* 80h, Unit Serial Number (SPC-4): the UUID as 32 hex digits. */
static size_t vpd_serial(const struct scsi_lu *lu, uint8_t *buf)
{
    size_t n = vpd_header(buf, 0x80, 32);
    uuid_hex(lu->params->uuid, (char *)buf + 4);
    return n;
}

/* The 16 bytes of an NAA 6 designator made from the UUID: the NAA nibble,
 * then the UUID's 32 hex digits except the 13th (a version 4 UUID's fixed
 * version digit), so no random bit is lost. No IEEE company ID is
 * involved: the "company" bits are the UUID's. */
static void naa6_from_uuid(const uint8_t uuid[16], uint8_t out[16])
{
    uint8_t nibbles[32];
    unsigned n = 0;
    nibbles[n++] = 0x6;
    for (unsigned i = 0; i < 32; i++) {
        if (i == 12)
            continue;
        nibbles[n++] = (uint8_t)(i % 2 ? uuid[i / 2] & 0x0f : uuid[i / 2] >> 4);
    }
    for (unsigned i = 0; i < 16; i++)
        out[i] = (uint8_t)(nibbles[2 * i] << 4 | nibbles[2 * i + 1]);
}

void scsi_lu_naa(const struct scsi_lu *lu, uint8_t out[16])
{
    naa6_from_uuid(lu->params->uuid, out);
}

/* 83h, Device Identification (SPC-4): an NAA designator (binary) and a
 * T10 vendor ID designator (ASCII, "SPD     " and the UUID text), both of
 * the logical unit; the relative target port the command came through
 * (the process has one) and its target port group, both numbered by the
 * process's port group (alua.c). */
static size_t vpd_device_id(const struct scsi_lu *lu, uint8_t *buf)
{
    const uint8_t *uuid = lu->params->uuid;
    size_t n = vpd_header(buf, 0x83, (4 + 16) + (4 + 8 + 36) + 2 * (4 + 4));
    uint8_t *d = buf + 4;

    d[0] = 0x01;            /* protocol 0, code set 1: binary */
    d[1] = 0x03;            /* PIV 0, association 0: LU, type 3: NAA */
    d[3] = 16;
    naa6_from_uuid(uuid, d + 4);
    d += 4 + 16;

    char text[37];
    spd_uuid_format(uuid, text);
    d[0] = 0x02;            /* code set 2: ASCII */
    d[1] = 0x01;            /* association 0: LU, type 1: T10 vendor ID */
    d[3] = 8 + 36;
    memcpy(d + 4, VENDOR_ID, 8);
    memcpy(d + 12, text, 36);
    d += 4 + 8 + 36;

    d[0] = 0x01;
    d[1] = 0x14;            /* association 1: target port, type 4 */
    d[3] = 4;
    uint16_t group = scsi_port_group(lu->params);
    put_be16(d + 6, group); /* RELATIVE TARGET PORT IDENTIFIER */
    d += 4 + 4;

    d[0] = 0x01;
    d[1] = 0x15;            /* association 1: target port, type 5: TPG */
    d[3] = 4;
    put_be16(d + 6, group);
    return n;
}

/* B0h, Block Limits (SBC-3). MAXIMUM TRANSFER LENGTH is the device's
 * largest call; longer READs and WRITEs are still accepted and split by the
 * core (SBC-3 would allow refusing them; Spd does not). */
static size_t vpd_block_limits(const struct scsi_lu *lu, uint8_t *buf)
{
    size_t n = vpd_header(buf, 0xb0, 0x3c);
    put_be32(buf + 8, lu->max_transfer_blocks);     /* maximum transfer */
    put_be32(buf + 12, lu->max_transfer_blocks);    /* optimal transfer */
    if (lu->params->unmap_supported) {
        put_be32(buf + 20, SCSI_MAX_UNMAP_LBAS);
        put_be32(buf + 24, SCSI_MAX_UNMAP_DESCS);
        put_be32(buf + 28, 1);                      /* optimal granularity */
    }
    buf[5] = SCSI_MAX_CAW_BLOCKS;       /* MAXIMUM COMPARE AND WRITE LENGTH */
    put_be64(buf + 36, SCSI_MAX_WRITE_SAME_BLOCKS);
    return n;
}

/* B1h, Block Device Characteristics (SBC-3): not rotating. */
static size_t vpd_characteristics(const struct scsi_lu *lu, uint8_t *buf)
{
    size_t n = vpd_header(buf, 0xb1, 0x3c);
    put_be16(buf + 4, 0x0001);      /* MEDIUM ROTATION RATE: non-rotating */
    if (lu->params->unmap_supported)
        buf[7] = 0x40;              /* WABEREQ 01b: erased blocks read as
                                       unmapped ones (SANITIZE) */
    return n;
}

/* B2h, Logical Block Provisioning (SBC-3): thin provisioning when the
 * device can unmap. */
static size_t vpd_provisioning(const struct scsi_lu *lu, uint8_t *buf)
{
    const spd_params *p = lu->params;
    size_t n = vpd_header(buf, 0xb2, 4);
    if (p->unmap_supported) {
        buf[5] = 0x80 | 0x40 | 0x20;        /* LBPU, LBPWS, LBPWS10 */
        buf[6] = 0x02;                      /* PROVISIONING TYPE: thin */
    }
    if (p->unmap_reads_zero)
        buf[5] |= 0x04;                     /* LBPRZ */
    return n;
}

/* 8Fh, Third-party Copy (SPC-4): the supported commands descriptor, with
 * EXTENDED COPY(LID1) and RECEIVE COPY RESULTS' service actions. */
static size_t vpd_third_party_copy(const struct scsi_lu *lu, uint8_t *buf)
{
    (void)lu;
    static const uint8_t commands[] = {
        SPD_SCSI_EXTENDED_COPY, 1, SPD_SA_EXTENDED_COPY_LID1,
        SPD_SCSI_RECEIVE_COPY_RESULTS, 2, SPD_SA_COPY_STATUS,
        SPD_SA_OPERATING_PARAMETERS,
    };
    size_t n = vpd_header(buf, 0x8f, 12);
    put_be16(buf + 4, 0x0001);          /* DESCRIPTOR TYPE: commands */
    put_be16(buf + 6, 8);               /* DESCRIPTOR LENGTH */
    buf[8] = sizeof commands;           /* COMMANDS SUPPORTED LIST LENGTH */
    memcpy(buf + 9, commands, sizeof commands);
    return n;
}

static size_t vpd_supported(const struct scsi_lu *lu, uint8_t *buf);

/* The VPD pages, in ascending order; 00h lists them from here. */
static const struct vpd_page {
    uint8_t code;
    size_t (*build)(const struct scsi_lu *lu, uint8_t *buf);
} vpd_pages[] = {
    { 0x00, vpd_supported },
    { 0x80, vpd_serial },
    { 0x83, vpd_device_id },
    { 0x8f, vpd_third_party_copy },
    { 0xb0, vpd_block_limits },
    { 0xb1, vpd_characteristics },
    { 0xb2, vpd_provisioning },
};

#define VPD_COUNT (sizeof vpd_pages / sizeof vpd_pages[0])

/* 00h, Supported VPD Pages (SPC-4). */
static size_t vpd_supported(const struct scsi_lu *lu, uint8_t *buf)
{
    (void)lu;
    size_t n = vpd_header(buf, 0x00, VPD_COUNT);
    for (size_t i = 0; i < VPD_COUNT; i++)
        buf[4 + i] = vpd_pages[i].code;
    return n;
}

static const struct vpd_page *vpd_find(uint8_t code)
{
    for (size_t i = 0; i < VPD_COUNT; i++)
        if (vpd_pages[i].code == code)
            return &vpd_pages[i];
    return NULL;
}

/* Standard INQUIRY data (SPC-4), with version descriptors. */
static size_t inquiry_standard(const struct scsi_lu *lu, uint8_t *buf)
{
    const spd_params *p = lu->params;
    static const uint16_t versions[] = {
        0x00a0,     /* SAM-5 */
        0x0460,     /* SPC-4 */
        0x04c0,     /* SBC-3 */
    };
    memset(buf, 0, 96);
    buf[0] = 0x00;          /* peripheral qualifier 0, device type 0 */
    buf[2] = 0x06;          /* VERSION: SPC-4 */
    buf[3] = 0x10 | 0x02;   /* HISUP, RESPONSE DATA FORMAT 2 */
    buf[4] = 96 - 5;        /* ADDITIONAL LENGTH */
    buf[5] = 0x10 | 0x08;   /* TPGS 01b: implicit ALUA; 3PC */
    buf[7] = 0x02;          /* CMDQUE */
    memcpy(buf + 8, VENDOR_ID, 8);
    put_padded(buf + 16, p->product_id[0] ? p->product_id : DEFAULT_PRODUCT,
               16);
    put_padded(buf + 32, p->product_revision[0] ? p->product_revision
                                                : DEFAULT_REVISION, 4);
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++)
        put_be16(buf + 58 + 2 * i, versions[i]);
    return 96;
}

bool spc_inquiry_check(const struct scsi_lu *lu, struct scsi_args *a,
                       spd_status *st)
{
    (void)lu;
    bool evpd = a->cdb[1] & 0x01;
    uint8_t page = a->cdb[2];
    /* SPC-4 INQUIRY: a page code without EVPD, or an unknown page. */
    if ((!evpd && page != 0) || (evpd && !vpd_find(page))) {
        scsi_invalid_field(st, true, 2, -1);
        return false;
    }
    return true;
}

/* INQUIRY for a LUN a target lacks: peripheral qualifier 3 (SPC-4: not
 * capable of supporting a device on this logical unit), type 1Fh; a VPD
 * page asked for comes back empty. */
uint32_t scsi_absent_inquiry_len(const uint8_t *cdb)
{
    return cdb[1] & 0x01 ? 4 : 36;
}

static size_t inquiry_absent(const uint8_t *cdb, uint8_t *buf)
{
    memset(buf, 0, 36);
    buf[0] = 0x7f;
    if (cdb[1] & 0x01) {
        buf[1] = cdb[2];
    } else {
        buf[2] = 0x06;              /* SPC-4 */
        buf[3] = 0x02;              /* response data format 2 */
        buf[4] = 31;
        memset(buf + 8, ' ', 28);
    }
    return scsi_absent_inquiry_len(cdb);
}

enum scsi_action spc_inquiry(struct scsi_lu *lu, struct scsi_task *task,
                             const struct scsi_args *a)
{
    uint8_t buf[SCSI_REPLY_MAX];
    if (lu->absent)
        return scsi_reply(task, buf, inquiry_absent(a->cdb, buf), a->count);
    size_t n = (a->cdb[1] & 0x01) ? vpd_find(a->cdb[2])->build(lu, buf)
                                  : inquiry_standard(lu, buf);
    return scsi_reply(task, buf, n, a->count);
}

/* ------------------------------------------------------------------ */
/* Mode pages (SPC-4, SBC-3)                                           */
/* ------------------------------------------------------------------ */

enum page_control {
    PC_CURRENT = 0,
    PC_CHANGEABLE = 1,
    PC_DEFAULT = 2,
    PC_SAVED = 3,
};

#define ALL_PAGES    0x3f
#define ALL_SUBPAGES 0xff

/* Caching mode page (SBC-3): WCE when the device has a volatile cache;
 * nothing changeable. */
static void caching_fill(const struct scsi_lu *lu, enum page_control pc,
                         uint8_t *page)
{
    if (pc != PC_CHANGEABLE && lu->params->cache_supported)
        page[2] = 0x04;                         /* WCE; RCD 0 */
}

/* Control mode page (SPC-4): D_SENSE and SWP (software write protect)
 * are changeable; queue algorithm modifier 1, unrestricted reordering. */
static void control_fill(const struct scsi_lu *lu, enum page_control pc,
                         uint8_t *page)
{
    if (pc == PC_CHANGEABLE) {
        page[2] = 0x04;
        page[4] = 0x08;
        return;
    }
    if (pc == PC_CURRENT && lu->d_sense)
        page[2] = 0x04;                         /* D_SENSE */
    if (pc == PC_CURRENT && atomic_load(&lu->swp))
        page[4] = 0x08;                         /* SWP */
    page[3] = 0x10;                             /* QUEUE ALGORITHM MODIFIER */
}

static void control_apply(struct scsi_lu *lu, const uint8_t *page)
{
    lu->d_sense = page[2] & 0x04;
    atomic_store(&lu->swp, (page[4] & 0x08) != 0);
}

static const struct mode_page {
    uint8_t code;
    uint8_t len;                /* PAGE LENGTH: bytes after the first two */
    void (*fill)(const struct scsi_lu *lu, enum page_control pc,
                 uint8_t *page);
    void (*apply)(struct scsi_lu *lu, const uint8_t *page);  /* optional */
} mode_pages[] = {
    { 0x08, 0x12, caching_fill, NULL },
    { 0x0a, 0x0a, control_fill, control_apply },
};

#define MODE_PAGE_COUNT (sizeof mode_pages / sizeof mode_pages[0])
#define MODE_PAGE_MAX   (2 + 0x12)

static const struct mode_page *mode_page_find(uint8_t code)
{
    for (size_t i = 0; i < MODE_PAGE_COUNT; i++)
        if (mode_pages[i].code == code)
            return &mode_pages[i];
    return NULL;
}

static size_t mode_page_put(const struct scsi_lu *lu,
                            const struct mode_page *mp, enum page_control pc,
                            uint8_t *buf)
{
    memset(buf, 0, 2 + (size_t)mp->len);
    buf[0] = mp->code;          /* PS 0: nothing is saveable; SPF 0 */
    buf[1] = mp->len;
    mp->fill(lu, pc, buf);
    return 2 + (size_t)mp->len;
}

/* The NUMBER OF LOGICAL BLOCKS of a short LBA block descriptor (SBC-3):
 * FFFFFFFFh when the capacity does not fit. */
static uint32_t short_block_count(const struct scsi_lu *lu)
{
    uint64_t count = lu->params->block_count;
    return count > UINT32_MAX ? UINT32_MAX : (uint32_t)count;
}

/* A mode parameter block descriptor (SBC-3): short, or long LBA. */
static size_t block_descriptor(const struct scsi_lu *lu, bool long_lba,
                               uint8_t *buf)
{
    if (long_lba) {
        memset(buf, 0, 16);
        put_be64(buf, lu->params->block_count);
        put_be32(buf + 12, lu->params->block_length);
        return 16;
    }
    memset(buf, 0, 8);
    put_be32(buf, short_block_count(lu));
    put_be24(buf + 5, lu->params->block_length);
    return 8;
}

/* ------------------------------------------------------------------ */
/* MODE SENSE(6)/(10) (SPC-4)                                           */
/* ------------------------------------------------------------------ */

bool spc_mode_sense_check(const struct scsi_lu *lu, struct scsi_args *a,
                          spd_status *st)
{
    (void)lu;
    uint8_t pc = a->cdb[2] >> 6, page = a->cdb[2] & 0x3f, sub = a->cdb[3];

    if (pc == PC_SAVED) {       /* SPC-4: no saved values */
        scsi_illegal(st, SPD_ASC_SAVING_PARAMETERS_NOT_SUPPORTED);
        return false;
    }
    if (page != ALL_PAGES && !mode_page_find(page)) {
        scsi_invalid_field(st, true, 2, 5);
        return false;
    }
    if (sub != 0 && sub != ALL_SUBPAGES) {
        scsi_invalid_field(st, true, 3, -1);
        return false;
    }
    return true;
}

enum scsi_action spc_mode_sense(struct scsi_lu *lu, struct scsi_task *task,
                                const struct scsi_args *a)
{
    const uint8_t *cdb = a->cdb;
    bool ten = a->row->cdb_len == 10;
    bool dbd = cdb[1] & 0x08, long_lba = ten && (cdb[1] & 0x10);
    enum page_control pc = (enum page_control)(cdb[2] >> 6);
    uint8_t page = cdb[2] & 0x3f;
    uint8_t buf[SCSI_REPLY_MAX];
    size_t header = ten ? 8 : 4, bdl = 0;

    memset(buf, 0, header);
    /* The header and block descriptor always hold current values. */
    if (!dbd)
        bdl = block_descriptor(lu, long_lba, buf + header);
    size_t n = header + bdl;
    pthread_mutex_lock(&lu->mode_lock);
    for (size_t i = 0; i < MODE_PAGE_COUNT; i++)
        if (page == ALL_PAGES || page == mode_pages[i].code)
            n += mode_page_put(lu, &mode_pages[i], pc, buf + n);
    pthread_mutex_unlock(&lu->mode_lock);

    /* DEVICE-SPECIFIC PARAMETER (SBC-3): WP, DPOFUA. */
    bool wp = lu->params->write_protected || atomic_load(&lu->swp);
    uint8_t dsp = (uint8_t)((wp ? 0x80 : 0) | 0x10);
    if (ten) {
        put_be16(buf, (uint16_t)(n - 2));
        buf[3] = dsp;
        buf[4] = bdl == 16 ? 0x01 : 0;      /* LONGLBA */
        put_be16(buf + 6, (uint16_t)bdl);
    } else {
        buf[0] = (uint8_t)(n - 1);
        buf[2] = dsp;
        buf[3] = (uint8_t)bdl;
    }
    return scsi_reply(task, buf, n, a->count);
}

/* ------------------------------------------------------------------ */
/* MODE SELECT(6)/(10) (SPC-4)                                          */
/* ------------------------------------------------------------------ */

bool spc_mode_select_check(const struct scsi_lu *lu, struct scsi_args *a,
                           spd_status *st)
{
    (void)lu;
    if (!(a->cdb[1] & 0x10)) {      /* PF 0: vendor-specific pages */
        scsi_invalid_field(st, true, 1, 4);
        return false;
    }
    if (a->cdb[1] & 0x01) {         /* SP: nothing is saveable */
        scsi_invalid_field(st, true, 1, 0);
        return false;
    }
    return true;
}

/* The failure status for a parameter list that ends too early. */
static bool list_short(spd_status *st)
{
    scsi_illegal(st, SPD_ASC_PARAMETER_LIST_LENGTH_ERROR);
    return false;
}

static bool list_bad(spd_status *st, size_t byte, int bit)
{
    scsi_invalid_field(st, false, (uint16_t)byte, bit);
    return false;
}

/* The block descriptor may only restate the capacity (or give 0: no
 * change, SBC-3) and the block length. */
static bool check_block_descriptor(const struct scsi_lu *lu, const uint8_t *d,
                                   size_t off, bool long_lba, spd_status *st)
{
    uint64_t count = long_lba ? get_be64(d) : get_be32(d);
    uint64_t ours = long_lba ? lu->params->block_count : short_block_count(lu);
    uint32_t length = long_lba ? get_be32(d + 12) : get_be24(d + 5);

    if (count != 0 && count != ours)
        return list_bad(st, off, -1);
    if (!long_lba && d[4] != 0)                 /* DENSITY CODE */
        return list_bad(st, off + 4, -1);
    if (length != lu->params->block_length)
        return list_bad(st, off + (long_lba ? 12 : 5), -1);
    return true;
}

/* Check one mode page at p[off] against the current values: only bits of
 * the changeable mask may differ. Sets *page_len on success. */
static bool check_page(const struct scsi_lu *lu, const uint8_t *p,
                       size_t off, size_t len, size_t *page_len,
                       spd_status *st)
{
    const struct mode_page *mp = mode_page_find(p[off] & 0x3f);
    uint8_t cur[MODE_PAGE_MAX], chg[MODE_PAGE_MAX];

    if (len - off < 2)
        return list_short(st);
    if (p[off] & 0x40)                          /* SPF: no subpages here */
        return list_bad(st, off, 6);
    if (!mp)
        return list_bad(st, off, 5);
    if (p[off + 1] != mp->len)
        return list_bad(st, off + 1, -1);
    if (len - off < 2 + (size_t)mp->len)
        return list_short(st);
    mode_page_put(lu, mp, PC_CURRENT, cur);
    mode_page_put(lu, mp, PC_CHANGEABLE, chg);
    for (size_t i = 2; i < 2 + (size_t)mp->len; i++) {
        uint8_t diff = (uint8_t)((p[off + i] ^ cur[i]) & ~chg[i]);
        if (diff)
            return list_bad(st, off + i, scsi_highest_bit(diff));
    }
    *page_len = 2 + (size_t)mp->len;
    return true;
}

/* Validate the whole list, then apply it: all or nothing. Sets *changed
 * when a current value changed. */
static bool mode_select_parse(struct scsi_lu *lu, const uint8_t *p,
                              size_t len, bool ten, bool *changed,
                              spd_status *st)
{
    size_t header = ten ? 8 : 4;
    if (len < header)
        return list_short(st);
    if (p[ten ? 2 : 1] != 0)                    /* MEDIUM TYPE */
        return list_bad(st, ten ? 2 : 1, -1);
    bool long_lba = ten && (p[4] & 0x01);
    size_t bdl = ten ? get_be16(p + 6) : p[3];
    if (bdl != 0 && bdl != (long_lba ? 16u : 8u))
        return list_bad(st, ten ? 6 : 3, -1);
    if (len < header + bdl)
        return list_short(st);
    if (bdl && !check_block_descriptor(lu, p + header, header, long_lba, st))
        return false;

    size_t start = header + bdl;
    for (size_t off = start, n = 0; off < len; off += n)
        if (!check_page(lu, p, off, len, &n, st))
            return false;
    for (size_t off = start; off < len; off += 2 + (size_t)p[off + 1]) {
        const struct mode_page *mp = mode_page_find(p[off] & 0x3f);
        uint8_t cur[MODE_PAGE_MAX];
        mode_page_put(lu, mp, PC_CURRENT, cur);
        if (memcmp(cur, p + off, 2 + (size_t)mp->len) && mp->apply) {
            mp->apply(lu, p + off);
            *changed = true;
        }
    }
    return true;
}

enum scsi_action spc_mode_select(struct scsi_lu *lu, struct scsi_task *task,
                                 const struct scsi_args *a)
{
    /* SPC-4 MODE SELECT: a zero-length list is not an error. A list
     * shorter than its stated length is judged by what arrived. */
    size_t len = a->count < task->data_len ? a->count : task->data_len;
    if (a->count == 0)
        return SCSI_DONE;
    /* Checked and applied whole under the lock: no command sees half. */
    bool changed = false;
    pthread_mutex_lock(&lu->mode_lock);
    mode_select_parse(lu, task->data, len, a->row->cdb_len == 10, &changed,
                      &task->status);
    pthread_mutex_unlock(&lu->mode_lock);
    /* SPC-4: the other nexuses learn of it. */
    if (changed) {
        pthread_mutex_lock(&lu->nexus_lock);
        scsi_ua_raise(lu, UA_MODE_CHANGED, task->slot);
        pthread_mutex_unlock(&lu->nexus_lock);
    }
    return SCSI_DONE;
}

/* ------------------------------------------------------------------ */
/* REPORT LUNS (SPC-4)                                                  */
/* ------------------------------------------------------------------ */

bool spc_report_luns_check(const struct scsi_lu *lu, struct scsi_args *a,
                           spd_status *st)
{
    (void)lu;
    if (a->cdb[2] > 0x02) {         /* SELECT REPORT */
        scsi_invalid_field(st, true, 2, -1);
        return false;
    }
    if (a->count < 16) {            /* ALLOCATION LENGTH at least 16 */
        scsi_invalid_field(st, true, 6, -1);
        return false;
    }
    return true;
}

/* SAM-5 peripheral (LUN < 256) and flat (up to 16383) addressing. */
static void lun_encode(unsigned lun, uint8_t *f)
{
    memset(f, 0, 8);
    if (lun < 256) {
        f[1] = (uint8_t)lun;
    } else {
        f[0] = (uint8_t)(0x40 | (lun >> 8 & 0x3f));
        f[1] = (uint8_t)lun;
    }
}

/* The target's LUNs (task->luns; without them LUN 0 alone). None is a
 * well-known LU, so SELECT REPORT 01h (well-known LUs only) gets an empty
 * list. Entries are written as far as the buffer goes; the LUN LIST
 * LENGTH counts them all. */
enum scsi_action spc_report_luns(struct scsi_lu *lu, struct scsi_task *task,
                                 const struct scsi_args *a)
{
    (void)lu;
    unsigned count = a->cdb[2] == 0x01 ? 0 : task->luns ? task->lun_count : 1;
    uint32_t cap = a->count < task->data_len ? a->count : task->data_len;
    uint8_t entry[8] = { 0 };
    uint8_t *out = task->data;
    uint32_t n = 0;

    put_be32(entry, 8 * count);
    for (unsigned l = 0; l <= count && n < cap; l++) {
        if (l)
            lun_encode(task->luns ? task->luns[l - 1].lun : 0, entry);
        uint32_t take = cap - n < 8 ? cap - n : 8;
        memcpy(out + n, entry, take);
        n += take;
    }
    task->data_in_len = n;
    return SCSI_DONE;
}

/* ------------------------------------------------------------------ */
/* The logical unit's state                                             */
/* ------------------------------------------------------------------ */

void scsi_lu_init(struct scsi_lu *lu, const spd_params *params,
                  uint32_t max_transfer_blocks)
{
    *lu = (struct scsi_lu){ .params = params,
                            .max_transfer_blocks = max_transfer_blocks,
                            .pr_holder = -1, .reserve_holder = -1 };
    pthread_mutex_init(&lu->mode_lock, NULL);
    pthread_mutex_init(&lu->nexus_lock, NULL);
    /* Slot 0: in-process callers, there since power on. */
    lu->nexus[0] = (struct scsi_nexus_rec){
        .id = { SPD_SCSI_NEXUS_INIT }, .used = true };
}

void scsi_lu_fini(struct scsi_lu *lu)
{
    pthread_mutex_destroy(&lu->mode_lock);
    pthread_mutex_destroy(&lu->nexus_lock);
}

bool scsi_lu_d_sense(struct scsi_lu *lu)
{
    pthread_mutex_lock(&lu->mode_lock);
    bool d_sense = lu->d_sense;
    pthread_mutex_unlock(&lu->mode_lock);
    return d_sense;
}

/* Any LUN a target lacks: fixed sense, nothing to change. */
struct scsi_lu *scsi_absent_lu(void)
{
    static const spd_params params = {
        SPD_PARAMS_INIT, .uuid = { 1 }, .block_count = 1,
        .block_length = 512, .max_transfer_length = 512,
    };
    static struct scsi_lu absent = {
        .params = &params, .max_transfer_blocks = 1, .absent = true,
        .mode_lock = PTHREAD_MUTEX_INITIALIZER,
        .nexus_lock = PTHREAD_MUTEX_INITIALIZER,
        .pr_holder = -1, .reserve_holder = -1,
    };
    return &absent;
}
