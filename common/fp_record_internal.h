/* fp_record_internal: what the record's model (fp_record.c), decoder (fp_record_decode.c) and
 * encoder (fp_record_encode.c) share, and nothing else includes. */
#ifndef FP_RECORD_INTERNAL_H
#define FP_RECORD_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "common/fp_record.h"

/* A record's strings are bounded by the message they came from, and Kafka messages are far
 * smaller than this; the cap turns a runaway producer into an error instead of unbounded
 * memory. Offsets are uint32_t, which the cap also keeps in range. */
#define FP_ARENA_MAX ((size_t)16 << 20)
#define FP_ARENA_MIN 512
/* Teltonika counts IO elements in 16 bits, and no device reports more metrics than that. */
#define FP_ITEMS_MAX 65536
#define FP_ITEMS_MIN 16

/* 2^64 as a double, the first value beyond uint64_t. */
#define TWO_POW_64 18446744073709551616.0

/* One text member of an enrichment group: its JSON name, the same quoted with its colon as
 * the encoder writes it, and where it lives in fp_enrichment. */
struct enrich_field {
    const char *name;
    const char *key;
    size_t key_len;
    size_t off;
};

#define ENRICH_FIELD(name, member)                                                                 \
    {                                                                                              \
        name, "\"" name "\":", sizeof("\"" name "\":") - 1, offsetof(fp_enrichment, member)        \
    }

extern const struct enrich_field fp_record_site_fields[2];
extern const struct enrich_field fp_record_address_fields[6];
extern const struct enrich_field fp_record_asset_fields[5];

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Returns a new zeroed IO slot at the end of r->io, or NULL when memory runs out. */
fp_io *fp_record_push_io(fp_record *r, uint32_t id);

#endif
