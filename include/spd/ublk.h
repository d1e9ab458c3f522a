/*
 * ublk.h - export a storage unit as a local kernel block device,
 * /dev/ublkbN, through the kernel's ublk driver (ublk_drv, Linux 6.5 or
 * later: the ioctl-encoded commands and GET_FEATURES).
 *
 * The kernel hands each block request of /dev/ublkbN to this process
 * through io_uring commands on /dev/ublkcN; the export turns it into a
 * block request of the unit core and commits the result:
 *
 *   kernel op          unit request
 *   READ, WRITE        SPD_OP_READ, SPD_OP_WRITE (FUA kept)
 *   FLUSH              SPD_OP_FLUSH of the whole unit
 *   DISCARD            SPD_OP_UNMAP of the range (only with unmap_supported)
 *   WRITE_ZEROES       SPD_OP_WRITE_ZEROES, SPD_REQ_MAY_UNMAP unless the
 *                      kernel said NOUNMAP (only with unmap_supported)
 *
 * A failed request reaches the kernel as the errno of spd_request_errno()
 * and the block layer reports it as an I/O error.
 *
 * What the disk looks like: the unit's block length as the logical and
 * physical block size (512 to 4096 bytes; ublk takes no larger), its size,
 * requests of up to the unit's max transfer length (at most 1 MiB), a
 * volatile write cache with FUA when the unit has a cache, discard and
 * write-zeroes when it supports unmap, read-only when it is write
 * protected.
 *
 * Threads: one per queue, each with its own io_uring; a request's
 * completion, on whatever thread the unit completes it, goes back to its
 * queue's thread through a lock-free list and an eventfd.
 *
 * When the process dies (SIGKILL, a crash):
 *   - without recovery, the kernel fails the requests in flight and every
 *     later one with an I/O error, and removes /dev/ublkbN; /dev/ublkcN
 *     and the device number stay until a new export with the same id
 *     deletes them (it does so when the process that served them is gone).
 *   - with recovery (UBLK_F_USER_RECOVERY and _REISSUE), /dev/ublkbN stays
 *     and its I/O waits, a mounted file system sees no error; an export
 *     started with the same id and recovery takes the device over and the
 *     requests in flight at the death are sent again.
 *
 * Unprivileged use: a process without CAP_SYS_ADMIN creates its devices
 * with UBLK_F_UNPRIVILEGED_DEV, which the kernel allows when it can open
 * /dev/ublk-control; the device nodes /dev/ublkcN and /dev/ublkbN must
 * then be given to that user as they appear, as ublksrv's udev rule does
 * (docs/ublk.md has the rules). The kernel offers such devices no
 * recovery: start fails with -EPERM when it is asked for.
 */
#ifndef SPD_UBLK_H
#define SPD_UBLK_H

#include "spd/spd.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct spd_ublk_export spd_ublk_export;

#define SPD_UBLK_MAX_QUEUE_DEPTH 4096

typedef struct spd_ublk_options {
    uint32_t size;          /* SPD_UBLK_OPTIONS_INIT */
    int      id;            /* N of /dev/ublkbN; -1: the kernel picks one */
    unsigned queues;        /* queues, each with its thread; 0: 1. The
                               kernel uses at most one per CPU */
    unsigned queue_depth;   /* requests in flight per queue; 0: 64, at
                               most SPD_UBLK_MAX_QUEUE_DEPTH */
    /* The disk outlives the process: I/O waits for a new one. With an id,
     * start first takes over a device of that id left waiting by a dead
     * process. */
    bool     recovery;
} spd_ublk_options;

/* Start an initializer with this; it sets id to -1, so set a given id
 * after the initializer (o.id = 3), not in it. */
#define SPD_UBLK_OPTIONS_INIT .size = sizeof(spd_ublk_options), .id = -1

/*
 * Whether this kernel serves ublk to this process: 0, or -ENODEV (no
 * ublk_drv: no /dev/ublk-control), -EACCES (not allowed to open it),
 * -EOPNOTSUPP (a kernel too old), with spd_errmsg() saying which.
 */
int spd_ublk_available(void);

/* An export with no unit yet: NULL with errno (EINVAL for bad options). */
spd_ublk_export *spd_ublk_export_create(const spd_ublk_options *options);

/*
 * The unit to serve (one per export; it must outlive the export): 0,
 * -EINVAL (no unit, or blocks larger than 4096 bytes), -EBUSY (a unit
 * added already).
 */
int spd_ublk_export_add(spd_ublk_export *e, spd_unit *unit);

/*
 * Create (or, with recovery, take over) the device and serve it until
 * spd_ublk_export_stop(). Returns once /dev/ublkbN exists: 0, or -ENODEV
 * (no ublk driver), -EOPNOTSUPP (too old), -EEXIST (the id is in use by a
 * live process), -EPERM, -EINVAL (nothing added, or a device to recover
 * whose size or block size differs), or another -errno; then no device is
 * left behind.
 */
int spd_ublk_export_start(spd_ublk_export *e);

/* N of /dev/ublkbN once started, else -1. */
int spd_ublk_export_id(const spd_ublk_export *e);

/* Whether data goes straight between the device's memory and the kernel's
 * requests (a unit whose device lends memory, spd_ops.read_lend and
 * write_lend, on a device added with the kernel's user copy); false before
 * start. */
bool spd_ublk_export_user_copy(const spd_ublk_export *e);

/*
 * Remove the device: the kernel finishes the requests in flight, then
 * /dev/ublkbN goes away (a mounted file system sees I/O errors after
 * that). May be started again. NULL is a no-op.
 */
void spd_ublk_export_stop(spd_ublk_export *e);

/* Stop if needed and free the export (not the unit). NULL is a no-op. */
void spd_ublk_export_destroy(spd_ublk_export *e);

#ifdef __cplusplus
}
#endif

#endif /* SPD_UBLK_H */
