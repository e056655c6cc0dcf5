/* fp_record_decode: canonical JSON → fp_record through a cJSON tree, the reference decoder
 * (fp_record_decode_json_cjson in fp_record_internal.h). The hot path reads records with the
 * direct reader (fp_record_read.c), which must accept, refuse and produce exactly what this file
 * does; this one stays for the tests and the differential fuzzer that hold the two together.
 *
 * Contract (fp_record_decode_json in fp_record.h): the text is checked whole before any field is
 * read (UTF-8, one JSON document, every \u escape four hex digits, no U+0000, no member named
 * twice), then decoded with cJSON, required fields first, then handed to fp_record_check. The
 * record is reset first and is empty again after any failure, which returns a negative
 * fp_record_err with a human-readable reason. IO values above 2^53 are read again from the text,
 * so 64-bit values survive cJSON's doubles. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "common/fp_json.h"
#include "common/fp_record.h"
#include "common/fp_record_check.h"
#include "common/fp_record_internal.h"
#include "common/fp_time.h"

/* 2^64 as a double, the first value beyond uint64_t. */
#define TWO_POW_64 18446744073709551616.0

/* Where a decode writes its error message. */
struct decode_ctx {
    fp_record *r;
    char *msg;
    size_t msg_size;
    const char *json; /* the whole input, for exact re-reading of large integers */
    size_t len;
    const cJSON *root; /* the parsed document, whose members are in the text's order */
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

/* Small JSON skipping helpers for exact_big_io: the text was already accepted by cJSON, so it is
 * well-formed and they need not validate. Whitespace is what cJSON skips: every byte up to 0x20. */
static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (unsigned char)*p <= 0x20)
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
        } else if (depth == 0 && (ch == ',' || (unsigned char)ch <= 0x20)) {
            return p;
        }
        p++;
    }
    return end;
}

/* cJSON reads numbers as doubles, which hold integers exactly only up to 2^53, but IO values
 * are 64-bit. When a value is that large, the top-level "io" object is found again in the text
 * (as the member at the same place among the root's, however its name is written) and its
 * integers are read exactly, member by member in order (the order cJSON kept). */
static void exact_big_io(const struct decode_ctx *d, const cJSON *io)
{
    const char *p = d->json, *end = d->json + d->len;
    fp_record *r = d->r;
    size_t index = 0;

    for (const cJSON *c = d->root->child; c != NULL && c != io; c = c->next)
        index++;
    /* cJSON skips a UTF-8 byte order mark at the start of a text of at least five bytes. */
    if (d->len >= 5 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
        p += 3;
    p = skip_ws(p, end);
    if (p >= end || *p != '{')
        return;
    for (p++;; index--) {
        p = skip_ws(p, end);
        if (p >= end || *p != '"')
            return;
        p = skip_ws(skip_string(p, end), end);
        if (p >= end || *p != ':')
            return;
        p = skip_ws(p + 1, end);
        if (index == 0 && p < end && *p == '{') {
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

        if (!fp_record_io_id(el->string, strlen(el->string), &id))
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

            if (!fp_record_is_hex_text(el->valuestring, len))
                return fail(d, FP_REC_ERR_SCHEMA, "io.%s: expected a hex string", el->string);
            s = fp_record_put_str(r, el->valuestring, len, &ok);
            slot = ok ? fp_record_push_io(r, id) : NULL;
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
        exact_big_io(d, io);
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
    if (strcmp(status->valuestring, "none") == 0)
        e->status = FP_ENRICH_NONE; /* not enriched yet: hints from the decoder */
    else if (strcmp(status->valuestring, "ok") == 0)
        e->status = FP_ENRICH_OK;
    else if (strcmp(status->valuestring, "partial") == 0)
        e->status = FP_ENRICH_PARTIAL;
    else if (strcmp(status->valuestring, "unavailable") == 0)
        e->status = FP_ENRICH_UNAVAILABLE;
    else
        return fail(d, FP_REC_ERR_SCHEMA, "enrichment.status: unknown value \"%.32s\"",
                    status->valuestring);

    rc = decode_enrich_group(d, enr, "site", fp_record_site_fields, COUNT(fp_record_site_fields),
                             &e->has_site);
    if (rc == 0)
        rc = decode_enrich_group(d, enr, "address", fp_record_address_fields,
                                 COUNT(fp_record_address_fields), &e->has_address);
    if (rc == 0)
        rc = decode_enrich_group(d, enr, "asset", fp_record_asset_fields,
                                 COUNT(fp_record_asset_fields), &e->has_asset);
    /* "none" exists only to carry hints; without one it is not what any encoder writes. */
    if (rc == 0 && e->status == FP_ENRICH_NONE && !e->has_site && !e->has_address && !e->has_asset)
        return fail(d, FP_REC_ERR_SCHEMA,
                    "enrichment.status: \"none\" without site, address "
                    "or asset");
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

/* Returns true when a \u escape in the JSON text s[0..len) is not followed by four hex digits
 * (cJSON reads such an escape as U+0000 and silently cuts the string there), and then sets *at
 * to the backslash's offset. Like fp_json_find_nul it skips each escaped character. */
static bool find_bad_u_escape(const char *s, size_t len, size_t *at)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '\\')
            continue;
        if (i + 1 < len && s[i + 1] == 'u') {
            for (size_t k = i + 2; k < i + 6; k++) {
                char c = k < len ? s[k] : '\0';

                if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
                    *at = i;
                    return true;
                }
            }
        }
        i++;
    }
    return false;
}

int fp_record_decode_json_cjson(fp_record *r, const char *json, size_t len, char *errmsg,
                                size_t errmsg_size)
{
    struct decode_ctx d = {r, errmsg, errmsg_size, json, len, NULL};
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

    {
        size_t at = 0;

        if (find_bad_u_escape(json, len, &at)) {
            cJSON_Delete(root);
            return fail(&d, FP_REC_ERR_JSON, "json: \\u escape without four hex digits at byte %zu",
                        at);
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
    d.root = root;
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
