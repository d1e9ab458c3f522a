/* memunit.c - see memunit.h. */
#include "memunit.h"

#include "spd/scsi.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct memunit_pending {
    struct memunit_pending *next;
    spd_io *io;
    int result;
};

void memunit_require(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "memunit: check failed: %s\n", what);
        abort();
    }
}

static bool recording(const struct memunit *m)
{
    return !(m->modes & MEMUNIT_FAST);
}

static bool checking(const struct memunit *m)
{
    return m->modes & MEMUNIT_CHECKING;
}

/* In checking mode: [lba, lba + blocks) lies inside the unit. */
static void check_range(const struct memunit *m, uint64_t lba,
                        uint64_t blocks, const char *op)
{
    uint64_t count = m->params.block_count;
    if (!checking(m) || (lba < count && blocks <= count - lba))
        return;
    fprintf(stderr, "memunit: %s of lba %llu, %llu blocks, on a unit of "
            "%llu blocks\n", op, (unsigned long long)lba,
            (unsigned long long)blocks, (unsigned long long)count);
    memunit_require(false, "device call inside the unit");
}

/* In checking mode: a read or write the core may hand a device. */
static void check_rw(const struct memunit *m, const void *buf, uint64_t lba,
                     uint32_t blocks, bool write)
{
    if (!checking(m))
        return;
    check_range(m, lba, blocks, write ? "write" : "read");
    memunit_require(blocks > 0 && buf != NULL, "a read or write of something");
    if (blocks > m->limit_blocks)
        fprintf(stderr, "memunit: %u blocks in one call, at most %u\n",
                blocks, m->limit_blocks);
    memunit_require(blocks <= m->limit_blocks,
                    "at most max_transfer_length in one call");
    if (write)
        memunit_require(!m->params.write_protected,
                        "no write to a write-protected unit");
}

/* The injected failure, when the range touches fail_lba. */
static int fault(struct memunit *m, spd_io *io, uint64_t lba, uint32_t blocks,
                 bool write)
{
    if (m->fail_lba < 0 || (uint64_t)m->fail_lba < lba ||
        (uint64_t)m->fail_lba - lba >= blocks)
        return SPD_OK;
    if (m->fail_result == SPD_CHECK)
        return spd_io_set_sense(io, SPD_KEY_MEDIUM_ERROR,
            SPD_ASC(write ? SPD_ASC_WRITE_ERROR : SPD_ASC_UNRECOVERED_READ_ERROR),
            SPD_ASCQ(write ? SPD_ASC_WRITE_ERROR : SPD_ASC_UNRECOVERED_READ_ERROR),
            true, (uint64_t)m->fail_lba);
    return m->fail_result;
}

static void note_max(atomic_uint *max, unsigned value)
{
    unsigned seen = atomic_load(max);
    while (value > seen && !atomic_compare_exchange_weak(max, &seen, value))
        ;
}

/* Record a call and linger, unless fast. */
static void enter(struct memunit *m, atomic_uint *calls)
{
    if (!recording(m))
        return;
    note_max(&m->max_in_device, atomic_fetch_add(&m->in_device, 1) + 1);
    atomic_fetch_add(calls, 1);
    /* Linger a little so concurrent calls overlap visibly. */
    struct timespec ts = { 0, 200000 };
    nanosleep(&ts, NULL);
}

/* Record a read or write call, unless fast. */
static void enter_rw(struct memunit *m, atomic_uint *calls, uint32_t blocks,
                     bool fua)
{
    enter(m, calls);
    if (!recording(m))
        return;
    note_max(&m->max_blocks, blocks);
    if (fua)
        atomic_store(&m->saw_fua, true);
}

static void *completer(void *arg);

/* Hand the result to the completer thread, or return it now. */
static int finish(struct memunit *m, spd_io *io, int result)
{
    if (recording(m))
        atomic_fetch_sub(&m->in_device, 1);
    if (!m->async)
        return result;
    struct memunit_pending *p = malloc(sizeof *p);
    if (!p)
        return -ENOMEM;
    p->io = io;
    p->result = result;
    pthread_mutex_lock(&m->lock);
    if (!m->completer_started) {
        memunit_require(pthread_create(&m->completer, NULL, completer, m) == 0,
                        "completer thread started");
        m->completer_started = true;
    }
    p->next = m->pending;
    m->pending = p;
    pthread_cond_signal(&m->cond);
    pthread_mutex_unlock(&m->lock);
    return SPD_PENDING;
}

/* One block of the sparse content (64-byte runs of one value). */
static void sparse_block(uint8_t *p, uint64_t lba, uint32_t block_length)
{
    for (uint32_t i = 0; i < block_length; i += 64)
        memset(p + i, memunit_sparse_byte(lba, i), 64);
}

static void set_mapped(struct memunit *m, uint64_t lba, uint64_t blocks,
                       bool mapped)
{
    if (m->mapped)
        memset(m->mapped + lba, mapped, blocks);
}

static int mem_read(void *ctx, spd_io *io, void *buf, uint64_t lba,
                    uint32_t blocks, bool fua)
{
    struct memunit *m = ctx;
    check_rw(m, buf, lba, blocks, false);
    enter_rw(m, &m->reads, blocks, fua);
    int r = fault(m, io, lba, blocks, false);
    size_t bl = m->params.block_length;
    if (r == SPD_OK && m->data) {
        memcpy(buf, m->data + lba * bl, (size_t)blocks * bl);
    } else if (r == SPD_OK) {
        for (uint32_t b = 0; b < blocks; b++)
            sparse_block((uint8_t *)buf + b * bl, lba + b, (uint32_t)bl);
    }
    return finish(m, io, r);
}

static int mem_write(void *ctx, spd_io *io, const void *buf, uint64_t lba,
                     uint32_t blocks, bool fua)
{
    struct memunit *m = ctx;
    check_rw(m, buf, lba, blocks, true);
    enter_rw(m, &m->writes, blocks, fua);
    int r = fault(m, io, lba, blocks, true);
    size_t bl = m->params.block_length;
    if (r == SPD_OK && m->data) {
        memcpy(m->data + lba * bl, buf, (size_t)blocks * bl);
        set_mapped(m, lba, blocks, true);
    } else if (r == SPD_OK) {
        /* Nothing is kept; touch both ends so ASan sees a short buffer. */
        const volatile uint8_t *p = buf;
        (void)p[0];
        (void)p[(size_t)blocks * bl - 1];
    }
    return finish(m, io, r);
}

static int mem_flush(void *ctx, spd_io *io, uint64_t lba, uint32_t blocks)
{
    struct memunit *m = ctx;
    check_range(m, lba, blocks, "flush");
    enter(m, &m->flushes);
    return finish(m, io, SPD_OK);
}

static int mem_unmap(void *ctx, spd_io *io, const spd_unmap_desc *descs,
                     uint32_t count)
{
    struct memunit *m = ctx;
    if (checking(m)) {
        memunit_require(m->params.unmap_supported,
                        "no unmap without unmap_supported");
        memunit_require(!m->params.write_protected,
                        "no unmap on a write-protected unit");
        memunit_require(count > 0 && descs != NULL, "an unmap of something");
    }
    enter(m, &m->unmaps);
    size_t bl = m->params.block_length;
    for (uint32_t i = 0; i < count; i++) {
        check_range(m, descs[i].lba, descs[i].blocks, "unmap");
        if (m->data)
            memset(m->data + descs[i].lba * bl, 0, (size_t)descs[i].blocks * bl);
        set_mapped(m, descs[i].lba, descs[i].blocks, false);
        if (recording(m))
            atomic_fetch_add(&m->unmapped_blocks, descs[i].blocks);
    }
    return finish(m, io, SPD_OK);
}

/* MEMUNIT_EXTENT: a block is mapped until unmapped; runs also end at every
 * 16th block, as a device may answer. Without memory every block is
 * mapped. */
static int64_t tracked_run(const struct memunit *m, uint64_t lba,
                           uint32_t blocks, bool *mapped)
{
    uint32_t run = 1;
    while (run < blocks && (lba + run) % 16 &&
           (!m->mapped || m->mapped[lba + run] == m->mapped[lba]))
        run++;
    *mapped = !m->mapped || m->mapped[lba];
    return run;
}

static bool block_zero(const struct memunit *m, uint64_t lba)
{
    size_t bl = m->params.block_length;
    const uint8_t *b = m->data + lba * bl;
    return b[0] == 0 && !memcmp(b, b + 1, bl - 1);
}

/* Otherwise what the memory shows: a block of zeros counts as unmapped. */
static int64_t zero_run(const struct memunit *m, uint64_t lba,
                        uint32_t blocks, bool *mapped)
{
    *mapped = !m->data || !block_zero(m, lba);
    uint32_t run = 1;
    while (run < blocks && (!m->data || !block_zero(m, lba + run) == *mapped))
        run++;
    return run;
}

static int64_t mem_extent(void *ctx, uint64_t lba, uint32_t blocks,
                          bool *mapped)
{
    struct memunit *m = ctx;
    check_range(m, lba, blocks, "extent");
    if (checking(m))
        memunit_require(blocks > 0, "an extent query of something");
    if ((m->modes & MEMUNIT_EXTENT) && m->fail_lba >= 0 &&
        (uint64_t)m->fail_lba == lba)
        return m->fail_result < 0 ? m->fail_result : -EIO;
    /* Counted among the calls in the device like the others. */
    enter(m, &m->extents);
    int64_t run = m->modes & MEMUNIT_EXTENT ? tracked_run(m, lba, blocks, mapped)
                                            : zero_run(m, lba, blocks, mapped);
    if (recording(m))
        atomic_fetch_sub(&m->in_device, 1);
    return run;
}

static void *completer(void *arg)
{
    struct memunit *m = arg;
    pthread_mutex_lock(&m->lock);
    for (;;) {
        while (!m->pending && !m->stopping)
            pthread_cond_wait(&m->cond, &m->lock);
        if (!m->pending)
            break;
        struct memunit_pending *p = m->pending;
        m->pending = p->next;
        pthread_mutex_unlock(&m->lock);
        if (m->async_delay_us)
            usleep(m->async_delay_us);
        spd_io_complete(p->io, p->result);
        free(p);
        pthread_mutex_lock(&m->lock);
    }
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

spd_params memunit_params(uint32_t block_length, uint64_t blocks, uint8_t seed)
{
    spd_params p = { SPD_PARAMS_INIT,
        .block_count = blocks,
        .block_length = block_length,
        .product_id = "memunit",
        .product_revision = "1.0",
        .cache_supported = true,
        .unmap_supported = true,
        .unmap_reads_zero = true,
    };
    for (int i = 0; i < 16; i++)
        p.uuid[i] = (uint8_t)(seed + i * 17 + 1);
    return p;
}

static void free_memunit(struct memunit *m)
{
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->cond);
    free(m->mapped);
    free(m->data);
    free(m);
}

struct memunit *memunit_create_modes(const spd_params *params,
                                     uint32_t ops_flags, unsigned modes)
{
    spd_ops ops = {
        SPD_OPS_INIT,
        .flags = ops_flags,
        .read = mem_read,
        .write = mem_write,
        .flush = mem_flush,
        .unmap = mem_unmap,
        .extent = mem_extent,
    };
    struct memunit *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->params = *params;
    m->modes = modes;
    m->fail_lba = -1;
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->cond, NULL);
    bool ok = true;
    if (!(modes & MEMUNIT_SPARSE)) {
        m->data = calloc(params->block_count, params->block_length);
        ok = m->data != NULL;
        if (ok && (modes & MEMUNIT_EXTENT)) {
            m->mapped = malloc(params->block_count);
            ok = m->mapped != NULL;
            if (ok)
                memset(m->mapped, 1, params->block_count);
        }
    }
    m->unit = ok ? spd_unit_create(params, &ops, m) : NULL;
    if (!m->unit) {
        free_memunit(m);
        return NULL;
    }
    m->limit_blocks = spd_unit_params(m->unit)->max_transfer_length /
                      params->block_length;
    return m;
}

struct memunit *memunit_create(const spd_params *params, uint32_t ops_flags)
{
    return memunit_create_modes(params, ops_flags, 0);
}

void memunit_destroy(struct memunit *m)
{
    spd_unit_shutdown(m->unit);
    /* Pending ios must still complete for the wait to end. */
    spd_unit_wait(m->unit);
    pthread_mutex_lock(&m->lock);
    m->stopping = true;
    pthread_cond_signal(&m->cond);
    bool joined = m->completer_started;
    pthread_mutex_unlock(&m->lock);
    if (joined)
        pthread_join(m->completer, NULL);
    spd_unit_destroy(m->unit);
    free_memunit(m);
}

spd_status memunit_io(struct memunit *m, spd_op op, uint64_t lba,
                      uint64_t blocks, void *buf, bool fua)
{
    spd_request req = { SPD_REQUEST_INIT,
        .op = op, .lba = lba, .blocks = blocks, .buf = buf, .fua = fua,
    };
    return spd_unit_run(m->unit, &req);
}

int memunit_cdb(struct memunit *m, const uint8_t *cdb, uint8_t cdb_len,
                void *data, uint32_t data_len, spd_scsi_cmd *out)
{
    memset(out, 0, sizeof *out);
    out->size = sizeof *out;
    memcpy(out->cdb, cdb, cdb_len);
    out->cdb_len = cdb_len;
    out->data = data;
    out->data_len = data_len;
    return spd_unit_scsi_run(m->unit, out);
}

void memunit_fill(struct memunit *m)
{
    uint32_t bl = m->params.block_length;
    for (uint64_t b = 0; m->data && b < m->params.block_count; b++)
        sparse_block(m->data + b * bl, b, bl);
}
