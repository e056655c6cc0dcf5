/* Tests of common/fp_rand.c: seeds differ per process, and so do the sequences of retry
 * jitter that two processes draw. */
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fp_rand.h"
#include "fp_test.h"

FP_TEST(rand_seeds_differ)
{
    uint64_t a = fp_rand_seed(100, 1772437513204000000u, 5000);
    fp_rand r1, r2;

    FP_CHECK(a != fp_rand_seed(101, 1772437513204000000u, 5000));
    FP_CHECK(a != fp_rand_seed(100, 1772437513204000001u, 5000));
    FP_CHECK(a != fp_rand_seed(100, 1772437513204000000u, 5001));
    FP_CHECK(fp_rand_process_seed() != fp_rand_process_seed());
    fp_rand_init(&r1, 1);
    fp_rand_init(&r2, 2);
    FP_CHECK(fp_rand_next(&r1) != fp_rand_next(&r2));
    for (int i = 0; i < 1000; i++) {
        uint64_t v = fp_rand_below(&r1, 7);

        FP_CHECK(v < 7);
    }
    FP_CHECK_INT(fp_rand_below(&r1, 0), 0);
}

/* Draws 8 jitters of a 5 s backoff in a child process; returns them through a pipe. Returns 0,
 * or -1 when the child could not run. */
static int child_jitter(int64_t out[8])
{
    int fds[2];
    pid_t pid;
    int status = 0;
    size_t got = 0;

    if (pipe(fds) != 0)
        return -1;
    pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        int64_t v[8];

        for (int i = 0; i < 8; i++)
            v[i] = fp_rand_jitter_ms(5000);
        _exit(write(fds[1], v, sizeof(v)) == (ssize_t)sizeof(v) ? 0 : 1);
    }
    close(fds[1]);
    while (got < 8 * sizeof(int64_t)) {
        ssize_t n = read(fds[0], (char *)out + got, 8 * sizeof(int64_t) - got);

        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fds[0]);
    waitpid(pid, &status, 0);
    return got == 8 * sizeof(int64_t) && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* Two replicas started together must not retry in step: each process draws its own jitter. The
 * jitter stays within [backoff / 2, backoff]. */
FP_TEST(rand_two_processes_draw_different_jitter)
{
    int64_t a[8], b[8];
    int same = 0;

    FP_CHECK_INT(child_jitter(a), 0);
    FP_CHECK_INT(child_jitter(b), 0);
    for (int i = 0; i < 8; i++) {
        same += a[i] == b[i];
        FP_CHECK(a[i] >= 2500 && a[i] <= 5000);
        FP_CHECK(b[i] >= 2500 && b[i] <= 5000);
    }
    if (same == 8)
        fp_test_fail(__FILE__, __LINE__, "both processes drew the same jitter (%lld, %lld, ...)",
                     (long long)a[0], (long long)a[1]);
    FP_CHECK_INT(fp_rand_jitter_ms(0), 0);
}
