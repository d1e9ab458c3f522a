/*
 * test_byteio.c - byte-granular I/O on a unit (spd_unit_pread,
 * spd_unit_pwrite, spd_unit_pzero): every edge of a block, ranges past
 * the end, zeroing, and real threads writing parts of one block at once,
 * partial against partial and partial against whole-block writes; each
 * checked byte for byte against a copy kept here and the device's memory.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

#include "harness.h"
#include "memunit.h"

#define BLOCKS 64

static void fill(uint8_t *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(i * 37 + seed * 11 + (i >> 8) + 1);
}

/* A memunit of BLOCKS blocks, filled, with dispatcher threads (0: none). */
static struct memunit *unit_new(uint32_t bl, unsigned threads, bool async)
{
    spd_params p = memunit_params(bl, BLOCKS, 9);
    struct memunit *m = memunit_create_modes(&p, SPD_OPS_PARALLEL,
                                             MEMUNIT_CHECKING);
    if (!EXPECT(m != NULL))
        return NULL;
    m->async = async;
    fill(m->data, (size_t)bl * BLOCKS, 5);
    if (threads)
        EXPECT_EQ(spd_unit_start(m->unit, threads), 0);
    return m;
}

/* Writes at every kind of edge, each compared with a shadow copy: the
 * whole device after each write, and the range read back. */
static void edges(uint32_t bl, unsigned threads)
{
    struct memunit *m = unit_new(bl, threads, false);
    if (!m)
        return;
    size_t size = (size_t)bl * BLOCKS;
    uint8_t *shadow = malloc(size), *data = malloc(size), *back = malloc(size);
    memcpy(shadow, m->data, size);
    const struct { uint64_t off, len; } cases[] = {
        { 0, 1 }, { 1, 1 }, { bl - 1, 1 }, { bl - 1, 2 }, { bl, bl },
        { 3, bl - 6 }, { bl - 3, 2 * (uint64_t)bl + 7 }, { 512, 512 },
        { 2 * (uint64_t)bl + 100, 5 * (uint64_t)bl }, { size - 1, 1 },
        { size - 700, 700 }, { 0, size }, { 17, size - 34 },
    };
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t off = cases[i].off, len = cases[i].len;
        fill(data, len, i + 100);
        EXPECT_EQ(spd_unit_pwrite(m->unit, data, len, off, i % 2), 0);
        memcpy(shadow + off, data, len);
        EXPECT(!memcmp(m->data, shadow, size));
        memset(back, 0, len);
        EXPECT_EQ(spd_unit_pread(m->unit, back, len, off), 0);
        EXPECT(!memcmp(back, shadow + off, len));
        /* A read straddling the range by a few bytes either way. */
        uint64_t roff = off >= 5 ? off - 5 : 0;
        uint64_t rend = off + len + 5 <= size ? off + len + 5 : size;
        EXPECT_EQ(spd_unit_pread(m->unit, back, rend - roff, roff), 0);
        EXPECT(!memcmp(back, shadow + roff, rend - roff));
    }
    free(shadow);
    free(data);
    free(back);
    memunit_destroy(m);
}

static void test_edges_512(void) { edges(512, 0); }
static void test_edges_4096(void) { edges(4096, 0); }
static void test_edges_4096_threads(void) { edges(4096, 3); }

/* Ranges past the end change nothing: EINVAL to read, ENOSPC to write or
 * zero; an empty range at the very end is nothing to do. */
static void test_range_errors(void)
{
    struct memunit *m = unit_new(4096, 0, false);
    if (!m)
        return;
    size_t size = (size_t)4096 * BLOCKS;
    uint8_t *before = malloc(size), buf[8192] = { 0 };
    memcpy(before, m->data, size);
    unsigned writes = atomic_load(&m->writes);

    EXPECT_EQ(spd_unit_pread(m->unit, buf, 2, size - 1), -EINVAL);
    EXPECT_EQ(spd_unit_pread(m->unit, buf, 1, size), -EINVAL);
    EXPECT_EQ(spd_unit_pread(m->unit, buf, 1, UINT64_MAX), -EINVAL);
    EXPECT_EQ(spd_unit_pwrite(m->unit, buf, 2, size - 1, false), -ENOSPC);
    EXPECT_EQ(spd_unit_pwrite(m->unit, buf, 8192, size - 4096, false), -ENOSPC);
    EXPECT_EQ(spd_unit_pwrite(m->unit, buf, 1, UINT64_MAX, false), -ENOSPC);
    EXPECT_EQ(spd_unit_pzero(m->unit, 5000, size - 4999, 0, false), -ENOSPC);
    EXPECT_EQ(spd_unit_pzero(m->unit, UINT64_MAX, 1, 0, false), -ENOSPC);
    EXPECT_EQ(spd_unit_pread(m->unit, buf, 0, size), 0);
    EXPECT_EQ(spd_unit_pwrite(m->unit, buf, 0, size, false), 0);
    EXPECT_EQ(atomic_load(&m->writes), writes);
    EXPECT(!memcmp(m->data, before, size));
    free(before);
    memunit_destroy(m);
}

/* A write-protected unit: writes and zeroing fail EROFS, whole or
 * partial, and nothing is read-modify-written. */
static void test_write_protected(void)
{
    spd_params p = memunit_params(4096, BLOCKS, 9);
    p.write_protected = true;
    struct memunit *m = memunit_create(&p, 0);
    if (!EXPECT(m != NULL))
        return;
    uint8_t buf[4096] = { 1 };
    EXPECT_EQ(spd_unit_pwrite(m->unit, buf, 100, 10, false), -EROFS);
    EXPECT_EQ(spd_unit_pwrite(m->unit, buf, 4096, 4096, false), -EROFS);
    EXPECT_EQ(spd_unit_pzero(m->unit, 10, 10, 0, false), -EROFS);
    EXPECT_EQ(spd_unit_pread(m->unit, buf, 100, 10), 0);
    EXPECT_EQ(atomic_load(&m->writes), 0);
    memunit_destroy(m);
}

/* Zeroing: partial edges written with zeros, whole blocks unmapped (the
 * unit reads zeros after unmap); the neighbours keep their bytes. A fast
 * zero of a range with a partial block is refused before anything is
 * done; one of whole blocks unmaps. */
static void test_zero(void)
{
    struct memunit *m = unit_new(4096, 2, false);
    if (!m)
        return;
    size_t size = (size_t)4096 * BLOCKS;
    uint8_t *shadow = malloc(size);
    memcpy(shadow, m->data, size);

    EXPECT_EQ(spd_unit_pzero(m->unit, 3 * 4096 + 10, 4000, SPD_REQ_MAY_UNMAP,
                             false), 0);
    memset(shadow + 4000, 0, 3 * 4096 + 10);
    EXPECT(!memcmp(m->data, shadow, size));
    EXPECT(atomic_load(&m->unmapped_blocks) >= 2);

    EXPECT_EQ(spd_unit_pzero(m->unit, 1, 9 * 4096 + 1, 0, false), 0);
    shadow[9 * 4096 + 1] = 0;
    EXPECT(!memcmp(m->data, shadow, size));

    unsigned writes = atomic_load(&m->writes);
    EXPECT_EQ(spd_unit_pzero(m->unit, 4096, 20 * 4096 + 1,
                             SPD_REQ_MAY_UNMAP | SPD_REQ_FAST_ZERO, false),
              -ENOTSUP);
    EXPECT_EQ(atomic_load(&m->writes), writes);
    EXPECT(!memcmp(m->data, shadow, size));
    EXPECT_EQ(spd_unit_pzero(m->unit, 2 * 4096, 20 * 4096,
                             SPD_REQ_MAY_UNMAP | SPD_REQ_FAST_ZERO, false), 0);
    memset(shadow + 20 * 4096, 0, 2 * 4096);
    EXPECT(!memcmp(m->data, shadow, size));
    free(shadow);
    memunit_destroy(m);
}

/* ------------------------------------------------------------------ */
/* Threads                                                             */
/* ------------------------------------------------------------------ */

#define WRITERS 8
#define ROUNDS 40
#define SPAN 4          /* blocks the writers share */

struct writer {
    pthread_t thread;
    struct memunit *m;
    unsigned index;
    int failures;
};

/* Writer i owns bytes [i * slice, (i + 1) * slice) of each shared block
 * and writes its round number (1 to ROUNDS) there, block by block. */
static size_t slice_len(uint32_t bl) { return bl / WRITERS; }

static void *partial_writer(void *arg)
{
    struct writer *w = arg;
    uint32_t bl = w->m->params.block_length;
    size_t slice = slice_len(bl);
    uint8_t buf[512];
    for (unsigned round = 1; round <= ROUNDS; round++) {
        memset(buf, (int)round, slice);
        for (uint64_t b = 0; b < SPAN; b++)
            w->failures += spd_unit_pwrite(w->m->unit, buf, slice,
                                           b * bl + w->index * slice,
                                           false) != 0;
    }
    return NULL;
}

/*
 * WRITERS threads write their own slices of the same SPAN blocks at once
 * (on a unit whose calls linger, so read-modify-writes overlap): without
 * holds, one write-back would undo another's slice, and a slice would
 * end with an older round than its owner's last.
 */
static void concurrent(uint32_t bl, unsigned threads, bool async)
{
    struct memunit *m = unit_new(bl, threads, async);
    if (!m)
        return;
    struct writer w[WRITERS];
    for (unsigned i = 0; i < WRITERS; i++) {
        w[i] = (struct writer){ .m = m, .index = i };
        EXPECT_EQ(pthread_create(&w[i].thread, NULL, partial_writer, &w[i]),
                  0);
    }
    for (unsigned i = 0; i < WRITERS; i++) {
        pthread_join(w[i].thread, NULL);
        EXPECT_EQ(w[i].failures, 0);
    }
    size_t slice = slice_len(bl);
    for (uint64_t b = 0; b < SPAN; b++) {
        for (unsigned i = 0; i < WRITERS; i++) {
            const uint8_t *p = m->data + b * bl + i * slice;
            bool ok = true;
            for (size_t k = 0; k < slice; k++)
                ok = ok && p[k] == ROUNDS;
            if (!EXPECT(ok))
                fprintf(stderr, "block %" PRIu64 " slice %u: round %u\n", b,
                        i, p[0]);
        }
    }
    memunit_destroy(m);
}

static void test_partial_race_4096(void) { concurrent(4096, 4, false); }
static void test_partial_race_512_inline(void) { concurrent(512, 0, false); }
static void test_partial_race_async(void) { concurrent(4096, 2, true); }

/* Partial writers of the first HEAD bytes of each shared block, until
 * told to stop. */
#define HEAD 64
static atomic_bool stop_partial;

static void *head_writer(void *arg)
{
    struct writer *w = arg;
    uint32_t bl = w->m->params.block_length;
    uint8_t buf[HEAD];
    memset(buf, (int)w->index, HEAD);
    while (!atomic_load(&stop_partial))
        for (uint64_t b = 0; b < SPAN; b++)
            w->failures += spd_unit_pwrite(w->m->unit, buf, HEAD, b * bl,
                                           false) != 0;
    return NULL;
}

/* Do bytes [HEAD, bl) of each shared block all hold value? */
static bool tails_hold(const uint8_t *data, uint32_t bl, uint8_t value)
{
    for (uint64_t b = 0; b < SPAN; b++)
        for (size_t k = HEAD; k < bl; k++)
            if (data[b * bl + k] != value)
                return false;
    return true;
}

/*
 * Whole-block writes of the shared blocks while partial writes of their
 * heads go on: the bytes past the heads are written by the whole writes
 * alone, so after each whole write completes they hold its round, then
 * and at the end; a read-modify-write that read before it and wrote back
 * after it would bring an older round back.
 */
static void whole_and_partial(unsigned threads, bool async)
{
    const uint32_t bl = 4096;
    struct memunit *m = unit_new(bl, threads, async);
    if (!m)
        return;
    atomic_store(&stop_partial, false);
    struct writer w[4];
    for (unsigned i = 0; i < 4; i++) {
        w[i] = (struct writer){ .m = m, .index = i + 1 };
        EXPECT_EQ(pthread_create(&w[i].thread, NULL, head_writer, &w[i]), 0);
    }
    size_t len = (size_t)SPAN * bl;
    uint8_t *buf = malloc(len), *back = malloc(len);
    unsigned stale = 0;
    for (unsigned round = 1; round <= ROUNDS; round++) {
        memset(buf, (int)(0x80 | round), len);
        EXPECT_EQ(spd_unit_pwrite(m->unit, buf, len, 0, false), 0);
        EXPECT_EQ(spd_unit_pread(m->unit, back, len, 0), 0);
        stale += !tails_hold(back, bl, (uint8_t)(0x80 | round));
    }
    atomic_store(&stop_partial, true);
    for (unsigned i = 0; i < 4; i++) {
        pthread_join(w[i].thread, NULL);
        EXPECT_EQ(w[i].failures, 0);
    }
    EXPECT_EQ(stale, 0);
    EXPECT(tails_hold(m->data, bl, (uint8_t)(0x80 | ROUNDS)));
    free(buf);
    free(back);
    memunit_destroy(m);
}

static void test_whole_and_partial_race(void) { whole_and_partial(4, false); }
static void test_whole_and_partial_race_async(void) { whole_and_partial(2, true); }



int main(void)
{
    static const struct test_case tests[] = {
        TEST(test_edges_512),
        TEST(test_edges_4096),
        TEST(test_edges_4096_threads),
        TEST(test_range_errors),
        TEST(test_write_protected),
        TEST(test_zero),
        TEST(test_partial_race_4096),
        TEST(test_partial_race_512_inline),
        TEST(test_partial_race_async),
        TEST(test_whole_and_partial_race),
        TEST(test_whole_and_partial_race_async),
    };
    return run_tests("byteio", tests, sizeof tests / sizeof tests[0]);
}
