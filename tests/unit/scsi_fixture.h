/*
 * scsi_fixture.h - what test_scsi_spc.c and test_scsi_sbc.c share: a
 * logical unit (parameters and engine state), one task and its data
 * buffer, run straight through the engine with no unit core; and status
 * checks that print what they saw.
 *
 * The data buffer holds SCSI_FIXTURE_DATA_SIZE bytes: 4 KiB unless the
 * test program defines it before including this header. A fixture too
 * large for the stack lives on the heap (fx_new, fx_free).
 *
 * Header only, all static inline, so the test programs' build lines need
 * nothing more.
 */
#ifndef SPD_TEST_SCSI_FIXTURE_H
#define SPD_TEST_SCSI_FIXTURE_H

#include "harness.h"

#include "util/bytes.h"
#include "scsi/engine.h"
#include "spd/scsi.h"

#ifndef SCSI_FIXTURE_DATA_SIZE
#define SCSI_FIXTURE_DATA_SIZE 4096
#endif

/* ------------------------------------------------------------------ */
/* Fixture                                                              */
/* ------------------------------------------------------------------ */

/* fx_init flags: parameters of the unit. */
enum { FX_WP = 1, FX_UNMAP = 2, FX_LBPRZ = 4, FX_CACHE = 8 };

struct fx {
    spd_params p;
    struct scsi_lu lu;
    struct scsi_task t;
    uint8_t data[SCSI_FIXTURE_DATA_SIZE];
};

/* Set up a fixture in fresh storage (or after fx_fini): block length bl,
 * blocks blocks, FX_* flags, the default maximum transfer. */
static inline void fx_init(struct fx *f, uint32_t bl, uint64_t blocks,
                           unsigned flags)
{
    static const uint8_t uuid[16] = {
        0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0x4d, 0xef,
        0x80, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
    };
    memset(f, 0, sizeof *f);
    memcpy(f->p.uuid, uuid, 16);
    f->p.block_length = bl;
    f->p.block_count = blocks;
    f->p.write_protected = flags & FX_WP;
    f->p.unmap_supported = flags & (FX_UNMAP | FX_LBPRZ);
    f->p.unmap_reads_zero = flags & FX_LBPRZ;
    f->p.cache_supported = flags & FX_CACHE;
    f->p.max_transfer_length = SPD_DEFAULT_MAX_TRANSFER;
    scsi_lu_init(&f->lu, &f->p, SPD_DEFAULT_MAX_TRANSFER / bl);
}

/* Free what the engine allocated for the last task. */
static inline void fx_fini(struct fx *f)
{
    scsi_task_fini(&f->t);
}

/* Give a fixture in use other parameters (its last task is finished). */
static inline void fx_reinit(struct fx *f, uint32_t bl, uint64_t blocks,
                             unsigned flags)
{
    fx_fini(f);
    fx_init(f, bl, blocks, flags);
}

/* A fixture on the heap, for data buffers too large for the stack. */
static inline struct fx *fx_new(uint32_t bl, uint64_t blocks, unsigned flags)
{
    struct fx *f = malloc(sizeof *f);
    if (!f) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    fx_init(f, bl, blocks, flags);
    return f;
}

static inline void fx_free(struct fx *f)
{
    fx_fini(f);
    free(f);
}

/* Execute cdb from nexus (NULL: the unit's own) with the first data_len
 * bytes of f->data as the buffer. */
static inline enum scsi_action fx_run_as(struct fx *f,
                                         const spd_scsi_nexus *nexus,
                                         const uint8_t *cdb, uint8_t len,
                                         uint32_t data_len)
{
    fx_fini(f);
    memset(&f->t, 0, sizeof f->t);
    f->t.cdb = cdb;
    f->t.cdb_len = len;
    f->t.data = f->data;
    f->t.data_len = data_len;
    f->t.nexus = nexus;
    return scsi_execute(&f->lu, &f->t);
}

/* The same from the unit's own nexus, as in-process callers. */
static inline enum scsi_action fx_run(struct fx *f, const uint8_t *cdb,
                                      uint8_t len, uint32_t data_len)
{
    return fx_run_as(f, NULL, cdb, len, data_len);
}

/* Run an immediate command with a data-out or data-in buffer of data_len:
 * expect SCSI_DONE. */
static inline void fx_done(struct fx *f, const uint8_t *cdb, uint8_t len,
                           uint32_t data_len)
{
    EXPECT_EQ(fx_run(f, cdb, len, data_len), SCSI_DONE);
}

/* Complete the task's block request as a device would: good, and for a
 * READ the buffer filled with the byte pattern. */
static inline void fx_complete(struct fx *f, uint8_t pattern)
{
    if (f->t.io.op == SPD_OP_READ)
        memset(f->t.io.buf, pattern,
               (size_t)f->t.io.blocks * f->p.block_length);
    f->t.io.status = (spd_status){ 0 };
    scsi_io_done(&f->lu, &f->t);
}

/* The engine's plan without a data-out limit: direction and bytes. */
static inline int fx_lu_plan(struct scsi_lu *lu, const uint8_t *cdb,
                             uint8_t len, spd_data_dir *dir, uint32_t *bytes,
                             spd_status *st)
{
    struct scsi_plan plan;
    uint64_t state[SCSI_STATE_SIZE / 8];
    int r = scsi_plan(lu, NULL, cdb, len, SPD_SCSI_NO_LIMIT, 0, &plan, state,
                      st);
    *dir = plan.dir;
    *bytes = plan.transfer_length;
    return r;
}

static inline int fx_plan(struct fx *f, const uint8_t *cdb, uint8_t len,
                          spd_data_dir *dir, uint32_t *bytes, spd_status *st)
{
    return fx_lu_plan(&f->lu, cdb, len, dir, bytes, st);
}

/* ------------------------------------------------------------------ */
/* Status checks that say what they saw                                 */
/* ------------------------------------------------------------------ */

static inline void expect_sense_at(const spd_status *st, uint8_t key,
                                   uint16_t asc, int line)
{
    bool ok = st->scsi_status == SPD_STATUS_CHECK_CONDITION &&
              st->sense_key == key && st->asc == SPD_ASC(asc) &&
              st->ascq == SPD_ASCQ(asc);
    if (!ok)
        fprintf(stderr, "  want key %x asc %04x, got status %02x key %x "
                "asc %02x%02x\n", key, asc, st->scsi_status, st->sense_key,
                st->asc, st->ascq);
    harness_check(ok, "sense", __FILE__, line);
}

static inline void expect_good_at(const spd_status *st, int line)
{
    if (st->scsi_status)
        fprintf(stderr, "  want GOOD, got status %02x key %x asc %02x%02x\n",
                st->scsi_status, st->sense_key, st->asc, st->ascq);
    harness_check(st->scsi_status == SPD_STATUS_GOOD, "good", __FILE__, line);
}

/* INVALID FIELD IN CDB (in_cdb) or PARAMETER LIST, with the field pointer
 * at byte and bit (bit < 0: no bit pointer). */
static inline void expect_field_at(const spd_status *st, bool in_cdb,
                                   uint16_t byte, int bit, int line)
{
    expect_sense_at(st, SPD_KEY_ILLEGAL_REQUEST,
                    in_cdb ? SPD_ASC_INVALID_FIELD_IN_CDB
                           : SPD_ASC_INVALID_FIELD_IN_PARAMETER_LIST, line);
    uint8_t want0 = (uint8_t)(0x80 | (in_cdb ? 0x40 : 0) |
                              (bit >= 0 ? 0x08 | bit : 0));
    bool ok = st->sks[0] == want0 && get_be16(st->sks + 1) == byte;
    if (!ok)
        fprintf(stderr, "  want field pointer %02x byte %u, got %02x byte "
                "%u\n", want0, byte, st->sks[0], get_be16(st->sks + 1));
    harness_check(ok, "field pointer", __FILE__, line);
}

/* The checks take the status itself and report the caller's line. */
#define EXPECT_SENSE(st, key, asc) expect_sense_at(&(st), key, asc, __LINE__)
#define EXPECT_GOOD(st) expect_good_at(&(st), __LINE__)
#define EXPECT_FIELD(st, in_cdb, byte, bit) \
    expect_field_at(&(st), in_cdb, byte, bit, __LINE__)
#define EXPECT_OUT_OF_RANGE(st) \
    EXPECT_SENSE(st, SPD_KEY_ILLEGAL_REQUEST, SPD_ASC_LBA_OUT_OF_RANGE)

#endif /* SPD_TEST_SCSI_FIXTURE_H */
