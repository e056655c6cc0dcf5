/* fp_record_check: what a canonical record must hold to be stored (see fp_record_check.h). */
#include "common/fp_record_check.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fp_json.h"
#include "common/fp_record_internal.h"
#include "common/fp_time.h"

#define SMALLINT_MAX 32767

/* True when PostgreSQL's real (float4) takes the double as written by the sink: NaN is "not
 * reported" (NULL), a magnitude up to FLT_MAX fits, and a non-zero one below the smallest
 * subnormal float would be refused as an underflow. */
static bool fits_real(double v)
{
    double a = fabs(v);

    return isnan(v) || (a <= FLT_MAX && (a == 0 || a >= FLT_TRUE_MIN));
}

static int check_position(const fp_position *p, char *msg, size_t msg_size)
{
    static const struct {
        const char *name;
        size_t off;
    } reals[] = {
        {"alt_m", offsetof(fp_position, alt_m)},
        {"heading_deg", offsetof(fp_position, heading_deg)},
        {"speed_kmh", offsetof(fp_position, speed_kmh)},
    };

    if (!(p->lat >= -90 && p->lat <= 90) || !(p->lon >= -180 && p->lon <= 180))
        return fp_record_refuse(msg, msg_size, FP_REC_ERR_RANGE,
                                "position: (%g, %g) is outside latitude ±90 and longitude ±180",
                                p->lat, p->lon);
    for (size_t i = 0; i < sizeof(reals) / sizeof(reals[0]); i++) {
        double v = *(const double *)(const void *)((const char *)p + reals[i].off);

        if (!fits_real(v))
            return fp_record_refuse(
                msg, msg_size, FP_REC_ERR_RANGE,
                "position.%s: %g is outside the range of its column's type real "
                "(0 or a magnitude from %g to %g)",
                reals[i].name, v, (double)FLT_TRUE_MIN, (double)FLT_MAX);
    }
    if (p->satellites < -1 || p->satellites > SMALLINT_MAX)
        return fp_record_refuse(msg, msg_size, FP_REC_ERR_RANGE,
                                "position.satellites: %d is outside its column's type smallint",
                                p->satellites);
    return 0;
}

/* True when len bytes at s hold a NUL. */
static bool has_nul(const fp_record *r, fp_str s)
{
    return s.len > 0 && memchr(fp_record_str(r, s), '\0', s.len) != NULL;
}

/* Up to this many items are compared pair by pair (fp_json_find_repeated_key's own limit). */
#define PAIRWISE_MAX 16

/* Item i's name as a key: the metric's name, or the IO id's bytes. */
static fp_json_key item_key(const fp_record *r, bool io, size_t i)
{
    if (io)
        return (fp_json_key){(const char *)&r->io[i].id, sizeof(r->io[i].id)};
    return (fp_json_key){fp_record_str(r, r->metrics[i].name), r->metrics[i].name.len};
}

/* A 6-bit digest of item i's name: equal names have equal digests. */
static unsigned item_digest(const fp_record *r, bool io, size_t i)
{
    fp_json_key k;

    if (io)
        return r->io[i].id & 63u;
    k = item_key(r, io, i);
    return k.len == 0
               ? 0
               : (unsigned)(k.len * 7 + (unsigned char)k.s[0] + (unsigned char)k.s[k.len - 1] * 3) &
                     63u;
}

/* For n <= PAIRWISE_MAX items: the first item whose name an earlier one has, or SIZE_MAX, as
 * comparing every pair would find it. A mask of the digests seen so far spares the comparisons
 * for nearly every item. */
static size_t first_repeated_item(const fp_record *r, bool io, size_t n)
{
    uint64_t seen = 0;

    for (size_t i = 0; i < n; i++) {
        uint64_t bit = (uint64_t)1 << item_digest(r, io, i);

        if (seen & bit) {
            fp_json_key k = item_key(r, io, i);

            for (size_t j = 0; j < i; j++) {
                fp_json_key o = item_key(r, io, j);

                if (o.len == k.len && (k.len == 0 || memcmp(o.s, k.s, k.len) == 0))
                    return i;
            }
        }
        seen |= bit;
    }
    return SIZE_MAX;
}

/* Checks that no two items are named alike: metric names, or IO ids (as their bytes). Returns 0
 * or a negative fp_record_err with the message. */
static int check_unique(const fp_record *r, bool io, char *msg, size_t msg_size)
{
    size_t n = io ? r->io_len : r->metrics_len;
    fp_json_key repeated = {NULL, 0};
    bool found;

    if (n < 2)
        return 0;
    if (n <= PAIRWISE_MAX) {
        size_t i = first_repeated_item(r, io, n);

        found = i != SIZE_MAX;
        if (found)
            repeated = item_key(r, io, i);
    } else {
        fp_json_key local[32], *keys = local;

        if (n > sizeof(local) / sizeof(local[0])) {
            keys = malloc(n * sizeof(*keys));
            if (keys == NULL)
                return fp_record_refuse(msg, msg_size, FP_REC_ERR_NOMEM, "record: out of memory");
        }
        for (size_t i = 0; i < n; i++)
            keys[i] = item_key(r, io, i);
        found = fp_json_find_repeated_key(keys, n, &repeated);
        if (keys != local)
            free(keys);
    }
    if (!found)
        return 0;
    if (io) {
        uint32_t id;

        memcpy(&id, repeated.s, sizeof(id));
        return fp_record_refuse(msg, msg_size, FP_REC_ERR_DUPLICATE, "io.%u: given twice",
                                (unsigned)id);
    }
    return fp_record_refuse(msg, msg_size, FP_REC_ERR_DUPLICATE, "metrics.%.*s: given twice",
                            (int)(repeated.len < 64 ? repeated.len : 64), repeated.s);
}

static int check_device_id(const char *id, char *msg, size_t msg_size)
{
    size_t n = strnlen(id, FP_DEVICE_ID_MAX);

    if (n == 0 || n == FP_DEVICE_ID_MAX)
        return fp_record_refuse(msg, msg_size, FP_REC_ERR_DEVICE_ID,
                                "device_id: empty or longer than %d bytes", FP_DEVICE_ID_MAX - 1);
    if (strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
        return fp_record_refuse(msg, msg_size, FP_REC_ERR_BAD_DEVICE_ID,
                                "device_id: \"%s\" is a path's dot segment, no device id", id);
    return 0;
}

/* 0001-01-01T00:00:00.000Z: timestamptz has no year 0 (its text input refuses "0000-…"). */
#define YEAR_1_MS (-INT64_C(719162) * 86400000)

/* A timestamp (INT64_MIN when absent) a timestamptz column stores: years 0001 to 9999. */
static int check_time(const char *name, int64_t ms, char *msg, size_t msg_size)
{
    if (ms == INT64_MIN || (ms >= YEAR_1_MS && fp_time_in_range(ms)))
        return 0;
    return fp_record_refuse(msg, msg_size, FP_REC_ERR_RANGE,
                            "%s: %lld ms since 1970 is outside the years 0001 to 9999 of its "
                            "column's type timestamptz",
                            name, (long long)ms);
}

int fp_record_check(const fp_record *r, char *msg, size_t msg_size)
{
    const fp_enrichment *e = &r->enrichment;
    const fp_str texts[] = {
        e->site_id,           e->site_name,        e->address_display, e->address_road,
        e->address_city,      e->address_postcode, e->address_country, e->address_country_code,
        e->asset_customer,    e->asset_oem,        e->asset_model,     e->asset_serial,
        e->asset_machine_type};
    bool arena_nul;
    int rc;

    if (msg != NULL && msg_size > 0)
        msg[0] = '\0';
    rc = check_device_id(r->device_id, msg, msg_size);
    if (rc != 0)
        return rc;
    rc = check_time("ts", r->ts_ms, msg, msg_size);
    if (rc == 0)
        rc = check_time("received_at", r->received_at_ms, msg, msg_size);
    if (rc != 0)
        return rc;
    if (r->priority < -1 || r->priority > SMALLINT_MAX)
        return fp_record_refuse(msg, msg_size, FP_REC_ERR_RANGE,
                                "priority: %d is outside its column's type smallint", r->priority);
    if (r->event_io < -1)
        return fp_record_refuse(msg, msg_size, FP_REC_ERR_RANGE, "event_io: %d is negative",
                                r->event_io);
    if (r->has_position) {
        rc = check_position(&r->position, msg, msg_size);
        if (rc != 0)
            return rc;
    }
    /* Every string lives in the arena: when it holds no NUL at all (nearly always), no string
     * does, and one scan spares a search per string. */
    arena_nul = r->arena_len > 0 && memchr(r->arena, '\0', r->arena_len) != NULL;
    for (size_t i = 0; i < r->metrics_len; i++) {
        const fp_metric *m = &r->metrics[i];

        if (arena_nul &&
            (has_nul(r, m->name) || (m->kind == FP_METRIC_STRING && has_nul(r, m->str))))
            return fp_record_refuse(msg, msg_size, FP_REC_ERR_NUL,
                                    "metrics: a name or a text holds U+0000");
        if (m->kind == FP_METRIC_NUMBER && !isfinite(m->num))
            return fp_record_refuse(
                msg, msg_size, FP_REC_ERR_RANGE, "metrics.%.*s: not a finite number",
                (int)(m->name.len < 64 ? m->name.len : 64), fp_record_str(r, m->name));
    }
    for (size_t i = 0; arena_nul && i < sizeof(texts) / sizeof(texts[0]); i++)
        if (has_nul(r, texts[i]))
            return fp_record_refuse(msg, msg_size, FP_REC_ERR_NUL,
                                    "enrichment: a text holds U+0000");
    rc = check_unique(r, false, msg, msg_size);
    if (rc == 0)
        rc = check_unique(r, true, msg, msg_size);
    return rc;
}
