/*
 * test_scsi_caw.c - COMPARE AND WRITE and ORWRITE on a real unit (the
 * in-memory device, whose calls linger so that concurrent ones overlap):
 * the compare and the write are atomic against writes from other threads
 * and nexuses, a miscompare reports the offset, and the data-out must be
 * both halves exactly.
 */
#include <pthread.h>

#include "harness.h"
#include "memunit.h"
#include "util/bytes.h"
#include "spd/scsi.h"

#define BL 512

static struct memunit *caw_unit(void)
{
    spd_params p = memunit_params(BL, 64, 1);
    struct memunit *m = memunit_create(&p, SPD_OPS_PARALLEL);
    if (!m) {
        fprintf(stderr, "cannot create the unit\n");
        exit(1);
    }
    return m;
}

/* Run a CDB from nexus (NULL: the unit's own) with data; its status. */
static spd_status cdb_run(struct memunit *m, const spd_scsi_nexus *nexus,
                          const uint8_t *cdb, uint8_t len, void *data,
                          uint32_t data_len)
{
    spd_scsi_cmd cmd = { SPD_SCSI_CMD_INIT, .cdb_len = len, .data = data,
                         .data_len = data_len, .nexus = nexus };
    memcpy(cmd.cdb, cdb, len);
    spd_unit_scsi_run(m->unit, &cmd);
    return cmd.status;
}

/* A nexus's first command reports the power-on unit attention. */
static void nexus_clear(struct memunit *m, const spd_scsi_nexus *nexus)
{
    const uint8_t tur[6] = { SPD_SCSI_TEST_UNIT_READY };
    spd_status st = cdb_run(m, nexus, tur, 6, NULL, 0);
    EXPECT_EQ(st.sense_key, SPD_KEY_UNIT_ATTENTION);
    st = cdb_run(m, nexus, tur, 6, NULL, 0);
    EXPECT(spd_status_good(&st));
}

static spd_status write_block(struct memunit *m, const spd_scsi_nexus *nx,
                              uint64_t lba, uint8_t fill)
{
    uint8_t cdb[10] = { SPD_SCSI_WRITE_10 };
    uint8_t buf[BL];
    put_be32(cdb + 2, (uint32_t)lba);
    put_be16(cdb + 7, 1);
    memset(buf, fill, BL);
    return cdb_run(m, nx, cdb, 10, buf, BL);
}

static spd_status caw(struct memunit *m, const spd_scsi_nexus *nx,
                      uint64_t lba, const uint8_t *verify,
                      const uint8_t *write)
{
    uint8_t cdb[16] = { SPD_SCSI_COMPARE_AND_WRITE };
    uint8_t buf[2 * BL];
    put_be64(cdb + 2, lba);
    cdb[13] = 1;
    memcpy(buf, verify, BL);
    memcpy(buf + BL, write, BL);
    return cdb_run(m, nx, cdb, 16, buf, 2 * BL);
}

static void read_block(struct memunit *m, uint64_t lba, uint8_t *buf)
{
    uint8_t cdb[10] = { SPD_SCSI_READ_10 };
    put_be32(cdb + 2, (uint32_t)lba);
    put_be16(cdb + 7, 1);
    spd_status st = cdb_run(m, NULL, cdb, 10, buf, BL);
    EXPECT(spd_status_good(&st));
}

static void test_caw_simple(void)
{
    struct memunit *m = caw_unit();
    uint8_t a[BL], b[BL], got[BL];
    memset(a, 'A', BL);
    memset(b, 'B', BL);
    write_block(m, NULL, 3, 'A');
    spd_status st = caw(m, NULL, 3, a, b);
    EXPECT(spd_status_good(&st));
    read_block(m, 3, got);
    EXPECT(!memcmp(got, b, BL));
    /* Now it holds B: comparing with A fails at the first byte that
     * differs, and nothing is written. */
    a[0] = 'B';
    st = caw(m, NULL, 3, a, a);
    EXPECT_EQ(st.sense_key, SPD_KEY_MISCOMPARE);
    EXPECT_EQ(st.asc << 8 | st.ascq, SPD_ASC_MISCOMPARE_DURING_VERIFY);
    EXPECT(st.info_valid);
    EXPECT_EQ(st.information, 1);
    read_block(m, 3, got);
    EXPECT(!memcmp(got, b, BL));
    memunit_destroy(m);
}

/* The data-out must be exactly twice the blocks (a planned command, as
 * iSCSI plans them). */
static void test_caw_data_out_size(void)
{
    struct memunit *m = caw_unit();
    uint8_t buf[4 * BL] = { 0 };
    for (uint32_t blocks = 1; blocks <= 3; blocks += 2) {
        spd_scsi_cmd cmd = { SPD_SCSI_CMD_INIT, .cdb_len = 16 };
        cmd.cdb[0] = SPD_SCSI_COMPARE_AND_WRITE;
        cmd.cdb[13] = (uint8_t)blocks;
        EXPECT_EQ(spd_unit_scsi_plan(m->unit, &cmd, 4 * BL), SPD_CHECK);
        EXPECT_EQ(cmd.status.sense_key, SPD_KEY_ILLEGAL_REQUEST);
        cmd.data = buf;
        cmd.data_len = 4 * BL;
        spd_unit_scsi_run(m->unit, &cmd);
        EXPECT_EQ(cmd.scsi_status, SPD_STATUS_CHECK_CONDITION);
    }
    memunit_destroy(m);
}

struct racer {
    struct memunit *m;
    spd_scsi_nexus nexus;
    uint64_t lba;
    uint8_t fill;               /* the writer's */
    pthread_barrier_t *start;
    unsigned done;              /* the incrementer's successes */
};

static void *race_write(void *arg)
{
    struct racer *r = arg;
    pthread_barrier_wait(r->start);
    write_block(r->m, &r->nexus, r->lba, r->fill);
    return NULL;
}

static void *race_caw(void *arg)
{
    struct racer *r = arg;
    uint8_t z[BL], y[BL];
    memset(z, 'Z', BL);
    memset(y, 'Y', BL);
    pthread_barrier_wait(r->start);
    caw(r->m, &r->nexus, r->lba, z, y);
    return NULL;
}

/* COMPARE AND WRITE (Z to Y) racing a WRITE (X) of the same block from
 * another nexus: whichever goes first, the block ends as X (the write
 * after the CAW, or the CAW miscompares after the write). A write landing
 * between the compare and the write would leave Y. */
static void test_caw_races_write(void)
{
    struct memunit *m = caw_unit();
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    unsigned bad = 0;
    struct racer w = { .m = m, .lba = 7, .fill = 'X', .start = &start,
                       .nexus = { SPD_SCSI_NEXUS_INIT, .name = "w" } };
    struct racer c = { .m = m, .lba = 7, .start = &start,
                       .nexus = { SPD_SCSI_NEXUS_INIT, .name = "c" } };
    nexus_clear(m, &w.nexus);
    nexus_clear(m, &c.nexus);
    for (int round = 0; round < 200; round++) {
        write_block(m, NULL, 7, 'Z');
        pthread_t tw, tc;
        pthread_create(&tw, NULL, race_write, &w);
        pthread_create(&tc, NULL, race_caw, &c);
        pthread_join(tw, NULL);
        pthread_join(tc, NULL);
        uint8_t got[BL];
        read_block(m, 7, got);
        bad += got[0] != 'X';
    }
    EXPECT_EQ(bad, 0);
    pthread_barrier_destroy(&start);
    memunit_destroy(m);
}

/* Read the counter, COMPARE AND WRITE it plus one; again on a
 * miscompare. */
static void *increment(void *arg)
{
    struct racer *r = arg;
    pthread_barrier_wait(r->start);
    while (r->done < 100) {
        uint8_t cur[BL], next[BL];
        read_block(r->m, r->lba, cur);
        memcpy(next, cur, BL);
        put_be64(next, get_be64(cur) + 1);
        spd_status st = caw(r->m, &r->nexus, r->lba, cur, next);
        if (spd_status_good(&st))
            r->done++;
        else if (st.sense_key != SPD_KEY_MISCOMPARE)
            break;
    }
    return NULL;
}

/* Two nexuses count up one block by COMPARE AND WRITE: none of the 200
 * increments is lost. */
static void test_caw_counter(void)
{
    struct memunit *m = caw_unit();
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    write_block(m, NULL, 9, 0);
    struct racer r[2] = {
        { .m = m, .lba = 9, .start = &start,
          .nexus = { SPD_SCSI_NEXUS_INIT, .name = "one" } },
        { .m = m, .lba = 9, .start = &start,
          .nexus = { SPD_SCSI_NEXUS_INIT, .name = "two" } },
    };
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        nexus_clear(m, &r[i].nexus);
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, increment, &r[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    EXPECT_EQ(r[0].done + r[1].done, 200);
    uint8_t got[BL];
    read_block(m, 9, got);
    EXPECT_EQ(get_be64(got), 200);
    pthread_barrier_destroy(&start);
    memunit_destroy(m);
}

/* ORWRITE: the blocks become their OR with the data-out. */
static void test_orwrite(void)
{
    struct memunit *m = caw_unit();
    write_block(m, NULL, 5, 0x0f);
    uint8_t cdb[16] = { SPD_SCSI_ORWRITE_16 };
    uint8_t buf[BL], got[BL];
    put_be64(cdb + 2, 5);
    put_be32(cdb + 10, 1);
    memset(buf, 0x30, BL);
    spd_status st = cdb_run(m, NULL, cdb, 16, buf, BL);
    EXPECT(spd_status_good(&st));
    read_block(m, 5, got);
    EXPECT_EQ(got[0], 0x3f);
    EXPECT_EQ(got[BL - 1], 0x3f);
    memunit_destroy(m);
}

int main(void)
{
    static const struct test_case tests[] = {
        TEST(test_caw_simple),
        TEST(test_caw_data_out_size),
        TEST(test_caw_races_write),
        TEST(test_caw_counter),
        TEST(test_orwrite),
    };
    return run_tests("scsi_caw", tests, sizeof tests / sizeof tests[0]);
}
