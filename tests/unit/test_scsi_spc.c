/*
 * test_scsi_spc.c - the SCSI engine's preamble and primary commands, called
 * directly (no unit core): unknown opcodes, CDB length, reserved bits with
 * their field pointers (checked against every row's usage mask), INQUIRY
 * and VPD pages, MODE SENSE/SELECT, REPORT LUNS, REPORT SUPPORTED
 * OPERATION CODES, REQUEST SENSE, sense data byte by byte, names.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

#include "scsi_fixture.h"
#include "memunit.h"

/* ------------------------------------------------------------------ */
/* Preamble                                                             */
/* ------------------------------------------------------------------ */

static void test_unknown_opcodes(void)
{
    struct fx f;
    fx_init(&f, 512, 1000, 0);
    const uint8_t cdbs[][16] = {
        { 0x01 },                       /* REZERO UNIT: not ours */
        { 0xff },
        { 0x04 },                       /* FORMAT UNIT */
        { 0x9e, 0x11 },                 /* SERVICE ACTION IN: unknown SA */
        { 0xa3, 0x0d },                 /* MAINTENANCE IN: unknown SA */
        { 0x42 },                       /* UNMAP on a unit without */
    };
    for (size_t i = 0; i < sizeof cdbs / sizeof cdbs[0]; i++) {
        fx_done(&f, cdbs[i], 16, 0);
        EXPECT_SENSE(f.t.status, SPD_KEY_ILLEGAL_REQUEST,
                     SPD_ASC_INVALID_COMMAND_OPERATION_CODE);
        EXPECT_EQ(f.t.status.sks[0], 0);
        spd_data_dir dir = SPD_DIR_IN;
        uint32_t len = 7;
        spd_status st;
        EXPECT_EQ(fx_lu_plan(&f.lu, cdbs[i], 16, &dir, &len, &st), SPD_CHECK);
        EXPECT_SENSE(st, SPD_KEY_ILLEGAL_REQUEST,
                     SPD_ASC_INVALID_COMMAND_OPERATION_CODE);
        EXPECT_EQ(dir, SPD_DIR_NONE);
        EXPECT_EQ(len, 0);
    }
    fx_fini(&f);
}

/* A CDB shorter than its command: INVALID FIELD IN CDB at byte 0. */
static void test_short_cdb(void)
{
    struct fx f;
    fx_init(&f, 512, 1000, 0);
    uint8_t cdb[16] = { SPD_SCSI_INQUIRY, 0, 0, 0, 36 };
    fx_done(&f, cdb, 5, 64);
    EXPECT_FIELD(f.t.status, true, 0, -1);
    cdb[0] = SPD_SCSI_READ_16;
    fx_done(&f, cdb, 10, 64);
    EXPECT_FIELD(f.t.status, true, 0, -1);
    cdb[0] = SPD_SCSI_SERVICE_ACTION_IN_16;
    fx_done(&f, cdb, 1, 64);
    EXPECT_FIELD(f.t.status, true, 0, -1);
    fx_done(&f, cdb, 0, 64);
    EXPECT_FIELD(f.t.status, true, 0, -1);
    /* Longer than needed is fine (transports pad to 16). */
    uint8_t tur[16] = { 0 };
    fx_done(&f, tur, 16, 0);
    EXPECT_GOOD(f.t.status);
    fx_fini(&f);
}

static void test_reserved_bits_pointer(void)
{
    struct fx f;
    fx_init(&f, 512, 1000, 0);
    uint8_t cdb[16] = { 0 };
    cdb[1] = 0x05;                      /* TUR: bits 2 and 0 reserved */
    fx_done(&f, cdb, 6, 0);
    EXPECT_FIELD(f.t.status, true, 1, 2);
    /* The control byte: NACA and anything else are refused. */
    uint8_t r10[10] = { SPD_SCSI_READ_10, 0, 0, 0, 0, 0, 0, 0, 1, 0x04 };
    fx_done(&f, r10, 10, 512);
    EXPECT_FIELD(f.t.status, true, 9, 2);
    /* GROUP NUMBER is not supported. */
    r10[9] = 0;
    r10[6] = 0x11;
    fx_done(&f, r10, 10, 512);
    EXPECT_FIELD(f.t.status, true, 6, 4);
    /* READ(6) byte 1 bits 7-5 (the old LUN field). */
    uint8_t r6[6] = { SPD_SCSI_READ_6, 0x20, 0, 0, 1, 0 };
    fx_done(&f, r6, 6, 512);
    EXPECT_FIELD(f.t.status, true, 1, 5);
    /* Reserved bits come before a bad LBA and before write protection. */
    fx_reinit(&f, 512, 1000, FX_WP);
    uint8_t w10[10] = { SPD_SCSI_WRITE_10, 0x02, 0xff, 0xff, 0xff, 0xff, 0,
                        0, 1, 0 };
    fx_done(&f, w10, 10, 512);
    EXPECT_FIELD(f.t.status, true, 1, 1);
    spd_data_dir dir;
    uint32_t len;
    spd_status st;
    EXPECT_EQ(fx_lu_plan(&f.lu, w10, 10, &dir, &len, &st), SPD_CHECK);
    EXPECT_FIELD(st, true, 1, 1);
    fx_fini(&f);
}

/* Every usage mask REPORT SUPPORTED OPERATION CODES reports is the one the
 * preamble enforces: each bit outside it fails with a pointer to it. */
static void test_usage_masks_enforced(void)
{
    struct fx f;
    fx_init(&f, 512, 1000, FX_LBPRZ);
    uint8_t all[16] = { SPD_SCSI_MAINTENANCE_IN,
                        SPD_SA_REPORT_SUPPORTED_OPCODES, 0, 0, 0, 0,
                        0, 0, 0x10, 0, 0, 0 };
    fx_done(&f, all, 12, sizeof f.data);
    EXPECT_GOOD(f.t.status);
    uint8_t list[4096];
    uint32_t list_len = f.t.data_in_len;
    memcpy(list, f.data, list_len);
    unsigned rows = 0, checked = 0;
    for (uint32_t off = 4; off + 8 <= list_len; off += 8, rows++) {
        uint8_t opcode = list[off];
        uint16_t sa = get_be16(list + off + 2);
        bool has_sa = list[off + 5] & 0x01;
        uint16_t cdb_len = get_be16(list + off + 6);

        uint8_t one[12] = { SPD_SCSI_MAINTENANCE_IN,
                            SPD_SA_REPORT_SUPPORTED_OPCODES,
                            has_sa ? 2 : 1, opcode, (uint8_t)(sa >> 8),
                            (uint8_t)sa, 0, 0, 0, 64, 0, 0 };
        fx_done(&f, one, 12, 64);
        EXPECT_GOOD(f.t.status);
        EXPECT_EQ(f.data[1] & 0x07, 0x03);
        EXPECT_EQ(get_be16(f.data + 2), cdb_len);
        EXPECT_EQ(f.data[4], opcode);
        uint8_t usage[16];
        memcpy(usage, f.data + 4, cdb_len);
        if (has_sa)
            EXPECT_EQ(usage[1] & 0x1f, 0x1f);
        EXPECT_EQ(usage[cdb_len - 1], 0);   /* control byte */

        for (unsigned byte = 1; byte < cdb_len; byte++) {
            for (int bit = 0; bit < 8; bit++) {
                if (usage[byte] & (1u << bit))
                    continue;
                uint8_t cdb[16] = { opcode, (uint8_t)(has_sa ? sa : 0) };
                cdb[byte] |= (uint8_t)(1u << bit);
                fx_done(&f, cdb, (uint8_t)cdb_len, sizeof f.data);
                EXPECT_FIELD(f.t.status, true, (uint16_t)byte, bit);
                checked++;
            }
        }
    }
    EXPECT_EQ(rows, 62);
    EXPECT(checked > 300);
    fx_fini(&f);
}

/* What each command will transfer, before any data. */
static void test_plan_directions(void)
{
    struct fx f;
    fx_init(&f, 4096, 1000, FX_LBPRZ);
    static const struct {
        uint8_t cdb[16];
        uint8_t len;
        spd_data_dir dir;
        uint32_t bytes;
    } cases[] = {
        { { 0x00 }, 6, SPD_DIR_NONE, 0 },
        { { 0x03, 0, 0, 0, 18 }, 6, SPD_DIR_IN, 18 },
        { { 0x08, 0, 0, 1, 2 }, 6, SPD_DIR_IN, 2 * 4096 },
        { { 0x08, 0, 0, 1, 0 }, 6, SPD_DIR_IN, 256 * 4096 },
        { { 0x0a, 0, 0, 1, 3 }, 6, SPD_DIR_OUT, 3 * 4096 },
        { { 0x12, 0, 0, 0x01, 0x02 }, 6, SPD_DIR_IN, 258 },
        { { 0x15, 0x10, 0, 0, 24 }, 6, SPD_DIR_OUT, 24 },
        { { 0x1a, 0, 0x3f, 0, 200 }, 6, SPD_DIR_IN, 200 },
        { { 0x1b, 0, 0, 0, 1 }, 6, SPD_DIR_NONE, 0 },
        { { 0x1e, 0, 0, 0, 1 }, 6, SPD_DIR_NONE, 0 },
        { { 0x25 }, 10, SPD_DIR_IN, 8 },
        { { 0x28, 0, 0, 0, 0, 9, 0, 0, 4 }, 10, SPD_DIR_IN, 4 * 4096 },
        { { 0x28, 0, 0, 0, 0, 9, 0, 0, 0 }, 10, SPD_DIR_NONE, 0 },
        { { 0x2a, 0, 0, 0, 0, 9, 0, 0, 4 }, 10, SPD_DIR_OUT, 4 * 4096 },
        { { 0x2f, 0, 0, 0, 0, 9, 0, 0, 4 }, 10, SPD_DIR_NONE, 0 },
        { { 0x35 }, 10, SPD_DIR_NONE, 0 },
        { { 0x41, 0, 0, 0, 0, 9, 0, 0, 4 }, 10, SPD_DIR_OUT, 4096 },
        { { 0x42, 0, 0, 0, 0, 0, 0, 0, 24 }, 10, SPD_DIR_OUT, 24 },
        { { 0x42 }, 10, SPD_DIR_NONE, 0 },
        { { 0x55, 0x10, 0, 0, 0, 0, 0, 0x01, 0x00 }, 10, SPD_DIR_OUT, 256 },
        { { 0x5a, 0, 0x3f, 0, 0, 0, 0, 0x10, 0x00 }, 10, SPD_DIR_IN, 4096 },
        { { 0x88, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 5 }, 16, SPD_DIR_IN,
          5 * 4096 },
        { { 0x8a, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 5 }, 16, SPD_DIR_OUT,
          5 * 4096 },
        { { 0x8f, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 5 }, 16, SPD_DIR_NONE,
          0 },
        { { 0x91 }, 16, SPD_DIR_NONE, 0 },
        { { 0x93, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 5 }, 16, SPD_DIR_OUT,
          4096 },
        { { 0x93, 0x09, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 5 }, 16,
          SPD_DIR_NONE, 0 },                        /* NDOB */
        { { 0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32 }, 16,
          SPD_DIR_IN, 32 },
        { { 0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 16 }, 12, SPD_DIR_IN, 16 },
        { { 0xa3, 0x0c, 0, 0, 0, 0, 0, 0, 2, 0 }, 12, SPD_DIR_IN, 512 },
        { { 0xa8, 0, 0, 0, 0, 1, 0, 0, 0, 6 }, 12, SPD_DIR_IN, 6 * 4096 },
        { { 0xaa, 0, 0, 0, 0, 1, 0, 0, 0, 6 }, 12, SPD_DIR_OUT, 6 * 4096 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        spd_data_dir dir = 99;
        uint32_t len = 99;
        spd_status st;
        int r = fx_lu_plan(&f.lu, cases[i].cdb, cases[i].len, &dir, &len, &st);
        if (!EXPECT_EQ(r, 0))
            fprintf(stderr, "  case %zu: opcode %02x: %s %02x%02x\n", i,
                    cases[i].cdb[0], spd_sense_key_name(st.sense_key),
                    st.asc, st.ascq);
        EXPECT_EQ(dir, cases[i].dir);
        EXPECT_EQ(len, cases[i].bytes);
        EXPECT_GOOD(st);
    }
    fx_fini(&f);
}

/* ------------------------------------------------------------------ */
/* Simple commands                                                      */
/* ------------------------------------------------------------------ */

static void test_simple_commands(void)
{
    struct fx f;
    fx_init(&f, 512, 1000, FX_WP);
    uint8_t tur[6] = { 0 };
    fx_done(&f, tur, 6, 0);
    EXPECT_GOOD(f.t.status);
    EXPECT_EQ(f.t.data_in_len, 0);
    uint8_t ssu[6] = { SPD_SCSI_START_STOP_UNIT, 0x01, 0, 0, 0x01, 0 };
    fx_done(&f, ssu, 6, 0);
    EXPECT_GOOD(f.t.status);
    ssu[4] = 0x02;                      /* LOEJ, stop: still no effect */
    fx_done(&f, ssu, 6, 0);
    EXPECT_GOOD(f.t.status);
    uint8_t pamr[6] = { SPD_SCSI_PREVENT_ALLOW, 0, 0, 0, 1, 0 };
    fx_done(&f, pamr, 6, 0);
    EXPECT_GOOD(f.t.status);
    pamr[4] = 0;
    fx_done(&f, pamr, 6, 0);
    EXPECT_GOOD(f.t.status);
    pamr[4] = 2;
    fx_done(&f, pamr, 6, 0);
    EXPECT_FIELD(f.t.status, true, 4, 1);
    pamr[4] = 3;
    fx_done(&f, pamr, 6, 0);
    EXPECT_FIELD(f.t.status, true, 4, 1);
    fx_fini(&f);
}

static void test_request_sense(void)
{
    struct fx f;
    fx_init(&f, 512, 1000, 0);
    uint8_t cdb[6] = { SPD_SCSI_REQUEST_SENSE, 0, 0, 0, 252, 0 };
    memset(f.data, 0xee, 64);
    fx_done(&f, cdb, 6, 252);
    EXPECT_GOOD(f.t.status);
    EXPECT_EQ(f.t.data_in_len, 18);
    static const uint8_t fixed[18] = { 0x70, 0, 0, 0, 0, 0, 0, 10 };
    EXPECT(!memcmp(f.data, fixed, 18));
    cdb[1] = 0x01;                      /* DESC */
    fx_done(&f, cdb, 6, 252);
    EXPECT_EQ(f.t.data_in_len, 8);
    static const uint8_t desc[8] = { 0x72, 0, 0, 0, 0, 0, 0, 0 };
    EXPECT(!memcmp(f.data, desc, 8));
    cdb[1] = 0;
    cdb[4] = 4;                         /* allocation length */
    memset(f.data, 0xee, 64);
    fx_done(&f, cdb, 6, 252);
    EXPECT_EQ(f.t.data_in_len, 4);
    EXPECT_EQ(f.data[4], 0xee);
    fx_fini(&f);
}

/* ------------------------------------------------------------------ */
/* INQUIRY and VPD                                                      */
/* ------------------------------------------------------------------ */

static void test_inquiry_standard(void)
{
    struct fx f;
    fx_init(&f, 512, 1000, 0);
    uint8_t cdb[6] = { SPD_SCSI_INQUIRY, 0, 0, 0, 255, 0 };
    fx_done(&f, cdb, 6, 4096);
    EXPECT_GOOD(f.t.status);
    EXPECT_EQ(f.t.data_in_len, 96);
    EXPECT_EQ(f.data[0], 0x00);
    EXPECT_EQ(f.data[1], 0x00);
    EXPECT_EQ(f.data[2], 0x06);
    EXPECT_EQ(f.data[3], 0x12);
    EXPECT_EQ(f.data[4], 91);
    EXPECT_EQ(f.data[5], 0x18);                     /* TPGS 01b, 3PC */
    EXPECT_EQ(f.data[7], 0x02);
    EXPECT(!memcmp(f.data + 8, "SPD     ", 8));
    EXPECT(!memcmp(f.data + 16, "Spd disk        ", 16));
    EXPECT(!memcmp(f.data + 32, "0.1 ", 4));
    EXPECT_EQ(get_be16(f.data + 58), 0x00a0);
    EXPECT_EQ(get_be16(f.data + 60), 0x0460);
    EXPECT_EQ(get_be16(f.data + 62), 0x04c0);

    strcpy(f.p.product_id, "memunit");
    strcpy(f.p.product_revision, "1.0");
    fx_done(&f, cdb, 6, 4096);
    EXPECT(!memcmp(f.data + 16, "memunit         ", 16));
    EXPECT(!memcmp(f.data + 32, "1.0 ", 4));
    strcpy(f.p.product_id, "0123456789abcdef");
    strcpy(f.p.product_revision, "wxyz");
    fx_done(&f, cdb, 6, 4096);
    EXPECT(!memcmp(f.data + 16, "0123456789abcdefwxyz", 20));
    fx_fini(&f);
}

/* The allocation length is honoured exactly, as is the buffer size. */
static void test_inquiry_allocation_length(void)
{
    struct fx f;
    fx_init(&f, 512, 1000, 0);
    static const struct {
        uint16_t alloc;
        uint32_t buffer;
        uint32_t want;
    } cases[] = {
        { 5, 4096, 5 },   { 36, 4096, 36 }, { 255, 4096, 96 },
        { 255, 40, 40 },  { 0, 4096, 0 },   { 1, 4096, 1 },
        { 96, 96, 96 },   { 97, 4096, 96 }, { 0xffff, 4096, 96 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t cdb[6] = { SPD_SCSI_INQUIRY, 0, 0,
                           (uint8_t)(cases[i].alloc >> 8),
                           (uint8_t)cases[i].alloc, 0 };
        memset(f.data, 0xee, sizeof f.data);
        fx_done(&f, cdb, 6, cases[i].buffer);
        EXPECT_GOOD(f.t.status);
        EXPECT_EQ(f.t.data_in_len, cases[i].want);
        EXPECT_EQ(f.data[cases[i].want], 0xee);     /* nothing past it */
        spd_data_dir dir;
        uint32_t len;
        spd_status st;
        EXPECT_EQ(fx_lu_plan(&f.lu, cdb, 6, &dir, &len, &st), 0);
        EXPECT_EQ(len, cases[i].alloc);
    }
    /* No buffer at all. */
    uint8_t cdb[6] = { SPD_SCSI_INQUIRY, 0, 0, 0, 36, 0 };
    scsi_task_fini(&f.t);
    memset(&f.t, 0, sizeof f.t);
    f.t.cdb = cdb;
    f.t.cdb_len = 6;
    f.t.data_len = 36;
    EXPECT_EQ(scsi_execute(&f.lu, &f.t), SCSI_DONE);
    EXPECT_EQ(f.t.data_in_len, 0);
    fx_fini(&f);
}

static void test_inquiry_errors(void)
{
    struct fx f;
    fx_init(&f, 512, 1000, 0);
    uint8_t cdb[6] = { SPD_SCSI_INQUIRY, 0, 0x80, 0, 255, 0 };
    fx_done(&f, cdb, 6, 255);           /* page code without EVPD */
    EXPECT_FIELD(f.t.status, true, 2, -1);
    cdb[1] = 1;
    cdb[2] = 0x81;                      /* no such page */
    fx_done(&f, cdb, 6, 255);
    EXPECT_FIELD(f.t.status, true, 2, -1);
    cdb[2] = 0x89;
    spd_data_dir dir;
    uint32_t len;
    spd_status st;
    EXPECT_EQ(fx_lu_plan(&f.lu, cdb, 6, &dir, &len, &st), SPD_CHECK);
    EXPECT_FIELD(st, true, 2, -1);
    cdb[1] = 2;                         /* CMDDT, obsolete */
    cdb[2] = 0;
    fx_done(&f, cdb, 6, 255);
    EXPECT_FIELD(f.t.status, true, 1, 1);
    fx_fini(&f);
}

/* Fetch VPD page into f->data; returns its length. */
static uint32_t vpd(struct fx *f, uint8_t page, uint16_t alloc)
{
    uint8_t cdb[6] = { SPD_SCSI_INQUIRY, 1, page, (uint8_t)(alloc >> 8),
                       (uint8_t)alloc, 0 };
    memset(f->data, 0xee, sizeof f->data);
    fx_done(f, cdb, 6, sizeof f->data);
    EXPECT_GOOD(f->t.status);
    EXPECT_EQ(f->data[1], page);
    return f->t.data_in_len;
}

static void test_vpd_supported_pages(void)
{
    struct fx f;
    fx_init(&f, 512, 1000, 0);
    EXPECT_EQ(vpd(&f, 0x00, 255), 11);
    static const uint8_t want[11] = { 0, 0, 0, 7, 0x00, 0x80, 0x83, 0x8f,
                                      0xb0, 0xb1, 0xb2 };
    EXPECT(!memcmp(f.data, want, 11));
    /* Allocation length 4: the header alone, with the full page length. */
    EXPECT_EQ(vpd(&f, 0x00, 4), 4);
    EXPECT_EQ(get_be16(f.data + 2), 7);
    EXPECT_EQ(f.data[4], 0xee);
    /* Every listed page answers. */
    for (int i = 0; i < 6; i++) {
        uint32_t n = vpd(&f, want[4 + i], 255);
        EXPECT_EQ(n, 4u + get_be16(f.data + 2));
    }
    fx_fini(&f);
}

static void test_vpd_serial(void)
{
    struct fx f;
    fx_init(&f, 512, 1000, 0);
    EXPECT_EQ(vpd(&f, 0x80, 255), 36);
    EXPECT_EQ(get_be16(f.data + 2), 32);
    EXPECT(!memcmp(f.data + 4, "123456789abc4def8011223344556677", 32));
    EXPECT_EQ(vpd(&f, 0x80, 4), 4);
    fx_fini(&f);
}

static void test_vpd_device_identification(void)
{
    struct fx f;
    fx_init(&f, 512, 1000, 0);
    uint32_t n = vpd(&f, 0x83, 255);
    EXPECT_EQ(n, 4 + 20 + 48 + 8 + 8);
    EXPECT_EQ(get_be16(f.data + 2), n - 4);
    /* NAA 6 designator: binary, LU, type 3, 16 bytes: 6 and the UUID
     * without its version digit. */
    const uint8_t *d = f.data + 4;
    static const uint8_t naa[20] = {
        0x01, 0x03, 0x00, 0x10, 0x61, 0x23, 0x45, 0x67, 0x89, 0xab,
        0xcd, 0xef, 0x80, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
    };
    EXPECT(!memcmp(d, naa, 20));
    EXPECT_EQ(d[4] >> 4, 6);
    /* T10 vendor ID designator: ASCII, LU, type 1. */
    d += 20;
    EXPECT_EQ(d[0], 0x02);
    EXPECT_EQ(d[1], 0x01);
    EXPECT_EQ(d[3], 44);
    EXPECT(!memcmp(d + 4, "SPD     12345678-9abc-4def-8011-223344556677",
                   44));
    /* Relative target port 1 (no nexus) and target port group 1. */
    d += 48;
    static const uint8_t ports[16] = {
        0x01, 0x14, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01,
        0x01, 0x15, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01,
    };
    EXPECT(!memcmp(d, ports, 16));
    fx_fini(&f);
}

/* REPORT TARGET PORT GROUPS: one group, active/optimized, its ports. */
static void test_report_target_port_groups(void)
{
    struct fx f;
    fx_init(&f, 512, 1000, 0);
    uint8_t cdb[12] = { SPD_SCSI_MAINTENANCE_IN,
                        SPD_SA_REPORT_TARGET_PORT_GROUPS, 0, 0, 0, 0, 0, 0,
                        1, 0 };
    fx_done(&f, cdb, 12, 256);
    EXPECT_GOOD(f.t.status);
    EXPECT_EQ(f.t.data_in_len, 4 + 8 + 4);
    EXPECT_EQ(get_be32(f.data), 12);
    EXPECT_EQ(f.data[4], 0x80);                     /* PREF, AO */
    EXPECT_EQ(f.data[5], 0x01);                     /* AO_SUP */
    EXPECT_EQ(get_be16(f.data + 6), 1);
    EXPECT_EQ(f.data[11], 1);                       /* one port */
    EXPECT_EQ(get_be16(f.data + 14), 1);
    cdb[1] |= 0x20;                                 /* extended header */
    fx_done(&f, cdb, 12, 256);
    EXPECT_EQ(f.t.data_in_len, 8 + 8 + 4);
    EXPECT_EQ(f.data[4], 0x10);
    fx_fini(&f);
}

/* Gateway 2 of three: groups 1 ao, 2 (this one) in state, 3 ano. */
static void fx_gateway(struct fx *f, uint8_t state)
{
    static const spd_port_group groups[3] = {
        { 1, SPD_ALUA_OPTIMIZED }, { 2, 0 }, { 3, SPD_ALUA_NON_OPTIMIZED },
    };
    memcpy(f->p.port_groups, groups, sizeof groups);
    f->p.port_groups[1].state = state;
    f->p.port_group_count = 3;
    f->p.port_group = 2;
}

/* Several gateways: every group with its state and its one port (the
 * group's id), PREF on the optimized one, every state supported; VPD 83h
 * names the process's port and group. */
static void test_port_groups_reported(void)
{
    struct fx f;
    fx_init(&f, 512, 1000, 0);
    fx_gateway(&f, SPD_ALUA_STANDBY);
    uint8_t cdb[12] = { SPD_SCSI_MAINTENANCE_IN,
                        SPD_SA_REPORT_TARGET_PORT_GROUPS, 0, 0, 0, 0, 0, 0,
                        1, 0 };
    fx_done(&f, cdb, 12, 256);
    EXPECT_GOOD(f.t.status);
    static const uint8_t want[4 + 3 * 12] = {
        0, 0, 0, 36,
        0x80, 0x0f, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1,
        0x02, 0x0f, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2,
        0x01, 0x0f, 0, 3, 0, 0, 0, 1, 0, 0, 0, 3,
    };
    EXPECT_EQ(f.t.data_in_len, sizeof want);
    EXPECT(!memcmp(f.data, want, sizeof want));
    cdb[1] |= 0x20;                                 /* extended header */
    fx_done(&f, cdb, 12, 256);
    EXPECT_EQ(f.t.data_in_len, 4 + sizeof want);
    EXPECT_EQ(get_be32(f.data), 4 + 36);
    EXPECT_EQ(f.data[4], 0x10);
    EXPECT(!memcmp(f.data + 8, want + 4, 36));

    EXPECT_EQ(vpd(&f, 0x83, 255), 4 + 20 + 48 + 8 + 8);
    const uint8_t *d = f.data + 4 + 20 + 48;
    EXPECT_EQ(d[1], 0x14);
    EXPECT_EQ(get_be16(d + 6), 2);                  /* relative port 2 */
    EXPECT_EQ(d[9], 0x15);
    EXPECT_EQ(get_be16(d + 14), 2);                 /* group 2 */
    fx_fini(&f);
}

/* The CDBs run, with whether each may run in standby and unavailable
 * (SPC-4 "Standby state", "Unavailable state"). */
static const struct {
    uint8_t cdb[16];
    uint8_t len;
    bool standby, unavailable;
} alua_cdbs[] = {
    { { SPD_SCSI_TEST_UNIT_READY }, 6, false, false },
    { { SPD_SCSI_READ_10, 0, 0, 0, 0, 0, 0, 0, 1 }, 10, false, false },
    { { SPD_SCSI_WRITE_10, 0, 0, 0, 0, 0, 0, 0, 0 }, 10, false, false },
    { { SPD_SCSI_SYNCHRONIZE_CACHE_10 }, 10, false, false },
    { { SPD_SCSI_READ_CAPACITY_10 }, 10, false, false },
    { { SPD_SCSI_MAINTENANCE_IN, SPD_SA_REPORT_SUPPORTED_OPCODES, 0, 0, 0, 0,
        0, 0, 1, 0 }, 12, false, false },
    { { SPD_SCSI_MODE_SENSE_6, 0, 0x3f, 0, 255 }, 6, true, false },
    { { SPD_SCSI_MODE_SENSE_10, 0, 0x3f, 0, 0, 0, 0, 1, 0 }, 10, true, false },
    { { SPD_SCSI_SERVICE_ACTION_IN_16, SPD_SA_READ_CAPACITY_16, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 32 }, 16, true, false },
    { { SPD_SCSI_PERSISTENT_RESERVE_IN, 0, 0, 0, 0, 0, 0, 1, 0 }, 10, true,
      false },
    { { SPD_SCSI_INQUIRY, 0, 0, 0, 96 }, 6, true, true },
    { { SPD_SCSI_INQUIRY, 1, 0x83, 0, 255 }, 6, true, true },
    { { SPD_SCSI_REPORT_LUNS, 0, 0, 0, 0, 0, 0, 0, 1, 0 }, 12, true, true },
    { { SPD_SCSI_REQUEST_SENSE, 0, 0, 0, 252 }, 6, true, true },
    { { SPD_SCSI_MAINTENANCE_IN, SPD_SA_REPORT_TARGET_PORT_GROUPS, 0, 0, 0, 0,
        0, 0, 1, 0 }, 12, true, true },
};

static void test_port_group_states(void)
{
    static const struct {
        uint8_t state;
        uint16_t asc;           /* the refusal's, 0: everything runs */
    } states[] = {
        { SPD_ALUA_OPTIMIZED, 0 },
        { SPD_ALUA_NON_OPTIMIZED, 0 },
        { SPD_ALUA_STANDBY, SPD_ASC_LUN_NOT_ACCESSIBLE_STANDBY },
        { SPD_ALUA_UNAVAILABLE, SPD_ASC_LUN_NOT_ACCESSIBLE_UNAVAILABLE },
    };
    struct fx f;
    fx_init(&f, 512, 1000, 0);
    for (size_t s = 0; s < sizeof states / sizeof states[0]; s++) {
        fx_gateway(&f, states[s].state);
        for (size_t i = 0; i < sizeof alua_cdbs / sizeof alua_cdbs[0]; i++) {
            bool runs = states[s].state == SPD_ALUA_STANDBY
                            ? alua_cdbs[i].standby
                        : states[s].state == SPD_ALUA_UNAVAILABLE
                            ? alua_cdbs[i].unavailable : true;
            int failures = harness_failures;
            enum scsi_action act = fx_run(&f, alua_cdbs[i].cdb,
                                          alua_cdbs[i].len, 512);
            if (runs) {
                EXPECT_GOOD(f.t.status);
            } else {
                EXPECT_EQ(act, SCSI_DONE);          /* no block request */
                EXPECT_SENSE(f.t.status, SPD_KEY_NOT_READY, states[s].asc);
            }
            if (harness_failures != failures)
                fprintf(stderr, "  state %u, CDB %s\n", states[s].state,
                        spd_cdb_name(alua_cdbs[i].cdb, alua_cdbs[i].len));
        }
    }
    /* Planned (iSCSI asks before any data moves): a WRITE in standby
     * fails before its data is asked for. */
    fx_gateway(&f, SPD_ALUA_STANDBY);
    uint8_t write[10] = { SPD_SCSI_WRITE_10, 0, 0, 0, 0, 0, 0, 0, 8 };
    struct scsi_plan plan;
    uint64_t state[SCSI_STATE_SIZE / 8];
    spd_status st;
    EXPECT_EQ(scsi_plan(&f.lu, NULL, write, 10, SPD_SCSI_NO_LIMIT, 0, &plan,
                        state, &st), SPD_CHECK);
    EXPECT_SENSE(st, SPD_KEY_NOT_READY, SPD_ASC_LUN_NOT_ACCESSIBLE_STANDBY);
    EXPECT_EQ(plan.transfer_length, 0);
    fx_fini(&f);
}

/* A command from nexus nx (NULL: the in-process one) to unit m. */
static void nx_cmd(struct memunit *m, const spd_scsi_nexus *nx,
                   const uint8_t *cdb, uint8_t len, void *data,
                   uint32_t data_len, spd_scsi_cmd *c)
{
    *c = (spd_scsi_cmd){ SPD_SCSI_CMD_INIT, .cdb_len = len, .data = data,
                         .data_len = data_len, .nexus = nx };
    memcpy(c->cdb, cdb, len);
    spd_unit_scsi_run(m->unit, c);
}

/* REPORT TARGET PORT GROUPS through nx: the states of groups 1, 2, 3. */
static void expect_rtpg(struct memunit *m, const spd_scsi_nexus *nx,
                        uint8_t s1, uint8_t s2, uint8_t s3)
{
    static const uint8_t rtpg[12] = { SPD_SCSI_MAINTENANCE_IN,
                                      SPD_SA_REPORT_TARGET_PORT_GROUPS, 0, 0,
                                      0, 0, 0, 0, 1, 0 };
    uint8_t buf[256];
    spd_scsi_cmd c;
    nx_cmd(m, nx, rtpg, 12, buf, sizeof buf, &c);
    EXPECT_GOOD(c.status);
    EXPECT_EQ(c.data_in_len, 4 + 3 * 12);
    EXPECT_EQ(buf[4] & 0x0f, s1);
    EXPECT_EQ(buf[4 + 12] & 0x0f, s2);
    EXPECT_EQ(buf[4 + 24] & 0x0f, s3);
    EXPECT_EQ(get_be16(buf + 4 + 24 + 2), 3);
}

/* spd_unit_set_alua on a served unit, gateway 2 of three: the new states
 * are reported and gate the next command; every nexus hears of a change
 * once; the same states again are no change; a list that is not exactly
 * the unit's groups changes nothing. */
static void test_port_group_states_changed(void)
{
    spd_params p = memunit_params(512, 64, 3);
    EXPECT_EQ(spd_params_set_alua(&p, 2, "1:ao,2:ao,3:ano"), 0);
    struct memunit *m = memunit_create(&p, 0);
    spd_scsi_nexus nx[2] = { { .size = sizeof nx[0], .name = "iqn.a",
                               .rel_port = 2 },
                             { .size = sizeof nx[0], .name = "iqn.b",
                               .rel_port = 2 } };
    uint8_t tur[6] = { SPD_SCSI_TEST_UNIT_READY };
    uint8_t write[10] = { SPD_SCSI_WRITE_10, 0, 0, 0, 0, 0, 0, 0, 1 };
    uint8_t cap16[16] = { SPD_SCSI_SERVICE_ACTION_IN_16,
                          SPD_SA_READ_CAPACITY_16, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                          0, 0, 32 };
    uint8_t buf[512] = { 0 };
    spd_scsi_cmd c;
    for (int i = 0; i < 2; i++) {
        nx_cmd(m, &nx[i], tur, 6, NULL, 0, &c);     /* power on */
        nx_cmd(m, &nx[i], tur, 6, NULL, 0, &c);
        EXPECT_GOOD(c.status);
    }

    /* Standby here, in another order than the unit's. */
    EXPECT_EQ(spd_unit_set_alua(m->unit, "3:ao,1:ano,2:standby"), 0);
    const spd_params *now = spd_unit_params(m->unit);
    EXPECT_EQ(now->port_groups[0].id, 1);
    EXPECT_EQ(now->port_groups[0].state, SPD_ALUA_NON_OPTIMIZED);
    EXPECT_EQ(now->port_groups[1].state, SPD_ALUA_STANDBY);
    EXPECT_EQ(now->port_groups[2].state, SPD_ALUA_OPTIMIZED);
    /* The unit attention first (as LIO), even for a command the new state
     * refuses, then the refusal; planned (iSCSI), a refused WRITE asks for
     * no data, but only once the unit attention is out. */
    c = (spd_scsi_cmd){ SPD_SCSI_CMD_INIT, .cdb_len = 10, .nexus = &nx[0] };
    memcpy(c.cdb, write, 10);
    EXPECT_EQ(spd_unit_scsi_plan(m->unit, &c, SPD_SCSI_NO_LIMIT), 0);
    EXPECT_EQ(c.transfer_length, 512);
    for (int i = 0; i < 2; i++) {
        nx_cmd(m, &nx[i], write, 10, buf, 512, &c);
        EXPECT_SENSE(c.status, SPD_KEY_UNIT_ATTENTION,
                     SPD_ASC_ASYMMETRIC_ACCESS_STATE_CHANGED);
        nx_cmd(m, &nx[i], write, 10, buf, 512, &c);
        EXPECT_SENSE(c.status, SPD_KEY_NOT_READY,
                     SPD_ASC_LUN_NOT_ACCESSIBLE_STANDBY);
        c = (spd_scsi_cmd){ SPD_SCSI_CMD_INIT, .cdb_len = 10, .nexus = &nx[i] };
        memcpy(c.cdb, write, 10);
        EXPECT_EQ(spd_unit_scsi_plan(m->unit, &c, SPD_SCSI_NO_LIMIT),
                  SPD_CHECK);
        EXPECT_SENSE(c.status, SPD_KEY_NOT_READY,
                     SPD_ASC_LUN_NOT_ACCESSIBLE_STANDBY);
        EXPECT_EQ(c.transfer_length, 0);
        nx_cmd(m, &nx[i], cap16, 16, buf, 32, &c);  /* runs in standby */
        EXPECT_GOOD(c.status);
        expect_rtpg(m, &nx[i], SPD_ALUA_NON_OPTIMIZED, SPD_ALUA_STANDBY,
                    SPD_ALUA_OPTIMIZED);
    }

    /* Active again: the unit attention once, then the WRITE runs. */
    EXPECT_EQ(spd_unit_set_alua(m->unit, "1:ao,2:ano,3:standby"), 0);
    for (int i = 0; i < 2; i++) {
        nx_cmd(m, &nx[i], write, 10, buf, 512, &c);
        EXPECT_SENSE(c.status, SPD_KEY_UNIT_ATTENTION,
                     SPD_ASC_ASYMMETRIC_ACCESS_STATE_CHANGED);
        nx_cmd(m, &nx[i], write, 10, buf, 512, &c);
        EXPECT_GOOD(c.status);
    }

    /* The same states again: no unit attention. */
    EXPECT_EQ(spd_unit_set_alua(m->unit, "3:standby,2:ano,1:ao"), 0);
    nx_cmd(m, &nx[0], write, 10, buf, 512, &c);
    EXPECT_GOOD(c.status);

    /* Lists that are not the unit's groups: nothing changes. */
    static const char *const bad[] = {
        "1:ao,2:ao,4:ao",               /* an unknown group */
        "1:ao,2:ao",                    /* one missing */
        "1:ao,2:ao,3:ao,1:ao",          /* one twice */
        "1:ao,2:sleepy,3:ao",           /* no such state */
        "", "1:ao,,3:ao", "1:ao,2:ao,3:ao,",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        EXPECT_EQ(spd_unit_set_alua(m->unit, bad[i]), -EINVAL);
        EXPECT(*spd_errmsg());
    }
    EXPECT_EQ(spd_unit_set_alua(m->unit, NULL), -EINVAL);
    EXPECT_EQ(spd_unit_set_alua(NULL, "1:ao,2:ao,3:ao"), -EINVAL);
    expect_rtpg(m, &nx[1], SPD_ALUA_OPTIMIZED, SPD_ALUA_NON_OPTIMIZED,
                SPD_ALUA_STANDBY);
    nx_cmd(m, &nx[1], write, 10, buf, 512, &c);
    EXPECT_GOOD(c.status);
    memunit_destroy(m);

    /* A unit without port groups has none to change. */
    p = memunit_params(512, 64, 3);
    m = memunit_create(&p, 0);
    EXPECT_EQ(spd_unit_set_alua(m->unit, "1:standby"), -EINVAL);
    EXPECT_EQ(spd_unit_params(m->unit)->port_group_count, 0);
    nx_cmd(m, NULL, write, 10, buf, 512, &c);
    EXPECT_GOOD(c.status);
    memunit_destroy(m);
}

struct flipper {
    struct memunit *m;
    atomic_bool stop;
};

static void *flip_states(void *arg)
{
    struct flipper *fl = arg;
    for (unsigned i = 0; !atomic_load(&fl->stop); i++)
        if (spd_unit_set_alua(fl->m->unit, i % 2 ? "1:standby,2:ao,3:ano"
                                                 : "1:ao,2:ano,3:standby"))
            return "refused";
    return NULL;
}

/* States changed on one thread while another asks for them: every answer
 * is one list or the other, whole. */
static void test_port_group_states_change_whole(void)
{
    spd_params p = memunit_params(512, 64, 3);
    EXPECT_EQ(spd_params_set_alua(&p, 2, "1:ao,2:ano,3:standby"), 0);
    struct flipper fl = { .m = memunit_create(&p, 0) };
    pthread_t t;
    EXPECT_EQ(pthread_create(&t, NULL, flip_states, &fl), 0);
    static const uint8_t rtpg[12] = { SPD_SCSI_MAINTENANCE_IN,
                                      SPD_SA_REPORT_TARGET_PORT_GROUPS, 0, 0,
                                      0, 0, 0, 0, 1, 0 };
    unsigned answers = 0, torn = 0;
    for (int i = 0; i < 2000; i++) {
        uint8_t buf[64];
        spd_scsi_cmd c;
        nx_cmd(fl.m, NULL, rtpg, 12, buf, sizeof buf, &c);
        if (!spd_status_good(&c.status))
            continue;                   /* the unit attention */
        answers++;
        uint8_t s1 = buf[4] & 0x0f, s2 = buf[16] & 0x0f, s3 = buf[28] & 0x0f;
        torn += !(s1 == SPD_ALUA_OPTIMIZED && s2 == SPD_ALUA_NON_OPTIMIZED &&
                  s3 == SPD_ALUA_STANDBY) &&
                !(s1 == SPD_ALUA_STANDBY && s2 == SPD_ALUA_OPTIMIZED &&
                  s3 == SPD_ALUA_NON_OPTIMIZED);
    }
    atomic_store(&fl.stop, true);
    void *why;
    pthread_join(t, &why);
    EXPECT(why == NULL);
    EXPECT(answers > 0);
    EXPECT_EQ(torn, 0);
    memunit_destroy(fl.m);
}

static void test_vpd_block_limits(void)
{
    struct fx f;
    fx_init(&f, 4096, 1000, FX_LBPRZ);
    EXPECT_EQ(vpd(&f, 0xb0, 255), 64);
    EXPECT_EQ(get_be16(f.data + 2), 0x3c);
    EXPECT_EQ(f.data[4], 0);                        /* WSNZ 0 */
    EXPECT_EQ(get_be32(f.data + 8), 256);           /* 1 MiB / 4096 */
    EXPECT_EQ(get_be32(f.data + 12), 256);
    EXPECT_EQ(get_be32(f.data + 20), 0xffffffff);
    EXPECT_EQ(get_be32(f.data + 24), 256);
    EXPECT_EQ(get_be32(f.data + 28), 1);
    EXPECT_EQ(get_be64(f.data + 36), 0xffffffff);

    fx_reinit(&f, 512, 1000, 0);
    f.lu.max_transfer_blocks = 77;
    EXPECT_EQ(vpd(&f, 0xb0, 255), 64);
    EXPECT_EQ(get_be32(f.data + 8), 77);
    EXPECT_EQ(get_be32(f.data + 20), 0);
    EXPECT_EQ(get_be32(f.data + 24), 0);
    EXPECT_EQ(get_be64(f.data + 36), 0xffffffff);
    fx_fini(&f);
}

static void test_vpd_characteristics_and_provisioning(void)
{
    struct fx f;
    fx_init(&f, 512, 1000, 0);
    EXPECT_EQ(vpd(&f, 0xb1, 255), 64);
    EXPECT_EQ(get_be16(f.data + 4), 0x0001);
    EXPECT_EQ(vpd(&f, 0xb2, 255), 8);
    EXPECT_EQ(get_be16(f.data + 2), 4);
    EXPECT_EQ(f.data[5], 0x00);
    EXPECT_EQ(f.data[6], 0x00);

    fx_reinit(&f, 512, 1000, FX_UNMAP);
    vpd(&f, 0xb2, 255);
    EXPECT_EQ(f.data[5], 0xe0);                     /* LBPU LBPWS LBPWS10 */
    EXPECT_EQ(f.data[6], 0x02);                     /* thin */
    fx_reinit(&f, 512, 1000, FX_LBPRZ);
    vpd(&f, 0xb2, 255);
    EXPECT_EQ(f.data[5], 0xe4);                     /* and LBPRZ */
    fx_fini(&f);
}

/* ------------------------------------------------------------------ */
/* MODE SENSE                                                           */
/* ------------------------------------------------------------------ */

static void mode_sense6(struct fx *f, uint8_t b1, uint8_t b2, uint8_t sub,
                        uint8_t alloc)
{
    uint8_t cdb[6] = { SPD_SCSI_MODE_SENSE_6, b1, b2, sub, alloc, 0 };
    memset(f->data, 0xee, sizeof f->data);
    fx_done(f, cdb, 6, sizeof f->data);
}

static void mode_sense10(struct fx *f, uint8_t b1, uint8_t b2, uint8_t sub,
                         uint16_t alloc)
{
    uint8_t cdb[10] = { SPD_SCSI_MODE_SENSE_10, b1, b2, sub, 0, 0, 0,
                        (uint8_t)(alloc >> 8), (uint8_t)alloc, 0 };
    memset(f->data, 0xee, sizeof f->data);
    fx_done(f, cdb, 10, sizeof f->data);
}

static const uint8_t caching_wce[20] = { 0x08, 0x12, 0x04 };
static const uint8_t caching_none[20] = { 0x08, 0x12, 0x00 };
static const uint8_t control_cur[12] = { 0x0a, 0x0a, 0x00, 0x10 };
static const uint8_t control_dsense[12] = { 0x0a, 0x0a, 0x04, 0x10 };
static const uint8_t control_chg[12] = { 0x0a, 0x0a, 0x04, 0x00, 0x08 };

static void test_mode_sense6_all_pages(void)
{
    struct fx f;
    fx_init(&f, 512, 1000, FX_CACHE);
    mode_sense6(&f, 0, 0x3f, 0, 255);
    EXPECT_GOOD(f.t.status);
    EXPECT_EQ(f.t.data_in_len, 4 + 8 + 20 + 12);
    EXPECT_EQ(f.data[0], 43);                       /* MODE DATA LENGTH */
    EXPECT_EQ(f.data[1], 0);
    EXPECT_EQ(f.data[2], 0x10);                     /* DPOFUA, no WP */
    EXPECT_EQ(f.data[3], 8);
    EXPECT_EQ(get_be32(f.data + 4), 1000);
    EXPECT_EQ(f.data[8], 0);
    EXPECT_EQ(get_be24(f.data + 9), 512);
    EXPECT(!memcmp(f.data + 12, caching_wce, 20));
    EXPECT(!memcmp(f.data + 32, control_cur, 12));
    /* All subpages gives the same here. */
    mode_sense6(&f, 0, 0x3f, 0xff, 255);
    EXPECT_GOOD(f.t.status);
    EXPECT_EQ(f.t.data_in_len, 44);

    /* Write protected, no cache, DBD. */
    fx_reinit(&f, 4096, 1000, FX_WP);
    mode_sense6(&f, 0x08, 0x3f, 0, 255);
    EXPECT_EQ(f.t.data_in_len, 4 + 20 + 12);
    EXPECT_EQ(f.data[0], 35);
    EXPECT_EQ(f.data[2], 0x90);                     /* WP, DPOFUA */
    EXPECT_EQ(f.data[3], 0);
    EXPECT(!memcmp(f.data + 4, caching_none, 20));
    /* One page. */
    mode_sense6(&f, 0x08, 0x0a, 0, 255);
    EXPECT_EQ(f.t.data_in_len, 16);
    EXPECT(!memcmp(f.data + 4, control_cur, 12));
    mode_sense6(&f, 0, 0x08, 0, 255);
    EXPECT_EQ(f.t.data_in_len, 32);
    EXPECT_EQ(get_be24(f.data + 9), 4096);
    EXPECT(!memcmp(f.data + 12, caching_none, 20));
    /* Allocation length 2: the header's start, full length still said. */
    mode_sense6(&f, 0, 0x3f, 0, 2);
    EXPECT_EQ(f.t.data_in_len, 2);
    EXPECT_EQ(f.data[0], 43);
    EXPECT_EQ(f.data[2], 0xee);
    fx_fini(&f);
}

static void test_mode_sense10_llbaa(void)
{
    struct fx f;
    fx_init(&f, 512, (1ull << 33) + 5, FX_CACHE);
    mode_sense10(&f, 0x10, 0x3f, 0, 512);           /* LLBAA */
    EXPECT_GOOD(f.t.status);
    EXPECT_EQ(f.t.data_in_len, 8 + 16 + 20 + 12);
    EXPECT_EQ(get_be16(f.data), 54);
    EXPECT_EQ(f.data[3], 0x10);
    EXPECT_EQ(f.data[4], 0x01);                     /* LONGLBA */
    EXPECT_EQ(get_be16(f.data + 6), 16);
    EXPECT_EQ(get_be64(f.data + 8), (1ull << 33) + 5);
    EXPECT_EQ(get_be32(f.data + 20), 512);
    EXPECT(!memcmp(f.data + 24, caching_wce, 20));
    /* Without LLBAA: a short descriptor saying FFFFFFFFh. */
    mode_sense10(&f, 0, 0x3f, 0, 512);
    EXPECT_EQ(f.t.data_in_len, 8 + 8 + 20 + 12);
    EXPECT_EQ(f.data[4], 0);
    EXPECT_EQ(get_be16(f.data + 6), 8);
    EXPECT_EQ(get_be32(f.data + 8), 0xffffffff);
    /* DBD wins over LLBAA. */
    mode_sense10(&f, 0x18, 0x0a, 0, 512);
    EXPECT_EQ(f.t.data_in_len, 8 + 12);
    EXPECT_EQ(get_be16(f.data), 18);
    EXPECT_EQ(f.data[4], 0);
    EXPECT_EQ(get_be16(f.data + 6), 0);
    EXPECT(!memcmp(f.data + 8, control_cur, 12));
    /* Short allocation. */
    mode_sense10(&f, 0, 0x3f, 0, 9);
    EXPECT_EQ(f.t.data_in_len, 9);
    EXPECT_EQ(f.data[9], 0xee);
    fx_fini(&f);
}

static void test_mode_sense_page_control(void)
{
    struct fx f;
    fx_init(&f, 512, 1000, FX_CACHE);
    f.lu.d_sense = true;
    mode_sense6(&f, 0x08, 0x0a, 0, 255);            /* current */
    EXPECT(!memcmp(f.data + 4, control_dsense, 12));
    mode_sense6(&f, 0x08, 0x40 | 0x3f, 0, 255);     /* changeable */
    EXPECT_GOOD(f.t.status);
    EXPECT(!memcmp(f.data + 4, caching_none, 20));
    EXPECT(!memcmp(f.data + 24, control_chg, 12));
    mode_sense6(&f, 0x08, 0x80 | 0x3f, 0, 255);     /* default */
    EXPECT(!memcmp(f.data + 4, caching_wce, 20));
    EXPECT(!memcmp(f.data + 24, control_cur, 12));
    mode_sense6(&f, 0, 0x80 | 0x3f, 0, 255);        /* header is current */
    EXPECT_EQ(get_be32(f.data + 4), 1000);
    mode_sense6(&f, 0x08, 0xc0 | 0x3f, 0, 255);     /* saved */
    EXPECT_SENSE(f.t.status, SPD_KEY_ILLEGAL_REQUEST,
                 SPD_ASC_SAVING_PARAMETERS_NOT_SUPPORTED);
    mode_sense10(&f, 0x08, 0xc0 | 0x08, 0, 255);
    EXPECT_SENSE(f.t.status, SPD_KEY_ILLEGAL_REQUEST,
                 SPD_ASC_SAVING_PARAMETERS_NOT_SUPPORTED);
    fx_fini(&f);
}

static void test_mode_sense_errors(void)
{
    struct fx f;
    fx_init(&f, 512, 1000, 0);
    mode_sense6(&f, 0, 0x19, 0, 255);               /* unknown page */
    EXPECT_FIELD(f.t.status, true, 2, 5);
    mode_sense10(&f, 0, 0x00, 0, 255);
    EXPECT_FIELD(f.t.status, true, 2, 5);
    mode_sense6(&f, 0, 0x0a, 0x01, 255);            /* unknown subpage */
    EXPECT_FIELD(f.t.status, true, 3, -1);
    mode_sense6(&f, 0, 0x0a, 0xff, 255);
    EXPECT_GOOD(f.t.status);
    mode_sense6(&f, 0x10, 0x0a, 0, 255);            /* LLBAA is (10) only */
    EXPECT_FIELD(f.t.status, true, 1, 4);
    fx_fini(&f);
}

/* ------------------------------------------------------------------ */
/* MODE SELECT                                                          */
/* ------------------------------------------------------------------ */

static void mode_select6(struct fx *f, uint8_t b1, const uint8_t *list,
                         uint8_t len)
{
    uint8_t cdb[6] = { SPD_SCSI_MODE_SELECT_6, b1, 0, 0, len, 0 };
    memcpy(f->data, list, len);
    fx_done(f, cdb, 6, len);
}

static void mode_select10(struct fx *f, const uint8_t *list, uint16_t len,
                          uint32_t sent)
{
    uint8_t cdb[10] = { SPD_SCSI_MODE_SELECT_10, 0x10, 0, 0, 0, 0, 0,
                        (uint8_t)(len >> 8), (uint8_t)len, 0 };
    memcpy(f->data, list, sent);
    fx_done(f, cdb, 10, sent);
}

/* A failing command's sense, built as the unit core builds it. */
static uint8_t failing_sense(struct fx *f, uint8_t *sense)
{
    uint8_t cdb[6] = { 0x01 };
    fx_done(f, cdb, 6, 0);
    return scsi_sense_build(&f->t.status, f->lu.d_sense, sense, SPD_SENSE_MAX);
}

static void test_mode_select_d_sense(void)
{
    struct fx f;
    fx_init(&f, 512, 1000, FX_CACHE);
    uint8_t sense[SPD_SENSE_MAX];
    EXPECT_EQ(failing_sense(&f, sense), 18);
    EXPECT_EQ(sense[0], 0x70);

    /* Header, block descriptor as read, control page with D_SENSE. */
    uint8_t list[4 + 8 + 12] = { 0, 0, 0, 8, 0, 0, 0x03, 0xe8, 0, 0, 0x02,
                                 0x00 };
    memcpy(list + 12, control_dsense, 12);
    mode_select6(&f, 0x10, list, sizeof list);
    EXPECT_GOOD(f.t.status);
    EXPECT(f.lu.d_sense);
    EXPECT_EQ(failing_sense(&f, sense), 8);
    EXPECT_EQ(sense[0], 0x72);
    EXPECT_EQ(sense[1], SPD_KEY_ILLEGAL_REQUEST);
    EXPECT_EQ(sense[2], 0x20);
    mode_sense6(&f, 0x08, 0x0a, 0, 255);
    EXPECT(!memcmp(f.data + 4, control_dsense, 12));

    /* Back off with MODE SELECT(10), no block descriptor, and an echoed
     * caching page (WCE as it is: allowed); PS bit ignored. */
    uint8_t l10[8 + 20 + 12] = { 0 };
    memcpy(l10 + 8, caching_wce, 20);
    memcpy(l10 + 28, control_cur, 12);
    l10[28] |= 0x80;
    mode_select10(&f, l10, sizeof l10, sizeof l10);
    EXPECT_GOOD(f.t.status);
    EXPECT(!f.lu.d_sense);
    EXPECT_EQ(failing_sense(&f, sense), 18);

    /* Long LBA block descriptor, count 0 (no change). */
    uint8_t llba[8 + 16 + 12] = { 0, 0, 0, 0, 0x01, 0, 0, 16 };
    put_be32(llba + 8 + 12, 512);
    memcpy(llba + 24, control_dsense, 12);
    mode_select10(&f, llba, sizeof llba, sizeof llba);
    EXPECT_GOOD(f.t.status);
    EXPECT(f.lu.d_sense);

    /* A zero-length list changes nothing and is good. */
    mode_select6(&f, 0x10, list, 0);
    EXPECT_GOOD(f.t.status);
    EXPECT(f.lu.d_sense);
    fx_fini(&f);
}

static void test_mode_select_rejects_changes(void)
{
    struct fx f;
    fx_init(&f, 512, 1000, FX_CACHE);
    /* Control page setting D_SENSE, then a caching page clearing WCE: all
     * refused, D_SENSE unchanged. */
    uint8_t list[4 + 12 + 20] = { 0 };
    memcpy(list + 4, control_dsense, 12);
    memcpy(list + 16, caching_none, 20);
    mode_select6(&f, 0x10, list, sizeof list);
    EXPECT_FIELD(f.t.status, false, 16 + 2, 2);
    EXPECT(!f.lu.d_sense);

    /* Another control page bit (TST). */
    uint8_t ctl[4 + 12] = { 0 };
    memcpy(ctl + 4, control_cur, 12);
    ctl[4 + 2] = 0x20;
    mode_select6(&f, 0x10, ctl, sizeof ctl);
    EXPECT_FIELD(f.t.status, false, 6, 5);
    /* QUEUE ALGORITHM MODIFIER changed: pointer to its highest bit. */
    memcpy(ctl + 4, control_cur, 12);
    ctl[4 + 3] = 0x70;
    mode_select6(&f, 0x10, ctl, sizeof ctl);
    EXPECT_FIELD(f.t.status, false, 7, 6);
    /* Unknown page, wrong page length, subpage format. */
    memcpy(ctl + 4, control_cur, 12);
    ctl[4] = 0x1c;
    mode_select6(&f, 0x10, ctl, sizeof ctl);
    EXPECT_FIELD(f.t.status, false, 4, 5);
    ctl[4] = 0x0a;
    ctl[5] = 0x0b;
    mode_select6(&f, 0x10, ctl, sizeof ctl);
    EXPECT_FIELD(f.t.status, false, 5, -1);
    ctl[4] = 0x4a;
    ctl[5] = 0x0a;
    mode_select6(&f, 0x10, ctl, sizeof ctl);
    EXPECT_FIELD(f.t.status, false, 4, 6);
    /* Medium type. */
    memcpy(ctl + 4, control_cur, 12);
    ctl[1] = 0x05;
    mode_select6(&f, 0x10, ctl, sizeof ctl);
    EXPECT_FIELD(f.t.status, false, 1, -1);
    ctl[1] = 0;
    fx_fini(&f);
}

static void test_mode_select_block_descriptor(void)
{
    struct fx f;
    fx_init(&f, 512, 1000, 0);
    uint8_t list[4 + 8] = { 0, 0, 0, 8, 0, 0, 0x03, 0xe8, 0, 0, 0x02, 0x00 };
    mode_select6(&f, 0x10, list, sizeof list);
    EXPECT_GOOD(f.t.status);
    list[10] = 0x10;                    /* block length 4096 */
    mode_select6(&f, 0x10, list, sizeof list);
    EXPECT_FIELD(f.t.status, false, 9, -1);
    list[10] = 0x02;
    list[7] = 0xe9;                     /* 1001 blocks */
    mode_select6(&f, 0x10, list, sizeof list);
    EXPECT_FIELD(f.t.status, false, 4, -1);
    memset(list + 4, 0, 4);             /* 0: no change */
    mode_select6(&f, 0x10, list, sizeof list);
    EXPECT_GOOD(f.t.status);
    list[8] = 1;                        /* density code */
    mode_select6(&f, 0x10, list, sizeof list);
    EXPECT_FIELD(f.t.status, false, 8, -1);
    list[8] = 0;
    list[3] = 7;                        /* block descriptor length */
    mode_select6(&f, 0x10, list, sizeof list);
    EXPECT_FIELD(f.t.status, false, 3, -1);
    list[3] = 8;
    mode_select6(&f, 0x10, list, 10);   /* descriptor cut short */
    EXPECT_SENSE(f.t.status, SPD_KEY_ILLEGAL_REQUEST,
                 SPD_ASC_PARAMETER_LIST_LENGTH_ERROR);
    fx_fini(&f);
}

static void test_mode_select_errors(void)
{
    struct fx f;
    fx_init(&f, 512, 1000, 0);
    uint8_t list[4 + 12] = { 0 };
    memcpy(list + 4, control_dsense, 12);
    mode_select6(&f, 0x00, list, sizeof list);      /* PF 0 */
    EXPECT_FIELD(f.t.status, true, 1, 4);
    mode_select6(&f, 0x11, list, sizeof list);      /* SP */
    EXPECT_FIELD(f.t.status, true, 1, 0);
    EXPECT(!f.lu.d_sense);
    mode_select6(&f, 0x10, list, 3);                /* header cut */
    EXPECT_SENSE(f.t.status, SPD_KEY_ILLEGAL_REQUEST,
                 SPD_ASC_PARAMETER_LIST_LENGTH_ERROR);
    mode_select6(&f, 0x10, list, 5);                /* page header cut */
    EXPECT_SENSE(f.t.status, SPD_KEY_ILLEGAL_REQUEST,
                 SPD_ASC_PARAMETER_LIST_LENGTH_ERROR);
    mode_select6(&f, 0x10, list, 15);               /* page cut */
    EXPECT_SENSE(f.t.status, SPD_KEY_ILLEGAL_REQUEST,
                 SPD_ASC_PARAMETER_LIST_LENGTH_ERROR);
    EXPECT(!f.lu.d_sense);
    /* The CDB says 16 bytes, 10 arrived. */
    uint8_t l10[8 + 12] = { 0 };
    memcpy(l10 + 8, control_dsense, 12);
    mode_select10(&f, l10, sizeof l10, 10);
    EXPECT_SENSE(f.t.status, SPD_KEY_ILLEGAL_REQUEST,
                 SPD_ASC_PARAMETER_LIST_LENGTH_ERROR);
    EXPECT(!f.lu.d_sense);
    /* Bad block descriptor length in (10). */
    l10[7] = 12;
    mode_select10(&f, l10, sizeof l10, sizeof l10);
    EXPECT_FIELD(f.t.status, false, 6, -1);
    fx_fini(&f);
}

/* ------------------------------------------------------------------ */
/* REPORT LUNS                                                          */
/* ------------------------------------------------------------------ */

static void report_luns(struct fx *f, uint8_t select, uint32_t alloc,
                        uint32_t buffer)
{
    uint8_t cdb[12] = { SPD_SCSI_REPORT_LUNS, 0, select };
    put_be32(cdb + 6, alloc);
    memset(f->data, 0xee, sizeof f->data);
    fx_done(f, cdb, 12, buffer);
}

static void test_report_luns(void)
{
    struct fx f;
    fx_init(&f, 512, 1000, 0);
    static const uint8_t want[16] = { 0, 0, 0, 8 };
    for (uint8_t select = 0; select <= 2; select += 2) {
        report_luns(&f, select, 4096, 4096);
        EXPECT_GOOD(f.t.status);
        EXPECT_EQ(f.t.data_in_len, 16);
        EXPECT(!memcmp(f.data, want, 16));
    }
    report_luns(&f, 1, 16, 4096);       /* well-known LUs only: none */
    EXPECT_GOOD(f.t.status);
    EXPECT_EQ(f.t.data_in_len, 8);
    EXPECT_EQ(get_be32(f.data), 0);
    report_luns(&f, 3, 16, 4096);
    EXPECT_FIELD(f.t.status, true, 2, -1);
    report_luns(&f, 0, 15, 4096);
    EXPECT_FIELD(f.t.status, true, 6, -1);
    report_luns(&f, 0, 16, 4096);
    EXPECT_GOOD(f.t.status);
    report_luns(&f, 0, 16, 10);         /* a smaller buffer */
    EXPECT_EQ(f.t.data_in_len, 10);
    fx_fini(&f);
}

/* ------------------------------------------------------------------ */
/* REPORT SUPPORTED OPERATION CODES                                     */
/* ------------------------------------------------------------------ */

static void rsoc(struct fx *f, uint8_t options, uint8_t opcode, uint16_t sa,
                 uint32_t alloc)
{
    uint8_t cdb[12] = { SPD_SCSI_MAINTENANCE_IN,
                        SPD_SA_REPORT_SUPPORTED_OPCODES, options, opcode,
                        (uint8_t)(sa >> 8), (uint8_t)sa };
    put_be32(cdb + 6, alloc);
    memset(f->data, 0xee, sizeof f->data);
    fx_done(f, cdb, 12, sizeof f->data);
}

/* The descriptor for opcode/sa in an all-commands list, or NULL. */
static const uint8_t *rsoc_find(const uint8_t *list, uint32_t len,
                                size_t desc_len, uint8_t opcode, uint16_t sa)
{
    for (uint32_t off = 4; off + desc_len <= len; off += desc_len)
        if (list[off] == opcode && get_be16(list + off + 2) == sa)
            return list + off;
    return NULL;
}

static void test_rsoc_all(void)
{
    struct fx f;
    fx_init(&f, 512, 1000, FX_UNMAP);
    rsoc(&f, 0, 0, 0, 4096);
    EXPECT_GOOD(f.t.status);
    EXPECT_EQ(f.t.data_in_len, 4 + 62 * 8);
    EXPECT_EQ(get_be32(f.data), 62 * 8);
    const uint8_t *d = rsoc_find(f.data, f.t.data_in_len, 8, 0x28, 0);
    EXPECT(d != NULL);
    if (d) {
        EXPECT_EQ(d[5], 0x00);
        EXPECT_EQ(get_be16(d + 6), 10);
    }
    d = rsoc_find(f.data, f.t.data_in_len, 8, 0x9e, 0x10);
    EXPECT(d != NULL);
    if (d) {
        EXPECT_EQ(d[5], 0x01);                      /* SERVACTV */
        EXPECT_EQ(get_be16(d + 6), 16);
    }
    EXPECT(rsoc_find(f.data, f.t.data_in_len, 8, 0x42, 0) != NULL);

    /* With RCTD: 20-byte descriptors, CTDP, timeouts descriptors. */
    rsoc(&f, 0x80, 0, 0, 4096);
    EXPECT_EQ(f.t.data_in_len, 4 + 62 * 20);
    d = rsoc_find(f.data, f.t.data_in_len, 20, 0xa3, 0x0c);
    EXPECT(d != NULL);
    if (d) {
        EXPECT_EQ(d[5], 0x03);                      /* CTDP, SERVACTV */
        EXPECT_EQ(get_be16(d + 6), 12);
        EXPECT_EQ(get_be16(d + 8), 0x0a);
    }
    /* Allocation length honoured. */
    rsoc(&f, 0, 0, 0, 7);
    EXPECT_EQ(f.t.data_in_len, 7);
    EXPECT_EQ(f.data[7], 0xee);

    /* Without unmap, UNMAP, GET LBA STATUS and SANITIZE BLOCK ERASE are
     * not listed. */
    fx_reinit(&f, 512, 1000, 0);
    rsoc(&f, 0, 0, 0, 4096);
    EXPECT_EQ(f.t.data_in_len, 4 + 58 * 8);
    EXPECT(rsoc_find(f.data, f.t.data_in_len, 8, 0x42, 0) == NULL);
    fx_fini(&f);
}

static void test_rsoc_one(void)
{
    struct fx f;
    fx_init(&f, 512, 1000, 0);
    rsoc(&f, 1, 0x28, 0, 4096);
    EXPECT_GOOD(f.t.status);
    static const uint8_t read10[14] = { 0, 0x03, 0, 10, 0x28, 0xf8, 0xff,
                                        0xff, 0xff, 0xff, 0x00, 0xff, 0xff,
                                        0x00 };
    EXPECT_EQ(f.t.data_in_len, 14);
    EXPECT(!memcmp(f.data, read10, 14));
    rsoc(&f, 0x81, 0x28, 0, 4096);      /* RCTD */
    EXPECT_EQ(f.t.data_in_len, 26);
    EXPECT_EQ(f.data[1], 0x83);
    EXPECT_EQ(get_be16(f.data + 14), 0x0a);
    rsoc(&f, 3, 0x28, 0x1234, 4096);    /* SA ignored for READ(10) */
    EXPECT_EQ(f.t.data_in_len, 14);
    EXPECT(!memcmp(f.data, read10, 14));
    rsoc(&f, 2, 0x9e, 0x10, 4096);
    EXPECT_EQ(f.t.data_in_len, 20);
    EXPECT_EQ(f.data[1], 0x03);
    EXPECT_EQ(f.data[4], 0x9e);
    EXPECT_EQ(f.data[5], 0x1f);
    rsoc(&f, 3, 0x9e, 0x10, 4096);
    EXPECT_EQ(f.t.data_in_len, 20);
    rsoc(&f, 2, 0x9e, 0x11, 4096);      /* unknown SA: not supported */
    EXPECT_GOOD(f.t.status);
    EXPECT_EQ(f.t.data_in_len, 4);
    EXPECT_EQ(f.data[1], 0x01);
    rsoc(&f, 1, 0x01, 0, 4096);         /* unknown opcode */
    EXPECT_EQ(f.t.data_in_len, 4);
    EXPECT_EQ(f.data[1], 0x01);
    EXPECT_EQ(get_be16(f.data + 2), 0);
    rsoc(&f, 1, 0x42, 0, 4096);         /* UNMAP, unit without */
    EXPECT_EQ(f.data[1], 0x01);
    rsoc(&f, 1, 0x9e, 0, 4096);         /* has service actions */
    EXPECT_FIELD(f.t.status, true, 3, -1);
    rsoc(&f, 2, 0x28, 0, 4096);         /* has none */
    EXPECT_FIELD(f.t.status, true, 3, -1);
    rsoc(&f, 4, 0x28, 0, 4096);
    EXPECT_FIELD(f.t.status, true, 2, 2);
    rsoc(&f, 0x08, 0x28, 0, 4096);      /* reserved bit */
    EXPECT_FIELD(f.t.status, true, 2, 3);
    fx_fini(&f);
}

/* ------------------------------------------------------------------ */
/* Sense data                                                           */
/* ------------------------------------------------------------------ */

static void test_sense_bytes(void)
{
    spd_status st;
    scsi_invalid_field(&st, true, 1, 7);
    uint8_t buf[SPD_SENSE_MAX];
    memset(buf, 0xee, sizeof buf);
    static const uint8_t fixed[18] = {
        0x70, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00,
        0x00, 0x00, 0x24, 0x00, 0x00, 0xcf, 0x00, 0x01,
    };
    EXPECT_EQ(scsi_sense_build(&st, false, buf, sizeof buf), 18);
    for (int i = 0; i < 18; i++)
        if (!EXPECT_EQ(buf[i], fixed[i]))
            fprintf(stderr, "  fixed byte %d\n", i);
    EXPECT_EQ(buf[18], 0xee);
    static const uint8_t desc[16] = {
        0x72, 0x05, 0x24, 0x00, 0x00, 0x00, 0x00, 0x08,
        0x02, 0x06, 0x00, 0x00, 0xcf, 0x00, 0x01, 0x00,
    };
    memset(buf, 0xee, sizeof buf);
    EXPECT_EQ(scsi_sense_build(&st, true, buf, sizeof buf), 16);
    for (int i = 0; i < 16; i++)
        if (!EXPECT_EQ(buf[i], desc[i]))
            fprintf(stderr, "  descriptor byte %d\n", i);

    /* Parameter list pointer without a bit: C/D 0, BPV 0. */
    scsi_invalid_field(&st, false, 0x1234, -1);
    EXPECT_EQ(st.sks[0], 0x80);
    EXPECT_EQ(get_be16(st.sks + 1), 0x1234);
    EXPECT_EQ(st.asc, 0x26);
    scsi_sense_build(&st, false, buf, sizeof buf);
    EXPECT_EQ(buf[15], 0x80);
    EXPECT_EQ(buf[16], 0x12);
    EXPECT_EQ(buf[17], 0x34);
}

static void test_sense_information(void)
{
    spd_status st;
    spd_status_set_sense(&st, SPD_KEY_MEDIUM_ERROR,
                         SPD_ASC(SPD_ASC_UNRECOVERED_READ_ERROR),
                         SPD_ASCQ(SPD_ASC_UNRECOVERED_READ_ERROR));
    spd_status_set_info(&st, 0x1234);
    uint8_t buf[SPD_SENSE_MAX];
    static const uint8_t fixed[18] = {
        0xf0, 0x00, 0x03, 0x00, 0x00, 0x12, 0x34, 0x0a, 0x00, 0x00,
        0x00, 0x00, 0x11, 0x00, 0x00, 0x00, 0x00, 0x00,
    };
    EXPECT_EQ(scsi_sense_build(&st, false, buf, sizeof buf), 18);
    EXPECT(!memcmp(buf, fixed, 18));
    static const uint8_t desc[20] = {
        0x72, 0x03, 0x11, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x0a,
        0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x12, 0x34,
    };
    EXPECT_EQ(scsi_sense_build(&st, true, buf, sizeof buf), 20);
    EXPECT(!memcmp(buf, desc, 20));
    /* 64-bit information: fixed format cannot hold it (VALID 0). */
    spd_status_set_info(&st, 0x123456789aull);
    scsi_sense_build(&st, false, buf, sizeof buf);
    EXPECT_EQ(buf[0], 0x70);
    EXPECT_EQ(get_be32(buf + 3), 0);
    scsi_sense_build(&st, true, buf, sizeof buf);
    EXPECT_EQ(get_be64(buf + 12), 0x123456789aull);
    /* Information and field pointer together: 28 bytes. */
    spd_status both;
    scsi_invalid_field(&both, true, 2, -1);
    spd_status_set_info(&both, 7);
    EXPECT_EQ(scsi_sense_build(&both, true, buf, sizeof buf), 28);
    EXPECT_EQ(buf[7], 20);
    EXPECT_EQ(buf[20], 0x02);
    EXPECT_EQ(buf[24], 0xc0);
    /* Truncated to the space given; GOOD has none. */
    memset(buf, 0xee, sizeof buf);
    EXPECT_EQ(scsi_sense_build(&st, false, buf, 8), 8);
    EXPECT_EQ(buf[8], 0xee);
    spd_status good = { 0 };
    EXPECT_EQ(scsi_sense_build(&good, false, buf, sizeof buf), 0);
    EXPECT_EQ(scsi_sense_build(&good, true, buf, sizeof buf), 0);
}

static void test_names(void)
{
    EXPECT(!strcmp(spd_asc_name(0x21, 0x00),
                   "LOGICAL BLOCK ADDRESS OUT OF RANGE"));
    EXPECT(!strcmp(spd_asc_name(0x24, 0x00), "INVALID FIELD IN CDB"));
    EXPECT(!strcmp(spd_asc_name(0x99, 0x01), "ASC 0x99/0x01"));
    EXPECT(!strcmp(spd_sense_key_name(SPD_KEY_ILLEGAL_REQUEST),
                   "ILLEGAL REQUEST"));
    EXPECT(!strcmp(spd_sense_key_name(SPD_KEY_DATA_PROTECT),
                   "DATA PROTECT"));
    EXPECT(strstr(spd_sense_key_name(0x2c), "0x2c") != NULL);
    uint8_t cdb[16] = { SPD_SCSI_READ_10 };
    EXPECT(!strcmp(spd_cdb_name(cdb, 10), "READ(10)"));
    cdb[0] = SPD_SCSI_SERVICE_ACTION_IN_16;
    cdb[1] = SPD_SA_READ_CAPACITY_16;
    EXPECT(!strcmp(spd_cdb_name(cdb, 16), "READ CAPACITY(16)"));
    cdb[1] = 0x11;
    EXPECT(!strcmp(spd_cdb_name(cdb, 16), "UNKNOWN"));
    cdb[0] = 0x01;
    EXPECT(!strcmp(spd_cdb_name(cdb, 16), "UNKNOWN"));
    EXPECT(!strcmp(spd_cdb_name(cdb, 0), "UNKNOWN"));
}

/* ------------------------------------------------------------------ */
/* Planned commands (spd_unit_scsi_plan), as a target runs them         */
/* ------------------------------------------------------------------ */

static void cmd_init(spd_scsi_cmd *cmd, const uint8_t *cdb, uint8_t len)
{
    *cmd = (spd_scsi_cmd){ SPD_SCSI_CMD_INIT, .cdb_len = len };
    memcpy(cmd->cdb, cdb, len);
}

/* The plan travels with the command: execution does not decode the CDB
 * again (a CDB changed after planning still runs as planned). */
static void test_plan_once(void)
{
    spd_params p = memunit_params(512, 1000, 40);
    struct memunit *m = memunit_create(&p, 0);
    uint8_t data[4 * 512];
    memset(data, 0x77, sizeof data);
    uint8_t w10[10] = { SPD_SCSI_WRITE_10, 0, 0, 0, 0, 50, 0, 0, 4, 0 };
    spd_scsi_cmd cmd;
    cmd_init(&cmd, w10, 10);
    EXPECT_EQ(spd_unit_scsi_plan(m->unit, &cmd, SPD_SCSI_NO_LIMIT), 0);
    EXPECT(cmd.planned);
    EXPECT_EQ(cmd.dir, SPD_DIR_OUT);
    EXPECT_EQ(cmd.transfer_length, 4 * 512);
    EXPECT_EQ(cmd.buffer_length, 4 * 512);
    /* Moved, as a target copies a command into its task. */
    spd_scsi_cmd moved = cmd;
    moved.cdb[5] = 60;                  /* not decoded again */
    moved.data = data;
    moved.data_len = sizeof data;
    EXPECT_EQ(spd_unit_scsi_run(m->unit, &moved), SPD_STATUS_GOOD);
    EXPECT_EQ(m->data[50 * 512], 0x77);
    EXPECT_EQ(m->data[60 * 512], 0);

    /* A plan that failed ends the command as planned, with no device
     * call, its sense in the unit's format. */
    uint8_t r10[10] = { SPD_SCSI_READ_10, 0, 0, 0, 0x03, 0xe8, 0, 0, 1, 0 };
    cmd_init(&cmd, r10, 10);
    EXPECT_EQ(spd_unit_scsi_plan(m->unit, &cmd, SPD_SCSI_NO_LIMIT), SPD_CHECK);
    EXPECT_EQ(cmd.scsi_status, SPD_STATUS_CHECK_CONDITION);
    EXPECT_EQ(cmd.dir, SPD_DIR_NONE);
    EXPECT_EQ(cmd.sense[0], 0x70);
    EXPECT_EQ(cmd.sense[12], SPD_ASC(SPD_ASC_LBA_OUT_OF_RANGE));
    unsigned reads = atomic_load(&m->reads);
    EXPECT_EQ(spd_unit_scsi_run(m->unit, &cmd), SPD_STATUS_CHECK_CONDITION);
    EXPECT_EQ(atomic_load(&m->reads), reads);
    EXPECT_SENSE(cmd.status, SPD_KEY_ILLEGAL_REQUEST,
                 SPD_ASC_LBA_OUT_OF_RANGE);
    memunit_destroy(m);
}

/* Less data-out than the CDB says (FCP-4): a write shrinks to the whole
 * blocks sent, other commands fail. */
static void test_plan_short_write(void)
{
    spd_params p = memunit_params(512, 1000, 41);
    struct memunit *m = memunit_create(&p, 0);
    uint8_t data[4 * 512];
    memset(data, 0x66, sizeof data);
    uint8_t w16[16] = { SPD_SCSI_WRITE_16 };
    put_be64(w16 + 2, 10);
    put_be32(w16 + 10, 4);
    spd_scsi_cmd cmd;
    cmd_init(&cmd, w16, 16);
    EXPECT_EQ(spd_unit_scsi_plan(m->unit, &cmd, 2 * 512 + 100), 0);
    EXPECT_EQ(cmd.transfer_length, 4 * 512);    /* for the residual */
    EXPECT_EQ(cmd.buffer_length, 2 * 512);
    cmd.data = data;
    cmd.data_len = cmd.buffer_length;
    EXPECT_EQ(spd_unit_scsi_run(m->unit, &cmd), SPD_STATUS_GOOD);
    EXPECT_EQ(m->data[11 * 512], 0x66);
    EXPECT_EQ(m->data[12 * 512], 0);

    /* Not a block: GOOD, nothing written. */
    unsigned writes = atomic_load(&m->writes);
    cmd_init(&cmd, w16, 16);
    EXPECT_EQ(spd_unit_scsi_plan(m->unit, &cmd, 100), 0);
    EXPECT_EQ(cmd.buffer_length, 0);
    EXPECT_EQ(spd_unit_scsi_run(m->unit, &cmd), SPD_STATUS_GOOD);
    EXPECT_EQ(atomic_load(&m->writes), writes);

    /* Another data-out command cannot be cut. */
    uint8_t ms6[6] = { SPD_SCSI_MODE_SELECT_6, 0x10, 0, 0, 12, 0 };
    cmd_init(&cmd, ms6, 6);
    EXPECT_EQ(spd_unit_scsi_plan(m->unit, &cmd, 4), SPD_CHECK);
    EXPECT_SENSE(cmd.status, SPD_KEY_ILLEGAL_REQUEST,
                 SPD_ASC_INVALID_FIELD_IN_CIU);

    /* WRITE SAME takes exactly its block: half of one, or two, fail. */
    uint8_t ws10[10] = { SPD_SCSI_WRITE_SAME_10 };
    put_be32(ws10 + 2, 10);
    put_be16(ws10 + 7, 4);
    uint32_t wrong[] = { 256, 1024 };
    for (int i = 0; i < 2; i++) {
        cmd_init(&cmd, ws10, 10);
        EXPECT_EQ(spd_unit_scsi_plan(m->unit, &cmd, wrong[i]), SPD_CHECK);
        EXPECT_SENSE(cmd.status, SPD_KEY_ILLEGAL_REQUEST,
                     SPD_ASC_INVALID_FIELD_IN_CIU);
    }
    cmd_init(&cmd, ws10, 10);
    EXPECT_EQ(spd_unit_scsi_plan(m->unit, &cmd, 512), 0);
    memunit_destroy(m);
}

/* REPORT LUNS from the target's list; a LUN the target lacks answers
 * INQUIRY with "no device" and fails anything else, all from the engine. */
static void test_target_luns(void)
{
    spd_params p = memunit_params(512, 1000, 42);
    struct memunit *m = memunit_create(&p, 0);
    spd_scsi_lun luns[3] = { { 0, m->unit }, { 3, m->unit }, { 300, m->unit } };
    uint8_t data[64];
    uint8_t rl[12] = { SPD_SCSI_REPORT_LUNS, 0, 0, 0, 0, 0, 0, 0, 0, 64 };
    for (int absent = 0; absent < 2; absent++) {
        spd_unit *unit = absent ? NULL : m->unit;
        spd_scsi_cmd cmd;
        cmd_init(&cmd, rl, 12);
        cmd.luns = luns;
        cmd.lun_count = 3;
        EXPECT_EQ(spd_unit_scsi_plan(unit, &cmd, 0), 0);
        EXPECT_EQ(cmd.buffer_length, 8 + 3 * 8);
        memset(data, 0xee, sizeof data);
        cmd.data = data;
        cmd.data_len = cmd.buffer_length;
        EXPECT_EQ(spd_unit_scsi_run(unit, &cmd), SPD_STATUS_GOOD);
        EXPECT_EQ(cmd.data_in_len, 32);
        EXPECT_EQ(get_be32(data), 24);
        EXPECT_EQ(data[8 + 1], 0);
        EXPECT_EQ(data[16 + 1], 3);
        EXPECT_EQ(data[24], 0x41);          /* flat addressing */
        EXPECT_EQ(data[25], 0x2c);
    }

    uint8_t inq[6] = { SPD_SCSI_INQUIRY, 0, 0, 0, 255, 0 };
    spd_scsi_cmd cmd;
    cmd_init(&cmd, inq, 6);
    EXPECT_EQ(spd_unit_scsi_plan(NULL, &cmd, 0), 0);
    EXPECT_EQ(cmd.buffer_length, 36);
    cmd.data = data;
    cmd.data_len = cmd.buffer_length;
    EXPECT_EQ(spd_unit_scsi_run(NULL, &cmd), SPD_STATUS_GOOD);
    EXPECT_EQ(cmd.data_in_len, 36);
    EXPECT_EQ(data[0], 0x7f);
    inq[1] = 1;                             /* a VPD page: empty */
    inq[2] = 0x80;
    cmd_init(&cmd, inq, 6);
    EXPECT_EQ(spd_unit_scsi_plan(NULL, &cmd, 0), 0);
    cmd.data = data;
    cmd.data_len = cmd.buffer_length;
    EXPECT_EQ(spd_unit_scsi_run(NULL, &cmd), SPD_STATUS_GOOD);
    EXPECT_EQ(cmd.data_in_len, 4);
    EXPECT_EQ(data[1], 0x80);

    uint8_t tur[6] = { SPD_SCSI_TEST_UNIT_READY };
    cmd_init(&cmd, tur, 6);
    EXPECT_EQ(spd_unit_scsi_plan(NULL, &cmd, 0), SPD_CHECK);
    EXPECT_SENSE(cmd.status, SPD_KEY_ILLEGAL_REQUEST,
                 SPD_ASC_LOGICAL_UNIT_NOT_SUPPORTED);
    EXPECT_EQ(spd_unit_scsi_run(NULL, &cmd), SPD_STATUS_CHECK_CONDITION);
    memunit_destroy(m);
}

/* A transport ends a command itself in the unit's sense format, which
 * MODE SELECT chose. */
static void test_cmd_set_status_d_sense(void)
{
    spd_params p = memunit_params(512, 1000, 43);
    struct memunit *m = memunit_create(&p, 0);
    spd_status st;
    spd_status_set_sense(&st, SPD_KEY_ABORTED_COMMAND,
                         SPD_ASC(SPD_ASC_DATA_OFFSET_ERROR),
                         SPD_ASCQ(SPD_ASC_DATA_OFFSET_ERROR));
    spd_scsi_cmd cmd = { SPD_SCSI_CMD_INIT };
    spd_scsi_cmd_set_status(m->unit, &cmd, &st);
    EXPECT_EQ(cmd.scsi_status, SPD_STATUS_CHECK_CONDITION);
    EXPECT_EQ(cmd.sense[0], 0x70);
    EXPECT_EQ(cmd.sense[12], 0x4b);
    EXPECT_EQ(cmd.sense[13], 0x05);

    /* Control mode page with D_SENSE set. */
    uint8_t list[4 + 12] = { 0, 0, 0, 0, 0x0a, 0x0a, 0x04, 0x10 };
    uint8_t ms6[6] = { SPD_SCSI_MODE_SELECT_6, 0x10, 0, 0, sizeof list, 0 };
    spd_scsi_cmd sel;
    EXPECT_EQ(memunit_cdb(m, ms6, 6, list, sizeof list, &sel), SPD_STATUS_GOOD);
    spd_scsi_cmd_set_status(m->unit, &cmd, &st);
    EXPECT_EQ(cmd.sense[0], 0x72);
    EXPECT_EQ(cmd.sense[2], 0x4b);
    EXPECT_EQ(cmd.sense[3], 0x05);
    /* No unit: fixed format; no sense for a status without one. */
    spd_scsi_cmd_set_status(NULL, &cmd, &st);
    EXPECT_EQ(cmd.sense[0], 0x70);
    spd_status busy = { .scsi_status = SPD_STATUS_BUSY };
    spd_scsi_cmd_set_status(m->unit, &cmd, &busy);
    EXPECT_EQ(cmd.sense_len, 0);
    EXPECT_EQ(cmd.scsi_status, SPD_STATUS_BUSY);
    memunit_destroy(m);
}

int main(void)
{
    static const struct test_case tests[] = {
        TEST(test_unknown_opcodes),
        TEST(test_short_cdb),
        TEST(test_reserved_bits_pointer),
        TEST(test_usage_masks_enforced),
        TEST(test_plan_directions),
        TEST(test_simple_commands),
        TEST(test_request_sense),
        TEST(test_inquiry_standard),
        TEST(test_inquiry_allocation_length),
        TEST(test_inquiry_errors),
        TEST(test_vpd_supported_pages),
        TEST(test_vpd_serial),
        TEST(test_vpd_device_identification),
        TEST(test_vpd_block_limits),
        TEST(test_vpd_characteristics_and_provisioning),
        TEST(test_mode_sense6_all_pages),
        TEST(test_mode_sense10_llbaa),
        TEST(test_mode_sense_page_control),
        TEST(test_mode_sense_errors),
        TEST(test_mode_select_d_sense),
        TEST(test_mode_select_rejects_changes),
        TEST(test_mode_select_block_descriptor),
        TEST(test_mode_select_errors),
        TEST(test_report_luns),
        TEST(test_plan_once),
        TEST(test_plan_short_write),
        TEST(test_target_luns),
        TEST(test_cmd_set_status_d_sense),
        TEST(test_rsoc_all),
        TEST(test_report_target_port_groups),
        TEST(test_port_groups_reported),
        TEST(test_port_group_states),
        TEST(test_port_group_states_changed),
        TEST(test_port_group_states_change_whole),
        TEST(test_rsoc_one),
        TEST(test_sense_bytes),
        TEST(test_sense_information),
        TEST(test_names),
    };
    return RUN_TESTS("scsi_spc", tests);
}
