/*
 * tcmu_int.h - the TCMU export's configfs and sysfs side (tcmu_config.c):
 * the backstore, its UIO device and the tcm_loop LUN. The ring itself is
 * tcmu.c's.
 */
#ifndef SPD_TCMU_INT_H
#define SPD_TCMU_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TCMU_TARGET   "/sys/kernel/config/target"
#define TCMU_HBA      TCMU_TARGET "/core/user_0"
#define TCMU_LOOP     TCMU_TARGET "/loopback"

/* The geometry a backstore is created with. */
struct tcmu_geometry {
    uint32_t block_length;
    uint64_t block_count;
    uint32_t max_sectors;    /* blocks per command */
};

/*
 * Create and enable the backstore NAME (its folder into dir), or find one
 * left by a process that died: then *existed is set, and its geometry
 * must be geo's (-EINVAL otherwise). 0 or -errno with a message.
 */
int tcmu_backstore_create(const char *name, const struct tcmu_geometry *geo,
                          char *dir, size_t dir_len, bool *existed);

/* Who answers the reservation commands of the backstore at dir: LIO's
 * emulation (lio) or the ring (attrib/pgr_support). 0 or -errno with a
 * message. */
int tcmu_reservations_set(const char *dir, bool lio);

/* Remove the backstore at dir (it fails while a fabric links to it). */
void tcmu_backstore_remove(const char *dir);

/* The backstore's UIO device: its number N (/dev/uioN) and the size of
 * its map 0, waiting a moment for it to appear. 0 or -errno. */
int tcmu_uio_find(const char *name, int *minor, size_t *map_size);

/* Fail what a dead process left in the ring (BUSY, retried), and empty
 * it. 0 or -errno. */
int tcmu_ring_reset(const char *dir);

/* A tcm_loop target with the backstore at dir as LUN 0, named after the
 * backstore; one already there is kept. 0 or -errno with a message. */
int tcmu_loop_create(const char *name, const char *dir);

/* Remove that target: the kernel removes the disk, after its commands. */
void tcmu_loop_remove(const char *name);

/* The tcm_loop disk whose unit serial number (VPD page 80h) is serial:
 * its name into buf. 0, or -ENOENT. */
int tcmu_loop_disk(const char *serial, char *buf, size_t len);

#endif
