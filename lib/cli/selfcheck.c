/*
 * selfcheck.c - --check: the unit exercised through the SCSI engine as an
 * initiator would, one line per step (see cli.h).
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "spd/scsi.h"


enum outcome { STEP_OK, STEP_FAILED, STEP_SKIPPED };

#define REGIONS        3      /* start, middle, end of the disk */
#define REGION_BLOCKS  8

struct region {
    uint64_t lba;
    uint32_t blocks;
};

struct selfcheck {
    spd_unit *unit;
    const spd_params *params;
    FILE *out;
    unsigned counts[3];       /* by enum outcome */
    bool lbpme, lbprz;        /* as READ CAPACITY(16) reported them */
    struct region region[REGIONS];
    unsigned regions;
    size_t region_bytes;      /* of the largest region */
    uint8_t *saved;           /* the regions' data before the check */
    uint8_t *pattern;         /* what a region is written with */
    uint8_t *buf;             /* what was read */
    bool wrote;               /* the pattern may be on the disk */
};

static void put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    put_be16(p, (uint16_t)(v >> 16));
    put_be16(p + 2, (uint16_t)v);
}

static void put_be64(uint8_t *p, uint64_t v)
{
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static uint64_t get_be64(const uint8_t *p)
{
    return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

__attribute__((format(printf, 3, 4)))
static bool step(struct selfcheck *c, enum outcome outcome, const char *fmt,
                 ...)
{
    static const char *const words[] = { "ok", "FAILED", "skipped" };
    va_list ap;
    fprintf(c->out, "  %-8s", words[outcome]);
    va_start(ap, fmt);
    vfprintf(c->out, fmt, ap);
    va_end(ap);
    fputc('\n', c->out);
    c->counts[outcome]++;
    return outcome == STEP_OK;
}

/* Run one CDB; true when it ended GOOD. */
static bool scsi(struct selfcheck *c, spd_scsi_cmd *cmd, const uint8_t *cdb,
                 uint8_t cdb_len, void *data, uint32_t data_len)
{
    memset(cmd, 0, sizeof *cmd);
    cmd->size = sizeof *cmd;
    memcpy(cmd->cdb, cdb, cdb_len);
    cmd->cdb_len = cdb_len;
    cmd->data = data;
    cmd->data_len = data_len;
    return spd_unit_scsi_run(c->unit, cmd) == SPD_STATUS_GOOD;
}

/* "GOOD", or the check condition's sense in words. */
static const char *status_text(const spd_scsi_cmd *cmd, char *text, size_t len)
{
    const spd_status *st = &cmd->status;
    if (cmd->scsi_status == SPD_STATUS_GOOD)
        snprintf(text, len, "GOOD");
    else if (cmd->scsi_status == SPD_STATUS_CHECK_CONDITION)
        snprintf(text, len, "CHECK CONDITION, %s, %s",
                 spd_sense_key_name(st->sense_key),
                 spd_asc_name(st->asc, st->ascq));
    else
        snprintf(text, len, "status %02Xh", cmd->scsi_status);
    return text;
}

static bool failed_cmd(struct selfcheck *c, const spd_scsi_cmd *cmd,
                       const char *what)
{
    char text[160];
    return step(c, STEP_FAILED, "%s: %s", what,
                status_text(cmd, text, sizeof text));
}

/* INQUIRY text fields are space padded: copy without the padding. */
static void copy_trimmed(char *dst, const uint8_t *src, size_t len)
{
    while (len && (src[len - 1] == ' ' || !src[len - 1]))
        len--;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static bool inquiry(struct selfcheck *c, spd_scsi_cmd *cmd, bool evpd,
                    uint8_t page, uint8_t *buf, uint16_t len)
{
    uint8_t cdb[6] = { SPD_SCSI_INQUIRY, evpd ? 1 : 0, page };
    put_be16(cdb + 3, len);
    memset(buf, 0, len);
    return scsi(c, cmd, cdb, sizeof cdb, buf, len);
}

static void check_inquiry(struct selfcheck *c)
{
    uint8_t buf[96];
    char vendor[9], product[17], revision[5];
    spd_scsi_cmd cmd;
    if (!inquiry(c, &cmd, false, 0, buf, sizeof buf)) {
        failed_cmd(c, &cmd, "INQUIRY");
        return;
    }
    copy_trimmed(vendor, buf + 8, 8);
    copy_trimmed(product, buf + 16, 16);
    copy_trimmed(revision, buf + 32, 4);
    const char *want = c->params->product_id[0] ? c->params->product_id
                                                : "Spd disk";
    bool ok = (buf[0] & 0x1f) == 0 && !strcmp(product, want);
    step(c, ok ? STEP_OK : STEP_FAILED, "INQUIRY: a disk (type %u), vendor "
         "\"%s\", product \"%s\", revision \"%s\"", buf[0] & 0x1f, vendor,
         product, revision);
}

static void check_serial(struct selfcheck *c)
{
    uint8_t buf[256];
    char serial[253];
    spd_scsi_cmd cmd;
    if (!inquiry(c, &cmd, true, 0x80, buf, sizeof buf)) {
        failed_cmd(c, &cmd, "VPD 80h (unit serial number)");
        return;
    }
    copy_trimmed(serial, buf + 4, buf[3] < 252 ? buf[3] : 252);
    step(c, serial[0] ? STEP_OK : STEP_FAILED,
         "VPD 80h unit serial number: %s", serial);
}

/* The first NAA designator of VPD 83h, in hex. */
static bool naa_find(const uint8_t *buf, size_t len, char *hex, size_t cap)
{
    size_t end = 4 + ((size_t)buf[2] << 8 | buf[3]);
    if (end > len)
        end = len;
    for (size_t off = 4; off + 4 <= end; off += 4 + (size_t)buf[off + 3]) {
        size_t dlen = buf[off + 3];
        if ((buf[off + 1] & 0x0f) != 3 || off + 4 + dlen > end)
            continue;
        for (size_t i = 0; i < dlen && 2 * i + 3 <= cap; i++)
            snprintf(hex + 2 * i, 3, "%02x", buf[off + 4 + i]);
        return dlen > 0;
    }
    return false;
}

static void check_device_id(struct selfcheck *c)
{
    uint8_t buf[512];
    char naa[80] = "";
    spd_scsi_cmd cmd;
    if (!inquiry(c, &cmd, true, 0x83, buf, sizeof buf)) {
        failed_cmd(c, &cmd, "VPD 83h (device identification)");
        return;
    }
    if (naa_find(buf, cmd.data_in_len, naa, sizeof naa))
        step(c, STEP_OK, "VPD 83h device identification: NAA 0x%s "
             "(/dev/disk/by-id/wwn-0x%s)", naa, naa);
    else
        step(c, STEP_FAILED, "VPD 83h device identification: no NAA "
             "designator");
}

static void check_capacity(struct selfcheck *c)
{
    const spd_params *p = c->params;
    uint8_t cdb[16] = { SPD_SCSI_SERVICE_ACTION_IN_16, SPD_SA_READ_CAPACITY_16 };
    uint8_t buf[32] = { 0 };
    char size[32];
    spd_scsi_cmd cmd;
    put_be32(cdb + 10, sizeof buf);
    if (!scsi(c, &cmd, cdb, sizeof cdb, buf, sizeof buf)) {
        failed_cmd(c, &cmd, "READ CAPACITY(16)");
        return;
    }
    uint64_t blocks = get_be64(buf) + 1;
    uint32_t bl = get_be32(buf + 8);
    c->lbpme = buf[14] & 0x80;
    c->lbprz = buf[14] & 0x40;
    uint32_t physical = bl << (buf[13] & 0x0f);
    spd_format_size(blocks * bl, size, sizeof size);
    bool ok = blocks == p->block_count && bl == p->block_length &&
              physical == p->physical_block_length &&
              c->lbpme == p->unmap_supported && c->lbprz == p->unmap_reads_zero;
    step(c, ok ? STEP_OK : STEP_FAILED, "READ CAPACITY(16): %llu blocks x %u "
         "bytes = %s, physical blocks of %u; LBPME %d (%s), LBPRZ %d "
         "(unmapped blocks read %s)", (unsigned long long)blocks, bl, size,
         physical, c->lbpme,
         c->lbpme ? "thin provisioned: UNMAP" : "no UNMAP", c->lbprz,
         c->lbprz ? "zeros" : "anything");
}

static void check_block_limits(struct selfcheck *c)
{
    const spd_params *p = c->params;
    uint8_t buf[64];
    char size[32];
    spd_scsi_cmd cmd;
    if (!inquiry(c, &cmd, true, 0xb0, buf, sizeof buf)) {
        failed_cmd(c, &cmd, "VPD B0h (block limits)");
        return;
    }
    uint32_t max = get_be32(buf + 8);
    spd_format_size((uint64_t)max * p->block_length, size, sizeof size);
    step(c, (uint64_t)max * p->block_length == p->max_transfer_length
                ? STEP_OK : STEP_FAILED,
         "VPD B0h block limits: max transfer %u blocks (%s), max unmap %u "
         "blocks in %u descriptors", max, size, get_be32(buf + 20),
         get_be32(buf + 24));
}

/* MODE SENSE(10), caching page (08h), no block descriptors. */
static void check_caching(struct selfcheck *c)
{
    const spd_params *p = c->params;
    uint8_t cdb[10] = { SPD_SCSI_MODE_SENSE_10, 0x08, 0x08 };
    uint8_t buf[64] = { 0 };
    spd_scsi_cmd cmd;
    put_be16(cdb + 7, sizeof buf);
    if (!scsi(c, &cmd, cdb, sizeof cdb, buf, sizeof buf)) {
        failed_cmd(c, &cmd, "MODE SENSE(10) caching page");
        return;
    }
    size_t page = 8 + ((size_t)buf[6] << 8 | buf[7]);
    bool wp = buf[3] & 0x80;
    bool wce = page + 3 <= sizeof buf && (buf[page] & 0x3f) == 0x08 &&
               (buf[page + 2] & 0x04);
    bool ok = wce == p->cache_supported && wp == p->write_protected;
    step(c, ok ? STEP_OK : STEP_FAILED, "MODE SENSE(10) caching page: WCE %d "
         "(%s), WP %d (%s)", wce, wce ? "volatile write cache on"
         : "no volatile write cache", wp, wp ? "write protected" : "writable");
}

/* Up to three distinct regions: the first, middle and last blocks. */
static void regions_pick(struct selfcheck *c)
{
    uint64_t count = c->params->block_count;
    uint32_t n = count >= 4 * REGION_BLOCKS ? REGION_BLOCKS : 1;
    uint64_t want[REGIONS] = { 0, count / 2, count - n };
    uint64_t next_free = 0;

    for (unsigned i = 0; i < REGIONS; i++)
        if (i == 0 || want[i] >= next_free) {
            c->region[c->regions++] = (struct region){ want[i], n };
            next_free = want[i] + n;
        }
    c->region_bytes = (size_t)n * c->params->block_length;
}

/* "0, 65536, 131064" */
static const char *region_list(const struct selfcheck *c, char *text,
                               size_t len)
{
    size_t used = 0;
    text[0] = '\0';
    for (unsigned i = 0; i < c->regions && used < len; i++)
        used += (size_t)snprintf(text + used, len - used, "%s%llu",
                                 i ? ", " : "",
                                 (unsigned long long)c->region[i].lba);
    return text;
}

static uint8_t *region_saved(const struct selfcheck *c, unsigned i)
{
    return c->saved + (size_t)i * c->region_bytes;
}

/* A pattern that differs by region and by byte, never all zeros. */
static void pattern_fill(const struct selfcheck *c, unsigned i)
{
    for (size_t b = 0; b < c->region_bytes; b++)
        c->pattern[b] = (uint8_t)((b * 131 + i * 17 + 0x5a) ^ (b >> 9));
}

static uint32_t checksum(uint32_t sum, const uint8_t *p, size_t len)
{
    while (len--)                       /* FNV-1a */
        sum = (sum ^ *p++) * 16777619u;
    return sum;
}

static bool rw16(struct selfcheck *c, spd_scsi_cmd *cmd, uint8_t opcode,
                 const struct region *r, bool fua, void *buf)
{
    uint8_t cdb[16] = { opcode, fua ? 0x08 : 0 };
    put_be64(cdb + 2, r->lba);
    put_be32(cdb + 10, r->blocks);
    return scsi(c, cmd, cdb, sizeof cdb, buf,
                r->blocks * c->params->block_length);
}

static bool read10(struct selfcheck *c, spd_scsi_cmd *cmd,
                   const struct region *r, void *buf)
{
    uint8_t cdb[10] = { SPD_SCSI_READ_10 };
    put_be32(cdb + 2, (uint32_t)r->lba);
    put_be16(cdb + 7, (uint16_t)r->blocks);
    return scsi(c, cmd, cdb, sizeof cdb, buf,
                r->blocks * c->params->block_length);
}

static bool unmap(struct selfcheck *c, spd_scsi_cmd *cmd,
                  const struct region *r, unsigned n)
{
    uint8_t list[8 + 16 * REGIONS] = { 0 };
    uint8_t cdb[10] = { SPD_SCSI_UNMAP };
    put_be16(list, (uint16_t)(6 + 16 * n));
    put_be16(list + 2, (uint16_t)(16 * n));
    for (unsigned i = 0; i < n; i++) {
        put_be64(list + 8 + 16 * i, r[i].lba);
        put_be32(list + 16 + 16 * i, r[i].blocks);
    }
    put_be16(cdb + 7, (uint16_t)(8 + 16 * n));
    return scsi(c, cmd, cdb, sizeof cdb, list, 8 + 16 * n);
}

static bool save_regions(struct selfcheck *c)
{
    char lbas[96];
    spd_scsi_cmd cmd;
    for (unsigned i = 0; i < c->regions; i++)
        if (!rw16(c, &cmd, SPD_SCSI_READ_16, &c->region[i], false,
                  region_saved(c, i)))
            return failed_cmd(c, &cmd, "READ(16) to save the blocks the "
                              "check overwrites");
    return step(c, STEP_OK, "READ(16) saved %u block(s) at LBA %s, to "
                "restore them at the end", c->region[0].blocks,
                region_list(c, lbas, sizeof lbas));
}

static bool write_pattern(struct selfcheck *c)
{
    char lbas[96];
    spd_scsi_cmd cmd;
    for (unsigned i = 0; i < c->regions; i++) {
        pattern_fill(c, i);
        c->wrote = true;
        if (!rw16(c, &cmd, SPD_SCSI_WRITE_16, &c->region[i], true, c->pattern))
            return failed_cmd(c, &cmd, "WRITE(16) FUA of a test pattern");
    }
    return step(c, STEP_OK, "WRITE(16) FUA: a test pattern over %u block(s) "
                "at LBA %s", c->region[0].blocks,
                region_list(c, lbas, sizeof lbas));
}

/* Read the regions with READ(10) (those it can address) or READ(16); with
 * compare, each must hold its pattern, else the saved data. */
static void read_regions(struct selfcheck *c, bool use10, bool compare)
{
    const char *name = use10 ? "READ(10)" : "READ(16)";
    uint32_t sum = 2166136261u;
    unsigned done = 0;
    spd_scsi_cmd cmd;

    for (unsigned i = 0; i < c->regions; i++) {
        const struct region *r = &c->region[i];
        if (use10 && r->lba + r->blocks > UINT32_MAX)
            continue;     /* beyond READ(10)'s 32-bit LBA */
        memset(c->buf, 0, c->region_bytes);
        if (!(use10 ? read10(c, &cmd, r, c->buf)
                    : rw16(c, &cmd, SPD_SCSI_READ_16, r, false, c->buf))) {
            failed_cmd(c, &cmd, name);
            return;
        }
        pattern_fill(c, i);
        if (compare && memcmp(c->buf, c->pattern, c->region_bytes)) {
            step(c, STEP_FAILED, "%s at LBA %llu: the data read differs from "
                 "what was written", name, (unsigned long long)r->lba);
            return;
        }
        sum = checksum(sum, c->buf, c->region_bytes);
        done++;
    }
    step(c, STEP_OK, "%s of %u regions%s (checksum %08x)", name, done,
         compare ? ": the data matches what was written" : "", sum);
}

static void check_sync(struct selfcheck *c)
{
    uint8_t cdb[10] = { SPD_SCSI_SYNCHRONIZE_CACHE_10 };
    spd_scsi_cmd cmd;
    if (scsi(c, &cmd, cdb, sizeof cdb, NULL, 0))
        step(c, STEP_OK, "SYNCHRONIZE CACHE(10) of the whole unit");
    else
        failed_cmd(c, &cmd, "SYNCHRONIZE CACHE(10)");
}

static bool all_zero(const uint8_t *p, size_t len)
{
    return !len || (!p[0] && !memcmp(p, p + 1, len - 1));
}

static void check_unmap(struct selfcheck *c)
{
    spd_scsi_cmd cmd;
    if (!c->lbpme) {
        step(c, STEP_SKIPPED, "UNMAP: the unit offers no unmap (LBPME 0)");
        return;
    }
    if (!unmap(c, &cmd, c->region, c->regions)) {
        failed_cmd(c, &cmd, "UNMAP");
        return;
    }
    if (!c->lbprz) {
        step(c, STEP_OK, "UNMAP of the %u regions", c->regions);
        step(c, STEP_SKIPPED, "zeros after UNMAP: LBPRZ is 0, unmapped "
             "blocks may read anything");
        return;
    }
    for (unsigned i = 0; i < c->regions; i++) {
        if (!rw16(c, &cmd, SPD_SCSI_READ_16, &c->region[i], false, c->buf)) {
            failed_cmd(c, &cmd, "READ(16) after UNMAP");
            return;
        }
        if (!all_zero(c->buf, c->region_bytes)) {
            step(c, STEP_FAILED, "READ(16) after UNMAP at LBA %llu: not "
                 "zeros, though LBPRZ is 1",
                 (unsigned long long)c->region[i].lba);
            return;
        }
    }
    step(c, STEP_OK, "UNMAP of the %u regions, then READ(16): zeros (LBPRZ)",
         c->regions);
}

/* Put back what save_regions() read. Blocks that held zeros are unmapped
 * instead where that reads zeros, so a sparse disk stays sparse. */
static void restore_regions(struct selfcheck *c)
{
    unsigned by_unmap = 0;
    spd_scsi_cmd cmd;
    for (unsigned i = 0; i < c->regions; i++) {
        const struct region *r = &c->region[i];
        bool zero = c->lbpme && c->lbprz &&
                    all_zero(region_saved(c, i), c->region_bytes);
        if (zero ? unmap(c, &cmd, r, 1)
                 : rw16(c, &cmd, SPD_SCSI_WRITE_16, r, true, region_saved(c, i))) {
            by_unmap += zero;
            continue;
        }
        char text[160];
        step(c, STEP_FAILED, "restoring LBA %llu (%u blocks): %s; they now "
             "hold the test pattern", (unsigned long long)r->lba, r->blocks,
             status_text(&cmd, text, sizeof text));
        return;
    }
    step(c, STEP_OK, "restored the blocks the check overwrote (%u regions "
         "by WRITE(16), %u that held zeros by UNMAP)", c->regions - by_unmap,
         by_unmap);
}

/* A write must be refused; it writes block 0's own data, so even a unit
 * that wrongly took it would keep its content. */
static void check_write_refused(struct selfcheck *c)
{
    struct region first = { 0, 1 };
    spd_scsi_cmd cmd;
    char text[160];
    if (!rw16(c, &cmd, SPD_SCSI_READ_16, &first, false, c->buf)) {
        failed_cmd(c, &cmd, "READ(16) of block 0");
        return;
    }
    rw16(c, &cmd, SPD_SCSI_WRITE_16, &first, false, c->buf);
    bool ok = cmd.scsi_status == SPD_STATUS_CHECK_CONDITION &&
              cmd.status.sense_key == SPD_KEY_DATA_PROTECT;
    step(c, ok ? STEP_OK : STEP_FAILED, "WRITE(16) on the write-protected "
         "unit: %s", status_text(&cmd, text, sizeof text));
}

static void check_past_end(struct selfcheck *c)
{
    struct region past = { c->params->block_count, 1 };
    spd_scsi_cmd cmd;
    char text[160];
    rw16(c, &cmd, SPD_SCSI_READ_16, &past, false, c->buf);
    bool ok = cmd.scsi_status == SPD_STATUS_CHECK_CONDITION &&
              cmd.status.sense_key == SPD_KEY_ILLEGAL_REQUEST &&
              cmd.status.asc == SPD_ASC(SPD_ASC_LBA_OUT_OF_RANGE) &&
              cmd.status.ascq == SPD_ASCQ(SPD_ASC_LBA_OUT_OF_RANGE);
    step(c, ok ? STEP_OK : STEP_FAILED, "READ(16) one block past the end "
         "(LBA %llu): %s", (unsigned long long)past.lba,
         status_text(&cmd, text, sizeof text));
}

static void check_data(struct selfcheck *c)
{
    if (c->params->write_protected) {
        step(c, STEP_SKIPPED, "WRITE and UNMAP of test data: the unit is "
             "write protected, nothing is written");
        read_regions(c, true, false);
        read_regions(c, false, false);
        check_sync(c);
        check_write_refused(c);
        return;
    }
    if (!save_regions(c))
        return;
    if (write_pattern(c)) {
        read_regions(c, true, true);
        read_regions(c, false, true);
        check_sync(c);
        check_unmap(c);
    }
    if (c->wrote)
        restore_regions(c);
}

int cli_selfcheck(spd_unit *unit, FILE *out)
{
    struct selfcheck c = { .unit = unit, .params = spd_unit_params(unit),
                           .out = out };
    const spd_params *p = c.params;
    char size[32];

    spd_format_size(p->block_count * p->block_length, size, sizeof size);
    fprintf(out, "Self-check of a %s disk (%llu blocks of %u bytes) through "
            "the SCSI engine:\n", size, (unsigned long long)p->block_count,
            p->block_length);
    check_inquiry(&c);
    check_serial(&c);
    check_device_id(&c);
    check_capacity(&c);
    check_block_limits(&c);
    check_caching(&c);

    regions_pick(&c);
    c.saved = malloc(REGIONS * c.region_bytes);
    c.pattern = malloc(c.region_bytes);
    c.buf = malloc(c.region_bytes);
    if (c.saved && c.pattern && c.buf)
        check_data(&c);
    else
        step(&c, STEP_FAILED, "out of memory for the data checks");
    if (c.buf)
        check_past_end(&c);

    free(c.saved);
    free(c.pattern);
    free(c.buf);
    fprintf(out, "self-check: %u ok, %u failed, %u skipped\n",
            c.counts[STEP_OK], c.counts[STEP_FAILED], c.counts[STEP_SKIPPED]);
    fflush(out);
    return c.counts[STEP_FAILED] ? 1 : 0;
}
