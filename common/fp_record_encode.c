/* fp_record_encode: fp_record → canonical JSON (fp_record_encode_json and its parts in
 * fp_record.h), written straight into an fp_buf with inline appends on the hot path.
 *
 * Contract: members in the documented order, absent ones left out, no cJSON tree. Each public
 * function either appends the whole value and returns 0, or returns -1 (out of memory, or a time
 * outside years 0000..9999) with the buffer back at its length before the call. The record is
 * only read. */
#include <math.h>
#include <string.h>

#include "common/fp_json.h"
#include "common/fp_record.h"
#include "common/fp_record_internal.h"
#include "common/fp_time.h"

/* Makes room for n more bytes like fp_buf_reserve, but inline: the check alone is what almost
 * every call does, as fp_record_encode_json reserved for the whole record. Returns 0 or -1. */
static inline int ensure_room(fp_buf *b, size_t n)
{
    if (b->cap - b->len <= n && fp_buf_reserve(b, n) != 0)
        return -1;
    return 0;
}

/* Appends n bytes like fp_buf_append, but inline: with n known at compile time (PUT_LIT) the
 * copy becomes a few moves, which matters on the encoder's hot path. Returns 0 or -1. */
static inline int put_bytes(fp_buf *b, const char *s, size_t n)
{
    if (b->cap - b->len <= n && fp_buf_reserve(b, n) != 0)
        return -1;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return 0;
}

/* Appends one byte like fp_buf_putc, inline. Returns 0 or -1. */
static inline int put_char(fp_buf *b, char c)
{
    if (b->cap - b->len <= 1 && fp_buf_reserve(b, 1) != 0)
        return -1;
    b->data[b->len++] = c;
    return 0;
}

/* Appends a string literal (its length known at compile time). */
#define PUT_LIT(b, lit) put_bytes((b), (lit), sizeof(lit) - 1)

/* Appends "key":"<RFC 3339 time>" with the key literal given including quotes and colon.
 * Returns 0, or -1 when out of memory or ms lies outside years 0000..9999. */
static int put_time(fp_buf *b, const char *key, size_t key_len, int64_t ms)
{
    char *p;

    if (ensure_room(b, key_len + FP_RFC3339_LEN + 2) != 0)
        return -1;
    /* The time is formatted in place; its NUL lands where the closing quote goes, inside the
     * reservation (which always has a spare byte beyond). */
    p = b->data + b->len;
    memcpy(p, key, key_len);
    p += key_len;
    *p++ = '"';
    if (fp_time_format_ms(ms, p, FP_RFC3339_LEN + 1) != FP_RFC3339_LEN)
        return -1;
    p[FP_RFC3339_LEN] = '"';
    b->len += key_len + FP_RFC3339_LEN + 2;
    return 0;
}

/* Appends the members of one enrichment group that are present, comma-separated. */
static int put_enrich_group(fp_buf *b, const fp_record *r, const struct enrich_field *fields,
                            size_t nfields)
{
    bool first = true;
    int rc = 0;

    rc |= put_char(b, '{');
    for (size_t i = 0; i < nfields; i++) {
        const fp_str *s = (const fp_str *)((const char *)&r->enrichment + fields[i].off);
        char *p;

        if (s->len == 0)
            continue;
        /* The separator and the member's key ("\"key\":", a constant) in one reservation. */
        if (ensure_room(b, fields[i].key_len + 1) != 0) {
            rc = -1;
            continue;
        }
        p = b->data + b->len;
        if (!first)
            *p++ = ',';
        first = false;
        memcpy(p, fields[i].key, fields[i].key_len);
        b->len = (size_t)(p + fields[i].key_len - b->data);
        rc |= fp_json_put_string(b, fp_record_str(r, *s), s->len);
    }
    rc |= put_char(b, '}');
    return rc;
}

static int put_enrichment(fp_buf *b, const fp_record *r)
{
    const fp_enrichment *e = &r->enrichment;
    int rc = 0;

    rc |= PUT_LIT(b, ",\"enrichment\":{\"status\":\"");
    rc |= fp_buf_puts(b, fp_enrich_status_name(e->status));
    rc |= put_char(b, '"');
    if (e->has_site) {
        rc |= PUT_LIT(b, ",\"site\":");
        rc |= put_enrich_group(b, r, fp_record_site_fields, COUNT(fp_record_site_fields));
    }
    if (e->has_address) {
        rc |= PUT_LIT(b, ",\"address\":");
        rc |= put_enrich_group(b, r, fp_record_address_fields, COUNT(fp_record_address_fields));
    }
    if (e->has_asset) {
        rc |= PUT_LIT(b, ",\"asset\":");
        rc |= put_enrich_group(b, r, fp_record_asset_fields, COUNT(fp_record_asset_fields));
    }
    rc |= put_char(b, '}');
    return rc;
}

static int put_position(fp_buf *b, const fp_position *p)
{
    int rc = 0;

    rc |= PUT_LIT(b, ",\"position\":{\"lat\":");
    rc |= fp_json_put_double(b, p->lat);
    rc |= PUT_LIT(b, ",\"lon\":");
    rc |= fp_json_put_double(b, p->lon);
    /* What the device did not report (NaN, satellites < 0) is left out, not invented. */
    if (!isnan(p->alt_m)) {
        rc |= PUT_LIT(b, ",\"alt_m\":");
        rc |= fp_json_put_double(b, p->alt_m);
    }
    if (!isnan(p->heading_deg)) {
        rc |= PUT_LIT(b, ",\"heading_deg\":");
        rc |= fp_json_put_double(b, p->heading_deg);
    }
    if (!isnan(p->speed_kmh)) {
        rc |= PUT_LIT(b, ",\"speed_kmh\":");
        rc |= fp_json_put_double(b, p->speed_kmh);
    }
    if (p->satellites >= 0) {
        rc |= PUT_LIT(b, ",\"satellites\":");
        rc |= fp_buf_put_i64(b, p->satellites);
    }
    rc |= put_char(b, '}');
    return rc;
}

/* The longest io member but for its hex value: ',', the quoted id (at most 10 digits), ':'
 * and an unsigned value of at most 20 digits. */
#define IO_MEMBER_MAX (1 + 12 + 1 + 20)

/* Appends the io object, "{...}". */
static int put_io_object(fp_buf *b, const fp_record *r)
{
    if (put_char(b, '{') != 0)
        return -1;
    for (size_t i = 0; i < r->io_len; i++) {
        const fp_io *io = &r->io[i];
        char *p;

        /* One check per member, then its pieces are written straight into the buffer. */
        if (ensure_room(b, IO_MEMBER_MAX) != 0)
            return -1;
        p = b->data + b->len;
        if (i > 0)
            *p++ = ',';
        *p++ = '"';
        p += fp_buf_format_u64(p, io->id);
        *p++ = '"';
        *p++ = ':';
        if (io->kind == FP_IO_HEX) {
            b->len = (size_t)(p - b->data);
            if (fp_json_put_string(b, fp_record_str(r, io->hex), io->hex.len) != 0)
                return -1;
        } else {
            p += fp_buf_format_u64(p, io->u);
            b->len = (size_t)(p - b->data);
        }
    }
    return put_char(b, '}');
}

/* Appends one metric as a member, "name":value. */
static int put_metric_member(fp_buf *b, const fp_record *r, const fp_metric *m)
{
    int rc = 0;

    if (m->name_plain) {
        /* "name": copied as it is, in one reservation (the decoder vouched for its bytes). */
        char *p;

        if (ensure_room(b, (size_t)m->name.len + 3) != 0)
            return -1;
        p = b->data + b->len;
        *p++ = '"';
        memcpy(p, fp_record_str(r, m->name), m->name.len);
        p += m->name.len;
        *p++ = '"';
        *p++ = ':';
        b->len = (size_t)(p - b->data);
    } else {
        rc |= fp_json_put_string(b, fp_record_str(r, m->name), m->name.len);
        rc |= put_char(b, ':');
    }
    switch (m->kind) {
    case FP_METRIC_BOOL:
        rc |= m->b ? PUT_LIT(b, "true") : PUT_LIT(b, "false");
        break;
    case FP_METRIC_STRING:
        rc |= fp_json_put_string(b, fp_record_str(r, m->str), m->str.len);
        break;
    case FP_METRIC_NUMBER:
    default:
        rc |= fp_json_put_double(b, m->num);
        break;
    }
    return rc;
}

/* Appends the metrics object, "{...}". */
static int put_metrics_object(fp_buf *b, const fp_record *r)
{
    int rc = put_char(b, '{');

    for (size_t i = 0; i < r->metrics_len; i++) {
        if (i > 0)
            rc |= put_char(b, ',');
        rc |= put_metric_member(b, r, &r->metrics[i]);
    }
    return rc | put_char(b, '}');
}

static int put_io(fp_buf *b, const fp_record *r)
{
    int rc = PUT_LIT(b, ",\"io\":");

    return rc | put_io_object(b, r);
}

static int put_metrics(fp_buf *b, const fp_record *r)
{
    int rc = PUT_LIT(b, ",\"metrics\":");

    return rc | put_metrics_object(b, r);
}

int fp_record_encode_io_json(const fp_record *r, fp_buf *out)
{
    size_t start = out->len;

    if (put_io_object(out, r) != 0) {
        out->len = start;
        return -1;
    }
    return 0;
}

int fp_record_encode_metrics_json(const fp_record *r, fp_buf *out)
{
    size_t start = out->len;

    if (put_metrics_object(out, r) != 0) {
        out->len = start;
        return -1;
    }
    return 0;
}

int fp_record_encode_metrics_subset_json(const fp_record *r, const char *const *names, size_t n,
                                         fp_buf *out)
{
    size_t start = out->len;
    int rc = put_char(out, '{');
    bool first = true;
    const fp_metric *found[FP_RECORD_FIND_MAX];

    /* The names in groups that fp_record_metrics_find looks up in one pass each. */
    for (size_t base = 0; base < n; base += FP_RECORD_FIND_MAX) {
        size_t k = n - base < FP_RECORD_FIND_MAX ? n - base : FP_RECORD_FIND_MAX;

        fp_record_metrics_find(r, names + base, k, found);
        for (size_t i = 0; i < k; i++) {
            if (found[i] == NULL)
                continue;
            if (!first)
                rc |= put_char(out, ',');
            rc |= put_metric_member(out, r, found[i]);
            first = false;
        }
    }
    rc |= put_char(out, '}');
    if (rc != 0) {
        out->len = start;
        return -1;
    }
    return 0;
}

/* True when the record carries an "enrichment" object: once enriched, and before that when a
 * decoder gave hints (an ISO 15143-3 machine's asset, with status "none"). */
static bool has_enrichment(const fp_record *r)
{
    const fp_enrichment *e = &r->enrichment;

    return e->status != FP_ENRICH_NONE || e->has_site || e->has_address || e->has_asset;
}

/* A generous guess of the encoded size, so that one reservation covers almost every record
 * and the appends below never reallocate. */
static size_t encoded_size_hint(const fp_record *r)
{
    return 256 + FP_DEVICE_ID_MAX + FP_FORMAT_MAX + (r->has_position ? 160 : 0) + r->io_len * 32 +
           r->metrics_len * 40 + r->arena_len * 2 + (has_enrichment(r) ? 256 : 0);
}

int fp_record_encode_json(const fp_record *r, fp_buf *out)
{
    size_t start = out->len;
    int rc = 0;

    if (fp_buf_reserve(out, encoded_size_hint(r)) != 0)
        return -1;

    /* Every append either succeeds or leaves the buffer as it was, so the failures are
     * collected and the whole record is taken back once at the end. */
    rc |= PUT_LIT(out, "{\"schema\":1,\"device_id\":");
    rc |= fp_json_put_string(out, r->device_id, strnlen(r->device_id, FP_DEVICE_ID_MAX));
    rc |= put_time(out, ",\"ts\":", 6, r->ts_ms);
    if (r->received_at_ms != INT64_MIN)
        rc |= put_time(out, ",\"received_at\":", 15, r->received_at_ms);
    if (r->format[0] != '\0') {
        rc |= PUT_LIT(out, ",\"format\":");
        rc |= fp_json_put_string(out, r->format, strnlen(r->format, FP_FORMAT_MAX));
    }
    /* Only -1 means absent; other negative values cannot be valid either and are left out
     * too, so that the output always decodes. */
    if (r->priority >= 0) {
        rc |= PUT_LIT(out, ",\"priority\":");
        rc |= fp_buf_put_i64(out, r->priority);
    }
    if (r->event_io >= 0) {
        rc |= PUT_LIT(out, ",\"event_io\":");
        rc |= fp_buf_put_i64(out, r->event_io);
    }
    if (r->has_position)
        rc |= put_position(out, &r->position);
    if (r->io_len > 0)
        rc |= put_io(out, r);
    if (r->metrics_len > 0)
        rc |= put_metrics(out, r);
    if (has_enrichment(r))
        rc |= put_enrichment(out, r);
    rc |= put_char(out, '}');

    if (rc != 0) {
        out->len = start;
        return -1;
    }
    return 0;
}
