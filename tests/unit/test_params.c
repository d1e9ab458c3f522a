/* test_params.c - unit parameters, UUIDs, the registry and debug masks. */
#include <errno.h>

#include "harness.h"
#include "memunit.h"
#include "spd/iscsi.h"
#include "spd/spd.h"

static int noop_read(void *ctx, spd_io *io, void *buf, uint64_t lba,
                     uint32_t blocks, bool fua)
{
    return SPD_OK;
}

static int noop_write(void *ctx, spd_io *io, const void *buf, uint64_t lba,
                      uint32_t blocks, bool fua)
{
    return SPD_OK;
}

static const spd_ops noop_ops = {
    SPD_OPS_INIT, .read = noop_read, .write = noop_write,
};

/* Expect params to be refused with EINVAL and a message naming field. */
static void expect_refused(const spd_params *p, const char *field)
{
    EXPECT_EQ(spd_params_check(p), -EINVAL);
    if (!EXPECT(strstr(spd_errmsg(), field) != NULL))
        fprintf(stderr, "  message was: %s\n", spd_errmsg());
    errno = 0;
    EXPECT(spd_unit_create(p, &noop_ops, NULL) == NULL);
    EXPECT_EQ(errno, EINVAL);
}

static spd_params good_params(void)
{
    spd_params p = memunit_params(512, 100, 1);
    p.unmap_supported = false;
    p.unmap_reads_zero = false;
    return p;
}

static void test_valid_params(void)
{
    spd_params p = good_params();
    EXPECT_EQ(spd_params_check(&p), 0);
    for (uint32_t bl = 512; bl <= 65536; bl *= 2) {
        p.block_length = bl;
        EXPECT_EQ(spd_params_check(&p), 0);
    }
}

static void test_invalid_params(void)
{
    spd_params p = good_params();
    memset(p.uuid, 0, 16);
    expect_refused(&p, "uuid");

    uint32_t bad_lengths[] = { 0, 256, 1000, 131072, 513 };
    for (size_t i = 0; i < sizeof bad_lengths / sizeof bad_lengths[0]; i++) {
        p = good_params();
        p.block_length = bad_lengths[i];
        expect_refused(&p, "block_length");
    }
    p = good_params();
    p.block_count = 0;
    expect_refused(&p, "block_count");
    p.block_count = UINT64_MAX / 256;
    expect_refused(&p, "block_count");

    p = good_params();
    memset(p.product_id, 'x', sizeof p.product_id);     /* no NUL */
    expect_refused(&p, "product_id");
    p = good_params();
    strcpy(p.product_id, "bad\tname");
    expect_refused(&p, "product_id");
    p = good_params();
    memset(p.product_revision, '1', sizeof p.product_revision);
    expect_refused(&p, "product_revision");

    p = good_params();
    p.unmap_reads_zero = true;
    expect_refused(&p, "unmap_reads_zero");

    p = good_params();
    p.max_transfer_length = 1000;
    expect_refused(&p, "max_transfer_length");

    uint32_t bad_physical[] = { 256, 768, 1536, 512u << 16 };
    for (size_t i = 0; i < sizeof bad_physical / sizeof bad_physical[0]; i++) {
        p = good_params();
        p.physical_block_length = bad_physical[i];
        expect_refused(&p, "physical_block_length");
    }
}

/* The physical block length: 0 becomes the block length in the unit's
 * parameters; a power-of-two multiple is kept. */
static void test_physical_block_length(void)
{
    spd_params p = good_params();
    spd_unit *u = spd_unit_create(&p, &noop_ops, NULL);
    EXPECT_EQ(spd_unit_params(u)->physical_block_length, 512);
    spd_unit_destroy(u);
    p.physical_block_length = 512u << 15;
    EXPECT_EQ(spd_params_check(&p), 0);
    p.physical_block_length = 4096;
    u = spd_unit_create(&p, &noop_ops, NULL);
    EXPECT_EQ(spd_unit_params(u)->physical_block_length, 4096);
    spd_unit_destroy(u);
}

static void test_missing_ops(void)
{
    spd_params p = good_params();
    spd_ops ops = noop_ops;
    ops.size = 0;
    EXPECT(spd_unit_create(&p, &ops, NULL) == NULL);
    EXPECT(strstr(spd_errmsg(), "SPD_OPS_INIT") != NULL);

    ops = noop_ops;
    ops.write = NULL;
    EXPECT(spd_unit_create(&p, &ops, NULL) == NULL);
    EXPECT(strstr(spd_errmsg(), "write") != NULL);
    p.write_protected = true;            /* a read-only unit needs no write */
    spd_unit *u = spd_unit_create(&p, &ops, NULL);
    EXPECT(u != NULL);
    spd_unit_destroy(u);

    p = good_params();
    p.unmap_supported = true;
    EXPECT(spd_unit_create(&p, &noop_ops, NULL) == NULL);
    EXPECT(strstr(spd_errmsg(), "unmap") != NULL);
}

static void test_default_max_transfer(void)
{
    spd_params p = good_params();
    spd_unit *u = spd_unit_create(&p, &noop_ops, NULL);
    EXPECT_EQ(spd_unit_params(u)->max_transfer_length, SPD_DEFAULT_MAX_TRANSFER);
    spd_unit_destroy(u);
}

static void test_uuid_text(void)
{
    uint8_t uuid[16], again[16];
    char text[37];
    EXPECT_EQ(spd_uuid_parse("00112233-4455-6677-8899-aabbccddeeff", uuid), 0);
    EXPECT_EQ(uuid[0], 0x00);
    EXPECT_EQ(uuid[5], 0x55);
    EXPECT_EQ(uuid[15], 0xff);
    spd_uuid_format(uuid, text);
    EXPECT(!strcmp(text, "00112233-4455-6677-8899-aabbccddeeff"));
    EXPECT_EQ(spd_uuid_parse("00112233-4455-6677-8899-AABBCCDDEEFF", again), 0);
    EXPECT(!memcmp(uuid, again, 16));

    const char *bad[] = { "", "00112233445566778899aabbccddeeff",
                          "00112233-4455-6677-8899-aabbccddeef",
                          "00112233-4455-6677-8899-aabbccddeeffa",
                          "0011223g-4455-6677-8899-aabbccddeeff",
                          "00112233+4455-6677-8899-aabbccddeeff" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        EXPECT_EQ(spd_uuid_parse(bad[i], uuid), -EINVAL);
        EXPECT(strstr(spd_errmsg(), "not a UUID") != NULL);
    }

    EXPECT_EQ(spd_uuid_generate(uuid), 0);
    EXPECT_EQ(spd_uuid_generate(again), 0);
    EXPECT(memcmp(uuid, again, 16) != 0);
    EXPECT_EQ(uuid[6] >> 4, 4);
    EXPECT_EQ(uuid[8] >> 6, 2);
}

static void test_registry(void)
{
    enum { UNITS = 100 };
    spd_unit *units[UNITS];
    spd_params p = good_params();
    for (int i = 0; i < UNITS; i++) {
        p.uuid[0] = (uint8_t)i;
        p.uuid[1] = 0xAB;
        units[i] = spd_unit_create(&p, &noop_ops, NULL);
        EXPECT(units[i] != NULL);
    }
    p.uuid[0] = 7;
    errno = 0;
    EXPECT(spd_unit_create(&p, &noop_ops, NULL) == NULL);
    EXPECT_EQ(errno, EEXIST);
    EXPECT(strstr(spd_errmsg(), "already exists") != NULL);

    spd_unit_destroy(units[7]);             /* its UUID is free again */
    units[7] = spd_unit_create(&p, &noop_ops, NULL);
    EXPECT(units[7] != NULL);
    for (int i = 0; i < UNITS; i++)
        spd_unit_destroy(units[i]);
}

static void test_debug_mask_parse(void)
{
    unsigned mask = 0;
    EXPECT_EQ(spd_debug_mask_parse("read,write", &mask), 0);
    EXPECT_EQ(mask, SPD_DEBUG_READ | SPD_DEBUG_WRITE);
    EXPECT_EQ(spd_debug_mask_parse("all", &mask), 0);
    EXPECT_EQ(mask, SPD_DEBUG_ALL);
    EXPECT_EQ(spd_debug_mask_parse("0x10", &mask), 0);
    EXPECT_EQ(mask, SPD_DEBUG_SCSI);
    EXPECT_EQ(spd_debug_mask_parse("SCSI,Unmap", &mask), 0);
    EXPECT_EQ(mask, SPD_DEBUG_SCSI | SPD_DEBUG_UNMAP);
    EXPECT_EQ(spd_debug_mask_parse("reads", &mask), -EINVAL);
    EXPECT_EQ(spd_debug_mask_parse("", &mask), -EINVAL);
    EXPECT_EQ(spd_debug_mask_parse("0x100", &mask), -EINVAL);
    EXPECT(strstr(spd_errmsg(), "debug mask") != NULL);
}

/* spd_params_set_alua(): the list of every gateway's group and state,
 * the process's own among them; params unchanged when refused. */
static void test_port_groups(void)
{
    spd_params p = good_params();
    EXPECT_EQ(spd_params_set_alua(&p, 2, "1:ao,2:ano,3:standby,"
                                  "65535:unavailable"), 0);
    EXPECT_EQ(p.port_group, 2);
    EXPECT_EQ(p.port_group_count, 4);
    EXPECT_EQ(p.port_groups[0].id, 1);
    EXPECT_EQ(p.port_groups[0].state, SPD_ALUA_OPTIMIZED);
    EXPECT_EQ(p.port_groups[1].state, SPD_ALUA_NON_OPTIMIZED);
    EXPECT_EQ(p.port_groups[2].state, SPD_ALUA_STANDBY);
    EXPECT_EQ(p.port_groups[3].id, 65535);
    EXPECT_EQ(p.port_groups[3].state, SPD_ALUA_UNAVAILABLE);
    EXPECT_EQ(spd_params_check(&p), 0);

    static const struct {
        unsigned own;
        const char *list, *says;
    } bad[] = {
        { 3, "1:ao,2:ano", "is not among" },
        { 0, "1:ao", "ids go from 1 to 65535" },
        { 65536, "1:ao", "ids go from 1 to 65535" },
        { 1, "1:ao,1:ano", "listed twice" },
        { 1, "1:ao,01:ano", "listed twice" },
        { 1, "1:fast", "none of ao, ano" },
        { 1, "1:AO", "none of ao, ano" },
        { 1, "1:ao,", "is not ID:STATE" },
        { 1, "", "is not ID:STATE" },
        { 1, "1", "is not ID:STATE" },
        { 1, "0:ao", "the id is not" },
        { 1, "1:ao,65536:ano", "the id is not" },
        { 1, "-1:ao", "the id is not" },
        { 1, "1x:ao", "the id is not" },
        { 1, "1:ao,2:ao,3:ao,4:ao,5:ao,6:ao,7:ao,8:ao,9:ao,10:ao,11:ao,"
             "12:ao,13:ao,14:ao,15:ao,16:ao,17:ao", "more than 16" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        spd_params q = good_params();
        EXPECT_EQ(spd_params_set_alua(&q, bad[i].own, bad[i].list), -EINVAL);
        if (!EXPECT(strstr(spd_errmsg(), bad[i].says) != NULL))
            fprintf(stderr, "  '%s': %s\n", bad[i].list, spd_errmsg());
        spd_params fresh = good_params();
        EXPECT(!memcmp(&q, &fresh, sizeof q));
    }

    EXPECT_EQ(spd_params_set_alua(&p, 1, NULL), -EINVAL);
    EXPECT_EQ(p.port_group, 2);

    /* Filled by hand: checked as spd_params_set_alua() checks. */
    spd_params q = p;
    q.port_groups[1].id = 1;
    expect_refused(&q, "listed twice");
    q = p;
    q.port_groups[1].state = 7;
    expect_refused(&q, "state 7");
    q = p;
    q.port_group = 9;
    expect_refused(&q, "is not among");
    q = p;
    q.port_group_count = 0;
    expect_refused(&q, "go together");
    q = p;
    q.port_group_count = SPD_PORT_GROUPS_MAX + 1;
    expect_refused(&q, "at most 16");
}

/* An iSCSI target's LUNs share one target port group: its portal group
 * tag. */
static void test_port_group_of_a_target(void)
{
    spd_params p1 = memunit_params(512, 64, 1), p2 = memunit_params(512, 64, 2);
    spd_params p3 = memunit_params(512, 64, 3);
    EXPECT_EQ(spd_params_set_alua(&p1, 1, "1:ao,2:ano"), 0);
    EXPECT_EQ(spd_params_set_alua(&p2, 2, "1:ao,2:ano"), 0);
    EXPECT_EQ(spd_params_set_alua(&p3, 1, "1:ao,2:ano"), 0);
    struct memunit *m1 = memunit_create(&p1, 0), *m2 = memunit_create(&p2, 0);
    struct memunit *m3 = memunit_create(&p3, 0);
    spd_iscsi_target *t = spd_iscsi_target_create(NULL);
    if (!EXPECT(m1 && m2 && m3 && t))
        return;
    const char *iqn = "iqn.2026-11.org.spd:groups";
    EXPECT_EQ(spd_iscsi_target_add(t, m1->unit, iqn, 0), 0);
    EXPECT_EQ(spd_iscsi_target_add(t, m2->unit, iqn, 1), -EINVAL);
    EXPECT(strstr(spd_errmsg(), "a target has one") != NULL);
    EXPECT_EQ(spd_iscsi_target_add(t, m3->unit, iqn, 1), 0);
    EXPECT_EQ(spd_iscsi_target_add(t, m2->unit, "iqn.2026-11.org.spd:two", 0),
              0);
    spd_iscsi_target_destroy(t);
    memunit_destroy(m1);
    memunit_destroy(m2);
    memunit_destroy(m3);
}

int main(void)
{
    static const struct test_case tests[] = {
        TEST(test_valid_params),     TEST(test_invalid_params),
        TEST(test_physical_block_length),
        TEST(test_missing_ops),      TEST(test_default_max_transfer),
        TEST(test_uuid_text),        TEST(test_registry),
        TEST(test_debug_mask_parse), TEST(test_port_groups),
        TEST(test_port_group_of_a_target),
    };
    return RUN_TESTS("params", tests);
}
