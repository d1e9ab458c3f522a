/*
 * memunit.h - an in-memory storage device for the in-process tests.
 *
 * Unlike the example ramdisk it records what the core handed it (calls,
 * largest transfer, unmap ranges), can fail chosen LBAs, and can complete
 * ios asynchronously from its own thread, so tests reach every path of the
 * unit core and the SCSI engine.
 */
#ifndef SPD_TEST_MEMUNIT_H
#define SPD_TEST_MEMUNIT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "spd/spd.h"

struct memunit {
    spd_unit *unit;
    uint8_t *data;                 /* block_count * block_length bytes */
    spd_params params;

    /* Behaviour, set before I/O starts. */
    bool async;                    /* answer SPD_PENDING, complete from a thread */
    unsigned async_delay_us;       /* how long the completer waits first */
    int64_t fail_lba;              /* read/write touching it fails (-1: none) */
    int fail_result;               /* what that failure returns (-EIO, SPD_CHECK) */

    /* Observations. */
    atomic_uint reads, writes, flushes, unmaps, extents;
    atomic_uint max_blocks;        /* largest read/write one call was given */
    atomic_uint in_device;         /* calls running right now */
    atomic_uint max_in_device;     /* most calls seen running at once */
    atomic_bool saw_fua;
    atomic_uint unmapped_blocks;

    /* The async completer. */
    pthread_t completer;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct memunit_pending *pending;
    bool stopping;
};

/* Default parameters for a test unit: 1024 blocks of block_length, cache
 * and unmap (reads zero) supported, a fixed UUID derived from seed. */
spd_params memunit_params(uint32_t block_length, uint64_t blocks, uint8_t seed);

/* Create the device and its unit (ops flags as given). NULL on failure. */
struct memunit *memunit_create(const spd_params *params, uint32_t ops_flags);
void memunit_destroy(struct memunit *m);

/* Run one block request synchronously. */
spd_status memunit_io(struct memunit *m, spd_op op, uint64_t lba,
                      uint64_t blocks, void *buf, bool fua);

/* Run a CDB synchronously; data is data-out or the data-in space. */
int memunit_cdb(struct memunit *m, const uint8_t *cdb, uint8_t cdb_len,
                void *data, uint32_t data_len, spd_scsi_cmd *out);

#endif
