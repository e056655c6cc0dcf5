/* Unit tests of common/fp_record.c: the canonical record's encoder and decoder. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fp_buf.h"
#include "common/fp_json.h"
#include "common/fp_record.h"
#include "common/fp_record_check.h"
#include "fp_test.h"

/* The example record of README.md, "Architecture and contracts" (canonical record, schema
 * 1), as printed there. */
static const char design_example[] =
    "{\n"
    "  \"schema\": 1,\n"
    "  \"device_id\": \"356307042441013\",\n"
    "  \"ts\": \"2026-03-02T07:45:12.000Z\",\n"
    "  \"received_at\": \"2026-03-02T07:45:13.204Z\",\n"
    "  \"format\": \"teltonika.codec8e\",\n"
    "  \"priority\": 0,\n"
    "  \"event_io\": 239,\n"
    "  \"position\": {\"lat\": 55.6761234, \"lon\": 12.5683371, \"alt_m\": 31, \"heading_deg\": "
    "270,\n"
    "               \"speed_kmh\": 0, \"satellites\": 9},\n"
    "  \"io\": {\"239\": 1, \"66\": 24310, \"16\": 1532006, \"256\": \"57463158\"},\n"
    "  \"metrics\": {\"ignition\": true, \"external_voltage_v\": 24.31, \"odometer_m\": "
    "1532006}\n"
    "}\n";

/* The same record in the encoder's compact form. */
static const char design_compact[] =
    "{\"schema\":1,\"device_id\":\"356307042441013\",\"ts\":\"2026-03-02T07:45:12.000Z\","
    "\"received_at\":\"2026-03-02T07:45:13.204Z\",\"format\":\"teltonika.codec8e\","
    "\"priority\":0,\"event_io\":239,\"position\":{\"lat\":55.6761234,\"lon\":12.5683371,"
    "\"alt_m\":31,\"heading_deg\":270,\"speed_kmh\":0,\"satellites\":9},"
    "\"io\":{\"239\":1,\"66\":24310,\"16\":1532006,\"256\":\"57463158\"},"
    "\"metrics\":{\"ignition\":true,\"external_voltage_v\":24.31,\"odometer_m\":1532006}}";

/* A record with every field, enrichment included, in the encoder's form. */
static const char full_compact[] =
    "{\"schema\":1,\"device_id\":\"352093086000001\",\"ts\":\"2025-11-30T23:59:59.999Z\","
    "\"received_at\":\"2025-12-01T00:00:00.250Z\",\"format\":\"teltonika.codec16\","
    "\"priority\":2,\"event_io\":0,\"position\":{\"lat\":-33.8688197,\"lon\":-151.2092955,"
    "\"alt_m\":-12.5,\"heading_deg\":359,\"speed_kmh\":87.25,\"satellites\":14},"
    "\"io\":{\"0\":0,\"65535\":18446744073709551615,\"385\":\"00ff10ab\",\"387\":\"\"},"
    "\"metrics\":{\"ignition\":false,\"engine_hours_h\":12345.6,\"fuel_pct\":-0.5,"
    "\"din1\":true,\"fw\":\"03.28.07 \\\"rev\\\\2\\\"\",\"empty\":\"\",\"\":0},"
    "\"enrichment\":{\"status\":\"ok\",\"site\":{\"id\":\"site-17\",\"name\":\"Nordhavn "
    "depot\"},\"address\":{\"display_name\":\"Sundkrogsgade 21, 2150 Nordhavn, Danmark\","
    "\"road\":\"Sundkrogsgade\",\"city\":\"K\303\270benhavn\",\"postcode\":\"2150\","
    "\"country\":\"Danmark\",\"country_code\":\"dk\"},\"asset\":{\"customer\":\"Acme "
    "Construction\",\"oem\":\"Volvo\",\"model\":\"EC220E\",\"serial_number\":\"VCEC220EV00012345\","
    "\"machine_type\":\"excavator\"}}}";

/* Decodes a C string from an exact-size heap copy (so that AddressSanitizer catches reads
 * past its end). */
static int decode(fp_record *r, const char *json, char *err, size_t err_size)
{
    size_t len = strlen(json);
    char *copy = malloc(len > 0 ? len : 1);
    int rc;

    if (copy == NULL)
        return -100;
    memcpy(copy, json, len);
    rc = fp_record_decode_json(r, copy, len, err, err_size);
    free(copy);
    return rc;
}

/* Encodes r into b (cleared first) and returns the text, or "(failed)". */
static const char *encode(const fp_record *r, fp_buf *b)
{
    fp_buf_clear(b);
    if (fp_record_encode_json(r, b) != 0)
        return "(failed)";
    return fp_buf_cstr(b);
}

/* Checks that json decodes, re-encodes to `expect`, and that the result decodes and
 * re-encodes to itself. */
static void check_round_trip(const char *json, const char *expect, int line)
{
    fp_record r;
    fp_buf b1, b2;
    char err[128];
    int rc;

    fp_record_init(&r);
    fp_buf_init(&b1);
    fp_buf_init(&b2);
    rc = decode(&r, json, err, sizeof(err));
    if (rc != 0) {
        fp_test_fail(__FILE__, line, "decode failed (%d): %s", rc, err);
    } else {
        const char *first = encode(&r, &b1);

        if (strcmp(first, expect) != 0)
            fp_test_fail(__FILE__, line, "encoded\n  %s\nexpected\n  %s", first, expect);
        rc = decode(&r, first, err, sizeof(err));
        if (rc != 0)
            fp_test_fail(__FILE__, line, "second decode failed (%d): %s", rc, err);
        else if (strcmp(encode(&r, &b2), first) != 0)
            fp_test_fail(__FILE__, line, "second encode differs:\n  %s\n  %s", b2.data, first);
    }
    fp_buf_free(&b1);
    fp_buf_free(&b2);
    fp_record_free(&r);
}

/* Compares a stored string with a C string. */
static bool str_is(const fp_record *r, fp_str s, const char *expect)
{
    return s.len == strlen(expect) &&
           (s.len == 0 || memcmp(fp_record_str(r, s), expect, s.len) == 0);
}

/* Fills r with the README's example through the builder API. */
static void build_design_example(fp_record *r)
{
    static const uint8_t nx[] = {0x57, 0x46, 0x31, 0x58};

    fp_record_reset(r);
    memcpy(r->device_id, "356307042441013", 16);
    r->ts_ms = 1772437512000;
    r->received_at_ms = 1772437513204;
    memcpy(r->format, "teltonika.codec8e", 18);
    r->priority = 0;
    r->event_io = 239;
    r->has_position = true;
    r->position = (fp_position){55.6761234, 12.5683371, 31, 270, 0, 9};
    FP_CHECK_INT(fp_record_add_io_uint(r, 239, 1), 0);
    FP_CHECK_INT(fp_record_add_io_uint(r, 66, 24310), 0);
    FP_CHECK_INT(fp_record_add_io_uint(r, 16, 1532006), 0);
    FP_CHECK_INT(fp_record_add_io_hex(r, 256, nx, sizeof(nx)), 0);
    FP_CHECK_INT(fp_record_add_metric_bool(r, "ignition", true), 0);
    FP_CHECK_INT(fp_record_add_metric_number(r, "external_voltage_v", 24.31), 0);
    FP_CHECK_INT(fp_record_add_metric_number(r, "odometer_m", 1532006), 0);
}

/* A metric whose name is marked plain is written as the same bytes as one that is not, also when
 * the buffer must grow for it. */
FP_TEST(record_plain_metric_names_encode_alike)
{
    static const char *const names[] = {"ignition", "external_voltage_v", "a", "x y/z"};
    fp_record r;
    fp_buf scanned, copied;

    fp_record_init(&r);
    fp_buf_init(&scanned);
    fp_buf_init(&copied);
    memcpy(r.device_id, "d", 2);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        FP_CHECK_INT(fp_record_add_metric_number(&r, names[i], (double)i + 0.5), 0);
    FP_CHECK_INT(fp_record_add_metric_bool(&r, "on", true), 0);
    FP_CHECK_INT(fp_record_add_metric_string(&r, "vin", "W0L", 3), 0);
    FP_CHECK_INT(fp_record_encode_metrics_json(&r, &scanned), 0);
    for (size_t i = 0; i < r.metrics_len; i++) {
        FP_CHECK(!r.metrics[i].name_plain); /* as pushed */
        r.metrics[i].name_plain = true;
    }
    /* One byte at a time: every name then needs the buffer to grow. */
    for (size_t cap = 1; cap < 8; cap++) {
        fp_buf_free(&copied);
        fp_buf_init(&copied);
        FP_CHECK_INT(fp_buf_reserve(&copied, cap), 0);
        FP_CHECK_INT(fp_record_encode_metrics_json(&r, &copied), 0);
        FP_CHECK_STR(fp_buf_cstr(&copied), fp_buf_cstr(&scanned));
    }
    FP_CHECK_STR(fp_buf_cstr(&scanned), "{\"ignition\":0.5,\"external_voltage_v\":1.5,\"a\":2.5,"
                                        "\"x y/z\":3.5,\"on\":true,\"vin\":\"W0L\"}");
    fp_buf_free(&scanned);
    fp_buf_free(&copied);
    fp_record_free(&r);
}

FP_TEST(record_golden_encode)
{
    fp_record r;
    fp_buf b;

    fp_record_init(&r);
    fp_buf_init(&b);
    build_design_example(&r);
    FP_CHECK_STR(encode(&r, &b), design_compact);

    /* Appending keeps what the buffer held, and the enrichment goes last. */
    r.enrichment.status = FP_ENRICH_PARTIAL;
    r.enrichment.has_site = true;
    FP_CHECK_INT(fp_record_set_enrich_str(&r, &r.enrichment.site_id, "site-7", 6), 0);
    r.enrichment.has_address = true;
    FP_CHECK_INT(fp_record_set_enrich_str(&r, &r.enrichment.address_city, "K\303\270benhavn", 10),
                 0);
    FP_CHECK_INT(fp_record_set_enrich_str(&r, &r.enrichment.address_country_code, "dk", 2), 0);
    fp_buf_clear(&b);
    fp_buf_puts(&b, "prefix:");
    FP_CHECK_INT(fp_record_encode_json(&r, &b), 0);
    FP_CHECK_STR(fp_buf_cstr(&b),
                 "prefix:{\"schema\":1,\"device_id\":\"356307042441013\","
                 "\"ts\":\"2026-03-02T07:45:12.000Z\",\"received_at\":\"2026-03-02T07:45:13.204Z\","
                 "\"format\":\"teltonika.codec8e\",\"priority\":0,\"event_io\":239,"
                 "\"position\":{\"lat\":55.6761234,\"lon\":12.5683371,\"alt_m\":31,"
                 "\"heading_deg\":270,\"speed_kmh\":0,\"satellites\":9},"
                 "\"io\":{\"239\":1,\"66\":24310,\"16\":1532006,\"256\":\"57463158\"},"
                 "\"metrics\":{\"ignition\":true,\"external_voltage_v\":24.31,"
                 "\"odometer_m\":1532006},\"enrichment\":{\"status\":\"partial\","
                 "\"site\":{\"id\":\"site-7\"},\"address\":{\"city\":\"K\303\270benhavn\","
                 "\"country_code\":\"dk\"}}}");

    /* Unavailable enrichment: only the status. */
    fp_record_reset(&r);
    memcpy(r.device_id, "d", 2);
    r.enrichment.status = FP_ENRICH_UNAVAILABLE;
    FP_CHECK_STR(encode(&r, &b),
                 "{\"schema\":1,\"device_id\":\"d\",\"ts\":\"1970-01-01T00:00:00.000Z\","
                 "\"enrichment\":{\"status\":\"unavailable\"}}");

    fp_buf_free(&b);
    fp_record_free(&r);
}

FP_TEST(record_design_example_decodes)
{
    fp_record r;
    char err[128] = "untouched";
    const fp_metric *m;

    fp_record_init(&r);
    FP_CHECK_INT(decode(&r, design_example, err, sizeof(err)), FP_REC_OK);
    FP_CHECK_STR(err, "");
    FP_CHECK_INT(r.schema, 1);
    FP_CHECK_STR(r.device_id, "356307042441013");
    FP_CHECK_INT(r.ts_ms, 1772437512000);
    FP_CHECK_INT(r.received_at_ms, 1772437513204);
    FP_CHECK_STR(r.format, "teltonika.codec8e");
    FP_CHECK_INT(r.priority, 0);
    FP_CHECK_INT(r.event_io, 239);
    FP_CHECK(r.has_position);
    FP_CHECK(r.position.lat == 55.6761234);
    FP_CHECK(r.position.lon == 12.5683371);
    FP_CHECK(r.position.alt_m == 31);
    FP_CHECK(r.position.heading_deg == 270);
    FP_CHECK(r.position.speed_kmh == 0);
    FP_CHECK_INT(r.position.satellites, 9);

    FP_CHECK_INT(r.io_len, 4);
    if (r.io_len == 4) {
        FP_CHECK(r.io[0].id == 239 && r.io[0].kind == FP_IO_UINT && r.io[0].u == 1);
        FP_CHECK(r.io[1].id == 66 && r.io[1].kind == FP_IO_UINT && r.io[1].u == 24310);
        FP_CHECK(r.io[2].id == 16 && r.io[2].kind == FP_IO_UINT && r.io[2].u == 1532006);
        FP_CHECK(r.io[3].id == 256 && r.io[3].kind == FP_IO_HEX);
        FP_CHECK_MEM(fp_record_str(&r, r.io[3].hex), r.io[3].hex.len, "57463158");
    }

    FP_CHECK_INT(r.metrics_len, 3);
    m = fp_record_metric(&r, "ignition");
    FP_CHECK(m != NULL && m->kind == FP_METRIC_BOOL && m->b);
    m = fp_record_metric(&r, "external_voltage_v");
    FP_CHECK(m != NULL && m->kind == FP_METRIC_NUMBER && m->num == 24.31);
    m = fp_record_metric(&r, "odometer_m");
    FP_CHECK(m != NULL && m->kind == FP_METRIC_NUMBER && m->num == 1532006);
    FP_CHECK(fp_record_metric(&r, "odometer") == NULL);
    FP_CHECK(fp_record_metric(&r, "odometer_m_") == NULL);

    FP_CHECK_INT(r.enrichment.status, FP_ENRICH_NONE);
    fp_record_free(&r);

    check_round_trip(design_example, design_compact, __LINE__);
}

FP_TEST(record_full_round_trip)
{
    fp_record r;
    const fp_enrichment *e;
    const fp_metric *m;

    check_round_trip(full_compact, full_compact, __LINE__);

    fp_record_init(&r);
    FP_CHECK_INT(decode(&r, full_compact, NULL, 0), 0);
    FP_CHECK(r.position.lat == -33.8688197 && r.position.lon == -151.2092955);
    FP_CHECK(r.position.alt_m == -12.5 && r.position.speed_kmh == 87.25);
    FP_CHECK_INT(r.io_len, 4);
    if (r.io_len == 4) {
        FP_CHECK(r.io[1].id == 65535 && r.io[1].u == UINT64_MAX);
        FP_CHECK(r.io[3].kind == FP_IO_HEX && r.io[3].hex.len == 0);
    }
    m = fp_record_metric(&r, "fw");
    FP_CHECK(m != NULL && m->kind == FP_METRIC_STRING);
    if (m != NULL)
        FP_CHECK_MEM(fp_record_str(&r, m->str), m->str.len, "03.28.07 \"rev\\2\"");
    m = fp_record_metric(&r, "");
    FP_CHECK(m != NULL && m->kind == FP_METRIC_NUMBER && m->num == 0);

    e = &r.enrichment;
    FP_CHECK_INT(e->status, FP_ENRICH_OK);
    FP_CHECK(e->has_site && e->has_address && e->has_asset);
    FP_CHECK(str_is(&r, e->site_id, "site-17"));
    FP_CHECK(str_is(&r, e->site_name, "Nordhavn depot"));
    FP_CHECK(str_is(&r, e->address_display, "Sundkrogsgade 21, 2150 Nordhavn, Danmark"));
    FP_CHECK(str_is(&r, e->address_road, "Sundkrogsgade"));
    FP_CHECK(str_is(&r, e->address_city, "K\303\270benhavn"));
    FP_CHECK(str_is(&r, e->address_postcode, "2150"));
    FP_CHECK(str_is(&r, e->address_country, "Danmark"));
    FP_CHECK(str_is(&r, e->address_country_code, "dk"));
    FP_CHECK(str_is(&r, e->asset_customer, "Acme Construction"));
    FP_CHECK(str_is(&r, e->asset_oem, "Volvo"));
    FP_CHECK(str_is(&r, e->asset_model, "EC220E"));
    FP_CHECK(str_is(&r, e->asset_serial, "VCEC220EV00012345"));
    FP_CHECK(str_is(&r, e->asset_machine_type, "excavator"));
    fp_record_free(&r);
}

FP_TEST(record_strings_escaping_unicode)
{
    fp_record r;
    fp_buf b;
    const fp_metric *m;

    fp_record_init(&r);
    fp_buf_init(&b);
    memcpy(r.device_id, "a\"b\\c\x01", 7);
    r.ts_ms = 0;
    FP_CHECK_INT(
        fp_record_add_metric_string(&r, "site \"\xc3\x98\"", "\xe6\x9d\xb1\xe4\xba\xac\n\t", 8), 0);
    /* Invalid UTF-8 is replaced, so the output is always valid JSON text. */
    FP_CHECK_INT(fp_record_add_metric_string(&r, "bad",
                                             "x\xff"
                                             "y",
                                             3),
                 0);
    r.enrichment.status = FP_ENRICH_OK;
    r.enrichment.has_address = true;
    FP_CHECK_INT(
        fp_record_set_enrich_str(&r, &r.enrichment.address_city, "\xe6\x9d\xb1\xe4\xba\xac", 6), 0);

    const char *expect =
        "{\"schema\":1,\"device_id\":\"a\\\"b\\\\c\\u0001\",\"ts\":\"1970-01-01T00:00:00.000Z\","
        "\"metrics\":{\"site \\\"\xc3\x98\\\"\":\"\xe6\x9d\xb1\xe4\xba\xac\\n\\t\","
        "\"bad\":\"x\xef\xbf\xbdy\"},\"enrichment\":{\"status\":\"ok\",\"address\":{\"city\":"
        "\"\xe6\x9d\xb1\xe4\xba\xac\"}}}";
    FP_CHECK_STR(encode(&r, &b), expect);

    FP_CHECK_INT(decode(&r, expect, NULL, 0), 0);
    FP_CHECK_STR(r.device_id, "a\"b\\c\x01");
    m = fp_record_metric(&r, "site \"\xc3\x98\"");
    FP_CHECK(m != NULL && m->kind == FP_METRIC_STRING);
    if (m != NULL)
        FP_CHECK_MEM(fp_record_str(&r, m->str), m->str.len, "\xe6\x9d\xb1\xe4\xba\xac\n\t");
    FP_CHECK(str_is(&r, r.enrichment.address_city, "\xe6\x9d\xb1\xe4\xba\xac"));
    check_round_trip(expect, expect, __LINE__);

    /* JSON escapes on input, \u escapes of non-ASCII included, come out as UTF-8. */
    FP_CHECK_INT(decode(&r,
                        "{\"schema\":1,\"device_id\":\"\\u00d8\\u6771\\u4eac\\ud83d\\ude9c\","
                        "\"ts\":\"2026-03-02T07:45:12Z\"}",
                        NULL, 0),
                 0);
    FP_CHECK_STR(r.device_id, "\xc3\x98\xe6\x9d\xb1\xe4\xba\xac\xf0\x9f\x9a\x9c");
    fp_buf_free(&b);
    fp_record_free(&r);
}

FP_TEST(record_negative_coordinates)
{
    static const char json[] =
        "{\"schema\":1,\"device_id\":\"x\",\"ts\":\"1999-12-31T23:59:59.000Z\","
        "\"position\":{\"lat\":-54.8019121,\"lon\":-68.3029511,\"alt_m\":-3,"
        "\"heading_deg\":0.5,\"speed_kmh\":0.25,\"satellites\":0}}";
    fp_record r;

    check_round_trip(json, json, __LINE__);
    fp_record_init(&r);
    FP_CHECK_INT(decode(&r, json, NULL, 0), 0);
    FP_CHECK(r.position.lat == -54.8019121 && r.position.lon == -68.3029511);
    FP_CHECK(r.position.alt_m == -3);
    FP_CHECK_INT(r.position.satellites, 0);
    fp_record_free(&r);

    /* The extremes of the ranges are valid; what the position did not report stays out
     * (no invented zeros: satellites 0 would claim "no fix"). */
    check_round_trip("{\"schema\":1,\"device_id\":\"x\",\"ts\":\"1999-12-31T23:59:59.000Z\","
                     "\"position\":{\"lat\":-90,\"lon\":180}}",
                     "{\"schema\":1,\"device_id\":\"x\",\"ts\":\"1999-12-31T23:59:59.000Z\","
                     "\"position\":{\"lat\":-90,\"lon\":180}}",
                     __LINE__);
}

FP_TEST(record_optional_fields_omitted)
{
    fp_record r;
    fp_buf b;

    fp_record_init(&r);
    fp_buf_init(&b);
    FP_CHECK_INT(r.received_at_ms, INT64_MIN);
    FP_CHECK_INT(r.priority, -1);
    FP_CHECK_INT(r.event_io, -1);
    memcpy(r.device_id, "356307042441013", 16);
    r.ts_ms = 1772437512000;
    FP_CHECK_STR(encode(&r, &b), "{\"schema\":1,\"device_id\":\"356307042441013\","
                                 "\"ts\":\"2026-03-02T07:45:12.000Z\"}");

    /* Null counts as absent, unknown keys are ignored, offsets are normalised to UTC. */
    FP_CHECK_INT(decode(&r,
                        "{\"unknown\":[1,{\"a\":null}],\"ts\":\"2026-03-02T09:45:12+02:00\","
                        "\"device_id\":\"356307042441013\",\"schema\":1.0,\"received_at\":null,"
                        "\"format\":null,\"priority\":null,\"event_io\":null,\"position\":null,"
                        "\"io\":null,\"metrics\":null,\"enrichment\":null}",
                        NULL, 0),
                 0);
    FP_CHECK_INT(r.received_at_ms, INT64_MIN);
    FP_CHECK_STR(r.format, "");
    FP_CHECK_INT(r.priority, -1);
    FP_CHECK_INT(r.event_io, -1);
    FP_CHECK(!r.has_position);
    FP_CHECK_INT(r.io_len, 0);
    FP_CHECK_INT(r.metrics_len, 0);
    FP_CHECK_INT(r.enrichment.status, FP_ENRICH_NONE);
    FP_CHECK_STR(encode(&r, &b), "{\"schema\":1,\"device_id\":\"356307042441013\","
                                 "\"ts\":\"2026-03-02T07:45:12.000Z\"}");

    /* Empty io and metrics objects are omitted; empty enrichment groups are kept. */
    check_round_trip("{\"schema\":1,\"device_id\":\"d\",\"ts\":\"2026-03-02T07:45:12Z\",\"io\":{},"
                     "\"metrics\":{},\"enrichment\":{\"status\":\"partial\",\"site\":{},"
                     "\"address\":{\"road\":null,\"city\":\"\"}}}",
                     "{\"schema\":1,\"device_id\":\"d\",\"ts\":\"2026-03-02T07:45:12.000Z\","
                     "\"enrichment\":{\"status\":\"partial\",\"site\":{},\"address\":{}}}",
                     __LINE__);
    fp_buf_free(&b);
    fp_record_free(&r);
}

FP_TEST(record_hex_io_lowercased)
{
    fp_record r;

    check_round_trip("{\"schema\":1,\"device_id\":\"d\",\"ts\":\"2026-03-02T07:45:12.000Z\","
                     "\"io\":{\"00385\":\"ABcdEF09\",\"1\":4.0}}",
                     "{\"schema\":1,\"device_id\":\"d\",\"ts\":\"2026-03-02T07:45:12.000Z\","
                     "\"io\":{\"385\":\"abcdef09\",\"1\":4}}",
                     __LINE__);
    fp_record_init(&r);
    FP_CHECK_INT(fp_record_add_io_hex(&r, 7, (const uint8_t *)"\x00\x0a\xff", 3), 0);
    FP_CHECK_INT(r.io_len, 1);
    FP_CHECK_MEM(fp_record_str(&r, r.io[0].hex), r.io[0].hex.len, "000aff");
    fp_record_free(&r);
}

/* One decode error case: input, expected code, expected message (exact). */
struct error_case {
    const char *json;
    int code;
    const char *msg;
};

FP_TEST(record_decode_errors)
{
#define HEAD "{\"schema\":1,\"device_id\":\"d\",\"ts\":\"2026-03-02T07:45:12Z\","
    static const struct error_case cases[] = {
        {"{", FP_REC_ERR_JSON, "json: syntax error at byte 0"},
        {"{\"schema\":1,", FP_REC_ERR_JSON, NULL},
        {"not json", FP_REC_ERR_JSON, NULL},
        {"{\"schema\":1} {}", FP_REC_ERR_JSON, "json: trailing data at byte 13"},
        {"[1,2]", FP_REC_ERR_SCHEMA, "record: expected a JSON object"},
        {"\"text\"", FP_REC_ERR_SCHEMA, "record: expected a JSON object"},
        {"{}", FP_REC_ERR_SCHEMA, "schema: missing"},
        {"{\"schema\":\"1\",\"device_id\":\"d\"}", FP_REC_ERR_SCHEMA, "schema: expected a number"},
        {"{\"schema\":2,\"device_id\":\"d\",\"ts\":\"2026-03-02T07:45:12Z\"}", FP_REC_ERR_SCHEMA,
         "schema: unsupported version 2"},
        {"{\"schema\":1}", FP_REC_ERR_DEVICE_ID, "device_id: missing"},
        {"{\"schema\":1,\"device_id\":null}", FP_REC_ERR_DEVICE_ID, "device_id: missing"},
        {"{\"schema\":1,\"device_id\":356307042441013}", FP_REC_ERR_DEVICE_ID,
         "device_id: expected a string"},
        {"{\"schema\":1,\"device_id\":\"\"}", FP_REC_ERR_DEVICE_ID, "device_id: empty"},
        {"{\"schema\":1,\"device_id\":"
         "\"0123456789012345678901234567890123456789012345678901234567890123\"}",
         FP_REC_ERR_DEVICE_ID, "device_id: longer than 63 bytes"},
        {"{\"schema\":1,\"device_id\":\"d\"}", FP_REC_ERR_TS, "ts: missing"},
        {"{\"schema\":1,\"device_id\":\"d\",\"ts\":1772437512000}", FP_REC_ERR_TS,
         "ts: expected an RFC 3339 string"},
        {"{\"schema\":1,\"device_id\":\"d\",\"ts\":\"2026-13-01T00:00:00Z\"}", FP_REC_ERR_TS,
         "ts: not an RFC 3339 timestamp: \"2026-13-01T00:00:00Z\""},
        {HEAD "\"received_at\":\"yesterday\"}", FP_REC_ERR_TS,
         "received_at: not an RFC 3339 timestamp: \"yesterday\""},
        {HEAD "\"received_at\":5}", FP_REC_ERR_SCHEMA, "received_at: expected a string"},
        {HEAD "\"format\":7}", FP_REC_ERR_SCHEMA, "format: expected a string"},
        {HEAD "\"format\":\"0123456789abcdef0123456789abcdef\"}", FP_REC_ERR_SCHEMA,
         "format: longer than 31 bytes"},
        {HEAD "\"priority\":\"0\"}", FP_REC_ERR_SCHEMA, "priority: expected an integer 0..255"},
        {HEAD "\"priority\":-1}", FP_REC_ERR_SCHEMA, "priority: expected an integer 0..255"},
        {HEAD "\"event_io\":1.5}", FP_REC_ERR_SCHEMA, "event_io: expected an integer 0..65535"},
        {HEAD "\"position\":[]}", FP_REC_ERR_SCHEMA, "position: expected an object"},
        {HEAD "\"position\":{\"lat\":\"55.6\",\"lon\":12}}", FP_REC_ERR_SCHEMA,
         "position.lat: expected a number"},
        {HEAD "\"position\":{\"lon\":12}}", FP_REC_ERR_SCHEMA, "position.lat: missing"},
        {HEAD "\"position\":{\"lat\":55}}", FP_REC_ERR_SCHEMA, "position.lon: missing"},
        {HEAD "\"position\":{\"lat\":90.0000001,\"lon\":12}}", FP_REC_ERR_SCHEMA,
         "position.lat: out of range [-90, 90]"},
        {HEAD "\"position\":{\"lat\":1,\"lon\":-180.5}}", FP_REC_ERR_SCHEMA,
         "position.lon: out of range [-180, 180]"},
        {HEAD "\"position\":{\"lat\":1,\"lon\":2,\"alt_m\":true}}", FP_REC_ERR_SCHEMA,
         "position.alt_m: expected a number"},
        {HEAD "\"position\":{\"lat\":1,\"lon\":2,\"speed_kmh\":1e999}}", FP_REC_ERR_SCHEMA,
         "position.speed_kmh: expected a finite number"},
        {HEAD "\"position\":{\"lat\":1,\"lon\":2,\"satellites\":256}}", FP_REC_ERR_SCHEMA,
         "position.satellites: expected an integer 0..255"},
        {HEAD "\"position\":{\"lat\":1,\"lon\":2,\"satellites\":9.5}}", FP_REC_ERR_SCHEMA,
         "position.satellites: expected an integer 0..255"},
        {HEAD "\"io\":[1]}", FP_REC_ERR_SCHEMA, "io: expected an object"},
        {HEAD "\"io\":{\"abc\":1}}", FP_REC_ERR_SCHEMA, "io: key \"abc\" is not an id 0..65535"},
        {HEAD "\"io\":{\"65536\":1}}", FP_REC_ERR_SCHEMA,
         "io: key \"65536\" is not an id 0..65535"},
        {HEAD "\"io\":{\"-1\":1}}", FP_REC_ERR_SCHEMA, "io: key \"-1\" is not an id 0..65535"},
        {HEAD "\"io\":{\"\":1}}", FP_REC_ERR_SCHEMA, "io: key \"\" is not an id 0..65535"},
        {HEAD "\"io\":{\"1\":-1}}", FP_REC_ERR_SCHEMA, "io.1: expected an unsigned integer"},
        {HEAD "\"io\":{\"1\":0.5}}", FP_REC_ERR_SCHEMA, "io.1: expected an unsigned integer"},
        {HEAD "\"io\":{\"1\":1e20}}", FP_REC_ERR_SCHEMA, "io.1: expected an unsigned integer"},
        {HEAD "\"io\":{\"2\":\"xyz0\"}}", FP_REC_ERR_SCHEMA, "io.2: expected a hex string"},
        {HEAD "\"io\":{\"2\":\"abc\"}}", FP_REC_ERR_SCHEMA, "io.2: expected a hex string"},
        {HEAD "\"io\":{\"3\":true}}", FP_REC_ERR_SCHEMA,
         "io.3: expected an unsigned integer or a hex string"},
        {HEAD "\"metrics\":5}", FP_REC_ERR_SCHEMA, "metrics: expected an object"},
        {HEAD "\"metrics\":{\"x\":null}}", FP_REC_ERR_SCHEMA,
         "metrics.x: expected a number, boolean or string"},
        {HEAD "\"metrics\":{\"x\":[1]}}", FP_REC_ERR_SCHEMA,
         "metrics.x: expected a number, boolean or string"},
        {HEAD "\"metrics\":{\"x\":-1e400}}", FP_REC_ERR_SCHEMA, "metrics.x: number out of range"},
        {HEAD "\"enrichment\":\"ok\"}", FP_REC_ERR_SCHEMA, "enrichment: expected an object"},
        {HEAD "\"enrichment\":{}}", FP_REC_ERR_SCHEMA, "enrichment.status: expected a string"},
        {HEAD "\"enrichment\":{\"status\":\"great\"}}", FP_REC_ERR_SCHEMA,
         "enrichment.status: unknown value \"great\""},
        {HEAD "\"enrichment\":{\"status\":\"none\"}}", FP_REC_ERR_SCHEMA,
         "enrichment.status: \"none\" without site, address or asset"},
        {HEAD "\"enrichment\":{\"status\":\"ok\",\"site\":[]}}", FP_REC_ERR_SCHEMA,
         "enrichment.site: expected an object"},
        {HEAD "\"enrichment\":{\"status\":\"ok\",\"asset\":{\"oem\":1}}}", FP_REC_ERR_SCHEMA,
         "enrichment.asset.oem: expected a string"},
    };
#undef HEAD
    fp_record r;

    fp_record_init(&r);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[128];
        int rc;

        memset(err, 'z', sizeof(err));
        rc = decode(&r, cases[i].json, err, sizeof(err));
        if (rc != cases[i].code)
            fp_test_fail(__FILE__, __LINE__, "%s: code %d, expected %d (%s)", cases[i].json, rc,
                         cases[i].code, err);
        if (memchr(err, '\0', sizeof(err)) == NULL)
            fp_test_fail(__FILE__, __LINE__, "%s: message not terminated", cases[i].json);
        else if (cases[i].msg != NULL && strcmp(err, cases[i].msg) != 0)
            fp_test_fail(__FILE__, __LINE__, "%s: message \"%s\", expected \"%s\"", cases[i].json,
                         err, cases[i].msg);
        else if (err[0] == '\0')
            fp_test_fail(__FILE__, __LINE__, "%s: empty message", cases[i].json);
        /* A failed decode leaves an empty record. */
        FP_CHECK_STR(r.device_id, "");
        FP_CHECK_INT(r.io_len + r.metrics_len, 0);
    }

    /* Empty input, a tiny message buffer and no message buffer at all. */
    {
        char small[8];

        FP_CHECK_INT(fp_record_decode_json(&r, NULL, 0, small, sizeof(small)), FP_REC_ERR_JSON);
        FP_CHECK_STR(small, "json: e");
        FP_CHECK_INT(fp_record_decode_json(&r, "{}", 0, NULL, 0), FP_REC_ERR_JSON);
        FP_CHECK_INT(decode(&r, "{\"schema\":3}", small, 1), FP_REC_ERR_SCHEMA);
        FP_CHECK_STR(small, "");
        FP_CHECK_INT(decode(&r, "{\"schema\":3}", NULL, 0), FP_REC_ERR_SCHEMA);
    }
    fp_record_free(&r);
}

FP_TEST(record_err_codes)
{
    FP_CHECK_STR(fp_record_err_code(FP_REC_OK), "ok");
    FP_CHECK_STR(fp_record_err_code(FP_REC_ERR_JSON), "json_syntax");
    FP_CHECK_STR(fp_record_err_code(FP_REC_ERR_SCHEMA), "schema");
    FP_CHECK_STR(fp_record_err_code(FP_REC_ERR_DEVICE_ID), "missing_device_id");
    FP_CHECK_STR(fp_record_err_code(FP_REC_ERR_TS), "bad_timestamp");
    FP_CHECK_STR(fp_record_err_code(FP_REC_ERR_NOMEM), "no_memory");
    FP_CHECK_STR(fp_record_err_code(-99), "unknown");
    FP_CHECK_STR(fp_enrich_status_name(FP_ENRICH_NONE), "none");
    FP_CHECK_STR(fp_enrich_status_name(FP_ENRICH_OK), "ok");
    FP_CHECK_STR(fp_enrich_status_name(FP_ENRICH_PARTIAL), "partial");
    FP_CHECK_STR(fp_enrich_status_name(FP_ENRICH_UNAVAILABLE), "unavailable");
}

FP_TEST(record_reset_and_reuse)
{
    static const char minimal[] =
        "{\"schema\":1,\"device_id\":\"other\",\"ts\":\"2001-02-03T04:05:06.007Z\","
        "\"metrics\":{\"temp_c\":-4.5}}";
    fp_record r;
    fp_buf b;

    fp_record_init(&r);
    fp_buf_init(&b);
    FP_CHECK_INT(decode(&r, full_compact, NULL, 0), 0);
    FP_CHECK_INT(decode(&r, minimal, NULL, 0), 0);
    /* Nothing of the first record survives into the second. */
    FP_CHECK_STR(encode(&r, &b), minimal);
    FP_CHECK_INT(r.received_at_ms, INT64_MIN);
    FP_CHECK_INT(r.priority, -1);
    FP_CHECK(!r.has_position);
    FP_CHECK_INT(r.io_len, 0);
    FP_CHECK_INT(r.enrichment.status, FP_ENRICH_NONE);
    FP_CHECK(!r.enrichment.has_site);

    FP_CHECK_INT(decode(&r, full_compact, NULL, 0), 0);
    FP_CHECK_STR(encode(&r, &b), full_compact);
    FP_CHECK_INT(decode(&r, design_example, NULL, 0), 0);
    FP_CHECK_STR(encode(&r, &b), design_compact);

    fp_record_reset(&r);
    FP_CHECK_STR(r.device_id, "");
    FP_CHECK_INT(r.arena_len, 0);
    FP_CHECK(r.arena_cap > 0); /* capacity is kept */
    fp_buf_free(&b);
    fp_record_free(&r);
    fp_record_free(&r);
    fp_record_free(NULL);
}

FP_TEST(record_arena_growth)
{
    fp_record r;
    fp_buf b;
    char name[32], value[64];
    char err[128];
    bool ok;

    fp_record_init(&r);
    fp_buf_init(&b);
    memcpy(r.device_id, "grow", 5);
    /* Many strings force the arena and the item arrays through several reallocations;
     * the offsets taken before stay valid. */
    for (int i = 0; i < 3000; i++) {
        int n = snprintf(value, sizeof(value), "value number %d with some padding text", i);

        snprintf(name, sizeof(name), "m%d", i);
        FP_CHECK_INT(fp_record_add_metric_string(&r, name, value, (size_t)n), 0);
        FP_CHECK_INT(fp_record_add_io_hex(&r, (uint32_t)i, (const uint8_t *)value, 4), 0);
    }
    FP_CHECK_INT(r.metrics_len, 3000);
    FP_CHECK_INT(r.io_len, 3000);
    FP_CHECK(str_is(&r, r.metrics[0].name, "m0"));
    FP_CHECK(str_is(&r, r.metrics[0].str, "value number 0 with some padding text"));
    FP_CHECK(str_is(&r, r.metrics[2999].str, "value number 2999 with some padding text"));
    FP_CHECK(fp_record_metric(&r, "m1234") != NULL);

    /* Copying one of the record's own strings works even when the arena moves. */
    for (int i = 0; i < 20; i++) {
        fp_str copy =
            fp_record_put_str(&r, fp_record_str(&r, r.metrics[5].str), r.metrics[5].str.len, &ok);
        FP_CHECK(ok);
        FP_CHECK(str_is(&r, copy, "value number 5 with some padding text"));
    }
    fp_str empty = fp_record_put_str(&r, "", 0, &ok);
    FP_CHECK(ok && empty.off == 0 && empty.len == 0);

    FP_CHECK_INT(fp_record_encode_json(&r, &b), 0);
    {
        /* The big record decodes and encodes to the same text. */
        fp_record r2;
        fp_buf b2;

        fp_record_init(&r2);
        fp_buf_init(&b2);
        FP_CHECK_INT(fp_record_decode_json(&r2, b.data, b.len, err, sizeof(err)), 0);
        FP_CHECK_INT(fp_record_encode_json(&r2, &b2), 0);
        FP_CHECK(b2.len == b.len && memcmp(b2.data, b.data, b.len) == 0);
        fp_buf_free(&b2);
        fp_record_free(&r2);
    }
    fp_buf_free(&b);
    fp_record_free(&r);
}

FP_TEST(record_encode_failures)
{
    fp_record r;
    fp_buf b;

    fp_record_init(&r);
    fp_buf_init(&b);
    memcpy(r.device_id, "d", 2);
    fp_buf_puts(&b, "keep");
    /* A time outside years 0000..9999 cannot be written; the buffer is left as it was. */
    r.ts_ms = INT64_MAX;
    FP_CHECK_INT(fp_record_encode_json(&r, &b), -1);
    FP_CHECK_STR(fp_buf_cstr(&b), "keep");
    r.ts_ms = 0;
    r.received_at_ms = INT64_MIN + 1;
    FP_CHECK_INT(fp_record_encode_json(&r, &b), -1);
    FP_CHECK_STR(fp_buf_cstr(&b), "keep");

    /* A zeroed record (never initialised) still encodes to valid JSON. */
    fp_record z;
    memset(&z, 0, sizeof(z));
    fp_buf_clear(&b);
    FP_CHECK_INT(fp_record_encode_json(&z, &b), 0);
    FP_CHECK_STR(fp_buf_cstr(&b),
                 "{\"schema\":1,\"device_id\":\"\",\"ts\":\"1970-01-01T00:00:00.000Z\","
                 "\"received_at\":\"1970-01-01T00:00:00.000Z\","
                 "\"priority\":0,\"event_io\":0}");
    fp_record_free(&z);

    /* NaN metrics are written as null (JSON has no NaN). */
    fp_record_reset(&r);
    memcpy(r.device_id, "d", 2);
    FP_CHECK_INT(fp_record_add_metric_number(&r, "x", NAN), 0);
    FP_CHECK_STR(encode(&r, &b),
                 "{\"schema\":1,\"device_id\":\"d\",\"ts\":\"1970-01-01T00:00:00.000Z\","
                 "\"metrics\":{\"x\":null}}");
    fp_buf_free(&b);
    fp_record_free(&r);
}

/* Found by fuzzing: an invalid UTF-8 byte in a string was accepted, then encoded as U+FFFD
 * (three bytes), so a 31-byte format grew past its limit and the record no longer round-
 * tripped. JSON text must be UTF-8: such input is refused as a syntax error. */
FP_TEST(record_rejects_invalid_utf8)
{
    static const char json[] = "{\"schema\":1,\"device_id\":\"d\",\"ts\":\"2026-03-02T07:45:12Z\","
                               "\"format\":\"abc\xff\"}";
    fp_record r;
    char err[128];

    fp_record_init(&r);
    FP_CHECK_INT(fp_record_decode_json(&r, json, sizeof(json) - 1, err, sizeof(err)),
                 FP_REC_ERR_JSON);
    FP_CHECK_STR(err, "json: invalid UTF-8 at byte 69");
    FP_CHECK(fp_json_utf8_valid("\xc3\x98 \xe6\x9d\xb1", 6, NULL));
    FP_CHECK(!fp_json_utf8_valid("\xed\xa0\x80", 3, NULL)); /* a surrogate */
    fp_record_free(&r);
}

/* Found by fuzzing: IO values are 64-bit but cJSON reads numbers as doubles, so an 8-byte value
 * such as 504403158766182506 came back as ...528 after one decode, and the enricher and the
 * sink would have stored a wrong value. Large values are now read exactly from the text,
 * whatever comes before the io object. */
FP_TEST(record_io_values_above_2_pow_53_exact)
{
    static const char json[] =
        "{\"schema\":1,\"device_id\":\"d\",\"ts\":\"2026-03-02T07:45:12.000Z\","
        "\"x\":{\"a\":[1,{\"b\":\"}],\\\"io\\\":{\"}],\"s\":\"io\"},"
        "\"io\" : { \"14\" : 504403158766182506 ,\"1\":\"0aff\",\"2\":9007199254740993,"
        "\"3\":18446744073709551615,\"4\":7}}";
    fp_record r;
    fp_buf out = {0};
    char err[128];

    fp_record_init(&r);
    FP_CHECK_INT(fp_record_decode_json(&r, json, sizeof(json) - 1, err, sizeof(err)), 0);
    FP_CHECK_INT(r.io_len, 5);
    FP_CHECK(r.io[0].u == UINT64_C(504403158766182506));
    FP_CHECK(r.io[1].kind == FP_IO_HEX);
    FP_CHECK(r.io[2].u == UINT64_C(9007199254740993));
    FP_CHECK(r.io[3].u == UINT64_MAX);
    FP_CHECK(r.io[4].u == 7);
    FP_CHECK_INT(fp_record_encode_io_json(&r, &out), 0);
    FP_CHECK_STR(fp_buf_cstr(&out), "{\"14\":504403158766182506,\"1\":\"0aff\","
                                    "\"2\":9007199254740993,\"3\":18446744073709551615,\"4\":7}");
    fp_buf_free(&out);
    fp_record_free(&r);
}

/* The canonical decoder (what the enricher and the sink read) refuses the same: a value its
 * column's type cannot hold, a member named twice, U+0000 in a string, a dot-segment device id. */
FP_TEST(record_decode_refuses_unstorable_records)
{
#define HEAD "{\"schema\":1,\"device_id\":\"d\",\"ts\":\"2026-03-02T07:45:12Z\","
    static const struct {
        const char *json, *code;
    } cases[] = {
        {HEAD "\"position\":{\"lat\":1,\"lon\":2,\"alt_m\":1e39}}", "out_of_range"},
        {HEAD "\"position\":{\"lat\":1,\"lon\":2,\"speed_kmh\":-3.41e38}}", "out_of_range"},
        {HEAD "\"format\":\"a\",\"format\":\"b\"}", "duplicate_key"},
        {HEAD "\"io\":{\"239\":1,\"239\":0}}", "duplicate_key"},
        {HEAD "\"enrichment\":{\"status\":\"ok\",\"site\":{\"name\":\"a\\u0000\"}}}",
         "nul_character"},
        {"{\"schema\":1,\"device_id\":\"..\",\"ts\":\"2026-03-02T07:45:12Z\"}", "bad_device_id"},
        /* timestamptz has no year 0: the database would refuse the row. */
        {"{\"schema\":1,\"device_id\":\"d\",\"ts\":\"0000-06-01T00:00:00Z\"}", "out_of_range"},
        {HEAD "\"received_at\":\"0000-12-31T23:59:59.999Z\"}", "out_of_range"},
    };
    static const char first_year[] =
        "{\"schema\":1,\"device_id\":\"d\",\"ts\":\"0001-01-01T00:00:00Z\","
        "\"received_at\":\"9999-12-31T23:59:59.999Z\"}";
#undef HEAD
    fp_record r;

    fp_record_init(&r);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[128] = "";
        int rc = fp_record_decode_json(&r, cases[i].json, strlen(cases[i].json), err, sizeof(err));

        if (rc >= 0 || strcmp(fp_record_err_code(rc), cases[i].code) != 0)
            fp_test_fail(__FILE__, __LINE__, "%s: rc %d (%s) \"%s\", expected %s", cases[i].json,
                         rc, fp_record_err_code(rc), err, cases[i].code);
        else if (err[0] == '\0')
            fp_test_fail(__FILE__, __LINE__, "%s: empty message", cases[i].json);
    }
    FP_CHECK_INT(fp_record_decode_json(&r, first_year, strlen(first_year), NULL, 0), 0);
    fp_record_free(&r);
}

/* fp_record_check names the first item (in order) whose name an earlier item has, for few items
 * (compared through a digest mask) and many (sorted), and finds a NUL in any string but not in
 * the arena's spare bytes. */
FP_TEST(record_check_repeats_and_nuls)
{
    static const char *const names[] = {
        "ignition", "movement", "gsm_signal", "odometer_m", "fuel_pct",  "voltage_v", "a",  "b",
        "ab",       "ba",       "hdop",       "pdop",       "coolant_c", "speed_kmh", "x1", "x2",
        "engine_h", "trip_m",   "fuel_l",     "vin",        "dtc",       "aa",        "bb", "cc"};
    const size_t nnames = sizeof(names) / sizeof(names[0]);
    fp_record r;
    char msg[128], want[128];

    fp_record_init(&r);
    for (size_t n = 2; n <= nnames; n++) {
        for (size_t dup = 1; dup < n; dup++) {
            for (size_t of = 0; of < dup; of += 3) {
                fp_record_reset(&r);
                snprintf(r.device_id, sizeof(r.device_id), "d");
                /* Item `dup` repeats item `of`; the IO ids repeat likewise. */
                for (size_t i = 0; i < n; i++) {
                    size_t k = i == dup ? of : i;

                    FP_CHECK_INT(fp_record_add_metric_number(&r, names[k], 1.0), 0);
                    FP_CHECK_INT(fp_record_add_io_uint(&r, (uint32_t)(k * 64), 0), 0);
                }
                FP_CHECK_INT(fp_record_check(&r, msg, sizeof(msg)), FP_REC_ERR_DUPLICATE);
                snprintf(want, sizeof(want), "metrics.%s: given twice", names[of]);
                if (n <= 16) /* beyond, sorting may report either of the pair first */
                    FP_CHECK_STR(msg, want);
                r.metrics_len = 0;
                FP_CHECK_INT(fp_record_check(&r, msg, sizeof(msg)), FP_REC_ERR_DUPLICATE);
                snprintf(want, sizeof(want), "io.%u: given twice", (unsigned)(of * 64));
                FP_CHECK_STR(msg, want);
            }
        }
        /* And without a repeat. */
        fp_record_reset(&r);
        snprintf(r.device_id, sizeof(r.device_id), "d");
        for (size_t i = 0; i < n; i++) {
            FP_CHECK_INT(fp_record_add_metric_bool(&r, names[i], true), 0);
            FP_CHECK_INT(fp_record_add_io_uint(&r, (uint32_t)(i * 64), 0), 0);
        }
        FP_CHECK_INT(fp_record_check(&r, msg, sizeof(msg)), 0);
    }

    /* A NUL in a name or a text is refused; one in bytes no string refers to is not. */
    fp_record_reset(&r);
    snprintf(r.device_id, sizeof(r.device_id), "d");
    FP_CHECK_INT(fp_record_add_metric_string(&r, "note", "a\0b", 3), 0);
    FP_CHECK_INT(fp_record_check(&r, msg, sizeof(msg)), FP_REC_ERR_NUL);
    r.metrics[0].str.len = 1; /* "a": the NUL is now a spare byte of the arena */
    FP_CHECK_INT(fp_record_check(&r, msg, sizeof(msg)), 0);
    FP_CHECK_INT(fp_record_add_metric_number(&r, "xzy", 1.0), 0);
    r.arena[r.metrics[1].name.off + 1] = '\0';
    FP_CHECK_INT(fp_record_check(&r, msg, sizeof(msg)), FP_REC_ERR_NUL);
    fp_record_free(&r);
}

/* fp_record_metrics_find answers for each name what fp_record_metric does: the first metric of
 * that name (a repeated name included), NULL for an absent one, a name asked twice. */
FP_TEST(record_metrics_find_matches_the_one_by_one_lookup)
{
    const char *names[] = {"odometer_m", "ignition", "nope", "ignition", "engine_hours_h", "o"};
    enum { N = sizeof(names) / sizeof(names[0]) };
    const fp_metric *got[N];
    fp_record r;

    fp_record_init(&r);
    FP_CHECK_INT(fp_record_add_metric_number(&r, "engine_hours_h", 12.5), 0);
    FP_CHECK_INT(fp_record_add_metric_bool(&r, "ignition", true), 0);
    FP_CHECK_INT(fp_record_add_metric_number(&r, "ignition", 3), 0);
    FP_CHECK_INT(fp_record_add_metric_number(&r, "odometer", 1), 0);
    /* Same length and first byte as the name asked for: only the bytes after tell them apart. */
    FP_CHECK_INT(fp_record_add_metric_number(&r, "odometer_x", 5), 0);
    FP_CHECK_INT(fp_record_add_metric_number(&r, "odometer_m", 7), 0);
    fp_record_metrics_find(&r, names, N, got);
    for (size_t i = 0; i < N; i++)
        FP_CHECK(got[i] == fp_record_metric(&r, names[i]));
    FP_CHECK(got[1] != NULL && got[1]->kind == FP_METRIC_BOOL);
    FP_CHECK(got[3] == got[1]);
    FP_CHECK(got[2] == NULL && got[5] == NULL);
    FP_CHECK(got[0] != NULL && got[0]->num == 7);
    fp_record_free(&r);
}
