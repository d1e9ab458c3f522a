/*
 * unit.h - the storage unit's private state, shared by the files of the
 * unit core (unit.c, dispatch.c, unit_scsi.c, log.c).
 */
#ifndef SPD_UNIT_H
#define SPD_UNIT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "scsi/engine.h"
#include "spd/spd.h"

struct request_track;

/* One call of a device operation: a request, or a piece of a split one. */
struct spd_io {
    struct spd_io *next;            /* dispatcher queue link */
    spd_unit *unit;
    struct request_track *track;    /* the request this io is part of */
    uint64_t index;                 /* its place there, for combining statuses */
    spd_op op;                      /* READ, WRITE, FLUSH, UNMAP or EXTENTS */
    bool fua;                       /* passed to the device */
    uint64_t lba;
    uint32_t blocks;
    void *buf;
    const spd_unmap_desc *descs;
    uint32_t desc_count;
    spd_unmap_desc desc;            /* WRITE_ZEROES by unmap: its range */
    uint64_t lent;                  /* by read_lend, write_lend: bytes so far */
    bool copy_buf;                  /* with buf, and the request's copy() */
    spd_status status;              /* sense from spd_io_set_sense() */
};

struct spd_unit {
    spd_params params;              /* validated; max_transfer_length filled in */
    spd_ops ops;
    void *ctx;
    unsigned number;                /* for log lines */
    uint32_t max_blocks;            /* max_transfer_length / block_length */
    struct scsi_lu lu;

    pthread_mutex_t lock;           /* guards everything below */
    pthread_cond_t work;            /* the queue got an io, or stopping */
    pthread_cond_t idle;            /* inflight reached 0, or stopping */
    bool stopping;
    uint64_t inflight;              /* requests and SCSI commands not yet done */
    struct spd_io *queue_head, *queue_tail;
    pthread_t *threads;
    unsigned thread_count;

    pthread_mutex_t ops_lock;       /* serialises the device without SPD_OPS_PARALLEL */

    /* byteio.c: holds on blocks by writes that must not race a
     * read-modify-write (struct byteio_hold), taken or waiting, in the
     * order they came. */
    pthread_mutex_t holds_lock;
    pthread_cond_t holds_free;          /* a hold was given back */
    struct byteio_hold *holds;

    _Atomic unsigned debug_mask;
    FILE *debug_file;

    spd_unit *registry_next;
};

/* unit.c */
void unit_run_io(struct spd_io *io);
void unit_fail_io(struct spd_io *io, const spd_status *status);
void unit_not_ready(spd_status *status);
/* Count a new request in flight; false (and not counted) when stopping. */
bool unit_begin(spd_unit *unit);
/* Its completion: wakes spd_unit_wait() when the last one ends. */
void unit_end(spd_unit *unit);

/* dispatch.c */
void dispatch_io(spd_unit *unit, struct spd_io *io);
int dispatch_start(spd_unit *unit, unsigned threads);
struct spd_io *dispatch_take_queue(spd_unit *unit);  /* unit->lock held */
void dispatch_join(spd_unit *unit);

/* log.c */
void log_request(spd_unit *unit, const spd_request *req);
void log_scsi(spd_unit *unit, const spd_scsi_cmd *cmd);

#endif
