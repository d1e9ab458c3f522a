/*
 * spd-ramdisk - a disk held in memory, sparse: the simplest complete Spd
 * device, and the one to copy when writing a new one.
 *
 * The disk is cut into 64 KiB pages, allocated on the first write that
 * touches them; a page never written reads as zeros, and UNMAP gives whole
 * pages back to the allocator. So a 1 TiB ramdisk costs only what is
 * written to it, and thin provisioning (LBPME, LBPRZ) is real.
 *
 * Its callbacks run in parallel (SPD_OPS_PARALLEL): pages are published
 * with a compare-and-swap, so two writers racing for a new page agree on
 * one, and a read-write lock keeps UNMAP, which frees pages, apart from
 * reads and writes that may be using them. They never wait for anything
 * but that lock (SPD_OPS_NONBLOCKING): reads and writes of up to 64 KiB
 * run on the export's own thread, larger ones on two dispatcher threads,
 * where their copies overlap the export's own work. Reads and writes lend
 * the pages (read_lend, write_lend) instead of copying to or from a
 * buffer.
 *
 * This file is only the storage. The command line, the exports, signals
 * and the self-check come from spd_main() (spd/cli.h), which calls
 * ramdisk_open() once it knows the size; examples/minimal.c is the same
 * idea in 20 lines, without the sparse pages.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spd/cli.h"

#define PAGE_BYTES   (64 * 1024)          /* >= the largest block length */
#define DEFAULT_SIZE (64ull * 1024 * 1024)

struct ramdisk {
    uint32_t block_length;
    uint32_t blocks_per_page;
    uint64_t page_count;
    _Atomic(uint8_t *) *pages;            /* NULL: never written, zeros */
    atomic_uint_fast64_t pages_allocated;
    /* Held shared by read and write, exclusive by unmap (it frees). */
    pthread_rwlock_t free_lock;
};

/* The part of a request that falls in one page. */
struct span {
    uint64_t page;
    size_t offset, bytes;
};

static struct span span_of(const struct ramdisk *rd, uint64_t lba,
                           uint64_t blocks)
{
    uint64_t first = lba % rd->blocks_per_page;
    uint64_t n = rd->blocks_per_page - first;
    return (struct span){ .page = lba / rd->blocks_per_page,
                          .offset = first * rd->block_length,
                          .bytes = (n < blocks ? n : blocks) * rd->block_length };
}

/* The page, allocated now if it never was. NULL: out of memory. */
static uint8_t *page_get(struct ramdisk *rd, uint64_t index)
{
    uint8_t *page = atomic_load(&rd->pages[index]);
    if (page)
        return page;
    uint8_t *fresh = calloc(1, PAGE_BYTES);
    if (!fresh)
        return NULL;
    if (atomic_compare_exchange_strong(&rd->pages[index], &page, fresh)) {
        atomic_fetch_add(&rd->pages_allocated, 1);
        return fresh;
    }
    free(fresh);          /* another writer won; page holds its pointer */
    return page;
}

/* Pages lent per spd_io_lend() call: a 1 MiB request in one. */
#define LEND_PIECES 32

/* Reads and writes lend the pages themselves (spd_ops.read_lend,
 * write_lend): libspd or the export copies between there and where the
 * data is (ublk's kernel: its request), so the data is copied once. A
 * read lends zeros for a page never written; a write allocates it. */
static int ramdisk_lend(struct ramdisk *rd, spd_io *io, uint64_t lba,
                        uint32_t blocks, bool write)
{
    static const uint8_t zeros[PAGE_BYTES];
    struct iovec iov[LEND_PIECES];
    unsigned n = 0;
    int r = SPD_OK;
    pthread_rwlock_rdlock(&rd->free_lock);   /* no page freed meanwhile */
    while (blocks && r == SPD_OK) {
        struct span s = span_of(rd, lba, blocks);
        uint8_t *page = write ? page_get(rd, s.page)
                              : atomic_load(&rd->pages[s.page]);
        if (!page && write) {
            r = -ENOSPC;  /* a thin disk out of space: SPACE ALLOCATION FAILED */
            break;
        }
        iov[n++] = (struct iovec){ page ? page + s.offset : (void *)zeros,
                                   s.bytes };
        lba += s.bytes / rd->block_length;
        blocks -= (uint32_t)(s.bytes / rd->block_length);
        if (n == LEND_PIECES || !blocks) {
            r = spd_io_lend(io, iov, n);
            n = 0;
        }
    }
    pthread_rwlock_unlock(&rd->free_lock);
    return r;
}

static int ramdisk_read_lend(void *ctx, spd_io *io, uint64_t lba,
                             uint32_t blocks)
{
    return ramdisk_lend(ctx, io, lba, blocks, false);
}

static int ramdisk_write_lend(void *ctx, spd_io *io, uint64_t lba,
                              uint32_t blocks)
{
    return ramdisk_lend(ctx, io, lba, blocks, true);
}

static bool all_zero(const uint8_t *p, size_t len)
{
    return !p[0] && !memcmp(p, p + 1, len - 1);
}

/* Zero part of a page; free it when that leaves nothing but zeros. */
static void page_unmap(struct ramdisk *rd, const struct span *s)
{
    uint8_t *page = atomic_load(&rd->pages[s->page]);
    if (!page)
        return;
    memset(page + s->offset, 0, s->bytes);
    if (s->bytes == PAGE_BYTES || all_zero(page, PAGE_BYTES)) {
        atomic_store(&rd->pages[s->page], NULL);
        atomic_fetch_sub(&rd->pages_allocated, 1);
        free(page);
    }
}

static int ramdisk_unmap(void *ctx, spd_io *io, const spd_unmap_desc *descs,
                         uint32_t count)
{
    struct ramdisk *rd = ctx;
    pthread_rwlock_wrlock(&rd->free_lock);
    for (uint32_t i = 0; i < count; i++) {
        uint64_t lba = descs[i].lba, blocks = descs[i].blocks;
        while (blocks) {
            struct span s = span_of(rd, lba, blocks);
            page_unmap(rd, &s);
            lba += s.bytes / rd->block_length;
            blocks -= s.bytes / rd->block_length;
        }
    }
    pthread_rwlock_unlock(&rd->free_lock);
    return SPD_OK;
}

/* Allocation status for NBD block status: a block is mapped when its page
 * is. Only pointers are read, so this needs no lock. */
static int64_t ramdisk_extent(void *ctx, uint64_t lba, uint32_t blocks,
                              bool *mapped)
{
    struct ramdisk *rd = ctx;
    uint64_t page = lba / rd->blocks_per_page;
    *mapped = atomic_load(&rd->pages[page]) != NULL;
    uint64_t same = rd->blocks_per_page - lba % rd->blocks_per_page;
    while (same < blocks && ++page < rd->page_count &&
           (atomic_load(&rd->pages[page]) != NULL) == *mapped)
        same += rd->blocks_per_page;
    return (int64_t)(same < blocks ? same : blocks);
}

static const spd_ops ramdisk_ops = {
    SPD_OPS_INIT,
    .flags = SPD_OPS_PARALLEL | SPD_OPS_NONBLOCKING,
    .read_lend = ramdisk_read_lend,
    .write_lend = ramdisk_write_lend,
    .unmap = ramdisk_unmap,      /* no flush: memory has no cache to empty */
    .extent = ramdisk_extent,
};

/* spd_main() calls this once the command line is read: the geometry is
 * known, so the page table can be sized. */
static int ramdisk_open(void *ctx, spd_params *params, unsigned given)
{
    struct ramdisk *rd = ctx;
    rd->block_length = params->block_length;
    rd->blocks_per_page = PAGE_BYTES / params->block_length;
    rd->page_count = (params->block_count + rd->blocks_per_page - 1) /
                     rd->blocks_per_page;
    rd->pages = calloc(rd->page_count, sizeof *rd->pages);
    if (!rd->pages) {
        fprintf(stderr, "spd-ramdisk: out of memory for the page table\n");
        return SPD_EXIT_FAILURE;
    }
    /* Writer first: a stream of reads must not keep UNMAP waiting. */
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr,
                                  PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&rd->free_lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    return 0;
}

/* After the unit is gone: give the memory back. */
static void ramdisk_close(void *ctx, bool served)
{
    struct ramdisk *rd = ctx;
    for (uint64_t i = 0; i < rd->page_count; i++)
        free(atomic_load(&rd->pages[i]));
    free(rd->pages);
    pthread_rwlock_destroy(&rd->free_lock);
}

/* After --check, and on exit with --debug: what the disk costs. */
static void ramdisk_report(void *ctx, FILE *out)
{
    struct ramdisk *rd = ctx;
    char used[32], whole[32];
    uint64_t pages = atomic_load(&rd->pages_allocated);
    spd_format_size(pages * PAGE_BYTES, used, sizeof used);
    spd_format_size(rd->page_count * PAGE_BYTES, whole, sizeof whole);
    fprintf(out, "spd-ramdisk: %s of memory allocated (%llu of %llu pages of "
            "64 KiB, %s)\n", used, (unsigned long long)pages,
            (unsigned long long)rd->page_count, whole);
}

/* The whole program: spd_main() reads every option (--size, --nbd, --fuse,
 * --iscsi, --check, ...), calls ramdisk_open(), serves the unit until a
 * signal says stop, and calls ramdisk_close(). */
int main(int argc, char **argv)
{
    static struct ramdisk rd;
    const spd_device device = {
        SPD_DEVICE_INIT,
        .name = "spd-ramdisk",
        .summary = "Serve a disk held in memory, allocated as it is written.",
        .ops = &ramdisk_ops,
        .ctx = &rd,
        .default_size = DEFAULT_SIZE,
        .size_help = "64M",
        .default_threads = 2,       /* for the large requests only */
        .open = ramdisk_open,
        .report = ramdisk_report,
        .close = ramdisk_close,
    };
    return spd_main(argc, argv, &device);
}
