#include "rows.h"

#include <math.h>
#include <string.h>

#include "fp_json.h"
#include "fp_time.h"

const char fp_rows_columns[] =
    "device_id,ts,received_at,format,priority,event_io,lat,lon,alt_m,heading_deg,speed_kmh,"
    "satellites,ignition,enrichment_status,site_id,site_name,address,road,city,postcode,country,"
    "country_code,asset_customer,asset_oem,asset_model,asset_serial_number,asset_machine_type,"
    "metrics,io";

/* Appends text escaped for COPY's text format: backslash, tab, newline and CR. */
static int put_text(fp_buf *out, const char *s, size_t len)
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

static int put_null(fp_buf *out)
{
    return fp_buf_puts(out, "\\N");
}

/* Appends an arena string, or NULL when absent. */
static int put_str(fp_buf *out, const fp_record *r, fp_str s)
{
    return s.len == 0 ? put_null(out) : put_text(out, fp_record_str(r, s), s.len);
}

static int put_ts(fp_buf *out, int64_t ms)
{
    char ts[32];

    if (ms == INT64_MIN || fp_time_format_ms(ms, ts, sizeof(ts)) < 0)
        return put_null(out);
    return fp_buf_puts(out, ts);
}

static int put_double_or_null(fp_buf *out, bool present, double v)
{
    return present && !isnan(v) ? fp_json_put_double(out, v) : put_null(out);
}

static int put_int_or_null(fp_buf *out, int v)
{
    return v < 0 ? put_null(out) : fp_buf_put_i64(out, v);
}

int fp_rows_append_copy(fp_buf *out, const fp_record *r, fp_buf *scratch)
{
    const fp_enrichment *e = &r->enrichment;
    const fp_metric *ign = fp_record_metric(r, "ignition");
    bool pos = r->has_position;
    size_t mark = out->len;
    int rc = 0;

#define SEP()     (rc = rc < 0 ? rc : fp_buf_putc(out, '\t'))
#define PUT(expr) (rc = rc < 0 ? rc : (expr))
    PUT(put_text(out, r->device_id, strlen(r->device_id)));
    SEP();
    PUT(put_ts(out, r->ts_ms));
    SEP();
    PUT(put_ts(out, r->received_at_ms));
    SEP();
    PUT(r->format[0] != '\0' ? put_text(out, r->format, strlen(r->format)) : put_null(out));
    SEP();
    PUT(put_int_or_null(out, r->priority));
    SEP();
    PUT(put_int_or_null(out, r->event_io));
    SEP();
    PUT(put_double_or_null(out, pos, r->position.lat));
    SEP();
    PUT(put_double_or_null(out, pos, r->position.lon));
    SEP();
    PUT(put_double_or_null(out, pos, r->position.alt_m));
    SEP();
    PUT(put_double_or_null(out, pos, r->position.heading_deg));
    SEP();
    PUT(put_double_or_null(out, pos, r->position.speed_kmh));
    SEP();
    PUT(pos && r->position.satellites >= 0 ? fp_buf_put_i64(out, r->position.satellites)
                                           : put_null(out));
    SEP();
    PUT(ign != NULL && ign->kind == FP_METRIC_BOOL ? fp_buf_puts(out, ign->b ? "t" : "f")
                                                   : put_null(out));
    SEP();
    PUT(e->status != FP_ENRICH_NONE ? fp_buf_puts(out, fp_enrich_status_name(e->status))
                                    : put_null(out));
    SEP();
    PUT(put_str(out, r, e->site_id));
    SEP();
    PUT(put_str(out, r, e->site_name));
    SEP();
    PUT(put_str(out, r, e->address_display));
    SEP();
    PUT(put_str(out, r, e->address_road));
    SEP();
    PUT(put_str(out, r, e->address_city));
    SEP();
    PUT(put_str(out, r, e->address_postcode));
    SEP();
    PUT(put_str(out, r, e->address_country));
    SEP();
    PUT(put_str(out, r, e->address_country_code));
    SEP();
    PUT(put_str(out, r, e->asset_customer));
    SEP();
    PUT(put_str(out, r, e->asset_oem));
    SEP();
    PUT(put_str(out, r, e->asset_model));
    SEP();
    PUT(put_str(out, r, e->asset_serial));
    SEP();
    PUT(put_str(out, r, e->asset_machine_type));
    SEP();
    fp_buf_clear(scratch);
    PUT(r->metrics_len > 0 ? fp_record_encode_metrics_json(r, scratch) : 0);
    PUT(r->metrics_len > 0 ? put_text(out, scratch->data, scratch->len) : put_null(out));
    SEP();
    fp_buf_clear(scratch);
    PUT(r->io_len > 0 ? fp_record_encode_io_json(r, scratch) : 0);
    PUT(r->io_len > 0 ? put_text(out, scratch->data, scratch->len) : put_null(out));
    PUT(fp_buf_putc(out, '\n'));
#undef SEP
#undef PUT
    if (rc < 0)
        out->len = mark;
    return rc;
}
