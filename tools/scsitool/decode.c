/*
 * decode.c - what the answers to spd-scsitool's commands say: standard
 * INQUIRY, the VPD pages a disk has (SPC-4 7.8, SBC-4 6.6), MODE SENSE(10)
 * pages, READ CAPACITY, GET LBA STATUS, REPORT LUNS, and the status with
 * its sense decoded through libspd's name tables.
 */
#include <string.h>

#include "scsitool.h"
#include "spd/scsi.h"
#include "util/bytes.h"

/* A fixed-width ASCII field without its trailing spaces. */
static void out_ascii(const char *key, const uint8_t *p, size_t len)
{
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\0'))
        len--;
    out_str(key, "%.*s", (int)len, (const char *)p);
}

static const char *device_type_name(unsigned type)
{
    switch (type) {
    case 0x00: return "direct access block device";
    case 0x05: return "CD/DVD device";
    case 0x0d: return "enclosure services device";
    case 0x1f: return "unknown or no device";
    default:   return "other";
    }
}

void decode_inquiry(const uint8_t *d, size_t len)
{
    if (len < 36) {
        out_hex("data", d, len);                 /* too short to decode */
        return;
    }
    out_u64("peripheral_qualifier", d[0] >> 5);
    out_str("device_type", "%u (%s)", d[0] & 0x1fu,
            device_type_name(d[0] & 0x1fu));
    out_bool("removable", d[1] & 0x80);
    out_str("version", "%02xh%s", d[2], d[2] == 6 ? " (SPC-4)"
                                       : d[2] == 7 ? " (SPC-5)" : "");
    out_u64("response_data_format", d[3] & 0x0f);
    out_bool("hisup", d[3] & 0x10);
    out_u64("tpgs", (d[5] >> 4) & 3);
    out_bool("3pc", d[5] & 0x08);
    out_bool("protect", d[5] & 0x01);
    out_bool("cmdque", d[7] & 0x02);
    out_ascii("vendor", d + 8, 8);
    out_ascii("product", d + 16, 16);
    out_ascii("revision", d + 32, 4);
}

/* ---- VPD pages ------------------------------------------------------ */

static const char *designator_type(unsigned type)
{
    static const char *const names[] = {
        "vendor specific", "T10 vendor ID", "EUI-64", "NAA",
        "relative target port", "target port group", "logical unit group",
        "MD5 logical unit", "SCSI name string" };
    return type < sizeof names / sizeof names[0] ? names[type] : "reserved";
}

static void vpd_designators(const uint8_t *p, size_t len)
{
    static const char *const assoc[] = { "logical unit", "target port",
                                         "target device", "reserved" };
    out_open("designators", true);
    for (size_t n = 0; n + 4 <= len && n + 4 + p[n + 3] <= len;
         n += 4 + p[n + 3]) {
        const uint8_t *d = p + n, *v = d + 4;
        unsigned type = d[1] & 0x0f, code_set = d[0] & 0x0f, vlen = d[3];
        out_open(NULL, false);
        out_str("type", "%s", designator_type(type));
        out_str("association", "%s", assoc[(d[1] >> 4) & 3]);
        if ((type == 4 || type == 5 || type == 6) && vlen >= 4)
            out_u64("value", get_be16(v + 2));
        else if (code_set == 2 || code_set == 3)   /* ASCII, UTF-8 */
            out_ascii("value", v, vlen);
        else
            out_hex("value", v, vlen);
        out_close();
    }
    out_close();
}

static void vpd_block_limits(const uint8_t *p, size_t len)
{
    if (len < 60) {
        out_hex("data", p, len);
        return;
    }
    out_u64("max_compare_and_write_blocks", p[5]);
    out_u64("optimal_transfer_granularity", get_be16(p + 6));
    out_u64("max_transfer_blocks", get_be32(p + 8));
    out_u64("optimal_transfer_blocks", get_be32(p + 12));
    out_u64("max_prefetch_blocks", get_be32(p + 16));
    out_u64("max_unmap_blocks", get_be32(p + 20));
    out_u64("max_unmap_descriptors", get_be32(p + 24));
    out_u64("optimal_unmap_granularity", get_be32(p + 28));
    if (p[32] & 0x80)
        out_u64("unmap_granularity_alignment", get_be32(p + 32) & 0x7fffffff);
    out_u64("max_write_same_blocks", get_be64(p + 36));
}

static void vpd_characteristics(const uint8_t *p, size_t len)
{
    if (len < 8) {
        out_hex("data", p, len);
        return;
    }
    uint16_t rate = get_be16(p + 4);
    if (rate == 1)
        out_str("rotation_rate", "non-rotating medium");
    else if (rate)
        out_u64("rotation_rate", rate);
    else
        out_str("rotation_rate", "not reported");
    out_u64("nominal_form_factor", p[7] & 0x0f);
}

static void vpd_provisioning(const uint8_t *p, size_t len)
{
    static const char *const types[] = { "not reported (full)", "resource",
                                         "thin" };
    if (len < 8) {
        out_hex("data", p, len);
        return;
    }
    out_u64("threshold_exponent", p[4]);
    out_bool("lbpu", p[5] & 0x80);               /* UNMAP */
    out_bool("lbpws", p[5] & 0x40);              /* WRITE SAME(16) unmap */
    out_bool("lbpws10", p[5] & 0x20);
    out_u64("lbprz", (p[5] >> 2) & 7);           /* unmapped reads zeros */
    out_bool("anc_sup", p[5] & 0x02);
    unsigned type = p[6] & 7;
    out_str("provisioning_type", "%u (%s)", type,
            type < 3 ? types[type] : "reserved");
}

void decode_vpd(const uint8_t *d, size_t len)
{
    if (len < 4) {
        out_hex("data", d, len);
        return;
    }
    size_t plen = 4 + (size_t)get_be16(d + 2);
    if (plen > len)
        plen = len;                              /* truncated: decode what came */
    out_str("page", "%02xh", d[1]);
    switch (d[1]) {
    case 0x00:
        out_open("pages", true);
        for (size_t i = 4; i < plen; i++)
            out_str(NULL, "%02xh", d[i]);
        out_close();
        break;
    case 0x80:
        out_ascii("serial_number", d + 4, plen - 4);
        break;
    case 0x83:
        vpd_designators(d + 4, plen - 4);
        break;
    case 0xb0:
        vpd_block_limits(d, plen);
        break;
    case 0xb1:
        vpd_characteristics(d, plen);
        break;
    case 0xb2:
        vpd_provisioning(d, plen);
        break;
    default:
        out_hex("data", d, plen);
    }
}

/* ---- MODE SENSE(10) ------------------------------------------------- */

static const char *mode_page_name(unsigned code)
{
    switch (code) {
    case 0x01: return "read-write error recovery";
    case 0x02: return "disconnect-reconnect";
    case 0x08: return "caching";
    case 0x0a: return "control";
    case 0x18: return "protocol specific logical unit";
    case 0x19: return "protocol specific port";
    case 0x1a: return "power condition";
    case 0x1c: return "informational exceptions control";
    default:   return "other";
    }
}

static void mode_page(const uint8_t *p, size_t len)
{
    unsigned code = p[0] & 0x3f;
    out_open(NULL, false);
    out_str("page", "%02xh (%s)", code, mode_page_name(code));
    if ((p[0] & 0x40) && len > 1)                   /* SPF: a subpage */
        out_str("subpage", "%02xh", p[1]);
    if (code == 0x08 && len >= 3) {
        out_bool("wce", p[2] & 0x04);               /* write cache enabled */
        out_bool("rcd", p[2] & 0x01);               /* read cache disabled */
    } else if (code == 0x0a && len >= 4 && !(p[0] & 0x40)) {
        out_bool("d_sense", p[2] & 0x04);           /* descriptor sense */
        out_u64("queue_algorithm_modifier", p[3] >> 4);
        out_bool("swp", len >= 5 && (p[4] & 0x08)); /* software write protect */
    }
    out_hex("data", p, len);
    out_close();
}

void decode_mode_sense10(const uint8_t *d, size_t len)
{
    if (len < 8) {
        out_hex("data", d, len);
        return;
    }
    size_t end = 2 + (size_t)get_be16(d);
    if (end > len)
        end = len;
    size_t n = 8 + (size_t)get_be16(d + 6);
    out_u64("medium_type", d[2]);
    out_bool("write_protected", d[3] & 0x80);
    out_bool("dpofua", d[3] & 0x10);
    out_u64("block_descriptor_length", get_be16(d + 6));
    out_open("pages", true);
    while (n < end && n + (d[n] & 0x40 ? 4 : 2) <= end) {   /* a header */
        size_t plen = d[n] & 0x40 ? 4 + (size_t)get_be16(d + n + 2)
                                  : 2 + (size_t)d[n + 1];
        if (n + plen > end)
            plen = end - n;
        mode_page(d + n, plen);
        n += plen;
    }
    out_close();
}

/* ---- capacity, LBA status, LUNs ------------------------------------- */

static void capacity(uint64_t last, uint32_t block_length)
{
    out_u64("last_lba", last);
    out_u64("blocks", last + 1);
    out_u64("block_length", block_length);
    out_u64("bytes", (last + 1) * block_length);
}

void decode_capacity10(const uint8_t *d, size_t len)
{
    if (len < 8)
        out_hex("data", d, len);
    else
        capacity(get_be32(d), get_be32(d + 4));
}

void decode_capacity16(const uint8_t *d, size_t len)
{
    if (len < 16) {
        out_hex("data", d, len);
        return;
    }
    capacity(get_be64(d), get_be32(d + 8));
    out_bool("prot_en", d[12] & 0x01);
    out_u64("p_type", (d[12] >> 1) & 7);
    out_u64("logical_blocks_per_physical_block_exponent", d[13] & 0x0f);
    out_bool("lbpme", d[14] & 0x80);               /* thin provisioned */
    out_bool("lbprz", d[14] & 0x40);               /* unmapped reads zeros */
    out_u64("lowest_aligned_lba", get_be16(d + 14) & 0x3fff);
}

void decode_lba_status(const uint8_t *d, size_t len)
{
    static const char *const states[] = { "mapped", "deallocated",
                                          "anchored" };
    if (len < 8) {
        out_hex("data", d, len);
        return;
    }
    size_t end = 4 + (size_t)get_be32(d);
    if (end > len)
        end = len;
    out_open("descriptors", true);
    for (size_t n = 8; n + 16 <= end; n += 16) {
        unsigned state = d[n + 12] & 0x0f;
        out_open(NULL, false);
        out_u64("lba", get_be64(d + n));
        out_u64("blocks", get_be32(d + n + 8));
        out_str("status", "%s", state < 3 ? states[state] : "other");
        out_close();
    }
    out_close();
}

/* SAM-5 LUN formats: peripheral (00b) and flat (01b) addressing. */
void decode_luns(const uint8_t *d, size_t len)
{
    if (len < 8) {
        out_hex("data", d, len);
        return;
    }
    size_t end = 8 + (size_t)get_be32(d);
    if (end > len)
        end = len;
    out_open("luns", true);
    for (size_t n = 8; n + 8 <= end; n += 8) {
        unsigned method = d[n] >> 6;
        if (method == 0 || method == 1)
            out_u64(NULL, method ? (d[n] & 0x3fu) << 8 | d[n + 1] : d[n + 1]);
        else
            out_hex(NULL, d + n, 8);
    }
    out_close();
}

/* ---- target port groups and reservations ---------------------------- */

/* REPORT TARGET PORT GROUPS, length-only format (SPC-4 6.37). */
void decode_port_groups(const uint8_t *d, size_t len)
{
    static const char *states[16] = {
        "active/optimized", "active/non-optimized", "standby", "unavailable",
        [0xe] = "offline", [0xf] = "transitioning" };
    size_t end = len < 4 ? len : 4 + (size_t)get_be32(d);
    if (end > len)
        end = len;
    out_open("port_groups", true);
    for (size_t n = 4; n + 8 <= end; ) {
        const char *state = states[d[n] & 0x0f];
        out_open(NULL, false);
        out_u64("id", get_be16(d + n + 2));
        out_str("state", "%s", state ? state : "reserved");
        out_bool("preferred", d[n] & 0x80);
        out_open("ports", true);
        size_t ports = d[n + 7];
        n += 8;
        for (size_t p = 0; p < ports && n + 4 <= end; p++, n += 4)
            out_u64(NULL, get_be16(d + n + 2));
        out_close();
        out_close();
    }
    out_close();
}

static const char *pr_type_name(uint8_t type)
{
    switch (type) {
    case 1: return "write exclusive";
    case 3: return "exclusive access";
    case 5: return "write exclusive, registrants only";
    case 6: return "exclusive access, registrants only";
    case 7: return "write exclusive, all registrants";
    case 8: return "exclusive access, all registrants";
    default: return "reserved";
    }
}

/* PERSISTENT RESERVE IN, READ KEYS. */
void decode_pr_keys(const uint8_t *d, size_t len)
{
    if (len < 8) {
        out_hex("data", d, len);
        return;
    }
    size_t end = 8 + (size_t)get_be32(d + 4);
    out_u64("generation", get_be32(d));
    out_open("keys", true);
    for (size_t n = 8; n + 8 <= end && n + 8 <= len; n += 8)
        out_str(NULL, "0x%016llx", (unsigned long long)get_be64(d + n));
    out_close();
}

/* PERSISTENT RESERVE IN, READ RESERVATION. */
void decode_pr_reservation(const uint8_t *d, size_t len)
{
    if (len < 8) {
        out_hex("data", d, len);
        return;
    }
    out_u64("generation", get_be32(d));
    bool held = get_be32(d + 4) >= 16 && len >= 24;
    out_bool("reserved", held);
    if (held) {
        out_str("key", "0x%016llx", (unsigned long long)get_be64(d + 8));
        out_str("type", "%s", pr_type_name(d[21] & 0x0f));
    }
}

/* ---- status and sense ----------------------------------------------- */

static const char *status_name(uint8_t status)
{
    switch (status) {
    case 0x00: return "GOOD";
    case 0x02: return "CHECK CONDITION";
    case 0x04: return "CONDITION MET";
    case 0x08: return "BUSY";
    case 0x18: return "RESERVATION CONFLICT";
    case 0x28: return "TASK SET FULL";
    case 0x30: return "ACA ACTIVE";
    case 0x40: return "TASK ABORTED";
    default:   return "reserved";
    }
}

/* SPC-4 "Sense key specific sense data": a field pointer for ILLEGAL
 * REQUEST, a progress indication for NOT READY and NO SENSE. */
static void sense_key_specific(const spd_status *st)
{
    const uint8_t *s = st->sks;
    if (!(s[0] & 0x80))
        return;
    if (st->sense_key == SPD_KEY_ILLEGAL_REQUEST) {
        char bit[16] = "";
        if (s[0] & 0x08)
            snprintf(bit, sizeof bit, " bit %u", s[0] & 7u);
        out_str("field_pointer", "%s byte %u%s", s[0] & 0x40 ? "CDB"
                : "parameter list", get_be16(s + 1), bit);
    } else if (st->sense_key == SPD_KEY_NOT_READY ||
               st->sense_key == SPD_KEY_NO_SENSE) {
        out_str("progress", "%u%%", get_be16(s + 1) * 100u / 65536u);
    } else {
        out_hex("sense_key_specific", s, 3);
    }
}

void decode_status(const struct xfer *x)
{
    out_str("status", "%s", status_name(x->status));
    if (x->status != SPD_STATUS_CHECK_CONDITION)
        return;
    spd_status st;
    if (!x->sense_len || spd_sense_parse(x->sense, x->sense_len, &st)) {
        out_hex("sense", x->sense, x->sense_len);  /* none, or unknown form */
        return;
    }
    out_str("sense_key", "%s", spd_sense_key_name(st.sense_key));
    out_str("additional_sense", "%s", spd_asc_name(st.asc, st.ascq));
    out_str("asc_ascq", "%02xh/%02xh", st.asc, st.ascq);
    if (st.info_valid)
        out_u64("information", st.information);
    sense_key_specific(&st);
    out_hex("sense", x->sense, x->sense_len);
}
