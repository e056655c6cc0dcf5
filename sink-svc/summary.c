#include "sink-svc/summary.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/fp_json.h"
#include "common/fp_time.h"
#include "sink-svc/rollup.h"

/* A gap after a row with ignition on counts as ignition time up to this long (README
 * "Rollups"; the SQL says interval '10 minutes'). */
#define IGNITION_GAP_MAX_MS 600000

/* How the database reads a metric of the stored row (telemetry_metric). */
typedef enum metric_read { READ_NULL = 0, READ_NUMBER, READ_BY_DATABASE } metric_read;

/* One row as the rollups see it. */
typedef struct item {
    const fp_record *rec;
    uint64_t key[2]; /* the device id's first 16 bytes, big-endian, NUL-padded (device_order) */
    size_t index;
    int64_t ts_ms;
    metric_read eh_read, odo_read;
    double eh, odo;
    int ign; /* the ignition column: 1, 0, or -1 for NULL */
} item;

struct summary {
    item *items;
    size_t len, cap;
    fp_buf param[SUMMARY_NPARAMS];
};

/* The parameters by name, in the function's order. */
enum {
    P_DEV_ID,
    P_DEV_FIRST_TS,
    P_DEV_FIRST_EH,
    P_DEV_FIRST_ODO,
    P_DEV_LAST_TS,
    P_DEV_LAST_IGN,
    P_DEV_LAST_EH,
    P_DEV_LAST_ODO,
    P_DEV_LAST_SITE_ID,
    P_DEV_LAST_SITE_NAME,
    P_B_DEV,
    P_B_BUCKET,
    P_B_SAMPLES,
    P_B_FIRST_TS,
    P_B_LAST_TS,
    P_B_MAX_SPEED,
    P_B_EH,
    P_B_ODO,
    P_B_IGN_MS
};

summary *summary_new(void)
{
    return calloc(1, sizeof(summary));
}

void summary_free(summary *s)
{
    if (s == NULL)
        return;
    for (int i = 0; i < SUMMARY_NPARAMS; i++)
        fp_buf_free(&s->param[i]);
    free(s->items);
    free(s);
}

void summary_clear(summary *s)
{
    s->len = 0;
}

size_t summary_len(const summary *s)
{
    return s->len;
}

static metric_read read_metric(const fp_metric *m, double *v)
{
    *v = 0;
    if (m == NULL || m->kind == FP_METRIC_BOOL)
        return READ_NULL;
    if (m->kind == FP_METRIC_STRING)
        return READ_BY_DATABASE;
    *v = m->num;
    return READ_NUMBER;
}

/* Writes the first 16 bytes of id (NUL-padded) as two big-endian numbers: they compare as the
 * bytes do. */
static void device_key(const char *id, uint64_t key[2])
{
    size_t i = 0;

    key[0] = key[1] = 0;
    for (int w = 0; w < 2; w++)
        for (int b = 0; b < 8; b++) {
            key[w] <<= 8;
            if (id[i] != '\0')
                key[w] |= (uint8_t)id[i++];
        }
}

int summary_add(summary *s, const fp_record *rec, size_t index)
{
    const char *const names[3] = {rollup_metrics[0], rollup_metrics[1], "ignition"};
    const fp_metric *m[3];
    item *it;

    if (s->len == s->cap) {
        size_t cap = s->cap != 0 ? s->cap * 2 : 1024;
        item *items = realloc(s->items, cap * sizeof(*items));

        if (items == NULL)
            return -1;
        s->items = items;
        s->cap = cap;
    }
    it = &s->items[s->len++];
    it->rec = rec;
    device_key(rec->device_id, it->key);
    it->index = index;
    it->ts_ms = rec->ts_ms;
    fp_record_metrics_find(rec, names, 3, m);
    it->eh_read = read_metric(m[0], &it->eh);
    it->odo_read = read_metric(m[1], &it->odo);
    it->ign = m[2] != NULL && m[2]->kind == FP_METRIC_BOOL ? m[2]->b : -1;
    return 0;
}

/* The order of two items' devices, exactly strcmp's: the keys compare as the first 16 bytes do
 * (unsigned, a NUL padding sorting first), and only ids that agree there are compared whole. */
static int device_order(const item *x, const item *y)
{
    if (x->key[0] != y->key[0])
        return x->key[0] < y->key[0] ? -1 : 1;
    if (x->key[1] != y->key[1])
        return x->key[1] < y->key[1] ? -1 : 1;
    if ((x->key[1] & 0xff) == 0)
        return 0; /* both ids ended within the 16 bytes, equal */
    return strcmp(x->rec->device_id + 16, y->rec->device_id + 16);
}

static int cmp_item(const void *a, const void *b)
{
    const item *x = a, *y = b;
    int c = device_order(x, y);

    if (c != 0)
        return c;
    return x->ts_ms < y->ts_ms ? -1 : x->ts_ms > y->ts_ms;
}

/* ---- Array literals ---- */

static int put_sep(fp_buf *b)
{
    return fp_buf_putc(b, b->len > 0 ? ',' : '{');
}

static int put_null(fp_buf *b)
{
    return put_sep(b) < 0 ? -1 : fp_buf_puts(b, "NULL");
}

/* A quoted element: backslash and double quote escaped. */
static int put_text(fp_buf *b, const char *s, size_t len)
{
    if (put_sep(b) < 0 || fp_buf_putc(b, '"') < 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if ((s[i] == '"' || s[i] == '\\') && fp_buf_putc(b, '\\') < 0)
            return -1;
        if (fp_buf_putc(b, s[i]) < 0)
            return -1;
    }
    return fp_buf_putc(b, '"');
}

static int put_str(fp_buf *b, const fp_record *r, fp_str s)
{
    return s.len == 0 ? put_null(b) : put_text(b, fp_record_str(r, s), s.len);
}

static int put_ts(fp_buf *b, int64_t ms)
{
    char ts[32];

    if (fp_time_format_ms(ms, ts, sizeof(ts)) < 0)
        return -1;
    return put_text(b, ts, strlen(ts));
}

/* A double in the shortest form that reads back to it, as the stored jsonb and COPY hold it. */
static int put_double(fp_buf *b, double v)
{
    return put_sep(b) < 0 ? -1 : fp_json_put_double(b, v);
}

static int put_i64(fp_buf *b, int64_t v)
{
    return put_sep(b) < 0 ? -1 : fp_buf_put_i64(b, v);
}

static int put_metric(fp_buf *b, metric_read read, double v)
{
    return read == READ_NUMBER ? put_double(b, v) : put_null(b);
}

static int put_ignition(fp_buf *b, int ign)
{
    return ign < 0 ? put_null(b) : put_sep(b) < 0 ? -1 : fp_buf_putc(b, ign ? 't' : 'f');
}

/* ---- The summary ---- */

/* One device's hour being summed. */
typedef struct hour {
    int64_t bucket_ms;
    int64_t samples, first_ms, last_ms, ign_ms;
    const item *fastest; /* the row with the highest speed, NULL when none has one */
    double eh, odo;
} hour;

static int put_hour(summary *s, const char *device_id, const hour *h)
{
    fp_buf *p = s->param;
    const fp_position *pos = h->fastest != NULL ? &h->fastest->rec->position : NULL;

    if (put_text(&p[P_B_DEV], device_id, strlen(device_id)) < 0 ||
        put_ts(&p[P_B_BUCKET], h->bucket_ms) < 0 || put_i64(&p[P_B_SAMPLES], h->samples) < 0 ||
        put_ts(&p[P_B_FIRST_TS], h->first_ms) < 0 || put_ts(&p[P_B_LAST_TS], h->last_ms) < 0 ||
        (pos != NULL ? put_double(&p[P_B_MAX_SPEED], pos->speed_kmh)
                     : put_null(&p[P_B_MAX_SPEED])) < 0 ||
        put_double(&p[P_B_EH], h->eh) < 0 || put_double(&p[P_B_ODO], h->odo) < 0 ||
        put_i64(&p[P_B_IGN_MS], h->ign_ms) < 0)
        return -1;
    return 0;
}

static bool has_speed(const item *it)
{
    return it->rec->has_position && !isnan(it->rec->position.speed_kmh);
}

/* Sums the rows [lo, hi) of one device hour by hour. */
static int put_hours(summary *s, const item *lo, const item *hi)
{
    const char *device_id = lo->rec->device_id;
    hour h = {0};

    for (const item *it = lo; it < hi; it++) {
        const item *prev = it - 1;
        int64_t bucket = rollup_bucket_ms(it->ts_ms);

        if (it == lo || bucket != h.bucket_ms) {
            if (it != lo && put_hour(s, device_id, &h) < 0)
                return -1;
            memset(&h, 0, sizeof(h));
            h.bucket_ms = bucket;
            h.first_ms = it->ts_ms;
        }
        h.samples++;
        h.last_ms = it->ts_ms;
        if (has_speed(it) &&
            (h.fastest == NULL || it->rec->position.speed_kmh > h.fastest->rec->position.speed_kmh))
            h.fastest = it;
        if (it == lo)
            continue; /* its interval starts at a stored row: the database's part */
        if (it->eh_read == READ_NUMBER && prev->eh_read == READ_NUMBER && it->eh >= prev->eh)
            h.eh += it->eh - prev->eh;
        if (it->odo_read == READ_NUMBER && prev->odo_read == READ_NUMBER && it->odo >= prev->odo)
            h.odo += it->odo - prev->odo;
        if (prev->ign == 1 && it->ts_ms - prev->ts_ms <= IGNITION_GAP_MAX_MS)
            h.ign_ms += it->ts_ms - prev->ts_ms;
    }
    return put_hour(s, device_id, &h);
}

/* Whether the database must read one of the device's metrics itself. */
static bool read_by_database(const item *lo, const item *hi)
{
    for (const item *it = lo; it < hi; it++)
        if (it->eh_read == READ_BY_DATABASE || it->odo_read == READ_BY_DATABASE)
            return true;
    return false;
}

static int put_device(summary *s, const item *lo, const item *hi)
{
    fp_buf *p = s->param;
    const item *last = hi - 1;
    const fp_enrichment *e = &last->rec->enrichment;
    const char *device_id = lo->rec->device_id;

    if (put_text(&p[P_DEV_ID], device_id, strlen(device_id)) < 0)
        return -1;
    if (read_by_database(lo, hi)) {
        /* A NULL first ts: the database hands the device back for the per-row step. */
        for (int i = P_DEV_FIRST_TS; i <= P_DEV_LAST_SITE_NAME; i++)
            if (put_null(&p[i]) < 0)
                return -1;
        return 0;
    }
    if (put_ts(&p[P_DEV_FIRST_TS], lo->ts_ms) < 0 ||
        put_metric(&p[P_DEV_FIRST_EH], lo->eh_read, lo->eh) < 0 ||
        put_metric(&p[P_DEV_FIRST_ODO], lo->odo_read, lo->odo) < 0 ||
        put_ts(&p[P_DEV_LAST_TS], last->ts_ms) < 0 ||
        put_ignition(&p[P_DEV_LAST_IGN], last->ign) < 0 ||
        put_metric(&p[P_DEV_LAST_EH], last->eh_read, last->eh) < 0 ||
        put_metric(&p[P_DEV_LAST_ODO], last->odo_read, last->odo) < 0 ||
        put_str(&p[P_DEV_LAST_SITE_ID], last->rec, e->site_id) < 0 ||
        put_str(&p[P_DEV_LAST_SITE_NAME], last->rec, e->site_name) < 0)
        return -1;
    return put_hours(s, lo, hi);
}

int summary_build(summary *s, const char **values)
{
    size_t lo = 0;

    qsort(s->items, s->len, sizeof(*s->items), cmp_item);
    for (int i = 0; i < SUMMARY_NPARAMS; i++)
        fp_buf_clear(&s->param[i]);
    while (lo < s->len) {
        size_t hi = lo + 1;

        while (hi < s->len && device_order(&s->items[hi], &s->items[lo]) == 0)
            hi++;
        if (put_device(s, &s->items[lo], &s->items[hi]) < 0)
            return -1;
        lo = hi;
    }
    for (int i = 0; i < SUMMARY_NPARAMS; i++) {
        /* An empty array has no element to open it. */
        if ((s->param[i].len == 0 && fp_buf_putc(&s->param[i], '{') < 0) ||
            fp_buf_putc(&s->param[i], '}') < 0)
            return -1;
        values[i] = fp_buf_cstr(&s->param[i]);
    }
    return 0;
}

size_t summary_rows_of(const summary *s, const char *device_id, size_t *out)
{
    size_t lo = 0, hi = s->len, n = 0;

    /* The first row of the device: the items are in device order after summary_build. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (strcmp(s->items[mid].rec->device_id, device_id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < s->len && strcmp(s->items[i].rec->device_id, device_id) == 0; i++)
        out[n++] = s->items[i].index;
    return n;
}
