/*
 * test_scsi_pr.c - the engine's I_T nexuses: unit attentions (power on,
 * reset, mode parameters changed, reservations preempted and released),
 * persistent reservations of each type against each class of command,
 * PERSISTENT RESERVE IN and OUT, and RESERVE/RELEASE(6/10). Straight
 * through the engine, nexuses A and B (and C) as iSCSI initiator ports.
 */
#include "scsi_nexus_fixture.h"

static void expect_ua(struct fx *f, int nx, uint16_t asc, int line)
{
    nx_run(f, nx, tur, 6, 0);
    expect_sense_at(&f->t.status, SPD_KEY_UNIT_ATTENTION, asc, line);
    nx_run(f, nx, tur, 6, 0);                   /* reported once */
    harness_check(f->t.status.sense_key != SPD_KEY_UNIT_ATTENTION,
                  "reported once", __FILE__, line);
}
#define EXPECT_UA(f, nx, asc) expect_ua(f, nx, asc, __LINE__)

static struct fx *pr_fixture(void)
{
    struct fx *f = fx_new(512, 1000, FX_UNMAP | FX_LBPRZ);
    for (int i = 0; i < NX_COUNT; i++)
        nx_clear(f, i);
    return f;
}

/* ------------------------------------------------------------------ */
/* Unit attentions                                                      */
/* ------------------------------------------------------------------ */

static void test_ua_power_on(void)
{
    struct fx *f = fx_new(512, 1000, 0);
    /* INQUIRY and REPORT LUNS run and leave it pending. */
    EXPECT_EQ(nx_run(f, NX_A, inquiry, 6, 96), SCSI_DONE);
    EXPECT_GOOD(f->t.status);
    uint8_t luns[12] = { SPD_SCSI_REPORT_LUNS, 0, 0, 0, 0, 0, 0, 0, 0, 16 };
    nx_run(f, NX_A, luns, 12, 16);
    EXPECT_GOOD(f->t.status);
    /* A medium command reports it instead of running. */
    EXPECT_EQ(nx_run(f, NX_A, read10, 10, 512), SCSI_DONE);
    EXPECT_SENSE(f->t.status, SPD_KEY_UNIT_ATTENTION, SPD_ASC_POWER_ON_RESET);
    EXPECT_EQ(nx_run(f, NX_A, read10, 10, 512), SCSI_IO);

    /* REQUEST SENSE returns it as data and clears it. */
    uint8_t rs[6] = { SPD_SCSI_REQUEST_SENSE, 0, 0, 0, 18, 0 };
    nx_run(f, NX_B, rs, 6, 18);
    EXPECT_GOOD(f->t.status);
    EXPECT_EQ(f->data[2], SPD_KEY_UNIT_ATTENTION);
    EXPECT_EQ(f->data[12], 0x29);
    nx_run(f, NX_B, rs, 6, 18);
    EXPECT_EQ(f->data[2], SPD_KEY_NO_SENSE);
    nx_run(f, NX_B, tur, 6, 0);
    EXPECT_GOOD(f->t.status);

    /* In-process callers (no nexus) start without one. */
    fx_done(f, tur, 6, 0);
    EXPECT_GOOD(f->t.status);
    fx_free(f);
}

static void test_ua_reset(void)
{
    struct fx *f = pr_fixture();
    scsi_lu_reset(&f->lu);
    EXPECT_UA(f, NX_A, SPD_ASC_BUS_DEVICE_RESET);
    EXPECT_UA(f, NX_B, SPD_ASC_BUS_DEVICE_RESET);
    fx_done(f, tur, 6, 0);
    EXPECT_SENSE(f->t.status, SPD_KEY_UNIT_ATTENTION, SPD_ASC_BUS_DEVICE_RESET);
    fx_free(f);
}

static void test_ua_mode_changed(void)
{
    struct fx *f = pr_fixture();
    uint8_t cdb[6] = { SPD_SCSI_MODE_SELECT_6, 0x10, 0, 0, 16, 0 };
    uint8_t list[16] = { 0, 0, 0, 0, 0x0a, 0x0a, 0x04, 0x10 };   /* D_SENSE */
    memcpy(f->data, list, sizeof list);
    nx_run(f, NX_A, cdb, 6, 16);
    EXPECT_GOOD(f->t.status);
    nx_run(f, NX_A, tur, 6, 0);
    EXPECT_GOOD(f->t.status);                   /* not for the changer */
    EXPECT_UA(f, NX_B, SPD_ASC_MODE_PARAMETERS_CHANGED);
    /* The same values again change nothing. */
    memcpy(f->data, list, sizeof list);
    nx_run(f, NX_A, cdb, 6, 16);
    nx_run(f, NX_B, tur, 6, 0);
    EXPECT_GOOD(f->t.status);
    fx_free(f);
}

/* Software write protect (control page SWP) set by one nexus: writes fail
 * WRITE PROTECTED for all. */
static void test_swp(void)
{
    struct fx *f = pr_fixture();
    uint8_t cdb[6] = { SPD_SCSI_MODE_SELECT_6, 0x10, 0, 0, 16, 0 };
    uint8_t list[16] = { 0, 0, 0, 0, 0x0a, 0x0a, 0x00, 0x10, 0x08 };
    memcpy(f->data, list, sizeof list);
    nx_run(f, NX_A, cdb, 6, 16);
    EXPECT_GOOD(f->t.status);
    nx_run(f, NX_A, write10, 10, 512);
    EXPECT_SENSE(f->t.status, SPD_KEY_DATA_PROTECT, SPD_ASC_WRITE_PROTECTED);
    list[8] = 0;
    memcpy(f->data, list, sizeof list);
    nx_run(f, NX_A, cdb, 6, 16);
    EXPECT_EQ(nx_run(f, NX_A, write10, 10, 512), SCSI_IO);
    fx_free(f);
}

/* ------------------------------------------------------------------ */
/* Persistent reservations                                              */
/* ------------------------------------------------------------------ */

enum { SA_REGISTER, SA_RESERVE, SA_RELEASE, SA_CLEAR, SA_PREEMPT,
       SA_PREEMPT_ABORT, SA_REGISTER_IGNORE, SA_REGISTER_MOVE };

/* SPC-4's table, by type: may a registered non-holder read and write,
 * may an unregistered nexus read and write. */
static const struct {
    uint8_t type;
    const char *name;
    bool reg_read, reg_write, unreg_read, unreg_write;
} types[] = {
    { 1, "WE", true, false, true, false },
    { 3, "EA", false, false, false, false },
    { 5, "WE_RO", true, true, true, false },
    { 6, "EA_RO", true, true, false, false },
    { 7, "WE_AR", true, true, true, false },
    { 8, "EA_AR", true, true, false, false },
};

/* One command of each class from nx: read, write, and one allowed in
 * any case; want: may it read, may it write. */
static void expect_access(struct fx *f, int nx, bool read, bool write,
                          const char *type, int line)
{
    nx_run(f, nx, read10, 10, 512);
    bool got = !conflicted(f);
    if (got != read)
        fprintf(stderr, "  %s nexus %d: READ(10) %s\n", type, nx,
                got ? "ran" : "conflicted");
    harness_check(got == read, "read access", __FILE__, line);
    nx_run(f, nx, write10, 10, 512);
    got = !conflicted(f);
    if (got != write)
        fprintf(stderr, "  %s nexus %d: WRITE(10) %s\n", type, nx,
                got ? "ran" : "conflicted");
    harness_check(got == write, "write access", __FILE__, line);
    /* The other classes: MODE SENSE and TUR read, SYNCHRONIZE CACHE and
     * UNMAP write, INQUIRY and READ CAPACITY anything. */
    uint8_t ms[6] = { SPD_SCSI_MODE_SENSE_6, 0, 0x3f, 0, 255, 0 };
    nx_run(f, nx, ms, 6, 255);
    harness_check(!conflicted(f) == read, "MODE SENSE", __FILE__, line);
    nx_run(f, nx, tur, 6, 0);
    harness_check(!conflicted(f) == read, "TEST UNIT READY", __FILE__, line);
    uint8_t sync[10] = { SPD_SCSI_SYNCHRONIZE_CACHE_10 };
    nx_run(f, nx, sync, 10, 0);
    harness_check(!conflicted(f) == write, "SYNCHRONIZE CACHE", __FILE__,
                  line);
    nx_run(f, nx, inquiry, 6, 96);
    harness_check(!conflicted(f), "INQUIRY", __FILE__, line);
    uint8_t rc[10] = { SPD_SCSI_READ_CAPACITY_10 };
    nx_run(f, nx, rc, 10, 8);
    harness_check(!conflicted(f), "READ CAPACITY", __FILE__, line);
}

static void test_pr_types_against_commands(void)
{
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        struct fx *f = pr_fixture();
        uint8_t type = types[i].type;
        prout(f, NX_A, SA_REGISTER, 0, 0, 0xa, 0);
        EXPECT_GOOD(f->t.status);
        prout(f, NX_B, SA_REGISTER_IGNORE, 0, 0, 0xb, 0);
        EXPECT_GOOD(f->t.status);
        prout(f, NX_A, SA_RESERVE, type, 0xa, 0, 0);
        EXPECT_GOOD(f->t.status);
        /* The holder may do anything; B is registered; C is not. */
        expect_access(f, NX_A, true, true, types[i].name, __LINE__);
        expect_access(f, NX_B, types[i].reg_read, types[i].reg_write,
                      types[i].name, __LINE__);
        expect_access(f, NX_C, types[i].unreg_read, types[i].unreg_write,
                      types[i].name, __LINE__);
        /* B unregistered: as C. */
        prout(f, NX_B, SA_REGISTER, 0, 0xb, 0, 0);
        EXPECT_GOOD(f->t.status);
        expect_access(f, NX_B, types[i].unreg_read, types[i].unreg_write,
                      types[i].name, __LINE__);
        /* Released: everyone may do anything. */
        prout(f, NX_A, SA_RELEASE, type, 0xa, 0, 0);
        EXPECT_GOOD(f->t.status);
        expect_access(f, NX_C, true, true, types[i].name, __LINE__);
        fx_free(f);
    }
}

static void test_pr_register(void)
{
    struct fx *f = pr_fixture();
    /* Unregistered with a non-zero key: conflict. */
    prout(f, NX_A, SA_REGISTER, 0, 5, 0xa, 0);
    EXPECT(conflicted(f));
    prout(f, NX_A, SA_REGISTER, 0, 0, 0xa, 0);
    EXPECT_GOOD(f->t.status);
    /* The wrong key: conflict; the right one changes it. */
    prout(f, NX_A, SA_REGISTER, 0, 0xb, 0xc, 0);
    EXPECT(conflicted(f));
    prout(f, NX_A, SA_REGISTER, 0, 0xa, 0xc, 0);
    EXPECT_GOOD(f->t.status);
    prout(f, NX_A, SA_REGISTER_IGNORE, 0, 0x99, 0xd, 0x04);    /* ALL_TG_PT */
    EXPECT_GOOD(f->t.status);
    prin(f, NX_B, 0);                                   /* READ KEYS */
    EXPECT_GOOD(f->t.status);
    EXPECT_EQ(get_be32(f->data), 3);                    /* PRGENERATION */
    EXPECT_EQ(get_be32(f->data + 4), 8);
    EXPECT_EQ(get_be64(f->data + 8), 0xd);
    /* A reservation needs the registered key. */
    prout(f, NX_B, SA_RESERVE, 1, 0, 0, 0);
    EXPECT(conflicted(f));
    prout(f, NX_A, SA_RESERVE, 1, 0xc, 0, 0);
    EXPECT(conflicted(f));
    /* Bad type, scope, APTPL, SPEC_I_PT, list length, service action. */
    prout(f, NX_A, SA_RESERVE, 2, 0xd, 0, 0);
    EXPECT_FIELD(f->t.status, true, 2, 3);
    prout(f, NX_A, SA_RESERVE, 0x11, 0xd, 0, 0);
    EXPECT_FIELD(f->t.status, true, 2, 7);
    prout(f, NX_A, SA_REGISTER, 0, 0xd, 0xe, 0x01);
    EXPECT_FIELD(f->t.status, false, 20, 0);
    prout(f, NX_A, SA_REGISTER, 0, 0xd, 0xe, 0x08);
    EXPECT_FIELD(f->t.status, false, 20, 3);
    uint8_t cdb[10] = { SPD_SCSI_PERSISTENT_RESERVE_OUT, 0, 0, 0, 0, 0, 0,
                        0, 20 };
    nx_run(f, NX_A, cdb, 10, 20);
    EXPECT_SENSE(f->t.status, SPD_KEY_ILLEGAL_REQUEST,
                 SPD_ASC_PARAMETER_LIST_LENGTH_ERROR);
    cdb[1] = 8;
    nx_run(f, NX_A, cdb, 10, 24);
    EXPECT_FIELD(f->t.status, true, 1, 4);
    uint8_t in[10] = { SPD_SCSI_PERSISTENT_RESERVE_IN, 4, 0, 0, 0, 0, 0, 0,
                       64 };
    nx_run(f, NX_A, in, 10, 64);
    EXPECT_FIELD(f->t.status, true, 1, 4);

    /* Unregistering the holder releases its reservation. */
    prout(f, NX_A, SA_RESERVE, 3, 0xd, 0, 0);
    EXPECT_GOOD(f->t.status);
    prout(f, NX_A, SA_REGISTER, 0, 0xd, 0, 0);
    EXPECT_GOOD(f->t.status);
    prin(f, NX_A, 1);                                   /* READ RESERVATION */
    EXPECT_EQ(get_be32(f->data + 4), 0);
    fx_free(f);
}

/* ALL_TG_PT with the target port groups of two gateways: A registered
 * through port 1 is registered through port 2 as well (its own
 * registration there, its own unregistration); without it, not. */
static void test_pr_all_target_ports(void)
{
    struct fx *f = pr_fixture();
    EXPECT_EQ(spd_params_set_alua(&f->p, 1, "1:ao,2:ano"), 0);
    prout(f, NX_A, SA_REGISTER, 0, 0, 0xa, 0x04);       /* ALL_TG_PT */
    EXPECT_GOOD(f->t.status);
    nexuses[NX_A].rel_port = 2;
    nx_clear(f, NX_A);                                  /* a new nexus */
    prout(f, NX_A, SA_RESERVE, 1, 0xa, 0, 0);           /* its key there */
    EXPECT_GOOD(f->t.status);
    prout(f, NX_A, SA_RELEASE, 1, 0xa, 0, 0);
    prout(f, NX_A, SA_REGISTER, 0, 0xa, 0, 0);          /* port 2 only */
    EXPECT_GOOD(f->t.status);
    nexuses[NX_A].rel_port = 1;
    prout(f, NX_A, SA_RESERVE, 1, 0xa, 0, 0);           /* still on 1 */
    EXPECT_GOOD(f->t.status);
    prout(f, NX_A, SA_RELEASE, 1, 0xa, 0, 0);
    prout(f, NX_B, SA_REGISTER, 0, 0, 0xb, 0);          /* no ALL_TG_PT */
    nexuses[NX_B].rel_port = 2;
    nx_clear(f, NX_B);
    prout(f, NX_B, SA_RESERVE, 1, 0xb, 0, 0);
    EXPECT(conflicted(f));
    nexuses[NX_B].rel_port = 1;
    fx_free(f);
}

static void test_pr_in(void)
{
    struct fx *f = pr_fixture();
    prin(f, NX_A, 2);                               /* REPORT CAPABILITIES */
    EXPECT_GOOD(f->t.status);
    EXPECT_EQ(f->t.data_in_len, 8);
    EXPECT_EQ(get_be16(f->data), 8);
    EXPECT_EQ(f->data[4], 0xea);                    /* the six types */
    EXPECT_EQ(f->data[5], 0x01);

    prout(f, NX_A, SA_REGISTER, 0, 0, 0x1111, 0);
    prout(f, NX_B, SA_REGISTER, 0, 0, 0x2222, 0x04);
    prout(f, NX_A, SA_RESERVE, 5, 0x1111, 0, 0);
    EXPECT_GOOD(f->t.status);
    prin(f, NX_C, 1);                               /* READ RESERVATION */
    EXPECT_EQ(f->t.data_in_len, 24);
    EXPECT_EQ(get_be32(f->data + 4), 16);
    EXPECT_EQ(get_be64(f->data + 8), 0x1111);
    EXPECT_EQ(f->data[21], 5);

    prin(f, NX_C, 3);                               /* READ FULL STATUS */
    EXPECT_GOOD(f->t.status);
    uint32_t len = get_be32(f->data + 4);
    EXPECT_EQ(f->t.data_in_len, 8 + len);
    const uint8_t *d = f->data + 8;
    EXPECT_EQ(get_be64(d), 0x1111);
    EXPECT_EQ(d[12], 0x01);                         /* R_HOLDER */
    EXPECT_EQ(d[13], 5);
    EXPECT_EQ(d[24], 0x45);                         /* iSCSI, format 01b */
    const char *want = "iqn.2026-01.org.example:a,i,0x800000000000";
    EXPECT(!memcmp(d + 28, want, strlen(want) + 1));
    d += 24 + get_be32(d + 20);
    EXPECT_EQ(get_be64(d), 0x2222);
    EXPECT_EQ(d[12], 0x02);                         /* ALL_TG_PT */
    fx_free(f);
}

/* All registrants: READ RESERVATION's key is 0, and the reservation
 * stays while a registrant does. */
static void test_pr_all_registrants(void)
{
    struct fx *f = pr_fixture();
    prout(f, NX_A, SA_REGISTER, 0, 0, 0xa, 0);
    prout(f, NX_B, SA_REGISTER, 0, 0, 0xb, 0);
    prout(f, NX_A, SA_RESERVE, 8, 0xa, 0, 0);
    EXPECT_GOOD(f->t.status);
    prin(f, NX_A, 1);
    EXPECT_EQ(get_be64(f->data + 8), 0);
    EXPECT_EQ(f->data[21], 8);
    prout(f, NX_A, SA_REGISTER, 0, 0xa, 0, 0);     /* A leaves */
    prin(f, NX_A, 1);
    EXPECT_EQ(get_be32(f->data + 4), 16);           /* still reserved */
    expect_access(f, NX_B, true, true, "EA_AR", __LINE__);
    expect_access(f, NX_A, false, false, "EA_AR", __LINE__);
    prout(f, NX_B, SA_REGISTER, 0, 0xb, 0, 0);     /* the last one */
    prin(f, NX_A, 1);
    EXPECT_EQ(get_be32(f->data + 4), 0);
    fx_free(f);
}

static void test_pr_release_clear_preempt_uas(void)
{
    struct fx *f = pr_fixture();
    prout(f, NX_A, SA_REGISTER, 0, 0, 0xa, 0);
    prout(f, NX_B, SA_REGISTER, 0, 0, 0xb, 0);
    /* Releasing a registrants only reservation: the others learn it. */
    prout(f, NX_A, SA_RESERVE, 6, 0xa, 0, 0);
    prout(f, NX_A, SA_RELEASE, 5, 0xa, 0, 0);       /* the wrong type */
    EXPECT_SENSE(f->t.status, SPD_KEY_ILLEGAL_REQUEST,
                 SPD_ASC_INVALID_RELEASE_OF_PR);
    prout(f, NX_B, SA_RELEASE, 6, 0xb, 0, 0);       /* not the holder */
    EXPECT_GOOD(f->t.status);
    prout(f, NX_A, SA_RELEASE, 6, 0xa, 0, 0);
    EXPECT_GOOD(f->t.status);
    EXPECT_UA(f, NX_B, SPD_ASC_RESERVATIONS_RELEASED);
    nx_run(f, NX_A, tur, 6, 0);
    EXPECT_GOOD(f->t.status);

    /* PREEMPT of the holder's key: B's registration goes, A holds. */
    prout(f, NX_B, SA_RESERVE, 1, 0xb, 0, 0);
    EXPECT_GOOD(f->t.status);
    prout(f, NX_A, SA_PREEMPT, 3, 0xa, 0xb, 0);
    EXPECT_GOOD(f->t.status);
    EXPECT_UA(f, NX_B, SPD_ASC_REGISTRATIONS_PREEMPTED);
    prin(f, NX_A, 1);
    EXPECT_EQ(get_be64(f->data + 8), 0xa);
    EXPECT_EQ(f->data[21], 3);
    prin(f, NX_A, 0);
    EXPECT_EQ(get_be32(f->data + 4), 8);
    /* PREEMPT of a key nobody has: conflict; of key 0: invalid. */
    prout(f, NX_A, SA_PREEMPT_ABORT, 3, 0xa, 0x77, 0);
    EXPECT(conflicted(f));
    prout(f, NX_A, SA_PREEMPT, 3, 0xa, 0, 0);
    EXPECT_FIELD(f->t.status, false, 8, -1);

    /* CLEAR: everything goes, the others learn it. */
    prout(f, NX_C, SA_REGISTER, 0, 0, 0xc, 0);
    prout(f, NX_A, SA_CLEAR, 0, 0xa, 0, 0);
    EXPECT_GOOD(f->t.status);
    EXPECT_UA(f, NX_C, SPD_ASC_RESERVATIONS_PREEMPTED);
    prin(f, NX_A, 0);
    EXPECT_EQ(get_be32(f->data + 4), 0);
    prin(f, NX_A, 1);
    EXPECT_EQ(get_be32(f->data + 4), 0);
    fx_free(f);
}

static void test_pr_register_and_move(void)
{
    struct fx *f = pr_fixture();
    prout(f, NX_A, SA_REGISTER, 0, 0, 0xa, 0);
    prout(f, NX_A, SA_RESERVE, 1, 0xa, 0, 0);
    const char *tid = "iqn.2026-01.org.example:b,i,0x800000000001";
    size_t n = (strlen(tid) + 1 + 3) & ~(size_t)3;
    static uint8_t cdb[10] = { SPD_SCSI_PERSISTENT_RESERVE_OUT,
                               SA_REGISTER_MOVE, 1 };
    uint32_t len = (uint32_t)(24 + 4 + n);
    put_be32(cdb + 5, len);
    memset(f->data, 0, len);
    put_be64(f->data, 0xa);
    put_be64(f->data + 8, 0xbb);
    f->data[17] = 0x02;                             /* UNREG */
    put_be16(f->data + 18, 1);
    put_be32(f->data + 20, (uint32_t)(4 + n));
    f->data[24] = 0x45;
    put_be16(f->data + 26, (uint16_t)n);
    memcpy(f->data + 28, tid, strlen(tid));
    nx_run(f, NX_A, cdb, 10, len);
    EXPECT_GOOD(f->t.status);
    prin(f, NX_C, 1);
    EXPECT_EQ(get_be64(f->data + 8), 0xbb);
    prin(f, NX_C, 0);
    EXPECT_EQ(get_be32(f->data + 4), 8);            /* A unregistered */
    expect_access(f, NX_B, true, true, "WE", __LINE__);
    expect_access(f, NX_A, true, false, "WE", __LINE__);
    /* Only the holder moves it. */
    nx_run(f, NX_A, cdb, 10, len);
    EXPECT(conflicted(f));
    fx_free(f);
}

/* ------------------------------------------------------------------ */
/* RESERVE and RELEASE (SPC-2)                                          */
/* ------------------------------------------------------------------ */

static void test_reserve_release(void)
{
    struct fx *f = pr_fixture();
    const uint8_t reserve6[6] = { SPD_SCSI_RESERVE_6 };
    const uint8_t release6[6] = { SPD_SCSI_RELEASE_6 };
    const uint8_t reserve10[10] = { SPD_SCSI_RESERVE_10 };
    const uint8_t release10[10] = { SPD_SCSI_RELEASE_10 };
    nx_run(f, NX_A, reserve6, 6, 0);
    EXPECT_GOOD(f->t.status);
    nx_run(f, NX_A, reserve10, 10, 0);              /* again: fine */
    EXPECT_GOOD(f->t.status);
    nx_run(f, NX_B, reserve6, 6, 0);
    EXPECT(conflicted(f));
    expect_access(f, NX_B, false, false, "RESERVE", __LINE__);
    expect_access(f, NX_A, true, true, "RESERVE", __LINE__);
    prin(f, NX_B, 0);
    EXPECT(conflicted(f));
    nx_run(f, NX_B, release6, 6, 0);                /* not the holder */
    EXPECT_GOOD(f->t.status);
    nx_run(f, NX_B, read10, 10, 512);
    EXPECT(conflicted(f));
    nx_run(f, NX_A, release10, 10, 0);
    EXPECT_GOOD(f->t.status);
    EXPECT_EQ(nx_run(f, NX_B, read10, 10, 512), SCSI_IO);

    /* Released by the holder's nexus loss and by a reset. */
    nx_run(f, NX_A, reserve6, 6, 0);
    scsi_nexus_lost(&f->lu, &nexuses[NX_B]);
    nx_run(f, NX_B, read10, 10, 512);
    EXPECT(conflicted(f));
    scsi_nexus_lost(&f->lu, &nexuses[NX_A]);
    EXPECT_EQ(nx_run(f, NX_B, read10, 10, 512), SCSI_IO);
    nx_run(f, NX_B, reserve6, 6, 0);
    EXPECT_GOOD(f->t.status);
    scsi_lu_reset(&f->lu);
    for (int i = 0; i < NX_COUNT; i++)
        nx_clear(f, i);
    nx_run(f, NX_A, reserve6, 6, 0);
    EXPECT_GOOD(f->t.status);
    nx_run(f, NX_A, release6, 6, 0);

    /* A persistent reservation makes RESERVE conflict. */
    prout(f, NX_C, SA_REGISTER, 0, 0, 0xc, 0);
    prout(f, NX_C, SA_RESERVE, 1, 0xc, 0, 0);
    nx_run(f, NX_C, reserve6, 6, 0);
    EXPECT(conflicted(f));
    /* Third-party RESERVE(10) is not supported. */
    uint8_t third[10] = { SPD_SCSI_RESERVE_10, 0x10 };
    nx_run(f, NX_A, third, 10, 0);
    EXPECT_FIELD(f->t.status, true, 1, 4);
    fx_free(f);
}

/* A unit remembers SCSI_NEXUS_MAX nexuses; beyond, the least recently
 * seen unregistered one is forgotten (and gets power on again). */
static void test_many_nexuses(void)
{
    struct fx *f = pr_fixture();
    prout(f, NX_A, SA_REGISTER, 0, 0, 0xa, 0);
    spd_scsi_nexus many = { SPD_SCSI_NEXUS_INIT };
    for (int i = 0; i < 2 * SCSI_NEXUS_MAX; i++) {
        snprintf(many.name, sizeof many.name, "iqn.2026-01.org.example:%d", i);
        fx_fini(f);
        memset(&f->t, 0, sizeof f->t);
        f->t.cdb = tur;
        f->t.cdb_len = 6;
        f->t.nexus = &many;
        scsi_execute(&f->lu, &f->t);
        EXPECT_SENSE(f->t.status, SPD_KEY_UNIT_ATTENTION,
                     SPD_ASC_POWER_ON_RESET);
    }
    prin(f, NX_A, 0);                           /* A's registration kept */
    EXPECT_EQ(get_be32(f->data + 4), 8);
    fx_free(f);
}

int main(void)
{
    nexus_setup();
    static const struct test_case tests[] = {
        TEST(test_ua_power_on),
        TEST(test_ua_reset),
        TEST(test_ua_mode_changed),
        TEST(test_swp),
        TEST(test_pr_types_against_commands),
        TEST(test_pr_register),
        TEST(test_pr_all_target_ports),
        TEST(test_pr_in),
        TEST(test_pr_all_registrants),
        TEST(test_pr_release_clear_preempt_uas),
        TEST(test_pr_register_and_move),
        TEST(test_reserve_release),
        TEST(test_many_nexuses),
    };
    return run_tests("scsi_pr", tests, sizeof tests / sizeof tests[0]);
}
