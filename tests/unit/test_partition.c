/*
 * test_partition.c - partition tables (lib/util/partition.c) and the CRCs they
 * and iSCSI use (lib/util/crc.c).
 *
 * Tables are checked field by field with their CRCs recomputed here, then
 * handed to the real tools (sfdisk, sgdisk) on an image file, and written
 * through a unit to see they land on the disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/crc.h"
#include "harness.h"
#include "memunit.h"
#include "spd/partition.h"

#define MIB (1024 * 1024)

/* Where a test expects a partition. */
struct expect {
    uint64_t start, blocks;
};

/* The result of spd_partition_table_build(), freed by table_free(). */
struct table {
    uint8_t *head, *tail;
    uint32_t head_blocks, tail_blocks;
};

static uint16_t get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)get_le16(p) | (uint32_t)get_le16(p + 2) << 16;
}

static uint64_t get_le64(const uint8_t *p)
{
    return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static int build(struct table *t, const spd_partition *parts, unsigned count,
                 spd_partition_scheme scheme, uint32_t bl, uint64_t blocks)
{
    void *head = (void *)1, *tail = (void *)1;
    int r = spd_partition_table_build(parts, count, scheme, bl, blocks, &head,
                                      &t->head_blocks, &tail, &t->tail_blocks);
    t->head = head;
    t->tail = tail;
    return r;
}

static void table_free(struct table *t)
{
    free(t->head);
    free(t->tail);
}

/* ---- CRCs ---------------------------------------------------------- */

/* One bit at a time, straight from the definition. */
static uint32_t crc_reference(uint32_t poly, uint32_t crc, const uint8_t *p,
                              size_t len)
{
    crc = ~crc;
    while (len--) {
        crc ^= *p++;
        for (int bit = 0; bit < 8; bit++)
            crc = (crc & 1) ? (crc >> 1) ^ poly : crc >> 1;
    }
    return ~crc;
}

static void test_crc_check_values(void)
{
    EXPECT_EQ(crc32_ieee(0, "123456789", 9), 0xCBF43926);
    EXPECT_EQ(crc32c(0, "123456789", 9), 0xE3069283);
    EXPECT_EQ(crc32_ieee(0, "", 0), 0);
    EXPECT_EQ(crc32c(0, "", 0), 0);
}

/* RFC 3720 B.4: the iSCSI digest examples. */
static void test_crc32c_iscsi_vectors(void)
{
    uint8_t buf[32];
    memset(buf, 0, sizeof buf);
    EXPECT_EQ(crc32c(0, buf, 32), 0x8A9136AA);
    memset(buf, 0xff, sizeof buf);
    EXPECT_EQ(crc32c(0, buf, 32), 0x62A8AB43);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)i;
    EXPECT_EQ(crc32c(0, buf, 32), 0x46DD794E);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)(31 - i);
    EXPECT_EQ(crc32c(0, buf, 32), 0x113FDB5C);
}

/* Every length and alignment path (bytes, 8-byte words, the three-stream
 * blocks of 768 and 24576 bytes) against the bitwise definition, and a sum
 * continued over pieces equal to the sum of the whole. */
static void test_crc_lengths_alignments_pieces(void)
{
    size_t size = 3 * 24576 * 2 + 64;
    uint8_t *buf = malloc(size);
    uint32_t seed = 12345;
    for (size_t i = 0; i < size; i++) {
        seed = seed * 1103515245 + 12345;
        buf[i] = (uint8_t)(seed >> 16);
    }
    static const size_t lengths[] = { 0, 1, 7, 8, 9, 63, 767, 768, 769, 2000,
                                      24575, 24576, 24577, 3 * 24576 * 2 };
    for (size_t a = 0; a < 8; a++)
        for (size_t k = 0; k < sizeof lengths / sizeof lengths[0]; k++) {
            size_t n = lengths[k];
            EXPECT_EQ(crc32c(0, buf + a, n),
                      crc_reference(0x82F63B78, 0, buf + a, n));
            EXPECT_EQ(crc32_ieee(0, buf + a, n),
                      crc_reference(0xEDB88320, 0, buf + a, n));
        }
    uint32_t c = crc32c(0, buf, 1000), i = crc32_ieee(0, buf, 1000);
    EXPECT_EQ(crc32c(c, buf + 1000, size - 1000), crc32c(0, buf, size));
    EXPECT_EQ(crc32_ieee(i, buf + 1000, size - 1000), crc32_ieee(0, buf, size));
    free(buf);
}

/* ---- MBR ----------------------------------------------------------- */

static const uint8_t *mbr_entry(const uint8_t *sector, unsigned i)
{
    return sector + 446 + 16 * i;
}

static void check_mbr(const uint8_t *sector, const struct expect *want,
                      unsigned count)
{
    EXPECT_EQ(sector[510], 0x55);
    EXPECT_EQ(sector[511], 0xAA);
    for (unsigned i = 0; i < 4; i++) {
        const uint8_t *e = mbr_entry(sector, i);
        if (i >= count) {
            for (int b = 0; b < 16; b++)
                EXPECT_EQ(e[b], 0);
            continue;
        }
        EXPECT_EQ(get_le32(e + 8), want[i].start);
        EXPECT_EQ(get_le32(e + 12), want[i].blocks);
        /* LBA-only CHS values, start and end. */
        EXPECT(e[1] == 0xfe && e[2] == 0xff && e[3] == 0xff);
        EXPECT(e[5] == 0xfe && e[6] == 0xff && e[7] == 0xff);
    }
}

static void test_mbr_one_partition_512(void)
{
    struct table t;
    spd_partition p = { 0 };
    uint64_t disk = 64 * MIB / 512;
    if (!EXPECT_EQ(build(&t, &p, 1, SPD_PARTITION_MBR, 512, disk), 0))
        return;
    EXPECT_EQ(t.head_blocks, 1);
    EXPECT_EQ(t.tail_blocks, 0);
    EXPECT(t.tail == NULL);
    struct expect want = { 2048, disk - 2048 };
    check_mbr(t.head, &want, 1);
    EXPECT_EQ(mbr_entry(t.head, 0)[4], 0x83);   /* Linux by default */
    EXPECT_EQ(mbr_entry(t.head, 0)[0], 0x00);
    table_free(&t);
}

/* On 4096-byte blocks the sector is the start of block 0 and LBAs count
 * 4096-byte blocks: 1 MiB is LBA 256. */
static void test_mbr_4096_blocks(void)
{
    struct table t;
    spd_partition p = { 0 };
    uint64_t disk = 64 * MIB / 4096;
    if (!EXPECT_EQ(build(&t, &p, 1, SPD_PARTITION_MBR, 4096, disk), 0))
        return;
    EXPECT_EQ(t.head_blocks, 1);
    struct expect want = { 256, disk - 256 };
    check_mbr(t.head, &want, 1);
    static const uint8_t zero[4096 - 512];
    EXPECT(memcmp(t.head + 512, zero, sizeof zero) == 0);
    table_free(&t);
}

static void test_mbr_several_partitions(void)
{
    struct table t;
    uint64_t disk = 100 * MIB / 512;
    spd_partition p[4] = {
        { .block_count = 4096, .active = true },
        { .block_count = 1000, .mbr_type = 0x07 },
        { .start_lba = 40000, .block_count = 2048, .mbr_type = 0x0c },
        { 0 },
    };
    if (!EXPECT_EQ(build(&t, p, 4, SPD_PARTITION_MBR, 512, disk), 0))
        return;
    /* 1: at 1 MiB; 2: after it, at 3 MiB; 3: where asked; 4: aligned after
     * 3 (42048 -> 43008) to the end. */
    struct expect want[4] = { { 2048, 4096 }, { 6144, 1000 }, { 40000, 2048 },
                              { 43008, disk - 43008 } };
    check_mbr(t.head, want, 4);
    EXPECT_EQ(mbr_entry(t.head, 0)[0], 0x80);
    EXPECT_EQ(mbr_entry(t.head, 1)[0], 0x00);
    EXPECT_EQ(mbr_entry(t.head, 1)[4], 0x07);
    EXPECT_EQ(mbr_entry(t.head, 2)[4], 0x0c);
    table_free(&t);
}

/* The disk signature comes from nothing random: the same layout gives the
 * same bytes. */
static void test_mbr_deterministic(void)
{
    struct table a, b;
    spd_partition p = { 0 };
    if (!EXPECT_EQ(build(&a, &p, 1, SPD_PARTITION_MBR, 512, 4 * MIB), 0))
        return;
    if (EXPECT_EQ(build(&b, &p, 1, SPD_PARTITION_MBR, 512, 4 * MIB), 0))
        EXPECT(memcmp(a.head, b.head, 512) == 0);
    table_free(&a);
    table_free(&b);
}

/* A 2 TiB disk of 512-byte blocks, the largest MBR can describe. */
static void test_mbr_largest_disk(void)
{
    struct table t;
    spd_partition p = { 0 };
    uint64_t disk = UINT64_C(1) << 32;
    if (!EXPECT_EQ(build(&t, &p, 1, SPD_PARTITION_MBR, 512, disk), 0))
        return;
    struct expect want = { 2048, disk - 2048 };
    check_mbr(t.head, &want, 1);
    table_free(&t);
}

/* ---- GPT ----------------------------------------------------------- */

static uint32_t header_crc(const uint8_t *h)
{
    uint8_t copy[92];
    memcpy(copy, h, sizeof copy);
    memset(copy + 16, 0, 4);
    return crc32_ieee(0, copy, sizeof copy);
}

static void check_gpt_header(const uint8_t *h, uint64_t my_lba, uint64_t alt,
                             uint64_t entries_lba, uint64_t first,
                             uint64_t last, const uint8_t *entries)
{
    EXPECT(memcmp(h, "EFI PART", 8) == 0);
    EXPECT_EQ(get_le32(h + 8), 0x00010000);
    EXPECT_EQ(get_le32(h + 12), 92);
    EXPECT_EQ(get_le32(h + 16), header_crc(h));
    EXPECT_EQ(get_le32(h + 20), 0);
    EXPECT_EQ(get_le64(h + 24), my_lba);
    EXPECT_EQ(get_le64(h + 32), alt);
    EXPECT_EQ(get_le64(h + 40), first);
    EXPECT_EQ(get_le64(h + 48), last);
    EXPECT_EQ(get_le64(h + 72), entries_lba);
    EXPECT_EQ(get_le32(h + 80), 128);
    EXPECT_EQ(get_le32(h + 84), 128);
    EXPECT_EQ(get_le32(h + 88), crc32_ieee(0, entries, 128 * 128));
}

static void check_protective_mbr(const uint8_t *s, uint64_t disk)
{
    const uint8_t *e = mbr_entry(s, 0);
    EXPECT_EQ(s[510], 0x55);
    EXPECT_EQ(s[511], 0xAA);
    EXPECT_EQ(e[4], 0xEE);
    EXPECT_EQ(get_le32(e + 8), 1);
    EXPECT_EQ(get_le32(e + 12), disk - 1 > UINT32_MAX ? UINT32_MAX : disk - 1);
    EXPECT(e[1] == 0x00 && e[2] == 0x02 && e[3] == 0x00);
    EXPECT_EQ(mbr_entry(s, 1)[4], 0);
}

static void check_gpt_entries(const uint8_t *entries, const struct expect *want,
                              unsigned count)
{
    static const uint8_t zero[128];
    for (unsigned i = 0; i < 128; i++) {
        const uint8_t *e = entries + 128 * i;
        if (i >= count) {
            EXPECT(memcmp(e, zero, 128) == 0);
            continue;
        }
        EXPECT_EQ(get_le64(e + 32), want[i].start);
        EXPECT_EQ(get_le64(e + 40), want[i].start + want[i].blocks - 1);
        EXPECT(memcmp(e + 16, zero, 16) != 0);          /* unique GUID set */
        EXPECT(e[23] >> 4 == 4 || e[23] >> 4 == 5);     /* random or derived */
        EXPECT_EQ(e[24] >> 6, 2);                       /* RFC 4122 variant */
        EXPECT(memcmp(e + 56, "S\0p\0d\0\0", 8) == 0);  /* UTF-16LE name */
        for (unsigned j = 0; j < i; j++)
            EXPECT(memcmp(e + 16, entries + 128 * j + 16, 16) != 0);
    }
}

/* The whole table: PMBR, both headers with their CRCs, both entry arrays. */
static void check_gpt(const struct table *t, uint32_t bl, uint64_t disk,
                      const struct expect *want, unsigned count)
{
    uint32_t eb = (128 * 128 + bl - 1) / bl;
    uint64_t first = 2 + eb, last = disk - 2 - eb;
    const uint8_t *entries = t->head + 2 * bl;
    const uint8_t *primary = t->head + bl, *backup = t->tail + (size_t)eb * bl;

    EXPECT_EQ(t->head_blocks, 2 + eb);
    EXPECT_EQ(t->tail_blocks, eb + 1);
    check_protective_mbr(t->head, disk);
    check_gpt_header(primary, 1, disk - 1, 2, first, last, entries);
    check_gpt_header(backup, disk - 1, 1, disk - 1 - eb, first, last, t->tail);
    EXPECT(memcmp(primary + 56, backup + 56, 16) == 0);   /* disk GUID */
    EXPECT(memcmp(entries, t->tail, 128 * 128) == 0);
    check_gpt_entries(entries, want, count);
}

static const uint8_t linux_data[16] = {
    0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47,
    0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4,
};

static void test_gpt_one_partition_512(void)
{
    struct table t;
    spd_partition p = { 0 };
    uint64_t disk = 64 * MIB / 512;
    if (!EXPECT_EQ(build(&t, &p, 1, SPD_PARTITION_GPT, 512, disk), 0))
        return;
    /* Usable: 34 .. disk - 34; the partition from 1 MiB to the end. */
    struct expect want = { 2048, disk - 34 - 2048 + 1 };
    check_gpt(&t, 512, disk, &want, 1);
    EXPECT(memcmp(t.head + 1024, linux_data, 16) == 0);
    table_free(&t);
}

static void test_gpt_4096_blocks(void)
{
    struct table t;
    spd_partition p = { 0 };
    uint64_t disk = 64 * MIB / 4096;
    if (!EXPECT_EQ(build(&t, &p, 1, SPD_PARTITION_GPT, 4096, disk), 0))
        return;
    EXPECT_EQ(t.head_blocks, 6);   /* PMBR, header, 4 blocks of entries */
    struct expect want = { 256, disk - 6 - 256 + 1 };
    check_gpt(&t, 4096, disk, &want, 1);
    table_free(&t);
}

/* 64 KiB blocks: the entry array fits in one block. */
static void test_gpt_65536_blocks(void)
{
    struct table t;
    spd_partition p = { 0 };
    uint64_t disk = 64 * MIB / 65536;
    if (!EXPECT_EQ(build(&t, &p, 1, SPD_PARTITION_GPT, 65536, disk), 0))
        return;
    EXPECT_EQ(t.head_blocks, 3);
    struct expect want = { 16, disk - 3 - 16 + 1 };
    check_gpt(&t, 65536, disk, &want, 1);
    table_free(&t);
}

static void test_gpt_several_partitions(void)
{
    struct table t;
    uint64_t disk = 200 * MIB / 512;
    static const uint8_t esp[16] = {   /* C12A7328-F81F-11D2-BA4B-00A0C93EC93B */
        0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11,
        0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b,
    };
    spd_partition p[5] = {
        { .block_count = 2048 },
        { .block_count = 10000 },
        { .start_lba = 100000, .block_count = 5000 },
        { .block_count = 1 },
        { 0 },
    };
    memcpy(p[0].gpt_type, esp, 16);
    if (!EXPECT_EQ(build(&t, p, 5, SPD_PARTITION_GPT, 512, disk), 0))
        return;
    struct expect want[5] = { { 2048, 2048 }, { 4096, 10000 },
                              { 100000, 5000 }, { 106496, 1 },
                              { 108544, disk - 34 - 108544 + 1 } };
    check_gpt(&t, 512, disk, want, 5);
    EXPECT(memcmp(t.head + 1024, esp, 16) == 0);
    EXPECT(memcmp(t.head + 1024 + 128, linux_data, 16) == 0);
    table_free(&t);
}

/* All 128 entries used, and a table with none. */
static void test_gpt_full_and_empty(void)
{
    struct table t;
    uint64_t disk = 200 * MIB / 512;
    spd_partition p[128];
    struct expect want[128];
    memset(p, 0, sizeof p);
    for (unsigned i = 0; i < 128; i++) {
        p[i].block_count = 100;
        want[i] = (struct expect){ 2048 + 2048 * (uint64_t)i, 100 };
    }
    if (EXPECT_EQ(build(&t, p, 128, SPD_PARTITION_GPT, 512, disk), 0)) {
        check_gpt(&t, 512, disk, want, 128);
        table_free(&t);
    }
    if (EXPECT_EQ(build(&t, NULL, 0, SPD_PARTITION_GPT, 512, disk), 0)) {
        check_gpt(&t, 512, disk, want, 0);
        table_free(&t);
    }
}

/* Random GUIDs differ from one build to the next. */
static void test_gpt_guids_random(void)
{
    struct table a, b;
    spd_partition p = { 0 };
    if (!EXPECT_EQ(build(&a, &p, 1, SPD_PARTITION_GPT, 512, 8192), 0))
        return;
    if (EXPECT_EQ(build(&b, &p, 1, SPD_PARTITION_GPT, 512, 8192), 0)) {
        EXPECT(memcmp(a.head + 512 + 56, b.head + 512 + 56, 16) != 0);
        EXPECT(memcmp(a.head + 1024 + 16, b.head + 1024 + 16, 16) != 0);
    }
    table_free(&a);
    table_free(&b);
}

/* ---- refusals -------------------------------------------------------- */

/* The build fails with -EINVAL, sets no buffers, and its message holds
 * the given words. */
static void expect_refused(const spd_partition *p, unsigned count,
                           spd_partition_scheme scheme, uint32_t bl,
                           uint64_t disk, const char *words)
{
    struct table t;
    int r = build(&t, p, count, scheme, bl, disk);
    EXPECT_EQ(r, -EINVAL);
    EXPECT(t.head == NULL && t.tail == NULL);
    EXPECT_EQ(t.head_blocks + t.tail_blocks, 0);
    if (!EXPECT(strstr(spd_errmsg(), words) != NULL))
        fprintf(stderr, "  message: '%s', want '%s'\n", spd_errmsg(), words);
    if (r == 0)
        table_free(&t);
}

static void test_refuse_too_many(void)
{
    spd_partition p[129];
    memset(p, 0, sizeof p);
    for (int i = 0; i < 129; i++)
        p[i].block_count = 10;
    expect_refused(p, 5, SPD_PARTITION_MBR, 512, 1 << 20, "at most 4");
    expect_refused(p, 129, SPD_PARTITION_GPT, 512, 1 << 20, "at most 128");
}

static void test_refuse_overlap(void)
{
    spd_partition p[3] = {
        { .start_lba = 2048, .block_count = 4096 },
        { .start_lba = 10000, .block_count = 100 },
        { .start_lba = 6000, .block_count = 100 },   /* ends in partition 1 */
    };
    p[2].start_lba = 6143;
    expect_refused(p, 3, SPD_PARTITION_MBR, 512, 1 << 20, "partitions 1");
    expect_refused(p, 3, SPD_PARTITION_GPT, 512, 1 << 20, "overlap");
    /* The same start twice. */
    p[2].start_lba = 10000;
    expect_refused(p, 3, SPD_PARTITION_GPT, 512, 1 << 20, "2 (LBA 10000");
    /* An auto-sized partition running into a later one. */
    spd_partition q[2] = { { 0 }, { .start_lba = 8192, .block_count = 8 } };
    expect_refused(q, 2, SPD_PARTITION_GPT, 512, 1 << 20, "overlap");
}

static void test_refuse_beyond_usable(void)
{
    spd_partition p = { .start_lba = 2048, .block_count = 1 << 20 };
    expect_refused(&p, 1, SPD_PARTITION_MBR, 512, 1 << 20, "beyond the last usable");
    /* GPT: the backup takes the last 33 blocks. */
    p.block_count = (1 << 20) - 2048 - 33 + 1;
    expect_refused(&p, 1, SPD_PARTITION_GPT, 512, 1 << 20, "last usable LBA 1048542");
    p = (spd_partition){ .start_lba = 1 << 20 };
    expect_refused(&p, 1, SPD_PARTITION_MBR, 512, 1 << 20, "beyond");
    /* Inside the table itself. */
    p = (spd_partition){ .start_lba = 33, .block_count = 100 };
    expect_refused(&p, 1, SPD_PARTITION_GPT, 512, 1 << 20, "first usable LBA 34");
    p.start_lba = 0xffffffffffffff00ull;
    p.block_count = 0x200;   /* start + count wraps around */
    expect_refused(&p, 1, SPD_PARTITION_GPT, 512, 1 << 20, "beyond");
}

static void test_refuse_small_disk(void)
{
    spd_partition p = { 0 };
    /* Table and backup take 67 blocks; 68 is the least that holds data. */
    expect_refused(&p, 1, SPD_PARTITION_GPT, 512, 67, "too small");
    expect_refused(NULL, 0, SPD_PARTITION_MBR, 512, 1, "too small");
    /* Room for the table but not for a partition at 1 MiB. */
    expect_refused(&p, 1, SPD_PARTITION_GPT, 512, 1000, "too small");
    struct table t;
    p.start_lba = 34;
    if (EXPECT_EQ(build(&t, &p, 1, SPD_PARTITION_GPT, 512, 68), 0)) {
        struct expect want = { 34, 1 };
        check_gpt(&t, 512, 68, &want, 1);
        table_free(&t);
    }
}

static void test_refuse_mbr_large_disk(void)
{
    spd_partition p = { 0 };
    expect_refused(&p, 1, SPD_PARTITION_MBR, 512, (UINT64_C(1) << 32) + 1,
                   "use GPT");
    expect_refused(&p, 1, SPD_PARTITION_MBR, 4096, UINT64_C(1) << 40, "2^32");
}

static void test_refuse_bad_arguments(void)
{
    spd_partition p = { 0 };
    expect_refused(&p, 1, SPD_PARTITION_GPT, 1000, 1 << 20, "block length 1000");
    expect_refused(&p, 1, SPD_PARTITION_GPT, 256, 1 << 20, "block length");
    expect_refused(&p, 1, (spd_partition_scheme)7, 512, 1 << 20, "scheme");
    expect_refused(NULL, 2, SPD_PARTITION_GPT, 512, 1 << 20, "no array");
}

/* ---- the real tools on an image file ------------------------------- */

static bool have_tool(const char *name)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "PATH=\"$PATH:/usr/sbin:/sbin\" command -v %s >/dev/null 2>&1",
             name);
    return system(cmd) == 0;
}

/* Run a command on the image; its output in out (NUL-terminated). */
static int run_tool(const char *fmt, const char *img, char *out, size_t cap)
{
    char cmd[512] = "PATH=\"$PATH:/usr/sbin:/sbin\" ";
    size_t used = strlen(cmd);
    snprintf(cmd + used, sizeof cmd - used, fmt, img);
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    return pclose(f);
}

static bool image_write(const char *path, const struct table *t, uint32_t bl,
                        uint64_t disk)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return false;
    size_t tail_bytes = (size_t)t->tail_blocks * bl;
    bool ok = ftruncate(fd, (off_t)(disk * bl)) == 0 &&
              pwrite(fd, t->head, (size_t)t->head_blocks * bl, 0) ==
                  (ssize_t)t->head_blocks * bl &&
              (!tail_bytes ||
               pwrite(fd, t->tail, tail_bytes, (off_t)(disk * bl - tail_bytes)) ==
                   (ssize_t)tail_bytes);
    close(fd);
    return ok;
}

/* The "start" and "size" sfdisk --json reports for each partition. */
static void check_sfdisk_json(const char *json, const struct expect *want,
                              unsigned count, const char *label)
{
    char label_field[64];
    snprintf(label_field, sizeof label_field, "\"label\": \"%s\"", label);
    EXPECT(strstr(json, label_field) != NULL);
    const char *p = json;
    for (unsigned i = 0; i < count; i++) {
        const char *start = strstr(p, "\"start\":");
        const char *size = start ? strstr(start, "\"size\":") : NULL;
        if (!EXPECT(start && size))
            return;
        EXPECT_EQ(strtoull(start + 8, NULL, 10), want[i].start);
        EXPECT_EQ(strtoull(size + 7, NULL, 10), want[i].blocks);
        p = size;
    }
    EXPECT(strstr(p, "\"start\":") == NULL);
}

/* fdisk -b 4096 -l -o Start,Sectors: a heading, then one line each. */
static void check_fdisk_list(const char *out, const struct expect *want,
                             unsigned count)
{
    const char *p = strstr(out, "Start Sectors\n");
    if (!EXPECT(p != NULL))
        return;
    p += strlen("Start Sectors\n");
    for (unsigned i = 0; i < count; i++) {
        char *end;
        unsigned long long start = strtoull(p, &end, 10);
        unsigned long long sectors = strtoull(end, &end, 10);
        EXPECT_EQ(start, want[i].start);
        EXPECT_EQ(sectors, want[i].blocks);
        p = end;
    }
    EXPECT(strspn(p, " \n") == strlen(p));
}

/* Lay out a 100 MiB disk, write it to an image and read it back with the
 * util-linux tools (and sgdisk for GPT on 512-byte blocks, which is all it
 * reads from an image). */
static void tools_check(spd_partition_scheme scheme, uint32_t bl,
                        const spd_partition *p, const struct expect *want,
                        unsigned count)
{
    char img[] = "/tmp/spd-test-partition-XXXXXX", out[16384];
    uint64_t disk = 100 * MIB / bl;
    bool gpt = scheme == SPD_PARTITION_GPT;
    struct table t;
    int fd = mkstemp(img);
    if (!EXPECT(fd >= 0))
        return;
    close(fd);
    if (!EXPECT_EQ(build(&t, p, count, scheme, bl, disk), 0))
        goto out;
    EXPECT(image_write(img, &t, bl, disk));
    table_free(&t);

    if (bl != 512) {
        EXPECT_EQ(run_tool("fdisk -b 4096 -l -o Start,Sectors %s 2>&1", img,
                           out, sizeof out), 0);
        check_fdisk_list(out, want, count);
        goto out;
    }
    EXPECT_EQ(run_tool("sfdisk --json %s 2>&1", img, out, sizeof out), 0);
    check_sfdisk_json(out, want, count, gpt ? "gpt" : "dos");
    EXPECT_EQ(run_tool("sfdisk --verify %s 2>&1", img, out, sizeof out), 0);
    if (!EXPECT(strstr(out, "No errors detected")))
        fprintf(stderr, "%s", out);
    if (gpt) {
        EXPECT_EQ(run_tool("sgdisk -v %s 2>&1", img, out, sizeof out), 0);
        if (!EXPECT(strstr(out, "No problems found")))
            fprintf(stderr, "%s", out);
    }
out:
    unlink(img);
}

static void test_tools_read_the_tables(void)
{
    if (!have_tool("sfdisk") || !have_tool("fdisk") || !have_tool("sgdisk")) {
        SKIP_TEST("sfdisk, fdisk or sgdisk is not installed");
        return;
    }
    spd_partition p[3] = { { .block_count = 8192, .active = true },
                           { .start_lba = 20480, .block_count = 4096 },
                           { 0 } };
    uint64_t disk = 100 * MIB / 512;
    struct expect mbr[3] = { { 2048, 8192 }, { 20480, 4096 },
                             { 24576, disk - 24576 } };
    tools_check(SPD_PARTITION_MBR, 512, p, mbr, 3);
    struct expect gpt[3] = { { 2048, 8192 }, { 20480, 4096 },
                             { 24576, disk - 34 - 24576 + 1 } };
    tools_check(SPD_PARTITION_GPT, 512, p, gpt, 3);

    /* 4096-byte blocks: 1 MiB is LBA 256, the GPT takes 6 + 5 blocks. */
    disk = 100 * MIB / 4096;
    struct expect mbr4k[3] = { { 256, 8192 }, { 20480, 4096 },
                               { 24576, disk - 24576 } };
    tools_check(SPD_PARTITION_MBR, 4096, p, mbr4k, 3);
    struct expect gpt4k[3] = { { 256, 8192 }, { 20480, 4096 },
                               { 24576, disk - 6 - 24576 + 1 } };
    tools_check(SPD_PARTITION_GPT, 4096, p, gpt4k, 3);
}

/* ---- through a unit ---------------------------------------------- */

static void test_unit_write_gpt(void)
{
    spd_params params = memunit_params(512, 16384, 7);
    struct memunit *m = memunit_create(&params, SPD_OPS_PARALLEL | SPD_OPS_FUA);
    if (!EXPECT(m != NULL))
        return;
    spd_partition p = { 0 };
    EXPECT_EQ(spd_unit_write_partition_table(m->unit, &p, 1, SPD_PARTITION_GPT), 0);
    struct table t = { .head = m->data, .tail = m->data + (16384 - 33) * 512,
                       .head_blocks = 34, .tail_blocks = 33 };
    struct expect want = { 2048, 16384 - 34 - 2048 + 1 };
    check_gpt(&t, 512, 16384, &want, 1);
    EXPECT(atomic_load(&m->saw_fua));

    /* GUIDs come from the unit's UUID: writing again gives the same bytes. */
    uint8_t *first = malloc(34 * 512);
    memcpy(first, m->data, 34 * 512);
    memset(m->data, 0, 34 * 512);
    EXPECT_EQ(spd_unit_write_partition_table(m->unit, &p, 1, SPD_PARTITION_GPT), 0);
    EXPECT(memcmp(first, m->data, 34 * 512) == 0);
    free(first);
    memunit_destroy(m);
}

/* The GUIDs of two units differ. */
static void test_unit_guids_per_unit(void)
{
    spd_params pa = memunit_params(4096, 4096, 1), pb = memunit_params(4096, 4096, 2);
    struct memunit *a = memunit_create(&pa, 0), *b = memunit_create(&pb, 0);
    spd_partition p = { 0 };
    if (EXPECT(a && b)) {
        EXPECT_EQ(spd_unit_write_partition_table(a->unit, &p, 1, SPD_PARTITION_GPT), 0);
        EXPECT_EQ(spd_unit_write_partition_table(b->unit, &p, 1, SPD_PARTITION_GPT), 0);
        EXPECT(memcmp(a->data + 4096 + 56, b->data + 4096 + 56, 16) != 0);
        EXPECT(memcmp(a->data + 8192 + 16, b->data + 8192 + 16, 16) != 0);
        struct table t = { .head = a->data, .tail = a->data + (4096 - 5) * 4096,
                           .head_blocks = 6, .tail_blocks = 5 };
        struct expect want = { 256, 4096 - 6 - 256 + 1 };
        check_gpt(&t, 4096, 4096, &want, 1);
    }
    if (a)
        memunit_destroy(a);
    if (b)
        memunit_destroy(b);
}

static void test_unit_write_mbr_and_refusals(void)
{
    spd_params params = memunit_params(512, 8192, 3);
    struct memunit *m = memunit_create(&params, 0);
    if (!EXPECT(m != NULL))
        return;
    spd_partition p[2] = { { .block_count = 2048 }, { 0 } };
    EXPECT_EQ(spd_unit_write_partition_table(m->unit, p, 2, SPD_PARTITION_MBR), 0);
    struct expect want[2] = { { 2048, 2048 }, { 4096, 8192 - 4096 } };
    check_mbr(m->data, want, 2);
    /* A layout error writes nothing. */
    uint8_t before[512];
    memcpy(before, m->data, 512);
    p[1].start_lba = 3000;
    EXPECT_EQ(spd_unit_write_partition_table(m->unit, p, 2, SPD_PARTITION_MBR), -EINVAL);
    EXPECT(strstr(spd_errmsg(), "overlap") != NULL);
    EXPECT(memcmp(before, m->data, 512) == 0);
    memunit_destroy(m);
}

static void test_unit_write_protected(void)
{
    spd_params params = memunit_params(512, 8192, 4);
    params.write_protected = true;
    struct memunit *m = memunit_create(&params, 0);
    if (!EXPECT(m != NULL))
        return;
    spd_partition p = { 0 };
    EXPECT_EQ(spd_unit_write_partition_table(m->unit, &p, 1, SPD_PARTITION_GPT), -EROFS);
    EXPECT(strstr(spd_errmsg(), "DATA PROTECT") != NULL);
    EXPECT_EQ(m->data[510], 0);
    memunit_destroy(m);
}

static const struct test_case tests[] = {
    TEST(test_crc_check_values),
    TEST(test_crc32c_iscsi_vectors),
    TEST(test_crc_lengths_alignments_pieces),
    TEST(test_mbr_one_partition_512),
    TEST(test_mbr_4096_blocks),
    TEST(test_mbr_several_partitions),
    TEST(test_mbr_deterministic),
    TEST(test_mbr_largest_disk),
    TEST(test_gpt_one_partition_512),
    TEST(test_gpt_4096_blocks),
    TEST(test_gpt_65536_blocks),
    TEST(test_gpt_several_partitions),
    TEST(test_gpt_full_and_empty),
    TEST(test_gpt_guids_random),
    TEST(test_refuse_too_many),
    TEST(test_refuse_overlap),
    TEST(test_refuse_beyond_usable),
    TEST(test_refuse_small_disk),
    TEST(test_refuse_mbr_large_disk),
    TEST(test_refuse_bad_arguments),
    TEST(test_tools_read_the_tables),
    TEST(test_unit_write_gpt),
    TEST(test_unit_guids_per_unit),
    TEST(test_unit_write_mbr_and_refusals),
    TEST(test_unit_write_protected),
};

int main(void)
{
    return RUN_TESTS("partition", tests);
}
