/* fp_rand: per-process retry jitter (see fp_rand.h). */
#include "common/fp_rand.h"

#include <stdbool.h>
#include <time.h>
#include <unistd.h>

/* One step of splitmix64's output function, also a good mixer of arbitrary 64-bit inputs. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

uint64_t fp_rand_seed(uint64_t pid, uint64_t wall_ns, uint64_t mono_ns)
{
    return mix64(mix64(mix64(pid) ^ wall_ns) ^ mono_ns);
}

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;

    if (clock_gettime(id, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

uint64_t fp_rand_process_seed(void)
{
    return fp_rand_seed((uint64_t)getpid(), clock_ns(CLOCK_REALTIME), clock_ns(CLOCK_MONOTONIC));
}

void fp_rand_init(fp_rand *r, uint64_t seed)
{
    r->state = seed;
}

uint64_t fp_rand_next(fp_rand *r)
{
    r->state += UINT64_C(0x9e3779b97f4a7c15);
    return mix64(r->state);
}

uint64_t fp_rand_below(fp_rand *r, uint64_t n)
{
    /* The modulo bias is below 2^-40 for any n a delay can take. */
    return n == 0 ? 0 : fp_rand_next(r) % n;
}

int64_t fp_rand_jitter_ms(int64_t backoff_ms)
{
    static fp_rand process_rand;
    static bool seeded;

    if (backoff_ms < 1)
        return backoff_ms;
    if (!seeded) {
        fp_rand_init(&process_rand, fp_rand_process_seed());
        seeded = true;
    }
    return backoff_ms / 2 + (int64_t)fp_rand_below(&process_rand, (uint64_t)(backoff_ms / 2 + 1));
}
