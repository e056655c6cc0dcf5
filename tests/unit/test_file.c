/* Tests of common/fp_file.c: an atomic write replaces the whole file or nothing. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fp_file.h"
#include "fp_test.h"

static size_t read_all(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    size_t n;

    if (f == NULL)
        return 0;
    n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
    return n;
}

FP_TEST(file_write_atomic)
{
    char dir[] = "/tmp/fp-file-XXXXXX", path[128], tmp[140], buf[64];

    FP_CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/port", dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FP_CHECK_INT(fp_file_write_atomic(path, "12345\n", 6), 0);
    FP_CHECK_INT(read_all(path, buf, sizeof(buf)), 6);
    FP_CHECK_STR(buf, "12345\n");
    FP_CHECK_INT(fp_file_write_atomic(path, "7\n", 2), 0); /* replaced whole */
    read_all(path, buf, sizeof(buf));
    FP_CHECK_STR(buf, "7\n");
    FP_CHECK(access(tmp, F_OK) != 0); /* no temporary left behind */
    snprintf(path, sizeof(path), "%s/missing/port", dir);
    errno = 0;
    FP_CHECK_INT(fp_file_write_atomic(path, "x", 1), -1);
    FP_CHECK_INT(errno, ENOENT);
    snprintf(path, sizeof(path), "%s/port", dir);
    unlink(path);
    rmdir(dir);
}
