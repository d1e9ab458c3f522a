/*
 * test_tcmu.c - the TCMU export's API where no kernel target is needed:
 * options, names and units are checked before anything reaches configfs,
 * and on a kernel without target_core_user start fails with ENODEV and a
 * message, leaving nothing behind. Serving a backstore and its tcm_loop
 * disk is tested in a guest (tests/vm/cases/tcmu_*.sh).
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "memunit.h"
#include "spd/tcmu.h"

static void test_names(void)
{
    EXPECT_EQ(spd_tcmu_name_check("disk-1_a.b"), 0);
    EXPECT_EQ(spd_tcmu_name_check(""), -EINVAL);
    EXPECT_EQ(spd_tcmu_name_check(NULL), -EINVAL);
    EXPECT_EQ(spd_tcmu_name_check("a,b"), -EINVAL);   /* splits control */
    EXPECT_EQ(spd_tcmu_name_check("a/b"), -EINVAL);
    EXPECT_EQ(spd_tcmu_name_check(".."), -EINVAL);
    char longest[SPD_TCMU_NAME_MAX + 2];
    memset(longest, 'x', sizeof longest);
    longest[SPD_TCMU_NAME_MAX] = '\0';
    EXPECT_EQ(spd_tcmu_name_check(longest), 0);
    longest[SPD_TCMU_NAME_MAX] = 'x';
    longest[SPD_TCMU_NAME_MAX + 1] = '\0';
    EXPECT_EQ(spd_tcmu_name_check(longest), -EINVAL);
    EXPECT(strstr(spd_errmsg(), "TCMU backstore name") != NULL);
}

static void test_options(void)
{
    errno = 0;
    EXPECT(spd_tcmu_export_create(NULL) == NULL);
    EXPECT_EQ(errno, EINVAL);
    spd_tcmu_options o = { SPD_TCMU_OPTIONS_INIT };   /* no name */
    EXPECT(spd_tcmu_export_create(&o) == NULL);
    o = (spd_tcmu_options){ .size = 2, .name = "x" };  /* no build of ours */
    EXPECT(spd_tcmu_export_create(&o) == NULL);
    o = (spd_tcmu_options){ SPD_TCMU_OPTIONS_INIT, .name = "x",
                            .reservations = (spd_tcmu_reservations)2 };
    errno = 0;
    EXPECT(spd_tcmu_export_create(&o) == NULL);
    EXPECT_EQ(errno, EINVAL);
    EXPECT(strstr(spd_errmsg(), "reservations") != NULL);
    /* An older caller's struct, without reservations: LIO's. */
    o = (spd_tcmu_options){ .size = offsetof(spd_tcmu_options, reservations),
                            .name = "old" };
    spd_tcmu_export *e = spd_tcmu_export_create(&o);
    EXPECT(e != NULL);
    spd_tcmu_export_destroy(e);
    o = (spd_tcmu_options){ SPD_TCMU_OPTIONS_INIT, .name = "disk",
                            .loop = true,
                            .reservations = SPD_TCMU_RESERVATIONS_SPD };
    e = spd_tcmu_export_create(&o);
    EXPECT(e != NULL);
    EXPECT(spd_tcmu_export_backstore(e) == NULL);
    char disk[16];
    EXPECT_EQ(spd_tcmu_export_disk(e, disk, sizeof disk), -ENOENT);
    spd_tcmu_export_destroy(e);
    spd_tcmu_export_destroy(NULL);
    spd_tcmu_export_stop(NULL);
}

static void test_add(void)
{
    spd_params p = memunit_params(512, 1024, 1);
    struct memunit *m = memunit_create(&p, 0);
    spd_tcmu_options o = { SPD_TCMU_OPTIONS_INIT, .name = "unit" };
    spd_tcmu_export *e = spd_tcmu_export_create(&o);
    EXPECT(m && e);
    EXPECT_EQ(spd_tcmu_export_start(e), -EINVAL);   /* nothing added */
    EXPECT_EQ(spd_tcmu_export_add(e, NULL), -EINVAL);
    EXPECT_EQ(spd_tcmu_export_add(e, m->unit), 0);
    EXPECT_EQ(spd_tcmu_export_add(e, m->unit), -EBUSY);
    spd_tcmu_export_destroy(e);
    memunit_destroy(m);
}

/* Without the modules (or root): refused at start, nothing made. */
static void test_no_target(void)
{
    struct stat st;
    if (geteuid() == 0 && !stat("/sys/module/target_core_user", &st)) {
        SKIP_TEST("this kernel has TCMU (the guest tests cover it)");
        return;
    }
    int want = geteuid() ? -EACCES : -ENODEV;
    EXPECT_EQ(spd_tcmu_available(false), want);
    EXPECT(strstr(spd_errmsg(), geteuid() ? "root" : "target_core_user"));

    spd_params p = memunit_params(4096, 256, 3);
    struct memunit *m = memunit_create(&p, 0);
    spd_tcmu_options o = { SPD_TCMU_OPTIONS_INIT, .name = "absent",
                           .loop = true };
    spd_tcmu_export *e = spd_tcmu_export_create(&o);
    EXPECT(m && e && !spd_tcmu_export_add(e, m->unit));
    EXPECT_EQ(spd_tcmu_export_start(e), want);
    EXPECT(spd_tcmu_export_backstore(e) == NULL);
    spd_tcmu_export_stop(e);          /* not started: nothing to do */
    spd_tcmu_export_destroy(e);
    memunit_destroy(m);
}

int main(void)
{
    static const struct test_case tests[] = {
        TEST(test_names),
        TEST(test_options),
        TEST(test_add),
        TEST(test_no_target),
    };
    return RUN_TESTS("test_tcmu", tests);
}
