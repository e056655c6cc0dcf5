/* Runs every unit test listed in test_list.h, or those whose name contains argv[1]. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fp_test.h"

#define FP_TEST_ENTRY(name) void test_##name(void);
#include "test_list.h"
#undef FP_TEST_ENTRY

struct test_case {
    const char *name;
    void (*fn)(void);
};

static const struct test_case tests[] = {
#define FP_TEST_ENTRY(name) {#name, test_##name},
#include "test_list.h"
#undef FP_TEST_ENTRY
};

static int current_failures;
static const char *current_name;

void fp_test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    current_failures++;
    fprintf(stderr, "FAIL %s (%s:%d): ", current_name, file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    int passed = 0, failed = 0;

    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        if (filter != NULL && strstr(tests[i].name, filter) == NULL)
            continue;
        current_name = tests[i].name;
        current_failures = 0;
        tests[i].fn();
        if (current_failures == 0) {
            passed++;
            printf("ok   %s\n", tests[i].name);
        } else {
            failed++;
            printf("FAIL %s\n", tests[i].name);
        }
    }
    printf("unit: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
