/*
 * spd.h - the Spd storage unit API.
 *
 * A storage unit is a disk served by this process. Its device code
 * implements four operations on logical blocks (read, write, flush, unmap)
 * in a struct spd_ops; libspd turns requests arriving from transports (NBD,
 * iSCSI, FUSE, ublk) or from in-process callers into calls of those
 * operations, after checking ranges, write protection and transfer limits
 * once, here, for every transport.
 *
 * Conventions: functions return 0 or a negative errno, or NULL with errno
 * set; spd_errmsg() then says in words what was wrong. All public names
 * start with spd_ or SPD_.
 */
#ifndef SPD_SPD_H
#define SPD_SPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "spd/version.h"

/* The version of the library running, "MAJOR.MINOR.MICRO": the same as
 * SPD_VERSION_STRING when the program was built against these headers. */
const char *spd_version(void);

/* ------------------------------------------------------------------ */
/* Status: good, or a SCSI check condition with sense data.            */
/* ------------------------------------------------------------------ */

/* SAM status codes used by Spd. */
#define SPD_STATUS_GOOD            0x00
#define SPD_STATUS_CHECK_CONDITION 0x02
#define SPD_STATUS_BUSY            0x08
#define SPD_STATUS_RESERVATION_CONFLICT 0x18
#define SPD_STATUS_TASK_ABORTED    0x40

/*
 * The outcome of a request. A zeroed spd_status is GOOD. For a check
 * condition, sense_key/asc/ascq name the error (see spd/scsi.h for the
 * named values); information, when info_valid, is usually the first LBA in
 * error; sks holds the sense-key-specific bytes (field pointer), used when
 * sks[0] has its SKSV bit (0x80) set.
 */
typedef struct spd_status {
    uint8_t  scsi_status;
    uint8_t  sense_key;
    uint8_t  asc;
    uint8_t  ascq;
    bool     info_valid;
    uint8_t  sks[3];
    uint64_t information;
} spd_status;

/* Set a check condition in one line: spd_status_set_sense(&st, key, asc, ascq). */
static inline void spd_status_set_sense(spd_status *st, uint8_t key,
                                        uint8_t asc, uint8_t ascq)
{
    *st = (spd_status){ .scsi_status = SPD_STATUS_CHECK_CONDITION,
                        .sense_key = key, .asc = asc, .ascq = ascq };
}

/* Add the information field (for example the LBA in error). */
static inline void spd_status_set_info(spd_status *st, uint64_t information)
{
    st->info_valid = true;
    st->information = information;
}

static inline bool spd_status_good(const spd_status *st)
{
    return st->scsi_status == SPD_STATUS_GOOD;
}

/* The errno a status stands for, for transports whose wire speaks errno:
 * 0 for GOOD; ENOSPC (DATA PROTECT, SPACE ALLOCATION FAILED), EROFS (other
 * DATA PROTECT), EINVAL (ILLEGAL REQUEST), ESHUTDOWN (NOT READY), else EIO.
 * For a block request's outcome spd_request_errno() says more. */
int spd_status_errno(const spd_status *st);

/* ------------------------------------------------------------------ */
/* Storage unit parameters.                                            */
/* ------------------------------------------------------------------ */

#define SPD_PRODUCT_ID_MAX       16
#define SPD_PRODUCT_REVISION_MAX 4
#define SPD_DEFAULT_MAX_TRANSFER (1024 * 1024)

/* Asymmetric access states of a target port group (SPC-4). Implicit
 * ALUA: the states are configured (spd_params_set_alua, changed with
 * spd_unit_set_alua), an initiator cannot change them (SET
 * TARGET PORT GROUPS is not supported). */
typedef enum spd_alua_state {
    SPD_ALUA_OPTIMIZED     = 0x0,   /* active/optimized: "ao" */
    SPD_ALUA_NON_OPTIMIZED = 0x1,   /* active/non-optimized: "ano" */
    SPD_ALUA_STANDBY       = 0x2,   /* no medium access: "standby" */
    SPD_ALUA_UNAVAILABLE   = 0x3,   /* inquiries only: "unavailable" */
} spd_alua_state;

#define SPD_PORT_GROUPS_MAX    16   /* gateways of one disk */
#define SPD_DEFAULT_PORT_GROUP 1    /* the group without port_group */

typedef struct spd_port_group {
    uint16_t id;                    /* 1 to 65535 */
    uint8_t  state;                 /* spd_alua_state */
} spd_port_group;

typedef struct spd_params {
    /* sizeof(spd_params) when the caller was built: SPD_PARAMS_INIT. */
    uint32_t size;
    /* Identity of the unit: the source of its serial number (VPD 80h) and
     * device identifiers (VPD 83h). Two units of one process may not share
     * a UUID. Required: all-zero is refused. */
    uint8_t  uuid[16];
    /* Number of logical blocks, at least 1. */
    uint64_t block_count;
    /* Bytes per logical block: a power of two from 512 to 65536. */
    uint32_t block_length;
    /* INQUIRY product identification (ASCII, up to 16 chars; "" gives
     * "Spd disk") and revision (up to 4 chars; "" gives the library's). */
    char     product_id[SPD_PRODUCT_ID_MAX + 1];
    char     product_revision[SPD_PRODUCT_REVISION_MAX + 1];
    /* Writes and unmaps fail with DATA PROTECT / WRITE PROTECTED. */
    bool     write_protected;
    /* The device has a volatile cache: WCE is reported set in the caching
     * mode page and initiators send flushes. */
    bool     cache_supported;
    /* The device implements unmap (thin provisioning: LBPME, UNMAP). */
    bool     unmap_supported;
    /* Unmapped blocks read back as zeros (LBPRZ). Only with unmap. */
    bool     unmap_reads_zero;
    /* Largest transfer handed to the device in one call, in bytes: a
     * multiple of block_length. Longer requests are split. 0 picks
     * SPD_DEFAULT_MAX_TRANSFER (or one block if that is larger). */
    uint32_t max_transfer_length;
    /* Bytes per physical block: block_length times a power of two, up to
     * 2^15 logical blocks (a 512-byte-sector disk with 4096-byte physical
     * sectors: 4096). Initiators align their I/O to it (READ CAPACITY(16)
     * LBPPBE, the NBD preferred block size, ublk's physical block size).
     * 0 means block_length. */
    uint32_t physical_block_length;
    /* Target port groups (SPC-4 asymmetric logical unit access), for a
     * disk served by several processes at once, each a gateway with one
     * target port: port_group is this process's group, also the relative
     * target port identifier of its port and its iSCSI
     * TargetPortalGroupTag; port_groups lists every gateway's group, this
     * one's included, with its state: the same list in every gateway, so
     * that each reports the same groups. 0 and no groups: one group,
     * SPD_DEFAULT_PORT_GROUP, active/optimized. spd_params_set_alua()
     * fills them from text. */
    uint16_t port_group;
    uint16_t port_group_count;
    spd_port_group port_groups[SPD_PORT_GROUPS_MAX];
} spd_params;

/* Start a spd_params initializer with this: new fields are only ever added
 * at the end, and libspd reads only what the caller was built with. */
#define SPD_PARAMS_INIT .size = sizeof(spd_params)

/* Check parameters without creating a unit: 0, or -EINVAL with
 * spd_errmsg() naming the field. */
int spd_params_check(const spd_params *params);

/* Set params' port_group to own and port_groups from states, a list
 * "ID:STATE[,ID:STATE]..." of every gateway's group with its state (ao,
 * ano, standby or unavailable; "1:ao,2:ano"): ids 1 to 65535, each once,
 * own among them. 0, or -EINVAL with spd_errmsg() saying what is wrong
 * and params unchanged. */
int spd_params_set_alua(spd_params *params, unsigned own, const char *states);

/* Parse "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" into 16 bytes: 0 or -EINVAL. */
int spd_uuid_parse(const char *text, uint8_t uuid[16]);
/* Format 16 bytes as a UUID string (37 bytes with the NUL). */
void spd_uuid_format(const uint8_t uuid[16], char text[37]);
/* A new random (version 4) UUID: 0 or -errno. */
int spd_uuid_generate(uint8_t uuid[16]);

/* The last error message of the calling thread (never NULL). */
const char *spd_errmsg(void);

/* ------------------------------------------------------------------ */
/* Device operations.                                                  */
/* ------------------------------------------------------------------ */

typedef struct spd_unit spd_unit;
typedef struct spd_io spd_io;   /* one device call in flight, opaque */

typedef struct spd_unmap_desc {
    uint64_t lba;
    uint32_t blocks;
} spd_unmap_desc;

/*
 * Results of an operation, also the argument of spd_io_complete():
 *   SPD_OK       done, good;
 *   SPD_PENDING  the device keeps the io and completes it later, from any
 *                thread, with spd_io_complete(); buffers stay valid until
 *                then;
 *   SPD_CHECK    done, failed, with the sense set by spd_io_set_sense();
 *   -errno       done, failed; libspd picks the sense: EIO -> MEDIUM ERROR,
 *                EROFS/EPERM -> WRITE PROTECTED, ENOSPC -> SPACE
 *                ALLOCATION FAILED, anything else -> HARDWARE ERROR.
 */
#define SPD_OK      0
#define SPD_PENDING 1
#define SPD_CHECK   2

/* Operations flags. */
/* The device's callbacks may run in parallel on several dispatcher threads
 * (for different ios). Without it libspd calls them one at a time. */
#define SPD_OPS_PARALLEL 0x1u
/* The device honours fua on write itself (the data is stable when the
 * write completes). Without it libspd passes fua as false and follows a
 * FUA write with a flush of its range before completing it. */
#define SPD_OPS_FUA      0x2u
/* The callbacks never wait (for I/O, the network, a lock held long): they
 * take about the time their data takes to copy, as a RAM disk's do. With
 * SPD_OPS_PARALLEL, libspd then runs pieces of up to SPD_INLINE_BYTES on
 * the transport's thread that submitted them even when dispatcher threads
 * are started (a handoff would cost more than the call), and hands only
 * larger ones to the dispatcher, where their copies overlap the
 * transport's. */
#define SPD_OPS_NONBLOCKING 0x4u
#define SPD_INLINE_BYTES (64 * 1024)

/*
 * The device's code. Initialise with designated initializers and
 * SPD_OPS_INIT so libspd knows which fields the device was built with;
 * new fields are only ever added at the end.
 *
 * Every callback gets the context given to spd_unit_create(), the io
 * handle (for spd_io_complete() and spd_io_set_sense()), and a request that
 * libspd has already checked: in range, not write protected, at most
 * max_transfer_length bytes. Callbacks run on dispatcher threads (or the
 * submitting thread when no dispatcher is started).
 */
typedef struct spd_ops {
    uint32_t size;      /* sizeof(struct spd_ops) when the device was built */
    uint32_t flags;     /* SPD_OPS_* */

    /* Required. Fill buf with blocks * block_length bytes from lba. With
     * fua (only with SPD_OPS_FUA), read from stable media. */
    int (*read)(void *ctx, spd_io *io, void *buf, uint64_t lba,
                uint32_t blocks, bool fua);
    /* Required unless the unit is write protected. With fua (only with
     * SPD_OPS_FUA) the data must be on stable media before the io
     * completes. */
    int (*write)(void *ctx, spd_io *io, const void *buf, uint64_t lba,
                 uint32_t blocks, bool fua);
    /* Optional. Make blocks [lba, lba+blocks) stable; blocks == 0 means to
     * the end of the unit. Missing: flush succeeds at once. */
    int (*flush)(void *ctx, spd_io *io, uint64_t lba, uint32_t blocks);
    /* Required when unmap_supported. Deallocate each range; with
     * unmap_reads_zero they must read back as zeros afterwards. */
    int (*unmap)(void *ctx, spd_io *io, const spd_unmap_desc *descs,
                 uint32_t count);
    /* Optional. Allocation status, for NBD block status: set *mapped to
     * whether block lba holds data (false: it is unmapped, a hole) and
     * return how many blocks from lba, 1 to blocks, share that state; or
     * -errno. Called on dispatcher threads like the other callbacks (one
     * at a time without SPD_OPS_PARALLEL), for SPD_OP_EXTENTS requests.
     * Missing: every block is mapped. */
    int64_t (*extent)(void *ctx, uint64_t lba, uint32_t blocks, bool *mapped);

    /* Optional, both or neither: persistent reservations shared by every
     * process serving the same storage (several gateways of one disk), so
     * that a reservation taken through one is enforced by all. The engine
     * keeps its reservation state (registrations, the reservation, the
     * generation) as a blob of at most SPD_PR_STATE_MAX bytes, opaque to
     * the device, which only stores it where all of them see it.
     *
     * pr_load: copy the stored blob into buf (cap bytes); return its
     * length, 0 when none is stored yet, or -errno.
     * pr_update: excluding every other process's pr_update (a lock in the
     * shared store): load the blob as pr_load does into a buffer of
     * SPD_PR_STATE_MAX bytes, call apply(arg, buf, len) once, and when it
     * returns a length above 0 store that many bytes of buf; then unlock.
     * Return apply's result, or -errno when the lock, the load or the
     * store failed (apply not called, or its change not stored).
     *
     * The engine calls them one at a time per unit, on the thread that
     * submitted the SCSI command (they may block; whatever
     * SPD_OPS_PARALLEL says, concurrently with the other operations):
     * pr_update for every PERSISTENT RESERVE OUT, pr_load for every
     * PERSISTENT RESERVE IN and for the first command after
     * spd_unit_reservations_changed(), which the device calls when the
     * stored blob may have changed elsewhere. Without them, reservations
     * are the process's own. */
    int (*pr_load)(void *ctx, void *buf, size_t cap);
    int (*pr_update)(void *ctx,
                     int (*apply)(void *arg, void *buf, size_t len),
                     void *arg);

    /* Optional, for a device that keeps its blocks in memory (a RAM
     * disk): a read or write on that memory, lent to libspd, instead of a
     * copy between it and a buffer. Pass the memory of blocks
     * [lba, lba+blocks) to spd_io_lend(), in order, in one or more calls
     * (each a few pieces; for a read, a shared zero buffer stands for
     * blocks never written), all before returning SPD_OK; it must stay
     * there until each call returns. Never SPD_PENDING. libspd copies
     * between it and its buffer, or the transport copies straight between
     * it and where the data is (ublk: the kernel's request), which saves
     * the device's copy. With read (write) too, libspd calls the lending
     * one only where that saves the copy, and never with fua; read
     * (write) may then be missing. */
    int (*read_lend)(void *ctx, spd_io *io, uint64_t lba, uint32_t blocks);
    int (*write_lend)(void *ctx, spd_io *io, uint64_t lba, uint32_t blocks);
} spd_ops;

/* The largest reservation state blob (spd_ops.pr_load, pr_update). */
#define SPD_PR_STATE_MAX 16384

#define SPD_OPS_INIT .size = sizeof(spd_ops)

/* Complete an io the device answered SPD_PENDING for; result as above. */
void spd_io_complete(spd_io *io, int result);
/* Record a check condition for the io; returns SPD_CHECK to return. */
int spd_io_set_sense(spd_io *io, uint8_t key, uint8_t asc, uint8_t ascq,
                     bool info_valid, uint64_t information);
/* The unit an io belongs to. */
spd_unit *spd_io_unit(spd_io *io);
/* From spd_ops.read_lend or write_lend: the next count pieces of the
 * device's memory, holding the data read or receiving the data written. 0,
 * or -errno (the copy failed, or more than the io's blocks), which the lend
 * call then returns. */
int spd_io_lend(spd_io *io, const struct iovec *iov, unsigned count);

/* ------------------------------------------------------------------ */
/* Storage unit lifecycle.                                             */
/* ------------------------------------------------------------------ */

/* Create a unit: NULL with errno and spd_errmsg() on invalid parameters,
 * missing required operations, or a UUID already in use in this process. */
spd_unit *spd_unit_create(const spd_params *params, const spd_ops *ops,
                          void *ctx);

/* Start N dispatcher threads that call the device's operations (0 picks
 * the number of CPUs, at least 2). Without a dispatcher, requests run on
 * the submitting thread. 0 or -errno. */
int spd_unit_start(spd_unit *unit, unsigned threads);

/* Begin shutting down: new requests fail with NOT READY, queued requests
 * that no device call has started fail the same way; calls already in the
 * device finish normally. Returns at once; safe from any thread. */
void spd_unit_shutdown(spd_unit *unit);

/* Wait until the unit is shut down and every request has completed; joins
 * the dispatcher threads. */
void spd_unit_wait(spd_unit *unit);

/* Shut down, wait, and free the unit (its UUID may then be reused). */
void spd_unit_destroy(spd_unit *unit);

const spd_params *spd_unit_params(const spd_unit *unit);

/* Change the unit's capacity while it is served (the device's storage
 * grew or shrank: spd-rbd when its image is resized). Requests are checked
 * against the new block count from now on; new NBD connections see the
 * new size, and every SCSI I_T nexus gets a CAPACITY DATA HAS CHANGED unit
 * attention, after which READ CAPACITY answers it. A FUSE file and a ublk
 * disk keep the size they started with. Returns 0, or -EINVAL for 0
 * blocks or more than 2^64 bytes. */
int spd_unit_resize(spd_unit *unit, uint64_t block_count);
/* Change the access states of the unit's target port groups while it is
 * served (a cluster manager failing over between gateways): states is a
 * list as spd_params_set_alua() takes it, naming each of the unit's
 * groups once. The next command, on any thread, runs in the new state;
 * spd_unit_params() shows it, and on a change every SCSI I_T nexus gets an
 * ASYMMETRIC ACCESS STATE CHANGED unit attention, after which REPORT
 * TARGET PORT GROUPS answers it. Returns 0, or -EINVAL (spd_errmsg() says
 * why, nothing changed) for a bad list, a group added, missing or listed
 * twice, or a unit without port groups. */
int spd_unit_set_alua(spd_unit *unit, const char *states);
void *spd_unit_context(const spd_unit *unit);
/* Whether the device lends its memory (spd_ops.read_lend or write_lend):
 * for a transport that chooses once how it moves data (ublk). */
bool spd_unit_lends_memory(const spd_unit *unit);

/* The shared reservation state (spd_ops.pr_load) may have changed in
 * another process: the engine loads it again before the next SCSI
 * command. Safe from any thread, a device's callback included; cheap. */
void spd_unit_reservations_changed(spd_unit *unit);

/* ------------------------------------------------------------------ */
/* Debug log: one line per request, written when it completes.         */
/* ------------------------------------------------------------------ */

#define SPD_DEBUG_READ  0x01u
#define SPD_DEBUG_WRITE 0x02u
#define SPD_DEBUG_FLUSH 0x04u
#define SPD_DEBUG_UNMAP 0x08u
#define SPD_DEBUG_SCSI  0x10u   /* every CDB and its status */
#define SPD_DEBUG_ALL   0x1fu

/* Log the request kinds in mask to file (NULL: stderr); mask 0 turns the
 * log off. The file stays the caller's to close. */
void spd_unit_set_debug_log(spd_unit *unit, unsigned mask, FILE *file);

/* Parse a mask: a number, or names joined by commas
 * ("read,write,flush,unmap,scsi,all"). 0 or -EINVAL. */
int spd_debug_mask_parse(const char *text, unsigned *mask);

/* ------------------------------------------------------------------ */
/* Block requests: how transports and in-process callers reach a unit. */
/* ------------------------------------------------------------------ */

typedef enum spd_op {
    SPD_OP_READ,
    SPD_OP_WRITE,
    SPD_OP_WRITE_SAME,   /* buf holds one block, written to every block */
    SPD_OP_FLUSH,
    SPD_OP_UNMAP,
    SPD_OP_WRITE_ZEROES, /* zeros over [lba, lba+blocks): see SPD_REQ_* */
    SPD_OP_EXTENTS,      /* allocation status of [lba, lba+blocks) */
} spd_op;

/* Request flags (spd_request.flags), for SPD_OP_WRITE_ZEROES. */
/* The core may unmap instead of writing when unmapped blocks read back as
 * zeros (unmap_reads_zero). */
#define SPD_REQ_MAY_UNMAP 0x1u
/* Only a fast zero will do: when the range would have to be written, fail
 * at once (spd_request_errno() gives ENOTSUP) instead. */
#define SPD_REQ_FAST_ZERO 0x2u

/* A run of blocks sharing an allocation state (SPD_OP_EXTENTS). */
typedef struct spd_extent {
    uint64_t blocks;
    bool     mapped;    /* false: unmapped (a hole; zeros with LBPRZ) */
} spd_extent;

/* Device extent calls one SPD_OP_EXTENTS request may make: a device may
 * answer a block at a time, and one request must not cost billions of
 * calls. When spent the answer ends with what is known. */
#define SPD_EXTENT_CALLS 1024

typedef struct spd_request spd_request;
struct spd_request {
    uint32_t size;                   /* SPD_REQUEST_INIT */
    spd_op   op;
    bool     fua;                    /* data stable before completion */
    uint64_t lba;                    /* all but UNMAP */
    uint64_t blocks;                 /* FLUSH: 0 means to the end */
    void    *buf;                    /* READ: filled; WRITE(_SAME): data */
    const spd_unmap_desc *descs;     /* UNMAP */
    uint32_t desc_count;
    /* Called exactly once when the request is complete, with status set;
     * from any thread, possibly before spd_unit_submit() returns. */
    void   (*done)(spd_request *req);
    void    *opaque;                 /* the submitter's */
    spd_status status;               /* the result */
    uint32_t flags;                  /* SPD_REQ_* */
    /* EXTENTS: room for extent_max runs from lba; extent_count of them are
     * filled, merged (neighbours differ), covering at most blocks. */
    spd_extent *extents;
    uint32_t extent_max;
    uint32_t extent_count;
    /* READ and WRITE, optional: the request moves its data itself instead
     * of through buf: copy() copies a read's data out of iov, or a
     * write's data into iov, in pieces, each with its byte offset in the
     * request; it returns 0 or -errno (the request then fails with it).
     * iov is the device's own memory when it lends it (read_lend,
     * write_lend), else buf, read into before or written from after the
     * call: buf is needed either way. Called on the thread running the
     * device's call (for a read the device completes later, the thread
     * completing it). */
    int (*copy)(spd_request *req, uint64_t offset, const struct iovec *iov,
                unsigned count);
};

/* Start a spd_request initializer with this (see SPD_PARAMS_INIT). */
#define SPD_REQUEST_INIT .size = sizeof(spd_request)

/* Check, split at the max transfer length and run a request; completion
 * through req->done. The request and its buffers must stay valid until
 * then. */
void spd_unit_submit(spd_unit *unit, spd_request *req);

/* Submit and wait: returns the request's status (also in req->status).
 * It uses req->done and req->opaque itself. */
spd_status spd_unit_run(spd_unit *unit, spd_request *req);

/* The errno a completed request's status stands for, as transports that
 * speak errno need it: 0 for GOOD; a range outside the unit ENOSPC for a
 * write (WRITE, WRITE_SAME, WRITE_ZEROES), else EINVAL; write protected
 * EROFS; an op the unit does not support (UNMAP without unmap_supported)
 * EOPNOTSUPP; a fast zero refused ENOTSUP; not ready ESHUTDOWN; else as
 * spd_status_errno(). */
int spd_request_errno(const spd_request *req);

/* Allocation status from lba, an SPD_OP_EXTENTS request run and waited
 * for: how many blocks, 1 to blocks, share *mapped; or -EINVAL when the
 * range is outside the unit or blocks is 0, or -EIO. */
int64_t spd_unit_extent(spd_unit *unit, uint64_t lba, uint32_t blocks,
                        bool *mapped);

/* ------------------------------------------------------------------ */
/* Byte-granular I/O: offsets and lengths in bytes, any alignment.     */
/* ------------------------------------------------------------------ */

/*
 * Read, write or zero len bytes at byte offset off of the unit, whatever
 * its block length: for callers that address bytes (a file's view of the
 * disk, an NBD client that did not ask for block sizes). Each waits for
 * its block requests and returns 0 or -errno as spd_request_errno() says;
 * a range past the end changes nothing and is -EINVAL for a read, -ENOSPC
 * for a write or zero.
 *
 * A partial block is read, patched and written back. While that runs, no
 * other write made through spd_unit_pwrite() or spd_unit_pzero() touches
 * the block: two partial writes of one block never undo each other, and
 * a whole-block write racing one lands wholly before or after it. Writes
 * submitted as block requests (spd_unit_submit()) do not take part; a
 * unit served to byte-addressing and block-addressing clients at once
 * gets this guarantee only among the former.
 */
int spd_unit_pread(spd_unit *unit, void *buf, size_t len, uint64_t off);
int spd_unit_pwrite(spd_unit *unit, const void *buf, size_t len,
                    uint64_t off, bool fua);
/* Zero: whole blocks by SPD_OP_WRITE_ZEROES with flags (SPD_REQ_MAY_UNMAP,
 * SPD_REQ_FAST_ZERO), partial ones by writing zeros; with
 * SPD_REQ_FAST_ZERO a range with a partial block is -ENOTSUP at once. */
int spd_unit_pzero(spd_unit *unit, uint64_t len, uint64_t off,
                   uint32_t flags, bool fua);

/* ------------------------------------------------------------------ */
/* SCSI commands: the unit as a SCSI block device (see spd/scsi.h).    */
/* ------------------------------------------------------------------ */

#define SPD_CDB_MAX   32
#define SPD_SENSE_MAX 96

typedef enum spd_data_dir {
    SPD_DIR_NONE,
    SPD_DIR_IN,     /* device to initiator: READ, INQUIRY, ... */
    SPD_DIR_OUT,    /* initiator to device: WRITE, UNMAP, MODE SELECT */
} spd_data_dir;

typedef struct spd_scsi_cmd spd_scsi_cmd;

/* The longest SCSI initiator name, with its NUL (iSCSI names: 223). */
#define SPD_SCSI_NAME_MAX 224

/*
 * An I_T nexus (SAM-5): the initiator port a command comes from, which
 * reservations and unit attentions are kept for. iSCSI: the initiator
 * name and the session's ISID; other transports: a name of their own per
 * connection, no ISID. Two nexuses are the same when name, ISID and
 * relative port are.
 */
typedef struct spd_scsi_nexus {
    uint32_t size;                   /* SPD_SCSI_NEXUS_INIT */
    char     name[SPD_SCSI_NAME_MAX];  /* NUL-terminated */
    uint8_t  isid[6];
    bool     has_isid;               /* iSCSI: TransportIDs carry the ISID */
    uint16_t rel_port;               /* relative target port, from 1: iSCSI
                                        gives the target's port group */
} spd_scsi_nexus;

#define SPD_SCSI_NEXUS_INIT .size = sizeof(spd_scsi_nexus), .rel_port = 1

/* A target's logical unit: its LUN and unit. A target hands the engine
 * its list (sorted by lun) for REPORT LUNS. */
typedef struct spd_scsi_lun {
    unsigned  lun;                   /* SAM LUN, below 16384 */
    spd_unit *unit;
} spd_scsi_lun;

struct spd_scsi_cmd {
    uint32_t size;                   /* SPD_SCSI_CMD_INIT */
    uint8_t  cdb[SPD_CDB_MAX];
    uint8_t  cdb_len;
    /* The data buffer: for data-in commands the space to fill (its size is
     * the initiator's expected transfer length), for data-out commands the
     * data received. */
    void    *data;
    uint32_t data_len;
    void   (*done)(spd_scsi_cmd *cmd);
    void    *opaque;                 /* the submitter's */

    /* Results. */
    uint8_t  scsi_status;            /* SPD_STATUS_* */
    uint32_t data_in_len;            /* bytes placed in data */
    uint8_t  sense[SPD_SENSE_MAX];
    uint8_t  sense_len;
    spd_status status;               /* the same outcome, decoded */

    /* In, optional: the target's logical units for REPORT LUNS (NULL: the
     * unit alone, as LUN 0). Read while the command is planned or run. */
    const spd_scsi_lun *luns;
    unsigned lun_count;

    /* The plan, filled by spd_unit_scsi_plan() and kept with the command
     * (which may be copied) so that spd_unit_scsi() runs it without
     * decoding the CDB again. A command reused for another CDB starts
     * again from SPD_SCSI_CMD_INIT. */
    bool     planned;
    spd_data_dir dir;                /* which way data moves */
    uint32_t transfer_length;        /* bytes the CDB, as sent, transfers */
    uint32_t buffer_length;          /* bytes of data the command uses:
                                        data-out to collect, or data-in
                                        room */
    uint64_t plan_state[8];          /* libspd's: the decoded CDB */

    /* In, optional: the I_T nexus the command comes from (NULL: the
     * unit's own nexus for in-process callers, which starts without a
     * unit attention). Read while the command is planned or run. */
    const spd_scsi_nexus *nexus;
};

/* Start a spd_scsi_cmd initializer with this (see SPD_PARAMS_INIT). */
#define SPD_SCSI_CMD_INIT .size = sizeof(spd_scsi_cmd)

/* Execute a CDB; completion through cmd->done (possibly before this
 * returns). A planned command runs its plan: unit is the one it was
 * planned for (NULL for a LUN the target does not have). */
void spd_unit_scsi(spd_unit *unit, spd_scsi_cmd *cmd);

/* Execute and wait; returns cmd->scsi_status. It uses cmd->done and
 * cmd->opaque itself. */
int spd_unit_scsi_run(spd_unit *unit, spd_scsi_cmd *cmd);

/* No data-out limit for spd_unit_scsi_plan(). */
#define SPD_SCSI_NO_LIMIT UINT32_MAX

/*
 * Plan a command before any data moves (what iSCSI needs to ask for
 * Data-Out): decode and check cmd->cdb once for unit (NULL: the target has
 * no such LUN: INQUIRY answers "no device", REPORT LUNS lists cmd->luns,
 * anything else fails LOGICAL UNIT NOT SUPPORTED), and fill dir,
 * transfer_length and buffer_length. data_out is the data-out the
 * initiator will send: less than a block write wants shortens the write to
 * the whole blocks within it (FCP-4), other commands fail INVALID FIELD IN
 * COMMAND INFORMATION UNIT. Returns 0, or SPD_CHECK when the command fails
 * whatever the data: its outcome (status and sense) is then set, and
 * spd_unit_scsi() completes it as it is.
 */
int spd_unit_scsi_plan(spd_unit *unit, spd_scsi_cmd *cmd, uint32_t data_out);

/* Events a transport reports for the SCSI state of a unit (SAM-5, SPC-4):
 * an I_T nexus ended (its session is over: a RESERVE(6)/(10) it held is
 * released), and a reset of the logical unit (LOGICAL UNIT RESET, a
 * target reset: RESERVE(6)/(10) released, every nexus gets a unit
 * attention). Persistent reservations outlive both. */
void spd_unit_scsi_nexus_lost(spd_unit *unit, const spd_scsi_nexus *nexus);
void spd_unit_scsi_reset(spd_unit *unit);

/* Make status the outcome of cmd, with sense in the format unit has chosen
 * (MODE SELECT D_SENSE; NULL: fixed): for commands a transport ends
 * itself (a protocol error, no room); cmd->done is not called. */
void spd_scsi_cmd_set_status(spd_unit *unit, spd_scsi_cmd *cmd,
                             const spd_status *status);

#ifdef __cplusplus
}
#endif

#endif /* SPD_SPD_H */
