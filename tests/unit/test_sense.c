/*
 * test_sense.c - spd_sense_parse(): sense bytes of both formats, as the
 * engine builds them and as other targets send them, decoded back into a
 * status; short and foreign bytes refused or read as far as they go.
 */
#include <errno.h>

#include "harness.h"
#include "scsi/engine.h"
#include "spd/scsi.h"

/* What the engine builds, parsed, gives the status it was built from. */
static void round_trip(bool descriptor, uint64_t information)
{
    spd_status st, got;
    spd_status_set_sense(&st, SPD_KEY_ILLEGAL_REQUEST,
                         SPD_ASC(SPD_ASC_INVALID_FIELD_IN_CDB),
                         SPD_ASCQ(SPD_ASC_INVALID_FIELD_IN_CDB));
    spd_status_set_info(&st, information);
    st.sks[0] = 0x80 | 0x40 | 0x08 | 3;          /* SKSV, CDB, BPV, bit 3 */
    st.sks[2] = 9;                               /* byte 9 */
    uint8_t sense[SPD_SENSE_MAX];
    uint8_t n = scsi_sense_build(&st, descriptor, sense, sizeof sense);
    EXPECT_EQ(spd_sense_parse(sense, n, &got), 0);
    EXPECT_EQ(got.scsi_status, SPD_STATUS_CHECK_CONDITION);
    EXPECT_EQ(got.sense_key, SPD_KEY_ILLEGAL_REQUEST);
    EXPECT_EQ(got.asc, 0x24);
    EXPECT_EQ(got.ascq, 0);
    EXPECT(got.info_valid);
    EXPECT_EQ(got.information, information);
    EXPECT(!memcmp(got.sks, st.sks, 3));
}

static void test_fixed(void)
{
    round_trip(false, 0x12345678);
}

static void test_descriptor(void)
{
    round_trip(true, 0x123456789aull);           /* more than fixed holds */
}

/* Deferred errors (71h, 73h) decode like current ones; no VALID bit, no
 * information; an unset SKSV clears the bytes behind it. */
static void test_deferred_and_flags(void)
{
    uint8_t fixed[18] = { 0x71, 0, SPD_KEY_MEDIUM_ERROR, 0, 0, 0, 7, 10,
                          [12] = 0x11, [15] = 0x00, [16] = 0xff };
    spd_status st;
    EXPECT_EQ(spd_sense_parse(fixed, sizeof fixed, &st), 0);
    EXPECT_EQ(st.sense_key, SPD_KEY_MEDIUM_ERROR);
    EXPECT_EQ(st.asc, 0x11);
    EXPECT(!st.info_valid);
    EXPECT_EQ(st.sks[1], 0);
    uint8_t desc[8] = { 0x73, SPD_KEY_UNIT_ATTENTION, 0x29, 0x00 };
    EXPECT_EQ(spd_sense_parse(desc, sizeof desc, &st), 0);
    EXPECT_EQ(st.sense_key, SPD_KEY_UNIT_ATTENTION);
    EXPECT_EQ(st.asc, 0x29);
}

/* Too short or not sense: -EINVAL. Cut short: what is there. A
 * descriptor list whose lengths run past the end stops there. */
static void test_short_and_foreign(void)
{
    spd_status st;
    uint8_t junk[18] = { 0x00, 0x05 };
    EXPECT_EQ(spd_sense_parse(junk, sizeof junk, &st), -EINVAL);
    EXPECT_EQ(spd_sense_parse(junk, 0, &st), -EINVAL);
    uint8_t fixed[3] = { 0xf0, 0, SPD_KEY_NOT_READY };
    EXPECT_EQ(spd_sense_parse(fixed, sizeof fixed, &st), 0);
    EXPECT_EQ(st.sense_key, SPD_KEY_NOT_READY);
    EXPECT(!st.info_valid);                      /* VALID, but no field */
    uint8_t desc[12] = { 0x72, 5, 0x21, 0, 0, 0, 0, 40,
                         0x00, 0x0a, 0x80, 0 };  /* claims more than sent */
    EXPECT_EQ(spd_sense_parse(desc, sizeof desc, &st), 0);
    EXPECT_EQ(st.asc, 0x21);
    EXPECT(!st.info_valid);
}

int main(void)
{
    static const struct test_case tests[] = {
        TEST(test_fixed),
        TEST(test_descriptor),
        TEST(test_deferred_and_flags),
        TEST(test_short_and_foreign),
    };
    return RUN_TESTS("sense", tests);
}
