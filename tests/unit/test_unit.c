/*
 * test_unit.c - the unit core: block requests, range and write-protect
 * checks, splitting at the max transfer length, statuses, concurrency,
 * asynchronous completion, shutdown with requests in flight, debug log.
 */
#include <errno.h>
#include <unistd.h>

#include "harness.h"
#include "memunit.h"
#include "spd/scsi.h"

static void fill(uint8_t *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(i * 31 + seed * 7 + (i >> 9));
}

static bool sense_is(spd_status st, uint8_t key, uint16_t asc)
{
    return st.scsi_status == SPD_STATUS_CHECK_CONDITION &&
           st.sense_key == key && st.asc == SPD_ASC(asc) &&
           st.ascq == SPD_ASCQ(asc);
}

/* Write, read back and compare for one block length and dispatcher mode. */
static void roundtrip(uint32_t bl, unsigned threads)
{
    spd_params p = memunit_params(bl, 256, 3);
    struct memunit *m = memunit_create(&p, SPD_OPS_PARALLEL | SPD_OPS_FUA);
    if (!EXPECT(m != NULL))
        return;
    if (threads)
        EXPECT_EQ(spd_unit_start(m->unit, threads), 0);
    size_t len = 16 * (size_t)bl;
    uint8_t *out = malloc(len), *in = calloc(1, len);
    fill(out, len, bl);
    /* First blocks, last blocks, and the middle. */
    uint64_t lbas[] = { 0, 256 - 16, 100 };
    for (size_t i = 0; i < 3; i++) {
        memset(in, 0, len);
        spd_status st = memunit_io(m, SPD_OP_WRITE, lbas[i], 16, out, true);
        EXPECT(spd_status_good(&st));
        st = memunit_io(m, SPD_OP_READ, lbas[i], 16, in, false);
        EXPECT(spd_status_good(&st));
        EXPECT(!memcmp(in, out, len));
        EXPECT(!memcmp(m->data + lbas[i] * bl, out, len));
    }
    EXPECT(atomic_load(&m->saw_fua));
    free(out);
    free(in);
    memunit_destroy(m);
}

static void test_roundtrip_512_inline(void) { roundtrip(512, 0); }
static void test_roundtrip_4096_inline(void) { roundtrip(4096, 0); }
static void test_roundtrip_512_threads(void) { roundtrip(512, 3); }
static void test_roundtrip_4096_threads(void) { roundtrip(4096, 3); }

static void test_range_checks(void)
{
    spd_params p = memunit_params(512, 1000, 4);
    struct memunit *m = memunit_create(&p, 0);
    uint8_t buf[2 * 512] = { 0 };
    /* The last block is fine; one past, straddling, and wrapping are not. */
    spd_status st = memunit_io(m, SPD_OP_READ, 999, 1, buf, false);
    EXPECT(spd_status_good(&st));
    st = memunit_io(m, SPD_OP_READ, 0, 1, buf, false);
    EXPECT(spd_status_good(&st));
    st = memunit_io(m, SPD_OP_READ, 1000, 1, buf, false);
    EXPECT(sense_is(st, SPD_KEY_ILLEGAL_REQUEST, SPD_ASC_LBA_OUT_OF_RANGE));
    st = memunit_io(m, SPD_OP_WRITE, 999, 2, buf, false);
    EXPECT(sense_is(st, SPD_KEY_ILLEGAL_REQUEST, SPD_ASC_LBA_OUT_OF_RANGE));
    st = memunit_io(m, SPD_OP_WRITE, UINT64_MAX, 2, buf, false);
    EXPECT(sense_is(st, SPD_KEY_ILLEGAL_REQUEST, SPD_ASC_LBA_OUT_OF_RANGE));
    st = memunit_io(m, SPD_OP_READ, 1, UINT64_MAX, buf, false);
    EXPECT(sense_is(st, SPD_KEY_ILLEGAL_REQUEST, SPD_ASC_LBA_OUT_OF_RANGE));
    st = memunit_io(m, SPD_OP_FLUSH, 1000, 0, NULL, false);
    EXPECT(sense_is(st, SPD_KEY_ILLEGAL_REQUEST, SPD_ASC_LBA_OUT_OF_RANGE));

    spd_unmap_desc descs[] = { { 0, 8 }, { 995, 6 } };
    spd_request req = { SPD_REQUEST_INIT, .op = SPD_OP_UNMAP, .descs = descs, .desc_count = 2 };
    st = spd_unit_run(m->unit, &req);
    EXPECT(sense_is(st, SPD_KEY_ILLEGAL_REQUEST, SPD_ASC_LBA_OUT_OF_RANGE));
    /* Nothing reached the device from the refused requests. */
    EXPECT_EQ(atomic_load(&m->writes), 0);
    EXPECT_EQ(atomic_load(&m->unmaps), 0);
    EXPECT_EQ(atomic_load(&m->reads), 2);
    memunit_destroy(m);
}

static void test_write_protect(void)
{
    spd_params p = memunit_params(512, 64, 5);
    p.write_protected = true;
    struct memunit *m = memunit_create(&p, 0);
    uint8_t buf[512] = { 1 };
    spd_status st = memunit_io(m, SPD_OP_WRITE, 0, 1, buf, false);
    EXPECT(sense_is(st, SPD_KEY_DATA_PROTECT, SPD_ASC_WRITE_PROTECTED));
    st = memunit_io(m, SPD_OP_WRITE_SAME, 0, 4, buf, false);
    EXPECT(sense_is(st, SPD_KEY_DATA_PROTECT, SPD_ASC_WRITE_PROTECTED));
    spd_unmap_desc d = { 0, 1 };
    spd_request req = { SPD_REQUEST_INIT, .op = SPD_OP_UNMAP, .descs = &d, .desc_count = 1 };
    st = spd_unit_run(m->unit, &req);
    EXPECT(sense_is(st, SPD_KEY_DATA_PROTECT, SPD_ASC_WRITE_PROTECTED));
    st = memunit_io(m, SPD_OP_READ, 0, 1, buf, false);
    EXPECT(spd_status_good(&st));
    st = memunit_io(m, SPD_OP_FLUSH, 0, 0, NULL, false);
    EXPECT(spd_status_good(&st));
    EXPECT_EQ(atomic_load(&m->writes), 0);
    memunit_destroy(m);
}

static void split(uint32_t bl, unsigned threads)
{
    spd_params p = memunit_params(bl, 512, 6);
    p.max_transfer_length = 4 * bl;
    struct memunit *m = memunit_create(&p, SPD_OPS_PARALLEL);
    if (threads)
        spd_unit_start(m->unit, threads);
    size_t len = 37 * (size_t)bl;
    uint8_t *out = malloc(len), *in = calloc(1, len);
    fill(out, len, 9);
    spd_status st = memunit_io(m, SPD_OP_WRITE, 11, 37, out, false);
    EXPECT(spd_status_good(&st));
    EXPECT_EQ(atomic_load(&m->writes), 10);        /* 9 x 4 + 1 */
    st = memunit_io(m, SPD_OP_READ, 11, 37, in, false);
    EXPECT(spd_status_good(&st));
    EXPECT_EQ(atomic_load(&m->reads), 10);
    EXPECT_EQ(atomic_load(&m->max_blocks), 4);
    EXPECT(!memcmp(in, out, len));
    free(out);
    free(in);
    memunit_destroy(m);
}

static void test_split_512(void) { split(512, 0); }
static void test_split_4096_threads(void) { split(4096, 4); }

/* A failure in one piece of a split request is the request's status. */
static void test_split_status_combines(void)
{
    spd_params p = memunit_params(512, 512, 7);
    p.max_transfer_length = 8 * 512;
    struct memunit *m = memunit_create(&p, SPD_OPS_PARALLEL);
    spd_unit_start(m->unit, 4);
    uint8_t *buf = calloc(64, 512);

    m->fail_lba = 45;                  /* in the sixth of eight pieces */
    m->fail_result = SPD_CHECK;
    spd_status st = memunit_io(m, SPD_OP_READ, 0, 64, buf, false);
    EXPECT(sense_is(st, SPD_KEY_MEDIUM_ERROR, SPD_ASC_UNRECOVERED_READ_ERROR));
    EXPECT(st.info_valid);
    EXPECT_EQ(st.information, 45);
    EXPECT_EQ(atomic_load(&m->reads), 8);   /* the other pieces still ran */

    m->fail_result = -EIO;
    st = memunit_io(m, SPD_OP_WRITE, 40, 10, buf, false);
    EXPECT(sense_is(st, SPD_KEY_MEDIUM_ERROR, SPD_ASC_WRITE_ERROR));
    st = memunit_io(m, SPD_OP_READ, 40, 10, buf, false);
    EXPECT(sense_is(st, SPD_KEY_MEDIUM_ERROR, SPD_ASC_UNRECOVERED_READ_ERROR));
    m->fail_result = -ENOSPC;
    st = memunit_io(m, SPD_OP_WRITE, 45, 1, buf, false);
    EXPECT(sense_is(st, SPD_KEY_DATA_PROTECT, SPD_ASC_SPACE_ALLOCATION_FAILED));
    m->fail_result = -EROFS;
    st = memunit_io(m, SPD_OP_WRITE, 45, 1, buf, false);
    EXPECT(sense_is(st, SPD_KEY_DATA_PROTECT, SPD_ASC_WRITE_PROTECTED));
    m->fail_result = -ENOTTY;
    st = memunit_io(m, SPD_OP_WRITE, 45, 1, buf, false);
    EXPECT(sense_is(st, SPD_KEY_HARDWARE_ERROR, SPD_ASC_INTERNAL_TARGET_FAILURE));
    m->fail_result = 77;               /* not a result at all */
    st = memunit_io(m, SPD_OP_WRITE, 45, 1, buf, false);
    EXPECT(sense_is(st, SPD_KEY_HARDWARE_ERROR, SPD_ASC_INTERNAL_TARGET_FAILURE));
    free(buf);
    memunit_destroy(m);
}

static void test_write_same_and_unmap(void)
{
    spd_params p = memunit_params(512, 256, 8);
    p.max_transfer_length = 16 * 512;
    struct memunit *m = memunit_create(&p, 0);
    uint8_t block[512], *in = malloc(100 * 512);
    fill(block, sizeof block, 3);
    spd_status st = memunit_io(m, SPD_OP_WRITE_SAME, 10, 100, block, false);
    EXPECT(spd_status_good(&st));
    EXPECT_EQ(atomic_load(&m->writes), 7);         /* 6 x 16 + 4 */
    st = memunit_io(m, SPD_OP_READ, 10, 100, in, false);
    bool same = true;
    for (int i = 0; i < 100; i++)
        same &= !memcmp(in + i * 512, block, 512);
    EXPECT(same);

    spd_unmap_desc descs[] = { { 20, 10 }, { 50, 0 }, { 90, 20 } };
    spd_request req = { SPD_REQUEST_INIT, .op = SPD_OP_UNMAP, .descs = descs, .desc_count = 3 };
    st = spd_unit_run(m->unit, &req);
    EXPECT(spd_status_good(&st));
    EXPECT_EQ(atomic_load(&m->unmapped_blocks), 30);
    st = memunit_io(m, SPD_OP_READ, 10, 100, in, false);
    uint8_t zeros[512] = { 0 };
    EXPECT(!memcmp(in + 10 * 512, zeros, 512));    /* LBA 20: unmapped */
    EXPECT(!memcmp(in + 99 * 512, zeros, 512));    /* LBA 109 */
    EXPECT(!memcmp(in + 9 * 512, block, 512));     /* LBA 19: kept */
    EXPECT(!memcmp(in + 30 * 512, block, 512));    /* LBA 40: kept */

    /* An empty list succeeds without calling the device. */
    req.desc_count = 0;
    st = spd_unit_run(m->unit, &req);
    EXPECT(spd_status_good(&st));
    EXPECT_EQ(atomic_load(&m->unmaps), 1);
    st = memunit_io(m, SPD_OP_FLUSH, 0, 0, NULL, false);
    EXPECT(spd_status_good(&st));
    EXPECT_EQ(atomic_load(&m->flushes), 1);
    free(in);
    memunit_destroy(m);
}

static void test_unmap_unsupported(void)
{
    spd_params p = memunit_params(512, 64, 9);
    p.unmap_supported = p.unmap_reads_zero = false;
    struct memunit *m = memunit_create(&p, 0);
    spd_unmap_desc d = { 0, 1 };
    spd_request req = { SPD_REQUEST_INIT, .op = SPD_OP_UNMAP, .descs = &d, .desc_count = 1 };
    spd_status st = spd_unit_run(m->unit, &req);
    EXPECT(sense_is(st, SPD_KEY_ILLEGAL_REQUEST,
                    SPD_ASC_INVALID_COMMAND_OPERATION_CODE));
    memunit_destroy(m);
}

/* Many requests at once from several submitters. */
struct burst {
    struct memunit *m;
    unsigned seed;
    int failures;
};

static void *burst_thread(void *arg)
{
    struct burst *b = arg;
    uint8_t out[8 * 512], in[8 * 512];
    for (unsigned i = 0; i < 200; i++) {
        uint64_t lba = (b->seed * 256 + (i % 32) * 8);
        fill(out, sizeof out, b->seed * 1000 + i);
        spd_status st = memunit_io(b->m, SPD_OP_WRITE, lba, 8, out, false);
        b->failures += !spd_status_good(&st);
        st = memunit_io(b->m, SPD_OP_READ, lba, 8, in, false);
        b->failures += !spd_status_good(&st) || memcmp(in, out, sizeof in);
    }
    return NULL;
}

static void concurrent(uint32_t flags, bool async)
{
    spd_params p = memunit_params(512, 4 * 256, 10);
    struct memunit *m = memunit_create(&p, flags);
    m->async = async;
    spd_unit_start(m->unit, 4);
    pthread_t threads[4];
    struct burst bursts[4];
    for (unsigned i = 0; i < 4; i++) {
        bursts[i] = (struct burst){ m, i, 0 };
        pthread_create(&threads[i], NULL, burst_thread, &bursts[i]);
    }
    for (unsigned i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        EXPECT_EQ(bursts[i].failures, 0);
    }
    if (flags & SPD_OPS_PARALLEL)
        EXPECT(atomic_load(&m->max_in_device) > 1);
    else
        EXPECT_EQ(atomic_load(&m->max_in_device), 1);
    memunit_destroy(m);
}

static void test_concurrent_parallel(void) { concurrent(SPD_OPS_PARALLEL, false); }
static void test_concurrent_serial(void) { concurrent(0, false); }
static void test_concurrent_async(void) { concurrent(SPD_OPS_PARALLEL, true); }

static void test_async_inline(void)
{
    spd_params p = memunit_params(4096, 64, 11);
    struct memunit *m = memunit_create(&p, 0);
    m->async = true;
    m->async_delay_us = 1000;
    uint8_t out[4096], in[4096];
    fill(out, sizeof out, 5);
    spd_status st = memunit_io(m, SPD_OP_WRITE, 63, 1, out, true);
    EXPECT(spd_status_good(&st));
    st = memunit_io(m, SPD_OP_READ, 63, 1, in, false);
    EXPECT(spd_status_good(&st));
    EXPECT(!memcmp(in, out, sizeof in));
    m->fail_lba = 63;
    m->fail_result = -EIO;
    st = memunit_io(m, SPD_OP_READ, 63, 1, in, false);
    EXPECT(sense_is(st, SPD_KEY_MEDIUM_ERROR, SPD_ASC_UNRECOVERED_READ_ERROR));
    memunit_destroy(m);
}

/* Shutdown while requests are queued and in the device. */
static atomic_uint shutdown_good, shutdown_not_ready, shutdown_other;

static void shutdown_done(spd_request *req)
{
    if (spd_status_good(&req->status))
        atomic_fetch_add(&shutdown_good, 1);
    else if (req->status.sense_key == SPD_KEY_NOT_READY)
        atomic_fetch_add(&shutdown_not_ready, 1);
    else
        atomic_fetch_add(&shutdown_other, 1);
}

static void test_shutdown_in_flight(void)
{
    enum { N = 64 };
    spd_params p = memunit_params(512, 1024, 12);
    struct memunit *m = memunit_create(&p, 0);   /* serial: a queue builds */
    m->async = true;
    m->async_delay_us = 2000;
    spd_unit_start(m->unit, 2);
    static uint8_t bufs[N][512];
    static spd_request reqs[N];
    for (int i = 0; i < N; i++) {
        reqs[i] = (spd_request){ SPD_REQUEST_INIT, .op = SPD_OP_WRITE, .lba = (uint64_t)i,
                                 .blocks = 1, .buf = bufs[i],
                                 .done = shutdown_done };
        spd_unit_submit(m->unit, &reqs[i]);
    }
    spd_unit_shutdown(m->unit);
    /* New work is refused at once. */
    spd_status st = memunit_io(m, SPD_OP_READ, 0, 1, bufs[0], false);
    EXPECT(sense_is(st, SPD_KEY_NOT_READY, SPD_ASC_LUN_NOT_READY));
    spd_unit_wait(m->unit);
    /* Every request completed exactly once, good or not ready. */
    EXPECT_EQ(atomic_load(&shutdown_good) + atomic_load(&shutdown_not_ready), N);
    EXPECT_EQ(atomic_load(&shutdown_other), 0);
    EXPECT(atomic_load(&shutdown_not_ready) > 0);
    EXPECT_EQ(atomic_load(&shutdown_good), atomic_load(&m->writes));
    memunit_destroy(m);
}

static void test_debug_log(void)
{
    spd_params p = memunit_params(512, 64, 13);
    struct memunit *m = memunit_create(&p, 0);
    FILE *log = tmpfile();
    spd_unit_set_debug_log(m->unit, SPD_DEBUG_WRITE | SPD_DEBUG_UNMAP, log);
    uint8_t buf[512] = { 0 };
    memunit_io(m, SPD_OP_WRITE, 5, 1, buf, true);
    memunit_io(m, SPD_OP_READ, 5, 1, buf, false);          /* not logged */
    memunit_io(m, SPD_OP_WRITE, 64, 1, buf, false);
    spd_unmap_desc d = { 3, 2 };
    spd_request req = { SPD_REQUEST_INIT, .op = SPD_OP_UNMAP, .descs = &d, .desc_count = 1 };
    spd_unit_run(m->unit, &req);
    spd_unit_set_debug_log(m->unit, 0, NULL);
    memunit_io(m, SPD_OP_WRITE, 6, 1, buf, false);         /* log off */

    char text[1024] = { 0 };
    rewind(log);
    size_t n = fread(text, 1, sizeof text - 1, log);
    fclose(log);
    EXPECT(n > 0);
    EXPECT(strstr(text, ": WRITE lba 5 blocks 1 fua: GOOD\n") != NULL);
    EXPECT(strstr(text, ": WRITE lba 64 blocks 1: CHECK CONDITION "
                        "ILLEGAL REQUEST, LOGICAL BLOCK ADDRESS OUT OF RANGE\n")
           != NULL);
    EXPECT(strstr(text, ": UNMAP 1 ranges 3+2: GOOD\n") != NULL);
    EXPECT(strstr(text, "READ") == NULL);
    EXPECT(strstr(text, "lba 6 ") == NULL);
    int lines = 0;
    for (char *c = text; *c; c++)
        lines += *c == '\n';
    EXPECT_EQ(lines, 3);
    if (harness_failures)
        fprintf(stderr, "log was:\n%s", text);
    memunit_destroy(m);
}

int main(void)
{
    static const struct test_case tests[] = {
        TEST(test_roundtrip_512_inline),  TEST(test_roundtrip_4096_inline),
        TEST(test_roundtrip_512_threads), TEST(test_roundtrip_4096_threads),
        TEST(test_range_checks),          TEST(test_write_protect),
        TEST(test_split_512),             TEST(test_split_4096_threads),
        TEST(test_split_status_combines), TEST(test_write_same_and_unmap),
        TEST(test_unmap_unsupported),     TEST(test_concurrent_parallel),
        TEST(test_concurrent_serial),     TEST(test_concurrent_async),
        TEST(test_async_inline),          TEST(test_shutdown_in_flight),
        TEST(test_debug_log),
    };
    return RUN_TESTS("unit", tests);
}
