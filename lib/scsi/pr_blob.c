/*
 * pr_blob.c - the persistent reservation state of a logical unit as a
 * blob, for a store that several processes serving one disk share
 * (spd_ops.pr_load, pr_update; pr.c runs the exchange). The blob is the
 * engine's alone: the device stores it without looking inside. Big
 * endian, versioned, and read defensively: another process, another
 * version of Spd or a damaged store may have written it.
 *
 *   0  "SpdR"         magic
 *   4  version        1
 *   5  type           the reservation's TYPE, 0 with no reservation
 *   6  holder         index of the holder's registration, 0xffff: none
 *   8  generation     PRGENERATION
 *  12  count          registrations that follow, at most SCSI_NEXUS_MAX
 *  14  0              reserved
 *  16  registrations, each: key (8), relative target port (2), flags (1:
 *      0x01 the ISID is valid, 0x02 ALL_TG_PT), name length (1), ISID
 *      (6), the initiator port's name (no NUL; empty: the in-process
 *      nexus); the blob ends with the last one.
 */
#include <errno.h>
#include <string.h>

#include "scsi/scsi_int.h"

#define BLOB_VERSION 1
#define BLOB_HEAD    16
#define REG_HEAD     18
#define NO_HOLDER    0xffff
#define FLAG_ISID    0x01
#define FLAG_ALL_TG_PT 0x02

_Static_assert(BLOB_HEAD + SCSI_NEXUS_MAX * (REG_HEAD + SPD_SCSI_NAME_MAX - 1)
                   <= SPD_PR_STATE_MAX,
               "every registration fits in SPD_PR_STATE_MAX");

static const uint8_t magic[4] = { 'S', 'p', 'd', 'R' };

size_t scsi_pr_encode(const struct scsi_lu *lu, uint8_t *buf)
{
    size_t n = BLOB_HEAD;
    uint16_t count = 0, holder = NO_HOLDER;
    for (int i = 0; i < SCSI_NEXUS_MAX; i++) {
        const struct scsi_nexus_rec *r = &lu->nexus[i];
        if (!r->registered)
            continue;
        size_t len = i == 0 ? 0 : strnlen(r->id.name, SPD_SCSI_NAME_MAX - 1);
        uint8_t *p = buf + n;
        put_be64(p, r->key);
        put_be16(p + 8, r->id.rel_port);
        p[10] = (uint8_t)((r->id.has_isid ? FLAG_ISID : 0) |
                          (r->all_tg_pt ? FLAG_ALL_TG_PT : 0));
        p[11] = (uint8_t)len;
        memcpy(p + 12, r->id.isid, 6);
        memcpy(p + REG_HEAD, r->id.name, len);
        n += REG_HEAD + len;
        if (i == lu->pr_holder)
            holder = count;
        count++;
    }
    memcpy(buf, magic, 4);
    buf[4] = BLOB_VERSION;
    buf[5] = holder == NO_HOLDER ? 0 : lu->pr_type;
    put_be16(buf + 6, holder);
    put_be32(buf + 8, lu->pr_generation);
    put_be16(buf + 12, count);
    put_be16(buf + 14, 0);
    return n;
}

/* One registration of a blob: the nexus and its key. */
struct reg {
    spd_scsi_nexus id;
    uint64_t key;
    bool all_tg_pt;
};

/* Registration at *off (advanced past it): false when it does not fit
 * the blob or is malformed. */
static bool reg_read(const uint8_t *buf, size_t len, size_t *off,
                     struct reg *r)
{
    const uint8_t *p = buf + *off;
    if (len - *off < REG_HEAD || len - *off - REG_HEAD < p[11] ||
        p[11] >= SPD_SCSI_NAME_MAX)
        return false;
    size_t nlen = p[11];
    *r = (struct reg){ .id = { SPD_SCSI_NEXUS_INIT } };
    r->key = get_be64(p);
    r->id.rel_port = get_be16(p + 8);
    r->id.has_isid = p[10] & FLAG_ISID;
    r->all_tg_pt = p[10] & FLAG_ALL_TG_PT;
    memcpy(r->id.isid, p + 12, 6);
    memcpy(r->id.name, p + REG_HEAD, nlen);
    r->id.name[nlen] = '\0';
    *off += REG_HEAD + nlen;
    /* A registration has a key; a name has no NUL; no unknown flag. */
    return r->key && strlen(r->id.name) == nlen &&
           !(p[10] & ~(FLAG_ISID | FLAG_ALL_TG_PT));
}

/* The whole blob well formed: header, every registration, the end. */
static bool blob_valid(const uint8_t *buf, size_t len)
{
    if (len < BLOB_HEAD || memcmp(buf, magic, 4) || buf[4] != BLOB_VERSION ||
        get_be16(buf + 14))
        return false;
    unsigned count = get_be16(buf + 12), holder = get_be16(buf + 6);
    if (count > SCSI_NEXUS_MAX)
        return false;
    if (holder == NO_HOLDER ? buf[5] != 0
                            : holder >= count || !scsi_pr_type_valid(buf[5]))
        return false;
    size_t off = BLOB_HEAD;
    struct reg r;
    for (unsigned i = 0; i < count; i++)
        if (!reg_read(buf, len, &off, &r))
            return false;
    return off == len;
}

int scsi_pr_install(struct scsi_lu *lu, const uint8_t *buf, size_t len)
{
    /* None stored yet: no registration, no reservation. */
    static const uint8_t none[BLOB_HEAD] = { 'S', 'p', 'd', 'R', BLOB_VERSION,
                                             0, 0xff, 0xff };
    if (!len) {
        buf = none;
        len = sizeof none;
    }
    if (!blob_valid(buf, len))
        return -EINVAL;
    /* Each registration's slot first, while the registrations here still
     * keep theirs from being given to another nexus. */
    unsigned count = get_be16(buf + 12), holder = get_be16(buf + 6);
    int slots[SCSI_NEXUS_MAX];
    uint64_t taken = 0;
    size_t off = BLOB_HEAD;
    for (unsigned i = 0; i < count; i++) {
        struct reg g;
        reg_read(buf, len, &off, &g);
        int slot = slots[i] = g.id.name[0] ? scsi_nexus_slot(lu, &g.id) : 0;
        if (slot < 0)
            return -ENOSPC;
        if (taken >> slot & 1)
            return -EINVAL;                 /* one nexus twice */
        taken |= 1ull << slot;
    }
    lu->pr_holder = -1;
    lu->pr_type = 0;
    lu->pr_generation = get_be32(buf + 8);
    off = BLOB_HEAD;
    for (unsigned i = 0; i < count; i++) {
        struct reg g;
        reg_read(buf, len, &off, &g);
        lu->nexus[slots[i]].key = g.key;
        lu->nexus[slots[i]].all_tg_pt = g.all_tg_pt;
        if (i == holder) {
            lu->pr_holder = slots[i];
            lu->pr_type = buf[5];
        }
    }
    for (int i = 0; i < SCSI_NEXUS_MAX; i++) {
        struct scsi_nexus_rec *r = &lu->nexus[i];
        /* A registration gone by another process's PREEMPT or CLEAR: its
         * nexus here learns it (SPC-4 "Preempting"). */
        if (r->registered && !(taken >> i & 1))
            r->ua |= 1u << UA_REGISTRATIONS_PREEMPTED;
        r->registered = taken >> i & 1;
        if (!r->registered)
            r->key = 0;
    }
    return 0;
}
