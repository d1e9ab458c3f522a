/*
 * test_stgtest.c - spd-stgtest's block stamps, its table of expected
 * states with its range holds, and its latency quantiles: the parts
 * whose mistakes would let corruption through or blame a good disk.
 */
#include "harness.h"
#include "stgtest.h"

#define SEED 0x5eedull

static void test_stamp_round_trip(void)
{
    static uint8_t block[4096];
    struct stg_seen s;
    stg_stamp(block, sizeof block, SEED, 1234, 77, 1230, 8);
    stg_examine(block, sizeof block, &s);
    EXPECT_EQ(s.kind, SEEN_STAMP);
    EXPECT_EQ(s.lba, 1234);
    EXPECT_EQ(s.seed, SEED);
    EXPECT_EQ(s.generation, 77);
    EXPECT_EQ(s.write_lba, 1230);
    EXPECT_EQ(s.write_blocks, 8);
    EXPECT(stg_matches(77, &s, SEED, 1234));
    EXPECT(!stg_matches(76, &s, SEED, 1234));         /* stale or lost */
    EXPECT(!stg_matches(77, &s, SEED, 1235));         /* misdirected */
    EXPECT(!stg_matches(77, &s, SEED + 1, 1234));     /* another run's */
    EXPECT(!stg_matches(STG_ZEROS, &s, SEED, 1234));  /* unmap not done */
}

static void test_zeros_and_foreign(void)
{
    static uint8_t block[512];
    struct stg_seen s;
    stg_examine(block, sizeof block, &s);
    EXPECT_EQ(s.kind, SEEN_ZEROS);
    EXPECT(stg_matches(STG_ZEROS, &s, SEED, 0));
    EXPECT(stg_matches(STG_UNKNOWN, &s, SEED, 0));
    EXPECT(!stg_matches(STG_FIRST_GENERATION, &s, SEED, 0));
    block[511] = 1;                     /* the last byte alone */
    stg_examine(block, sizeof block, &s);
    EXPECT_EQ(s.kind, SEEN_FOREIGN);
    EXPECT(!stg_matches(STG_ZEROS, &s, SEED, 0));
    EXPECT(stg_matches(STG_UNKNOWN, &s, SEED, 0));
}

/* One wrong byte anywhere fails the CRC, and is found. */
static void test_corrupt_byte_found(void)
{
    static uint8_t block[4096];
    static const uint32_t offsets[] = { 8, 24, 48, 1000, 4095 };
    for (size_t i = 0; i < sizeof offsets / sizeof *offsets; i++) {
        struct stg_seen s;
        stg_stamp(block, sizeof block, SEED, 9, 5, 9, 1);
        block[offsets[i]] ^= 0x10;
        stg_examine(block, sizeof block, &s);
        EXPECT_EQ(s.kind, SEEN_CORRUPT);
        if (offsets[i] >= 48)       /* a damaged header names itself */
            EXPECT_EQ(s.bad_offset, offsets[i]);
        EXPECT(!stg_matches(s.generation, &s, SEED, 9));
    }
}

/* A block never written may hold anything but this run's data for
 * another block. */
static void test_unknown_catches_misdirection(void)
{
    static uint8_t block[512];
    struct stg_seen s;
    stg_stamp(block, sizeof block, SEED, 50, 3, 50, 1);
    stg_examine(block, sizeof block, &s);
    EXPECT(stg_matches(STG_UNKNOWN, &s, SEED, 50));
    EXPECT(!stg_matches(STG_UNKNOWN, &s, SEED, 51));
    EXPECT(stg_matches(STG_UNKNOWN, &s, SEED + 1, 51));
}

static void test_range_holds(void)
{
    struct stg_table *t = stg_table_create(100);
    EXPECT(t != NULL);
    if (!t)
        return;
    EXPECT(stg_table_try_lock(t, 10, 10, false));
    EXPECT(stg_table_try_lock(t, 15, 10, false));     /* reads share */
    EXPECT(!stg_table_try_lock(t, 19, 2, true));      /* a write waits */
    EXPECT(stg_table_try_lock(t, 25, 5, true));       /* beside them */
    EXPECT(!stg_table_try_lock(t, 29, 1, false));     /* a read waits */
    stg_table_unlock(t, 10, 10, false);
    EXPECT(!stg_table_try_lock(t, 19, 2, true));      /* 15..24 held */
    stg_table_unlock(t, 15, 10, false);
    EXPECT(stg_table_try_lock(t, 19, 2, true));
    stg_table_set(t, 19, 2, 42);
    EXPECT_EQ(stg_table_get(t, 18), STG_UNKNOWN);
    EXPECT_EQ(stg_table_get(t, 19), 42);
    EXPECT_EQ(stg_table_get(t, 20), 42);
    EXPECT_EQ(stg_table_get(t, 21), STG_UNKNOWN);
    stg_table_destroy(t);
}

static void test_quantiles(void)
{
    static struct stg_hist h;
    for (uint64_t us = 1; us <= 1000; us++)
        stg_hist_add(&h, us * 1000, 4096);
    EXPECT_EQ(h.count, 1000);
    EXPECT_EQ(h.bytes, 4096000);
    EXPECT_EQ(h.max_ns, 1000000);
    uint64_t p50 = stg_hist_quantile(&h, 0.5), p99 = stg_hist_quantile(&h, 0.99);
    EXPECT(p50 > 485000 && p50 < 515000);
    EXPECT(p99 > 960000 && p99 <= 1000000);
    EXPECT_EQ(stg_hist_quantile(&h, 1.0), 1000000);
    static struct stg_hist empty;
    EXPECT_EQ(stg_hist_quantile(&empty, 0.5), 0);
}

int main(void)
{
    static const struct test_case tests[] = {
        TEST(test_stamp_round_trip),   TEST(test_zeros_and_foreign),
        TEST(test_corrupt_byte_found), TEST(test_unknown_catches_misdirection),
        TEST(test_range_holds),        TEST(test_quantiles),
    };
    return RUN_TESTS("stgtest", tests);
}
