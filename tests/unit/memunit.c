/* memunit.c - see memunit.h. */
#include "memunit.h"

#include "spd/scsi.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct memunit_pending {
    struct memunit_pending *next;
    spd_io *io;
    int result;
};

static int memunit_of_ctx_check(struct memunit *m, uint64_t lba, uint32_t blocks)
{
    if (m->fail_lba >= 0 && (uint64_t)m->fail_lba >= lba &&
        (uint64_t)m->fail_lba < lba + blocks)
        return m->fail_result;
    return SPD_OK;
}

static void note_blocks(struct memunit *m, uint32_t blocks)
{
    unsigned seen = atomic_load(&m->max_blocks);
    while (blocks > seen &&
           !atomic_compare_exchange_weak(&m->max_blocks, &seen, blocks))
        ;
}

static void enter(struct memunit *m)
{
    unsigned now = atomic_fetch_add(&m->in_device, 1) + 1;
    unsigned seen = atomic_load(&m->max_in_device);
    while (now > seen &&
           !atomic_compare_exchange_weak(&m->max_in_device, &seen, now))
        ;
    /* Linger a little so concurrent calls overlap visibly. */
    struct timespec ts = { 0, 200000 };
    nanosleep(&ts, NULL);
}

/* Hand the result to the completer thread, or return it now. */
static int finish(struct memunit *m, spd_io *io, int result)
{
    atomic_fetch_sub(&m->in_device, 1);
    if (!m->async)
        return result;
    struct memunit_pending *p = malloc(sizeof *p);
    if (!p)
        return -ENOMEM;
    p->io = io;
    p->result = result;
    pthread_mutex_lock(&m->lock);
    p->next = m->pending;
    m->pending = p;
    pthread_cond_signal(&m->cond);
    pthread_mutex_unlock(&m->lock);
    return SPD_PENDING;
}

static int mem_read(void *ctx, spd_io *io, void *buf, uint64_t lba,
                    uint32_t blocks, bool fua)
{
    struct memunit *m = ctx;
    enter(m);
    atomic_fetch_add(&m->reads, 1);
    note_blocks(m, blocks);
    if (fua)
        atomic_store(&m->saw_fua, true);
    int r = memunit_of_ctx_check(m, lba, blocks);
    if (r == SPD_CHECK)
        spd_io_set_sense(io, SPD_KEY_MEDIUM_ERROR,
                         SPD_ASC(SPD_ASC_UNRECOVERED_READ_ERROR),
                         SPD_ASCQ(SPD_ASC_UNRECOVERED_READ_ERROR), true,
                         (uint64_t)m->fail_lba);
    if (r == SPD_OK) {
        size_t bl = m->params.block_length;
        memcpy(buf, m->data + lba * bl, (size_t)blocks * bl);
    }
    return finish(m, io, r);
}

static int mem_write(void *ctx, spd_io *io, const void *buf, uint64_t lba,
                     uint32_t blocks, bool fua)
{
    struct memunit *m = ctx;
    enter(m);
    atomic_fetch_add(&m->writes, 1);
    note_blocks(m, blocks);
    if (fua)
        atomic_store(&m->saw_fua, true);
    int r = memunit_of_ctx_check(m, lba, blocks);
    if (r == SPD_CHECK)
        spd_io_set_sense(io, SPD_KEY_MEDIUM_ERROR,
                         SPD_ASC(SPD_ASC_WRITE_ERROR),
                         SPD_ASCQ(SPD_ASC_WRITE_ERROR), true,
                         (uint64_t)m->fail_lba);
    if (r == SPD_OK) {
        size_t bl = m->params.block_length;
        memcpy(m->data + lba * bl, buf, (size_t)blocks * bl);
    }
    return finish(m, io, r);
}

static int mem_flush(void *ctx, spd_io *io, uint64_t lba, uint32_t blocks)
{
    struct memunit *m = ctx;
    enter(m);
    atomic_fetch_add(&m->flushes, 1);
    return finish(m, io, SPD_OK);
}

static int mem_unmap(void *ctx, spd_io *io, const spd_unmap_desc *descs,
                     uint32_t count)
{
    struct memunit *m = ctx;
    enter(m);
    atomic_fetch_add(&m->unmaps, 1);
    size_t bl = m->params.block_length;
    for (uint32_t i = 0; i < count; i++) {
        memset(m->data + descs[i].lba * bl, 0, (size_t)descs[i].blocks * bl);
        atomic_fetch_add(&m->unmapped_blocks, descs[i].blocks);
    }
    return finish(m, io, SPD_OK);
}

/* Allocation status: a block of zeros counts as unmapped. Synchronous,
 * but counted among the calls in the device like the others. */
static bool block_zero(const struct memunit *m, uint64_t lba)
{
    size_t bl = m->params.block_length;
    const uint8_t *b = m->data + lba * bl;
    return b[0] == 0 && !memcmp(b, b + 1, bl - 1);
}

static int64_t mem_extent(void *ctx, uint64_t lba, uint32_t blocks,
                          bool *mapped)
{
    struct memunit *m = ctx;
    enter(m);
    atomic_fetch_add(&m->extents, 1);
    *mapped = !block_zero(m, lba);
    uint32_t run = 1;
    while (run < blocks && !block_zero(m, lba + run) == *mapped)
        run++;
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

struct memunit *memunit_create(const spd_params *params, uint32_t ops_flags)
{
    static const spd_ops ops_template = {
        SPD_OPS_INIT,
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
    m->fail_lba = -1;
    m->data = calloc(params->block_count, params->block_length);
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->cond, NULL);
    spd_ops ops = ops_template;
    ops.flags = ops_flags;
    m->unit = m->data ? spd_unit_create(params, &ops, m) : NULL;
    if (!m->unit) {
        free(m->data);
        free(m);
        return NULL;
    }
    pthread_create(&m->completer, NULL, completer, m);
    return m;
}

void memunit_destroy(struct memunit *m)
{
    spd_unit_shutdown(m->unit);
    /* Pending ios must still complete for the wait to end. */
    spd_unit_wait(m->unit);
    pthread_mutex_lock(&m->lock);
    m->stopping = true;
    pthread_cond_signal(&m->cond);
    pthread_mutex_unlock(&m->lock);
    pthread_join(m->completer, NULL);
    spd_unit_destroy(m->unit);
    free(m->data);
    free(m);
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
