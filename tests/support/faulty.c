/*
 * faulty - a RAM disk that breaks its promises on purpose, for the tests
 * of spd-stgtest: each mode commits one kind of corruption, once in every
 * N operations it applies to, and answers success all the same.
 *
 *   --fault drop       a write is not done
 *   --fault misdirect  a write lands on the blocks just after its own
 *   --fault stale      a read returns what the blocks held before their
 *                      last write
 *   --fault torn       a write of several blocks does only its first half
 *   --fault unmap      an unmap is not done, though unmapped blocks are
 *                      said to read as zeros (LBPRZ)
 *   --every N          how often (50)
 *
 * The device's calls run one at a time (no SPD_OPS_PARALLEL), so the
 * counting is exact and a run with one connection is repeatable. On exit
 * it says how many faults it committed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spd/cli.h"

enum fault { FAULT_NONE, FAULT_DROP, FAULT_MISDIRECT, FAULT_STALE,
             FAULT_TORN, FAULT_UNMAP };

static const char *const fault_names[] = {
    [FAULT_NONE] = "none", [FAULT_DROP] = "drop",
    [FAULT_MISDIRECT] = "misdirect", [FAULT_STALE] = "stale",
    [FAULT_TORN] = "torn", [FAULT_UNMAP] = "unmap",
};

struct faulty {
    enum fault fault;
    unsigned every;
    uint64_t due;               /* operations counted toward the next fault */
    uint64_t committed;
    uint32_t block_length;
    uint64_t block_count;
    uint8_t *data;
    uint8_t *before;            /* stale: each block before its last write */
};

static uint8_t *at(struct faulty *f, uint8_t *base, uint64_t lba)
{
    return base + lba * f->block_length;
}

/* Count an operation the fault applies to: true when this one is hit. */
static bool hit(struct faulty *f, enum fault fault)
{
    if (f->fault != fault || ++f->due < f->every)
        return false;
    f->due = 0;
    f->committed++;
    return true;
}

static int faulty_read(void *ctx, spd_io *io, void *buf, uint64_t lba,
                       uint32_t blocks, bool fua)
{
    struct faulty *f = ctx;
    size_t bytes = (size_t)blocks * f->block_length;
    bool changed = f->before &&
                   memcmp(at(f, f->before, lba), at(f, f->data, lba), bytes);
    /* Only a read that can show old data counts toward the fault. */
    if (changed && hit(f, FAULT_STALE))
        memcpy(buf, at(f, f->before, lba), bytes);
    else
        memcpy(buf, at(f, f->data, lba), bytes);
    return SPD_OK;
}

static int faulty_write(void *ctx, spd_io *io, const void *buf, uint64_t lba,
                        uint32_t blocks, bool fua)
{
    struct faulty *f = ctx;
    if (hit(f, FAULT_DROP))
        return SPD_OK;
    if (blocks > 1 && hit(f, FAULT_TORN))
        blocks /= 2;
    if (hit(f, FAULT_MISDIRECT))
        lba = (lba + blocks) % (f->block_count - blocks + 1);
    size_t bytes = (size_t)blocks * f->block_length;
    if (f->before)
        memcpy(at(f, f->before, lba), at(f, f->data, lba), bytes);
    memcpy(at(f, f->data, lba), buf, bytes);
    return SPD_OK;
}

static int faulty_unmap(void *ctx, spd_io *io, const spd_unmap_desc *descs,
                        uint32_t count)
{
    struct faulty *f = ctx;
    for (uint32_t i = 0; i < count; i++) {
        if (hit(f, FAULT_UNMAP))
            continue;
        size_t bytes = (size_t)descs[i].blocks * f->block_length;
        if (f->before)
            memcpy(at(f, f->before, descs[i].lba),
                   at(f, f->data, descs[i].lba), bytes);
        memset(at(f, f->data, descs[i].lba), 0, bytes);
    }
    return SPD_OK;
}

static const spd_ops faulty_ops = {
    SPD_OPS_INIT,
    .read = faulty_read,
    .write = faulty_write,
    .unmap = faulty_unmap,
};

static const spd_device_option faulty_options[] = {
    { "fault", 0, "MODE", "the fault: drop, misdirect, stale, torn, unmap "
      "or none (none)" },
    { "every", 0, "N", "commit it once in N operations (50)" },
};

static int faulty_take(void *ctx, unsigned index, const char *arg)
{
    struct faulty *f = ctx;
    if (index == 0) {
        for (unsigned i = 0; i < sizeof fault_names / sizeof *fault_names; i++)
            if (!strcmp(arg, fault_names[i])) {
                f->fault = (enum fault)i;
                return 0;
            }
        fprintf(stderr, "faulty: bad --fault '%s'\n", arg);
        return SPD_EXIT_USAGE;
    }
    char *end;
    unsigned long n = strtoul(arg, &end, 10);
    if (*end || n < 1 || n > 1000000) {
        fprintf(stderr, "faulty: bad --every '%s'\n", arg);
        return SPD_EXIT_USAGE;
    }
    f->every = (unsigned)n;
    return 0;
}

static int faulty_open(void *ctx, spd_params *params, unsigned given)
{
    struct faulty *f = ctx;
    f->block_length = params->block_length;
    f->block_count = params->block_count;
    size_t bytes = (size_t)(f->block_count * f->block_length);
    f->data = calloc(1, bytes);
    if (f->fault == FAULT_STALE)
        f->before = calloc(1, bytes);
    if (!f->data || (f->fault == FAULT_STALE && !f->before)) {
        fprintf(stderr, "faulty: out of memory\n");
        return SPD_EXIT_FAILURE;
    }
    return 0;
}

static void faulty_close(void *ctx, bool served)
{
    struct faulty *f = ctx;
    fprintf(stderr, "faulty: %llu faults of kind %s committed\n",
            (unsigned long long)f->committed, fault_names[f->fault]);
    free(f->data);
    free(f->before);
}

int main(int argc, char **argv)
{
    static struct faulty f = { .every = 50 };
    const spd_device device = {
        SPD_DEVICE_INIT,
        .name = "faulty",
        .summary = "A RAM disk that corrupts data on purpose, for tests.",
        .ops = &faulty_ops,
        .ctx = &f,
        .default_size = 16 << 20,
        .size_help = "16M",
        .options = faulty_options,
        .option_count = sizeof faulty_options / sizeof *faulty_options,
        .take = faulty_take,
        .open = faulty_open,
        .close = faulty_close,
    };
    return spd_main(argc, argv, &device);
}
