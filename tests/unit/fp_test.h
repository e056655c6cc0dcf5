/* A minimal unit-test harness: checks record failures and the run goes on; the runner
 * (runner.c) prints one line per failed check and closes with "N passed, N failed".
 * Every test is registered once in test_list.h. */
#ifndef FP_TEST_H
#define FP_TEST_H

#include <stdint.h>
#include <string.h>

void fp_test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sends what the process writes to stderr (fd 2, so libraries' writes too) into a temporary
 * file until fp_test_captured_stderr, which restores stderr and returns what was written
 * (malloc'd, NUL-terminated; NULL when nothing could be captured). Failures reported meanwhile
 * still reach the real stderr. fp_test_capture_stderr returns 0 or -1. */
int fp_test_capture_stderr(void);
char *fp_test_captured_stderr(void);

#define FP_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fp_test_fail(__FILE__, __LINE__, "check failed: %s", #cond);                           \
    } while (0)

#define FP_CHECK_INT(actual, expected)                                                             \
    do {                                                                                           \
        long long fp_a_ = (long long)(actual), fp_e_ = (long long)(expected);                      \
        if (fp_a_ != fp_e_)                                                                        \
            fp_test_fail(__FILE__, __LINE__, "%s == %lld, expected %lld", #actual, fp_a_, fp_e_);  \
    } while (0)

#define FP_CHECK_STR(actual, expected)                                                             \
    do {                                                                                           \
        const char *fp_a_ = (actual), *fp_e_ = (expected);                                         \
        if (fp_a_ == NULL || strcmp(fp_a_, fp_e_) != 0)                                            \
            fp_test_fail(__FILE__, __LINE__, "%s == \"%s\", expected \"%s\"", #actual,             \
                         fp_a_ ? fp_a_ : "(null)", fp_e_);                                         \
    } while (0)

/* Compares len bytes of a (not NUL-terminated) string with a C string. */
#define FP_CHECK_MEM(actual, len, expected)                                                        \
    do {                                                                                           \
        const char *fp_e_ = (expected);                                                            \
        size_t fp_l_ = (size_t)(len);                                                              \
        if (fp_l_ != strlen(fp_e_) || memcmp((actual), fp_e_, fp_l_) != 0)                         \
            fp_test_fail(__FILE__, __LINE__, "%s == \"%.*s\", expected \"%s\"", #actual,           \
                         (int)fp_l_, (const char *)(actual), fp_e_);                               \
    } while (0)

#define FP_TEST(name)                                                                              \
    void test_##name(void);                                                                        \
    void test_##name(void)

#endif
