/*
 * verify.c - what makes a block checkable, and what each block should
 * hold.
 *
 * Every block written carries a stamp at its start: its own LBA, the
 * run's seed, the generation of the write (a number no other write of the
 * run has) and that write's extent; a pseudo-random body drawn from those
 * fields follows, and a CRC-32C covers the whole block. So a block read
 * back tells by itself whose it is: a stamp with another LBA is a
 * misdirected write, an older generation a lost write or stale data, a
 * failing CRC a torn or damaged block.
 *
 * The table holds, per block, the generation of the last write that
 * completed (or zeros after an unmap that promises them, or unknown), and
 * a hold count: reads share a range, writes and unmaps own it, so no two
 * requests whose outcome depends on their order are ever in flight
 * together and the expected state is exact.
 */
#include <endian.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stgtest.h"
#include "util/crc.h"

#define STAMP_MAGIC "SPDSTG1"       /* 8 bytes with its NUL */
#define STAMP_CRC   44              /* offset of the CRC field */
#define STAMP_BYTES 48

static void put64(uint8_t *p, uint64_t v) { v = htole64(v); memcpy(p, &v, 8); }
static void put32(uint8_t *p, uint32_t v) { v = htole32(v); memcpy(p, &v, 4); }
static uint64_t get64(const uint8_t *p)
{ uint64_t v; memcpy(&v, p, 8); return le64toh(v); }
static uint32_t get32(const uint8_t *p)
{ uint32_t v; memcpy(&v, p, 4); return le32toh(v); }

/* splitmix64: a good 64-bit mix, for the body's stream. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void fill_body(uint8_t *p, size_t len, uint64_t seed, uint64_t gen,
                      uint64_t lba)
{
    uint64_t x = mix64(seed ^ mix64(gen ^ mix64(lba))) | 1;
    for (size_t i = 0; i < len; i += 8) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;      /* xorshift64 */
        memcpy(p + i, &x, len - i < 8 ? len - i : 8);
    }
}

static uint32_t block_crc(const uint8_t *b, uint32_t size)
{
    static const uint8_t zero[4];
    uint32_t crc = crc32c(0, b, STAMP_CRC);
    crc = crc32c(crc, zero, 4);
    return crc32c(crc, b + STAMP_BYTES, size - STAMP_BYTES);
}

void stg_stamp(uint8_t *b, uint32_t size, uint64_t seed, uint64_t lba,
               uint64_t generation, uint64_t write_lba, uint32_t write_blocks)
{
    memcpy(b, STAMP_MAGIC, 8);
    put64(b + 8, lba);
    put64(b + 16, seed);
    put64(b + 24, generation);
    put64(b + 32, write_lba);
    put32(b + 40, write_blocks);
    fill_body(b + STAMP_BYTES, size - STAMP_BYTES, seed, generation, lba);
    put32(b + STAMP_CRC, 0);
    put32(b + STAMP_CRC, block_crc(b, size));
}

/* The first byte where a corrupt block differs from the block its own
 * header describes (the header itself may be what was torn). */
static uint32_t first_bad_byte(const uint8_t *b, uint32_t size,
                               const struct stg_seen *s)
{
    uint8_t *good = malloc(size);
    if (!good)
        return 0;
    stg_stamp(good, size, s->seed, s->lba, s->generation, s->write_lba,
              s->write_blocks);
    uint32_t i = 0;
    while (i < size && b[i] == good[i])
        i++;
    free(good);
    return i;
}

void stg_examine(const uint8_t *b, uint32_t size, struct stg_seen *s)
{
    memset(s, 0, sizeof *s);
    if (!b[0] && !memcmp(b, b + 1, size - 1)) {
        s->kind = SEEN_ZEROS;
        return;
    }
    if (memcmp(b, STAMP_MAGIC, 8)) {
        s->kind = SEEN_FOREIGN;
        return;
    }
    s->lba = get64(b + 8);
    s->seed = get64(b + 16);
    s->generation = get64(b + 24);
    s->write_lba = get64(b + 32);
    s->write_blocks = get32(b + 40);
    s->kind = SEEN_STAMP;
    if (get32(b + STAMP_CRC) != block_crc(b, size)) {
        s->kind = SEEN_CORRUPT;
        s->bad_offset = first_bad_byte(b, size, s);
    }
}

void stg_seen_format(const struct stg_seen *s, uint64_t seed, char *buf,
                     size_t len)
{
    switch (s->kind) {
    case SEEN_ZEROS:
        snprintf(buf, len, "zeros");
        return;
    case SEEN_FOREIGN:
        snprintf(buf, len, "data without a stamp");
        return;
    case SEEN_STAMP:
    case SEEN_CORRUPT:
        break;
    }
    int n = snprintf(buf, len, "generation %llu for LBA %llu (a write of %u "
                     "block%s at LBA %llu)", (unsigned long long)s->generation,
                     (unsigned long long)s->lba, s->write_blocks,
                     s->write_blocks == 1 ? "" : "s",
                     (unsigned long long)s->write_lba);
    if (s->seed != seed && n >= 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, " of another run (seed %llu)",
                      (unsigned long long)s->seed);
    if (s->kind == SEEN_CORRUPT && n >= 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, ", its checksum failing: wrong "
                 "from byte %u", s->bad_offset);
}

bool stg_matches(uint64_t expected, const struct stg_seen *s, uint64_t seed,
                 uint64_t lba)
{
    if (expected == STG_ZEROS)
        return s->kind == SEEN_ZEROS;
    if (expected == STG_UNKNOWN)    /* anything but this run's data for
                                       another block */
        return s->kind != SEEN_STAMP || s->seed != seed || s->lba == lba;
    return s->kind == SEEN_STAMP && s->seed == seed && s->lba == lba &&
           s->generation == expected;
}

/* ---- the table ---- */

#define HELD_EXCLUSIVE UINT16_MAX

struct stg_table {
    uint64_t blocks;
    uint64_t *state;
    uint16_t *hold;             /* readers, or HELD_EXCLUSIVE */
    pthread_mutex_t lock;
    pthread_cond_t released;
};

struct stg_table *stg_table_create(uint64_t blocks)
{
    struct stg_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->blocks = blocks;
    t->state = calloc(blocks, sizeof *t->state);
    t->hold = calloc(blocks, sizeof *t->hold);
    if (!t->state || !t->hold) {
        stg_table_destroy(t);
        return NULL;
    }
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->released, NULL);
    return t;
}

void stg_table_destroy(struct stg_table *t)
{
    if (!t)
        return;
    free(t->state);
    free(t->hold);
    free(t);
}

bool stg_table_try_lock(struct stg_table *t, uint64_t lba, uint32_t n,
                        bool exclusive)
{
    bool ok = true;
    pthread_mutex_lock(&t->lock);
    for (uint32_t i = 0; i < n && ok; i++) {
        uint16_t h = t->hold[lba + i];
        ok = exclusive ? h == 0 : h < HELD_EXCLUSIVE - 1;
    }
    if (ok)
        for (uint32_t i = 0; i < n; i++)
            t->hold[lba + i] = exclusive ? HELD_EXCLUSIVE
                                         : t->hold[lba + i] + 1;
    pthread_mutex_unlock(&t->lock);
    return ok;
}

void stg_table_unlock(struct stg_table *t, uint64_t lba, uint32_t n,
                      bool exclusive)
{
    pthread_mutex_lock(&t->lock);
    for (uint32_t i = 0; i < n; i++)
        t->hold[lba + i] = exclusive ? 0 : t->hold[lba + i] - 1;
    pthread_cond_broadcast(&t->released);
    pthread_mutex_unlock(&t->lock);
}

void stg_table_wait(struct stg_table *t, int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += (long)ms * 1000000;
    until.tv_sec += until.tv_nsec / 1000000000;
    until.tv_nsec %= 1000000000;
    pthread_mutex_lock(&t->lock);
    pthread_cond_timedwait(&t->released, &t->lock, &until);
    pthread_mutex_unlock(&t->lock);
}

uint64_t stg_table_get(const struct stg_table *t, uint64_t lba)
{
    return t->state[lba];
}

void stg_table_set(struct stg_table *t, uint64_t lba, uint32_t n,
                   uint64_t state)
{
    for (uint32_t i = 0; i < n; i++)
        t->state[lba + i] = state;
}
