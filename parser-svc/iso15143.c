/* ISO 15143-3 (AEMP 2.0) fleet snapshot pages in JSON, from OEM telematics APIs; PROTOCOLS.md,
 * "ISO 15143-3 fleet snapshots".
 *
 * A page lists machines (`Equipment`), each with an `EquipmentHeader` naming it and elements
 * (`Location`, `CumulativeOperatingHours`, `FuelUsed`, ...) that each carry their own
 * `datetime`. The elements of one machine with the same datetime make one canonical record,
 * created at that datetime's first appearance, so the output keeps the page's order.
 *
 * Machines are independent: one that does not decode (no identifier, a unit nobody knows, a
 * broken element) is dropped and listed in the batch's failed items, and the others still
 * become records (decode.h). Only a payload that is not a fleet snapshot at all, or not JSON,
 * fails whole.
 *
 * Member names are matched without case (cJSON_GetObjectItem), since OEM feeds differ in
 * casing; units are matched without case from the spellings in the tables below. Work is
 * bounded by the payload: at most ISO_EQUIPMENT_MAX machines, and a machine's records are found
 * by a linear search over at most one record per element of ELEMENTS. */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parser-svc/decode.h"
#include "common/fp_json.h"
#include "common/fp_time.h"

#define ISO_EQUIPMENT_MAX 10000 /* machines in one payload, over all its pages */
#define ISO_PAGE_CODE     "iso15143_equipment"

/* A unit spelling and the factor to the canonical unit. */
typedef struct iso_unit {
    const char *name;
    double factor;
} iso_unit;

static const iso_unit length_units[] = {
    {"kilometre", 1000.0},
    {"kilometres", 1000.0},
    {"kilometer", 1000.0},
    {"kilometers", 1000.0},
    {"km", 1000.0},
    {"mile", 1609.344},
    {"miles", 1609.344},
    {"mi", 1609.344},
    {"metre", 1.0},
    {"metres", 1.0},
    {"meter", 1.0},
    {"meters", 1.0},
    {"m", 1.0},
    {NULL, 0.0},
};

static const iso_unit altitude_units[] = {
    {"metre", 1.0},   {"metres", 1.0},  {"meter", 1.0}, {"meters", 1.0}, {"m", 1.0},
    {"foot", 0.3048}, {"feet", 0.3048}, {"ft", 0.3048}, {NULL, 0.0},
};

static const iso_unit volume_units[] = {
    {"litre", 1.0},
    {"litres", 1.0},
    {"liter", 1.0},
    {"liters", 1.0},
    {"l", 1.0},
    {"gallon", 3.785411784},
    {"gallons", 3.785411784},
    {"gal", 3.785411784},
    {"us gallon", 3.785411784},
    {"us gallons", 3.785411784},
    {NULL, 0.0},
};

typedef enum iso_value_type { V_NUMBER, V_BOOL } iso_value_type;

/* An element that becomes one metric: where its value is, its unit (NULL: none), and the
 * canonical unit's factor table. The default unit applies when the element names none. */
typedef struct iso_element {
    const char *element;
    const char *member;
    const char *metric;
    iso_value_type type;
    const char *unit_member;
    const iso_unit *units;
    double default_factor;
} iso_element;

static const iso_element elements[] = {
    {"CumulativeOperatingHours", "Hour", "engine_hours_h", V_NUMBER, NULL, NULL, 1.0},
    {"CumulativeIdleHours", "Hour", "idle_hours_h", V_NUMBER, NULL, NULL, 1.0},
    {"CumulativeIdleNonOperatingHours", "Hour", "idle_non_operating_hours_h", V_NUMBER, NULL, NULL,
     1.0},
    {"CumulativeActiveRegenerationHours", "Hour", "regeneration_hours_h", V_NUMBER, NULL, NULL,
     1.0},
    {"CumulativePowerTakeOffHours", "Hour", "pto_hours_h", V_NUMBER, NULL, NULL, 1.0},
    {"Distance", "Odometer", "odometer_m", V_NUMBER, "OdometerUnits", length_units, 1000.0},
    {"FuelUsed", "FuelConsumed", "fuel_used_l", V_NUMBER, "FuelUnits", volume_units, 1.0},
    {"FuelUsedLast24", "FuelConsumed", "fuel_used_last24_l", V_NUMBER, "FuelUnits", volume_units,
     1.0},
    {"FuelRemaining", "Percent", "fuel_remaining_pct", V_NUMBER, NULL, NULL, 1.0},
    {"DEFRemaining", "Percent", "def_remaining_pct", V_NUMBER, NULL, NULL, 1.0},
    {"CumulativeLoadCount", "Count", "load_count", V_NUMBER, NULL, NULL, 1.0},
    {"EngineStatus", "Running", "ignition", V_BOOL, NULL, NULL, 1.0},
};

#define NELEMENTS (sizeof(elements) / sizeof(elements[0]))

/* What decoding one page's machines needs. */
typedef struct iso_ctx {
    const decode_input *in;
    fp_record_batch *out;
    decode_error *err; /* the payload's error (no_memory) */
    size_t index;      /* the machine's index over the whole payload */
    bool has_snapshot_time;
    int64_t snapshot_ms; /* the page's SnapshotTime, the datetime of elements without one */
} iso_ctx;

static bool is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* ---- Sniffing ------------------------------------------------------------------------------
 * The bytes are a snapshot when they are an object with a member named `Equipment` or `Fleet`
 * (without case), or an array whose first element is one. The top-level member names are read
 * without building anything: one pass, values skipped by depth. */

static size_t skip_space(const uint8_t *d, size_t len, size_t i)
{
    while (i < len && is_space(d[i]))
        i++;
    return i;
}

/* From the opening quote at d[i], the index just past the closing quote (len when none). */
static size_t skip_string(const uint8_t *d, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        if (d[i] == '\\')
            i++;
        else if (d[i] == '"')
            return i + 1;
    }
    return len;
}

/* From the first byte of a value at d[i], the index just past it (len when it never ends). */
static size_t skip_value(const uint8_t *d, size_t len, size_t i)
{
    size_t depth = 0;

    while (i < len) {
        uint8_t c = d[i];

        if (c == '"') {
            i = skip_string(d, len, i);
            if (depth == 0)
                return i;
            continue;
        }
        if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (depth == 0)
                return i; /* a scalar's end */
            if (--depth == 0)
                return i + 1;
        } else if (depth == 0 && (c == ',' || is_space(c))) {
            return i;
        }
        i++;
    }
    return len;
}

static bool name_is(const uint8_t *s, size_t len, const char *name)
{
    return strlen(name) == len && strncasecmp((const char *)s, name, len) == 0;
}

static bool iso15143_sniff(const uint8_t *data, size_t len)
{
    size_t i = skip_space(data, len, 0);

    if (i < len && data[i] == '[')
        i = skip_space(data, len, i + 1);
    if (i >= len || data[i] != '{')
        return false;
    i++;
    for (;;) {
        size_t start, end;

        i = skip_space(data, len, i);
        if (i >= len || data[i] != '"')
            return false;
        start = i + 1;
        i = skip_string(data, len, i);
        end = i - 1;
        if (i >= len)
            return false;
        if (name_is(data + start, end - start, "Equipment") ||
            name_is(data + start, end - start, "Fleet"))
            return true;
        i = skip_space(data, len, i);
        if (i >= len || data[i] != ':')
            return false;
        i = skip_value(data, len, skip_space(data, len, i + 1));
        i = skip_space(data, len, i);
        if (i >= len || data[i] != ',')
            return false;
        i++;
    }
}

/* ---- Values --------------------------------------------------------------------------------- */

/* Reads a number: a JSON number, or a string holding one (feeds converted from XML quote
 * them). Returns 1 and sets *v, 0 when absent or null, -1 when of another kind. */
static int read_number(const cJSON *item, double *v)
{
    if (item == NULL || cJSON_IsNull(item))
        return 0;
    if (cJSON_IsNumber(item)) {
        *v = item->valuedouble;
        return 1;
    }
    if (cJSON_IsString(item) && item->valuestring[0] != '\0') {
        char *end = NULL;

        *v = strtod(item->valuestring, &end);
        while (end != NULL && is_space((uint8_t)*end))
            end++;
        if (end != NULL && *end == '\0' && !is_space((uint8_t)item->valuestring[0]))
            return 1;
    }
    return -1;
}

/* Reads a boolean: true/false, "true"/"false" in any case, or the numbers 1/0. Returns as
 * read_number. */
static int read_bool(const cJSON *item, bool *v)
{
    if (item == NULL || cJSON_IsNull(item))
        return 0;
    if (cJSON_IsBool(item)) {
        *v = cJSON_IsTrue(item);
        return 1;
    }
    if (cJSON_IsString(item) && (strcasecmp(item->valuestring, "true") == 0 ||
                                 strcasecmp(item->valuestring, "false") == 0)) {
        *v = strcasecmp(item->valuestring, "true") == 0;
        return 1;
    }
    if (cJSON_IsNumber(item) && (item->valuedouble == 0 || item->valuedouble == 1)) {
        *v = item->valuedouble == 1;
        return 1;
    }
    return -1;
}

/* The factor of the unit named by `obj`'s member `unit_member` (default_factor when absent or
 * null). Returns 0, or -1 with why filled in. */
static int read_unit(const cJSON *obj, const char *element, const char *unit_member,
                     const iso_unit *units, double default_factor, double *factor,
                     decode_error *why)
{
    const cJSON *u = cJSON_GetObjectItem(obj, unit_member);
    char name[32];
    size_t n = 0, len;
    const char *s;

    *factor = default_factor;
    if (u == NULL || cJSON_IsNull(u))
        return 0;
    if (!cJSON_IsString(u))
        return decode_fail(why, "iso15143_value", "%s.%s: expected a string", element, unit_member);
    /* Spaces around the name are not part of it. */
    s = u->valuestring;
    while (is_space((uint8_t)*s))
        s++;
    len = strlen(s);
    while (len > 0 && is_space((uint8_t)s[len - 1]))
        len--;
    if (len < sizeof(name)) {
        memcpy(name, s, len);
        name[len] = '\0';
        for (n = 0; units[n].name != NULL; n++) {
            if (strcasecmp(units[n].name, name) == 0) {
                *factor = units[n].factor;
                return 0;
            }
        }
    }
    return decode_fail(why, "iso15143_unit", "%s.%s: unknown unit \"%.32s\"", element, unit_member,
                       u->valuestring);
}

/* ---- One machine ---------------------------------------------------------------------------- */

/* A machine's EquipmentHeader: its device id and the hints, which point into the cJSON tree
 * (NULL when absent or empty). */
typedef struct iso_header {
    char device_id[FP_DEVICE_ID_MAX];
    const char *oem, *model, *serial, *equipment_id;
} iso_header;

/* Stores one hint in a record's asset. Returns true, or false when memory runs out. */
static bool put_hint(fp_record *r, fp_str *field, const char *value)
{
    if (value == NULL)
        return true;
    r->enrichment.has_asset = true;
    return fp_record_set_enrich_str(r, field, value, strlen(value)) == 0;
}

/* The record of the machine's records (those from `first` on) at ts, created with the header's
 * hints when none is. NULL when memory runs out. */
static fp_record *record_at(iso_ctx *c, size_t first, int64_t ts, const iso_header *h)
{
    fp_record *r;
    bool ok;

    for (size_t i = first; i < c->out->len; i++)
        if (c->out->recs[i].ts_ms == ts)
            return &c->out->recs[i];
    r = decode_batch_next(c->out);
    if (r == NULL)
        return NULL;
    memcpy(r->device_id, h->device_id, sizeof(r->device_id));
    memcpy(r->format, "iso15143", sizeof("iso15143"));
    r->ts_ms = ts;
    ok = put_hint(r, &r->enrichment.asset_oem, h->oem) &&
         put_hint(r, &r->enrichment.asset_model, h->model) &&
         put_hint(r, &r->enrichment.asset_serial, h->serial);
    if (ok && h->equipment_id != NULL)
        ok = fp_record_add_metric_string(r, "equipment_id", h->equipment_id,
                                         strlen(h->equipment_id)) == 0;
    return ok ? r : NULL;
}

/* The element's time: its `datetime`, else the page's SnapshotTime. Returns 0, or -1 with why
 * filled in. */
static int element_time(const iso_ctx *c, const cJSON *obj, const char *element, int64_t *ts,
                        decode_error *why)
{
    const cJSON *dt = cJSON_GetObjectItem(obj, "datetime");

    if (dt == NULL || cJSON_IsNull(dt)) {
        if (!c->has_snapshot_time)
            return decode_fail(why, "iso15143_datetime",
                               "%s: no datetime, and the page has no SnapshotTime", element);
        *ts = c->snapshot_ms;
        return 0;
    }
    if (!cJSON_IsString(dt) || fp_time_parse_ms(dt->valuestring, strlen(dt->valuestring), ts) < 0)
        return decode_fail(why, "iso15143_datetime", "%s.datetime: not an RFC 3339 date-time",
                           element);
    return 0;
}

/* Reads the EquipmentHeader: the device id is the PIN, else OEMName:SerialNumber, else
 * EquipmentID. Returns 0, or -1 with why filled in. */
static int read_header(const cJSON *machine, iso_header *out, decode_error *why)
{
    static const char *const names[] = {"PIN", "OEMName", "SerialNumber", "EquipmentID", "Model"};
    const char *v[5] = {NULL, NULL, NULL, NULL, NULL};
    const cJSON *h = cJSON_GetObjectItem(machine, "EquipmentHeader");
    int n;

    if (h != NULL && !cJSON_IsNull(h) && !cJSON_IsObject(h))
        return decode_fail(why, "iso15143_value", "EquipmentHeader: expected an object");
    for (size_t i = 0; h != NULL && i < 5; i++) {
        const cJSON *item = cJSON_GetObjectItem(h, names[i]);

        if (item == NULL || cJSON_IsNull(item))
            continue;
        if (!cJSON_IsString(item))
            return decode_fail(why, "iso15143_value", "EquipmentHeader.%s: expected a string",
                               names[i]);
        if (item->valuestring[0] != '\0')
            v[i] = item->valuestring;
    }
    if (v[0] != NULL)
        n = snprintf(out->device_id, sizeof(out->device_id), "%s", v[0]);
    else if (v[1] != NULL && v[2] != NULL)
        n = snprintf(out->device_id, sizeof(out->device_id), "%s:%s", v[1], v[2]);
    else if (v[3] != NULL)
        n = snprintf(out->device_id, sizeof(out->device_id), "%s", v[3]);
    else
        return decode_fail(why, "iso15143_no_identifier",
                           "EquipmentHeader has no PIN, no OEMName with SerialNumber, and no "
                           "EquipmentID");
    if (n < 0 || (size_t)n >= sizeof(out->device_id))
        return decode_fail(why, "bad_device_id", "the machine's identifier is longer than %d bytes",
                           FP_DEVICE_ID_MAX - 1);
    out->oem = v[1];
    out->serial = v[2];
    out->equipment_id = v[3];
    out->model = v[4];
    return 0;
}

/* Location: latitude and longitude together, altitude in metres or feet. Returns 0, 1 when
 * memory runs out, or -1 with why filled in. */
static int read_location(iso_ctx *c, const cJSON *machine, size_t first, const iso_header *h,
                         decode_error *why)
{
    const cJSON *loc = cJSON_GetObjectItem(machine, "Location");
    double lat = 0, lon = 0, alt = 0, factor = 1;
    int has_lat, has_lon, has_alt;
    int64_t ts;
    fp_record *r;

    if (loc == NULL || cJSON_IsNull(loc))
        return 0;
    if (!cJSON_IsObject(loc))
        return decode_fail(why, "iso15143_value", "Location: expected an object");
    has_lat = read_number(cJSON_GetObjectItem(loc, "Latitude"), &lat);
    has_lon = read_number(cJSON_GetObjectItem(loc, "Longitude"), &lon);
    has_alt = read_number(cJSON_GetObjectItem(loc, "Altitude"), &alt);
    if (has_lat < 0 || has_lon < 0 || has_alt < 0)
        return decode_fail(why, "iso15143_value",
                           "Location: Latitude, Longitude and Altitude are numbers");
    if (has_lat == 0 && has_lon == 0)
        return 0;
    if (has_lat == 0 || has_lon == 0)
        return decode_fail(why, "bad_position", "Location: %s without %s",
                           has_lat ? "Latitude" : "Longitude", has_lat ? "Longitude" : "Latitude");
    if (!(lat >= -90 && lat <= 90) || !(lon >= -180 && lon <= 180))
        return decode_fail(why, "bad_position", "Location: %g, %g outside +-90, +-180", lat, lon);
    if (has_alt &&
        read_unit(loc, "Location", "AltitudeUnits", altitude_units, 1.0, &factor, why) < 0)
        return -1;
    if (element_time(c, loc, "Location", &ts, why) < 0)
        return -1;
    r = record_at(c, first, ts, h);
    if (r == NULL)
        return 1;
    r->has_position = true;
    fp_position_unknown(&r->position);
    r->position.lat = lat;
    r->position.lon = lon;
    if (has_alt)
        r->position.alt_m = alt * factor;
    return 0;
}

/* One element of the table. Returns as read_location. */
static int read_element(iso_ctx *c, const cJSON *machine, const iso_element *el, size_t first,
                        const iso_header *h, decode_error *why)
{
    const cJSON *obj = cJSON_GetObjectItem(machine, el->element);
    double v = 0, factor = el->default_factor;
    bool b = false;
    int has;
    int64_t ts;
    fp_record *r;

    if (obj == NULL || cJSON_IsNull(obj))
        return 0;
    if (!cJSON_IsObject(obj))
        return decode_fail(why, "iso15143_value", "%s: expected an object", el->element);
    if (el->type == V_BOOL)
        has = read_bool(cJSON_GetObjectItem(obj, el->member), &b);
    else
        has = read_number(cJSON_GetObjectItem(obj, el->member), &v);
    if (has < 0)
        return decode_fail(why, "iso15143_value", "%s.%s: expected %s", el->element, el->member,
                           el->type == V_BOOL ? "true or false" : "a number");
    if (has == 0)
        return 0; /* an element without its value says nothing */
    if (el->units != NULL && read_unit(obj, el->element, el->unit_member, el->units,
                                       el->default_factor, &factor, why) < 0)
        return -1;
    if (el->type == V_NUMBER && !isfinite(v * factor))
        return decode_fail(why, "iso15143_value", "%s.%s: not a finite number", el->element,
                           el->member);
    if (element_time(c, obj, el->element, &ts, why) < 0)
        return -1;
    r = record_at(c, first, ts, h);
    if (r == NULL)
        return 1;
    if (el->type == V_BOOL)
        return fp_record_add_metric_bool(r, el->metric, b) < 0 ? 1 : 0;
    return fp_record_add_metric_number(r, el->metric, v * factor) < 0 ? 1 : 0;
}

/* Decodes one machine into its records. Returns 0, 1 when memory runs out, or -1 with why
 * filled in (the caller drops what it added). */
static int decode_machine(iso_ctx *c, const cJSON *machine, decode_error *why)
{
    iso_header h;
    size_t first = c->out->len;
    int rc;

    if (!cJSON_IsObject(machine))
        return decode_fail(why, "iso15143_value", "a machine is a JSON object");
    rc = read_header(machine, &h, why);
    if (rc == 0)
        rc = read_location(c, machine, first, &h, why);
    for (size_t i = 0; rc == 0 && i < NELEMENTS; i++)
        rc = read_element(c, machine, &elements[i], first, &h, why);
    /* Whatever the database could not store fails this machine only. */
    for (size_t i = first; rc == 0 && i < c->out->len; i++)
        rc = decode_check_record(&c->out->recs[i], c->in, why);
    return rc;
}

/* Decodes the next machine of the payload; one that fails is dropped and listed in out's
 * failed items. Returns 0, or -1 with c->err filled in (no_memory, too many machines). */
static int next_machine(iso_ctx *c, const cJSON *machine)
{
    decode_error why = {0};
    size_t first = c->out->len;
    int rc;

    if (c->index >= ISO_EQUIPMENT_MAX)
        return decode_fail(c->err, "iso15143_too_large", "more than %d machines in the payload",
                           ISO_EQUIPMENT_MAX);
    rc = decode_machine(c, machine, &why);
    if (rc == 1)
        return decode_fail(c->err, "no_memory", "out of memory");
    if (rc < 0) {
        c->out->len = first;
        if (decode_batch_fail_item(c->out, ISO_PAGE_CODE, c->index, &why) < 0)
            return decode_fail(c->err, "no_memory", "out of memory");
    }
    c->index++;
    c->out->items = c->index;
    return 0;
}

/* The machines of one page. Returns 0, or -1 with c->err filled in. */
static int decode_page(iso_ctx *c, const cJSON *page)
{
    const cJSON *equipment = cJSON_GetObjectItem(page, "Equipment");
    const cJSON *snapshot = cJSON_GetObjectItem(page, "SnapshotTime");
    const cJSON *machine;

    c->has_snapshot_time = cJSON_IsString(snapshot) &&
                           fp_time_parse_ms(snapshot->valuestring, strlen(snapshot->valuestring),
                                            &c->snapshot_ms) == 0;
    /* An object is a page of one machine, as XML converters write it. */
    if (cJSON_IsObject(equipment))
        return next_machine(c, equipment);
    cJSON_ArrayForEach(machine, equipment)
    {
        if (next_machine(c, machine) < 0)
            return -1;
    }
    return 0;
}

/* The page an element of the payload is: itself, or its `Fleet` member, when it has an
 * `Equipment` member that is an array, an object or null. NULL when it is no page. */
static const cJSON *page_of(const cJSON *node)
{
    const cJSON *fleet = cJSON_GetObjectItem(node, "Fleet");
    const cJSON *equipment;

    if (!cJSON_IsObject(node))
        return NULL;
    if (cJSON_IsObject(fleet) && cJSON_GetObjectItem(node, "Equipment") == NULL)
        node = fleet;
    equipment = cJSON_GetObjectItem(node, "Equipment");
    if (cJSON_IsArray(equipment) || cJSON_IsObject(equipment) || cJSON_IsNull(equipment))
        return node;
    return NULL;
}

/* Decodes a payload of one page or an array of pages. Returns 0 (some machines may have
 * failed: out->failed), or -1 with err filled in and nothing left in out. */
static int iso15143_decode(const decode_input *in, fp_record_batch *out, decode_error *err)
{
    iso_ctx c = {in, out, err, 0, false, 0};
    const char *json = (const char *)in->data;
    const char *end = NULL;
    const cJSON *node;
    cJSON *root = NULL;
    size_t at = 0;
    int rc = -1;

    if (!fp_json_utf8_valid(json, in->len, &at)) {
        decode_fail(err, "json_syntax", "json: invalid UTF-8 at byte %zu", at);
        goto done;
    }
    if (fp_json_find_nul(json, in->len, &at)) {
        decode_fail(err, "nul_character", "json: U+0000 in a string at byte %zu", at);
        goto done;
    }
    root = cJSON_ParseWithLengthOpts(json, in->len, &end, 0);
    if (root == NULL) {
        at = end != NULL && end >= json && end <= json + in->len ? (size_t)(end - json) : 0;
        decode_fail(err, "json_syntax", "json: syntax error at byte %zu", at);
        goto done;
    }
    for (const char *p = end; p != NULL && p < json + in->len; p++) {
        if (!is_space((uint8_t)*p)) {
            decode_fail(err, "json_syntax", "json: trailing data at byte %zu", (size_t)(p - json));
            goto done;
        }
    }
    /* Every page first: a payload that is not all pages is refused before anything decodes. */
    if (cJSON_IsArray(root) ? cJSON_GetArraySize(root) == 0 : page_of(root) == NULL) {
        decode_fail(err, "iso15143_not_snapshot",
                    "not an ISO 15143-3 snapshot: expected an object with an Equipment array "
                    "(or a Fleet object holding one), or an array of them");
        goto done;
    }
    if (cJSON_IsArray(root)) {
        size_t page = 0;

        cJSON_ArrayForEach(node, root)
        {
            if (page_of(node) == NULL) {
                decode_fail(err, "iso15143_not_snapshot",
                            "not an ISO 15143-3 snapshot: page %zu has no Equipment array", page);
                goto done;
            }
            page++;
        }
    }
    if (!cJSON_IsArray(root)) {
        rc = decode_page(&c, page_of(root));
    } else {
        rc = 0;
        cJSON_ArrayForEach(node, root)
        {
            rc = decode_page(&c, page_of(node));
            if (rc < 0)
                break;
        }
    }
done:
    if (rc < 0)
        decode_batch_clear(out);
    cJSON_Delete(root);
    return rc;
}

const decoder decoder_iso15143 = {
    .name = "iso15143",
    .content_types = "application/iso15143-snapshot+json",
    .sniff = iso15143_sniff,
    .decode = iso15143_decode,
};
