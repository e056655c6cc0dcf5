#include "sink-svc/rows.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
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

/* What a column holds; each kind is one PostgreSQL type (kind_type). */
typedef enum kind { K_TEXT, K_TIME, K_INT2, K_INT4, K_FLOAT8, K_FLOAT4, K_BOOL, K_JSONB } kind;

/* The index of the metrics column in rows_columns, a jsonb. */
#define METRICS_COLUMN 27

/* The kind of each column of rows_columns, in order. */
static const kind column_kind[ROWS_NCOLS] = {
    K_TEXT,   K_TIME, K_TIME, K_TEXT, K_INT2, K_INT4, K_FLOAT8, K_FLOAT8, K_FLOAT4, K_FLOAT4,
    K_FLOAT4, K_INT2, K_BOOL, K_TEXT, K_TEXT, K_TEXT, K_TEXT,   K_TEXT,   K_TEXT,   K_TEXT,
    K_TEXT,   K_TEXT, K_TEXT, K_TEXT, K_TEXT, K_TEXT, K_TEXT,   K_JSONB,  K_JSONB};

/* Each kind's PostgreSQL type, as format_type() names it. */
static const char *const kind_type[] = {[K_TEXT] = "text",
                                        [K_TIME] = "timestamp with time zone",
                                        [K_INT2] = "smallint",
                                        [K_INT4] = "integer",
                                        [K_FLOAT8] = "double precision",
                                        [K_FLOAT4] = "real",
                                        [K_BOOL] = "boolean",
                                        [K_JSONB] = "jsonb"};

const char *rows_column_type(int i)
{
    return i >= 0 && i < ROWS_NCOLS ? kind_type[column_kind[i]] : NULL;
}

/* One column's value; which member holds it follows from the column's kind. */
typedef struct value {
    bool null;
    const char *s; /* K_TEXT, K_JSONB: s[0..len) */
    size_t len;
    int64_t n; /* K_TIME: ms since the epoch; K_INT2, K_INT4 */
    double d;  /* K_FLOAT8, K_FLOAT4: never NaN, never -0 */
    bool b;    /* K_BOOL */
} value;

/* Hands each column's value to put(ctx, i, v); the setters below keep the column index. */
typedef struct visit {
    int (*put)(void *ctx, int i, const value *v);
    void *ctx;
    int i;
} visit;

static int put(visit *v, value val)
{
    return v->put(v->ctx, v->i++, &val);
}

static int put_null(visit *v)
{
    return put(v, (value){.null = true});
}

static int put_text(visit *v, const char *s, size_t len)
{
    return len == 0 ? put_null(v) : put(v, (value){.s = s, .len = len});
}

/* A timestamp is NULL when absent or outside what fp_time_format_ms writes (years 0000-9999). */
static int put_time(visit *v, int64_t ms)
{
    if (ms == INT64_MIN || !fp_time_in_range(ms))
        return put_null(v);
    return put(v, (value){.n = ms});
}

/* -0 is written as 0 (fp_json_put_double writes it so in text), NaN as NULL. */
static int put_double(visit *v, bool present, double d)
{
    if (!present || isnan(d))
        return put_null(v);
    return put(v, (value){.d = d == 0 ? 0.0 : d});
}

static int put_int(visit *v, bool present, int64_t n)
{
    return present ? put(v, (value){.n = n}) : put_null(v);
}

/* Calls put for each column of the record, in rows_columns' order. The JSON columns are encoded
 * into `scratch`. Returns 0, the first non-zero value put returned, or -1 on out of memory. */
static int visit_row(const fp_record *r, fp_buf *scratch,
                     int (*put_fn)(void *ctx, int i, const value *v), void *ctx)
{
    const fp_enrichment *e = &r->enrichment;
    const fp_metric *ign = fp_record_metric(r, "ignition");
    const fp_position *p = &r->position;
    bool pos = r->has_position;
    visit v = {put_fn, ctx, 0};
    int rc = 0;

#define DO(expr) (rc = rc != 0 ? rc : (expr))
#define STR(s)   put_text(&v, fp_record_str(r, s), (s).len)
    DO(put_text(&v, r->device_id, strlen(r->device_id)));
    DO(put_time(&v, r->ts_ms));
    DO(put_time(&v, r->received_at_ms));
    DO(put_text(&v, r->format, strlen(r->format)));
    DO(put_int(&v, r->priority >= 0, r->priority));
    DO(put_int(&v, r->event_io >= 0, r->event_io));
    DO(put_double(&v, pos, p->lat));
    DO(put_double(&v, pos, p->lon));
    DO(put_double(&v, pos, p->alt_m));
    DO(put_double(&v, pos, p->heading_deg));
    DO(put_double(&v, pos, p->speed_kmh));
    DO(put_int(&v, pos && p->satellites >= 0, p->satellites));
    DO(ign != NULL && ign->kind == FP_METRIC_BOOL ? put(&v, (value){.b = ign->b}) : put_null(&v));
    if (e->status != FP_ENRICH_NONE) {
        const char *status = fp_enrich_status_name(e->status);

        DO(put_text(&v, status, strlen(status)));
    } else {
        DO(put_null(&v));
    }
    DO(STR(e->site_id));
    DO(STR(e->site_name));
    DO(STR(e->address_display));
    DO(STR(e->address_road));
    DO(STR(e->address_city));
    DO(STR(e->address_postcode));
    DO(STR(e->address_country));
    DO(STR(e->address_country_code));
    DO(STR(e->asset_customer));
    DO(STR(e->asset_oem));
    DO(STR(e->asset_model));
    DO(STR(e->asset_serial));
    DO(STR(e->asset_machine_type));
    fp_buf_clear(scratch);
    DO(r->metrics_len > 0 ? (fp_record_encode_metrics_json(r, scratch) < 0
                                 ? -1
                                 : put(&v, (value){.s = scratch->data, .len = scratch->len}))
                          : put_null(&v));
    fp_buf_clear(scratch);
    DO(r->io_len > 0 ? (fp_record_encode_io_json(r, scratch) < 0
                            ? -1
                            : put(&v, (value){.s = scratch->data, .len = scratch->len}))
                     : put_null(&v));
#undef STR
#undef DO
    return rc;
}

/* rows_fields' adapter: each value as the text PostgreSQL reads. */
typedef struct text_visit {
    int (*field)(void *ctx, int i, const char *text, size_t len);
    void *ctx;
    fp_buf num; /* formatting room for numbers */
} text_visit;

static int put_as_text(void *ctx, int i, const value *v)
{
    text_visit *t = ctx;
    char ts[FP_RFC3339_LEN + 1];

    if (v->null)
        return t->field(t->ctx, i, NULL, 0);
    switch (column_kind[i]) {
    case K_TEXT:
    case K_JSONB:
        return t->field(t->ctx, i, v->s, v->len);
    case K_TIME:
        fp_time_format_ms(v->n, ts, sizeof(ts)); /* in range: put_time */
        return t->field(t->ctx, i, ts, FP_RFC3339_LEN);
    case K_BOOL:
        return t->field(t->ctx, i, v->b ? "t" : "f", 1);
    case K_FLOAT8:
    case K_FLOAT4:
        fp_buf_clear(&t->num);
        if (fp_json_put_double(&t->num, v->d) < 0)
            return -1;
        return t->field(t->ctx, i, t->num.data, t->num.len);
    case K_INT2:
    case K_INT4:
        break;
    }
    fp_buf_clear(&t->num);
    if (fp_buf_put_i64(&t->num, v->n) < 0)
        return -1;
    return t->field(t->ctx, i, t->num.data, t->num.len);
}

int rows_fields(const fp_record *r, fp_buf *scratch,
                int (*field)(void *ctx, int i, const char *text, size_t len), void *ctx)
{
    text_visit t = {field, ctx, {0}};
    int rc = visit_row(r, scratch, put_as_text, &t);

    fp_buf_free(&t.num);
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

/* The binary format's signature, flags and header extension length (all zero). */
static const char binary_header[19] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0";

size_t rows_copy_header(rows_format f, const char **bytes)
{
    *bytes = binary_header;
    return f == ROWS_COPY_BINARY ? sizeof(binary_header) : 0;
}

size_t rows_copy_trailer(rows_format f, const char **bytes)
{
    *bytes = "\377\377";
    return f == ROWS_COPY_BINARY ? 2 : 0;
}

/* Writes v's low `bytes` bytes, most significant first, at p. Returns p + bytes. */
static char *put_be(char *p, uint64_t v, int bytes)
{
    for (int k = bytes - 1; k >= 0; k--) {
        p[k] = (char)(v & 0xff);
        v >>= 8;
    }
    return p + bytes;
}

/* Microseconds between the Unix epoch and PostgreSQL's, 2000-01-01T00:00:00Z. */
#define PG_EPOCH_US INT64_C(946684800000000)

/* The real the server stores for the text of d: the float strtof reads from d's shortest digits
 * (float4in). That is d rounded to the nearest float, except when d lies exactly halfway
 * between two floats, where the digits' side of d decides: they are read as the server reads
 * them. `num` is formatting room. */
static float real_of(double d, fp_buf *num)
{
    float f = (float)d;

    if ((double)f != d) {
        float g = nextafterf(f, d > (double)f ? INFINITY : -INFINITY);

        /* Two neighbouring floats add up exactly in a double. */
        if ((double)f + (double)g == 2 * d) {
            fp_buf_clear(num);
            if (fp_json_put_double(num, d) == 0)
                f = strtof(fp_buf_cstr(num), NULL); /* the C locale: services never set one */
        }
    }
    return f;
}

/* rows_append_copy's binary adapter: appends each value as a field of a binary tuple. */
typedef struct binary_visit {
    fp_buf *out;
    fp_buf num;
} binary_visit;

static int put_binary(void *ctx, int i, const value *v)
{
    binary_visit *b = ctx;
    kind k = column_kind[i];
    size_t len = 0;
    uint64_t bits = 0;
    char *p;

    if (v->null)
        return fp_buf_append(b->out, "\377\377\377\377", 4);
    switch (k) {
    case K_TEXT:
        len = v->len;
        break;
    case K_JSONB:
        len = v->len + 1; /* the jsonb format's version byte, then the text */
        break;
    case K_TIME:
        len = 8;
        bits = (uint64_t)(v->n * 1000 - PG_EPOCH_US);
        break;
    case K_INT2:
        len = 2;
        bits = (uint64_t)v->n;
        break;
    case K_INT4:
        len = 4;
        bits = (uint64_t)v->n;
        break;
    case K_FLOAT8:
        len = 8;
        memcpy(&bits, &v->d, sizeof(bits));
        break;
    case K_FLOAT4: {
        float f = real_of(v->d, &b->num);
        uint32_t w;

        len = 4;
        memcpy(&w, &f, sizeof(w));
        bits = w;
        break;
    }
    case K_BOOL:
        len = 1;
        bits = v->b;
        break;
    }
    if (len > INT32_MAX || fp_buf_reserve(b->out, 4 + len) < 0)
        return -1;
    p = put_be(b->out->data + b->out->len, len, 4);
    if (k == K_TEXT) {
        memcpy(p, v->s, len);
    } else if (k == K_JSONB) {
        *p = 1;
        memcpy(p + 1, v->s, v->len);
    } else {
        put_be(p, bits, (int)len);
    }
    b->out->len += 4 + len;
    return 0;
}

int rows_copy_row_start(fp_buf *out, rows_format f, int n)
{
    char count[2];

    if (f != ROWS_COPY_BINARY)
        return 0;
    put_be(count, (uint64_t)n, 2);
    return fp_buf_append(out, count, 2);
}

int rows_copy_row_end(fp_buf *out, rows_format f)
{
    return f == ROWS_COPY_TEXT ? fp_buf_putc(out, '\n') : 0;
}

int rows_append_copy(fp_buf *out, rows_format f, const fp_record *r, fp_buf *scratch)
{
    size_t mark = out->len;
    int rc;

    if (f == ROWS_COPY_BINARY) {
        binary_visit b = {out, {0}};

        rc = rows_copy_row_start(out, f, ROWS_NCOLS);
        if (rc == 0)
            rc = visit_row(r, scratch, put_binary, &b);
        fp_buf_free(&b.num);
    } else {
        rc = rows_fields(r, scratch, copy_field, out);
        if (rc == 0)
            rc = rows_copy_row_end(out, f);
    }
    if (rc != 0) {
        out->len = mark;
        return -1;
    }
    return 0;
}

/* The bytes of a binary tuple's next field (its length word and data) at p, before end: their
 * length, or 0 when the tuple ends before the field does. */
static size_t binary_field_len(const char *p, const char *end)
{
    uint32_t len = 0;

    if (end - p < 4)
        return 0;
    for (int k = 0; k < 4; k++)
        len = len << 8 | (unsigned char)p[k];
    if (len == UINT32_MAX) /* NULL: the length word alone */
        return 4;
    return len <= (size_t)(end - p) - 4 ? 4 + (size_t)len : 0;
}

int rows_copy_pick(fp_buf *out, rows_format f, const char *row, size_t len, const int *col, int n)
{
    const char *end = row + len, *field = row;
    size_t mark = out->len;
    int i = 0, k = 0;

    if (f == ROWS_COPY_TEXT && len > 0 && row[len - 1] == '\n')
        end--;
    if (f == ROWS_COPY_BINARY)
        field += len >= 2 ? 2 : len; /* the field count */
    while (k < n && field <= end) {
        size_t flen, step;

        if (f == ROWS_COPY_BINARY) {
            flen = binary_field_len(field, end);
            if (flen == 0)
                break;
            step = flen;
        } else {
            const char *tab = memchr(field, '\t', (size_t)(end - field));

            flen = (size_t)((tab != NULL ? tab : end) - field);
            step = tab != NULL ? flen + 1 : (size_t)(end - field) + 1;
        }
        if (i == col[k]) {
            if (fp_buf_append(out, field, flen) < 0 ||
                (f == ROWS_COPY_TEXT && fp_buf_putc(out, '\t') < 0)) {
                out->len = mark;
                return -1;
            }
            k++;
        }
        field += step;
        i++;
    }
    if (k < n) {
        out->len = mark;
        return -1;
    }
    return 0;
}

int rows_append_copy_metrics(fp_buf *out, rows_format f, const fp_record *r,
                             const char *const *names, size_t n, fp_buf *scratch)
{
    size_t mark = out->len;
    int rc;

    fp_buf_clear(scratch);
    rc = fp_record_encode_metrics_subset_json(r, names, n, scratch);
    if (rc == 0 && f == ROWS_COPY_BINARY) {
        binary_visit b = {out, {0}};

        rc = put_binary(&b, METRICS_COLUMN, &(value){.s = scratch->data, .len = scratch->len});
    } else if (rc == 0) {
        rc = put_copy_text(out, scratch->data, scratch->len);
    }
    if (rc != 0) {
        out->len = mark;
        return -1;
    }
    return 0;
}
