/*
 * xcopy.c - EXTENDED COPY (LID1) and RECEIVE COPY RESULTS (SPC-4), the
 * subset hypervisors use to clone blocks: block to block segments (02h)
 * within the logical unit, which an identification target descriptor
 * (E4h) names by its NAA designator (VPD 83h). The whole parameter list
 * is checked before anything is copied; the copy then runs as block
 * requests of the unit core, a chunk read into the engine's buffer and
 * written back (scsi_io_again), so the data never crosses the network.
 */
#include <stdlib.h>
#include <string.h>

#include "scsi/scsi_int.h"

#define HEADER_LEN       16
#define TARGET_LEN       32     /* target descriptors are all 32 bytes */
#define SEGMENT_B2B_LEN  28     /* block to block: 4 + 18h */
#define TARGET_IDENT     0xe4   /* identification descriptor */
#define SEGMENT_B2B      0x02
#define MAX_TARGETS      2
#define MAX_SEGMENTS     16
#define MAX_LIST_LEN     1024   /* target and segment descriptors */
#define CHUNK_BYTES      (1u << 20)

/* LIST ID USAGE (header byte 1): 11b asks for no copy status. */
#define LIST_ID_DISCARD  0x18

struct xcopy_seg {
    uint64_t src, dst;
    uint32_t blocks;
};

/* The copy under way: task->owned. */
struct xcopy_run {
    unsigned count, next;       /* segments; the one being copied */
    uint32_t done;              /* its blocks copied so far */
    uint32_t chunk;             /* blocks per request */
    uint32_t copied;            /* blocks copied in all */
    int slot;                   /* the nexus, for COPY STATUS */
    uint8_t list_id;
    bool keep;                  /* record the copy status */
    struct xcopy_seg seg[MAX_SEGMENTS];
    _Alignas(8) uint8_t buf[];  /* chunk blocks */
};

static bool list_fail(spd_status *st, uint8_t key, uint16_t asc)
{
    scsi_sense_set(st, key, asc);
    return false;
}

/* Whether an identification target descriptor names this unit: its
 * designator is the NAA one of VPD 83h. */
static bool target_is_us(const struct scsi_lu *lu, const uint8_t *d)
{
    uint8_t naa[16];
    scsi_lu_naa(lu, naa);
    return (d[5] & 0x0f) == 0x03 && d[7] == 16 && !memcmp(d + 8, naa, 16);
}

/* Target descriptors: each must be an identification descriptor; *ours
 * gets a bit for each that names this unit. */
static bool parse_targets(const struct scsi_lu *lu, const uint8_t *p,
                          size_t len, unsigned *ours, spd_status *st)
{
    if (len % TARGET_LEN)
        return list_fail(st, SPD_KEY_ILLEGAL_REQUEST,
                         SPD_ASC_PARAMETER_LIST_LENGTH_ERROR);
    if (len / TARGET_LEN > MAX_TARGETS)
        return list_fail(st, SPD_KEY_ILLEGAL_REQUEST,
                         SPD_ASC_TOO_MANY_TARGET_DESCRIPTORS);
    *ours = 0;
    for (size_t i = 0; i < len / TARGET_LEN; i++) {
        const uint8_t *d = p + i * TARGET_LEN;
        if (d[0] != TARGET_IDENT)
            return list_fail(st, SPD_KEY_ILLEGAL_REQUEST,
                             SPD_ASC_UNSUPPORTED_TARGET_DESCRIPTOR);
        if (target_is_us(lu, d) && (d[1] & 0x1f) == 0 &&
            get_be24(d + 29) == lu->params->block_length)
            *ours |= 1u << i;
    }
    return true;
}

/* Segment descriptors: block to block, between targets that are this
 * unit, within its capacity. */
static bool parse_segments(const struct scsi_lu *lu, const uint8_t *p,
                           size_t len, unsigned ours, struct xcopy_run *run,
                           spd_status *st)
{
    uint64_t capacity = lu->params->block_count;
    run->count = 0;
    for (size_t off = 0; off < len;) {
        const uint8_t *d = p + off;
        if (len - off < 4)
            return list_fail(st, SPD_KEY_ILLEGAL_REQUEST,
                             SPD_ASC_PARAMETER_LIST_LENGTH_ERROR);
        if (d[0] != SEGMENT_B2B)
            return list_fail(st, SPD_KEY_ILLEGAL_REQUEST,
                             SPD_ASC_UNSUPPORTED_SEGMENT_DESCRIPTOR);
        if (get_be16(d + 2) != SEGMENT_B2B_LEN - 4 ||
            len - off < SEGMENT_B2B_LEN)
            return list_fail(st, SPD_KEY_ILLEGAL_REQUEST,
                             SPD_ASC_PARAMETER_LIST_LENGTH_ERROR);
        if (run->count == MAX_SEGMENTS)
            return list_fail(st, SPD_KEY_ILLEGAL_REQUEST,
                             SPD_ASC_TOO_MANY_SEGMENT_DESCRIPTORS);
        uint16_t src = get_be16(d + 4), dst = get_be16(d + 6);
        if (src >= MAX_TARGETS || dst >= MAX_TARGETS ||
            !(ours >> src & 1) || !(ours >> dst & 1))
            return list_fail(st, SPD_KEY_COPY_ABORTED,
                             SPD_ASC_UNREACHABLE_COPY_TARGET);
        struct xcopy_seg s = { .blocks = get_be16(d + 10),
                               .src = get_be64(d + 12),
                               .dst = get_be64(d + 20) };
        if (s.src > capacity || s.blocks > capacity - s.src ||
            s.dst > capacity || s.blocks > capacity - s.dst)
            return list_fail(st, SPD_KEY_COPY_ABORTED,
                             SPD_ASC_NO_ADDITIONAL_SENSE);
        if (s.blocks)
            run->seg[run->count++] = s;
        off += SEGMENT_B2B_LEN;
    }
    return true;
}

/* The parameter list header (SPC-4 EXTENDED COPY(LID1) parameter list):
 * lengths within what arrived and the limits of OPERATING PARAMETERS;
 * no inline data. */
static bool parse_header(const uint8_t *p, size_t len, size_t *tlen,
                         size_t *slen, spd_status *st)
{
    if (len < HEADER_LEN)
        return list_fail(st, SPD_KEY_ILLEGAL_REQUEST,
                         SPD_ASC_PARAMETER_LIST_LENGTH_ERROR);
    if ((p[1] & 0x18) == 0x08) {                /* LIST ID USAGE 01b */
        scsi_invalid_field(st, false, 1, 4);
        return false;
    }
    *tlen = get_be16(p + 2);
    *slen = get_be32(p + 8);
    if (get_be32(p + 12)) {                     /* INLINE DATA LENGTH */
        scsi_invalid_field(st, false, 12, -1);
        return false;
    }
    if (*tlen + *slen > MAX_LIST_LEN || HEADER_LEN + *tlen + *slen > len)
        return list_fail(st, SPD_KEY_ILLEGAL_REQUEST,
                         SPD_ASC_PARAMETER_LIST_LENGTH_ERROR);
    return true;
}

/* The next request of a copy: a read of the next chunk. */
static void copy_read(const struct scsi_lu *lu, struct scsi_task *task,
                      struct xcopy_run *run)
{
    (void)lu;
    const struct xcopy_seg *s = &run->seg[run->next];
    uint32_t n = s->blocks - run->done;
    task->io = (spd_request){ SPD_REQUEST_INIT,
        .op = SPD_OP_READ, .lba = s->src + run->done,
        .blocks = n < run->chunk ? n : run->chunk, .buf = run->buf,
    };
}

enum scsi_action spc_xcopy(struct scsi_lu *lu, struct scsi_task *task,
                           const struct scsi_args *a)
{
    size_t len = a->count < task->data_len ? a->count : task->data_len;
    const uint8_t *p = task->data;
    size_t tlen, slen;
    unsigned ours;

    if (a->count == 0)          /* SPC-4: not an error, nothing copied */
        return SCSI_DONE;
    if (!parse_header(p, len, &tlen, &slen, &task->status) ||
        !parse_targets(lu, p + HEADER_LEN, tlen, &ours, &task->status))
        return SCSI_DONE;
    uint32_t bl = lu->params->block_length;
    uint32_t chunk = CHUNK_BYTES / bl ? CHUNK_BYTES / bl : 1;
    if (chunk > lu->max_transfer_blocks)
        chunk = lu->max_transfer_blocks;
    struct xcopy_run *run = malloc(sizeof *run + (size_t)chunk * bl);
    if (!(task->owned = run)) {
        scsi_sense_set(&task->status, SPD_KEY_HARDWARE_ERROR,
                       SPD_ASC_INTERNAL_TARGET_FAILURE);
        return SCSI_DONE;
    }
    *run = (struct xcopy_run){ .chunk = chunk, .slot = task->slot,
                               .list_id = p[0],
                               .keep = (p[1] & 0x18) != LIST_ID_DISCARD };
    if (!parse_segments(lu, p + HEADER_LEN + tlen, slen, ours, run,
                        &task->status))
        return SCSI_DONE;
    if (!run->count) {
        scsi_copy_record(lu, run->slot, run->list_id, run->keep, 0, 0);
        return SCSI_DONE;
    }
    task->rmw = RMW_COPY;
    copy_read(lu, task, run);
    return SCSI_IO;
}

/* After each request of a copy: the write of the chunk read, or the read
 * of the next; false once the copy is over (or failed). */
bool scsi_copy_again(struct scsi_lu *lu, struct scsi_task *task)
{
    struct xcopy_run *run = task->owned;
    spd_request *io = &task->io;
    if (spd_status_good(&task->status) && io->op == SPD_OP_READ) {
        *io = (spd_request){ SPD_REQUEST_INIT,
            .op = SPD_OP_WRITE, .lba = run->seg[run->next].dst + run->done,
            .blocks = io->blocks, .buf = run->buf,
        };
        return true;
    }
    if (spd_status_good(&task->status)) {
        run->done += (uint32_t)io->blocks;
        run->copied += (uint32_t)io->blocks;
        if (run->done == run->seg[run->next].blocks) {
            run->next++;
            run->done = 0;
        }
        if (run->next < run->count) {
            copy_read(lu, task, run);
            return true;
        }
    }
    scsi_copy_record(lu, run->slot, run->list_id, run->keep, run->next,
                     run->copied);
    return false;
}

bool scsi_copy_span(const struct scsi_task *task, uint64_t *lba,
                    uint64_t *blocks)
{
    const struct xcopy_run *run = task->owned;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (unsigned i = 0; i < run->count; i++) {
        const struct xcopy_seg *s = &run->seg[i];
        lo = s->dst < lo ? s->dst : lo;
        hi = s->dst + s->blocks > hi ? s->dst + s->blocks : hi;
    }
    *lba = lo;
    *blocks = hi - lo;
    return hi > lo;
}

/* ------------------------------------------------------------------ */
/* RECEIVE COPY RESULTS (SPC-4, LID1)                                   */
/* ------------------------------------------------------------------ */

/* The copy status a nexus may ask for (nexus_lock taken here). */
void scsi_copy_record(struct scsi_lu *lu, int slot, uint8_t list_id,
                      bool keep, unsigned segments, uint32_t blocks)
{
    if (!keep || slot < 0)
        return;
    pthread_mutex_lock(&lu->nexus_lock);
    struct scsi_copy_status *c = &lu->copies[lu->copy_next++ %
                                             SCSI_COPY_STATUS_MAX];
    *c = (struct scsi_copy_status){ .used = true, .slot = slot,
                                    .list_id = list_id,
                                    .segments = (uint16_t)segments,
                                    .blocks = blocks };
    pthread_mutex_unlock(&lu->nexus_lock);
}

/* COPY STATUS of an earlier EXTENDED COPY of this nexus's, by LIST
 * IDENTIFIER: completed, its segments and blocks. */
static size_t copy_status(struct scsi_lu *lu, const struct scsi_task *task,
                          uint8_t list_id, uint8_t *buf)
{
    const struct scsi_copy_status *found = NULL;
    pthread_mutex_lock(&lu->nexus_lock);
    for (unsigned i = 0; i < SCSI_COPY_STATUS_MAX; i++) {
        const struct scsi_copy_status *c = &lu->copies[i];
        if (c->used && c->slot == task->slot && c->list_id == list_id)
            found = c;
    }
    memset(buf, 0, 12);
    if (found) {
        put_be32(buf, 8);                       /* AVAILABLE DATA */
        buf[4] = 0x01;          /* COPY MANAGER STATUS: completed, good */
        put_be16(buf + 5, found->segments);     /* SEGMENTS PROCESSED */
        buf[7] = 0xf1;          /* TRANSFER COUNT UNITS: logical blocks */
        put_be32(buf + 8, found->blocks);
    }
    pthread_mutex_unlock(&lu->nexus_lock);
    return found ? 12 : 0;
}

static size_t operating_parameters(const struct scsi_lu *lu, uint8_t *buf)
{
    uint32_t bl = lu->params->block_length;
    memset(buf, 0, 46);
    put_be32(buf, 46 - 4);
    buf[4] = 0x01;                              /* SNLID */
    put_be16(buf + 8, MAX_TARGETS);
    put_be16(buf + 10, MAX_SEGMENTS);
    put_be32(buf + 12, MAX_LIST_LEN);
    put_be32(buf + 16, 0xffffu * bl);           /* MAXIMUM SEGMENT LENGTH */
    put_be16(buf + 34, 1);                      /* TOTAL CONCURRENT COPIES */
    buf[36] = 1;                                /* MAXIMUM CONCURRENT COPIES */
    buf[37] = (uint8_t)__builtin_ctz(bl);       /* DATA SEGMENT GRANULARITY */
    buf[43] = 2;                        /* IMPLEMENTED DESCRIPTOR LIST */
    buf[44] = SEGMENT_B2B;
    buf[45] = TARGET_IDENT;
    return 46;
}

enum scsi_action spc_rcr(struct scsi_lu *lu, struct scsi_task *task,
                         const struct scsi_args *a)
{
    uint8_t buf[64];
    size_t n;
    if ((a->cdb[1] & 0x1f) == SPD_SA_OPERATING_PARAMETERS) {
        n = operating_parameters(lu, buf);
    } else if (!(n = copy_status(lu, task, a->cdb[2], buf))) {
        scsi_invalid_field(&task->status, true, 2, -1);   /* LIST ID */
        return SCSI_DONE;
    }
    return scsi_reply(task, buf, n, a->count);
}
