/*
 * tcmu.c - the TCMU export (see spd/tcmu.h): the command ring of a
 * target_core_user backstore, served by one thread. The backstore, its
 * UIO device and the tcm_loop LUN are tcmu_config.c's.
 *
 * The UIO device's map 0 holds the mailbox (the ring's offset and size,
 * cmd_head written by the kernel, cmd_tail by us), the command ring and
 * the data area. The kernel appends an entry per command at cmd_head and
 * signals the UIO device; an entry never wraps: where one would, a PAD
 * entry fills the ring's end. A command entry holds the CDB's offset and
 * iovecs, offsets into the data area, for its data (both directions).
 *
 * The thread reads each new entry once: the CDB and iovecs are copied,
 * the data used in place (one iovec) or through a buffer of the command's
 * (several), and the command goes to the engine. Completions come back in
 * any order (the kernel offers TCMU_MAILBOX_FLAG_CAP_OOOC): each is
 * written, with its cmd_id, into the next command entry at cmd_tail,
 * which the kernel has handed over and we have read, and cmd_tail moves
 * past it; a write to the UIO device then tells the kernel. Completions
 * on other threads reach the ring's thread through a lock-free list and
 * an eventfd, as ublk.c's do.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sys/uio.h>
/* The UAPI header includes linux/uio.h, whose struct iovec glibc's
 * sys/uio.h defines already. */
#define __LINUX_UIO_H
#include <linux/target_core_user.h>

#include "util/errmsg.h"
#include "spd/scsi.h"
#include "spd/tcmu.h"
#include "transport/tcmu_int.h"

/* The largest command, in bytes: the unit's max transfer, at most this. */
#define TCMU_MAX_IO_BYTES (1024 * 1024)

/* A command taken from the ring, until its completion is written back. */
struct tcmu_slot {
    spd_scsi_cmd cmd;
    spd_tcmu_export *e;
    struct tcmu_slot *next;      /* on the done list, or the free list */
    uint16_t cmd_id;
    uint32_t iov_cnt;            /* > 1: data goes through bounce */
    struct iovec *iov;           /* copied from the entry */
    uint32_t iov_cap;
    void *bounce;
    size_t bounce_cap;
};

struct spd_tcmu_export {
    spd_tcmu_options opt;
    char name[SPD_TCMU_NAME_MAX + 1];
    spd_unit *unit;
    bool started;
    char dir[256];               /* the backstore's configfs folder */
    int uio;                     /* /dev/uioN */
    uint8_t *map;                /* its map 0 */
    size_t map_len;
    struct tcmu_mailbox *mb;
    uint8_t *ring;               /* map + cmdr_off */
    uint32_t ring_size;
    uint32_t next;               /* the next entry to read */
    uint32_t tail;               /* our cmd_tail */
    int efd;                     /* completions' wakeup */
    int minor;                   /* N of /dev/uioN */
    struct tcmu_nl nl;           /* the kernel's events */
    uint64_t max_blocks;         /* the most the device has served */
    pthread_t thread;
    bool thread_started;
    atomic_bool stopping;
    unsigned inflight;           /* commands with the engine */
    _Atomic(struct tcmu_slot *) done;
    struct tcmu_slot *free;      /* the ring thread's */
};

/* The export whose ring the calling thread serves, if any. */
static _Thread_local spd_tcmu_export *current_export;

/* ------------------------------------------------------------------ */
/* The mailbox                                                         */
/* ------------------------------------------------------------------ */

static uint32_t *mb_field(spd_tcmu_export *e, size_t off)
{
    return (uint32_t *)(void *)((uint8_t *)e->mb + off);
}

static uint32_t cmd_head(spd_tcmu_export *e)
{
    return __atomic_load_n(mb_field(e, offsetof(struct tcmu_mailbox,
                                                cmd_head)), __ATOMIC_ACQUIRE);
}

static void set_cmd_tail(spd_tcmu_export *e, uint32_t tail)
{
    __atomic_store_n(mb_field(e, offsetof(struct tcmu_mailbox, cmd_tail)),
                     tail, __ATOMIC_RELEASE);
}

static struct tcmu_cmd_entry *entry_at(spd_tcmu_export *e, uint32_t off)
{
    return (struct tcmu_cmd_entry *)(void *)(e->ring + off);
}

static uint32_t ring_add(const spd_tcmu_export *e, uint32_t off, uint32_t len)
{
    return (off + len) % e->ring_size;
}

/* Tell the kernel that cmd_tail moved (its irqcontrol reads the ring). */
static void kick(spd_tcmu_export *e)
{
    uint32_t one = 1;
    while (write(e->uio, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

/* ------------------------------------------------------------------ */
/* Commands                                                            */
/* ------------------------------------------------------------------ */

static void cmd_done(spd_scsi_cmd *cmd)
{
    struct tcmu_slot *s = cmd->opaque;
    spd_tcmu_export *e = s->e;
    struct tcmu_slot *head = atomic_load_explicit(&e->done,
                                                  memory_order_relaxed);
    do
        s->next = head;
    while (!atomic_compare_exchange_weak_explicit(&e->done, &head, s,
                                                  memory_order_release,
                                                  memory_order_relaxed));
    /* The ring's thread empties the list before it waits. */
    if (!head && current_export != e) {
        uint64_t one = 1;
        while (write(e->efd, &one, sizeof one) < 0 && errno == EINTR)
            ;
    }
}

/* Write s's completion into the next command entry at the tail. */
static void respond(spd_tcmu_export *e, struct tcmu_slot *s)
{
    struct tcmu_cmd_entry *ent = entry_at(e, e->tail);
    while (tcmu_hdr_get_op(ent->hdr.len_op) != TCMU_OP_CMD) {
        e->tail = ring_add(e, e->tail, tcmu_hdr_get_len(ent->hdr.len_op));
        ent = entry_at(e, e->tail);
    }
    const spd_scsi_cmd *c = &s->cmd;
    if (s->iov_cnt > 1) {   /* data-in through the buffer */
        size_t left = c->data_in_len;
        for (uint32_t i = 0; i < s->iov_cnt && left; i++) {
            size_t n = s->iov[i].iov_len < left ? s->iov[i].iov_len : left;
            memcpy(e->map + (uintptr_t)s->iov[i].iov_base,
                   (uint8_t *)s->bounce + (c->data_in_len - left), n);
            left -= n;
        }
    }
    ent->hdr.cmd_id = s->cmd_id;
    ent->hdr.uflags = 0;
    ent->rsp.scsi_status = c->scsi_status;
    ent->rsp.read_len = 0;
    /* What a data-in command filled: the kernel passes no more on, and
     * reports the rest as residual. */
    if (!c->scsi_status && c->data_in_len &&
        (e->mb->flags & TCMU_MAILBOX_FLAG_CAP_READ_LEN)) {
        ent->hdr.uflags = TCMU_UFLAG_READ_LEN;
        ent->rsp.read_len = c->data_in_len;
    }
    memset(ent->rsp.sense_buffer, 0, sizeof ent->rsp.sense_buffer);
    size_t sl = c->sense_len < TCMU_SENSE_BUFFERSIZE ? c->sense_len
                                                     : TCMU_SENSE_BUFFERSIZE;
    memcpy(ent->rsp.sense_buffer, c->sense, sl);
    e->tail = ring_add(e, e->tail, tcmu_hdr_get_len(ent->hdr.len_op));
}

/* Write back every finished command; one kick for all of them. */
static void complete_done(spd_tcmu_export *e)
{
    struct tcmu_slot *s = atomic_exchange_explicit(&e->done, NULL,
                                                   memory_order_acquire);
    if (!s)
        return;
    while (s) {
        struct tcmu_slot *next = s->next;
        respond(e, s);
        e->inflight--;
        s->next = e->free;
        e->free = s;
        s = next;
    }
    set_cmd_tail(e, e->tail);
    kick(e);
}

/* A CDB's length from its operation code (the group), as the kernel
 * reckons it; variable-length CDBs (7Fh) say theirs. */
static uint8_t cdb_length(const uint8_t *cdb)
{
    static const uint8_t group[8] = { 6, 10, 10, 12, 16, 12, 10, 10 };
    if (cdb[0] == 0x7f)
        return (uint8_t)(cdb[7] + 8 < SPD_CDB_MAX ? cdb[7] + 8 : SPD_CDB_MAX);
    return group[cdb[0] >> 5];
}

/* A range of the mapping that the kernel's offsets name: within it. */
static bool in_map(const spd_tcmu_export *e, uint64_t off, uint64_t len)
{
    return off <= e->map_len && len <= e->map_len - off;
}

static struct tcmu_slot *slot_get(spd_tcmu_export *e)
{
    struct tcmu_slot *s = e->free;
    if (s) {
        e->free = s->next;
        return s;
    }
    s = calloc(1, sizeof *s);
    if (s)
        s->e = e;
    return s;
}

/* Gather the entry's iovecs into the slot: 0, or -1 when they are
 * nonsense or memory is short. */
static int slot_data(spd_tcmu_export *e, struct tcmu_slot *s,
                     const struct tcmu_cmd_entry *ent, uint32_t *total)
{
    uint32_t cnt = ent->req.iov_cnt;
    uint64_t sum = 0;
    const struct iovec *iov = (const struct iovec *)(const void *)
                              ((const uint8_t *)ent +
                               offsetof(struct tcmu_cmd_entry, req.iov));
    if (cnt > e->ring_size / sizeof *iov)
        return -1;
    if (cnt > s->iov_cap) {
        struct iovec *n = realloc(s->iov, cnt * sizeof *n);
        if (!n)
            return -1;
        s->iov = n;
        s->iov_cap = cnt;
    }
    if (cnt)   /* s->iov may be NULL yet */
        memcpy(s->iov, iov, cnt * sizeof *iov);
    for (uint32_t i = 0; i < cnt; i++) {
        if (!in_map(e, (uintptr_t)s->iov[i].iov_base, s->iov[i].iov_len))
            return -1;
        sum += s->iov[i].iov_len;
    }
    if (sum > UINT32_MAX)
        return -1;
    s->iov_cnt = cnt;
    *total = (uint32_t)sum;
    if (cnt <= 1)
        return 0;
    if (sum > s->bounce_cap) {
        void *b = realloc(s->bounce, sum);
        if (!b)
            return -1;
        s->bounce = b;
        s->bounce_cap = sum;
    }
    /* The direction is the engine's to know: data-out is gathered always,
     * data-in scattered as it came back. */
    size_t at = 0;
    for (uint32_t i = 0; i < cnt; i++) {
        memcpy((uint8_t *)s->bounce + at,
               e->map + (uintptr_t)s->iov[i].iov_base, s->iov[i].iov_len);
        at += s->iov[i].iov_len;
    }
    return 0;
}

/* A command entry: to the engine. */
static void take_command(spd_tcmu_export *e, const struct tcmu_cmd_entry *ent)
{
    struct tcmu_slot *s = slot_get(e);
    uint32_t total = 0;
    uint64_t cdb_off = ent->req.cdb_off;
    if (!s)
        goto fail;
    s->cmd_id = ent->hdr.cmd_id;
    s->iov_cnt = 0;
    s->cmd = (spd_scsi_cmd){ SPD_SCSI_CMD_INIT, .done = cmd_done,
                             .opaque = s };
    e->inflight++;
    if (!in_map(e, cdb_off, SPD_CDB_MAX) || slot_data(e, s, ent, &total)) {
        /* The kernel never writes such an entry: say so, do not touch. */
        spd_status st;
        spd_status_set_sense(&st, SPD_KEY_HARDWARE_ERROR,
                             SPD_ASC(SPD_ASC_INTERNAL_TARGET_FAILURE),
                             SPD_ASCQ(SPD_ASC_INTERNAL_TARGET_FAILURE));
        s->iov_cnt = 0;
        spd_scsi_cmd_set_status(e->unit, &s->cmd, &st);
        cmd_done(&s->cmd);
        return;
    }
    const uint8_t *cdb = e->map + cdb_off;
    s->cmd.cdb_len = cdb_length(cdb);
    memcpy(s->cmd.cdb, cdb, s->cmd.cdb_len);
    s->cmd.data_len = total;
    s->cmd.data = s->iov_cnt > 1 ? s->bounce
                : s->iov_cnt ? (void *)(e->map + (uintptr_t)s->iov[0].iov_base)
                : NULL;
    spd_unit_scsi(e->unit, &s->cmd);
    return;
fail:
    fprintf(stderr, "spd: TCMU %s: out of memory: command %u dropped\n",
            e->name, ent->hdr.cmd_id);
}

/* Read every entry the kernel added since we last looked. */
static void take_new(spd_tcmu_export *e)
{
    uint32_t head = cmd_head(e);
    while (e->next != head) {
        const struct tcmu_cmd_entry *ent = entry_at(e, e->next);
        uint32_t len = tcmu_hdr_get_len(ent->hdr.len_op);
        if (!len || len > e->ring_size) {
            fprintf(stderr, "spd: TCMU %s: a ring entry of length %u: "
                    "the ring is not read further\n", e->name, len);
            e->next = head;
            return;
        }
        /* TMR entries (aborts, resets) need nothing: every command
         * finishes on its own. */
        if (tcmu_hdr_get_op(ent->hdr.len_op) == TCMU_OP_CMD)
            take_command(e, ent);
        e->next = ring_add(e, e->next, len);
    }
}

/* ------------------------------------------------------------------ */
/* The kernel's events                                                 */
/* ------------------------------------------------------------------ */

/* dev_size written while served. The kernel took it already (it waits
 * for no reply about Spd's backstores): a size Spd refuses is written
 * back. Accepted: whole blocks, up to the most the device has served
 * (its size at start, or what it grew its unit to itself); a device's
 * storage grows by the device, not by a number in configfs. */
static void resize(spd_tcmu_export *e, uint64_t bytes)
{
    const spd_params *p = spd_unit_params(e->unit);
    uint32_t bl = p->block_length;
    uint64_t blocks = __atomic_load_n(&p->block_count, __ATOMIC_RELAXED);
    if (blocks > e->max_blocks)
        e->max_blocks = blocks;
    if (bytes == blocks * bl)
        return;              /* no change: our own write back, say */
    const char *why = bytes % bl ? "not a whole number of blocks"
                    : !bytes ? "no blocks"
                    : bytes / bl > e->max_blocks ? "more than the device has"
                    : NULL;
    if (!why && !spd_unit_resize(e->unit, bytes / bl)) {
        fprintf(stderr, "spd: TCMU %s: resized to %" PRIu64 " blocks of "
                "%u bytes\n", e->name, bytes / bl, bl);
        return;
    }
    char old[32], seen[32];
    snprintf(old, sizeof old, "%" PRIu64, blocks * bl);
    snprintf(seen, sizeof seen, "%" PRIu64, bytes);
    fprintf(stderr, "spd: TCMU %s: dev_size %" PRIu64 " refused (%s): "
            "it stays %s\n", e->name, bytes, why ? why : spd_errmsg(), old);
    if (tcmu_attr_restore(e->dir, "dev_size", seen, old))
        fprintf(stderr, "spd: TCMU %s: %s\n", e->name, spd_errmsg());
}

/* A reconfiguration of this export's backstore. */
static void reconfigure(spd_tcmu_export *e, const struct tcmu_nl_event *ev)
{
    char mine[SPD_TCMU_NAME_MAX + 8];
    switch (ev->what) {
    case TCMU_NL_SIZE:
        resize(e, ev->dev_size);
        break;
    case TCMU_NL_CONFIG:   /* it names the device: it stays */
        snprintf(mine, sizeof mine, "spd/%s", e->name);
        if (strcmp(ev->config, mine)) {
            fprintf(stderr, "spd: TCMU %s: dev_config '%s' refused: it "
                    "stays %s\n", e->name, ev->config, mine);
            if (tcmu_attr_restore(e->dir, "dev_config", ev->config, mine))
                fprintf(stderr, "spd: TCMU %s: %s\n", e->name, spd_errmsg());
        }
        break;
    default:   /* the write cache: the engine reports the unit's own */
        break;
    }
}

static void nl_event(void *arg, const struct tcmu_nl_event *ev)
{
    spd_tcmu_export *e = arg;
    if (ev->minor == e->minor && ev->cmd == TCMU_CMD_RECONFIG_DEVICE)
        reconfigure(e, ev);
    /* Added and removed: Spd adds and removes its backstores itself;
     * other devices are not Spd's. */
}

static void nl_events(spd_tcmu_export *e)
{
    int r;
    while ((r = tcmu_nl_read(&e->nl, nl_event, e)) > 0)
        ;
    if (r < 0)
        fprintf(stderr, "spd: TCMU %s: netlink: %s\n", e->name,
                strerror(-r));
}

/* ------------------------------------------------------------------ */
/* The ring's thread                                                   */
/* ------------------------------------------------------------------ */

static void *ring_thread(void *arg)
{
    spd_tcmu_export *e = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    current_export = e;
    struct pollfd fds[3] = { { .fd = e->uio, .events = POLLIN },
                             { .fd = e->efd, .events = POLLIN },
                             { .fd = e->nl.fd, .events = POLLIN } };
    for (;;) {
        if (!atomic_load(&e->stopping))
            take_new(e);
        complete_done(e);
        if (atomic_load(&e->stopping) && !e->inflight)
            break;
        if (poll(fds, 3, -1) < 0 && errno != EINTR)
            break;
        if (fds[2].revents)
            nl_events(e);
        if (fds[0].revents & POLLIN) {
            uint32_t events;
            if (read(e->uio, &events, sizeof events) < 0) {
                /* The device is going away: only completions matter. */
            }
        }
        if (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL))
            fds[0].fd = -1;
        if (fds[1].revents & POLLIN) {
            uint64_t v;
            if (read(e->efd, &v, sizeof v) < 0) {
                /* Another read took it: nothing lost. */
            }
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* The export                                                          */
/* ------------------------------------------------------------------ */

int spd_tcmu_name_check(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (!n || n > SPD_TCMU_NAME_MAX ||
        strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789_-.") != n || name[0] == '.')
        return spd_set_error(EINVAL, "'%s' is no TCMU backstore name: 1 to "
                             "%d letters, digits, '_', '-' or '.', not "
                             "starting with '.'", name ? name : "",
                             SPD_TCMU_NAME_MAX);
    return 0;
}

int spd_tcmu_available(bool loop)
{
    struct stat st;
    if (geteuid() != 0)
        return spd_set_error(EACCES, "a TCMU backstore needs root (LIO's "
                             "configfs)");
    if (stat(TCMU_TARGET, &st) || stat("/sys/module/target_core_user", &st))
        return spd_set_error(ENODEV, "this kernel has no TCMU "
                             "(target_core_user) loaded: modprobe "
                             "target_core_user%s; configfs at "
                             "/sys/kernel/config", loop ? " tcm_loop" : "");
    if (loop && stat("/sys/module/tcm_loop", &st))
        return spd_set_error(ENODEV, "this kernel has no tcm_loop loaded: "
                             "modprobe tcm_loop");
    return 0;
}

spd_tcmu_export *spd_tcmu_export_create(const spd_tcmu_options *options)
{
    spd_tcmu_options o = { SPD_TCMU_OPTIONS_INIT };
    if (!options || options->size < sizeof(uint32_t) ||
        options->size > sizeof o) {
        spd_set_error(EINVAL, "TCMU options missing or of unknown size");
        return NULL;
    }
    memcpy(&o, options, options->size);
    if (spd_tcmu_name_check(o.name))
        return NULL;
    if (o.reservations != SPD_TCMU_RESERVATIONS_LIO &&
        o.reservations != SPD_TCMU_RESERVATIONS_SPD) {
        spd_set_error(EINVAL, "TCMU: reservations %d: neither LIO's nor "
                      "Spd's", (int)o.reservations);
        return NULL;
    }
    spd_tcmu_export *e = calloc(1, sizeof *e);
    if (!e) {
        spd_set_error(ENOMEM, "out of memory");
        return NULL;
    }
    snprintf(e->name, sizeof e->name, "%s", o.name);
    o.name = e->name;
    e->opt = o;
    e->uio = e->efd = e->minor = e->nl.fd = -1;
    return e;
}

int spd_tcmu_export_add(spd_tcmu_export *e, spd_unit *unit)
{
    if (!unit)
        return spd_set_error(EINVAL, "TCMU: no unit");
    if (e->unit)
        return spd_set_error(EBUSY, "TCMU: one unit per export");
    e->unit = unit;
    return 0;
}

/* Open /dev/uioN (devtmpfs or udev makes it as the device is added) and
 * map the mailbox, ring and data area. */
static int ring_open(spd_tcmu_export *e)
{
    int minor;
    int r = tcmu_uio_find(e->name, &minor, &e->map_len);
    if (r)
        return r;
    char path[32];
    snprintf(path, sizeof path, "/dev/uio%d", minor);
    e->minor = minor;
    for (int i = 0; i < 200; i++) {
        e->uio = open(path, O_RDWR | O_CLOEXEC);
        if (e->uio >= 0 || errno != ENOENT)
            break;
        nanosleep(&(struct timespec){ .tv_nsec = 25000000 }, NULL);
    }
    if (e->uio < 0 && errno == EBUSY)
        return spd_set_error(EEXIST, "TCMU backstore %s is served by "
                             "another process (%s is open)", e->name, path);
    if (e->uio < 0)
        return spd_set_error(errno, "%s: %s", path, strerror(errno));
    void *m = mmap(NULL, e->map_len, PROT_READ | PROT_WRITE, MAP_SHARED,
                   e->uio, 0);
    if (m == MAP_FAILED)
        return spd_set_error(errno, "%s: mmap of %zu bytes: %s", path,
                             e->map_len, strerror(errno));
    e->map = m;
    e->mb = m;
    if (e->mb->version != TCMU_MAILBOX_VERSION ||
        !(e->mb->flags & TCMU_MAILBOX_FLAG_CAP_OOOC) ||
        !in_map(e, e->mb->cmdr_off, e->mb->cmdr_size) || !e->mb->cmdr_size)
        return spd_set_error(EOPNOTSUPP, "%s: a TCMU mailbox of version %u "
                             "without out-of-order completion: this kernel "
                             "is too old", path, e->mb->version);
    e->ring = e->map + e->mb->cmdr_off;
    e->ring_size = e->mb->cmdr_size;
    return 0;
}

static void ring_close(spd_tcmu_export *e)
{
    if (e->thread_started) {
        uint64_t one = 1;
        atomic_store(&e->stopping, true);
        if (write(e->efd, &one, sizeof one) < 0) {
            /* The counter cannot overflow with our writes. */
        }
        pthread_join(e->thread, NULL);
        e->thread_started = false;
    }
    if (e->map)
        munmap(e->map, e->map_len);
    e->map = NULL;
    if (e->uio >= 0)
        close(e->uio);
    if (e->efd >= 0)
        close(e->efd);
    e->uio = e->efd = e->minor = -1;
    tcmu_nl_close(&e->nl);
    while (e->free) {
        struct tcmu_slot *s = e->free;
        e->free = s->next;
        free(s->iov);
        free(s->bounce);
        free(s);
    }
}

/* The unit serial number the engine reports (VPD page 80h), by which
 * the tcm_loop disk is found. */
static void unit_serial(const spd_tcmu_export *e, char out[33])
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *u = spd_unit_params(e->unit)->uuid;
    for (int i = 0; i < 16; i++) {
        out[2 * i] = digits[u[i] >> 4];
        out[2 * i + 1] = digits[u[i] & 0x0f];
    }
    out[32] = '\0';
}

int spd_tcmu_export_start(spd_tcmu_export *e)
{
    if (e->started)
        return spd_set_error(EBUSY, "TCMU: already started");
    if (!e->unit)
        return spd_set_error(EINVAL, "TCMU: no unit added");
    int r = spd_tcmu_available(e->opt.loop);
    if (r)
        return r;
    const spd_params *p = spd_unit_params(e->unit);
    uint32_t max = p->max_transfer_length ? p->max_transfer_length
                                          : SPD_DEFAULT_MAX_TRANSFER;
    if (max > TCMU_MAX_IO_BYTES)
        max = TCMU_MAX_IO_BYTES;
    struct tcmu_geometry geo = {
        .block_length = p->block_length, .block_count = p->block_count,
        .max_sectors = max / p->block_length ? max / p->block_length : 1,
    };
    /* The kernel's events first, so that none is missed; without them
     * the backstore is served all the same, its attributes fixed. */
    if (tcmu_nl_open(&e->nl))
        fprintf(stderr, "spd: TCMU %s: %s: dev_size and dev_config cannot "
                "be changed while served\n", e->name, spd_errmsg());
    e->max_blocks = p->block_count;
    bool existed = false;
    char serial[33];
    unit_serial(e, serial);
    r = tcmu_backstore_create(e->name, &geo, serial, e->dir, sizeof e->dir,
                              &existed);
    if (r) {
        tcmu_nl_close(&e->nl);
        return r;
    }
    e->efd = eventfd(0, EFD_CLOEXEC);
    if (e->efd < 0) {
        r = spd_set_error(errno, "eventfd: %s", strerror(errno));
        goto fail;
    }
    if ((r = tcmu_reservations_set(e->dir, e->opt.reservations ==
                                            SPD_TCMU_RESERVATIONS_LIO)) ||
        (r = ring_open(e)))
        goto fail;
    /* A dead process's commands: failed BUSY (retried), the ring empty. */
    if (existed && (r = tcmu_ring_reset(e->dir)))
        goto fail;
    e->next = e->tail = __atomic_load_n(mb_field(e, offsetof(
                            struct tcmu_mailbox, cmd_tail)), __ATOMIC_ACQUIRE);
    atomic_store(&e->stopping, false);
    r = -pthread_create(&e->thread, NULL, ring_thread, e);
    if (r) {
        spd_set_error(-r, "TCMU thread: %s", strerror(-r));
        goto fail;
    }
    e->thread_started = true;
    if (e->opt.loop && (r = tcmu_loop_create(e->name, e->dir)))
        goto fail;
    if (e->opt.loop) {
        char disk[32];
        for (int i = 0; i < 400 && tcmu_loop_disk(serial, disk, sizeof disk);
             i++)
            nanosleep(&(struct timespec){ .tv_nsec = 25000000 }, NULL);
    }
    e->started = true;
    return 0;
fail:
    if (e->opt.loop)
        tcmu_loop_remove(e->name);
    ring_close(e);
    if (!existed)
        tcmu_backstore_remove(e->dir);
    return r;
}

const char *spd_tcmu_export_backstore(const spd_tcmu_export *e)
{
    return e && e->started ? e->dir : NULL;
}

int spd_tcmu_export_disk(const spd_tcmu_export *e, char *buf, size_t len)
{
    char serial[33];
    if (!e || !e->started || !e->opt.loop)
        return -ENOENT;
    unit_serial(e, serial);
    char name[64];
    if (tcmu_loop_disk(serial, name, sizeof name))
        return -ENOENT;
    if (strlen(name) >= len)
        return -ERANGE;
    snprintf(buf, len, "%s", name);
    return 0;
}

void spd_tcmu_export_stop(spd_tcmu_export *e)
{
    if (!e || !e->started)
        return;
    /* The disk first: the kernel removes it once its commands are
     * answered, which the ring's thread still does. */
    if (e->opt.loop)
        tcmu_loop_remove(e->name);
    ring_close(e);
    tcmu_backstore_remove(e->dir);
    e->started = false;
}

void spd_tcmu_export_destroy(spd_tcmu_export *e)
{
    if (!e)
        return;
    spd_tcmu_export_stop(e);
    free(e);
}
