/*
 * memunit.h - the in-memory storage device of Spd's tests: the unit tests,
 * the fuzz targets and the test servers (iscsi_serve, fuse_serve) all
 * serve it.
 *
 * By default it records what the core handed it (calls, largest transfer,
 * unmap ranges) and lingers a little in each call so that concurrent calls
 * overlap; it can fail chosen LBAs and complete ios asynchronously from its
 * own thread, so tests reach every path of the unit core and the SCSI
 * engine. Modes chosen at creation (MEMUNIT_*) make it a device to measure
 * (fast), a judge of the core (checking), or a unit larger than memory
 * (sparse).
 */
#ifndef SPD_TEST_MEMUNIT_H
#define SPD_TEST_MEMUNIT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "spd/spd.h"

/* Modes, for memunit_create_modes(). */
/* No recording and no lingering: plain memcpy, fit for a benchmark. */
#define MEMUNIT_FAST     0x1u
/* Abort (memunit_require) when the core breaks a promise of spd.h: a call
 * outside the unit or longer than the max transfer length, a write or
 * unmap on a write-protected unit, an unmap without unmap_supported. */
#define MEMUNIT_CHECKING 0x2u
/* No memory: a read returns memunit_sparse_byte() for every byte, writes
 * are dropped (their buffers still touched end to end), unmaps change
 * nothing. For units too large to hold. */
#define MEMUNIT_SPARSE   0x4u
/* Allocation status (spd_ops.extent) by tracking: a block is mapped until
 * unmapped, mapped again when written; runs also end at every 16th block,
 * as a device may answer. Fails with fail_result (or -EIO) when the query
 * starts at fail_lba. Without this mode a block of zeros counts as
 * unmapped. */
#define MEMUNIT_EXTENT   0x8u

struct memunit {
    spd_unit *unit;
    uint8_t *data;                 /* block_count * block_length bytes, or
                                    * NULL (MEMUNIT_SPARSE) */
    spd_params params;
    unsigned modes;                /* MEMUNIT_* */

    /* Behaviour, set before I/O starts. */
    bool async;                    /* answer SPD_PENDING, complete from a thread */
    unsigned async_delay_us;       /* how long the completer waits first */
    int64_t fail_lba;              /* read/write touching it fails (-1: none) */
    int fail_result;               /* what that failure returns (-EIO, SPD_CHECK) */

    /* Observations (none in MEMUNIT_FAST). */
    atomic_uint reads, writes, flushes, unmaps, extents;
    atomic_uint max_blocks;        /* largest read/write one call was given */
    atomic_uint in_device;         /* calls running right now */
    atomic_uint max_in_device;     /* most calls seen running at once */
    atomic_bool saw_fua;
    atomic_uint unmapped_blocks;

    /* Internal. */
    uint32_t limit_blocks;         /* the most blocks one call may get */
    uint8_t *mapped;               /* MEMUNIT_EXTENT: per block, 0 = unmapped */
    pthread_t completer;           /* the async completer, started lazily */
    bool completer_started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct memunit_pending *pending;
    bool stopping;
};

/* Default parameters for a test unit: blocks of block_length, cache and
 * unmap (reads zero) supported, a fixed UUID derived from seed. */
spd_params memunit_params(uint32_t block_length, uint64_t blocks, uint8_t seed);

/* Create the device (memory zeroed) and its unit (ops flags as given, for
 * example SPD_OPS_PARALLEL). NULL with spd_errmsg() on failure. */
struct memunit *memunit_create(const spd_params *params, uint32_t ops_flags);
/* The same, in the modes given (MEMUNIT_* or'ed; 0 is memunit_create). */
struct memunit *memunit_create_modes(const spd_params *params,
                                     uint32_t ops_flags, unsigned modes);
/* Shut the unit down (pending ios complete first), free everything. */
void memunit_destroy(struct memunit *m);

/* Run one block request synchronously. */
spd_status memunit_io(struct memunit *m, spd_op op, uint64_t lba,
                      uint64_t blocks, void *buf, bool fua);

/* Run a CDB synchronously; data is data-out or the data-in space. */
int memunit_cdb(struct memunit *m, const uint8_t *cdb, uint8_t cdb_len,
                void *data, uint32_t data_len, spd_scsi_cmd *out);

/* The content of byte offset of block lba of a sparse unit. */
static inline uint8_t memunit_sparse_byte(uint64_t lba, uint32_t offset)
{
    return (uint8_t)(lba * 131 + offset / 64 + 7);
}

/* Fill the memory with the sparse content, so reads return more than
 * zeros (nothing to do for a sparse unit). */
void memunit_fill(struct memunit *m);

/* Abort with "memunit: check failed: WHAT" unless ok (never compiled
 * out, unlike assert()): how MEMUNIT_CHECKING reports, and what the fuzz
 * targets use for their own invariants, so libFuzzer and the fuzz driver
 * report a crash with the input that caused it. */
void memunit_require(bool ok, const char *what);

#endif
