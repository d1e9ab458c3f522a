/*
 * test_ublk.c - the ublk export's API where no kernel driver is needed:
 * options and units are checked before anything reaches the kernel, and
 * on a kernel without ublk_drv start fails with ENODEV and a message,
 * leaving nothing behind. Serving /dev/ublkbN is tested in a guest with
 * the driver (tests/vm/cases/ublk_*.sh).
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "memunit.h"
#include "spd/ublk.h"

static void test_options(void)
{
    spd_ublk_export *e = spd_ublk_export_create(NULL);
    EXPECT(e != NULL);
    EXPECT_EQ(spd_ublk_export_id(e), -1);
    spd_ublk_export_destroy(e);

    spd_ublk_options o = { SPD_UBLK_OPTIONS_INIT, .queue_depth = 4097 };
    errno = 0;
    EXPECT(spd_ublk_export_create(&o) == NULL);
    EXPECT_EQ(errno, EINVAL);
    o = (spd_ublk_options){ SPD_UBLK_OPTIONS_INIT, .queues = 65 };
    EXPECT(spd_ublk_export_create(&o) == NULL);
    o = (spd_ublk_options){ SPD_UBLK_OPTIONS_INIT };
    o.id = -2;
    EXPECT(spd_ublk_export_create(&o) == NULL);
    o = (spd_ublk_options){ .size = 2 };   /* from no build of ours */
    EXPECT(spd_ublk_export_create(&o) == NULL);
    o = (spd_ublk_options){ SPD_UBLK_OPTIONS_INIT, .queues = 64,
                            .queue_depth = 4096, .recovery = true };
    o.id = 7;
    e = spd_ublk_export_create(&o);
    EXPECT(e != NULL);
    spd_ublk_export_destroy(e);
    spd_ublk_export_destroy(NULL);
    spd_ublk_export_stop(NULL);
}

static void test_add(void)
{
    spd_params p = memunit_params(512, 1024, 1);
    struct memunit *m = memunit_create(&p, 0);
    p = memunit_params(8192, 128, 2);
    struct memunit *big = memunit_create(&p, 0);
    spd_ublk_export *e = spd_ublk_export_create(NULL);
    EXPECT(m && big && e);

    EXPECT_EQ(spd_ublk_export_start(e), -EINVAL);   /* nothing added */
    EXPECT_EQ(spd_ublk_export_add(e, NULL), -EINVAL);
    EXPECT_EQ(spd_ublk_export_add(e, big->unit), -EINVAL);
    EXPECT(strstr(spd_errmsg(), "4096") != NULL);
    EXPECT_EQ(spd_ublk_export_add(e, m->unit), 0);
    EXPECT_EQ(spd_ublk_export_add(e, m->unit), -EBUSY);
    spd_ublk_export_destroy(e);
    memunit_destroy(big);
    memunit_destroy(m);
}

/* Without the driver: ENODEV from both, a message naming the driver. */
static void test_no_driver(void)
{
    if (access("/dev/ublk-control", F_OK) == 0) {
        SKIP_TEST("this kernel has ublk (the guest tests cover it)");
        return;
    }
    EXPECT_EQ(spd_ublk_available(), -ENODEV);
    EXPECT(strstr(spd_errmsg(), "ublk_drv") != NULL);

    spd_params p = memunit_params(4096, 256, 3);
    struct memunit *m = memunit_create(&p, 0);
    spd_ublk_export *e = spd_ublk_export_create(NULL);
    EXPECT(m && e && !spd_ublk_export_add(e, m->unit));
    EXPECT_EQ(spd_ublk_export_start(e), -ENODEV);
    EXPECT_EQ(spd_ublk_export_id(e), -1);
    spd_ublk_export_stop(e);          /* not started: nothing to do */
    spd_ublk_export_destroy(e);
    memunit_destroy(m);
}

int main(void)
{
    static const struct test_case tests[] = {
        TEST(test_options),
        TEST(test_add),
        TEST(test_no_driver),
    };
    return RUN_TESTS("test_ublk", tests);
}
