#include "sink-svc/rows.h"

#include <math.h>
#include <string.h>

#include "common/fp_json.h"
#include "common/fp_time.h"

const char rows_columns[] =
    "device_id,ts,received_at,format,priority,event_io,lat,lon,alt_m,heading_deg,speed_kmh,"
    "satellites,ignition,enrichment_status,site_id,site_name,address,road,city,postcode,country,"
    "country_code,asset_customer,asset_oem,asset_model,asset_serial_number,asset_machine_type,"
    "metrics,io";

/* The index of the column `name` (len bytes) in rows_columns, or -1. */
static int column_index(const char *name, size_t len)
{
    const char *c = rows_columns;

    for (int i = 0; *c != '\0'; i++) {
        const char *comma = strchr(c, ',');
        size_t clen = comma != NULL ? (size_t)(comma - c) : strlen(c);

        if (clen == len && memcmp(c, name, len) == 0)
            return i;
        if (comma == NULL)
            break;
        c = comma + 1;
    }
    return -1;
}

int rows_column_indexes(const char *names, int *idx, int max)
{
    int n = 0;

    while (*names != '\0') {
        const char *comma = strchr(names, ',');
        size_t len = comma != NULL ? (size_t)(comma - names) : strlen(names);
        int i = column_index(names, len);

        if (i < 0)
            return n;
        if (n == max)
            return -1;
        idx[n++] = i;
        if (comma == NULL)
            break;
        names = comma + 1;
    }
    return n;
}

/* Hands one column to the visitor; the emitters below keep the column index. */
typedef struct visit {
    int (*field)(void *ctx, int i, const char *text, size_t len);
    void *ctx;
    int i;
    fp_buf num; /* formatting room for numbers and timestamps */
} visit;

static int emit(visit *v, const char *text, size_t len)
{
    return v->field(v->ctx, v->i++, text, len);
}

static int emit_null(visit *v)
{
    return emit(v, NULL, 0);
}

static int emit_str(visit *v, const fp_record *r, fp_str s)
{
    return s.len == 0 ? emit_null(v) : emit(v, fp_record_str(r, s), s.len);
}

static int emit_cstr(visit *v, const char *s)
{
    return s[0] == '\0' ? emit_null(v) : emit(v, s, strlen(s));
}

static int emit_ts(visit *v, int64_t ms)
{
    char ts[32];

    if (ms == INT64_MIN || fp_time_format_ms(ms, ts, sizeof(ts)) < 0)
        return emit_null(v);
    return emit(v, ts, strlen(ts));
}

static int emit_double(visit *v, bool present, double d)
{
    if (!present || isnan(d))
        return emit_null(v);
    fp_buf_clear(&v->num);
    if (fp_json_put_double(&v->num, d) < 0)
        return -1;
    return emit(v, v->num.data, v->num.len);
}

static int emit_int(visit *v, bool present, int64_t n)
{
    if (!present)
        return emit_null(v);
    fp_buf_clear(&v->num);
    if (fp_buf_put_i64(&v->num, n) < 0)
        return -1;
    return emit(v, v->num.data, v->num.len);
}

int rows_fields(const fp_record *r, fp_buf *scratch,
                int (*field)(void *ctx, int i, const char *text, size_t len), void *ctx)
{
    const fp_enrichment *e = &r->enrichment;
    const fp_metric *ign = fp_record_metric(r, "ignition");
    const fp_position *p = &r->position;
    bool pos = r->has_position;
    visit v = {field, ctx, 0, {0}};
    int rc = 0;

#define DO(expr) (rc = rc != 0 ? rc : (expr))
    DO(emit_cstr(&v, r->device_id));
    DO(emit_ts(&v, r->ts_ms));
    DO(emit_ts(&v, r->received_at_ms));
    DO(emit_cstr(&v, r->format));
    DO(emit_int(&v, r->priority >= 0, r->priority));
    DO(emit_int(&v, r->event_io >= 0, r->event_io));
    DO(emit_double(&v, pos, p->lat));
    DO(emit_double(&v, pos, p->lon));
    DO(emit_double(&v, pos, p->alt_m));
    DO(emit_double(&v, pos, p->heading_deg));
    DO(emit_double(&v, pos, p->speed_kmh));
    DO(emit_int(&v, pos && p->satellites >= 0, p->satellites));
    DO(ign != NULL && ign->kind == FP_METRIC_BOOL ? emit(&v, ign->b ? "t" : "f", 1)
                                                  : emit_null(&v));
    DO(e->status != FP_ENRICH_NONE ? emit_cstr(&v, fp_enrich_status_name(e->status))
                                   : emit_null(&v));
    DO(emit_str(&v, r, e->site_id));
    DO(emit_str(&v, r, e->site_name));
    DO(emit_str(&v, r, e->address_display));
    DO(emit_str(&v, r, e->address_road));
    DO(emit_str(&v, r, e->address_city));
    DO(emit_str(&v, r, e->address_postcode));
    DO(emit_str(&v, r, e->address_country));
    DO(emit_str(&v, r, e->address_country_code));
    DO(emit_str(&v, r, e->asset_customer));
    DO(emit_str(&v, r, e->asset_oem));
    DO(emit_str(&v, r, e->asset_model));
    DO(emit_str(&v, r, e->asset_serial));
    DO(emit_str(&v, r, e->asset_machine_type));
    fp_buf_clear(scratch);
    DO(r->metrics_len > 0
           ? (fp_record_encode_metrics_json(r, scratch) < 0 ? -1
                                                            : emit(&v, scratch->data, scratch->len))
           : emit_null(&v));
    fp_buf_clear(scratch);
    DO(r->io_len > 0
           ? (fp_record_encode_io_json(r, scratch) < 0 ? -1 : emit(&v, scratch->data, scratch->len))
           : emit_null(&v));
#undef DO
    fp_buf_free(&v.num);
    return rc;
}

/* Appends text escaped for COPY's text format: backslash, tab, newline and CR. */
static int put_copy_text(fp_buf *out, const char *s, size_t len)
{
    size_t start = 0;

    if (fp_buf_reserve(out, len + 8) < 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        const char *esc = NULL;

        switch (s[i]) {
        case '\\':
            esc = "\\\\";
            break;
        case '\t':
            esc = "\\t";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        default:
            continue;
        }
        if (fp_buf_append(out, s + start, i - start) < 0 || fp_buf_puts(out, esc) < 0)
            return -1;
        start = i + 1;
    }
    return fp_buf_append(out, s + start, len - start);
}

static int copy_field(void *ctx, int i, const char *text, size_t len)
{
    fp_buf *out = ctx;

    if (i > 0 && fp_buf_putc(out, '\t') < 0)
        return -1;
    return text == NULL ? fp_buf_puts(out, "\\N") : put_copy_text(out, text, len);
}

int rows_append_copy_metrics(fp_buf *out, const fp_record *r, const char *const *names, size_t n,
                             fp_buf *scratch)
{
    size_t mark = out->len;

    fp_buf_clear(scratch);
    if (fp_record_encode_metrics_subset_json(r, names, n, scratch) < 0 ||
        put_copy_text(out, scratch->data, scratch->len) < 0) {
        out->len = mark;
        return -1;
    }
    return 0;
}

int rows_append_copy(fp_buf *out, const fp_record *r, fp_buf *scratch)
{
    size_t mark = out->len;

    if (rows_fields(r, scratch, copy_field, out) != 0 || fp_buf_putc(out, '\n') < 0) {
        out->len = mark;
        return -1;
    }
    return 0;
}
