/*
 * stgtest.h - the parts of spd-stgtest: targets (a file or block device
 * through io_uring, an NBD URI through libnbd, an iSCSI URL through
 * libiscsi), each driven asynchronously by one thread per connection;
 * the block stamps and the expected-state table that verification reads
 * (verify.c); latency histograms (stats.c); the run (main.c).
 */
#ifndef STGTEST_H
#define STGTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum stg_kind { STG_READ, STG_WRITE, STG_FLUSH, STG_UNMAP, STG_KINDS };

extern const char *const stg_kind_names[STG_KINDS];

/* One request in flight. The target fills error (0 or an errno) and
 * detail (a sense, a libnbd message) and calls stg_complete(). */
struct stg_op {
    enum stg_kind kind;
    uint64_t lba;
    uint32_t blocks;
    uint8_t *buf;               /* blocks * block_size bytes, aligned */
    uint64_t generation;        /* writes: the stamp their blocks carry */
    uint64_t start_ns;
    int error;
    char detail[128];
    void *owner;                /* the thread that issued it */
    uintptr_t target_data;      /* the target's own use */
};

/* What a target is, as its first connection found it. */
struct stg_geometry {
    uint64_t blocks;            /* logical blocks */
    uint32_t block_size;        /* bytes per logical block */
    uint32_t max_transfer;      /* bytes in one request; 0: no limit known */
    uint32_t max_unmap_blocks;  /* blocks in one unmap; 0: no limit known */
    bool can_flush, can_unmap;
    bool unmap_zeroes;          /* unmapped blocks read as zeros */
    const char *unmap_rule;     /* why unmap_zeroes is what it is */
};

/* What the targets are told by the command line. */
struct stg_target_options {
    uint32_t block_size;        /* 0: the target's own */
    bool buffered;              /* files: no O_DIRECT */
    unsigned queue_depth;
};

struct stg_conn;

/* A kind of target. open() makes one connection (one per thread) and, for
 * the first, fills geo; submit() starts an op (0, or -errno when it could
 * not be sent); wait() waits up to timeout_ms for completions and calls
 * stg_complete() for each (0, or -errno when the connection broke). */
struct stg_target {
    const char *name;
    struct stg_conn *(*open)(const char *spec,
                             const struct stg_target_options *opt,
                             struct stg_geometry *geo, char *err, size_t len);
    int (*submit)(struct stg_conn *c, struct stg_op *op);
    int (*wait)(struct stg_conn *c, int timeout_ms);
    void (*close)(struct stg_conn *c);
};

extern const struct stg_target stg_file_target;
extern const struct stg_target stg_nbd_target;
extern const struct stg_target stg_iscsi_target;

/* Called by the targets, on the thread that called wait(). */
void stg_complete(struct stg_op *op);

/* ---- verify.c: stamps ---- */

/* What a block read back holds. */
enum stg_seen_kind {
    SEEN_ZEROS,       /* all zeros */
    SEEN_FOREIGN,     /* no stamp: data of someone else */
    SEEN_STAMP,       /* a stamp whose checksum holds */
    SEEN_CORRUPT,     /* a stamp whose checksum does not: torn or damaged */
};

struct stg_seen {
    enum stg_seen_kind kind;
    uint64_t lba, seed, generation;     /* the stamp's fields */
    uint64_t write_lba;                 /* the write it came from */
    uint32_t write_blocks;
    uint32_t bad_offset;                /* SEEN_CORRUPT: first wrong byte */
};

/* Fill one block with its stamp: LBA, seed, generation, the write it
 * belongs to, a pseudo-random body and a CRC-32C of the whole. */
void stg_stamp(uint8_t *block, uint32_t size, uint64_t seed, uint64_t lba,
               uint64_t generation, uint64_t write_lba,
               uint32_t write_blocks);
void stg_examine(const uint8_t *block, uint32_t size, struct stg_seen *seen);
/* "generation 12 (a write of 8 blocks at LBA 4)", "zeros", ... */
void stg_seen_format(const struct stg_seen *seen, uint64_t seed, char *buf,
                     size_t len);

/* ---- verify.c: the expected state of every block, and range locks ---- */

#define STG_UNKNOWN 0u          /* never written in this run, or unmapped
                                   where unmapped blocks read anything */
#define STG_ZEROS   1u          /* unmapped, reads as zeros */
#define STG_FIRST_GENERATION 2u

struct stg_table;
struct stg_table *stg_table_create(uint64_t blocks);
void stg_table_destroy(struct stg_table *t);
/* Shared (reads) or exclusive (writes, unmaps) hold on a range; false
 * when some block of it is held the other way. */
bool stg_table_try_lock(struct stg_table *t, uint64_t lba, uint32_t n,
                        bool exclusive);
void stg_table_unlock(struct stg_table *t, uint64_t lba, uint32_t n,
                      bool exclusive);
/* Wait at most ms for some unlock. */
void stg_table_wait(struct stg_table *t, int ms);
/* Expected state: read under a hold on the block, set under an
 * exclusive one. */
uint64_t stg_table_get(const struct stg_table *t, uint64_t lba);
void stg_table_set(struct stg_table *t, uint64_t lba, uint32_t n,
                   uint64_t state);

/* Does a block read back match what is expected of it? */
bool stg_matches(uint64_t expected, const struct stg_seen *seen,
                 uint64_t seed, uint64_t lba);

/* ---- stats.c: latency histograms ---- */

#define STG_BUCKETS (64 + 40 * 32)

struct stg_hist {
    uint64_t count, bytes, max_ns;
    uint64_t bucket[STG_BUCKETS];
};

void stg_hist_add(struct stg_hist *h, uint64_t ns, uint64_t bytes);
void stg_hist_merge(struct stg_hist *into, const struct stg_hist *from);
/* The latency at or below which fraction q of the samples fall, in ns. */
uint64_t stg_hist_quantile(const struct stg_hist *h, double q);

uint64_t stg_now_ns(void);

#endif
