/*
 * partition.c - MBR and GPT partition tables for devices that hand out a
 * partitioned disk (spd_partition_table_build() and
 * spd_unit_write_partition_table() in spd.h).
 *
 * Layouts follow the MBR as PC firmware and Linux read it, and GPT as
 * UEFI 2.10 chapter 5 defines it: 5.2.3 protective MBR, 5.3.2 header,
 * 5.3.3 entry array. All LBAs count logical blocks, also in the MBR (Linux
 * and Windows read them so on 4096-byte disks); the 512-byte MBR sector is
 * the first 512 bytes of block 0 whatever the block length.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "util/crc.h"
#include "util/errmsg.h"
#include "spd/scsi.h"
#include "spd/partition.h"

#define MBR_ENTRIES       4
#define MBR_TABLE_OFFSET  446
#define MBR_SIGNATURE_OFF 440   /* the 32-bit disk signature */
#define MBR_TYPE_LINUX    0x83
#define MBR_TYPE_GPT      0xEE  /* the protective entry */
#define MBR_MAX_BLOCKS    (UINT64_C(1) << 32)

#define GPT_ENTRIES       128
#define GPT_ENTRY_SIZE    128
#define GPT_HEADER_SIZE   92
#define GPT_REVISION      0x00010000u
#define GPT_NAME_OFFSET   56
#define GPT_NAME          "Spd"

#define ALIGN_BYTES       (1024 * 1024)

/* Linux filesystem data, 0FC63DAF-8483-4772-8E79-3D69D8477DE4, as stored. */
static const uint8_t gpt_type_linux[16] = {
    0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47,
    0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4,
};

/* Where everything goes: the table's own blocks and each partition. */
struct layout {
    spd_partition_scheme scheme;
    uint32_t block_length;
    uint64_t disk_blocks;
    uint32_t entry_blocks;        /* GPT: blocks holding the entry array */
    uint32_t head_blocks, tail_blocks;
    uint64_t first_usable, last_usable;
    unsigned count;
    struct { uint64_t start, blocks; } part[GPT_ENTRIES];
};

/* Where GUIDs and the MBR signature come from: a seed (the unit's UUID)
 * makes them stable, so a rebuilt table names the same disk; without one
 * GUIDs are random and the MBR signature is a sum of the layout. */
struct table_ids {
    const uint8_t *seed;          /* 16 bytes, or NULL */
};

static void put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    put_le16(p, (uint16_t)v);
    put_le16(p + 2, (uint16_t)(v >> 16));
}

static void put_le64(uint8_t *p, uint64_t v)
{
    put_le32(p, (uint32_t)v);
    put_le32(p + 4, (uint32_t)(v >> 32));
}

static const char *scheme_name(spd_partition_scheme scheme)
{
    return scheme == SPD_PARTITION_GPT ? "GPT" : "MBR";
}

static int check_geometry(spd_partition_scheme scheme, uint32_t block_length,
                          uint64_t disk_blocks, unsigned count)
{
    if (scheme != SPD_PARTITION_MBR && scheme != SPD_PARTITION_GPT)
        return spd_set_error(EINVAL, "unknown partition scheme %d", (int)scheme);
    if (block_length < 512 || block_length > 65536 ||
        (block_length & (block_length - 1)))
        return spd_set_error(EINVAL, "block length %u is not a power of two "
                             "from 512 to 65536", block_length);
    unsigned max = scheme == SPD_PARTITION_GPT ? GPT_ENTRIES : MBR_ENTRIES;
    if (count > max)
        return spd_set_error(EINVAL, "%u partitions: %s holds at most %u",
                             count, scheme_name(scheme), max);
    if (scheme == SPD_PARTITION_MBR && disk_blocks > MBR_MAX_BLOCKS)
        return spd_set_error(EINVAL, "the disk has %llu blocks; MBR addresses "
                             "at most 2^32 blocks: use GPT",
                             (unsigned long long)disk_blocks);
    return 0;
}

/* The table's own blocks and the usable range between them. */
static int layout_init(struct layout *l, spd_partition_scheme scheme,
                       uint32_t block_length, uint64_t disk_blocks,
                       unsigned count)
{
    int r = check_geometry(scheme, block_length, disk_blocks, count);
    if (r)
        return r;
    *l = (struct layout){ .scheme = scheme, .block_length = block_length,
                          .disk_blocks = disk_blocks, .count = count };
    if (scheme == SPD_PARTITION_MBR) {
        l->head_blocks = 1;
    } else {
        l->entry_blocks = (GPT_ENTRIES * GPT_ENTRY_SIZE + block_length - 1) /
                          block_length;
        l->head_blocks = 2 + l->entry_blocks;   /* PMBR, header, entries */
        l->tail_blocks = l->entry_blocks + 1;   /* entries, backup header */
    }
    if (disk_blocks < (uint64_t)l->head_blocks + l->tail_blocks + 1)
        return spd_set_error(EINVAL, "a disk of %llu blocks is too small for "
                             "%s: it needs %u blocks for the table and one "
                             "for data", (unsigned long long)disk_blocks,
                             scheme_name(scheme),
                             l->head_blocks + l->tail_blocks + 1);
    l->first_usable = l->head_blocks;
    l->last_usable = disk_blocks - l->tail_blocks - 1;
    return 0;
}

static uint64_t align_up(uint64_t lba, uint64_t align)
{
    if (lba > UINT64_MAX - align)
        return UINT64_MAX;     /* beyond any disk: refused as such */
    return (lba + align - 1) / align * align;
}

/* Resolve partition i's start and size (0 fields: placed for the caller)
 * and check that it lies in the usable range. */
static int place_one(struct layout *l, const spd_partition *p, unsigned i,
                     uint64_t prev_end)
{
    uint64_t align = ALIGN_BYTES / l->block_length;
    uint64_t start = p->start_lba ? p->start_lba : align_up(prev_end, align);

    if (start < l->first_usable)
        return spd_set_error(EINVAL, "partition %u starts at LBA %llu, inside "
                             "the partition table (first usable LBA %llu)",
                             i + 1, (unsigned long long)start,
                             (unsigned long long)l->first_usable);
    if (start > l->last_usable) {
        char why[80] = "";
        if (!p->start_lba)
            snprintf(why, sizeof why, i ? " (the first 1 MiB boundary after "
                     "partition %u)" : " (the first 1 MiB boundary: the disk "
                     "is too small for it)", i);
        return spd_set_error(EINVAL, "partition %u would start at LBA %llu, "
                             "beyond the last usable LBA %llu%s", i + 1,
                             (unsigned long long)start,
                             (unsigned long long)l->last_usable, why);
    }
    uint64_t room = l->last_usable - start + 1;
    uint64_t blocks = p->block_count ? p->block_count : room;
    if (blocks > room)
        return spd_set_error(EINVAL, "partition %u (LBA %llu, %llu blocks) "
                             "ends beyond the last usable LBA %llu", i + 1,
                             (unsigned long long)start,
                             (unsigned long long)blocks,
                             (unsigned long long)l->last_usable);
    l->part[i].start = start;
    l->part[i].blocks = blocks;
    return 0;
}

/* Any two partitions sharing a block: report the first pair found. */
static int check_overlap(const struct layout *l)
{
    for (unsigned i = 0; i < l->count; i++)
        for (unsigned j = i + 1; j < l->count; j++) {
            uint64_t a = l->part[i].start, a_end = a + l->part[i].blocks;
            uint64_t b = l->part[j].start, b_end = b + l->part[j].blocks;
            if (a < b_end && b < a_end)
                return spd_set_error(EINVAL, "partitions %u (LBA %llu-%llu) "
                                     "and %u (LBA %llu-%llu) overlap", i + 1,
                                     (unsigned long long)a,
                                     (unsigned long long)(a_end - 1), j + 1,
                                     (unsigned long long)b,
                                     (unsigned long long)(b_end - 1));
        }
    return 0;
}

static int layout_place(struct layout *l, const spd_partition *parts)
{
    uint64_t prev_end = l->first_usable;
    for (unsigned i = 0; i < l->count; i++) {
        int r = place_one(l, &parts[i], i, prev_end);
        if (r)
            return r;
        prev_end = l->part[i].start + l->part[i].blocks;
    }
    return check_overlap(l);
}

/* One 16-byte MBR entry, addressed by LBA only: the CHS fields hold the
 * "beyond 8 GiB" values FE FF FF that tell readers to use the LBA fields
 * (the protective entry uses UEFI's 00 02 00 / FF FF FF instead). */
static void mbr_entry_put(uint8_t *e, bool active, uint8_t type,
                          uint64_t start, uint64_t blocks)
{
    static const uint8_t chs_lba_only[3] = { 0xfe, 0xff, 0xff };
    static const uint8_t chs_protective_start[3] = { 0x00, 0x02, 0x00 };
    static const uint8_t chs_protective_end[3] = { 0xff, 0xff, 0xff };
    bool protective = type == MBR_TYPE_GPT;

    e[0] = active ? 0x80 : 0x00;
    memcpy(e + 1, protective ? chs_protective_start : chs_lba_only, 3);
    e[4] = type;
    memcpy(e + 5, protective ? chs_protective_end : chs_lba_only, 3);
    put_le32(e + 8, (uint32_t)start);
    put_le32(e + 12, blocks > UINT32_MAX ? UINT32_MAX : (uint32_t)blocks);
}

static uint32_t mbr_disk_signature(const struct layout *l,
                                   const struct table_ids *ids)
{
    if (ids->seed)
        return crc32c(0, ids->seed, 16);
    uint8_t buf[16];
    put_le64(buf, l->disk_blocks);
    uint32_t sum = crc32_ieee(0, buf, 8);
    for (unsigned i = 0; i < l->count; i++) {
        put_le64(buf, l->part[i].start);
        put_le64(buf + 8, l->part[i].blocks);
        sum = crc32_ieee(sum, buf, sizeof buf);
    }
    return sum;
}

static void mbr_fill(uint8_t *sector, const struct layout *l,
                     const spd_partition *parts, const struct table_ids *ids)
{
    put_le32(sector + MBR_SIGNATURE_OFF, mbr_disk_signature(l, ids));
    for (unsigned i = 0; i < l->count; i++)
        mbr_entry_put(sector + MBR_TABLE_OFFSET + 16 * i, parts[i].active,
                      parts[i].mbr_type ? parts[i].mbr_type : MBR_TYPE_LINUX,
                      l->part[i].start, l->part[i].blocks);
    sector[510] = 0x55;
    sector[511] = 0xaa;
}

/* UEFI 5.2.3: one entry of type EEh covering the disk from LBA 1, capped at
 * 2^32 - 1 blocks; the disk signature is unused and left zero. */
static void protective_mbr_fill(uint8_t *sector, const struct layout *l)
{
    mbr_entry_put(sector + MBR_TABLE_OFFSET, false, MBR_TYPE_GPT, 1,
                  l->disk_blocks - 1);
    sector[510] = 0x55;
    sector[511] = 0xaa;
}

/* A GUID as stored on disk (the first three fields little-endian): the
 * version nibble sits in byte 7, the variant bits in byte 8. Derived GUIDs
 * are numbered: 0 is the disk, i + 1 partition i. */
static int guid_make(const struct table_ids *ids, uint32_t number,
                     uint8_t out[16])
{
    uint8_t version = 0x40;
    if (ids->seed) {
        uint8_t name[20];
        memcpy(name, ids->seed, 16);
        put_le32(name + 16, number);
        /* Four sums with different starting values; CRCs are a bijection
         * of the last 32 bits, so numbers of one seed never collide. */
        for (uint32_t w = 0; w < 4; w++)
            put_le32(out + 4 * w, crc32c(w * 0x9e3779b9u, name, sizeof name));
        version = 0x50;
    } else if (getrandom(out, 16, 0) != 16) {
        return spd_set_error(errno ? errno : EIO, "getrandom: %s",
                             strerror(errno));
    }
    out[7] = (uint8_t)((out[7] & 0x0f) | version);
    out[8] = (uint8_t)((out[8] & 0x3f) | 0x80);
    return 0;
}

static bool all_zero(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i])
            return false;
    return true;
}

static int gpt_entries_fill(uint8_t *entries, const struct layout *l,
                            const spd_partition *parts,
                            const struct table_ids *ids)
{
    for (unsigned i = 0; i < l->count; i++) {
        uint8_t *e = entries + (size_t)i * GPT_ENTRY_SIZE;
        const uint8_t *type = parts[i].gpt_type;
        memcpy(e, all_zero(type, 16) ? gpt_type_linux : type, 16);
        int r = guid_make(ids, i + 1, e + 16);
        if (r)
            return r;
        put_le64(e + 32, l->part[i].start);
        put_le64(e + 40, l->part[i].start + l->part[i].blocks - 1);
        /* Attributes (bytes 48-55) stay 0. The name is UTF-16LE. */
        for (size_t c = 0; c < sizeof GPT_NAME - 1; c++)
            put_le16(e + GPT_NAME_OFFSET + 2 * c, (uint16_t)GPT_NAME[c]);
    }
    return 0;
}

/* UEFI 5.3.2. The primary and the backup differ in where they are, where
 * the other is, and where their copy of the entries is. */
static void gpt_header_fill(uint8_t *h, const struct layout *l,
                            uint64_t my_lba, uint64_t alternate_lba,
                            uint64_t entries_lba, uint32_t entries_crc,
                            const uint8_t disk_guid[16])
{
    memcpy(h, "EFI PART", 8);
    put_le32(h + 8, GPT_REVISION);
    put_le32(h + 12, GPT_HEADER_SIZE);
    put_le64(h + 24, my_lba);
    put_le64(h + 32, alternate_lba);
    put_le64(h + 40, l->first_usable);
    put_le64(h + 48, l->last_usable);
    memcpy(h + 56, disk_guid, 16);
    put_le64(h + 72, entries_lba);
    put_le32(h + 80, GPT_ENTRIES);
    put_le32(h + 84, GPT_ENTRY_SIZE);
    put_le32(h + 88, entries_crc);
    /* The header CRC covers the header with its own field zero. */
    put_le32(h + 16, crc32_ieee(0, h, GPT_HEADER_SIZE));
}

/* head: PMBR, header, entries; tail: backup entries, backup header. */
static int gpt_fill(uint8_t *head, uint8_t *tail, const struct layout *l,
                    const spd_partition *parts, const struct table_ids *ids)
{
    uint32_t bl = l->block_length;
    uint8_t *entries = head + 2 * (size_t)bl;
    uint8_t disk_guid[16];
    int r = guid_make(ids, 0, disk_guid);
    if (!r)
        r = gpt_entries_fill(entries, l, parts, ids);
    if (r)
        return r;

    uint32_t entries_crc = crc32_ieee(0, entries, GPT_ENTRIES * GPT_ENTRY_SIZE);
    uint64_t last = l->disk_blocks - 1;
    protective_mbr_fill(head, l);
    gpt_header_fill(head + bl, l, 1, last, 2, entries_crc, disk_guid);
    memcpy(tail, entries, (size_t)l->entry_blocks * bl);
    gpt_header_fill(tail + (size_t)l->entry_blocks * bl, l, last, 1,
                    last - l->entry_blocks, entries_crc, disk_guid);
    return 0;
}

static int table_build(const spd_partition *parts, unsigned count,
                       spd_partition_scheme scheme, uint32_t block_length,
                       uint64_t disk_blocks, const struct table_ids *ids,
                       void **head, uint32_t *head_blocks,
                       void **tail, uint32_t *tail_blocks)
{
    struct layout *l = NULL;
    uint8_t *h = NULL, *t = NULL;
    int r;

    *head = *tail = NULL;
    *head_blocks = *tail_blocks = 0;
    if (count && !parts) {
        r = spd_set_error(EINVAL, "%u partitions but no array", count);
        goto out;
    }
    r = -ENOMEM;
    if (!(l = malloc(sizeof *l)))
        goto out;
    if ((r = layout_init(l, scheme, block_length, disk_blocks, count)) ||
        (r = layout_place(l, parts)))
        goto out;
    r = -ENOMEM;
    h = calloc(l->head_blocks, block_length);
    t = l->tail_blocks ? calloc(l->tail_blocks, block_length) : NULL;
    if (!h || (l->tail_blocks && !t))
        goto out;
    r = 0;
    if (scheme == SPD_PARTITION_MBR)
        mbr_fill(h, l, parts, ids);
    else
        r = gpt_fill(h, t, l, parts, ids);
    if (r)
        goto out;
    *head = h;
    *tail = t;
    *head_blocks = l->head_blocks;
    *tail_blocks = l->tail_blocks;
    h = t = NULL;
out:
    if (r == -ENOMEM)
        spd_set_error(ENOMEM, "out of memory for the partition table");
    free(l);
    free(h);
    free(t);
    return r;
}

int spd_partition_table_build(const spd_partition *parts, unsigned count,
                              spd_partition_scheme scheme,
                              uint32_t block_length, uint64_t disk_blocks,
                              void **head, uint32_t *head_blocks,
                              void **tail, uint32_t *tail_blocks)
{
    struct table_ids ids = { .seed = NULL };
    return table_build(parts, count, scheme, block_length, disk_blocks, &ids,
                       head, head_blocks, tail, tail_blocks);
}

static int write_blocks(spd_unit *unit, void *buf, uint64_t lba,
                        uint32_t blocks)
{
    /* FUA: the table is on stable media when this returns. */
    spd_request req = { SPD_REQUEST_INIT, .op = SPD_OP_WRITE, .fua = true, .lba = lba,
                        .blocks = blocks, .buf = buf };
    spd_status st = spd_unit_run(unit, &req);
    if (spd_status_good(&st))
        return 0;
    return spd_set_error(st.sense_key == SPD_KEY_DATA_PROTECT ? EROFS : EIO,
                         "writing the partition table at LBA %llu: %s, %s",
                         (unsigned long long)lba,
                         spd_sense_key_name(st.sense_key),
                         spd_asc_name(st.asc, st.ascq));
}

int spd_unit_write_partition_table(spd_unit *unit, const spd_partition *parts,
                                   unsigned count, spd_partition_scheme scheme)
{
    const spd_params *params = spd_unit_params(unit);
    /* Seeded by the unit's UUID: the same unit always gets the same GUIDs
     * and MBR signature, as its serial number stays the same. */
    struct table_ids ids = { .seed = params->uuid };
    void *head = NULL, *tail = NULL;
    uint32_t head_blocks, tail_blocks;

    int r = table_build(parts, count, scheme, params->block_length,
                        params->block_count, &ids, &head, &head_blocks,
                        &tail, &tail_blocks);
    if (r)
        goto out;
    r = write_blocks(unit, head, 0, head_blocks);
    if (!r && tail_blocks)
        r = write_blocks(unit, tail, params->block_count - tail_blocks,
                         tail_blocks);
out:
    free(head);
    free(tail);
    return r;
}
