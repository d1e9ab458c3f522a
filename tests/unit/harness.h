/*
 * harness.h - the few helpers every in-process test program shares.
 *
 * A test program is a list of small test functions run by run_tests();
 * EXPECT records a failure with its line and goes on (it never returns or
 * jumps), so one run reports every broken assertion. Exit status: 0 all
 * passed, 1 something failed, 77 skipped (the automake/meson convention).
 */
#ifndef SPD_TEST_HARNESS_H
#define SPD_TEST_HARNESS_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int harness_failures;

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

struct test_case {
    const char *name;
    void (*fn)(void);
};

#define TEST(fn) { #fn, fn }

/* Run each test, print one line per test and a closing count line. */
static inline int run_tests(const char *program, const struct test_case *tests,
                            size_t count)
{
    int failed_tests = 0;
    for (size_t i = 0; i < count; i++) {
        int before = harness_failures;
        tests[i].fn();
        bool ok = harness_failures == before;
        printf("%s %s.%s\n", ok ? "PASS" : "FAIL", program, tests[i].name);
        failed_tests += !ok;
    }
    printf("%s: %zu passed, %d failed\n", program, count - failed_tests,
           failed_tests);
    return failed_tests ? 1 : 0;
}

#define RUN_TESTS(program, tests) \
    run_tests(program, tests, sizeof(tests) / sizeof((tests)[0]))

#endif /* SPD_TEST_HARNESS_H */
