/*
 * test_scsi_pr_share.c - persistent reservations shared by the processes
 * serving one disk: the engine's state blob (pr_blob.c) written and read
 * back, every truncation and damage of it refused with nothing changed;
 * and two logical units sharing one store, as two gateways of one disk
 * do (spd_ops.pr_load, pr_update): a reservation taken through one is
 * enforced by the other, a corrupt or unreachable store fails the
 * commands a reservation concerns with a clear sense.
 */
#include <errno.h>
#include <stddef.h>

#include "scsi_nexus_fixture.h"

/* ------------------------------------------------------------------ */
/* The blob                                                             */
/* ------------------------------------------------------------------ */

/* A state with every kind of registration: A (with ISID) holding an
 * exclusive access registrants only reservation, B with ALL_TG_PT on
 * relative port 2, the in-process nexus. */
static struct fx *state_fixture(void)
{
    struct fx *f = fx_new(512, 1000, 0);
    nx_clear(f, NX_A);
    nx_clear(f, NX_B);
    prout(f, NX_A, 0, 0, 0, 0xa1, 0);
    nexuses[NX_B].rel_port = 2;
    nx_clear(f, NX_B);
    prout(f, NX_B, 0, 0, 0, 0xb2, 0x04);
    nexuses[NX_B].rel_port = 1;
    static uint8_t reg[10] = { SPD_SCSI_PERSISTENT_RESERVE_OUT, 0, 0, 0, 0,
                               0, 0, 0, 24 };
    memset(f->data, 0, 24);
    put_be64(f->data + 8, 0xc3);
    fx_done(f, reg, 10, 24);                    /* slot 0 registers */
    EXPECT_GOOD(f->t.status);
    prout(f, NX_A, 1, 6, 0xa1, 0, 0);           /* EA registrants only */
    EXPECT_GOOD(f->t.status);
    return f;
}

static size_t encode(struct fx *f, uint8_t *buf)
{
    pthread_mutex_lock(&f->lu.nexus_lock);
    size_t n = scsi_pr_encode(&f->lu, buf);
    pthread_mutex_unlock(&f->lu.nexus_lock);
    return n;
}

static int install(struct fx *f, const uint8_t *buf, size_t len)
{
    pthread_mutex_lock(&f->lu.nexus_lock);
    int r = scsi_pr_install(&f->lu, buf, len);
    pthread_mutex_unlock(&f->lu.nexus_lock);
    return r;
}

static void test_blob_round_trip(void)
{
    static uint8_t a[SPD_PR_STATE_MAX], b[SPD_PR_STATE_MAX];
    struct fx *f = state_fixture();
    size_t n = encode(f, a);
    EXPECT_EQ(n, 16 + 3 * 18 + 2 * strlen(nexuses[0].name));
    EXPECT(!memcmp(a, "SpdR\x01\x06", 6));      /* magic, version, type */

    struct fx *g = fx_new(512, 1000, 0);
    EXPECT_EQ(install(g, a, n), 0);
    EXPECT_EQ(encode(g, b), n);
    EXPECT(!memcmp(a, b, n));
    /* B (registrants only type, registered) writes; an unregistered
     * nexus may not even read (exclusive access). */
    nx_clear(g, NX_A);
    nexuses[NX_B].rel_port = 2;
    nx_clear(g, NX_B);
    EXPECT_EQ(nx_run(g, NX_B, write10, 10, 512), SCSI_IO);
    nexuses[NX_B].rel_port = 1;
    nx_run(g, NX_B, read10, 10, 512);           /* new here: power on */
    EXPECT_SENSE(g->t.status, SPD_KEY_UNIT_ATTENTION, SPD_ASC_POWER_ON_RESET);
    nx_run(g, NX_B, read10, 10, 512);
    EXPECT(conflicted(g));
    prin(g, NX_A, 1);                           /* READ RESERVATION */
    EXPECT_EQ(get_be64(g->data + 8), 0xa1);
    EXPECT_EQ(g->data[21], 6);
    EXPECT_EQ(get_be32(g->data), get_be32(a + 8));   /* generation */
    fx_free(f);
    fx_free(g);
}

/* A corrupt blob: -EINVAL, the state as it was. */
static void expect_refused(struct fx *g, const uint8_t *blob, size_t len,
                           const uint8_t *before, size_t before_len, int line)
{
    static uint8_t now[SPD_PR_STATE_MAX];
    harness_check(install(g, blob, len) == -EINVAL, "refused", __FILE__, line);
    size_t n = encode(g, now);
    harness_check(n == before_len && !memcmp(now, before, n),
                  "the state unchanged", __FILE__, line);
}
#define EXPECT_REFUSED(blob, len) \
    expect_refused(g, blob, len, before, before_len, __LINE__)

static void test_blob_corrupt(void)
{
    static uint8_t good[SPD_PR_STATE_MAX], bad[SPD_PR_STATE_MAX + 8];
    static uint8_t before[SPD_PR_STATE_MAX];
    struct fx *f = state_fixture();
    size_t n = encode(f, good);
    struct fx *g = state_fixture();             /* a state to keep */
    prout(g, NX_A, 2, 6, 0xa1, 0, 0);           /* released */
    size_t before_len = encode(g, before);

    for (size_t len = 1; len < n; len++)        /* every truncation */
        EXPECT_REFUSED(good, len);
    memcpy(bad, good, n);
    bad[n] = 0;
    EXPECT_REFUSED(bad, n + 1);                 /* a byte more */

    /* One field wrong at a time. */
    static const struct { size_t off; uint8_t value; } damage[] = {
        { 0, 'X' },            /* magic */
        { 4, 2 },              /* a later version */
        { 4, 0 },
        { 5, 2 },              /* not a type */
        { 5, 0 },              /* a holder without a type */
        { 6, 0x12 },           /* holder past the registrations */
        { 12, 0x01 },          /* 256 + 3 registrations */
        { 13, 4 },             /* one more than there are */
        { 13, 2 },             /* one fewer: bytes left over */
        { 14, 1 },             /* reserved */
        { 16 + 10, 0x80 },     /* an unknown flag */
        { 16 + 11, 0xff },     /* a name longer than the blob */
        { 16 + 11, 1 },        /* a shorter name: the rest misread */
        { 16 + 18 + 18 + 3, 0 },   /* a NUL inside A's name */
    };
    for (size_t i = 0; i < sizeof damage / sizeof *damage; i++) {
        memcpy(bad, good, n);
        bad[damage[i].off] = damage[i].value;
        EXPECT_REFUSED(bad, n);
    }
    memcpy(bad, good, n);
    memset(bad + 16, 0, 8);                     /* a registration's key 0 */
    EXPECT_REFUSED(bad, n);

    /* One nexus twice (A's registration over B's, after the in-process
     * nexus's). */
    memcpy(bad, good, n);
    size_t reg = 18 + strlen(nexuses[0].name);
    memcpy(bad + 16 + 18 + reg, bad + 16 + 18, reg);
    EXPECT_REFUSED(bad, n);
    /* No holder and no type: well formed. */
    memcpy(bad, good, n);
    bad[5] = 0;
    put_be16(bad + 6, 0xffff);
    EXPECT_EQ(install(g, bad, n), 0);
    /* Nothing stored: no registration. */
    EXPECT_EQ(install(g, good, 0), 0);
    EXPECT_EQ(encode(g, bad), 16);

    /* Random damage: never a crash, a refusal or a state. */
    srand(17);
    for (int i = 0; i < 20000; i++) {
        memcpy(bad, good, n);
        for (int k = 1 + rand() % 3; k > 0; k--)
            bad[rand() % n] = (uint8_t)rand();
        int r = install(g, bad, n - (size_t)(rand() % 2));
        EXPECT(r == 0 || r == -EINVAL || r == -ENOSPC);
    }
    fx_free(f);
    fx_free(g);
}

/* ------------------------------------------------------------------ */
/* Two logical units sharing one store                                  */
/* ------------------------------------------------------------------ */

/* The store of a device: the blob, and the units it tells of changes. */
static struct store {
    uint8_t blob[SPD_PR_STATE_MAX];
    size_t len;
    int fail;                   /* -errno every call returns, or 0 */
    int updates;
    struct fx *units[2];
} store;

static int store_load(void *ctx, void *buf, size_t cap)
{
    struct store *s = ctx;
    if (s->fail)
        return s->fail;
    if (s->len > cap)
        return -EINVAL;
    memcpy(buf, s->blob, s->len);
    return (int)s->len;
}

static int store_update(void *ctx, int (*apply)(void *, void *, size_t),
                        void *arg)
{
    struct store *s = ctx;
    static uint8_t buf[SPD_PR_STATE_MAX];
    int r = store_load(s, buf, sizeof buf);
    if (r < 0)
        return r;
    r = apply(arg, buf, (size_t)r);
    if (r > 0) {
        memcpy(s->blob, buf, (size_t)r);
        s->len = (size_t)r;
        s->updates++;
        for (int i = 0; i < 2; i++)             /* the update watch */
            scsi_pr_changed(&s->units[i]->lu);
    }
    return r;
}

static void gateways(struct fx **one, struct fx **two)
{
    memset(&store, 0, sizeof store);
    struct scsi_pr_store st = { store_load, store_update, &store };
    for (int i = 0; i < 2; i++) {
        struct fx *f = store.units[i] = fx_new(512, 1000, 0);
        scsi_pr_share(&f->lu, &st);
        nx_clear(f, NX_A);
        nx_clear(f, NX_B);
    }
    *one = store.units[0];
    *two = store.units[1];
}

static void gateways_free(void)
{
    for (int i = 0; i < 2; i++) {
        scsi_pr_fini(&store.units[i]->lu);
        fx_free(store.units[i]);
    }
}

static void test_shared_reservation(void)
{
    struct fx *one, *two;
    gateways(&one, &two);
    EXPECT_EQ(store.len, 0);                    /* nothing stored yet */
    prout(one, NX_A, 0, 0, 0, 0xa1, 0);
    prout(one, NX_A, 1, 1, 0xa1, 0, 0);         /* WRITE EXCLUSIVE */
    EXPECT_GOOD(one->t.status);
    EXPECT_EQ(store.updates, 2);
    nx_run(two, NX_B, write10, 10, 512);
    EXPECT(conflicted(two));
    EXPECT_EQ(nx_run(two, NX_B, read10, 10, 512), SCSI_IO);
    prin(two, NX_B, 1);
    EXPECT_EQ(get_be64(two->data + 8), 0xa1);
    EXPECT_EQ(two->data[21], 1);

    /* A failed command stores nothing: B is not registered. */
    prout(two, NX_B, 1, 1, 0xb2, 0, 0);
    EXPECT(conflicted(two));
    EXPECT_EQ(store.updates, 2);

    /* B registers and preempts through two: A hears of it through one. */
    prout(two, NX_B, 0, 0, 0, 0xb2, 0);
    prout(two, NX_B, 4, 1, 0xb2, 0xa1, 0);      /* PREEMPT */
    EXPECT_GOOD(two->t.status);
    nx_run(one, NX_A, tur, 6, 0);
    EXPECT_SENSE(one->t.status, SPD_KEY_UNIT_ATTENTION,
                 SPD_ASC_REGISTRATIONS_PREEMPTED);
    nx_run(one, NX_A, write10, 10, 512);
    EXPECT(conflicted(one));
    prout(one, NX_B, 2, 1, 0xb2, 0, 0);         /* B releases through one */
    EXPECT_GOOD(one->t.status);
    nx_clear(two, NX_A);                        /* the preemption's UA */
    EXPECT_EQ(nx_run(two, NX_A, write10, 10, 512), SCSI_IO);
    gateways_free();
}

static void test_shared_store_broken(void)
{
    struct fx *one, *two;
    gateways(&one, &two);
    prout(one, NX_A, 0, 0, 0, 0xa1, 0);
    prout(one, NX_A, 1, 1, 0xa1, 0, 0);
    uint8_t kept[SPD_PR_STATE_MAX];
    size_t kept_len = store.len;
    memcpy(kept, store.blob, kept_len);

    /* Damaged (another program wrote it): nothing a reservation
     * concerns runs, PERSISTENT RESERVE IN and OUT fail, INQUIRY runs. */
    store.blob[0] = 'X';
    scsi_pr_changed(&two->lu);
    nx_run(two, NX_B, read10, 10, 512);
    EXPECT_SENSE(two->t.status, SPD_KEY_HARDWARE_ERROR,
                 SPD_ASC_INTERNAL_TARGET_FAILURE);
    nx_run(two, NX_A, write10, 10, 512);        /* the holder too */
    EXPECT_SENSE(two->t.status, SPD_KEY_HARDWARE_ERROR,
                 SPD_ASC_INTERNAL_TARGET_FAILURE);
    EXPECT_EQ(nx_run(two, NX_B, inquiry, 6, 96), SCSI_DONE);
    EXPECT_GOOD(two->t.status);
    nx_run(two, NX_B, tur, 6, 0);               /* EA would forbid it */
    EXPECT_SENSE(two->t.status, SPD_KEY_HARDWARE_ERROR,
                 SPD_ASC_INTERNAL_TARGET_FAILURE);
    prin(two, NX_B, 0);
    EXPECT_SENSE(two->t.status, SPD_KEY_HARDWARE_ERROR,
                 SPD_ASC_INTERNAL_TARGET_FAILURE);
    prout(two, NX_B, 0, 0, 0, 0xb2, 0);
    EXPECT_SENSE(two->t.status, SPD_KEY_HARDWARE_ERROR,
                 SPD_ASC_INTERNAL_TARGET_FAILURE);
    EXPECT(store.blob[0] == 'X' && store.len == kept_len);

    /* Repaired: enforced again, without being told. */
    memcpy(store.blob, kept, kept_len);
    nx_run(two, NX_B, write10, 10, 512);
    EXPECT(conflicted(two));

    /* Unreachable: PERSISTENT RESERVE OUT fails, nothing changes. */
    store.fail = -ETIMEDOUT;
    prout(one, NX_A, 2, 1, 0xa1, 0, 0);
    EXPECT_SENSE(one->t.status, SPD_KEY_HARDWARE_ERROR,
                 SPD_ASC_INTERNAL_TARGET_FAILURE);
    store.fail = -EROFS;                        /* a read-only store */
    prout(one, NX_A, 2, 1, 0xa1, 0, 0);
    EXPECT_SENSE(one->t.status, SPD_KEY_DATA_PROTECT, SPD_ASC_WRITE_PROTECTED);
    store.fail = 0;
    EXPECT(store.len == kept_len && !memcmp(store.blob, kept, kept_len));
    nx_run(one, NX_B, write10, 10, 512);
    EXPECT(conflicted(one));
    gateways_free();
}

/* ------------------------------------------------------------------ */
/* The operations on a unit                                             */
/* ------------------------------------------------------------------ */

static int null_read(void *ctx, spd_io *io, void *buf, uint64_t lba,
                     uint32_t blocks, bool fua)
{
    (void)ctx; (void)io; (void)lba; (void)fua;
    memset(buf, 0, blocks * 512u);
    return SPD_OK;
}

static void test_unit_ops(void)
{
    spd_params p = { SPD_PARAMS_INIT, .uuid = { 7 }, .block_count = 8,
                     .block_length = 512, .write_protected = true };
    /* One without the other: refused. */
    spd_ops ops = { SPD_OPS_INIT, .read = null_read, .pr_load = store_load };
    EXPECT(!spd_unit_create(&p, &ops, &store));
    EXPECT(strstr(spd_errmsg(), "pr_load"));
    /* A device built before them: what follows its size is not read. */
    ops.size = offsetof(spd_ops, pr_load);
    spd_unit *u = spd_unit_create(&p, &ops, &store);
    EXPECT(u);
    spd_unit_reservations_changed(u);           /* nothing to load */
    uint8_t data[512];
    spd_scsi_cmd cmd = { SPD_SCSI_CMD_INIT, .cdb = { SPD_SCSI_READ_10, 0, 0,
                         0, 0, 0, 0, 0, 1 }, .cdb_len = 10, .data = data,
                         .data_len = sizeof data };
    EXPECT_EQ(spd_unit_scsi_run(u, &cmd), SPD_STATUS_GOOD);
    spd_unit_destroy(u);
    spd_unit_reservations_changed(NULL);
}

int main(void)
{
    nexus_setup();
    static const struct test_case tests[] = {
        TEST(test_blob_round_trip),
        TEST(test_blob_corrupt),
        TEST(test_shared_reservation),
        TEST(test_shared_store_broken),
        TEST(test_unit_ops),
    };
    return run_tests("scsi_pr_share", tests, sizeof tests / sizeof tests[0]);
}
