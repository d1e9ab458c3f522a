/*
 * test_scsi_xcopy.c - EXTENDED COPY(LID1) and RECEIVE COPY RESULTS on a
 * real unit (the in-memory device): blocks copied within the unit in
 * chunks, the copy status kept per list identifier, and each malformed
 * parameter list refused before anything is copied.
 */
#include "harness.h"
#include "memunit.h"
#include "util/bytes.h"
#include "spd/scsi.h"

#define BL 512
#define BLOCKS 8192

static struct memunit *xcopy_unit(void)
{
    spd_params p = memunit_params(BL, BLOCKS, 3);
    struct memunit *m = memunit_create(&p, SPD_OPS_PARALLEL);
    if (!m) {
        fprintf(stderr, "cannot create the unit\n");
        exit(1);
    }
    return m;
}

static spd_status cdb_run(struct memunit *m, const uint8_t *cdb, uint8_t len,
                          void *data, uint32_t data_len, uint32_t *in_len)
{
    spd_scsi_cmd cmd = { SPD_SCSI_CMD_INIT, .cdb_len = len, .data = data,
                         .data_len = data_len };
    memcpy(cmd.cdb, cdb, len);
    spd_unit_scsi_run(m->unit, &cmd);
    if (in_len)
        *in_len = cmd.data_in_len;
    return cmd.status;
}

/* The NAA designator of the unit, from VPD 83h. */
static void unit_naa(struct memunit *m, uint8_t naa[16])
{
    uint8_t cdb[6] = { SPD_SCSI_INQUIRY, 1, 0x83, 0, 255 };
    uint8_t page[256];
    cdb_run(m, cdb, 6, page, sizeof page, NULL);
    EXPECT_EQ(page[5] & 0x0f, 3);
    memcpy(naa, page + 8, 16);
}

/* A parameter list: header, one identification target descriptor per
 * naa, one block to block segment per seg; returns its length. */
struct seg { uint16_t src, dst, blocks; uint64_t src_lba, dst_lba; };

static uint32_t xcopy_list(uint8_t *p, uint8_t list_id, uint8_t usage,
                           const uint8_t (*naa)[16], unsigned targets,
                           const struct seg *seg, unsigned segs)
{
    uint32_t n = 16;
    memset(p, 0, 16 + 32 * targets + 28 * segs);
    p[0] = list_id;
    p[1] = usage;
    put_be16(p + 2, (uint16_t)(32 * targets));
    put_be32(p + 8, 28 * segs);
    for (unsigned i = 0; i < targets; i++, n += 32) {
        p[n] = 0xe4;
        p[n + 4] = 0x01;                    /* binary */
        p[n + 5] = 0x03;                    /* NAA */
        p[n + 7] = 16;
        memcpy(p + n + 8, naa[i], 16);
        put_be24(p + n + 29, BL);
    }
    for (unsigned i = 0; i < segs; i++, n += 28) {
        p[n] = 0x02;
        put_be16(p + n + 2, 0x18);
        put_be16(p + n + 4, seg[i].src);
        put_be16(p + n + 6, seg[i].dst);
        put_be16(p + n + 10, seg[i].blocks);
        put_be64(p + n + 12, seg[i].src_lba);
        put_be64(p + n + 20, seg[i].dst_lba);
    }
    return n;
}

static spd_status xcopy(struct memunit *m, uint8_t *list, uint32_t len)
{
    uint8_t cdb[16] = { SPD_SCSI_EXTENDED_COPY };
    put_be32(cdb + 10, len);
    return cdb_run(m, cdb, 16, list, len, NULL);
}

static void fill(struct memunit *m, uint64_t lba, uint32_t blocks, uint8_t v)
{
    memset(m->data + lba * BL, v, (size_t)blocks * BL);
}

/* 3000 blocks (more than one 1 MiB chunk) and a second segment, then
 * the copy status of the list. */
static void test_xcopy_copies(void)
{
    struct memunit *m = xcopy_unit();
    uint8_t naa[1][16], list[512];
    unit_naa(m, naa[0]);
    fill(m, 0, 3000, 'A');
    fill(m, 3000, 10, 'B');
    fill(m, 4000, 4000, 0);
    struct seg seg[2] = { { 0, 0, 3000, 0, 4000 }, { 0, 0, 10, 3000, 7100 } };
    uint32_t len = xcopy_list(list, 7, 0, naa, 1, seg, 2);
    spd_status st = xcopy(m, list, len);
    EXPECT(spd_status_good(&st));
    for (uint64_t b = 4000; b < 7000; b++)
        EXPECT_EQ(m->data[b * BL + 17], 'A');
    EXPECT_EQ(m->data[7000 * BL], 0);
    EXPECT_EQ(m->data[7100 * BL], 'B');
    EXPECT_EQ(m->data[7109 * BL + BL - 1], 'B');
    EXPECT_EQ(m->data[7110 * BL], 0);

    uint8_t cdb[16] = { SPD_SCSI_RECEIVE_COPY_RESULTS, SPD_SA_COPY_STATUS, 7 };
    uint8_t out[64];
    uint32_t in;
    put_be32(cdb + 10, sizeof out);
    st = cdb_run(m, cdb, 16, out, sizeof out, &in);
    EXPECT(spd_status_good(&st));
    EXPECT_EQ(in, 12);
    EXPECT_EQ(out[4], 0x01);                        /* completed */
    EXPECT_EQ(get_be16(out + 5), 2);
    EXPECT_EQ(get_be32(out + 8), 3010);
    cdb[2] = 8;                                     /* unknown list */
    st = cdb_run(m, cdb, 16, out, sizeof out, NULL);
    EXPECT_EQ(st.asc << 8 | st.ascq, SPD_ASC_INVALID_FIELD_IN_CDB);

    cdb[1] = SPD_SA_OPERATING_PARAMETERS;
    cdb[2] = 0;
    st = cdb_run(m, cdb, 16, out, sizeof out, &in);
    EXPECT(spd_status_good(&st));
    EXPECT_EQ(in, 46);
    EXPECT_EQ(out[43], 2);
    memunit_destroy(m);
}

static void expect_refused(struct memunit *m, uint8_t *list, uint32_t len,
                           uint8_t key, uint16_t asc, int line)
{
    fill(m, 100, 1, 'S');
    fill(m, 200, 1, 0);
    spd_status st = xcopy(m, list, len);
    bool ok = st.sense_key == key && (st.asc << 8 | st.ascq) == asc;
    if (!ok)
        fprintf(stderr, "  want %x/%04x, got %x/%02x%02x\n", key, asc,
                st.sense_key, st.asc, st.ascq);
    harness_check(ok, "refused", __FILE__, line);
    harness_check(m->data[200 * BL] == 0, "nothing copied", __FILE__, line);
}
#define EXPECT_REFUSED(m, l, n, key, asc) \
    expect_refused(m, l, n, key, asc, __LINE__)

static void test_xcopy_refusals(void)
{
    struct memunit *m = xcopy_unit();
    uint8_t naa[3][16], list[2048];
    unit_naa(m, naa[0]);
    memcpy(naa[1], naa[0], 16);
    memcpy(naa[2], naa[0], 16);
    struct seg one = { 0, 0, 1, 100, 200 };
    uint32_t len = xcopy_list(list, 1, 0, naa, 1, &one, 1);

    /* Shorter than its header says. */
    EXPECT_REFUSED(m, list, len - 1, SPD_KEY_ILLEGAL_REQUEST,
                   SPD_ASC_PARAMETER_LIST_LENGTH_ERROR);
    /* Other descriptor types. */
    list[16] = 0xe0;
    EXPECT_REFUSED(m, list, len, SPD_KEY_ILLEGAL_REQUEST,
                   SPD_ASC_UNSUPPORTED_TARGET_DESCRIPTOR);
    list[16] = 0xe4;
    list[48] = 0x00;                /* stream to stream */
    EXPECT_REFUSED(m, list, len, SPD_KEY_ILLEGAL_REQUEST,
                   SPD_ASC_UNSUPPORTED_SEGMENT_DESCRIPTOR);
    /* Too many target and segment descriptors. */
    len = xcopy_list(list, 1, 0, naa, 3, &one, 1);
    EXPECT_REFUSED(m, list, len, SPD_KEY_ILLEGAL_REQUEST,
                   SPD_ASC_TOO_MANY_TARGET_DESCRIPTORS);
    struct seg many[17];
    for (int i = 0; i < 17; i++)
        many[i] = one;
    len = xcopy_list(list, 1, 0, naa, 1, many, 17);
    EXPECT_REFUSED(m, list, len, SPD_KEY_ILLEGAL_REQUEST,
                   SPD_ASC_TOO_MANY_SEGMENT_DESCRIPTORS);
    /* A target that is not this unit, an index with no target, a range
     * beyond the end. */
    naa[1][15] ^= 1;
    struct seg other = { 0, 1, 1, 100, 200 };
    len = xcopy_list(list, 1, 0, naa, 2, &other, 1);
    EXPECT_REFUSED(m, list, len, SPD_KEY_COPY_ABORTED,
                   SPD_ASC_UNREACHABLE_COPY_TARGET);
    len = xcopy_list(list, 1, 0, naa, 1, &other, 1);
    EXPECT_REFUSED(m, list, len, SPD_KEY_COPY_ABORTED,
                   SPD_ASC_UNREACHABLE_COPY_TARGET);
    struct seg beyond = { 0, 0, 2, 100, BLOCKS - 1 };
    len = xcopy_list(list, 1, 0, naa, 1, &beyond, 1);
    EXPECT_REFUSED(m, list, len, SPD_KEY_COPY_ABORTED,
                   SPD_ASC_NO_ADDITIONAL_SENSE);
    /* Inline data is not taken. */
    len = xcopy_list(list, 1, 0, naa, 1, &one, 1);
    put_be32(list + 12, 4);
    EXPECT_REFUSED(m, list, len + 4, SPD_KEY_ILLEGAL_REQUEST,
                   SPD_ASC_INVALID_FIELD_IN_PARAMETER_LIST);
    /* An empty list is no error. */
    spd_status st = xcopy(m, list, 0);
    EXPECT(spd_status_good(&st));
    memunit_destroy(m);
}

int main(void)
{
    static const struct test_case tests[] = {
        TEST(test_xcopy_copies),
        TEST(test_xcopy_refusals),
    };
    return run_tests("scsi_xcopy", tests, sizeof tests / sizeof tests[0]);
}
