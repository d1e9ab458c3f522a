/*
 * fuzz_scsi.c - arbitrary CDBs and data through a real unit: the SCSI
 * engine's preamble and handlers, the unit core's checks and splitting,
 * sense building and the debug log, with spd_unit_scsi_run() as a
 * transport would call it.
 *
 * Input: one configuration byte, then commands until the input ends:
 *
 *   config   bits 0-1 geometry: 512 x 128, 4096 x 32, 65536 x 4 blocks
 *                     in memory, or 512 x (2^32 + 64) with no memory and
 *                     16 MiB per device call
 *            bit 2 write protected   bit 3 unmap   bit 4 unmap reads zero
 *            bit 5 volatile cache    bit 6 max transfer of two blocks
 *                                            (1 MiB past 2^32 blocks)
 *            bit 7 the device fails I/O touching LBA 5: with a sense
 *                  (MEDIUM ERROR) for an input of odd length, -EIO for
 *                  an even one
 *   command  cdb_len (1 byte, passed on as is, even past SPD_CDB_MAX),
 *            min(cdb_len, 32) CDB bytes, then 3 bytes big-endian: bit 23
 *            set when data follows, bits 22-0 data_len (at most MAX_DATA:
 *            larger values mean MAX_DATA); with bit 23, data_len bytes of
 *            data follow (bytes the input lacks are zero), without it the
 *            buffer is zeros. The buffer is exactly data_len bytes, so ASan
 *            sees any access past it.
 *
 * After each command: the status is GOOD or CHECK CONDITION and agrees
 * with the sense bytes; data_in_len fits the buffer and what
 * spd_unit_scsi_plan() announced; a CDB the plan refused fails with the
 * same sense; a GOOD READ returned the device's blocks and a GOOD WRITE
 * stored its data. The device (memunit.h in checking mode) asserts every
 * call keeps the promises of spd.h.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/bytes.h"
#include "memunit.h"
#include "spd/scsi.h"

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size);

#define MAX_COMMANDS 32
/* The whole of the largest unit in memory, and a block more. */
#define MAX_DATA     (4 * 65536 + 512)
#define FAIL_LBA     5

enum {
    CFG_GEOMETRY = 0x03,
    CFG_WP = 0x04,
    CFG_UNMAP = 0x08,
    CFG_LBPRZ = 0x10,
    CFG_CACHE = 0x20,
    CFG_SMALL_TRANSFER = 0x40,
    CFG_FAULT = 0x80,
};

/* The unit past 2^32 blocks takes 16 MiB per device call, or 1 MiB (the
 * default) with the small transfer bit, never two blocks: a WRITE SAME of
 * 2^32 blocks (allowed, and cheap to ask for) then costs 2^17 or 2^21
 * calls rather than 2^31, and the fuzzer keeps its pace. */
static const struct geometry {
    uint32_t block_length;
    uint64_t block_count;
    uint32_t max_transfer;      /* 0: the default */
    uint32_t small_transfer;    /* with CFG_SMALL_TRANSFER */
    bool store;
} geometries[4] = {
    { 512, 128, 0, 2 * 512, true },
    { 4096, 32, 0, 2 * 4096, true },
    { 65536, 4, 0, 2 * 65536, true },
    { 512, (1ull << 32) + 64, 16u << 20, 1u << 20, false },
};

/* The debug log: /dev/null, or stderr with SPD_FUZZ_LOG set (to see what
 * a saved input does). */
static FILE *log_file;

/* A fresh device for each input, its memory holding the sparse content,
 * so an input does the same on every run. */
static struct memunit *device_for(uint8_t config, size_t size)
{
    unsigned g = config & CFG_GEOMETRY;
    spd_params p = { SPD_PARAMS_INIT,
        .uuid = { 0x5f, 0x75, 0x7a, 0x7a, 0x73, 0x63, 0x73, 0x69,
                  0x80, 0, 0, 0, 0, 0, 0, 1 },
        .block_length = geometries[g].block_length,
        .block_count = geometries[g].block_count,
        .write_protected = config & CFG_WP,
        .unmap_supported = config & CFG_UNMAP,
        .unmap_reads_zero = (config & CFG_UNMAP) && (config & CFG_LBPRZ),
        .cache_supported = config & CFG_CACHE,
        .max_transfer_length = config & CFG_SMALL_TRANSFER
                               ? geometries[g].small_transfer
                               : geometries[g].max_transfer,
    };
    unsigned modes = MEMUNIT_FAST | MEMUNIT_CHECKING | MEMUNIT_EXTENT |
                     (geometries[g].store ? 0 : MEMUNIT_SPARSE);
    struct memunit *d = memunit_create_modes(&p, 0, modes);
    if (!d)
        fprintf(stderr, "fuzz: memunit_create_modes: %s\n", spd_errmsg());
    memunit_require(d != NULL, "unit created");
    memunit_fill(d);
    if (config & CFG_FAULT) {
        d->fail_lba = FAIL_LBA;
        d->fail_result = size % 2 ? SPD_CHECK : -EIO;
    }
    if (!log_file)
        log_file = getenv("SPD_FUZZ_LOG") ? stderr : fopen("/dev/null", "w");
    /* Format every log line too: names of arbitrary CDBs and statuses. */
    if (log_file)
        spd_unit_set_debug_log(d->unit, SPD_DEBUG_ALL, log_file);
    return d;
}

/* ------------------------------------------------------------------ */
/* Checks                                                               */
/* ------------------------------------------------------------------ */

/* Sense bytes of a CHECK CONDITION: fixed (70h) or descriptor (72h)
 * format, their length as they say, saying what cmd->status says. */
static void check_sense(const spd_scsi_cmd *cmd)
{
    const uint8_t *s = cmd->sense;
    const spd_status *st = &cmd->status;

    if (cmd->scsi_status == SPD_STATUS_GOOD) {
        memunit_require(cmd->sense_len == 0, "GOOD without sense");
        return;
    }
    memunit_require(cmd->scsi_status == SPD_STATUS_CHECK_CONDITION,
                 "status GOOD or CHECK CONDITION");
    memunit_require(cmd->sense_len >= 8 && cmd->sense_len <= SPD_SENSE_MAX,
                 "sense length in range");
    memunit_require(cmd->sense_len == 8u + s[7], "additional sense length");
    memunit_require(st->sense_key != 0, "a CHECK CONDITION names an error");
    if ((s[0] & 0x7f) == 0x70) {
        memunit_require(cmd->sense_len >= 14, "fixed sense has its ASC");
        memunit_require((s[2] & 0x0f) == st->sense_key && s[12] == st->asc &&
                     s[13] == st->ascq, "fixed sense matches the status");
        bool valid = st->info_valid && st->information <= UINT32_MAX;
        memunit_require(!!(s[0] & 0x80) == valid, "fixed sense VALID bit");
        if (valid)
            memunit_require(get_be32(s + 3) == st->information,
                         "fixed sense INFORMATION");
    } else {
        memunit_require(s[0] == 0x72, "sense format 70h or 72h");
        memunit_require((s[1] & 0x0f) == st->sense_key && s[2] == st->asc &&
                     s[3] == st->ascq, "descriptor sense matches the status");
    }
}

static bool status_equal(const spd_status *a, const spd_status *b)
{
    return a->scsi_status == b->scsi_status &&
           a->sense_key == b->sense_key && a->asc == b->asc &&
           a->ascq == b->ascq && !memcmp(a->sks, b->sks, 3) &&
           a->info_valid == b->info_valid &&
           (!a->info_valid || a->information == b->information);
}

/* LBA and block count of a READ or WRITE CDB, decoded here independently
 * of the engine's table. */
static bool rw_decode(const uint8_t *cdb, bool *write, uint64_t *lba,
                      uint64_t *blocks)
{
    switch (cdb[0]) {
    case SPD_SCSI_READ_6:
    case SPD_SCSI_WRITE_6:
        *lba = get_be24(cdb + 1) & 0x1fffff;
        *blocks = cdb[4] ? cdb[4] : 256;
        break;
    case SPD_SCSI_READ_10:
    case SPD_SCSI_WRITE_10:
        *lba = get_be32(cdb + 2);
        *blocks = get_be16(cdb + 7);
        break;
    case SPD_SCSI_READ_12:
    case SPD_SCSI_WRITE_12:
        *lba = get_be32(cdb + 2);
        *blocks = get_be32(cdb + 6);
        break;
    case SPD_SCSI_READ_16:
    case SPD_SCSI_WRITE_16:
        *lba = get_be64(cdb + 2);
        *blocks = get_be32(cdb + 10);
        break;
    default:
        return false;
    }
    *write = cdb[0] == SPD_SCSI_WRITE_6 || cdb[0] == SPD_SCSI_WRITE_10 ||
             cdb[0] == SPD_SCSI_WRITE_12 || cdb[0] == SPD_SCSI_WRITE_16;
    return true;
}

/* A GOOD READ returned the device's blocks; a GOOD WRITE stored its data. */
static void check_medium(const struct memunit *d, const spd_scsi_cmd *cmd)
{
    bool write;
    uint64_t lba, blocks;
    size_t bl = d->params.block_length;

    if (cmd->scsi_status != SPD_STATUS_GOOD ||
        !rw_decode(cmd->cdb, &write, &lba, &blocks))
        return;
    uint64_t bytes = blocks * bl;
    const uint8_t *data = cmd->data;
    if (!write) {
        uint64_t want = bytes < cmd->data_len ? bytes : cmd->data_len;
        memunit_require(cmd->data_in_len == want, "READ returns what fits");
        if (d->data && cmd->data_in_len)
            memunit_require(!memcmp(data, d->data + lba * bl, cmd->data_in_len),
                            "READ returns the device's data");
        for (uint32_t i = 0; !d->data && i < cmd->data_in_len; i++)
            memunit_require(data[i] == memunit_sparse_byte(lba + i / bl,
                                                           (uint32_t)(i % bl)),
                            "READ returns the sparse content");
        return;
    }
    memunit_require(cmd->data_len >= bytes, "WRITE had its data");
    if (d->data && bytes)
        memunit_require(!memcmp(d->data + lba * bl, data, bytes),
                     "WRITE stored its data");
}

static void check_command(const struct memunit *d, const spd_scsi_cmd *cmd,
                          int rc, int plan, spd_data_dir dir,
                          uint32_t length, const spd_status *planned)
{
    memunit_require(rc == cmd->scsi_status, "spd_unit_scsi_run returns status");
    memunit_require(cmd->scsi_status == cmd->status.scsi_status,
                 "scsi_status is status.scsi_status");
    memunit_require(cmd->data_in_len <= cmd->data_len, "data_in_len <= data_len");
    memunit_require(cmd->data || !cmd->data_in_len, "no data in without buffer");
    check_sense(cmd);

    if (plan == SPD_CHECK) {
        memunit_require(status_equal(&cmd->status, planned),
                     "a CDB the plan refused fails the same way");
        memunit_require(cmd->data_in_len == 0, "no data from a refused CDB");
        return;
    }
    memunit_require(plan == 0, "plan returns 0 or SPD_CHECK");
    memunit_require(dir <= SPD_DIR_OUT && (dir == SPD_DIR_NONE) == (length == 0),
                 "plan direction and length agree");
    if (dir != SPD_DIR_IN)
        memunit_require(cmd->data_in_len == 0, "data in only for data-in CDBs");
    else
        memunit_require(cmd->data_in_len <= length,
                     "data in within the planned length");
    check_medium(d, cmd);
}

/* ------------------------------------------------------------------ */
/* The entry point                                                      */
/* ------------------------------------------------------------------ */

/* Take up to n bytes from the input. */
static size_t take(const uint8_t **p, const uint8_t *end, void *out, size_t n)
{
    size_t have = (size_t)(end - *p);
    if (n > have)
        n = have;
    if (n)
        memcpy(out, *p, n);
    *p += n;
    return n;
}

static void run_one(struct memunit *d, const uint8_t **p,
                    const uint8_t *end)
{
    spd_scsi_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.size = sizeof cmd;
    uint8_t len_byte = 0, len_be[3] = { 0, 0, 0 };

    take(p, end, &len_byte, 1);
    take(p, end, cmd.cdb, len_byte < SPD_CDB_MAX ? len_byte : SPD_CDB_MAX);
    cmd.cdb_len = len_byte;
    take(p, end, len_be, 3);
    bool with_data = len_be[0] & 0x80;
    cmd.data_len = get_be24(len_be) & 0x7fffff;
    if (cmd.data_len > MAX_DATA)
        cmd.data_len = MAX_DATA;
    if (cmd.data_len) {
        cmd.data = calloc(1, cmd.data_len);
        memunit_require(cmd.data != NULL, "out of memory");
        if (with_data)
            take(p, end, cmd.data, cmd.data_len);
    }

    spd_scsi_cmd plan_cmd = cmd;
    int plan = spd_unit_scsi_plan(d->unit, &plan_cmd, SPD_SCSI_NO_LIMIT);
    int rc = spd_unit_scsi_run(d->unit, &cmd);
    check_command(d, &cmd, rc, plan, plan_cmd.dir, plan_cmd.transfer_length,
                  &plan_cmd.status);
    free(cmd.data);
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size)
{
    if (size < 1)
        return 0;
    struct memunit *d = device_for(input[0], size);
    const uint8_t *p = input + 1, *end = input + size;
    for (int n = 0; n < MAX_COMMANDS && p < end; n++)
        run_one(d, &p, end);
    memunit_destroy(d);
    return 0;
}
