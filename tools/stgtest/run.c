/*
 * run.c - the threads of a run and what happens when a block is wrong.
 *
 * Each thread owns one connection and a fixed set of request slots (the
 * queue depth). It draws its requests from its own random stream, seeded
 * from the run's seed and its index, so the same seed gives every thread
 * the same sequence of requests again. A request waits, before it is
 * sent, until no request in flight holds its blocks the other way
 * (verify.c); the thread meanwhile takes its own completions, so two
 * threads waiting on each other still move.
 *
 * The first wrong block stops the run. Once every thread has drained,
 * the diagnosis reads again what it needs, the target quiet, to tell a
 * lost write from a torn one, a misdirected one and a stale read.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run.h"

struct stg_worker {
    struct stg_run *run;
    unsigned index;
    struct stg_conn *conn;
    uint64_t rng;
    uint64_t quota, issued;         /* with --ops: this thread's share */
    uint64_t cursor;                /* next LBA, sequential */
    struct stg_op *slots;
    struct stg_op **free_slots;
    unsigned free_count, inflight;
    uint64_t last_progress_ns;
    struct stg_hist hist[STG_KINDS];
    atomic_uint_fast64_t done_ops[STG_KINDS], done_bytes[STG_KINDS];
    uint64_t verified_blocks;
    pthread_t thread;
};

const char *const stg_kind_names[STG_KINDS] = {
    [STG_READ] = "read", [STG_WRITE] = "write",
    [STG_FLUSH] = "flush", [STG_UNMAP] = "unmap",
};

static uint64_t next_random(uint64_t *state)     /* splitmix64 */
{
    uint64_t x = (*state += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* ---- failures ---- */

/* Keep the first failure only; every thread stops at the next request. */
static bool failure_claim(struct stg_run *run)
{
    pthread_mutex_lock(&run->failure_lock);
    bool first = run->failure.kind == FAIL_NONE;
    if (first)
        run->failure.kind = FAIL_IO;            /* refined by the caller */
    pthread_mutex_unlock(&run->failure_lock);
    atomic_store(&run->stop, true);
    return first;
}

static void fail_io(struct stg_run *run, const struct stg_op *op,
                    enum stg_failure_kind kind, int error, const char *detail)
{
    if (!failure_claim(run))
        return;
    struct stg_failure *f = &run->failure;
    f->kind = kind;
    f->op = op ? op->kind : STG_KINDS;      /* none: the connection */
    f->op_lba = f->lba = op ? op->lba : 0;
    f->op_blocks = op ? op->blocks : 0;
    f->error = error;
    snprintf(f->detail, sizeof f->detail, "%s",
             detail && detail[0] ? detail : strerror(error));
}

static void fail_verify(struct stg_run *run, const struct stg_op *op,
                        uint64_t lba, uint64_t expected,
                        const struct stg_seen *seen)
{
    if (!failure_claim(run))
        return;
    struct stg_failure *f = &run->failure;
    f->kind = FAIL_VERIFY;
    f->op = op->kind;
    f->op_lba = op->lba;
    f->op_blocks = op->blocks;
    f->lba = lba;
    f->expected = expected;
    f->seen = *seen;
}

/* ---- completions ---- */

static void check_read(struct stg_worker *w, struct stg_op *op)
{
    struct stg_run *run = w->run;
    uint32_t bs = run->geo.block_size;
    for (uint32_t i = 0; i < op->blocks; i++) {
        uint64_t lba = op->lba + i, expected = stg_table_get(run->table, lba);
        struct stg_seen seen;
        stg_examine(op->buf + (size_t)i * bs, bs, &seen);
        if (!stg_matches(expected, &seen, run->cfg.seed, lba)) {
            fail_verify(run, op, lba, expected, &seen);
            return;
        }
    }
    w->verified_blocks += op->blocks;
}

/* What a write or an unmap leaves its blocks holding. */
static uint64_t state_after(const struct stg_run *run, const struct stg_op *op)
{
    if (op->error)
        return STG_UNKNOWN;     /* it may have reached some blocks */
    if (op->kind == STG_WRITE)
        return op->generation;
    return run->geo.unmap_zeroes ? STG_ZEROS : STG_UNKNOWN;
}

void stg_complete(struct stg_op *op)
{
    struct stg_worker *w = op->owner;
    if (!w) {                   /* a diagnosis read: it waits for this */
        op->target_data = 1;
        return;
    }
    struct stg_run *run = w->run;
    uint64_t now = stg_now_ns();
    uint64_t bytes = (uint64_t)op->blocks * run->geo.block_size;
    w->last_progress_ns = now;
    if (op->error) {
        fail_io(run, op, FAIL_IO, op->error, op->detail);
    } else {
        stg_hist_add(&w->hist[op->kind], now - op->start_ns, bytes);
        atomic_fetch_add_explicit(&w->done_ops[op->kind], 1,
                                  memory_order_relaxed);
        atomic_fetch_add_explicit(&w->done_bytes[op->kind], bytes,
                                  memory_order_relaxed);
        if (op->kind == STG_READ && run->table)
            check_read(w, op);
    }
    if (run->table && op->kind != STG_FLUSH) {
        bool exclusive = op->kind != STG_READ;
        if (exclusive)
            stg_table_set(run->table, op->lba, op->blocks,
                          state_after(run, op));
        stg_table_unlock(run->table, op->lba, op->blocks, exclusive);
    }
    w->inflight--;
    w->free_slots[w->free_count++] = op;
}

/* ---- issuing ---- */

static enum stg_kind pick_kind(struct stg_worker *w)
{
    const unsigned *mix = w->run->cfg.mix;
    unsigned total = 0;
    for (int k = 0; k < STG_KINDS; k++)
        total += mix[k];
    uint64_t r = next_random(&w->rng) % total;
    int k = 0;
    while (r >= mix[k])
        r -= mix[k++];
    return (enum stg_kind)k;
}

static void draw(struct stg_worker *w, struct stg_op *op)
{
    struct stg_run *run = w->run;
    *op = (struct stg_op){ .buf = op->buf, .owner = w };
    op->kind = pick_kind(w);
    if (op->kind == STG_FLUSH)
        return;
    uint32_t span = run->max_blocks - run->min_blocks + 1;
    op->blocks = run->min_blocks +
                 (uint32_t)(next_random(&w->rng) % span);
    if (op->kind == STG_UNMAP && run->geo.max_unmap_blocks &&
        op->blocks > run->geo.max_unmap_blocks)
        op->blocks = run->geo.max_unmap_blocks;
    if (run->cfg.sequential) {
        if (w->cursor + op->blocks > run->blocks)
            w->cursor = 0;
        op->lba = w->cursor;
        w->cursor += op->blocks;
    } else {
        op->lba = next_random(&w->rng) % (run->blocks - op->blocks + 1);
    }
}

static void stamp(struct stg_run *run, struct stg_op *op)
{
    uint32_t bs = run->geo.block_size;
    op->generation = atomic_fetch_add(&run->next_generation, 1);
    for (uint32_t i = 0; i < op->blocks; i++)
        stg_stamp(op->buf + (size_t)i * bs, bs, run->cfg.seed, op->lba + i,
                  op->generation, op->lba, op->blocks);
}

/* Take completions for up to ms; false once the connection is broken or
 * a request waited longer than the timeout. */
static bool reap(struct stg_worker *w, int ms)
{
    struct stg_run *run = w->run;
    int r = run->cfg.target->wait(w->conn, ms);
    if (r < 0) {
        fail_io(run, NULL, FAIL_IO, -r, NULL);
        return false;
    }
    if (w->inflight && stg_now_ns() - w->last_progress_ns >
                       (uint64_t)run->cfg.timeout * 1000000000u) {
        for (unsigned i = 0; i < run->cfg.topt.queue_depth; i++) {
            bool busy = true;
            for (unsigned j = 0; j < w->free_count; j++)
                busy &= w->free_slots[j] != &w->slots[i];
            if (busy) {
                fail_io(run, &w->slots[i], FAIL_TIMEOUT, ETIMEDOUT,
                        "no answer within the timeout");
                break;
            }
        }
        return false;
    }
    return true;
}

static bool more_to_do(struct stg_worker *w)
{
    if (atomic_load_explicit(&w->run->stop, memory_order_relaxed))
        return false;
    if (w->run->cfg.ops)
        return w->issued < w->quota;
    return stg_now_ns() < w->run->deadline_ns;
}

/* Wait until the op's blocks are free; false when the run stops first. */
static bool hold_range(struct stg_worker *w, struct stg_op *op)
{
    struct stg_run *run = w->run;
    if (!run->table || op->kind == STG_FLUSH)
        return true;
    while (!stg_table_try_lock(run->table, op->lba, op->blocks,
                               op->kind != STG_READ)) {
        if (atomic_load(&run->stop))
            return false;
        if (w->inflight) {
            if (!reap(w, 1))
                return false;
        } else {
            stg_table_wait(run->table, 1);
        }
    }
    return true;
}

static void *worker_main(void *arg)
{
    struct stg_worker *w = arg;
    struct stg_run *run = w->run;
    bool healthy = true;
    w->last_progress_ns = stg_now_ns();
    while (healthy && more_to_do(w)) {
        if (!w->free_count) {
            healthy = reap(w, 100);
            continue;
        }
        struct stg_op *op = w->free_slots[--w->free_count];
        draw(w, op);
        if (!hold_range(w, op)) {
            w->free_slots[w->free_count++] = op;
            break;
        }
        if (op->kind == STG_WRITE && run->table)
            stamp(run, op);
        w->issued++;
        op->start_ns = stg_now_ns();
        if (++w->inflight == 1)     /* the timeout counts from here */
            w->last_progress_ns = op->start_ns;
        int r = run->cfg.target->submit(w->conn, op);
        if (r < 0) {
            op->error = -r;
            stg_complete(op);               /* fails the run, frees */
            healthy = false;
        }
    }
    while (healthy && w->inflight)
        healthy = reap(w, 100);
    atomic_fetch_add(&run->finished, 1);
    return NULL;
}

/* ---- the run ---- */

int stg_run_open(struct stg_run *run)
{
    const struct stg_config *cfg = &run->cfg;
    run->workers = calloc(cfg->threads, sizeof *run->workers);
    if (!run->workers)
        return -ENOMEM;
    pthread_mutex_init(&run->failure_lock, NULL);
    atomic_init(&run->next_generation, STG_FIRST_GENERATION);
    for (unsigned i = 0; i < cfg->threads; i++) {
        struct stg_worker *w = &run->workers[i];
        struct stg_geometry geo;
        char err[256];
        w->run = run;
        w->index = i;
        w->conn = cfg->target->open(cfg->spec, &cfg->topt, &geo, err,
                                    sizeof err);
        if (!w->conn) {
            fprintf(stderr, "spd-stgtest: %s: %s\n", cfg->spec, err);
            return -1;
        }
        if (i == 0)
            run->geo = geo;
    }
    return 0;
}

/* Slots and buffers, once the geometry says how large. */
static int worker_prepare(struct stg_worker *w)
{
    struct stg_run *run = w->run;
    unsigned qd = run->cfg.topt.queue_depth;
    size_t bytes = (size_t)run->max_blocks * run->geo.block_size;
    w->slots = calloc(qd, sizeof *w->slots);
    w->free_slots = calloc(qd, sizeof *w->free_slots);
    if (!w->slots || !w->free_slots)
        return -ENOMEM;
    for (unsigned i = 0; i < qd; i++) {
        void *buf;
        if (posix_memalign(&buf, 4096, bytes))
            return -ENOMEM;
        /* Without verify, writes send this, once made. */
        memset(buf, 0xa5 ^ (int)i, bytes);
        w->slots[i].buf = buf;
        w->free_slots[w->free_count++] = &w->slots[i];
    }
    w->rng = run->cfg.seed ^ (0x9e3779b97f4a7c15ull * (w->index + 1));
    w->cursor = run->blocks / run->cfg.threads * w->index;
    if (run->cfg.ops)
        w->quota = run->cfg.ops / run->cfg.threads +
                   (w->index < run->cfg.ops % run->cfg.threads);
    return 0;
}

void stg_run_start(struct stg_run *run)
{
    run->start_ns = stg_now_ns();
    run->deadline_ns = run->start_ns + (uint64_t)(run->cfg.seconds * 1e9);
    for (unsigned i = 0; i < run->cfg.threads; i++) {
        struct stg_worker *w = &run->workers[i];
        if (worker_prepare(w) ||
            pthread_create(&w->thread, NULL, worker_main, w)) {
            fprintf(stderr, "spd-stgtest: out of memory or threads\n");
            exit(1);
        }
    }
}

void stg_run_progress(struct stg_run *run, uint64_t ops[STG_KINDS],
                      uint64_t bytes[STG_KINDS])
{
    for (int k = 0; k < STG_KINDS; k++) {
        ops[k] = bytes[k] = 0;
        for (unsigned i = 0; i < run->cfg.threads; i++) {
            ops[k] += atomic_load(&run->workers[i].done_ops[k]);
            bytes[k] += atomic_load(&run->workers[i].done_bytes[k]);
        }
    }
}

void stg_run_join(struct stg_run *run, struct stg_totals *totals)
{
    memset(totals, 0, sizeof *totals);
    for (unsigned i = 0; i < run->cfg.threads; i++) {
        struct stg_worker *w = &run->workers[i];
        pthread_join(w->thread, NULL);
        for (int k = 0; k < STG_KINDS; k++)
            stg_hist_merge(&totals->hist[k], &w->hist[k]);
        totals->verified_blocks += w->verified_blocks;
    }
    run->end_ns = stg_now_ns();
}

void stg_run_close(struct stg_run *run)
{
    for (unsigned i = 0; run->workers && i < run->cfg.threads; i++) {
        struct stg_worker *w = &run->workers[i];
        if (w->conn)
            run->cfg.target->close(w->conn);
        for (unsigned j = 0; w->slots && j < run->cfg.topt.queue_depth; j++)
            free(w->slots[j].buf);
        free(w->slots);
        free(w->free_slots);
    }
    free(run->workers);
    stg_table_destroy(run->table);
}

/* ---- diagnosis ---- */

/* Read blocks on the first connection, the run stopped: 0 or -errno. */
static int read_quietly(struct stg_run *run, uint64_t lba, uint32_t blocks,
                        uint8_t *buf)
{
    struct stg_conn *c = run->workers[0].conn;
    struct stg_op op = { .kind = STG_READ, .lba = lba, .blocks = blocks,
                         .buf = buf };
    if (run->cfg.target->submit(c, &op) < 0)
        return -EIO;
    uint64_t deadline = stg_now_ns() + (uint64_t)run->cfg.timeout * 1000000000u;
    while (!op.target_data && stg_now_ns() < deadline)
        if (run->cfg.target->wait(c, 100) < 0)
            return -EIO;
    return !op.target_data ? -ETIMEDOUT : op.error ? -EIO : 0;
}

/* Is block i of buf stamped with this generation? */
static bool carries(const struct stg_run *run, const uint8_t *buf,
                    uint64_t generation)
{
    struct stg_seen s;
    stg_examine(buf, run->geo.block_size, &s);
    return s.kind == SEEN_STAMP && s.seed == run->cfg.seed &&
           s.generation == generation;
}

/* Where did generation g go? Search the tested blocks (at most 1 GiB). */
static bool find_generation(struct stg_run *run, uint64_t g, uint64_t *where)
{
    uint32_t bs = run->geo.block_size, chunk = run->max_blocks;
    uint64_t limit = (1ull << 30) / bs;
    uint8_t *buf = run->workers[0].slots[0].buf;
    for (uint64_t lba = 0; lba < run->blocks && lba < limit; lba += chunk) {
        uint32_t n = (uint32_t)(run->blocks - lba < chunk ? run->blocks - lba
                                                          : chunk);
        if (read_quietly(run, lba, n, buf))
            return false;
        for (uint32_t i = 0; i < n; i++)
            if (carries(run, buf + (size_t)i * bs, g)) {
                *where = lba + i;
                return true;
            }
    }
    return false;
}

/* A block that should hold generation g does not: read the blocks that
 * still expect g (what is left of its write) and look again. */
static void diagnose_generation(struct stg_run *run, struct stg_failure *f)
{
    uint32_t bs = run->geo.block_size, max = run->max_blocks;
    uint64_t g = f->expected, first = f->lba, last = f->lba;
    while (first > 0 && f->lba - first < max &&
           stg_table_get(run->table, first - 1) == g)
        first--;
    while (last + 1 < run->blocks && last - first + 1 < max &&
           stg_table_get(run->table, last + 1) == g)
        last++;
    uint32_t n = (uint32_t)(last - first + 1), good = 0;
    uint8_t *buf = run->workers[0].slots[0].buf;
    if (read_quietly(run, first, n, buf)) {
        f->verdict = "wrong data";
        snprintf(f->diagnosis, sizeof f->diagnosis, "reading it again "
                 "failed");
        return;
    }
    bool now_good = carries(run, buf + (f->lba - first) * bs, g);
    for (uint32_t i = 0; i < n; i++)
        good += carries(run, buf + (size_t)i * bs, g);
    uint64_t where;
    if (now_good) {
        f->verdict = "stale read";
        snprintf(f->diagnosis, sizeof f->diagnosis, "read again, LBA %"
                 PRIu64 " holds generation %" PRIu64 ": the first read "
                 "returned older data", f->lba, g);
    } else if (good) {
        f->verdict = "torn write";
        snprintf(f->diagnosis, sizeof f->diagnosis, "of the %u blocks at "
                 "LBA %" PRIu64 " that generation %" PRIu64 " wrote, %u hold "
                 "it and %u do not", n, first, g, good, n - good);
    } else if (find_generation(run, g, &where)) {
        f->verdict = "misdirected write";
        snprintf(f->diagnosis, sizeof f->diagnosis, "generation %" PRIu64
                 " for LBA %" PRIu64 " was found at LBA %" PRIu64, g, f->lba,
                 where);
    } else {
        f->verdict = "lost write";
        snprintf(f->diagnosis, sizeof f->diagnosis, "none of the %u blocks "
                 "at LBA %" PRIu64 " that generation %" PRIu64 " wrote holds "
                 "it, nor any other tested block", n, first, g);
    }
}

void stg_run_diagnose(struct stg_run *run)
{
    struct stg_failure *f = &run->failure;
    const struct stg_seen *s = &f->seen;
    bool ours = (s->kind == SEEN_STAMP || s->kind == SEEN_CORRUPT) &&
                s->seed == run->cfg.seed;
    if (f->kind == FAIL_IO || f->kind == FAIL_TIMEOUT) {
        f->verdict = f->kind == FAIL_IO ? "I/O error" : "timeout";
        return;
    }
    if (f->kind != FAIL_VERIFY)
        return;
    if (ours && s->lba != f->lba) {
        f->verdict = "misdirected write";
        snprintf(f->diagnosis, sizeof f->diagnosis, "LBA %" PRIu64 " holds "
                 "the block generation %" PRIu64 " wrote for LBA %" PRIu64,
                 f->lba, s->generation, s->lba);
    } else if (f->expected == STG_ZEROS) {
        f->verdict = "unmapped block not zeros";
        snprintf(f->diagnosis, sizeof f->diagnosis, "LBA %" PRIu64 " was "
                 "unmapped and should read as zeros (%s)", f->lba,
                 run->geo.unmap_rule);
    } else if (ours && s->kind == SEEN_CORRUPT &&
               s->generation == f->expected) {
        f->verdict = "torn block";
        snprintf(f->diagnosis, sizeof f->diagnosis, "LBA %" PRIu64 " holds "
                 "generation %" PRIu64 " up to byte %u, other data after",
                 f->lba, s->generation, s->bad_offset);
    } else if (f->expected >= STG_FIRST_GENERATION) {
        diagnose_generation(run, f);
    } else {
        f->verdict = "wrong data";
    }
}
