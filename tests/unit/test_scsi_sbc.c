/*
 * test_scsi_sbc.c - the SCSI engine's block commands, called directly (no
 * unit core): READ/WRITE in all four sizes at the edges of the medium,
 * transfer lengths, FUA, bounce buffers, write protection, VERIFY,
 * SYNCHRONIZE CACHE, WRITE SAME and its unmap decision, UNMAP parameter
 * lists, READ CAPACITY; then a few commands end to end through a memunit.
 */
/* READ and WRITE reach past 1 MiB: a fixture on the heap. */
#define SCSI_FIXTURE_DATA_SIZE (1024 * 1024 + 4096)
#include <errno.h>

#include "scsi_fixture.h"
#include "memunit.h"

/* ------------------------------------------------------------------ */
/* READ and WRITE in four sizes                                         */
/* ------------------------------------------------------------------ */

struct rw_size {
    const char *name;
    uint8_t read, write, len;
    uint64_t max_lba;           /* largest LBA the CDB can hold */
    uint32_t max_blocks;        /* largest transfer length */
    uint8_t count_off;          /* where the transfer length sits */
};

static const struct rw_size rw_sizes[] = {
    { "6", SPD_SCSI_READ_6, SPD_SCSI_WRITE_6, 6, 0x1fffff, 256, 4 },
    { "10", SPD_SCSI_READ_10, SPD_SCSI_WRITE_10, 10, 0xffffffff, 0xffff, 7 },
    { "12", SPD_SCSI_READ_12, SPD_SCSI_WRITE_12, 12, 0xffffffff, 0xffffffff,
      6 },
    { "16", SPD_SCSI_READ_16, SPD_SCSI_WRITE_16, 16, UINT64_MAX, 0xffffffff,
      10 },
};

/* Build a READ/WRITE CDB of the given size; returns its length. */
static uint8_t rw_cdb(uint8_t *cdb, const struct rw_size *s, bool write,
                      uint64_t lba, uint32_t blocks)
{
    memset(cdb, 0, 16);
    cdb[0] = write ? s->write : s->read;
    switch (s->len) {
    case 6:
        put_be24(cdb + 1, (uint32_t)lba & 0x1fffff);
        cdb[4] = (uint8_t)blocks;           /* 256 -> 0 */
        break;
    case 10:
        put_be32(cdb + 2, (uint32_t)lba);
        put_be16(cdb + 7, (uint16_t)blocks);
        break;
    case 12:
        put_be32(cdb + 2, (uint32_t)lba);
        put_be32(cdb + 6, blocks);
        break;
    case 16:
        put_be64(cdb + 2, lba);
        put_be32(cdb + 10, blocks);
        break;
    }
    return s->len;
}

/* A READ or WRITE that must become the block request (lba, blocks). */
static void expect_rw_io(struct fx *f, const struct rw_size *s, bool write,
                         uint64_t lba, uint32_t blocks, int line)
{
    uint8_t cdb[16];
    uint8_t len = rw_cdb(cdb, s, write, lba, blocks);
    uint64_t bytes = (uint64_t)blocks * f->p.block_length;
    enum scsi_action act = fx_run(f, cdb, len, (uint32_t)bytes);
    expect_good_at(&f->t.status, line);
    bool ok = act == SCSI_IO && f->t.io.lba == lba &&
              f->t.io.blocks == blocks &&
              f->t.io.op == (write ? SPD_OP_WRITE : SPD_OP_READ);
    if (!ok)
        fprintf(stderr, "  %s(%s) lba %" PRIu64 " blocks %u: action %d "
                "io lba %" PRIu64 " blocks %" PRIu64 "\n",
                write ? "WRITE" : "READ", s->name, lba, blocks, act,
                f->t.io.lba, f->t.io.blocks);
    harness_check(ok, "rw io", __FILE__, line);
    spd_data_dir dir;
    uint32_t plan_len;
    spd_status st;
    harness_check(fx_plan(f, cdb, len, &dir, &plan_len, &st) == 0 &&
                  plan_len == bytes &&
                  dir == (write ? SPD_DIR_OUT : SPD_DIR_IN),
                  "rw plan", __FILE__, line);
}

/* A READ or WRITE that must fail with LBA OUT OF RANGE, in plan too. */
static void expect_rw_range(struct fx *f, const struct rw_size *s, bool write,
                            uint64_t lba, uint32_t blocks, int line)
{
    uint8_t cdb[16];
    uint8_t len = rw_cdb(cdb, s, write, lba, blocks);
    EXPECT_EQ(fx_run(f, cdb, len, sizeof f->data), SCSI_DONE);
    expect_sense_at(&f->t.status, SPD_KEY_ILLEGAL_REQUEST,
                    SPD_ASC_LBA_OUT_OF_RANGE, line);
    spd_data_dir dir;
    uint32_t plan_len;
    spd_status st;
    harness_check(fx_plan(f, cdb, len, &dir, &plan_len, &st) == SPD_CHECK,
                  "plan fails", __FILE__, line);
    expect_sense_at(&st, SPD_KEY_ILLEGAL_REQUEST, SPD_ASC_LBA_OUT_OF_RANGE,
                    line);
}

static void rw_ranges(uint32_t bl)
{
    const uint64_t count = 1000;
    struct fx *f = fx_new(bl, count, 0);
    for (size_t i = 0; i < 4; i++) {
        const struct rw_size *s = &rw_sizes[i];
        for (int w = 0; w < 2; w++) {
            expect_rw_io(f, s, w, 0, 1, __LINE__);             /* first */
            expect_rw_io(f, s, w, count - 1, 1, __LINE__);     /* last */
            expect_rw_io(f, s, w, count - 8, 8, __LINE__);     /* to the end */
            expect_rw_range(f, s, w, count, 1, __LINE__);      /* one past */
            expect_rw_range(f, s, w, count - 1, 2, __LINE__);  /* straddles */
            expect_rw_range(f, s, w, s->max_lba, 1, __LINE__); /* huge */
            if (s->len != 6) {
                /* Zero blocks: good with no request inside, out of range
                 * past the end. */
                uint8_t cdb[16];
                uint8_t len = rw_cdb(cdb, s, w, count - 1, 0);
                EXPECT_EQ(fx_run(f, cdb, len, 0), SCSI_DONE);
                EXPECT_GOOD(f->t.status);
                EXPECT_EQ(f->t.data_in_len, 0);
                expect_rw_range(f, s, w, count, 0, __LINE__);
                expect_rw_range(f, s, w, s->max_lba, 0, __LINE__);
            }
        }
    }
    /* READ(16): 2^63, and a range that would wrap 64 bits. */
    expect_rw_range(f, &rw_sizes[3], false, 1ull << 63, 1, __LINE__);
    expect_rw_range(f, &rw_sizes[3], true, UINT64_MAX, 2, __LINE__);
    expect_rw_range(f, &rw_sizes[3], false, 2, 0xffff, __LINE__);
    fx_free(f);
}

static void test_rw_ranges_512(void) { rw_ranges(512); }
static void test_rw_ranges_4096(void) { rw_ranges(4096); }

/* Past 2^32 blocks: no 32-bit wrap in the range check. */
static void test_rw_ranges_large_unit(void)
{
    struct fx *f = fx_new(512, (1ull << 32) + 10, 0);
    const struct rw_size *r16 = &rw_sizes[3], *r10 = &rw_sizes[1];
    expect_rw_io(f, r16, false, 0xffffffff, 2, __LINE__);   /* across 2^32 */
    expect_rw_io(f, r10, false, 0xffffffff, 11, __LINE__);  /* to the end */
    expect_rw_range(f, r10, false, 0xffffffff, 12, __LINE__);
    expect_rw_io(f, r16, true, (1ull << 32) + 9, 1, __LINE__);
    expect_rw_range(f, r16, true, (1ull << 32) + 10, 1, __LINE__);
    fx_free(f);

    /* Exactly 2^32 blocks: 0xFFFFFFFF is the last LBA. */
    f = fx_new(4096, 1ull << 32, 0);
    expect_rw_io(f, r10, false, 0xffffffff, 1, __LINE__);
    expect_rw_range(f, r10, false, 0xffffffff, 2, __LINE__);
    expect_rw_range(f, &rw_sizes[2], true, 0xfffffff0, 0x20, __LINE__);
    fx_free(f);
}

static void test_read6_zero_is_256(void)
{
    struct fx *f = fx_new(512, 1000, 0);
    uint8_t cdb[6] = { SPD_SCSI_READ_6, 0, 0, 10, 0, 0 };
    EXPECT_EQ(fx_run(f, cdb, 6, sizeof f->data), SCSI_IO);
    EXPECT_EQ(f->t.io.blocks, 256);
    EXPECT_EQ(f->t.io.lba, 10);
    EXPECT(f->t.io.buf == f->data);
    EXPECT_EQ(f->t.io.op, SPD_OP_READ);
    spd_data_dir dir;
    uint32_t len;
    spd_status st;
    EXPECT_EQ(fx_plan(f, cdb, 6, &dir, &len, &st), 0);
    EXPECT_EQ(len, 256 * 512);
    /* 256 blocks from 745 reach past 1000. */
    cdb[2] = 0x02;
    cdb[3] = 0xe9;
    fx_run(f, cdb, 6, sizeof f->data);
    EXPECT_OUT_OF_RANGE(f->t.status);
    cdb[3] = 0xe8;                      /* from 744: the last 256 */
    EXPECT_EQ(fx_run(f, cdb, 6, sizeof f->data), SCSI_IO);
    /* WRITE(6) too; its 21-bit LBA uses byte 1's low bits. */
    uint8_t w6[6] = { SPD_SCSI_WRITE_6, 0x01, 0, 0, 0, 0 };
    fx_run(f, w6, 6, sizeof f->data);
    EXPECT_OUT_OF_RANGE(f->t.status);
    w6[1] = 0;
    EXPECT_EQ(fx_run(f, w6, 6, sizeof f->data), SCSI_IO);
    EXPECT_EQ(f->t.io.op, SPD_OP_WRITE);
    EXPECT_EQ(f->t.io.blocks, 256);
    fx_free(f);
}

static void test_rw_request_fields(void)
{
    struct fx *f = fx_new(4096, 1000, 0);
    uint8_t cdb[16];
    for (size_t i = 1; i < 4; i++) {
        for (int w = 0; w < 2; w++) {
            uint8_t len = rw_cdb(cdb, &rw_sizes[i], w, 7, 3);
            cdb[1] = 0x08 | 0x10;       /* FUA, DPO */
            EXPECT_EQ(fx_run(f, cdb, len, 3 * 4096), SCSI_IO);
            EXPECT(f->t.io.fua);
            EXPECT(f->t.io.buf == f->data);
            cdb[1] = 0;
            fx_run(f, cdb, len, 3 * 4096);
            EXPECT(!f->t.io.fua);
            /* RDPROTECT/WRPROTECT: no protection information. */
            cdb[1] = 0x20;
            EXPECT_EQ(fx_run(f, cdb, len, 3 * 4096), SCSI_DONE);
            EXPECT_FIELD(f->t.status, true, 1, 7);
            cdb[1] = 0xe0;
            fx_run(f, cdb, len, 3 * 4096);
            EXPECT_FIELD(f->t.status, true, 1, 7);
        }
    }
    /* READ(6)/WRITE(6) have no FUA. */
    rw_cdb(cdb, &rw_sizes[0], false, 7, 3);
    EXPECT_EQ(fx_run(f, cdb, 6, 3 * 4096), SCSI_IO);
    EXPECT(!f->t.io.fua);
    fx_free(f);
}

/* A READ into a buffer smaller than the transfer goes through a bounce
 * buffer; what fits is copied back. */
static void test_read_bounce(void)
{
    struct fx *f = fx_new(512, 1000, 0);
    uint8_t cdb[16];
    uint8_t len = rw_cdb(cdb, &rw_sizes[1], false, 5, 4);
    memset(f->data, 0xee, 4096);
    /* Only the block that reaches into the buffer is read, bounced. */
    EXPECT_EQ(fx_run(f, cdb, len, 100), SCSI_IO);
    EXPECT(f->t.io.buf != f->data);
    EXPECT(f->t.io.buf == f->t.owned);
    EXPECT_EQ(f->t.io.lba, 5);
    EXPECT_EQ(f->t.io.blocks, 1);
    fx_complete(f, 0x5a);
    EXPECT_GOOD(f->t.status);
    EXPECT_EQ(f->t.data_in_len, 100);
    EXPECT_EQ(f->data[0], 0x5a);
    EXPECT_EQ(f->data[99], 0x5a);
    EXPECT_EQ(f->data[100], 0xee);
    /* Whole blocks shorter than the transfer: read into the buffer. */
    EXPECT_EQ(fx_run(f, cdb, len, 1024), SCSI_IO);
    EXPECT(f->t.io.buf == f->data);
    EXPECT(f->t.owned == NULL);
    EXPECT_EQ(f->t.io.blocks, 2);
    fx_complete(f, 0x44);
    EXPECT_EQ(f->t.data_in_len, 1024);
    /* A larger buffer: the transfer's length. */
    EXPECT_EQ(fx_run(f, cdb, len, 4096), SCSI_IO);
    EXPECT(f->t.io.buf == f->data);
    EXPECT(f->t.owned == NULL);
    EXPECT_EQ(f->t.io.blocks, 4);
    fx_complete(f, 0x33);
    EXPECT_EQ(f->t.data_in_len, 2048);
    /* No buffer at all: nothing to read. */
    fx_fini(f);
    memset(&f->t, 0, sizeof f->t);
    f->t.cdb = cdb;
    f->t.cdb_len = len;
    EXPECT_EQ(scsi_execute(&f->lu, &f->t), SCSI_DONE);
    EXPECT_GOOD(f->t.status);
    EXPECT_EQ(f->t.data_in_len, 0);
    EXPECT_EQ(f->t.io.blocks, 0);
    fx_free(f);
}

/* A WRITE with less data than its transfer length is refused. */
static void test_write_short_data(void)
{
    struct fx *f = fx_new(512, 1000, 0);
    uint8_t cdb[16];
    for (size_t i = 0; i < 4; i++) {
        uint8_t len = rw_cdb(cdb, &rw_sizes[i], true, 5, 4);
        EXPECT_EQ(fx_run(f, cdb, len, 4 * 512 - 1), SCSI_DONE);
        EXPECT_FIELD(f->t.status, true, rw_sizes[i].count_off, -1);
        EXPECT_EQ(fx_run(f, cdb, len, 4 * 512), SCSI_IO);
    }
    fx_free(f);
}

/* Longer than the device's max transfer is fine (the core splits); longer
 * than a 32-bit byte count is not. */
static void test_transfer_limits(void)
{
    struct fx *f = fx_new(512, 1ull << 40, 0);
    uint8_t cdb[16];
    uint8_t len = rw_cdb(cdb, &rw_sizes[1], false, 0, 0xffff);
    EXPECT_EQ(fx_run(f, cdb, len, sizeof f->data), SCSI_IO);
    EXPECT_EQ(f->t.io.blocks, sizeof f->data / 512);    /* what fits */
    EXPECT(f->t.io.buf == f->data);
    EXPECT(f->t.io.blocks > f->lu.max_transfer_blocks);
    scsi_task_fini(&f->t);
    /* 32 MiB asked for, a buffer of 1000 bytes: two blocks read, never a
     * 32 MiB bounce buffer (nor 4 GiB with READ(16)). */
    EXPECT_EQ(fx_run(f, cdb, len, 1000), SCSI_IO);
    EXPECT_EQ(f->t.io.blocks, 2);
    EXPECT(f->t.io.buf == f->t.owned);
    fx_complete(f, 0x77);
    EXPECT_EQ(f->t.data_in_len, 1000);
    len = rw_cdb(cdb, &rw_sizes[3], false, 0, 0x7fffff);
    EXPECT_EQ(fx_run(f, cdb, len, 4096), SCSI_IO);
    EXPECT_EQ(f->t.io.blocks, 8);
    EXPECT(f->t.io.buf == f->data);
    scsi_task_fini(&f->t);

    spd_data_dir dir;
    uint32_t bytes;
    spd_status st;
    len = rw_cdb(cdb, &rw_sizes[3], false, 0, 0x7fffff);
    EXPECT_EQ(fx_plan(f, cdb, len, &dir, &bytes, &st), 0);
    EXPECT_EQ(bytes, 0xfffffe00u);
    len = rw_cdb(cdb, &rw_sizes[3], false, 0, 0x800000);
    EXPECT_EQ(fx_plan(f, cdb, len, &dir, &bytes, &st), SPD_CHECK);
    EXPECT_FIELD(st, true, 10, -1);
    len = rw_cdb(cdb, &rw_sizes[2], true, 0, 0xffffffff);
    EXPECT_EQ(fx_run(f, cdb, len, sizeof f->data), SCSI_DONE);
    EXPECT_FIELD(f->t.status, true, 6, -1);
    fx_free(f);

    f = fx_new(65536, 1ull << 20, 0);
    len = rw_cdb(cdb, &rw_sizes[3], false, 0, 0xffff);
    EXPECT_EQ(fx_plan(f, cdb, len, &dir, &bytes, &st), 0);
    EXPECT_EQ(bytes, 0xffff0000u);
    len = rw_cdb(cdb, &rw_sizes[3], false, 0, 0x10000);
    EXPECT_EQ(fx_plan(f, cdb, len, &dir, &bytes, &st), SPD_CHECK);
    fx_free(f);
}

/* Order: CDB fields, then write protection, then the LBA range. */
static void test_write_protected(void)
{
    struct fx *f = fx_new(512, 1000, FX_WP | FX_LBPRZ);
    uint8_t cdb[16];
    for (size_t i = 0; i < 4; i++) {
        uint8_t len = rw_cdb(cdb, &rw_sizes[i], true, 5, 1);
        fx_run(f, cdb, len, 512);
        EXPECT_SENSE(f->t.status, SPD_KEY_DATA_PROTECT,
                     SPD_ASC_WRITE_PROTECTED);
        len = rw_cdb(cdb, &rw_sizes[i], true, 5000, 1);
        fx_run(f, cdb, len, 512);
        EXPECT_SENSE(f->t.status, SPD_KEY_DATA_PROTECT,
                     SPD_ASC_WRITE_PROTECTED);
        spd_data_dir dir;
        uint32_t bytes;
        spd_status st;
        EXPECT_EQ(fx_plan(f, cdb, len, &dir, &bytes, &st), SPD_CHECK);
        EXPECT_SENSE(st, SPD_KEY_DATA_PROTECT, SPD_ASC_WRITE_PROTECTED);
        len = rw_cdb(cdb, &rw_sizes[i], false, 5, 1);
        EXPECT_EQ(fx_run(f, cdb, len, 512), SCSI_IO);
    }
    uint8_t w10[10] = { SPD_SCSI_WRITE_10, 0x20, 0, 0, 0, 0, 0, 0, 1, 0 };
    fx_run(f, w10, 10, 512);
    EXPECT_FIELD(f->t.status, true, 1, 7);
    uint8_t ws[10] = { SPD_SCSI_WRITE_SAME_10, 0x08, 0, 0, 0, 0, 0, 0, 1, 0 };
    fx_run(f, ws, 10, 512);
    EXPECT_SENSE(f->t.status, SPD_KEY_DATA_PROTECT, SPD_ASC_WRITE_PROTECTED);
    uint8_t unmap[10] = { SPD_SCSI_UNMAP, 0, 0, 0, 0, 0, 0, 0, 24, 0 };
    fx_run(f, unmap, 10, 24);
    EXPECT_SENSE(f->t.status, SPD_KEY_DATA_PROTECT, SPD_ASC_WRITE_PROTECTED);
    /* Flushing and verifying a protected unit are fine. */
    uint8_t sync[10] = { SPD_SCSI_SYNCHRONIZE_CACHE_10 };
    EXPECT_EQ(fx_run(f, sync, 10, 0), SCSI_IO);
    uint8_t verify[10] = { SPD_SCSI_VERIFY_10, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
    EXPECT_EQ(fx_run(f, verify, 10, 0), SCSI_DONE);
    EXPECT_GOOD(f->t.status);
    fx_free(f);
}

static void test_io_done_failure(void)
{
    struct fx *f = fx_new(512, 1000, 0);
    uint8_t cdb[16];
    uint8_t len = rw_cdb(cdb, &rw_sizes[1], false, 5, 4);
    EXPECT_EQ(fx_run(f, cdb, len, 100), SCSI_IO);
    spd_status_set_sense(&f->t.io.status, SPD_KEY_MEDIUM_ERROR,
                         SPD_ASC(SPD_ASC_UNRECOVERED_READ_ERROR),
                         SPD_ASCQ(SPD_ASC_UNRECOVERED_READ_ERROR));
    spd_status_set_info(&f->t.io.status, 7);
    scsi_io_done(&f->lu, &f->t);
    EXPECT_SENSE(f->t.status, SPD_KEY_MEDIUM_ERROR,
                 SPD_ASC_UNRECOVERED_READ_ERROR);
    EXPECT(f->t.status.info_valid);
    EXPECT_EQ(f->t.status.information, 7);
    EXPECT_EQ(f->t.data_in_len, 0);
    fx_free(f);
}

/* ------------------------------------------------------------------ */
/* VERIFY and SYNCHRONIZE CACHE                                         */
/* ------------------------------------------------------------------ */

static void test_verify(void)
{
    struct fx *f = fx_new(512, 1000, 0);
    uint8_t v10[10] = { SPD_SCSI_VERIFY_10, 0, 0, 0, 0x03, 0xe0, 0, 0, 8, 0 };
    EXPECT_EQ(fx_run(f, v10, 10, 0), SCSI_DONE);
    EXPECT_GOOD(f->t.status);
    v10[8] = 9;
    fx_run(f, v10, 10, 0);
    EXPECT_OUT_OF_RANGE(f->t.status);
    v10[8] = 0;                         /* zero blocks at the last LBA+1 */
    v10[5] = 0xe8;
    fx_run(f, v10, 10, 0);
    EXPECT_OUT_OF_RANGE(f->t.status);
    v10[5] = 0xe7;
    fx_run(f, v10, 10, 0);
    EXPECT_GOOD(f->t.status);
    v10[1] = 0x02;                      /* BYTCHK 01b, zero blocks */
    EXPECT_EQ(fx_run(f, v10, 10, 0), SCSI_DONE);
    EXPECT_GOOD(f->t.status);
    v10[1] = 0x04;                      /* BYTCHK 10b */
    fx_run(f, v10, 10, 0);
    EXPECT_FIELD(f->t.status, true, 1, 2);
    v10[1] = 0x40;                      /* VRPROTECT */
    fx_run(f, v10, 10, 0);
    EXPECT_FIELD(f->t.status, true, 1, 7);
    v10[1] = 0x10;                      /* DPO is fine */
    fx_run(f, v10, 10, 0);
    EXPECT_GOOD(f->t.status);

    uint8_t v16[16] = { SPD_SCSI_VERIFY_16 };
    put_be64(v16 + 2, 999);
    put_be32(v16 + 10, 1);
    EXPECT_EQ(fx_run(f, v16, 16, 0), SCSI_DONE);
    EXPECT_GOOD(f->t.status);
    put_be64(v16 + 2, 1ull << 63);
    fx_run(f, v16, 16, 0);
    EXPECT_OUT_OF_RANGE(f->t.status);
    v16[1] = 0x06;                      /* BYTCHK 11b */
    fx_run(f, v16, 16, 0);
    EXPECT_FIELD(f->t.status, true, 1, 2);
    fx_free(f);
}

/* VERIFY(10) or (16) with BYTCHK 01b of blocks at lba; returns its length. */
static uint8_t verify_cdb(uint8_t *cdb, bool sixteen, uint64_t lba,
                          uint32_t blocks)
{
    memset(cdb, 0, 16);
    cdb[1] = 0x02;
    if (sixteen) {
        cdb[0] = SPD_SCSI_VERIFY_16;
        put_be64(cdb + 2, lba);
        put_be32(cdb + 10, blocks);
        return 16;
    }
    cdb[0] = SPD_SCSI_VERIFY_10;
    put_be32(cdb + 2, (uint32_t)lba);
    put_be16(cdb + 7, (uint16_t)blocks);
    return 10;
}

/* BYTCHK 01b: the range is read into the engine's buffer and compared
 * with the data-out; a difference is a MISCOMPARE at its byte offset. */
static void verify_bytchk(bool sixteen, uint32_t bl)
{
    struct fx *f = fx_new(bl, 1000, 0);
    uint8_t cdb[16];
    uint8_t len = verify_cdb(cdb, sixteen, 990, 10);
    uint32_t bytes = 10 * bl;
    spd_data_dir dir;
    uint32_t plan_len;
    spd_status st;

    EXPECT_EQ(fx_plan(f, cdb, len, &dir, &plan_len, &st), 0);
    EXPECT_EQ(dir, SPD_DIR_OUT);
    EXPECT_EQ(plan_len, bytes);

    /* Equal. */
    memset(f->data, 0x5a, bytes);
    EXPECT_EQ(fx_run(f, cdb, len, bytes), SCSI_IO);
    EXPECT_EQ(f->t.io.op, SPD_OP_READ);
    EXPECT_EQ(f->t.io.lba, 990);
    EXPECT_EQ(f->t.io.blocks, 10);
    EXPECT(f->t.io.buf != NULL && f->t.io.buf != (void *)f->data);
    fx_complete(f, 0x5a);
    EXPECT_GOOD(f->t.status);
    EXPECT_EQ(f->t.data_in_len, 0);
    EXPECT_EQ(f->data[0], 0x5a);            /* data-out untouched */

    /* Different in block 3: the offset of the first differing byte. */
    uint32_t off = 3 * bl + 17;
    f->data[off] = 0xa5;
    f->data[off + 100] = 0xa5;
    EXPECT_EQ(fx_run(f, cdb, len, bytes), SCSI_IO);
    fx_complete(f, 0x5a);
    EXPECT_SENSE(f->t.status, SPD_KEY_MISCOMPARE,
                 SPD_ASC_MISCOMPARE_DURING_VERIFY);
    EXPECT(f->t.status.info_valid);
    EXPECT_EQ(f->t.status.information, off);
    EXPECT_EQ(f->t.data_in_len, 0);
    uint8_t sense[SPD_SENSE_MAX];
    uint8_t n = scsi_sense_build(&f->t.status, false, sense, sizeof sense);
    EXPECT_EQ(n, 18);
    EXPECT_EQ(sense[0], 0xf0);              /* VALID, fixed */
    EXPECT_EQ(sense[2], SPD_KEY_MISCOMPARE);
    EXPECT_EQ(get_be32(sense + 3), off);
    EXPECT_EQ(sense[12], 0x1d);
    EXPECT_EQ(sense[13], 0x00);

    /* The last byte only. */
    f->data[off] = f->data[off + 100] = 0x5a;
    f->data[bytes - 1] = 0;
    fx_run(f, cdb, len, bytes);
    fx_complete(f, 0x5a);
    EXPECT_SENSE(f->t.status, SPD_KEY_MISCOMPARE,
                 SPD_ASC_MISCOMPARE_DURING_VERIFY);
    EXPECT_EQ(f->t.status.information, bytes - 1);

    /* The read fails: its status, no compare. */
    EXPECT_EQ(fx_run(f, cdb, len, bytes), SCSI_IO);
    spd_status_set_sense(&f->t.io.status, SPD_KEY_MEDIUM_ERROR,
                         SPD_ASC(SPD_ASC_UNRECOVERED_READ_ERROR),
                         SPD_ASCQ(SPD_ASC_UNRECOVERED_READ_ERROR));
    scsi_io_done(&f->lu, &f->t);
    EXPECT_SENSE(f->t.status, SPD_KEY_MEDIUM_ERROR,
                 SPD_ASC_UNRECOVERED_READ_ERROR);

    /* Less data-out than the transfer: as WRITE, the length field. */
    fx_run(f, cdb, len, bytes - 1);
    EXPECT_FIELD(f->t.status, true, sixteen ? 10 : 7, -1);
    EXPECT(f->t.owned == NULL);

    /* Out of range, with and without BYTCHK, before any data. */
    len = verify_cdb(cdb, sixteen, 991, 10);
    EXPECT_EQ(fx_run(f, cdb, len, bytes), SCSI_DONE);
    EXPECT_OUT_OF_RANGE(f->t.status);
    EXPECT_EQ(fx_plan(f, cdb, len, &dir, &plan_len, &st), SPD_CHECK);
    EXPECT_OUT_OF_RANGE(st);
    cdb[1] = 0;
    fx_run(f, cdb, len, 0);
    EXPECT_OUT_OF_RANGE(f->t.status);

    /* Zero blocks: GOOD, no data, no request. */
    len = verify_cdb(cdb, sixteen, 999, 0);
    EXPECT_EQ(fx_plan(f, cdb, len, &dir, &plan_len, &st), 0);
    EXPECT_EQ(dir, SPD_DIR_NONE);
    EXPECT_EQ(plan_len, 0);
    EXPECT_EQ(fx_run(f, cdb, len, 0), SCSI_DONE);
    EXPECT_GOOD(f->t.status);
    len = verify_cdb(cdb, sixteen, 1000, 0);
    fx_run(f, cdb, len, 0);
    EXPECT_OUT_OF_RANGE(f->t.status);

    /* BYTCHK 00b: no data in the plan, no request. */
    len = verify_cdb(cdb, sixteen, 0, 10);
    cdb[1] = 0x10;                          /* DPO */
    EXPECT_EQ(fx_plan(f, cdb, len, &dir, &plan_len, &st), 0);
    EXPECT_EQ(dir, SPD_DIR_NONE);
    EXPECT_EQ(plan_len, 0);
    EXPECT_EQ(fx_run(f, cdb, len, 0), SCSI_DONE);
    EXPECT_GOOD(f->t.status);
    /* BYTCHK 10b and 11b: not supported. */
    cdb[1] = 0x04;
    EXPECT_EQ(fx_plan(f, cdb, len, &dir, &plan_len, &st), SPD_CHECK);
    EXPECT_FIELD(st, true, 1, 2);
    cdb[1] = 0x06;
    fx_run(f, cdb, len, bytes);
    EXPECT_FIELD(f->t.status, true, 1, 2);
    fx_free(f);
}

static void test_verify_bytchk_10(void) { verify_bytchk(false, 512); }
static void test_verify_bytchk_16(void) { verify_bytchk(true, 4096); }

/* A VERIFY(16) transfer past 4 GiB is refused as for WRITE(16). */
static void test_verify_bytchk_limit(void)
{
    struct fx *f = fx_new(65536, 1ull << 20, 0);
    uint8_t cdb[16];
    uint8_t len = verify_cdb(cdb, true, 0, 65536);
    spd_data_dir dir;
    uint32_t plan_len;
    spd_status st;
    EXPECT_EQ(fx_plan(f, cdb, len, &dir, &plan_len, &st), SPD_CHECK);
    EXPECT_FIELD(st, true, 10, -1);
    cdb[1] = 0;                             /* no data: fine */
    EXPECT_EQ(fx_plan(f, cdb, len, &dir, &plan_len, &st), 0);
    EXPECT_EQ(dir, SPD_DIR_NONE);
    fx_free(f);
}

/* ------------------------------------------------------------------ */
/* GET LBA STATUS                                                       */
/* ------------------------------------------------------------------ */

/* A fake allocation map: runs of blocks, alternately mapped and not,
 * starting mapped; answered in pieces of at most piece blocks so the
 * engine must join them. */
struct fake_map {
    uint64_t bounds[8];         /* ends of the runs, ascending */
    unsigned runs;
    uint32_t piece;
    unsigned calls;
    int fail;                   /* -errno to answer, 0: none */
};

static int64_t fake_extent(void *ctx, uint64_t lba, uint32_t blocks,
                           bool *mapped)
{
    struct fake_map *m = ctx;
    m->calls++;
    if (m->fail)
        return m->fail;
    unsigned i = 0;
    while (i < m->runs && m->bounds[i] <= lba)
        i++;
    if (i == m->runs || blocks == 0)
        return -EINVAL;
    *mapped = i % 2 == 0;
    uint64_t run = m->bounds[i] - lba;
    if (run > blocks)
        run = blocks;
    if (m->piece && run > m->piece)
        run = m->piece;
    return (int64_t)run;
}

/* GET LBA STATUS runs through a unit core (the engine asks it for the
 * extents): a unit whose device answers from a fake map. */
struct gls {
    spd_unit *unit;
    struct fake_map map;
    struct { spd_status status; uint32_t data_in_len; } t;
    uint8_t data[4096];
};

static int gls_read(void *ctx, spd_io *io, void *buf, uint64_t lba,
                    uint32_t blocks, bool fua)
{
    (void)ctx; (void)io; (void)lba; (void)fua;
    memset(buf, 0, (size_t)blocks * 512);
    return SPD_OK;
}

static int gls_unmap(void *ctx, spd_io *io, const spd_unmap_desc *descs,
                     uint32_t count)
{
    (void)ctx; (void)io; (void)descs; (void)count;
    return SPD_OK;
}

static struct gls *gls_new(uint64_t blocks, bool with_extent)
{
    struct gls *g = calloc(1, sizeof *g);
    spd_params p = memunit_params(512, blocks, 77);
    p.write_protected = true;
    spd_ops ops = { SPD_OPS_INIT, .read = gls_read, .unmap = gls_unmap,
                    .extent = with_extent ? fake_extent : NULL };
    g->unit = spd_unit_create(&p, &ops, &g->map);
    EXPECT(g->unit != NULL);
    return g;
}

static void gls_free(struct gls *g)
{
    spd_unit_destroy(g->unit);
    free(g);
}

static void gls_run(struct gls *g, uint64_t lba, uint32_t alloc)
{
    spd_scsi_cmd cmd = { SPD_SCSI_CMD_INIT, .cdb_len = 16, .data = g->data,
                         .data_len = sizeof g->data };
    cmd.cdb[0] = SPD_SCSI_SERVICE_ACTION_IN_16;
    cmd.cdb[1] = SPD_SA_GET_LBA_STATUS;
    put_be64(cmd.cdb + 2, lba);
    put_be32(cmd.cdb + 10, alloc);
    memset(g->data, 0xee, sizeof g->data);
    spd_unit_scsi_run(g->unit, &cmd);
    g->t.status = cmd.status;
    g->t.data_in_len = cmd.data_in_len;
}

/* Descriptor i of the answer is (lba, blocks, status). */
static void expect_desc_at(const uint8_t *data, unsigned i, uint64_t lba,
                           uint32_t blocks, uint8_t status, int line)
{
    const uint8_t *d = data + 8 + 16 * i;
    bool ok = get_be64(d) == lba && get_be32(d + 8) == blocks &&
              d[12] == status && d[13] == 0 && d[14] == 0 && d[15] == 0;
    if (!ok)
        fprintf(stderr, "  descriptor %u: want %" PRIu64 "+%u status %u, "
                "got %" PRIu64 "+%u status %u\n", i, lba, blocks, status,
                get_be64(d), get_be32(d + 8), d[12]);
    harness_check(ok, "lba status descriptor", __FILE__, line);
}
#define EXPECT_DESC(f, i, lba, blocks, status) \
    expect_desc_at((f)->data, i, lba, blocks, status, __LINE__)

static void test_get_lba_status(void)
{
    struct gls *f = gls_new(1000, true);
    /* Mapped 0-99, hole 100-349, mapped 350-399, hole 400-999. */
    f->map = (struct fake_map){ .bounds = { 100, 350, 400, 1000 }, .runs = 4,
                                .piece = 30 };

    gls_run(f, 0, 4096);
    EXPECT_GOOD(f->t.status);
    EXPECT_EQ(f->t.data_in_len, 8 + 4 * 16);
    EXPECT_EQ(get_be32(f->data), 4 + 4 * 16);       /* PARAMETER DATA LENGTH */
    EXPECT_EQ(get_be32(f->data + 4), 0);            /* reserved */
    EXPECT_DESC(f, 0, 0, 100, 0);
    EXPECT_DESC(f, 1, 100, 250, 1);
    EXPECT_DESC(f, 2, 350, 50, 0);
    EXPECT_DESC(f, 3, 400, 600, 1);

    /* From inside a hole. */
    gls_run(f, 120, 4096);
    EXPECT_EQ(f->t.data_in_len, 8 + 3 * 16);
    EXPECT_DESC(f, 0, 120, 230, 1);
    EXPECT_DESC(f, 2, 400, 600, 1);

    /* The allocation length: as many descriptors as fit... */
    gls_run(f, 0, 8 + 2 * 16 + 5);
    EXPECT_EQ(f->t.data_in_len, 8 + 2 * 16);
    EXPECT_EQ(get_be32(f->data), 4 + 2 * 16);
    EXPECT_DESC(f, 1, 100, 250, 1);
    EXPECT_EQ(f->data[8 + 2 * 16], 0xee);
    /* ...at least one, truncated to the allocation length exactly. */
    gls_run(f, 100, 20);
    EXPECT_GOOD(f->t.status);
    EXPECT_EQ(f->t.data_in_len, 20);
    EXPECT_EQ(get_be32(f->data), 4 + 16);
    EXPECT_EQ(get_be64(f->data + 8), 100);
    EXPECT_EQ(f->data[20], 0xee);
    gls_run(f, 0, 4);
    EXPECT_EQ(f->t.data_in_len, 4);
    EXPECT_EQ(get_be32(f->data), 4 + 16);
    gls_run(f, 0, 0);
    EXPECT_GOOD(f->t.status);
    EXPECT_EQ(f->t.data_in_len, 0);

    /* The last block; past it. */
    gls_run(f, 999, 4096);
    EXPECT_EQ(f->t.data_in_len, 8 + 16);
    EXPECT_DESC(f, 0, 999, 1, 1);
    gls_run(f, 1000, 4096);
    EXPECT_OUT_OF_RANGE(f->t.status);
    gls_run(f, UINT64_MAX, 4096);
    EXPECT_OUT_OF_RANGE(f->t.status);

    /* The device fails: an error for the first descriptor. */
    f->map.fail = -EIO;
    gls_run(f, 0, 4096);
    EXPECT_SENSE(f->t.status, SPD_KEY_MEDIUM_ERROR,
                 SPD_ASC_UNRECOVERED_READ_ERROR);
    EXPECT(f->t.status.info_valid && f->t.status.information == 0);
    gls_free(f);

    /* Without an extent callback: everything mapped. */
    f = gls_new(1000, false);
    gls_run(f, 10, 4096);
    EXPECT_EQ(f->t.data_in_len, 8 + 16);
    EXPECT_DESC(f, 0, 10, 990, 0);
    gls_free(f);

    /* Reserved bits; the plan is data in of the allocation length. */
    struct fx *x = fx_new(512, 1000, FX_UNMAP);
    uint8_t cdb[16] = { SPD_SCSI_SERVICE_ACTION_IN_16, SPD_SA_GET_LBA_STATUS };
    put_be32(cdb + 10, 24);
    spd_data_dir dir;
    uint32_t plan_len;
    spd_status st;
    EXPECT_EQ(fx_plan(x, cdb, 16, &dir, &plan_len, &st), 0);
    EXPECT_EQ(dir, SPD_DIR_IN);
    EXPECT_EQ(plan_len, 24);
    cdb[14] = 0x01;
    fx_done(x, cdb, 16, 4096);
    EXPECT_FIELD(x->t.status, true, 14, 0);
    EXPECT(!strcmp(spd_cdb_name(cdb, 16), "GET LBA STATUS"));
    /* The engine asks the core for extents; it does not call a device. */
    cdb[14] = 0;
    EXPECT_EQ(fx_run(x, cdb, 16, 4096), SCSI_IO);
    EXPECT_EQ(x->t.io.op, SPD_OP_EXTENTS);
    EXPECT_EQ(x->t.io.lba, 0);
    EXPECT_EQ(x->t.io.blocks, 1000);
    EXPECT_EQ(x->t.io.extent_max, 1);
    fx_free(x);
}

/* A device that answers a block at a time on a large unit: the core stops
 * after its budget of calls and the answer has the run so far, rather
 * than a call per block of 2^32-block runs. */
static void test_get_lba_status_call_budget(void)
{
    struct gls *f = gls_new(1ull << 40, true);
    f->map = (struct fake_map){ .bounds = { 1ull << 40 }, .runs = 1,
                                .piece = 1 };
    gls_run(f, 0, 4096);
    EXPECT_GOOD(f->t.status);
    EXPECT_EQ(f->map.calls, SPD_EXTENT_CALLS);
    EXPECT_EQ(f->t.data_in_len, 8 + 16);
    EXPECT_DESC(f, 0, 0, 1024, 0);
    /* Asking again from there goes on. */
    f->map.calls = 0;
    f->map.piece = 512;
    gls_run(f, 1024, 4096);
    EXPECT_EQ(f->map.calls, SPD_EXTENT_CALLS);
    EXPECT_EQ(f->t.data_in_len, 8 + 16);
    EXPECT_DESC(f, 0, 1024, 1024 * 512, 0);
    gls_free(f);
}

/* Without logical block provisioning (LBPME 0) the command does not
 * exist, in the table or in REPORT SUPPORTED OPERATION CODES. */
static void test_get_lba_status_unsupported(void)
{
    struct fx *f = fx_new(512, 1000, 0);
    uint8_t gls[16] = { SPD_SCSI_SERVICE_ACTION_IN_16, SPD_SA_GET_LBA_STATUS,
                        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0 };
    fx_done(f, gls, 16, 4096);
    EXPECT_SENSE(f->t.status, SPD_KEY_ILLEGAL_REQUEST,
                 SPD_ASC_INVALID_COMMAND_OPERATION_CODE);
    uint8_t rsoc[12] = { SPD_SCSI_MAINTENANCE_IN,
                         SPD_SA_REPORT_SUPPORTED_OPCODES, 0x02,
                         SPD_SCSI_SERVICE_ACTION_IN_16, 0,
                         SPD_SA_GET_LBA_STATUS, 0, 0, 0x10, 0, 0, 0 };
    fx_done(f, rsoc, 12, 4096);
    EXPECT_GOOD(f->t.status);
    EXPECT_EQ(f->data[1] & 0x07, 0x01);             /* not supported */
    fx_reinit(f, 512, 1000, FX_UNMAP);
    fx_done(f, rsoc, 12, 4096);
    EXPECT_EQ(f->data[1] & 0x07, 0x03);             /* as the standard */
    EXPECT_EQ(get_be16(f->data + 2), 16);
    fx_free(f);
}

static void test_synchronize_cache(void)
{
    struct fx *f = fx_new(512, 1000, 0);
    uint8_t s10[10] = { SPD_SCSI_SYNCHRONIZE_CACHE_10, 0x02, 0, 0, 0, 10, 0,
                        0, 20, 0 };
    EXPECT_EQ(fx_run(f, s10, 10, 0), SCSI_IO);
    EXPECT_EQ(f->t.io.op, SPD_OP_FLUSH);
    EXPECT_EQ(f->t.io.lba, 10);
    EXPECT_EQ(f->t.io.blocks, 20);
    fx_complete(f, 0);
    EXPECT_GOOD(f->t.status);
    memset(s10 + 1, 0, 8);              /* everything */
    EXPECT_EQ(fx_run(f, s10, 10, 0), SCSI_IO);
    EXPECT_EQ(f->t.io.lba, 0);
    EXPECT_EQ(f->t.io.blocks, 0);
    s10[4] = 0x03;                      /* LBA 1000: past the end */
    s10[5] = 0xe8;
    fx_run(f, s10, 10, 0);
    EXPECT_OUT_OF_RANGE(f->t.status);
    uint8_t s16[16] = { SPD_SCSI_SYNCHRONIZE_CACHE_16 };
    put_be64(s16 + 2, 990);
    put_be32(s16 + 10, 10);
    EXPECT_EQ(fx_run(f, s16, 16, 0), SCSI_IO);
    EXPECT_EQ(f->t.io.lba, 990);
    EXPECT_EQ(f->t.io.blocks, 10);
    put_be32(s16 + 10, 11);
    fx_run(f, s16, 16, 0);
    EXPECT_OUT_OF_RANGE(f->t.status);
    fx_free(f);
}

/* ------------------------------------------------------------------ */
/* WRITE SAME                                                           */
/* ------------------------------------------------------------------ */

static uint8_t ws_cdb(uint8_t *cdb, bool sixteen, uint8_t flags, uint64_t lba,
                      uint32_t blocks)
{
    memset(cdb, 0, 16);
    cdb[1] = flags;
    if (sixteen) {
        cdb[0] = SPD_SCSI_WRITE_SAME_16;
        put_be64(cdb + 2, lba);
        put_be32(cdb + 10, blocks);
        return 16;
    }
    cdb[0] = SPD_SCSI_WRITE_SAME_10;
    put_be32(cdb + 2, (uint32_t)lba);
    put_be16(cdb + 7, (uint16_t)blocks);
    return 10;
}

#define WS_UNMAP 0x08
#define WS_NDOB  0x01

static void test_write_same_writes(void)
{
    struct fx *f = fx_new(512, 1000, 0);
    uint8_t cdb[16];
    for (int sixteen = 0; sixteen < 2; sixteen++) {
        uint8_t len = ws_cdb(cdb, sixteen, 0, 10, 100);
        memset(f->data, 0x42, 512);
        EXPECT_EQ(fx_run(f, cdb, len, 512), SCSI_IO);
        EXPECT_EQ(f->t.io.op, SPD_OP_WRITE_SAME);
        EXPECT_EQ(f->t.io.lba, 10);
        EXPECT_EQ(f->t.io.blocks, 100);
        EXPECT(f->t.io.buf == f->data);
        /* Zero blocks: to the end of the medium. */
        len = ws_cdb(cdb, sixteen, 0, 10, 0);
        EXPECT_EQ(fx_run(f, cdb, len, 512), SCSI_IO);
        EXPECT_EQ(f->t.io.blocks, 990);
        len = ws_cdb(cdb, sixteen, 0, 1000, 0);
        fx_run(f, cdb, len, 512);
        EXPECT_OUT_OF_RANGE(f->t.status);
        len = ws_cdb(cdb, sixteen, 0, 999, 2);
        fx_run(f, cdb, len, 512);
        EXPECT_OUT_OF_RANGE(f->t.status);
        /* Less than a block of data. */
        len = ws_cdb(cdb, sixteen, 0, 10, 4);
        fx_run(f, cdb, len, 511);
        EXPECT_FIELD(f->t.status, true, sixteen ? 10 : 7, -1);
        /* UNMAP without unmap support; ANCHOR; WRPROTECT. */
        len = ws_cdb(cdb, sixteen, WS_UNMAP, 10, 4);
        fx_run(f, cdb, len, 512);
        EXPECT_FIELD(f->t.status, true, 1, 3);
        len = ws_cdb(cdb, sixteen, 0x10, 10, 4);
        fx_run(f, cdb, len, 512);
        EXPECT_FIELD(f->t.status, true, 1, 4);
        len = ws_cdb(cdb, sixteen, 0x20, 10, 4);
        fx_run(f, cdb, len, 512);
        EXPECT_FIELD(f->t.status, true, 1, 7);
    }
    /* NDOB (16 only): zeros, no data out. */
    uint8_t len = ws_cdb(cdb, true, WS_NDOB, 10, 4);
    spd_data_dir dir;
    uint32_t bytes;
    spd_status st;
    EXPECT_EQ(fx_plan(f, cdb, len, &dir, &bytes, &st), 0);
    EXPECT_EQ(dir, SPD_DIR_NONE);
    EXPECT_EQ(bytes, 0);
    EXPECT_EQ(fx_run(f, cdb, len, 0), SCSI_IO);
    EXPECT_EQ(f->t.io.op, SPD_OP_WRITE_ZEROES);
    EXPECT_EQ(f->t.io.flags, 0);
    EXPECT_EQ(f->t.io.lba, 10);
    EXPECT_EQ(f->t.io.blocks, 4);
    len = ws_cdb(cdb, false, WS_NDOB, 10, 4);     /* reserved in (10) */
    fx_run(f, cdb, len, 512);
    EXPECT_FIELD(f->t.status, true, 1, 0);
    fx_free(f);
}

/* Zeros are the core's WRITE_ZEROES; the UNMAP bit lets the core unmap
 * (which it does only when that reads back as zeros: test_unit.c). Other
 * data is WRITE SAME. */
static void test_write_same_unmap_decision(void)
{
    struct fx *f = fx_new(4096, 1000, FX_LBPRZ);
    uint8_t cdb[16];
    for (int sixteen = 0; sixteen < 2; sixteen++) {
        uint8_t len = ws_cdb(cdb, sixteen, WS_UNMAP, 20, 30);
        memset(f->data, 0, 4096);
        EXPECT_EQ(fx_run(f, cdb, len, 4096), SCSI_IO);
        EXPECT_EQ(f->t.io.op, SPD_OP_WRITE_ZEROES);
        EXPECT_EQ(f->t.io.flags, SPD_REQ_MAY_UNMAP);
        EXPECT_EQ(f->t.io.lba, 20);
        EXPECT_EQ(f->t.io.blocks, 30);
        fx_complete(f, 0);
        EXPECT_GOOD(f->t.status);
        f->data[4095] = 1;              /* not zeros: unmapped all the same */
        EXPECT_EQ(fx_run(f, cdb, len, 4096), SCSI_IO);
        EXPECT_EQ(f->t.io.op, SPD_OP_UNMAP);
        EXPECT_EQ(f->t.io.desc_count, 1);
        EXPECT_EQ(f->t.io.descs[0].lba, 20);
        EXPECT_EQ(f->t.io.descs[0].blocks, 30);
        fx_complete(f, 0);
        f->data[4095] = 0;
        len = ws_cdb(cdb, sixteen, 0, 20, 30);  /* no UNMAP bit: written */
        EXPECT_EQ(fx_run(f, cdb, len, 4096), SCSI_IO);
        EXPECT_EQ(f->t.io.op, SPD_OP_WRITE_ZEROES);
        EXPECT_EQ(f->t.io.flags, 0);
        len = ws_cdb(cdb, sixteen, WS_UNMAP, 900, 0);   /* to the end */
        EXPECT_EQ(fx_run(f, cdb, len, 4096), SCSI_IO);
        EXPECT_EQ(f->t.io.op, SPD_OP_WRITE_ZEROES);
        EXPECT_EQ(f->t.io.lba, 900);
        EXPECT_EQ(f->t.io.blocks, 100);
    }
    uint8_t len = ws_cdb(cdb, true, WS_UNMAP | WS_NDOB, 5, 6);
    EXPECT_EQ(fx_run(f, cdb, len, 0), SCSI_IO);
    EXPECT_EQ(f->t.io.op, SPD_OP_WRITE_ZEROES);
    EXPECT_EQ(f->t.io.flags, SPD_REQ_MAY_UNMAP);
    EXPECT_EQ(f->t.io.blocks, 6);
    fx_free(f);
}

/* More than the advertised MAXIMUM WRITE SAME LENGTH. */
static void test_write_same_limit(void)
{
    struct fx *f = fx_new(512, 1ull << 33, FX_LBPRZ);
    uint8_t cdb[16];
    uint8_t len = ws_cdb(cdb, true, 0, 0, 0xffffffff);
    EXPECT_EQ(fx_run(f, cdb, len, 512), SCSI_IO);
    EXPECT_EQ(f->t.io.blocks, 0xffffffff);
    len = ws_cdb(cdb, true, WS_UNMAP, 0, 0);    /* 2^33 blocks: too many */
    fx_run(f, cdb, len, 512);
    EXPECT_FIELD(f->t.status, true, 10, -1);
    len = ws_cdb(cdb, true, WS_UNMAP, (1ull << 33) - 0xffffffffull, 0);
    memset(f->data, 0, 512);
    EXPECT_EQ(fx_run(f, cdb, len, 512), SCSI_IO);
    EXPECT_EQ(f->t.io.op, SPD_OP_WRITE_ZEROES);
    EXPECT_EQ(f->t.io.blocks, 0xffffffff);
    fx_free(f);
}

/* ------------------------------------------------------------------ */
/* UNMAP                                                                */
/* ------------------------------------------------------------------ */

/* An UNMAP parameter list with n descriptors; returns its length. */
static uint32_t unmap_list(uint8_t *p, const spd_unmap_desc *d, uint32_t n)
{
    put_be16(p, (uint16_t)(6 + 16 * n));
    put_be16(p + 2, (uint16_t)(16 * n));
    memset(p + 4, 0, 4);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *q = p + 8 + 16 * i;
        put_be64(q, d[i].lba);
        put_be32(q + 8, d[i].blocks);
        memset(q + 12, 0, 4);
    }
    return 8 + 16 * n;
}

static void unmap_run(struct fx *f, uint16_t param_len, uint32_t sent)
{
    uint8_t cdb[10] = { SPD_SCSI_UNMAP };
    put_be16(cdb + 7, param_len);
    fx_run(f, cdb, 10, sent);
}

static void test_unmap(void)
{
    struct fx *f = fx_new(512, 1000, FX_UNMAP);
    spd_unmap_desc d[] = { { 0, 8 }, { 500, 0 }, { 992, 8 }, { 100, 1 } };
    uint32_t n = unmap_list(f->data, d, 4);
    unmap_run(f, (uint16_t)n, n);
    EXPECT_GOOD(f->t.status);
    EXPECT_EQ(f->t.io.op, SPD_OP_UNMAP);
    EXPECT_EQ(f->t.io.desc_count, 3);           /* the empty one dropped */
    EXPECT(f->t.io.descs == f->t.owned);
    EXPECT_EQ(f->t.io.descs[0].lba, 0);
    EXPECT_EQ(f->t.io.descs[0].blocks, 8);
    EXPECT_EQ(f->t.io.descs[1].lba, 992);
    EXPECT_EQ(f->t.io.descs[1].blocks, 8);
    EXPECT_EQ(f->t.io.descs[2].lba, 100);
    fx_complete(f, 0);
    EXPECT_GOOD(f->t.status);
    spd_data_dir dir;
    uint32_t bytes;
    spd_status st;
    uint8_t cdb[10] = { SPD_SCSI_UNMAP, 0, 0, 0, 0, 0, 0, 0, (uint8_t)n, 0 };
    EXPECT_EQ(fx_plan(f, cdb, 10, &dir, &bytes, &st), 0);
    EXPECT_EQ(dir, SPD_DIR_OUT);
    EXPECT_EQ(bytes, n);

    /* Zero-length list; header only; only empty descriptors. */
    EXPECT_EQ(fx_run(f, (uint8_t[10]){ SPD_SCSI_UNMAP }, 10, 0), SCSI_DONE);
    EXPECT_GOOD(f->t.status);
    n = unmap_list(f->data, d, 0);
    unmap_run(f, (uint16_t)n, n);
    EXPECT_GOOD(f->t.status);
    EXPECT_EQ(f->t.io.desc_count, 0);
    EXPECT(f->t.io.op != SPD_OP_UNMAP || f->t.io.descs == NULL);
    n = unmap_list(f->data, d + 1, 1);
    unmap_run(f, (uint16_t)n, n);
    EXPECT_GOOD(f->t.status);
    EXPECT(f->t.io.descs == NULL);
    /* An incomplete last descriptor is ignored. */
    n = unmap_list(f->data, d, 2);
    put_be16(f->data, 6 + 16 + 8);
    put_be16(f->data + 2, 16 + 8);
    unmap_run(f, (uint16_t)(n - 8), n - 8);
    EXPECT_GOOD(f->t.status);
    EXPECT_EQ(f->t.io.desc_count, 1);
    fx_free(f);
}

static void test_unmap_malformed(void)
{
    struct fx *f = fx_new(512, 1000, FX_LBPRZ);
    spd_unmap_desc d[] = { { 0, 8 }, { 992, 8 } };
    uint32_t n;

    unmap_run(f, 4, 4);                         /* shorter than the header */
    EXPECT_SENSE(f->t.status, SPD_KEY_ILLEGAL_REQUEST,
                 SPD_ASC_PARAMETER_LIST_LENGTH_ERROR);
    n = unmap_list(f->data, d, 2);
    unmap_run(f, (uint16_t)n, 7);               /* 7 bytes arrived */
    EXPECT_SENSE(f->t.status, SPD_KEY_ILLEGAL_REQUEST,
                 SPD_ASC_PARAMETER_LIST_LENGTH_ERROR);
    unmap_run(f, (uint16_t)(n - 16), n - 16);   /* header says more */
    EXPECT_SENSE(f->t.status, SPD_KEY_ILLEGAL_REQUEST,
                 SPD_ASC_PARAMETER_LIST_LENGTH_ERROR);
    put_be16(f->data, 6 + 16);                  /* lengths disagree */
    unmap_run(f, (uint16_t)n, n);
    EXPECT_FIELD(f->t.status, false, 2, -1);
    put_be16(f->data, 2);
    put_be16(f->data + 2, 0);
    unmap_run(f, (uint16_t)n, n);
    EXPECT_FIELD(f->t.status, false, 2, -1);

    /* Out of range anywhere: nothing is unmapped. */
    d[1].blocks = 9;
    n = unmap_list(f->data, d, 2);
    unmap_run(f, (uint16_t)n, n);
    EXPECT_OUT_OF_RANGE(f->t.status);
    EXPECT(f->t.io.descs == NULL);
    d[1] = (spd_unmap_desc){ 1000, 1 };
    n = unmap_list(f->data, d, 2);
    unmap_run(f, (uint16_t)n, n);
    EXPECT_OUT_OF_RANGE(f->t.status);
    d[1] = (spd_unmap_desc){ UINT64_MAX, 2 };
    n = unmap_list(f->data, d, 2);
    unmap_run(f, (uint16_t)n, n);
    EXPECT_OUT_OF_RANGE(f->t.status);

    /* More descriptors than VPD B0h allows. */
    static spd_unmap_desc many[257];
    for (int i = 0; i < 257; i++)
        many[i] = (spd_unmap_desc){ (uint64_t)i, 1 };
    n = unmap_list(f->data, many, 257);
    unmap_run(f, (uint16_t)n, n);
    EXPECT_FIELD(f->t.status, false, 2, -1);
    n = unmap_list(f->data, many, 256);
    unmap_run(f, (uint16_t)n, n);
    EXPECT_GOOD(f->t.status);
    EXPECT_EQ(f->t.io.desc_count, 256);

    /* ANCHOR; GROUP NUMBER. */
    uint8_t cdb[10] = { SPD_SCSI_UNMAP, 0x01, 0, 0, 0, 0, 0, 0, 24, 0 };
    fx_run(f, cdb, 10, 24);
    EXPECT_FIELD(f->t.status, true, 1, 0);
    cdb[1] = 0;
    cdb[6] = 0x01;
    fx_run(f, cdb, 10, 24);
    EXPECT_FIELD(f->t.status, true, 6, 0);
    fx_free(f);

    /* More blocks in one command than MAXIMUM UNMAP LBA COUNT. */
    f = fx_new(512, 1ull << 40, FX_LBPRZ);
    spd_unmap_desc big[] = { { 0, 0xffffffff }, { 1ull << 33, 1 } };
    n = unmap_list(f->data, big, 2);
    unmap_run(f, (uint16_t)n, n);
    EXPECT_FIELD(f->t.status, false, 16, -1);
    n = unmap_list(f->data, big, 1);
    unmap_run(f, (uint16_t)n, n);
    EXPECT_GOOD(f->t.status);
    fx_free(f);

    /* A unit without unmap has no UNMAP command. */
    f = fx_new(512, 1000, 0);
    n = unmap_list(f->data, d, 1);
    unmap_run(f, (uint16_t)n, n);
    EXPECT_SENSE(f->t.status, SPD_KEY_ILLEGAL_REQUEST,
                 SPD_ASC_INVALID_COMMAND_OPERATION_CODE);
    fx_free(f);
}

/* ------------------------------------------------------------------ */
/* READ CAPACITY                                                        */
/* ------------------------------------------------------------------ */

static void read_capacity10(struct fx *f, uint32_t lba, bool pmi,
                            uint32_t buffer)
{
    uint8_t cdb[10] = { SPD_SCSI_READ_CAPACITY_10 };
    put_be32(cdb + 2, lba);
    cdb[8] = pmi;
    memset(f->data, 0xee, 64);
    fx_run(f, cdb, 10, buffer);
}

static void test_read_capacity10(void)
{
    struct fx *f = fx_new(4096, 1000, 0);
    read_capacity10(f, 0, false, 64);
    EXPECT_GOOD(f->t.status);
    EXPECT_EQ(f->t.data_in_len, 8);
    EXPECT_EQ(get_be32(f->data), 999);
    EXPECT_EQ(get_be32(f->data + 4), 4096);
    EXPECT_EQ(f->data[8], 0xee);
    read_capacity10(f, 5, false, 64);           /* PMI 0, LBA not 0 */
    EXPECT_FIELD(f->t.status, true, 2, -1);
    read_capacity10(f, 5, true, 64);
    EXPECT_GOOD(f->t.status);
    EXPECT_EQ(get_be32(f->data), 999);
    read_capacity10(f, 0, false, 4);
    EXPECT_EQ(f->t.data_in_len, 4);
    EXPECT_EQ(f->data[4], 0xee);
    fx_free(f);

    static const struct {
        uint64_t blocks;
        uint32_t want;
    } cases[] = {
        { 1, 0 },
        { 0xffffffffull, 0xfffffffe },
        { 1ull << 32, 0xffffffff },
        { (1ull << 32) + 1, 0xffffffff },
        { 1ull << 50, 0xffffffff },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        f = fx_new(512, cases[i].blocks, 0);
        read_capacity10(f, 0, false, 8);
        EXPECT_GOOD(f->t.status);
        EXPECT_EQ(get_be32(f->data), cases[i].want);
        EXPECT_EQ(get_be32(f->data + 4), 512);
        fx_free(f);
    }
}

static void read_capacity16(struct fx *f, uint64_t lba, bool pmi,
                            uint32_t alloc)
{
    uint8_t cdb[16] = { SPD_SCSI_SERVICE_ACTION_IN_16,
                        SPD_SA_READ_CAPACITY_16 };
    put_be64(cdb + 2, lba);
    put_be32(cdb + 10, alloc);
    cdb[14] = pmi;
    memset(f->data, 0xee, 64);
    fx_run(f, cdb, 16, 64);
}

static void test_read_capacity16(void)
{
    struct fx *f = fx_new(512, (1ull << 40) + 3, 0);
    read_capacity16(f, 0, false, 32);
    EXPECT_GOOD(f->t.status);
    EXPECT_EQ(f->t.data_in_len, 32);
    EXPECT_EQ(get_be64(f->data), (1ull << 40) + 2);
    EXPECT_EQ(get_be32(f->data + 8), 512);
    EXPECT_EQ(f->data[12], 0);                  /* no protection */
    EXPECT_EQ(f->data[13], 0);                  /* 1 block per physical */
    EXPECT_EQ(f->data[14], 0);
    EXPECT_EQ(f->data[15], 0);
    for (int i = 16; i < 32; i++)
        EXPECT_EQ(f->data[i], 0);
    read_capacity16(f, 0, false, 12);           /* allocation length */
    EXPECT_EQ(f->t.data_in_len, 12);
    EXPECT_EQ(f->data[12], 0xee);
    read_capacity16(f, 0, false, 0);
    EXPECT_GOOD(f->t.status);
    EXPECT_EQ(f->t.data_in_len, 0);
    read_capacity16(f, 0, false, 4096);
    EXPECT_EQ(f->t.data_in_len, 32);
    read_capacity16(f, 1, false, 32);
    EXPECT_FIELD(f->t.status, true, 2, -1);
    read_capacity16(f, 1, true, 32);
    f->p.physical_block_length = 4096;          /* 512e: 8 per physical */
    read_capacity16(f, 0, false, 32);
    EXPECT_EQ(f->data[13], 3);
    f->p.block_length = 4096;
    f->p.physical_block_length = 4096;
    read_capacity16(f, 0, false, 32);
    EXPECT_EQ(f->data[13], 0);
    EXPECT_GOOD(f->t.status);
    fx_free(f);

    f = fx_new(4096, 1000, FX_UNMAP);
    read_capacity16(f, 0, false, 32);
    EXPECT_EQ(get_be64(f->data), 999);
    EXPECT_EQ(get_be32(f->data + 8), 4096);
    EXPECT_EQ(f->data[14], 0x80);               /* LBPME */
    fx_reinit(f, 4096, 1000, FX_LBPRZ);
    read_capacity16(f, 0, false, 32);
    EXPECT_EQ(f->data[14], 0xc0);               /* LBPME, LBPRZ */
    fx_free(f);
}

/* ------------------------------------------------------------------ */
/* End to end through the unit core and a memunit                      */
/* ------------------------------------------------------------------ */

static int run_cdb(struct memunit *m, const uint8_t *cdb, uint8_t len,
                   void *data, uint32_t data_len, spd_scsi_cmd *cmd)
{
    return memunit_cdb(m, cdb, len, data, data_len, cmd);
}

static void e2e_roundtrip(uint32_t bl)
{
    spd_params p = memunit_params(bl, 1024, 21);
    p.max_transfer_length = 4 * bl;             /* makes the core split */
    struct memunit *m = memunit_create(&p, SPD_OPS_FUA);
    if (!EXPECT(m != NULL))
        return;
    size_t len = 10 * (size_t)bl;
    uint8_t *out = malloc(len), *in = malloc(len);
    for (size_t i = 0; i < len; i++)
        out[i] = (uint8_t)(i * 7 + i / 512);
    spd_scsi_cmd cmd;
    uint8_t w10[10] = { SPD_SCSI_WRITE_10, 0x08, 0, 0, 0x01, 0x00, 0, 0, 10,
                        0 };
    EXPECT_EQ(run_cdb(m, w10, 10, out, (uint32_t)len, &cmd),
              SPD_STATUS_GOOD);
    EXPECT(!memcmp(m->data + 256 * (size_t)bl, out, len));
    EXPECT(atomic_load(&m->saw_fua));
    uint8_t r16[16] = { SPD_SCSI_READ_16 };
    put_be64(r16 + 2, 256);
    put_be32(r16 + 10, 10);
    memset(in, 0, len);
    EXPECT_EQ(run_cdb(m, r16, 16, in, (uint32_t)len, &cmd), SPD_STATUS_GOOD);
    EXPECT_EQ(cmd.data_in_len, len);
    EXPECT(!memcmp(in, out, len));
    EXPECT_EQ(atomic_load(&m->max_blocks), 4);

    /* A short buffer: the first bytes, through the bounce buffer; only
     * the block reaching into it is read. */
    memset(in, 0, len);
    EXPECT_EQ(run_cdb(m, r16, 16, in, 100, &cmd), SPD_STATUS_GOOD);
    EXPECT_EQ(cmd.data_in_len, 100);
    EXPECT(!memcmp(in, out, 100));
    EXPECT_EQ(in[100], 0);

    /* Out of range: fixed sense, as the unit has D_SENSE 0. */
    put_be64(r16 + 2, 1020);
    EXPECT_EQ(run_cdb(m, r16, 16, in, (uint32_t)len, &cmd),
              SPD_STATUS_CHECK_CONDITION);
    EXPECT_EQ(cmd.sense_len, 18);
    EXPECT_EQ(cmd.sense[0], 0x70);
    EXPECT_EQ(cmd.sense[2], SPD_KEY_ILLEGAL_REQUEST);
    EXPECT_EQ(cmd.sense[12], 0x21);
    EXPECT_EQ(atomic_load(&m->reads), 3 + 1);
    free(out);
    free(in);
    memunit_destroy(m);
}

static void test_e2e_roundtrip_512(void) { e2e_roundtrip(512); }

/* VERIFY BYTCHK 01b and GET LBA STATUS through the unit core. */
static void test_e2e_verify_and_lba_status(void)
{
    spd_params p = memunit_params(512, 1024, 23);
    p.max_transfer_length = 4 * 512;            /* the read is split */
    struct memunit *m = memunit_create(&p, 0);
    if (!EXPECT(m != NULL))
        return;
    size_t len = 10 * 512;
    uint8_t *out = malloc(len);
    memcpy(out, m->data + 100 * 512, len);
    uint8_t cdb[16];
    uint8_t n = verify_cdb(cdb, false, 100, 10);
    spd_scsi_cmd cmd;
    EXPECT_EQ(run_cdb(m, cdb, n, out, (uint32_t)len, &cmd), SPD_STATUS_GOOD);
    EXPECT_EQ(cmd.data_in_len, 0);
    out[4321] ^= 1;
    EXPECT_EQ(run_cdb(m, cdb, n, out, (uint32_t)len, &cmd),
              SPD_STATUS_CHECK_CONDITION);
    EXPECT_EQ(cmd.sense[0], 0xf0);              /* fixed, VALID */
    EXPECT_EQ(cmd.sense[2], SPD_KEY_MISCOMPARE);
    EXPECT_EQ(get_be32(cmd.sense + 3), 4321);
    EXPECT_EQ(cmd.sense[12], 0x1d);
    n = verify_cdb(cdb, true, 1020, 5);
    EXPECT_EQ(run_cdb(m, cdb, n, out, (uint32_t)len, &cmd),
              SPD_STATUS_CHECK_CONDITION);
    EXPECT_EQ(cmd.sense[12], 0x21);

    /* A memunit's blocks of zeros count as unmapped: one descriptor. */
    uint8_t gls[16] = { SPD_SCSI_SERVICE_ACTION_IN_16, SPD_SA_GET_LBA_STATUS };
    put_be64(gls + 2, 24);
    put_be32(gls + 10, 64);
    uint8_t buf[64];
    EXPECT_EQ(run_cdb(m, gls, 16, buf, sizeof buf, &cmd), SPD_STATUS_GOOD);
    EXPECT_EQ(cmd.data_in_len, 24);
    EXPECT_EQ(get_be32(buf), 20);
    EXPECT_EQ(get_be64(buf + 8), 24);
    EXPECT_EQ(get_be32(buf + 16), 1000);
    EXPECT_EQ(buf[20], 1);
    EXPECT(atomic_load(&m->extents) >= 1);
    free(out);
    memunit_destroy(m);
}
static void test_e2e_roundtrip_4096(void) { e2e_roundtrip(4096); }

/* Another command while the fixture's task is in flight. */
static enum scsi_action beside(struct fx *f, const uint8_t *cdb, uint8_t len,
                               struct scsi_task *t)
{
    scsi_task_fini(t);
    *t = (struct scsi_task){ .cdb = cdb, .cdb_len = len, .data = f->data + 2048,
                             .data_len = 512 };
    return scsi_execute(&f->lu, t);
}

/* SBC-3 sanitize states: while one runs, NOT READY, SANITIZE IN PROGRESS
 * but for INQUIRY and its like (and a second SANITIZE refused); after
 * one failed, medium access fails until EXIT FAILURE MODE or a sanitize
 * that succeeds. */
static void test_sanitize_states(void)
{
    struct fx *f = fx_new(512, 1000, FX_UNMAP | FX_LBPRZ);
    static const uint8_t erase[10] = { SPD_SCSI_SANITIZE,
                                       SPD_SA_SANITIZE_BLOCK_ERASE };
    static const uint8_t exit_failure[10] = {
        SPD_SCSI_SANITIZE, SPD_SA_SANITIZE_EXIT_FAILURE_MODE };
    static const uint8_t tur[6] = { SPD_SCSI_TEST_UNIT_READY };
    static const uint8_t inquiry[6] = { SPD_SCSI_INQUIRY, 0, 0, 0, 96, 0 };
    static const uint8_t read10[10] = { SPD_SCSI_READ_10, 0, 0, 0, 0, 8, 0,
                                        0, 1 };
    struct scsi_task t = { 0 };

    EXPECT_EQ(fx_run(f, erase, 10, 0), SCSI_IO);
    EXPECT_EQ(beside(f, tur, 6, &t), SCSI_DONE);
    EXPECT_SENSE(t.status, SPD_KEY_NOT_READY, SPD_ASC_SANITIZE_IN_PROGRESS);
    EXPECT_EQ(beside(f, read10, 10, &t), SCSI_DONE);
    EXPECT_SENSE(t.status, SPD_KEY_NOT_READY, SPD_ASC_SANITIZE_IN_PROGRESS);
    EXPECT_EQ(beside(f, erase, 10, &t), SCSI_DONE);
    EXPECT_SENSE(t.status, SPD_KEY_NOT_READY, SPD_ASC_SANITIZE_IN_PROGRESS);
    EXPECT_EQ(beside(f, inquiry, 6, &t), SCSI_DONE);
    EXPECT_GOOD(t.status);

    /* It fails: medium access fails, the rest runs. */
    spd_status_set_sense(&f->t.io.status, SPD_KEY_MEDIUM_ERROR, 0x0c, 0x00);
    scsi_io_done(&f->lu, &f->t);
    EXPECT_EQ(beside(f, read10, 10, &t), SCSI_DONE);
    EXPECT_SENSE(t.status, SPD_KEY_MEDIUM_ERROR,
                 SPD_ASC_SANITIZE_COMMAND_FAILED);
    EXPECT_EQ(beside(f, tur, 6, &t), SCSI_DONE);
    EXPECT_GOOD(t.status);
    EXPECT_EQ(beside(f, exit_failure, 10, &t), SCSI_DONE);
    EXPECT_GOOD(t.status);
    EXPECT_EQ(beside(f, read10, 10, &t), SCSI_IO);

    /* Failed again, then a sanitize that succeeds ends it too. */
    EXPECT_EQ(fx_run(f, erase, 10, 0), SCSI_IO);
    spd_status_set_sense(&f->t.io.status, SPD_KEY_MEDIUM_ERROR, 0x0c, 0x00);
    scsi_io_done(&f->lu, &f->t);
    EXPECT_EQ(fx_run(f, erase, 10, 0), SCSI_IO);
    fx_complete(f, 0);
    EXPECT_GOOD(f->t.status);
    EXPECT_EQ(beside(f, read10, 10, &t), SCSI_IO);
    scsi_task_fini(&t);
    fx_free(f);
}

static int overwrite(struct memunit *m, uint8_t *list, uint16_t len,
                     spd_scsi_cmd *cmd)
{
    uint8_t cdb[10] = { SPD_SCSI_SANITIZE, SPD_SA_SANITIZE_OVERWRITE };
    put_be16(cdb + 7, len);
    return run_cdb(m, cdb, 10, list, len, cmd);
}

/* SANITIZE OVERWRITE: the pattern repeated over every block, inverted by
 * an even count with INVERT; bad lists change nothing. */
static void test_e2e_sanitize_overwrite(void)
{
    spd_params p = memunit_params(512, 64, 24);
    p.max_transfer_length = 4 * 512;            /* the core splits it */
    struct memunit *m = memunit_create(&p, 0);
    if (!EXPECT(m != NULL))
        return;
    uint8_t list[4 + 513] = { 0x01, 0, 0, 3, 'a', 'b', 'c' };
    spd_scsi_cmd cmd;
    EXPECT_EQ(overwrite(m, list, 7, &cmd), SPD_STATUS_GOOD);
    for (size_t i = 0; i < 64 * 512; i += 509)
        EXPECT_EQ(m->data[i], "abc"[i % 512 % 3]);
    list[0] = 0x80 | 2;                         /* INVERT, two passes */
    EXPECT_EQ(overwrite(m, list, 7, &cmd), SPD_STATUS_GOOD);
    EXPECT_EQ(m->data[63 * 512 + 2], (uint8_t)~'c');
    list[0] = 0x80 | 3;
    EXPECT_EQ(overwrite(m, list, 7, &cmd), SPD_STATUS_GOOD);
    EXPECT_EQ(m->data[5], 'c');

    unsigned writes = atomic_load(&m->writes);
    uint16_t bad_lengths[] = { 0, 4, 512 + 5 };     /* in the CDB */
    for (int i = 0; i < 3; i++) {
        EXPECT_EQ(overwrite(m, list, bad_lengths[i], &cmd),
                  SPD_STATUS_CHECK_CONDITION);
        EXPECT_SENSE(cmd.status, SPD_KEY_ILLEGAL_REQUEST,
                     SPD_ASC_INVALID_FIELD_IN_CDB);
    }
    uint8_t bad_lists[][4] = { { 0x00, 0, 0, 3 },   /* count 0 */
                               { 0x21, 0, 0, 3 },   /* TEST */
                               { 0x01, 0, 0, 0 },   /* no pattern */
                               { 0x01, 0, 2, 1 },   /* over a block */
                               { 0x01, 0, 0, 9 } }; /* beyond the list */
    for (int i = 0; i < 5; i++) {
        memcpy(list, bad_lists[i], 4);
        EXPECT_EQ(overwrite(m, list, 7, &cmd), SPD_STATUS_CHECK_CONDITION);
        EXPECT_SENSE(cmd.status, SPD_KEY_ILLEGAL_REQUEST,
                     SPD_ASC_INVALID_FIELD_IN_PARAMETER_LIST);
    }
    EXPECT_EQ(atomic_load(&m->writes), writes);
    EXPECT_EQ(m->data[5], 'c');
    memunit_destroy(m);
}

static void test_e2e_unmap_reads_zero(void)
{
    spd_params p = memunit_params(512, 1024, 22);
    struct memunit *m = memunit_create(&p, 0);
    if (!EXPECT(m != NULL))
        return;
    memset(m->data, 0xab, 1024 * 512);
    uint8_t list[8 + 32];
    spd_unmap_desc d[] = { { 10, 5 }, { 100, 3 } };
    uint32_t n = unmap_list(list, d, 2);
    uint8_t cdb[10] = { SPD_SCSI_UNMAP, 0, 0, 0, 0, 0, 0, 0, (uint8_t)n, 0 };
    spd_scsi_cmd cmd;
    EXPECT_EQ(run_cdb(m, cdb, 10, list, n, &cmd), SPD_STATUS_GOOD);
    EXPECT_EQ(atomic_load(&m->unmapped_blocks), 8);

    uint8_t buf[20 * 512];
    uint8_t r10[10] = { SPD_SCSI_READ_10, 0, 0, 0, 0, 8, 0, 0, 9, 0 };
    EXPECT_EQ(run_cdb(m, r10, 10, buf, sizeof buf, &cmd), SPD_STATUS_GOOD);
    EXPECT_EQ(cmd.data_in_len, 9 * 512);
    bool ok = true;
    for (int i = 0; i < 9 * 512; i++) {
        bool unmapped = i >= 2 * 512 && i < 7 * 512;
        ok &= buf[i] == (unmapped ? 0 : 0xab);
    }
    EXPECT(ok);

    /* WRITE SAME with UNMAP and a zero block also unmaps. */
    uint8_t zero[512] = { 0 };
    uint8_t ws[10] = { SPD_SCSI_WRITE_SAME_10, 0x08, 0, 0, 0x01, 0x00, 0, 0,
                       4, 0 };
    EXPECT_EQ(run_cdb(m, ws, 10, zero, 512, &cmd), SPD_STATUS_GOOD);
    EXPECT_EQ(atomic_load(&m->unmapped_blocks), 12);
    EXPECT_EQ(m->data[256 * 512], 0);
    /* And with a pattern writes it. */
    uint8_t pattern[512];
    memset(pattern, 0x5c, sizeof pattern);
    ws[1] = 0;
    EXPECT_EQ(run_cdb(m, ws, 10, pattern, 512, &cmd), SPD_STATUS_GOOD);
    EXPECT_EQ(m->data[259 * 512 + 511], 0x5c);
    EXPECT_EQ(m->data[260 * 512], 0xab);

    /* MODE SELECT D_SENSE, then descriptor-format sense from the core. */
    uint8_t ms[4 + 12] = { 0, 0, 0, 0, 0x0a, 0x0a, 0x04, 0x10 };
    uint8_t msel[6] = { SPD_SCSI_MODE_SELECT_6, 0x10, 0, 0, sizeof ms, 0 };
    EXPECT_EQ(run_cdb(m, msel, 6, ms, sizeof ms, &cmd), SPD_STATUS_GOOD);
    uint8_t bad[10] = { SPD_SCSI_READ_10, 0, 0, 0, 0x04, 0x00, 0, 0, 1, 0 };
    EXPECT_EQ(run_cdb(m, bad, 10, buf, 512, &cmd),
              SPD_STATUS_CHECK_CONDITION);
    EXPECT_EQ(cmd.sense[0], 0x72);
    EXPECT_EQ(cmd.sense[2], 0x21);
    memunit_destroy(m);
}

int main(void)
{
    static const struct test_case tests[] = {
        TEST(test_rw_ranges_512),
        TEST(test_rw_ranges_4096),
        TEST(test_rw_ranges_large_unit),
        TEST(test_read6_zero_is_256),
        TEST(test_rw_request_fields),
        TEST(test_read_bounce),
        TEST(test_write_short_data),
        TEST(test_transfer_limits),
        TEST(test_write_protected),
        TEST(test_io_done_failure),
        TEST(test_verify),
        TEST(test_verify_bytchk_10),
        TEST(test_verify_bytchk_16),
        TEST(test_verify_bytchk_limit),
        TEST(test_get_lba_status),
        TEST(test_get_lba_status_call_budget),
        TEST(test_get_lba_status_unsupported),
        TEST(test_synchronize_cache),
        TEST(test_write_same_writes),
        TEST(test_write_same_unmap_decision),
        TEST(test_write_same_limit),
        TEST(test_unmap),
        TEST(test_unmap_malformed),
        TEST(test_read_capacity10),
        TEST(test_read_capacity16),
        TEST(test_e2e_roundtrip_512),
        TEST(test_e2e_roundtrip_4096),
        TEST(test_e2e_verify_and_lba_status),
        TEST(test_e2e_sanitize_overwrite),
        TEST(test_sanitize_states),
        TEST(test_e2e_unmap_reads_zero),
    };
    return RUN_TESTS("scsi_sbc", tests);
}
