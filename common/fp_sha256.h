/* fp_sha256: SHA-256 (FIPS 180-4), for the DLQ's claim checks: a dead letter too large for the
 * DLQ carries its payload's digest instead of the whole payload. */
#ifndef FP_SHA256_H
#define FP_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct fp_sha256 {
    uint32_t h[8];
    uint64_t bytes;
    uint8_t block[64];
    size_t used;
} fp_sha256;

void fp_sha256_init(fp_sha256 *s);
void fp_sha256_update(fp_sha256 *s, const void *data, size_t len);
void fp_sha256_final(fp_sha256 *s, uint8_t digest[32]);

/* The digest of data as 64 lowercase hex digits and a NUL. */
void fp_sha256_hex(const void *data, size_t len, char hex[65]);

#endif
