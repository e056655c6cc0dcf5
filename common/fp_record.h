/* fp_record: the canonical record (schema 1), its JSON decoder and its fast JSON encoder.
 *
 * One record is one device observation (README.md, "Architecture and contracts"). A record owns
 * every byte it refers to: variable-length strings (metric names, string values, NX io values,
 * enrichment texts) live in the record's own arena and are referred to by offset, so a record
 * can be reset and reused without freeing, which keeps the hot path free of allocations.
 *
 * The encoder writes JSON directly into an fp_buf without building a cJSON tree; the decoder
 * uses cJSON. Both are exact inverses for every record the encoder can produce (integers above
 * 2^53 in `io` are read again from the text, so they survive cJSON's doubles).
 *
 * This header is the module's whole public face; the implementation is split along its seams:
 * fp_record.c holds the model, fp_record_decode.c the JSON decoder, fp_record_encode.c the JSON
 * encoder, and what they share privately is in fp_record_internal.h, which callers never
 * include. */
#ifndef FP_RECORD_H
#define FP_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/fp_buf.h"

#define FP_RECORD_SCHEMA 1
#define FP_DEVICE_ID_MAX 64 /* bytes including the terminating NUL */
#define FP_FORMAT_MAX    32

/* A string stored in a record's arena: offset and length in bytes (not NUL-terminated
 * in the arena; use fp_record_str to get a pointer). len == 0 with off == 0 means absent. */
typedef struct fp_str {
    uint32_t off;
    uint32_t len;
} fp_str;

typedef struct fp_position {
    double lat;         /* degrees, WGS84 */
    double lon;         /* degrees, WGS84 */
    double alt_m;       /* metres; NaN when not reported */
    double heading_deg; /* degrees clockwise from north; NaN when not reported */
    double speed_kmh;   /* NaN when not reported */
    int satellites;     /* 0 means no valid fix; -1 when not reported */
} fp_position;

/* Marks every optional member of a position as not reported (lat/lon untouched). */
static inline void fp_position_unknown(fp_position *p)
{
    p->alt_m = __builtin_nan("");
    p->heading_deg = __builtin_nan("");
    p->speed_kmh = __builtin_nan("");
    p->satellites = -1;
}

typedef enum fp_io_kind { FP_IO_UINT = 0, FP_IO_HEX = 1 } fp_io_kind;

/* One Teltonika IO element: unsigned value as read, or variable-length bytes as hex text. */
typedef struct fp_io {
    uint32_t id;
    fp_io_kind kind;
    uint64_t u; /* FP_IO_UINT */
    fp_str hex; /* FP_IO_HEX: lowercase hex digits in the arena */
} fp_io;

typedef enum fp_metric_kind {
    FP_METRIC_NUMBER = 0, /* printed as an integer when integral and |v| < 2^53 */
    FP_METRIC_BOOL = 1,
    FP_METRIC_STRING = 2
} fp_metric_kind;

typedef struct fp_metric {
    fp_str name;
    fp_metric_kind kind;
    double num;
    bool b;
    /* The name is written in JSON as it is, between quotes (fp_json_is_plain holds for it): set
     * only by decoders whose names are plain by construction, so that the encoder copies the
     * name instead of scanning it for bytes to escape. false (as pushed) is always correct. */
    bool name_plain;
    fp_str str;
} fp_metric;

typedef enum fp_enrich_status {
    FP_ENRICH_NONE = 0, /* not yet enriched: no "enrichment" object, or one with status "none"
                         * holding a decoder's hints (ISO 15143-3 asset fields) */
    FP_ENRICH_OK,
    FP_ENRICH_PARTIAL,
    FP_ENRICH_UNAVAILABLE
} fp_enrich_status;

/* What enricher-svc adds. Absent strings have len 0. */
typedef struct fp_enrichment {
    fp_enrich_status status;
    bool has_site, has_address, has_asset;
    fp_str site_id, site_name;
    fp_str address_display, address_road, address_city, address_postcode, address_country,
        address_country_code;
    fp_str asset_customer, asset_oem, asset_model, asset_serial, asset_machine_type;
} fp_enrichment;

typedef struct fp_record {
    int schema;
    char device_id[FP_DEVICE_ID_MAX];
    int64_t ts_ms;          /* event time, ms since epoch */
    int64_t received_at_ms; /* INT64_MIN when absent */
    char format[FP_FORMAT_MAX];
    int priority; /* -1 when absent */
    int event_io; /* -1 when absent */
    bool has_position;
    fp_position position;

    fp_io *io;
    size_t io_len, io_cap;
    fp_metric *metrics;
    size_t metrics_len, metrics_cap;

    fp_enrichment enrichment;

    char *arena;
    size_t arena_len, arena_cap;
} fp_record;

/* Error codes of fp_record_decode_json; stable strings for the DLQ via fp_record_err_code. */
typedef enum fp_record_err {
    FP_REC_OK = 0,
    FP_REC_ERR_JSON = -1,      /* "json_syntax": not valid JSON */
    FP_REC_ERR_SCHEMA = -2,    /* "schema": wrong type, unknown schema version, bad field */
    FP_REC_ERR_DEVICE_ID = -3, /* "missing_device_id": absent, empty or too long */
    FP_REC_ERR_TS = -4,        /* "bad_timestamp": absent or not RFC 3339 */
    FP_REC_ERR_NOMEM = -5,     /* "no_memory" */
    /* What the database could not store (fp_record_check.h): */
    FP_REC_ERR_RANGE = -6,        /* "out_of_range": outside a typed column's range */
    FP_REC_ERR_DUPLICATE = -7,    /* "duplicate_key": a member, metric or IO element twice */
    FP_REC_ERR_NUL = -8,          /* "nul_character": U+0000 in a string */
    FP_REC_ERR_BAD_DEVICE_ID = -9 /* "bad_device_id": "." or ".." */
} fp_record_err;

/* ---- Model (fp_record.c) ---- */

/* Initialises an empty record. Never fails; owns no memory until fields are added. */
void fp_record_init(fp_record *r);

/* Forgets every field but keeps the allocated capacity for reuse. */
void fp_record_reset(fp_record *r);

/* Frees what the record owns; accepts NULL and a zeroed record. The record is then empty. */
void fp_record_free(fp_record *r);

/* Copies `len` bytes into the arena. Returns the stored string, or {0,0} with *ok == false
 * when memory runs out. */
fp_str fp_record_put_str(fp_record *r, const char *s, size_t len, bool *ok);

/* Pointer to a stored string's first byte (not NUL-terminated). Valid until the next put. */
static inline const char *fp_record_str(const fp_record *r, fp_str s)
{
    return r->arena + s.off;
}

/* Appends an IO element / a metric. Return 0, or -1 when memory runs out. */
int fp_record_add_io_uint(fp_record *r, uint32_t id, uint64_t value);
int fp_record_add_io_hex(fp_record *r, uint32_t id, const uint8_t *bytes, size_t len);
int fp_record_add_metric_number(fp_record *r, const char *name, double value);
int fp_record_add_metric_bool(fp_record *r, const char *name, bool value);
int fp_record_add_metric_string(fp_record *r, const char *name, const char *value, size_t len);

/* For decoders that know a metric name's length (the add_metric functions take strlen): returns
 * a new zeroed metric named by the name_len bytes at name (copied into the arena) with only its
 * kind set, at the end of r->metrics, for the caller to set its value; NULL when memory runs out
 * or r already holds the most metrics a record may (r is then unchanged but for arena bytes).
 * Valid until the next one is added. */
fp_metric *fp_record_push_metric(fp_record *r, const char *name, size_t name_len,
                                 fp_metric_kind kind);

/* Sets an enrichment text field (one of the fp_str members of r->enrichment). Returns 0 or -1
 * when memory runs out. */
int fp_record_set_enrich_str(fp_record *r, fp_str *field, const char *value, size_t len);

/* Looks up a metric by name; NULL when absent. */
const fp_metric *fp_record_metric(const fp_record *r, const char *name);

/* Names fp_record_metrics_find looks up in one pass; beyond that it looks them up one by one. */
#define FP_RECORD_FIND_MAX 8

/* Looks up n metrics in one pass over the record's: out[i] is what fp_record_metric(r, names[i])
 * returns (the first metric of that name, or NULL). */
void fp_record_metrics_find(const fp_record *r, const char *const *names, size_t n,
                            const fp_metric **out);

/* Stable short code for a decode error, e.g. "schema"; "unknown" for any other value. */
const char *fp_record_err_code(int err);

/* The status's name as the JSON carries it ("none", "ok", "partial", "unavailable"); "unknown"
 * for a value outside the enum. Never fails. */
const char *fp_enrich_status_name(fp_enrich_status s);

/* ---- Decoder (fp_record_decode.c) ---- */

/* Parses one canonical record from JSON text (not necessarily NUL-terminated). The record is
 * reset first. Besides schema 1 it refuses what the database could not store: a member named
 * twice anywhere in the document, U+0000 in a string, and whatever fp_record_check refuses. On
 * failure returns a negative fp_record_err and, when errmsg is not NULL, writes a human-readable
 * reason into errmsg (always NUL-terminated). */
int fp_record_decode_json(fp_record *r, const char *json, size_t len, char *errmsg,
                          size_t errmsg_size);

/* ---- Encoder (fp_record_encode.c) ---- */

/* Appends the record as one compact JSON object to out (no trailing newline). Fields in the
 * order of README.md ("Architecture and contracts"); absent optional fields are omitted. Returns 0,
 * or -1 when memory runs out (out is then unchanged in length). */
int fp_record_encode_json(const fp_record *r, fp_buf *out);

/* Append only the "io" object / the "metrics" object (as they appear inside the record's JSON,
 * "{}" when empty), for the sink's jsonb columns. Return 0 or -1 on out of memory. */
int fp_record_encode_io_json(const fp_record *r, fp_buf *out);
int fp_record_encode_metrics_json(const fp_record *r, fp_buf *out);

/* Appends a "metrics" object holding only the metrics named in names[0..n) that the record has,
 * in that order, each member exactly as in the whole object. Returns 0 or -1 on out of memory. */
int fp_record_encode_metrics_subset_json(const fp_record *r, const char *const *names, size_t n,
                                         fp_buf *out);

#endif
