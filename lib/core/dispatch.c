/*
 * dispatch.c - the dispatcher: a FIFO of ios and the threads that call the
 * device's operations. Without threads, ios run on the submitting thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/errmsg.h"
#include "core/unit.h"

static void *dispatch_thread(void *arg)
{
    spd_unit *unit = arg;

    pthread_mutex_lock(&unit->lock);
    for (;;) {
        while (!unit->queue_head && !unit->stopping)
            pthread_cond_wait(&unit->work, &unit->lock);
        struct spd_io *io = unit->queue_head;
        if (!io)
            break;                  /* stopping, and nothing queued */
        unit->queue_head = io->next;
        if (!unit->queue_head)
            unit->queue_tail = NULL;
        pthread_mutex_unlock(&unit->lock);
        unit_run_io(io);
        pthread_mutex_lock(&unit->lock);
    }
    pthread_mutex_unlock(&unit->lock);
    return NULL;
}

/* Whether io runs on the submitting thread: always without a dispatcher;
 * with one, small pieces of a device that never waits (SPD_OPS_NONBLOCKING),
 * for which the two context switches of a handoff cost more than the
 * call. A transport's thread thus never waits on the device for long. */
static bool runs_inline(const spd_unit *unit, const struct spd_io *io)
{
    const uint32_t fast = SPD_OPS_PARALLEL | SPD_OPS_NONBLOCKING;
    if (!unit->thread_count)
        return true;
    if ((unit->ops.flags & fast) != fast)
        return false;
    switch (io->op) {
    case SPD_OP_READ:
    case SPD_OP_WRITE:
        return (uint64_t)io->blocks * unit->params.block_length <=
               SPD_INLINE_BYTES;
    case SPD_OP_UNMAP:
        return false;           /* it may free the whole unit's memory */
    default:
        return true;
    }
}

void dispatch_io(spd_unit *unit, struct spd_io *io)
{
    if (runs_inline(unit, io)) {
        unit_run_io(io);
        return;
    }
    io->next = NULL;
    pthread_mutex_lock(&unit->lock);
    if (unit->stopping) {
        pthread_mutex_unlock(&unit->lock);
        spd_status not_ready;
        unit_not_ready(&not_ready);
        unit_fail_io(io, &not_ready);
        return;
    }
    if (unit->queue_tail)
        unit->queue_tail->next = io;
    else
        unit->queue_head = io;
    unit->queue_tail = io;
    pthread_cond_signal(&unit->work);
    pthread_mutex_unlock(&unit->lock);
}

int dispatch_start(spd_unit *unit, unsigned threads)
{
    if (unit->thread_count)
        return spd_set_error(EBUSY, "the dispatcher is already started");
    if (threads == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cpus > 2 ? (unsigned)cpus : 2;
    }
    if (threads > 1024)
        return spd_set_error(EINVAL, "%u dispatcher threads: at most 1024",
                             threads);
    unit->threads = calloc(threads, sizeof *unit->threads);
    if (!unit->threads)
        return spd_set_error(ENOMEM, "out of memory for %u threads", threads);
    for (unsigned i = 0; i < threads; i++) {
        int r = pthread_create(&unit->threads[i], NULL, dispatch_thread, unit);
        if (r) {
            /* Keep the ones that started: they serve as the dispatcher. */
            unit->thread_count = i;
            return i ? 0 : spd_set_error(r, "pthread_create: %s",
                                         strerror(r));
        }
    }
    unit->thread_count = threads;
    return 0;
}

struct spd_io *dispatch_take_queue(spd_unit *unit)
{
    struct spd_io *queued = unit->queue_head;
    unit->queue_head = unit->queue_tail = NULL;
    return queued;
}

void dispatch_join(spd_unit *unit)
{
    for (unsigned i = 0; i < unit->thread_count; i++)
        pthread_join(unit->threads[i], NULL);
    free(unit->threads);
    unit->threads = NULL;
    unit->thread_count = 0;
}
