/* fp_record: the canonical record, its decoder and its encoder (see fp_record.h). */
#include "fp_record.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "fp_json.h"
#include "fp_record_check.h"
#include "fp_time.h"

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

static const struct enrich_field site_fields[] = {
    ENRICH_FIELD("id", site_id),
    ENRICH_FIELD("name", site_name),
};

static const struct enrich_field address_fields[] = {
    ENRICH_FIELD("display_name", address_display),
    ENRICH_FIELD("road", address_road),
    ENRICH_FIELD("city", address_city),
    ENRICH_FIELD("postcode", address_postcode),
    ENRICH_FIELD("country", address_country),
    ENRICH_FIELD("country_code", address_country_code),
};

static const struct enrich_field asset_fields[] = {
    ENRICH_FIELD("customer", asset_customer),
    ENRICH_FIELD("oem", asset_oem),
    ENRICH_FIELD("model", asset_model),
    ENRICH_FIELD("serial_number", asset_serial),
    ENRICH_FIELD("machine_type", asset_machine_type),
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

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
static fp_io *push_io(fp_record *r, uint32_t id)
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
    fp_io *io = push_io(r, id);

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
    io = push_io(r, id);
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

/* Appends a metric named `name` with only its kind set; NULL when memory runs out. */
static fp_metric *push_metric(fp_record *r, const char *name, fp_metric_kind kind)
{
    fp_metric *items;
    fp_metric *m;
    fp_str n;
    bool ok;

    items = grow_items(r->metrics, r->metrics_len, &r->metrics_cap, sizeof(*r->metrics));
    if (items == NULL)
        return NULL;
    r->metrics = items;
    n = fp_record_put_str(r, name, strlen(name), &ok);
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
    fp_metric *m = push_metric(r, name, FP_METRIC_NUMBER);

    if (m == NULL)
        return -1;
    m->num = value;
    return 0;
}

int fp_record_add_metric_bool(fp_record *r, const char *name, bool value)
{
    fp_metric *m = push_metric(r, name, FP_METRIC_BOOL);

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
    m = push_metric(r, name, FP_METRIC_STRING);
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

const fp_metric *fp_record_metric(const fp_record *r, const char *name)
{
    size_t len = strlen(name);

    for (size_t i = 0; i < r->metrics_len; i++) {
        const fp_metric *m = &r->metrics[i];

        if (m->name.len == len && (len == 0 || memcmp(r->arena + m->name.off, name, len) == 0))
            return m;
    }
    return NULL;
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

/* ---- Decoder ----------------------------------------------------------------------------- */

/* Where a decode writes its error message. */
struct decode_ctx {
    fp_record *r;
    char *msg;
    size_t msg_size;
    const char *json; /* the whole input, for exact re-reading of large integers */
    size_t len;
};

/* Writes the error message (when there is room for one) and returns `code`. */
static int fail(struct decode_ctx *d, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct decode_ctx *d, int code, const char *fmt, ...)
{
    va_list ap;

    if (d->msg != NULL && d->msg_size > 0) {
        va_start(ap, fmt);
        if (vsnprintf(d->msg, d->msg_size, fmt, ap) < 0)
            d->msg[0] = '\0';
        va_end(ap);
    }
    return code;
}

/* Returns member `key` of obj, or NULL when it is absent or JSON null (both mean "not set"
 * for optional fields). */
static const cJSON *optional_item(const cJSON *obj, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

    return cJSON_IsNull(item) ? NULL : item;
}

/* True when item is a number holding an integer within [lo, hi]; stores it in *v. */
static bool int_in_range(const cJSON *item, double lo, double hi, int64_t *v)
{
    double x;

    if (!cJSON_IsNumber(item))
        return false;
    x = item->valuedouble;
    if (!(x >= lo && x <= hi) || x != trunc(x))
        return false;
    *v = (int64_t)x;
    return true;
}

/* Reads the optional RFC 3339 field `key` into *ms; absent leaves *ms untouched. */
static int decode_optional_time(struct decode_ctx *d, const cJSON *root, const char *key,
                                int64_t *ms)
{
    const cJSON *item = optional_item(root, key);

    if (item == NULL)
        return 0;
    if (!cJSON_IsString(item))
        return fail(d, FP_REC_ERR_SCHEMA, "%s: expected a string", key);
    if (fp_time_parse_ms(item->valuestring, strlen(item->valuestring), ms) != 0)
        return fail(d, FP_REC_ERR_TS, "%s: not an RFC 3339 timestamp: \"%.40s\"", key,
                    item->valuestring);
    return 0;
}

/* Reads the optional integer field `key` within [0, max] into *out; absent leaves it. */
static int decode_optional_uint(struct decode_ctx *d, const cJSON *obj, const char *path,
                                const char *key, double max, int *out)
{
    const cJSON *item = optional_item(obj, key);
    int64_t v;

    if (item == NULL)
        return 0;
    if (!int_in_range(item, 0, max, &v))
        return fail(d, FP_REC_ERR_SCHEMA, "%s%s: expected an integer 0..%.0f", path, key, max);
    *out = (int)v;
    return 0;
}

/* Reads a number of the position object: required ones must be present, all must be finite
 * and within [lo, hi]. */
static int decode_coord(struct decode_ctx *d, const cJSON *pos, const char *key, bool required,
                        double lo, double hi, double *out)
{
    const cJSON *item = optional_item(pos, key);

    if (item == NULL) {
        if (required)
            return fail(d, FP_REC_ERR_SCHEMA, "position.%s: missing", key);
        return 0;
    }
    if (!cJSON_IsNumber(item))
        return fail(d, FP_REC_ERR_SCHEMA, "position.%s: expected a number", key);
    if (!isfinite(item->valuedouble))
        return fail(d, FP_REC_ERR_SCHEMA, "position.%s: expected a finite number", key);
    if (!(item->valuedouble >= lo && item->valuedouble <= hi))
        return fail(d, FP_REC_ERR_SCHEMA, "position.%s: out of range [%g, %g]", key, lo, hi);
    *out = item->valuedouble;
    return 0;
}

static int decode_position(struct decode_ctx *d, const cJSON *pos)
{
    fp_position *p = &d->r->position;
    int rc;

    if (!cJSON_IsObject(pos))
        return fail(d, FP_REC_ERR_SCHEMA, "position: expected an object");
    fp_position_unknown(p);
    rc = decode_coord(d, pos, "lat", true, -90, 90, &p->lat);
    if (rc == 0)
        rc = decode_coord(d, pos, "lon", true, -180, 180, &p->lon);
    if (rc == 0)
        rc = decode_coord(d, pos, "alt_m", false, -HUGE_VAL, HUGE_VAL, &p->alt_m);
    if (rc == 0)
        rc = decode_coord(d, pos, "heading_deg", false, -HUGE_VAL, HUGE_VAL, &p->heading_deg);
    if (rc == 0)
        rc = decode_coord(d, pos, "speed_kmh", false, -HUGE_VAL, HUGE_VAL, &p->speed_kmh);
    if (rc == 0)
        rc = decode_optional_uint(d, pos, "position.", "satellites", 255, &p->satellites);
    if (rc == 0)
        d->r->has_position = true;
    return rc;
}

/* Parses an io key: 1 to 5 decimal digits with a value up to 65535. */
static bool parse_io_id(const char *key, uint32_t *id)
{
    uint32_t v = 0;
    size_t n = 0;

    if (key == NULL || key[0] == '\0')
        return false;
    for (; key[n] != '\0'; n++) {
        if (n >= 5 || key[n] < '0' || key[n] > '9')
            return false;
        v = v * 10 + (uint32_t)(key[n] - '0');
    }
    if (v > 65535)
        return false;
    *id = v;
    return true;
}

/* True when s holds an even number of hex digits (either case). */
static bool is_hex_text(const char *s, size_t len)
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

/* Small JSON skipping helpers for exact_big_io: the text was already accepted by cJSON, so it is
 * well-formed and they need not validate. */
static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* p points at the opening quote; returns the byte after the closing one. */
static const char *skip_string(const char *p, const char *end)
{
    for (p++; p < end && *p != '"'; p++)
        if (*p == '\\')
            p++;
    return p < end ? p + 1 : end;
}

/* Returns the byte after the value at p (string, number, literal, object or array). */
static const char *skip_value(const char *p, const char *end)
{
    int depth = 0;

    while (p < end) {
        char ch = *p;

        if (ch == '"') {
            p = skip_string(p, end);
            if (depth == 0)
                return p;
            continue;
        }
        if (ch == '{' || ch == '[') {
            depth++;
        } else if (ch == '}' || ch == ']') {
            if (depth == 0)
                return p;
            if (--depth == 0)
                return p + 1;
        } else if (depth == 0 &&
                   (ch == ',' || ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r')) {
            return p;
        }
        p++;
    }
    return end;
}

/* cJSON reads numbers as doubles, which hold integers exactly only up to 2^53, but IO values
 * are 64-bit. When a value is that large, the top-level "io" object is found again in the text
 * and its integers are read exactly, member by member in order (the order cJSON kept). A key
 * written with escapes ("\u0069o") is not found; its values then keep the double's precision. */
static void exact_big_io(const struct decode_ctx *d)
{
    const char *p = d->json, *end = d->json + d->len;
    fp_record *r = d->r;

    p = skip_ws(p, end);
    if (p >= end || *p != '{')
        return;
    for (p++;;) {
        const char *key;
        size_t klen;

        p = skip_ws(p, end);
        if (p >= end || *p != '"')
            return;
        key = p + 1;
        p = skip_string(p, end);
        klen = (size_t)(p - key) - 1;
        p = skip_ws(p, end);
        if (p >= end || *p != ':')
            return;
        p = skip_ws(p + 1, end);
        if (klen == 2 && memcmp(key, "io", 2) == 0 && p < end && *p == '{') {
            size_t i = 0;

            for (p++; i < r->io_len; i++) {
                uint64_t v = 0;
                bool exact = true;

                p = skip_ws(p, end);
                if (p >= end || *p != '"')
                    return;
                p = skip_ws(skip_string(p, end), end);
                if (p >= end || *p != ':')
                    return;
                p = skip_ws(p + 1, end);
                if (r->io[i].kind == FP_IO_UINT && p < end && *p >= '0' && *p <= '9') {
                    const char *q = p;

                    for (; q < end && *q >= '0' && *q <= '9'; q++) {
                        if (v > (UINT64_MAX - (uint64_t)(*q - '0')) / 10)
                            exact = false;
                        v = v * 10 + (uint64_t)(*q - '0');
                    }
                    /* Fractions or exponents ("1e3", "5.0") keep the double's reading. */
                    if (exact && q < end && *q != '.' && *q != 'e' && *q != 'E')
                        r->io[i].u = v;
                }
                p = skip_ws(skip_value(p, end), end);
                if (p < end && *p == ',')
                    p++;
            }
            return;
        }
        p = skip_ws(skip_value(p, end), end);
        if (p >= end || *p != ',')
            return;
        p++;
    }
}

static int decode_io(struct decode_ctx *d, const cJSON *io)
{
    fp_record *r = d->r;
    const cJSON *el;
    bool big = false;

    if (!cJSON_IsObject(io))
        return fail(d, FP_REC_ERR_SCHEMA, "io: expected an object");
    cJSON_ArrayForEach(el, io)
    {
        uint32_t id;

        if (!parse_io_id(el->string, &id))
            return fail(d, FP_REC_ERR_SCHEMA, "io: key \"%.32s\" is not an id 0..65535",
                        el->string != NULL ? el->string : "");
        if (r->io_len >= FP_ITEMS_MAX)
            return fail(d, FP_REC_ERR_SCHEMA, "io: more than %d elements", FP_ITEMS_MAX);

        if (cJSON_IsNumber(el)) {
            double v = el->valuedouble;

            if (!(v >= 0 && v <= TWO_POW_64) || v != trunc(v))
                return fail(d, FP_REC_ERR_SCHEMA, "io.%s: expected an unsigned integer",
                            el->string);
            /* Through cJSON's double, 18446744073709551615 (UINT64_MAX, which the encoder
             * writes) arrives as 2^64; it saturates instead of being rejected, and is read
             * exactly below. */
            if (v >= 9007199254740992.0)
                big = true;
            if (fp_record_add_io_uint(r, id, v >= TWO_POW_64 ? UINT64_MAX : (uint64_t)v) != 0)
                return fail(d, FP_REC_ERR_NOMEM, "io.%s: out of memory", el->string);
        } else if (cJSON_IsString(el)) {
            size_t len = strlen(el->valuestring);
            fp_io *slot;
            fp_str s;
            bool ok;

            if (!is_hex_text(el->valuestring, len))
                return fail(d, FP_REC_ERR_SCHEMA, "io.%s: expected a hex string", el->string);
            s = fp_record_put_str(r, el->valuestring, len, &ok);
            slot = ok ? push_io(r, id) : NULL;
            if (slot == NULL)
                return fail(d, FP_REC_ERR_NOMEM, "io.%s: out of memory", el->string);
            /* Stored lowercase, as the encoder and every producer write it. */
            for (size_t i = 0; i < len; i++) {
                char *c = &r->arena[s.off + i];

                if (*c >= 'A' && *c <= 'F')
                    *c = (char)(*c - 'A' + 'a');
            }
            slot->kind = FP_IO_HEX;
            slot->hex = s;
        } else {
            return fail(d, FP_REC_ERR_SCHEMA, "io.%s: expected an unsigned integer or a hex string",
                        el->string);
        }
    }
    if (big)
        exact_big_io(d);
    return 0;
}

static int decode_metrics(struct decode_ctx *d, const cJSON *metrics)
{
    fp_record *r = d->r;
    const cJSON *el;

    if (!cJSON_IsObject(metrics))
        return fail(d, FP_REC_ERR_SCHEMA, "metrics: expected an object");
    cJSON_ArrayForEach(el, metrics)
    {
        const char *name = el->string != NULL ? el->string : "";
        int rc;

        if (r->metrics_len >= FP_ITEMS_MAX)
            return fail(d, FP_REC_ERR_SCHEMA, "metrics: more than %d elements", FP_ITEMS_MAX);
        if (cJSON_IsNumber(el)) {
            if (!isfinite(el->valuedouble))
                return fail(d, FP_REC_ERR_SCHEMA, "metrics.%.64s: number out of range", name);
            rc = fp_record_add_metric_number(r, name, el->valuedouble);
        } else if (cJSON_IsBool(el)) {
            rc = fp_record_add_metric_bool(r, name, cJSON_IsTrue(el));
        } else if (cJSON_IsString(el)) {
            rc = fp_record_add_metric_string(r, name, el->valuestring, strlen(el->valuestring));
        } else {
            return fail(d, FP_REC_ERR_SCHEMA, "metrics.%.64s: expected a number, boolean or string",
                        name);
        }
        if (rc != 0)
            return fail(d, FP_REC_ERR_NOMEM, "metrics.%.64s: out of memory", name);
    }
    return 0;
}

/* Decodes one enrichment group ("site", "address", "asset"): absent or null leaves *has
 * false; each member is a string or absent/null. */
static int decode_enrich_group(struct decode_ctx *d, const cJSON *enr, const char *group,
                               const struct enrich_field *fields, size_t nfields, bool *has)
{
    const cJSON *obj = optional_item(enr, group);

    if (obj == NULL)
        return 0;
    if (!cJSON_IsObject(obj))
        return fail(d, FP_REC_ERR_SCHEMA, "enrichment.%s: expected an object", group);
    for (size_t i = 0; i < nfields; i++) {
        const cJSON *item = optional_item(obj, fields[i].name);
        fp_str *field = (fp_str *)((char *)&d->r->enrichment + fields[i].off);

        if (item == NULL)
            continue;
        if (!cJSON_IsString(item))
            return fail(d, FP_REC_ERR_SCHEMA, "enrichment.%s.%s: expected a string", group,
                        fields[i].name);
        if (fp_record_set_enrich_str(d->r, field, item->valuestring, strlen(item->valuestring)) !=
            0)
            return fail(d, FP_REC_ERR_NOMEM, "enrichment.%s.%s: out of memory", group,
                        fields[i].name);
    }
    *has = true;
    return 0;
}

static int decode_enrichment(struct decode_ctx *d, const cJSON *enr)
{
    fp_enrichment *e = &d->r->enrichment;
    const cJSON *status;
    int rc;

    if (!cJSON_IsObject(enr))
        return fail(d, FP_REC_ERR_SCHEMA, "enrichment: expected an object");
    status = cJSON_GetObjectItemCaseSensitive(enr, "status");
    if (!cJSON_IsString(status))
        return fail(d, FP_REC_ERR_SCHEMA, "enrichment.status: expected a string");
    if (strcmp(status->valuestring, "ok") == 0)
        e->status = FP_ENRICH_OK;
    else if (strcmp(status->valuestring, "partial") == 0)
        e->status = FP_ENRICH_PARTIAL;
    else if (strcmp(status->valuestring, "unavailable") == 0)
        e->status = FP_ENRICH_UNAVAILABLE;
    else
        return fail(d, FP_REC_ERR_SCHEMA, "enrichment.status: unknown value \"%.32s\"",
                    status->valuestring);

    rc = decode_enrich_group(d, enr, "site", site_fields, COUNT(site_fields), &e->has_site);
    if (rc == 0)
        rc = decode_enrich_group(d, enr, "address", address_fields, COUNT(address_fields),
                                 &e->has_address);
    if (rc == 0)
        rc = decode_enrich_group(d, enr, "asset", asset_fields, COUNT(asset_fields), &e->has_asset);
    return rc;
}

/* Finds an object member named twice anywhere below node (cJSON keeps both, and a reader takes
 * one or the other: the typed column the first, jsonb the last). Returns 0, or a negative
 * fp_record_err with the message. */
static int find_repeated_member(struct decode_ctx *d, const cJSON *node)
{
    fp_json_key local[16], *keys = local, repeated;
    const cJSON *c;
    size_t n = 0, i = 0;
    bool found;
    int rc;

    cJSON_ArrayForEach(c, node)
    {
        n++;
        if (cJSON_IsObject(c) || cJSON_IsArray(c)) {
            rc = find_repeated_member(d, c);
            if (rc != 0)
                return rc;
        }
    }
    if (!cJSON_IsObject(node) || n < 2)
        return 0;
    if (n > sizeof(local) / sizeof(local[0])) {
        keys = malloc(n * sizeof(*keys));
        if (keys == NULL)
            return fail(d, FP_REC_ERR_NOMEM, "record: out of memory");
    }
    cJSON_ArrayForEach(c, node)
    {
        keys[i].s = c->string != NULL ? c->string : "";
        keys[i].len = strlen(keys[i].s);
        i++;
    }
    found = fp_json_find_repeated_key(keys, n, &repeated);
    if (keys != local)
        free(keys);
    if (found)
        return fail(d, FP_REC_ERR_DUPLICATE, "record: member \"%.64s\" given twice in one object",
                    repeated.s);
    return 0;
}

/* Decodes the fields of a parsed JSON document into d->r, required ones first. */
static int decode_root(struct decode_ctx *d, const cJSON *root)
{
    fp_record *r = d->r;
    const cJSON *item;
    size_t n;
    int rc;

    if (!cJSON_IsObject(root))
        return fail(d, FP_REC_ERR_SCHEMA, "record: expected a JSON object");

    item = cJSON_GetObjectItemCaseSensitive(root, "schema");
    if (item == NULL)
        return fail(d, FP_REC_ERR_SCHEMA, "schema: missing");
    if (!cJSON_IsNumber(item))
        return fail(d, FP_REC_ERR_SCHEMA, "schema: expected a number");
    if (item->valuedouble != FP_RECORD_SCHEMA)
        return fail(d, FP_REC_ERR_SCHEMA, "schema: unsupported version %g", item->valuedouble);
    r->schema = FP_RECORD_SCHEMA;

    item = cJSON_GetObjectItemCaseSensitive(root, "device_id");
    if (item == NULL || cJSON_IsNull(item))
        return fail(d, FP_REC_ERR_DEVICE_ID, "device_id: missing");
    if (!cJSON_IsString(item))
        return fail(d, FP_REC_ERR_DEVICE_ID, "device_id: expected a string");
    n = strlen(item->valuestring);
    if (n == 0)
        return fail(d, FP_REC_ERR_DEVICE_ID, "device_id: empty");
    if (n >= FP_DEVICE_ID_MAX)
        return fail(d, FP_REC_ERR_DEVICE_ID, "device_id: longer than %d bytes",
                    FP_DEVICE_ID_MAX - 1);
    memcpy(r->device_id, item->valuestring, n + 1);

    item = cJSON_GetObjectItemCaseSensitive(root, "ts");
    if (item == NULL || cJSON_IsNull(item))
        return fail(d, FP_REC_ERR_TS, "ts: missing");
    if (!cJSON_IsString(item))
        return fail(d, FP_REC_ERR_TS, "ts: expected an RFC 3339 string");
    if (fp_time_parse_ms(item->valuestring, strlen(item->valuestring), &r->ts_ms) != 0)
        return fail(d, FP_REC_ERR_TS, "ts: not an RFC 3339 timestamp: \"%.40s\"",
                    item->valuestring);

    rc = decode_optional_time(d, root, "received_at", &r->received_at_ms);
    if (rc != 0)
        return rc;

    item = optional_item(root, "format");
    if (item != NULL) {
        if (!cJSON_IsString(item))
            return fail(d, FP_REC_ERR_SCHEMA, "format: expected a string");
        n = strlen(item->valuestring);
        if (n >= FP_FORMAT_MAX)
            return fail(d, FP_REC_ERR_SCHEMA, "format: longer than %d bytes", FP_FORMAT_MAX - 1);
        memcpy(r->format, item->valuestring, n + 1);
    }

    rc = decode_optional_uint(d, root, "", "priority", 255, &r->priority);
    if (rc == 0)
        rc = decode_optional_uint(d, root, "", "event_io", 65535, &r->event_io);
    if (rc != 0)
        return rc;

    item = optional_item(root, "position");
    if (item != NULL) {
        rc = decode_position(d, item);
        if (rc != 0)
            return rc;
    }
    item = optional_item(root, "io");
    if (item != NULL) {
        rc = decode_io(d, item);
        if (rc != 0)
            return rc;
    }
    item = optional_item(root, "metrics");
    if (item != NULL) {
        rc = decode_metrics(d, item);
        if (rc != 0)
            return rc;
    }
    item = optional_item(root, "enrichment");
    if (item != NULL)
        rc = decode_enrichment(d, item);
    return rc;
}

int fp_record_decode_json(fp_record *r, const char *json, size_t len, char *errmsg,
                          size_t errmsg_size)
{
    struct decode_ctx d = {r, errmsg, errmsg_size, json, len};
    const char *end = NULL;
    cJSON *root;
    int rc;

    fp_record_reset(r);
    if (errmsg != NULL && errmsg_size > 0)
        errmsg[0] = '\0';
    if (json == NULL || len == 0)
        return fail(&d, FP_REC_ERR_JSON, "json: empty input");
    /* Every string in the arena is at most as long as its JSON text, so a message within the
     * arena's cap can only fail to fit when memory itself runs out. */
    if (len > FP_ARENA_MAX)
        return fail(&d, FP_REC_ERR_SCHEMA, "record: larger than %zu bytes", FP_ARENA_MAX);

    /* JSON text is UTF-8 (RFC 8259). Refusing anything else keeps every stored string valid,
     * so that what is decoded encodes back to the same bytes. */
    {
        size_t bad = 0;

        if (!fp_json_utf8_valid(json, len, &bad))
            return fail(&d, FP_REC_ERR_JSON, "json: invalid UTF-8 at byte %zu", bad);
    }
    root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (root == NULL) {
        size_t at = end != NULL && end >= json && end <= json + len ? (size_t)(end - json) : 0;

        return fail(&d, FP_REC_ERR_JSON, "json: syntax error at byte %zu", at);
    }
    /* cJSON stops after the first value; anything but whitespace after it is not one JSON
     * document. */
    for (const char *p = end; p != NULL && p < json + len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(root);
            return fail(&d, FP_REC_ERR_JSON, "json: trailing data at byte %zu", (size_t)(p - json));
        }
    }

    /* cJSON cuts a string at U+0000; the text is read again so that none is lost unseen. */
    {
        size_t at = 0;

        if (fp_json_find_nul(json, len, &at)) {
            cJSON_Delete(root);
            return fail(&d, FP_REC_ERR_NUL, "json: U+0000 in a string at byte %zu", at);
        }
    }
    rc = find_repeated_member(&d, root);
    if (rc == 0)
        rc = decode_root(&d, root);
    if (rc == 0)
        rc = fp_record_check(r, errmsg, errmsg_size);
    cJSON_Delete(root);
    /* A failed decode leaves an empty record rather than a half-filled one. */
    if (rc != 0)
        fp_record_reset(r);
    return rc;
}

/* ---- Encoder ----------------------------------------------------------------------------- */

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

        if (s->len == 0)
            continue;
        if (!first)
            rc |= put_char(b, ',');
        first = false;
        rc |= fp_buf_append(b, fields[i].key, fields[i].key_len);
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
        rc |= put_enrich_group(b, r, site_fields, COUNT(site_fields));
    }
    if (e->has_address) {
        rc |= PUT_LIT(b, ",\"address\":");
        rc |= put_enrich_group(b, r, address_fields, COUNT(address_fields));
    }
    if (e->has_asset) {
        rc |= PUT_LIT(b, ",\"asset\":");
        rc |= put_enrich_group(b, r, asset_fields, COUNT(asset_fields));
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

/* Appends the metrics object, "{...}". */
static int put_metrics_object(fp_buf *b, const fp_record *r)
{
    int rc = 0;

    rc |= put_char(b, '{');
    for (size_t i = 0; i < r->metrics_len; i++) {
        const fp_metric *m = &r->metrics[i];

        if (i > 0)
            rc |= put_char(b, ',');
        rc |= fp_json_put_string(b, fp_record_str(r, m->name), m->name.len);
        rc |= put_char(b, ':');
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
    }
    rc |= put_char(b, '}');
    return rc;
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

/* A generous guess of the encoded size, so that one reservation covers almost every record
 * and the appends below never reallocate. */
static size_t encoded_size_hint(const fp_record *r)
{
    return 256 + FP_DEVICE_ID_MAX + FP_FORMAT_MAX + (r->has_position ? 160 : 0) + r->io_len * 32 +
           r->metrics_len * 40 + r->arena_len * 2 +
           (r->enrichment.status != FP_ENRICH_NONE ? 256 : 0);
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
    if (r->enrichment.status != FP_ENRICH_NONE)
        rc |= put_enrichment(out, r);
    rc |= put_char(out, '}');

    if (rc != 0) {
        out->len = start;
        return -1;
    }
    return 0;
}
