/* fp_rand: a small pseudo-random generator for retry jitter, seeded once per process.
 *
 * Jitter keeps replicas from retrying in step against a recovering database or broker, which
 * works only when every process draws its own sequence: the seed mixes the process id with the
 * wall and the monotonic clock. The generator is splitmix64: fast, every seed gives a full-period
 * sequence, and it is not for anything secret. */
#ifndef FP_RAND_H
#define FP_RAND_H

#include <stdint.h>

typedef struct fp_rand {
    uint64_t state;
} fp_rand;

/* Mixes a process id and two clock readings (ns) into a seed; different inputs give different
 * seeds with overwhelming probability. Never fails. */
uint64_t fp_rand_seed(uint64_t pid, uint64_t wall_ns, uint64_t mono_ns);

/* The seed of this process: fp_rand_seed of getpid() and the two clocks now. */
uint64_t fp_rand_process_seed(void);

void fp_rand_init(fp_rand *r, uint64_t seed);
uint64_t fp_rand_next(fp_rand *r);

/* A uniform number in [0, n); 0 when n is 0. */
uint64_t fp_rand_below(fp_rand *r, uint64_t n);

/* A retry delay of `backoff_ms` with jitter: uniform in [backoff_ms / 2, backoff_ms], drawn from
 * a process-wide generator seeded with fp_rand_process_seed at its first use. For one thread
 * (the main loop); a backoff_ms below 1 is returned as it is. */
int64_t fp_rand_jitter_ms(int64_t backoff_ms);

#endif
