/*
 * byteio.h - holds on block ranges for writes that must not race a
 * read-modify-write of the same blocks (byteio.c). Transports whose
 * clients address bytes (spd_unit_pread() and friends) take one around
 * each whole-block write they submit asynchronously.
 */
#ifndef SPD_BYTEIO_H
#define SPD_BYTEIO_H

#include <stdbool.h>
#include <stdint.h>

#include "spd/spd.h"

/* Blocks [lba, end) held by one write; the holder's storage. */
struct byteio_hold {
    struct byteio_hold *next;
    uint64_t lba, end;
    bool exclusive;     /* a read-modify-write: no other write may overlap */
};

/* Hold blocks [lba, lba + blocks) of unit for a write: waits while an
 * earlier hold conflicts with it (an exclusive one conflicts with any
 * overlap, a shared one only with an exclusive one); first come, first
 * served. */
void byteio_hold(spd_unit *unit, struct byteio_hold *h, uint64_t lba,
                 uint64_t blocks, bool exclusive);

/* Give the hold back, from any thread (a write's completion). */
void byteio_release(spd_unit *unit, struct byteio_hold *h);

#endif
