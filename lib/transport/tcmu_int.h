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
 * Create and enable the backstore NAME (its folder into dir) with LIO's
 * unit serial number serial (the engine's: LIO names its reservations'
 * file after it), or find one left by a process that died: then
 * *existed is set, and its geometry must be geo's (-EINVAL otherwise).
 * 0 or -errno with a message.
 */
int tcmu_backstore_create(const char *name, const struct tcmu_geometry *geo,
                          const char *serial, char *dir, size_t dir_len,
                          bool *existed);

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

/* The kernel's TCMU events, from the generic netlink family TCM-USER
 * (tcmu_netlink.c). */
struct tcmu_nl {
    int fd;                  /* -1: none */
    uint16_t family;
};

enum tcmu_nl_what { TCMU_NL_NONE, TCMU_NL_SIZE, TCMU_NL_CONFIG,
                    TCMU_NL_WRITE_CACHE };

struct tcmu_nl_event {
    int cmd;                 /* TCMU_CMD_ADDED_DEVICE, _REMOVED_, _RECONFIG_ */
    int32_t minor;           /* the device's /dev/uioN, -1 if unsaid */
    enum tcmu_nl_what what;  /* what a reconfiguration changes */
    uint64_t dev_size;       /* TCMU_NL_SIZE: the new size in bytes */
    char config[256];        /* TCMU_NL_CONFIG: the new dev_config */
};

typedef void (*tcmu_nl_handler)(void *arg, const struct tcmu_nl_event *ev);

/* Join the family's "config" group: 0 or -errno with a message. */
int tcmu_nl_open(struct tcmu_nl *nl);
void tcmu_nl_close(struct tcmu_nl *nl);

/* Read what arrived, without waiting: each device event (from the kernel
 * only) through fn. 1 when something was read, 0 when nothing was
 * there, or -errno (ENOBUFS: events were lost). */
int tcmu_nl_read(struct tcmu_nl *nl, tcmu_nl_handler fn, void *arg);

/* Write value back to the backstore's attribute attrib/ATTR once it
 * reads seen, the value the kernel took and Spd refuses: 0 or -errno with
 * a message. */
int tcmu_attr_restore(const char *dir, const char *attr, const char *seen,
                      const char *value);

#endif
