/* fp_hash: 64-bit FNV-1a. Fast, simple and the same everywhere: hash tables (the enricher's
 * cache and single-flight table) and content digests (fleet-sim's manifest, fp-dlq), which must
 * agree byte for byte. Not for anything adversarial. */
#ifndef FP_HASH_H
#define FP_HASH_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t fp_hash_bytes(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = UINT64_C(14695981039346656037);

    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= UINT64_C(1099511628211);
    }
    return h;
}

/* The same over a NUL-terminated string. */
static inline uint64_t fp_hash_str(const char *s)
{
    uint64_t h = UINT64_C(14695981039346656037);

    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= UINT64_C(1099511628211);
    }
    return h;
}

#endif
