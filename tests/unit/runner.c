/* Runs every unit test listed in test_list.h, or those whose name contains argv[1]. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* While stderr is captured: the real stderr (for failures) and the capture file. */
static FILE *real_stderr;
static FILE *capture_file;

void fp_test_fail(const char *file, int line, const char *fmt, ...)
{
    FILE *out = real_stderr != NULL ? real_stderr : stderr;
    va_list ap;

    current_failures++;
    fprintf(out, "FAIL %s (%s:%d): ", current_name, file, line);
    va_start(ap, fmt);
    vfprintf(out, fmt, ap);
    va_end(ap);
    fputc('\n', out);
}

int fp_test_capture_stderr(void)
{
    int saved;

    if (capture_file != NULL)
        return -1;
    fflush(stderr);
    capture_file = tmpfile();
    saved = dup(STDERR_FILENO);
    if (capture_file == NULL || saved < 0 || dup2(fileno(capture_file), STDERR_FILENO) < 0) {
        if (capture_file != NULL)
            fclose(capture_file);
        capture_file = NULL;
        if (saved >= 0)
            close(saved);
        return -1;
    }
    real_stderr = fdopen(saved, "w");
    return 0;
}

char *fp_test_captured_stderr(void)
{
    char *text = NULL;
    long n;

    if (capture_file == NULL)
        return NULL;
    fflush(stderr);
    if (real_stderr != NULL) {
        fflush(real_stderr);
        dup2(fileno(real_stderr), STDERR_FILENO);
        fclose(real_stderr);
        real_stderr = NULL;
    }
    n = ftell(capture_file);
    if (n >= 0 && fseek(capture_file, 0, SEEK_SET) == 0) {
        text = calloc(1, (size_t)n + 1);
        if (text != NULL && fread(text, 1, (size_t)n, capture_file) != (size_t)n) {
            free(text);
            text = NULL;
        }
    }
    fclose(capture_file);
    capture_file = NULL;
    return text;
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
