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
#include "util/bytes.h"

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

/* spd_unit_resize: requests are checked against the new block count, and
 * SCSI initiators hear of it once, then READ CAPACITY says it. */
static void test_resize(void)
{
    spd_params p = memunit_params(512, 1000, 8);
    struct memunit *m = memunit_create(&p, 0);
    uint8_t buf[512], cap[8];
    uint8_t cdb[10] = { SPD_SCSI_READ_CAPACITY_10 };
    spd_scsi_cmd c;
    EXPECT_EQ(spd_unit_resize(m->unit, 0), -EINVAL);
    EXPECT_EQ(spd_unit_resize(m->unit, UINT64_MAX), -EINVAL);
    memunit_cdb(m, cdb, 10, cap, 8, &c);
    EXPECT(spd_status_good(&c.status));        /* refusals change nothing */
    EXPECT_EQ(get_be32(cap), 999);

    EXPECT_EQ(spd_unit_resize(m->unit, 500), 0);
    EXPECT_EQ(spd_unit_params(m->unit)->block_count, 500);
    spd_status st = memunit_io(m, SPD_OP_READ, 500, 1, buf, false);
    EXPECT(sense_is(st, SPD_KEY_ILLEGAL_REQUEST, SPD_ASC_LBA_OUT_OF_RANGE));
    st = memunit_io(m, SPD_OP_READ, 499, 1, buf, false);
    EXPECT(spd_status_good(&st));
    memunit_cdb(m, cdb, 10, cap, 8, &c);
    EXPECT(sense_is(c.status, SPD_KEY_UNIT_ATTENTION,
                    SPD_ASC_CAPACITY_DATA_CHANGED));
    memunit_cdb(m, cdb, 10, cap, 8, &c);
    EXPECT(spd_status_good(&c.status));
    EXPECT_EQ(get_be32(cap), 499);
    /* The same count again is no change. */
    EXPECT_EQ(spd_unit_resize(m->unit, 500), 0);
    memunit_cdb(m, cdb, 10, cap, 8, &c);
    EXPECT(spd_status_good(&c.status));
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

/* ------------------------------------------------------------------ */
/* WRITE_ZEROES, FUA, errnos, EXTENTS                                   */
/* ------------------------------------------------------------------ */

static spd_request zeroes(uint64_t lba, uint64_t blocks, uint32_t flags,
                          bool fua)
{
    return (spd_request){ SPD_REQUEST_INIT, .op = SPD_OP_WRITE_ZEROES,
                          .lba = lba, .blocks = blocks, .flags = flags,
                          .fua = fua };
}

static bool all_zero(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i])
            return false;
    return true;
}

/* May-unmap with LBPRZ unmaps; without the flag, or without LBPRZ, the
 * core writes zeros, split at the max transfer length. */
static void test_write_zeroes(void)
{
    spd_params p = memunit_params(512, 1000, 20);
    p.max_transfer_length = 64 * 512;
    struct memunit *m = memunit_create(&p, SPD_OPS_FUA);
    memset(m->data, 0xab, 1000 * 512);

    spd_request req = zeroes(10, 100, SPD_REQ_MAY_UNMAP, false);
    spd_status st = spd_unit_run(m->unit, &req);
    EXPECT(spd_status_good(&st));
    EXPECT_EQ(atomic_load(&m->unmaps), 1);
    EXPECT_EQ(atomic_load(&m->unmapped_blocks), 100);
    EXPECT_EQ(atomic_load(&m->writes), 0);
    EXPECT(all_zero(m->data + 10 * 512, 100 * 512));
    EXPECT_EQ(m->data[110 * 512], 0xab);

    memset(m->data, 0xab, 1000 * 512);
    req = zeroes(200, 100, 0, false);
    st = spd_unit_run(m->unit, &req);
    EXPECT(spd_status_good(&st));
    EXPECT_EQ(atomic_load(&m->unmaps), 1);
    EXPECT_EQ(atomic_load(&m->writes), 2);          /* 64 + 36 blocks */
    EXPECT_EQ(atomic_load(&m->max_blocks), 64);
    EXPECT(all_zero(m->data + 200 * 512, 100 * 512));
    EXPECT_EQ(m->data[199 * 512 + 511], 0xab);
    EXPECT_EQ(m->data[300 * 512], 0xab);

    /* Fast zero: fine by unmap... */
    req = zeroes(0, 10, SPD_REQ_MAY_UNMAP | SPD_REQ_FAST_ZERO, false);
    st = spd_unit_run(m->unit, &req);
    EXPECT(spd_status_good(&st));
    /* ...refused at once when it would have to write. */
    unsigned writes = atomic_load(&m->writes);
    req = zeroes(0, 10, SPD_REQ_FAST_ZERO, false);
    spd_unit_run(m->unit, &req);
    EXPECT_EQ(spd_request_errno(&req), ENOTSUP);
    EXPECT_EQ(atomic_load(&m->writes), writes);
    /* An unknown flag. */
    req = zeroes(0, 10, 0x80, false);
    spd_unit_run(m->unit, &req);
    EXPECT_EQ(spd_request_errno(&req), EINVAL);
    memunit_destroy(m);

    /* Unmapped blocks of unknown content: written even when allowed. */
    p = memunit_params(512, 1000, 21);
    p.unmap_reads_zero = false;
    m = memunit_create(&p, SPD_OPS_FUA);
    memset(m->data, 0xab, 1000 * 512);
    req = zeroes(10, 20, SPD_REQ_MAY_UNMAP, false);
    st = spd_unit_run(m->unit, &req);
    EXPECT(spd_status_good(&st));
    EXPECT_EQ(atomic_load(&m->unmaps), 0);
    EXPECT_EQ(atomic_load(&m->writes), 1);
    EXPECT(all_zero(m->data + 10 * 512, 20 * 512));
    req = zeroes(10, 20, SPD_REQ_MAY_UNMAP | SPD_REQ_FAST_ZERO, false);
    spd_unit_run(m->unit, &req);
    EXPECT_EQ(spd_request_errno(&req), ENOTSUP);
    memunit_destroy(m);
}

/* A device without SPD_OPS_FUA gets plain writes and then a flush; with
 * it, fua passes through and no flush follows. Unmaps and zeroing by
 * unmap cannot carry fua: a flush follows either way. */
static void fua(uint32_t flags, bool async)
{
    spd_params p = memunit_params(512, 1000, 22);
    p.max_transfer_length = 8 * 512;
    struct memunit *m = memunit_create(&p, flags);
    m->async = async;
    uint8_t buf[20 * 512];
    memset(buf, 0x5a, sizeof buf);
    bool own = flags & SPD_OPS_FUA;

    spd_status st = memunit_io(m, SPD_OP_WRITE, 5, 20, buf, true);
    EXPECT(spd_status_good(&st));
    EXPECT_EQ(atomic_load(&m->writes), 3);
    EXPECT_EQ(atomic_load(&m->saw_fua), own);
    EXPECT_EQ(atomic_load(&m->flushes), own ? 0 : 1);
    st = memunit_io(m, SPD_OP_WRITE, 5, 20, buf, false);
    EXPECT_EQ(atomic_load(&m->flushes), own ? 0 : 1);

    spd_request req = zeroes(0, 10, 0, true);
    spd_unit_run(m->unit, &req);
    EXPECT_EQ(atomic_load(&m->flushes), own ? 0 : 2);
    req = zeroes(0, 10, SPD_REQ_MAY_UNMAP, true);
    spd_unit_run(m->unit, &req);
    EXPECT_EQ(atomic_load(&m->flushes), own ? 1 : 3);
    spd_unmap_desc d = { 3, 4 };
    req = (spd_request){ SPD_REQUEST_INIT, .op = SPD_OP_UNMAP, .descs = &d,
                         .desc_count = 1, .fua = true };
    st = spd_unit_run(m->unit, &req);
    EXPECT(spd_status_good(&st));
    EXPECT_EQ(atomic_load(&m->flushes), own ? 2 : 4);

    /* A failed write is not flushed. */
    m->fail_lba = 7;
    m->fail_result = -EIO;
    st = memunit_io(m, SPD_OP_WRITE, 5, 4, buf, true);
    EXPECT(!spd_status_good(&st));
    EXPECT_EQ(atomic_load(&m->flushes), own ? 2 : 4);
    memunit_destroy(m);
}

static void test_fua_emulated(void) { fua(0, false); }
static void test_fua_emulated_async(void) { fua(SPD_OPS_PARALLEL, true); }
static void test_fua_device(void) { fua(SPD_OPS_FUA, false); }

static int request_errno_of(spd_unit *unit, spd_request req)
{
    spd_unit_run(unit, &req);
    return spd_request_errno(&req);
}

static void test_request_errno(void)
{
    spd_params p = memunit_params(512, 100, 23);
    p.unmap_supported = p.unmap_reads_zero = false;
    struct memunit *m = memunit_create(&p, 0);
    uint8_t buf[2 * 512] = { 0 };
    spd_unit *u = m->unit;
    spd_request rd = { SPD_REQUEST_INIT, .op = SPD_OP_READ, .lba = 99,
                       .blocks = 2, .buf = buf };
    spd_request wr = rd;
    wr.op = SPD_OP_WRITE;
    spd_request ws = wr;
    ws.op = SPD_OP_WRITE_SAME;
    spd_unmap_desc d = { 0, 1 };
    spd_request um = { SPD_REQUEST_INIT, .op = SPD_OP_UNMAP, .descs = &d,
                       .desc_count = 1 };

    EXPECT_EQ(request_errno_of(u, rd), EINVAL);     /* read past the end */
    EXPECT_EQ(request_errno_of(u, wr), ENOSPC);     /* write past the end */
    EXPECT_EQ(request_errno_of(u, ws), ENOSPC);
    EXPECT_EQ(request_errno_of(u, zeroes(99, 2, 0, false)), ENOSPC);
    spd_extent e;
    spd_request ex = { SPD_REQUEST_INIT, .op = SPD_OP_EXTENTS, .lba = 100,
                       .blocks = 1, .extents = &e, .extent_max = 1 };
    EXPECT_EQ(request_errno_of(u, ex), EINVAL);
    EXPECT_EQ(request_errno_of(u, um), EOPNOTSUPP);  /* no unmap */
    EXPECT_EQ(request_errno_of(u, zeroes(0, 2, SPD_REQ_FAST_ZERO, false)),
              ENOTSUP);
    rd.lba = 0;
    EXPECT_EQ(request_errno_of(u, rd), 0);
    m->fail_lba = 0;
    m->fail_result = -EIO;
    EXPECT_EQ(request_errno_of(u, rd), EIO);
    m->fail_lba = -1;
    spd_unit_shutdown(u);
    EXPECT_EQ(request_errno_of(u, rd), ESHUTDOWN);
    memunit_destroy(m);

    p = memunit_params(512, 100, 24);
    p.write_protected = true;
    m = memunit_create(&p, 0);
    wr.lba = 0;
    EXPECT_EQ(request_errno_of(m->unit, wr), EROFS);
    EXPECT_EQ(request_errno_of(m->unit, zeroes(0, 1, 0, false)), EROFS);
    d.lba = 0;
    EXPECT_EQ(request_errno_of(m->unit, um), EROFS);
    memunit_destroy(m);
}

/* Extents: merged runs of the same state, at most extent_max. */
static void test_extents(void)
{
    spd_params p = memunit_params(512, 1000, 25);
    struct memunit *m = memunit_create(&p, 0);
    memset(m->data + 100 * 512, 1, 50 * 512);   /* mapped 100-149 */
    memset(m->data + 300 * 512, 1, 512);        /* mapped 300 */
    spd_extent e[8];
    spd_request req = { SPD_REQUEST_INIT, .op = SPD_OP_EXTENTS, .lba = 0,
                        .blocks = 1000, .extents = e, .extent_max = 8 };
    spd_status st = spd_unit_run(m->unit, &req);
    EXPECT(spd_status_good(&st));
    EXPECT_EQ(req.extent_count, 5);
    EXPECT(!e[0].mapped && e[0].blocks == 100);
    EXPECT(e[1].mapped && e[1].blocks == 50);
    EXPECT(!e[2].mapped && e[2].blocks == 150);
    EXPECT(e[3].mapped && e[3].blocks == 1);
    EXPECT(!e[4].mapped && e[4].blocks == 699);
    req.extent_max = 2;
    spd_unit_run(m->unit, &req);
    EXPECT_EQ(req.extent_count, 2);
    EXPECT_EQ(e[1].blocks, 50);
    /* The convenience call goes the same way. */
    bool mapped = false;
    EXPECT_EQ(spd_unit_extent(m->unit, 120, 100, &mapped), 30);
    EXPECT(mapped);
    EXPECT_EQ(spd_unit_extent(m->unit, 1000, 1, &mapped), -EINVAL);
    /* No room for an answer. */
    req.extent_max = 0;
    spd_unit_run(m->unit, &req);
    EXPECT_EQ(spd_request_errno(&req), EINVAL);
    memunit_destroy(m);
}

struct extent_burst {
    struct memunit *m;
    unsigned seed;
    unsigned failures;
};

static void *extent_thread(void *arg)
{
    struct extent_burst *b = arg;
    uint8_t buf[8 * 512];
    spd_extent e[4];
    for (unsigned i = 0; i < 100; i++) {
        fill(buf, sizeof buf, b->seed + i);
        spd_status st = memunit_io(b->m, SPD_OP_WRITE, b->seed * 64 + i % 8,
                                   8, buf, false);
        b->failures += !spd_status_good(&st);
        spd_request req = { SPD_REQUEST_INIT, .op = SPD_OP_EXTENTS,
                            .lba = b->seed * 64, .blocks = 64, .extents = e,
                            .extent_max = 4 };
        st = spd_unit_run(b->m->unit, &req);
        b->failures += !spd_status_good(&st) || !req.extent_count;
    }
    return NULL;
}

/* A serial device never sees extent beside another call: the calls go
 * through the dispatcher like reads and writes. */
static void test_extents_serial(void)
{
    spd_params p = memunit_params(512, 4 * 64, 26);
    struct memunit *m = memunit_create(&p, 0);
    spd_unit_start(m->unit, 4);
    pthread_t threads[4];
    struct extent_burst bursts[4];
    for (unsigned i = 0; i < 4; i++) {
        bursts[i] = (struct extent_burst){ m, i, 0 };
        pthread_create(&threads[i], NULL, extent_thread, &bursts[i]);
    }
    for (unsigned i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        EXPECT_EQ(bursts[i].failures, 0);
    }
    EXPECT(atomic_load(&m->extents) >= 400);
    EXPECT_EQ(atomic_load(&m->max_in_device), 1);
    memunit_destroy(m);
}

/* A device answering a block at a time: one request costs at most
 * SPD_EXTENT_CALLS calls and answers with what it learnt. */
static unsigned budget_calls;

static int64_t one_block_extent(void *ctx, uint64_t lba, uint32_t blocks,
                                bool *mapped)
{
    (void)ctx; (void)lba; (void)blocks;
    budget_calls++;
    *mapped = true;
    return 1;
}

static int zero_read(void *ctx, spd_io *io, void *buf, uint64_t lba,
                     uint32_t blocks, bool fua)
{
    (void)ctx; (void)io; (void)lba; (void)fua;
    memset(buf, 0, (size_t)blocks * 512);
    return SPD_OK;
}

static void test_extents_call_budget(void)
{
    spd_params p = memunit_params(512, 1ull << 40, 27);
    p.write_protected = true;
    p.unmap_supported = p.unmap_reads_zero = false;
    spd_ops ops = { SPD_OPS_INIT, .read = zero_read,
                    .extent = one_block_extent };
    spd_unit *u = spd_unit_create(&p, &ops, NULL);
    spd_extent e[4];
    spd_request req = { SPD_REQUEST_INIT, .op = SPD_OP_EXTENTS, .lba = 5,
                        .blocks = (1ull << 40) - 5, .extents = e,
                        .extent_max = 4 };
    spd_status st = spd_unit_run(u, &req);
    EXPECT(spd_status_good(&st));
    EXPECT_EQ(budget_calls, SPD_EXTENT_CALLS);
    EXPECT_EQ(req.extent_count, 1);
    EXPECT_EQ(e[0].blocks, SPD_EXTENT_CALLS);
    spd_unit_destroy(u);
}

/* SPD_OPS_NONBLOCKING: with dispatcher threads started, reads of up to
 * SPD_INLINE_BYTES run on the submitting thread; larger ones, and every
 * read of a device without both flags, on a dispatcher thread. */
static pthread_t read_thread;

static int thread_read(void *ctx, spd_io *io, void *buf, uint64_t lba,
                       uint32_t blocks, bool fua)
{
    (void)ctx; (void)io; (void)lba; (void)fua;
    read_thread = pthread_self();
    memset(buf, 0, (size_t)blocks * 512);
    return SPD_OK;
}

static bool read_runs_inline(uint32_t flags, uint32_t blocks)
{
    spd_params p = memunit_params(512, 4096, 11);
    p.write_protected = true;
    p.unmap_supported = p.unmap_reads_zero = false;
    spd_ops ops = { SPD_OPS_INIT, .flags = flags, .read = thread_read };
    spd_unit *u = spd_unit_create(&p, &ops, NULL);
    if (!EXPECT(u != NULL))
        return false;
    EXPECT_EQ(spd_unit_start(u, 2), 0);
    void *buf = malloc((size_t)blocks * 512);
    spd_request req = { SPD_REQUEST_INIT, .op = SPD_OP_READ, .lba = 8,
                        .blocks = blocks, .buf = buf };
    spd_status st = spd_unit_run(u, &req);
    EXPECT(spd_status_good(&st));
    bool here = pthread_equal(read_thread, pthread_self());
    spd_unit_destroy(u);
    free(buf);
    return here;
}

static void test_nonblocking_inline(void)
{
    const uint32_t fast = SPD_OPS_PARALLEL | SPD_OPS_NONBLOCKING;
    uint32_t most = SPD_INLINE_BYTES / 512;
    EXPECT(read_runs_inline(fast, 1));
    EXPECT(read_runs_inline(fast, most));
    EXPECT(!read_runs_inline(fast, most + 1));
    EXPECT(!read_runs_inline(SPD_OPS_PARALLEL, 1));
    EXPECT(!read_runs_inline(SPD_OPS_NONBLOCKING, 1));
}

/* spd_ops.read_lend, write_lend and spd_request.copy: a device lending
 * its memory (pieces of up to 3 blocks, two iovecs each), requests with
 * and without copy, split requests, and devices lending too little or too
 * much. */
struct lender {
    uint8_t *data;
    atomic_uint lends, plain;   /* calls of the lending and plain ops */
    long skew;          /* bytes lent beyond (or, below 0, short of) the io */
};
static struct lender lender;

static int lend(void *ctx, spd_io *io, uint64_t lba, uint32_t blocks)
{
    struct lender *l = ctx;
    atomic_fetch_add(&l->lends, 1);
    while (blocks) {
        uint32_t n = blocks < 3 ? blocks : 3;
        uint8_t *at = l->data + lba * 512;
        struct iovec iov[2] = { { at, 512 }, { at + 512, (n - 1) * 512u } };
        if (n == blocks)
            iov[n > 1].iov_len += (size_t)l->skew;
        int r = spd_io_lend(io, iov, n > 1 ? 2 : 1);
        if (r)
            return r;
        lba += n;
        blocks -= n;
    }
    return SPD_OK;
}

static int plain_read(void *ctx, spd_io *io, void *buf, uint64_t lba,
                      uint32_t blocks, bool fua)
{
    struct lender *l = ctx;
    (void)io; (void)fua;
    atomic_fetch_add(&l->plain, 1);
    memcpy(buf, l->data + lba * 512, (size_t)blocks * 512);
    return SPD_OK;
}

static int plain_write(void *ctx, spd_io *io, const void *buf, uint64_t lba,
                       uint32_t blocks, bool fua)
{
    struct lender *l = ctx;
    (void)io; (void)fua;
    atomic_fetch_add(&l->plain, 1);
    memcpy(l->data + lba * 512, buf, (size_t)blocks * 512);
    return SPD_OK;
}

/* Where requests with copy() take their data from and put it. */
static uint8_t outside[64 * 512];
static int copy_result;

static int copy_outside(spd_request *req, uint64_t offset,
                        const struct iovec *iov, unsigned count)
{
    for (unsigned i = 0; i < count; i++) {
        if (!EXPECT(offset + iov[i].iov_len <= req->blocks * 512))
            return -EINVAL;
        if (req->op == SPD_OP_READ)
            memcpy(outside + offset, iov[i].iov_base, iov[i].iov_len);
        else
            memcpy(iov[i].iov_base, outside + offset, iov[i].iov_len);
        offset += iov[i].iov_len;
    }
    return copy_result;
}

/* op on blocks [8, 45) of a unit with the given ops, 16 blocks at most per
 * device call, with buf, and with copy_outside when copy: the status. */
static spd_status lend_run(const spd_ops *ops, spd_op op, bool copy,
                           uint8_t *buf)
{
    spd_params p = memunit_params(512, 64, 12);
    p.unmap_supported = p.unmap_reads_zero = false;
    p.max_transfer_length = 16 * 512;
    spd_unit *u = spd_unit_create(&p, ops, &lender);
    if (!EXPECT(u != NULL))
        return (spd_status){ .scsi_status = 0xff };
    EXPECT_EQ(spd_unit_lends_memory(u), ops->read_lend != NULL);
    spd_request req = { SPD_REQUEST_INIT, .op = op, .lba = 8, .blocks = 37,
                        .buf = buf, .copy = copy ? copy_outside : NULL };
    spd_status st = spd_unit_run(u, &req);
    spd_unit_destroy(u);
    return st;
}

static void test_lend(void)
{
    uint8_t data[64 * 512], buf[37 * 512], pattern[37 * 512];
    const size_t len = sizeof buf;
    fill(data, sizeof data, 5);
    fill(pattern, len, 6);
    lender = (struct lender){ .data = data };
    uint8_t *at = data + 8 * 512;
    spd_ops lend_only = { SPD_OPS_INIT, .read_lend = lend, .write_lend = lend };
    spd_ops both = { SPD_OPS_INIT, .read = plain_read, .write = plain_write,
                     .read_lend = lend, .write_lend = lend };
    spd_ops plain = { SPD_OPS_INIT, .read = plain_read, .write = plain_write };

    /* Lent without copy: libspd copies between buf and the lent pieces. */
    memset(buf, 0, len);
    spd_status st = lend_run(&lend_only, SPD_OP_READ, false, buf);
    EXPECT(spd_status_good(&st) && !memcmp(buf, at, len));
    EXPECT_EQ(atomic_load(&lender.lends), 3);    /* 16 + 16 + 5 blocks */
    memcpy(buf, pattern, len);
    st = lend_run(&lend_only, SPD_OP_WRITE, false, buf);
    EXPECT(spd_status_good(&st) && !memcmp(at, pattern, len));
    /* Lent to copy: straight between there and outside, buf untouched. */
    memset(buf, 0xaa, len);
    fill(outside, len, 7);
    st = lend_run(&lend_only, SPD_OP_WRITE, true, buf);
    EXPECT(spd_status_good(&st) && !memcmp(at, outside, len));
    memset(outside, 0, sizeof outside);
    st = lend_run(&lend_only, SPD_OP_READ, true, buf);
    EXPECT(spd_status_good(&st) && !memcmp(outside, at, len));
    EXPECT(buf[0] == 0xaa && !memcmp(buf, buf + 1, len - 1));
    /* With read and write too: those where nobody copies, the lending
     * ones where a request does. */
    lender.lends = lender.plain = 0;
    st = lend_run(&both, SPD_OP_READ, false, buf);
    EXPECT(spd_status_good(&st) && !memcmp(buf, at, len));
    st = lend_run(&both, SPD_OP_WRITE, false, pattern);
    EXPECT(spd_status_good(&st) && !memcmp(at, pattern, len));
    EXPECT_EQ(atomic_load(&lender.plain), 6);
    EXPECT_EQ(atomic_load(&lender.lends), 0);
    st = lend_run(&both, SPD_OP_READ, true, buf);
    EXPECT(spd_status_good(&st) && !memcmp(outside, at, len));
    EXPECT_EQ(atomic_load(&lender.lends), 3);
    /* copy with a device that lends nothing: through buf. */
    memset(outside, 0, sizeof outside);
    st = lend_run(&plain, SPD_OP_READ, true, buf);
    EXPECT(spd_status_good(&st) && !memcmp(outside, at, len) &&
           !memcmp(buf, at, len));
    fill(outside, len, 8);
    st = lend_run(&plain, SPD_OP_WRITE, true, buf);
    EXPECT(spd_status_good(&st) && !memcmp(at, outside, len));
    /* copy fails: the request fails with its errno, lent or not. */
    copy_result = -EIO;
    st = lend_run(&lend_only, SPD_OP_READ, true, buf);
    EXPECT(sense_is(st, SPD_KEY_MEDIUM_ERROR, SPD_ASC_UNRECOVERED_READ_ERROR));
    st = lend_run(&plain, SPD_OP_READ, true, buf);
    EXPECT(sense_is(st, SPD_KEY_MEDIUM_ERROR, SPD_ASC_UNRECOVERED_READ_ERROR));
    lender.plain = 0;
    st = lend_run(&plain, SPD_OP_WRITE, true, buf);
    EXPECT(!spd_status_good(&st));
    EXPECT_EQ(atomic_load(&lender.plain), 0);    /* no write without data */
    copy_result = 0;
    /* A device lending a byte too few, or too many: its bug, no overrun. */
    lender.skew = -1;
    st = lend_run(&lend_only, SPD_OP_READ, false, buf);
    EXPECT(sense_is(st, SPD_KEY_HARDWARE_ERROR, SPD_ASC_INTERNAL_TARGET_FAILURE));
    lender.skew = 1;
    st = lend_run(&lend_only, SPD_OP_WRITE, true, buf);
    EXPECT(!spd_status_good(&st));
    lender.skew = 0;
    /* Neither read nor read_lend, or no way to write: refused. */
    spd_params p = memunit_params(512, 64, 12);
    p.unmap_supported = p.unmap_reads_zero = false;
    spd_ops no_read = { SPD_OPS_INIT, .write_lend = lend };
    spd_ops no_write = { SPD_OPS_INIT, .read_lend = lend };
    EXPECT(spd_unit_create(&p, &no_read, NULL) == NULL);
    EXPECT(spd_unit_create(&p, &no_write, NULL) == NULL);
}

int main(void)
{
    static const struct test_case tests[] = {
        TEST(test_roundtrip_512_inline),  TEST(test_roundtrip_4096_inline),
        TEST(test_roundtrip_512_threads), TEST(test_roundtrip_4096_threads),
        TEST(test_range_checks),          TEST(test_resize),
        TEST(test_write_protect),
        TEST(test_split_512),             TEST(test_split_4096_threads),
        TEST(test_split_status_combines), TEST(test_write_same_and_unmap),
        TEST(test_unmap_unsupported),     TEST(test_concurrent_parallel),
        TEST(test_concurrent_serial),     TEST(test_concurrent_async),
        TEST(test_async_inline),          TEST(test_shutdown_in_flight),
        TEST(test_debug_log),
        TEST(test_write_zeroes),          TEST(test_fua_emulated),
        TEST(test_fua_emulated_async),    TEST(test_fua_device),
        TEST(test_request_errno),         TEST(test_extents),
        TEST(test_extents_serial),        TEST(test_extents_call_budget),
        TEST(test_nonblocking_inline),    TEST(test_lend),
    };
    return RUN_TESTS("unit", tests);
}
