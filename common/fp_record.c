/* fp_record: the canonical record's model — initialisation, its arena of strings, IO elements,
 * metrics, enrichment fields and error codes (see fp_record.h). The JSON decoder is
 * fp_record_decode.c, the encoder fp_record_encode.c.
 *
 * Contract: a record owns every byte it refers to; every setter is bounded (FP_ARENA_MAX bytes
 * of strings, FP_ITEMS_MAX IO elements and metrics) and, when it fails, returns -1 (or NULL, or
 * ok == false) with the record still valid and no half-made element in it (the arena may keep
 * the bytes it had taken). Nothing here reads or writes JSON text; the enrichment tables below
 * only name the members for the decoder and encoder. */
#include "common/fp_record.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fp_record_internal.h"

/* The first capacities of the arena and of the item arrays; each then doubles up to its cap
 * (FP_ARENA_MAX, FP_ITEMS_MAX in fp_record_internal.h). */
#define FP_ARENA_MIN 512
#define FP_ITEMS_MIN 16

#define ENRICH_FIELD(name, member)                                                                 \
    {                                                                                              \
        name, "\"" name "\":", sizeof("\"" name "\":") - 1, offsetof(fp_enrichment, member)        \
    }

const struct enrich_field fp_record_site_fields[2] = {
    ENRICH_FIELD("id", site_id),
    ENRICH_FIELD("name", site_name),
};

const struct enrich_field fp_record_address_fields[6] = {
    ENRICH_FIELD("display_name", address_display),
    ENRICH_FIELD("road", address_road),
    ENRICH_FIELD("city", address_city),
    ENRICH_FIELD("postcode", address_postcode),
    ENRICH_FIELD("country", address_country),
    ENRICH_FIELD("country_code", address_country_code),
};

const struct enrich_field fp_record_asset_fields[5] = {
    ENRICH_FIELD("customer", asset_customer),
    ENRICH_FIELD("oem", asset_oem),
    ENRICH_FIELD("model", asset_model),
    ENRICH_FIELD("serial_number", asset_serial),
    ENRICH_FIELD("machine_type", asset_machine_type),
};

/* Sets every field to "absent" without touching the allocations. */
static void clear_fields(fp_record *r)
{
    r->schema = FP_RECORD_SCHEMA;
    memset(r->device_id, 0, sizeof(r->device_id));
    r->ts_ms = 0;
    r->received_at_ms = INT64_MIN;
    memset(r->format, 0, sizeof(r->format));
    r->priority = -1;
    r->event_io = -1;
    r->has_position = false;
    memset(&r->position, 0, sizeof(r->position));
    memset(&r->enrichment, 0, sizeof(r->enrichment));
    r->io_len = 0;
    r->metrics_len = 0;
    r->arena_len = 0;
}

void fp_record_init(fp_record *r)
{
    r->io = NULL;
    r->io_cap = 0;
    r->metrics = NULL;
    r->metrics_cap = 0;
    r->arena = NULL;
    r->arena_cap = 0;
    clear_fields(r);
}

void fp_record_reset(fp_record *r)
{
    clear_fields(r);
}

void fp_record_free(fp_record *r)
{
    if (r == NULL)
        return;
    free(r->io);
    free(r->metrics);
    free(r->arena);
    fp_record_init(r);
}

/* Makes room for `extra` more arena bytes, doubling up to FP_ARENA_MAX. Returns 0 or -1. */
static int arena_reserve(fp_record *r, size_t extra)
{
    size_t need, cap;
    char *p;

    if (extra > FP_ARENA_MAX - r->arena_len)
        return -1;
    need = r->arena_len + extra;
    if (need <= r->arena_cap)
        return 0;
    cap = r->arena_cap < FP_ARENA_MIN ? FP_ARENA_MIN : r->arena_cap;
    while (cap < need)
        cap *= 2;
    if (cap > FP_ARENA_MAX)
        cap = FP_ARENA_MAX;
    p = realloc(r->arena, cap);
    if (p == NULL)
        return -1;
    r->arena = p;
    r->arena_cap = cap;
    return 0;
}

fp_str fp_record_put_str(fp_record *r, const char *s, size_t len, bool *ok)
{
    fp_str out = {0, 0};

    if (len == 0) {
        if (ok != NULL)
            *ok = true;
        return out;
    }
    /* Only growing can move the arena (the capacity never exceeds FP_ARENA_MAX, so a string
     * that fits needs no other check). */
    if (len > r->arena_cap - r->arena_len) {
        uintptr_t src = (uintptr_t)s, base = (uintptr_t)r->arena;
        bool inside = r->arena != NULL && src >= base && src < base + r->arena_len;
        size_t src_off = inside ? (size_t)(src - base) : 0;

        if (arena_reserve(r, len) != 0) {
            if (ok != NULL)
                *ok = false;
            return out;
        }
        /* Copying one of the record's own strings: the arena may have moved, so the source
         * is found again by its offset. */
        if (inside)
            s = r->arena + src_off;
    }
    memcpy(r->arena + r->arena_len, s, len);
    out.off = (uint32_t)r->arena_len;
    out.len = (uint32_t)len;
    r->arena_len += len;
    if (ok != NULL)
        *ok = true;
    return out;
}

/* Grows an item array of `elem`-byte items to hold one more than *cap items when it is full
 * (len == *cap). Returns the array (possibly moved), or NULL with the old one untouched. */
static void *grow_items(void *items, size_t len, size_t *cap, size_t elem)
{
    size_t ncap;
    void *p;

    if (len < *cap)
        return items;
    if (len >= FP_ITEMS_MAX)
        return NULL;
    ncap = *cap < FP_ITEMS_MIN ? FP_ITEMS_MIN : *cap * 2;
    if (ncap > FP_ITEMS_MAX)
        ncap = FP_ITEMS_MAX;
    p = realloc(items, ncap * elem);
    if (p == NULL)
        return NULL;
    *cap = ncap;
    return p;
}

/* Returns a new zeroed IO slot at the end of r->io, or NULL when memory runs out. */
fp_io *fp_record_push_io(fp_record *r, uint32_t id)
{
    fp_io *items = grow_items(r->io, r->io_len, &r->io_cap, sizeof(*r->io));
    fp_io *io;

    if (items == NULL)
        return NULL;
    r->io = items;
    io = &r->io[r->io_len++];
    memset(io, 0, sizeof(*io));
    io->id = id;
    return io;
}

int fp_record_add_io_uint(fp_record *r, uint32_t id, uint64_t value)
{
    fp_io *io = fp_record_push_io(r, id);

    if (io == NULL)
        return -1;
    io->kind = FP_IO_UINT;
    io->u = value;
    return 0;
}

int fp_record_add_io_hex(fp_record *r, uint32_t id, const uint8_t *bytes, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    fp_io *io;
    char *p;

    if (len > FP_ARENA_MAX / 2 || arena_reserve(r, len * 2) != 0)
        return -1;
    io = fp_record_push_io(r, id);
    if (io == NULL)
        return -1;
    io->kind = FP_IO_HEX;
    if (len == 0)
        return 0;
    p = r->arena + r->arena_len;
    for (size_t i = 0; i < len; i++) {
        p[2 * i] = hex[bytes[i] >> 4];
        p[2 * i + 1] = hex[bytes[i] & 0x0f];
    }
    io->hex.off = (uint32_t)r->arena_len;
    io->hex.len = (uint32_t)(len * 2);
    r->arena_len += len * 2;
    return 0;
}

fp_metric *fp_record_push_metric(fp_record *r, const char *name, size_t name_len,
                                 fp_metric_kind kind)
{
    fp_metric *items;
    fp_metric *m;
    fp_str n;
    bool ok;

    items = grow_items(r->metrics, r->metrics_len, &r->metrics_cap, sizeof(*r->metrics));
    if (items == NULL)
        return NULL;
    r->metrics = items;
    n = fp_record_put_str(r, name, name_len, &ok);
    if (!ok)
        return NULL;
    m = &r->metrics[r->metrics_len++];
    memset(m, 0, sizeof(*m));
    m->name = n;
    m->kind = kind;
    return m;
}

int fp_record_add_metric_number(fp_record *r, const char *name, double value)
{
    fp_metric *m = fp_record_push_metric(r, name, strlen(name), FP_METRIC_NUMBER);

    if (m == NULL)
        return -1;
    m->num = value;
    return 0;
}

int fp_record_add_metric_bool(fp_record *r, const char *name, bool value)
{
    fp_metric *m = fp_record_push_metric(r, name, strlen(name), FP_METRIC_BOOL);

    if (m == NULL)
        return -1;
    m->b = value;
    return 0;
}

int fp_record_add_metric_string(fp_record *r, const char *name, const char *value, size_t len)
{
    fp_metric *m;
    fp_str s;
    bool ok;

    /* The value goes in first so that a failure leaves no half-made metric behind. */
    s = fp_record_put_str(r, value, len, &ok);
    if (!ok)
        return -1;
    m = fp_record_push_metric(r, name, strlen(name), FP_METRIC_STRING);
    if (m == NULL)
        return -1;
    m->str = s;
    return 0;
}

int fp_record_set_enrich_str(fp_record *r, fp_str *field, const char *value, size_t len)
{
    bool ok;
    fp_str s = fp_record_put_str(r, value, len, &ok);

    if (!ok)
        return -1;
    *field = s;
    return 0;
}

/* Whether two names are the same bytes. Names of one length mostly differ in their first byte
 * ("ignition" and "movement", "odometer_m" and "gsm_signal"), which is tested before memcmp is
 * called: the look-ups run for every row the sink writes. */
static inline bool names_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && (alen == 0 || (a[0] == b[0] && memcmp(a, b, alen) == 0));
}

const fp_metric *fp_record_metric(const fp_record *r, const char *name)
{
    size_t len = strlen(name);

    for (size_t i = 0; i < r->metrics_len; i++) {
        const fp_metric *m = &r->metrics[i];

        if (names_equal(r->arena + m->name.off, m->name.len, name, len))
            return m;
    }
    return NULL;
}

void fp_record_metrics_find(const fp_record *r, const char *const *names, size_t n,
                            const fp_metric **out)
{
    size_t len[FP_RECORD_FIND_MAX], left = n;

    if (n > FP_RECORD_FIND_MAX) {
        for (size_t j = 0; j < n; j++)
            out[j] = fp_record_metric(r, names[j]);
        return;
    }
    for (size_t j = 0; j < n; j++) {
        len[j] = strlen(names[j]);
        out[j] = NULL;
    }
    for (size_t i = 0; i < r->metrics_len && left > 0; i++) {
        const fp_metric *m = &r->metrics[i];
        const char *name = r->arena + m->name.off;

        for (size_t j = 0; j < n; j++) {
            if (out[j] == NULL && names_equal(name, m->name.len, names[j], len[j])) {
                out[j] = m;
                left--;
            }
        }
    }
}

const char *fp_record_err_code(int err)
{
    switch (err) {
    case FP_REC_OK:
        return "ok";
    case FP_REC_ERR_JSON:
        return "json_syntax";
    case FP_REC_ERR_SCHEMA:
        return "schema";
    case FP_REC_ERR_DEVICE_ID:
        return "missing_device_id";
    case FP_REC_ERR_TS:
        return "bad_timestamp";
    case FP_REC_ERR_NOMEM:
        return "no_memory";
    case FP_REC_ERR_RANGE:
        return "out_of_range";
    case FP_REC_ERR_DUPLICATE:
        return "duplicate_key";
    case FP_REC_ERR_NUL:
        return "nul_character";
    case FP_REC_ERR_BAD_DEVICE_ID:
        return "bad_device_id";
    default:
        return "unknown";
    }
}

const char *fp_enrich_status_name(fp_enrich_status s)
{
    switch (s) {
    case FP_ENRICH_NONE:
        return "none";
    case FP_ENRICH_OK:
        return "ok";
    case FP_ENRICH_PARTIAL:
        return "partial";
    case FP_ENRICH_UNAVAILABLE:
        return "unavailable";
    }
    return "unknown";
}

int fp_record_refuse(char *msg, size_t msg_size, int code, const char *fmt, ...)
{
    va_list ap;

    if (msg != NULL && msg_size > 0) {
        va_start(ap, fmt);
        if (vsnprintf(msg, msg_size, fmt, ap) < 0)
            msg[0] = '\0';
        va_end(ap);
    }
    return code;
}

bool fp_record_io_id(const char *key, size_t len, uint32_t *id)
{
    uint32_t v = 0;

    if (len == 0 || len > 5)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (key[i] < '0' || key[i] > '9')
            return false;
        v = v * 10 + (uint32_t)(key[i] - '0');
    }
    if (v > 65535)
        return false;
    *id = v;
    return true;
}

bool fp_record_is_hex_text(const char *s, size_t len)
{
    if (len % 2 != 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return true;
}
