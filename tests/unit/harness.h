/*
 * harness.h - the few helpers every in-process test program shares.
 *
 * A test program is a list of small test functions run by run_tests();
 * EXPECT records a failure with its line and goes on (it never returns or
 * jumps), so one run reports every broken assertion. A test that cannot
 * run here (a tool or a privilege missing) calls SKIP_TEST(reason) and
 * returns. Exit status: 1 something failed, else 77 when a test was
 * skipped (the automake/meson convention: what was not tried is not a
 * pass), else 0.
 */
#ifndef SPD_TEST_HARNESS_H
#define SPD_TEST_HARNESS_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int harness_failures;
static const char *harness_skip_reason;

static inline bool harness_check(bool ok, const char *expr, const char *file,
                                 int line)
{
    if (!ok) {
        fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, expr);
        harness_failures++;
    }
    return ok;
}

#define EXPECT(cond) harness_check((cond), #cond, __FILE__, __LINE__)

static inline bool harness_check_eq(uint64_t got, uint64_t want,
                                    const char *expr, const char *file,
                                    int line)
{
    if (got != want) {
        fprintf(stderr, "%s:%d: FAILED: %s: got %" PRIu64 " (0x%" PRIx64
                "), want %" PRIu64 " (0x%" PRIx64 ")\n",
                file, line, expr, got, got, want, want);
        harness_failures++;
        return false;
    }
    return true;
}

#define EXPECT_EQ(got, want) \
    harness_check_eq((uint64_t)(got), (uint64_t)(want), #got " == " #want, \
                     __FILE__, __LINE__)

/* Mark the running test skipped, with the reason printed on its line. */
#define SKIP_TEST(reason) (harness_skip_reason = (reason))

struct test_case {
    const char *name;
    void (*fn)(void);
};

#define TEST(fn) { #fn, fn }

/* Run each test, print one line per test and a closing count line. */
static inline int run_tests(const char *program, const struct test_case *tests,
                            size_t count)
{
    int failed = 0, skipped = 0;
    for (size_t i = 0; i < count; i++) {
        int before = harness_failures;
        harness_skip_reason = NULL;
        tests[i].fn();
        if (harness_failures != before) {
            printf("FAIL %s.%s\n", program, tests[i].name);
            failed++;
        } else if (harness_skip_reason) {
            printf("SKIP %s.%s: %s\n", program, tests[i].name,
                   harness_skip_reason);
            skipped++;
        } else {
            printf("PASS %s.%s\n", program, tests[i].name);
        }
    }
    printf("%s: %zu passed, %d failed, %d skipped\n", program,
           count - failed - skipped, failed, skipped);
    return failed ? 1 : skipped ? 77 : 0;
}

#define RUN_TESTS(program, tests) \
    run_tests(program, tests, sizeof(tests) / sizeof((tests)[0]))

/* When nothing can run here: every test skipped for one reason. 77. */
static inline int skip_tests(const char *program, const struct test_case *tests,
                             size_t count, const char *reason)
{
    for (size_t i = 0; i < count; i++)
        printf("SKIP %s.%s: %s\n", program, tests[i].name, reason);
    printf("%s: 0 passed, 0 failed, %zu skipped\n", program, count);
    return 77;
}

#define SKIP_TESTS(program, tests, reason) \
    skip_tests(program, tests, sizeof(tests) / sizeof((tests)[0]), reason)

#endif /* SPD_TEST_HARNESS_H */
