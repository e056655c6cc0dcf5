/* fp_record_internal: what the record's model (fp_record.c), readers (fp_record_read.c and the
 * cJSON reference fp_record_decode.c), encoder (fp_record_encode.c) and checks
 * (fp_record_check.c) share, and nothing else includes.
 *
 * Only what at least two of these files use lives here, so that none of it is written
 * twice; what one file alone needs stays in that file. Callers of the module include
 * fp_record.h only. */
#ifndef FP_RECORD_INTERNAL_H
#define FP_RECORD_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/fp_record.h"

/* A record's strings are bounded by the message they came from, and Kafka messages are far
 * smaller than this; the cap turns a runaway producer into an error instead of unbounded
 * memory. Offsets are uint32_t, which the cap also keeps in range. */
#define FP_ARENA_MAX ((size_t)16 << 20)
/* Teltonika counts IO elements in 16 bits, and no device reports more metrics than that. */
#define FP_ITEMS_MAX 65536

/* One text member of an enrichment group: its JSON name, the same quoted with its colon as
 * the encoder writes it, and where it lives in fp_enrichment. */
struct enrich_field {
    const char *name;
    const char *key;
    size_t key_len;
    size_t off;
};

/* The members of the three enrichment groups, in the order the encoder writes them, defined
 * once in fp_record.c and read by the decoder (name, off) and the encoder (key, off). A table
 * given more members than its size here does not compile; one given fewer would end in a zeroed
 * entry, so a removed member must lower the size too. */
extern const struct enrich_field fp_record_site_fields[2];
extern const struct enrich_field fp_record_address_fields[6];
extern const struct enrich_field fp_record_asset_fields[5];

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Returns a new zeroed IO slot with the given id at the end of r->io, for the caller to set its
 * kind and value; NULL when memory runs out or r already holds FP_ITEMS_MAX elements (r is then
 * unchanged). The pointer is valid until the next element is added. */
fp_io *fp_record_push_io(fp_record *r, uint32_t id);

/* Writes the message into msg (when there is room for one) and returns code: how the readers
 * and checks refuse a record. */
int fp_record_refuse(char *msg, size_t msg_size, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Parses the len bytes at key as an io key: 1 to 5 decimal digits with a value up to 65535. */
bool fp_record_io_id(const char *key, size_t len, uint32_t *id);

/* True when the len bytes at s are an even number of hex digits (either case). */
bool fp_record_is_hex_text(const char *s, size_t len);

/* The decoder built on cJSON (fp_record_decode.c), with the contract of fp_record_decode_json.
 * It is no longer on any hot path: it stays as the reference that the direct reader
 * (fp_record_read.c) is tested and fuzzed against (tests/fuzz/fuzz_record_reader.c). */
int fp_record_decode_json_cjson(fp_record *r, const char *json, size_t len, char *errmsg,
                                size_t errmsg_size);

#endif
