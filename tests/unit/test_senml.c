/* Tests of parser-svc/senml.c: SenML JSON packs (RFC 8428) to canonical records. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parser-svc/decode.h"
#include "common/fp_buf.h"
#include "common/fp_json.h"
#include "common/fp_record.h"
#include "fp_test.h"

#define NOW_MS  INT64_C(1772437513204) /* 2026-03-02T07:45:13.204Z */
#define NOW_TXT "\"received_at\":\"2026-03-02T07:45:13.204Z\""

/* The example pack of parser-svc/PROTOCOLS.md, "SenML JSON packs". */
static const char example_pack[] =
    "[\n"
    "  {\"bn\":\"urn:dev:ow:10e2073a01080063:\",\"n\":\"voltage\",\"u\":\"V\",\"v\":120.1},\n"
    "  {\"n\":\"current\",\"u\":\"A\",\"v\":1.2}\n"
    "]\n";

/* Decodes a payload through detection (content type ct when not NULL, else sniffing) from an
 * exact-size heap copy, so that AddressSanitizer catches reads past its end. */
static int decode_len(const char *payload, size_t len, const char *key, const char *ct,
                      fp_record_batch *b, decode_error *err)
{
    uint8_t *copy = malloc(len > 0 ? len : 1);
    int rc;

    if (copy == NULL)
        return -2;
    memcpy(copy, payload, len);
    {
        decode_input in = {copy, len, key, key != NULL ? strlen(key) : 0, NOW_MS};

        rc = decode_payload(NULL, ct, ct != NULL ? strlen(ct) : 0, &in, b, err);
    }
    free(copy);
    return rc;
}

static int decode(const char *payload, const char *key, fp_record_batch *b, decode_error *err)
{
    return decode_len(payload, strlen(payload), key, NULL, b, err);
}

/* The record in the encoder's compact JSON, valid until the next call with the same buffer. */
static const char *record_json(const fp_record *r, fp_buf *buf)
{
    fp_buf_clear(buf);
    if (fp_record_encode_json(r, buf) < 0)
        return "(encode failed)";
    return fp_buf_cstr(buf);
}

/* Decodes a pack that must succeed and compares every record's JSON with `expected`. */
static void check_pack(const char *payload, const char *key, const char *const *expected, size_t n)
{
    fp_record_batch b = {0};
    decode_error err = {0};
    fp_buf buf = {0};
    int rc = decode(payload, key, &b, &err);

    if (rc != 0)
        fp_test_fail(__FILE__, __LINE__, "pack %s: %s: %s", payload, err.code, err.message);
    FP_CHECK_INT(b.len, n);
    for (size_t i = 0; i < b.len && i < n; i++) {
        const fp_record *r = &b.recs[i];

        FP_CHECK_STR(record_json(r, &buf), expected[i]);
        /* The decoder marks every name plain (sanitised), and each is. */
        for (size_t j = 0; j < r->metrics_len; j++) {
            FP_CHECK(r->metrics[j].name_plain);
            FP_CHECK(
                fp_json_is_plain(fp_record_str(r, r->metrics[j].name), r->metrics[j].name.len));
        }
    }
    fp_buf_free(&buf);
    decode_batch_free(&b);
}

FP_TEST(senml_example_pack)
{
    fp_record_batch b = {0};
    decode_error err = {0};
    fp_buf buf = {0};
    const fp_record *r;

    FP_CHECK_INT(decode(example_pack, NULL, &b, &err), 0);
    FP_CHECK_INT(b.len, 1);
    if (b.len != 1)
        goto out;
    r = &b.recs[0];
    FP_CHECK_INT(r->schema, 1);
    FP_CHECK_STR(r->device_id, "urn:dev:ow:10e2073a01080063");
    FP_CHECK_INT(r->ts_ms, NOW_MS);
    FP_CHECK_INT(r->received_at_ms, NOW_MS);
    FP_CHECK_STR(r->format, "senml");
    FP_CHECK_INT(r->priority, -1);
    FP_CHECK_INT(r->event_io, -1);
    FP_CHECK(!r->has_position);
    FP_CHECK_INT(r->io_len, 0);
    FP_CHECK_INT(r->metrics_len, 2);
    FP_CHECK(r->enrichment.status == FP_ENRICH_NONE);
    FP_CHECK(fp_record_metric(r, "voltage_v") != NULL &&
             fp_record_metric(r, "voltage_v")->kind == FP_METRIC_NUMBER &&
             fp_record_metric(r, "voltage_v")->num == 120.1);
    FP_CHECK(fp_record_metric(r, "current_a") != NULL &&
             fp_record_metric(r, "current_a")->num == 1.2);
    FP_CHECK_STR(record_json(r, &buf),
                 "{\"schema\":1,\"device_id\":\"urn:dev:ow:10e2073a01080063\","
                 "\"ts\":\"2026-03-02T07:45:13.204Z\"," NOW_TXT ",\"format\":\"senml\","
                 "\"metrics\":{\"voltage_v\":120.1,\"current_a\":1.2}}");
out:
    fp_buf_free(&buf);
    decode_batch_free(&b);
}

FP_TEST(senml_detect_by_name_content_type_and_sniffing)
{
    static const uint8_t pack[] = " \n\t[{}]";
    fp_record_batch b = {0};
    decode_error err = {0};
    const char *ct = "application/senml+json; charset=utf-8";

    FP_CHECK(decoder_by_name("senml") == &decoder_senml);
    FP_CHECK(decoder_detect(ct, strlen(ct), (const uint8_t *)"{", 1) == &decoder_senml);
    FP_CHECK(decoder_detect(NULL, 0, pack, sizeof(pack) - 1) == &decoder_senml);
    FP_CHECK(decoder_detect(NULL, 0, (const uint8_t *)" {", 2) == &decoder_canonical);
    FP_CHECK(decoder_detect(NULL, 0, (const uint8_t *)"   ", 3) == NULL);
    /* The declared content type wins over the bytes. */
    FP_CHECK_INT(decode_len(example_pack, strlen(example_pack), NULL, ct, &b, &err), 0);
    FP_CHECK_INT(b.len, 1);
    decode_batch_free(&b);
}

/* Base fields carry over to later records until overridden; a new time or a new device makes a
 * new canonical record, in the order of first appearance. */
FP_TEST(senml_base_fields_inherited_and_overridden)
{
    static const char pack[] = "[{\"bn\":\"dev1/\",\"bt\":1772437500,\"bu\":\"V\",\"bv\":10,"
                               "\"bs\":100,\"bver\":10,\"n\":\"a\",\"v\":1},"
                               "{\"n\":\"b\",\"u\":\"A\",\"v\":2.5},"
                               "{\"n\":\"c\",\"s\":5},"
                               "{\"bv\":0,\"bu\":\"W\",\"n\":\"d\",\"v\":3,\"t\":1},"
                               "{\"bn\":\"dev2:\",\"n\":\"e\",\"v\":4,\"ut\":60,\"x\":[1]},"
                               "{\"bn\":\"dev1/\",\"n\":\"f\",\"vb\":false,\"t\":0.0004}]";
    static const char *const expected[] = {
        "{\"schema\":1,\"device_id\":\"dev1\",\"ts\":\"2026-03-02T07:45:00.000Z\"," NOW_TXT
        ",\"format\":\"senml\",\"metrics\":{\"a_v\":11,\"b_a\":12.5,\"c_sum_v\":105,"
        "\"f_w\":false}}",
        "{\"schema\":1,\"device_id\":\"dev1\",\"ts\":\"2026-03-02T07:45:01.000Z\"," NOW_TXT
        ",\"format\":\"senml\",\"metrics\":{\"d_w\":3}}",
        "{\"schema\":1,\"device_id\":\"dev2\",\"ts\":\"2026-03-02T07:45:00.000Z\"," NOW_TXT
        ",\"format\":\"senml\",\"metrics\":{\"e_w\":4}}",
    };

    check_pack(pack, NULL, expected, 3);
}

FP_TEST(senml_relative_times)
{
    /* Negative times are the past; bt and t add up; ms are rounded to the nearest. */
    static const char pack[] = "[{\"bn\":\"d:\",\"n\":\"x\",\"v\":1,\"t\":-60.5},"
                               "{\"bt\":-10,\"n\":\"y\",\"v\":2,\"t\":-0.5},"
                               "{\"n\":\"z\",\"v\":3,\"t\":10.0006},"
                               "{\"bt\":0,\"n\":\"now\",\"v\":4}]";
    static const char *const expected[] = {
        "{\"schema\":1,\"device_id\":\"d\",\"ts\":\"2026-03-02T07:44:12.704Z\"," NOW_TXT
        ",\"format\":\"senml\",\"metrics\":{\"x\":1}}",
        "{\"schema\":1,\"device_id\":\"d\",\"ts\":\"2026-03-02T07:45:02.704Z\"," NOW_TXT
        ",\"format\":\"senml\",\"metrics\":{\"y\":2}}",
        "{\"schema\":1,\"device_id\":\"d\",\"ts\":\"2026-03-02T07:45:13.205Z\"," NOW_TXT
        ",\"format\":\"senml\",\"metrics\":{\"z\":3}}",
        "{\"schema\":1,\"device_id\":\"d\",\"ts\":\"2026-03-02T07:45:13.204Z\"," NOW_TXT
        ",\"format\":\"senml\",\"metrics\":{\"now\":4}}",
    };

    check_pack(pack, NULL, expected, 4);
}

FP_TEST(senml_absolute_time_with_fractions)
{
    static const char pack[] = "[{\"bn\":\"d:\",\"bt\":1772437512.345,\"n\":\"x\",\"v\":1},"
                               "{\"bt\":1772437512,\"n\":\"y\",\"v\":2,\"t\":0.0006},"
                               "{\"bt\":1772437512,\"n\":\"z\",\"v\":3,\"t\":0.0004}]";
    static const char *const expected[] = {
        "{\"schema\":1,\"device_id\":\"d\",\"ts\":\"2026-03-02T07:45:12.345Z\"," NOW_TXT
        ",\"format\":\"senml\",\"metrics\":{\"x\":1}}",
        "{\"schema\":1,\"device_id\":\"d\",\"ts\":\"2026-03-02T07:45:12.001Z\"," NOW_TXT
        ",\"format\":\"senml\",\"metrics\":{\"y\":2}}",
        "{\"schema\":1,\"device_id\":\"d\",\"ts\":\"2026-03-02T07:45:12.000Z\"," NOW_TXT
        ",\"format\":\"senml\",\"metrics\":{\"z\":3}}",
    };

    check_pack(pack, NULL, expected, 3);
}

/* Times from 2^28 on are absolute, smaller ones relative. Both sides of the boundary are
 * outside what decode_payload accepts, so the decoder is called directly. */
FP_TEST(senml_time_boundary)
{
    static const char pack[] = "[{\"bn\":\"d:\",\"n\":\"x\",\"v\":1,\"t\":268435455.5},"
                               "{\"n\":\"y\",\"v\":1,\"bt\":268435000,\"t\":456}]";
    decode_input in = {(const uint8_t *)pack, sizeof(pack) - 1, NULL, 0, NOW_MS};
    fp_record_batch b = {0};
    decode_error err = {0};

    FP_CHECK_INT(decoder_senml.decode(&in, &b, &err), 0);
    FP_CHECK_INT(b.len, 2);
    if (b.len == 2) {
        FP_CHECK_INT(b.recs[0].ts_ms, NOW_MS + INT64_C(268435455500));
        FP_CHECK_INT(b.recs[1].ts_ms, INT64_C(268435456000));
    }
    decode_batch_free(&b);
}

FP_TEST(senml_groups_in_order_of_first_appearance)
{
    static const char pack[] = "[{\"bn\":\"d:\",\"bt\":1772437500,\"n\":\"a\",\"v\":1},"
                               "{\"n\":\"b\",\"v\":2,\"t\":-10},"
                               "{\"n\":\"c\",\"v\":3},"
                               "{\"n\":\"d\",\"v\":4,\"t\":-10}]";
    static const char *const expected[] = {
        "{\"schema\":1,\"device_id\":\"d\",\"ts\":\"2026-03-02T07:45:00.000Z\"," NOW_TXT
        ",\"format\":\"senml\",\"metrics\":{\"a\":1,\"c\":3}}",
        "{\"schema\":1,\"device_id\":\"d\",\"ts\":\"2026-03-02T07:44:50.000Z\"," NOW_TXT
        ",\"format\":\"senml\",\"metrics\":{\"b\":2,\"d\":4}}",
    };

    check_pack(pack, NULL, expected, 2);
}

/* The message key names the device; without a base name the measurement is the name's part
 * after its last ':' or '/'. */
FP_TEST(senml_key_overrides_base_name)
{
    static const char *const keyed[] = {
        "{\"schema\":1,\"device_id\":\"356307042441013\",\"ts\":\"2026-03-02T07:45:13."
        "204Z\"," NOW_TXT
        ",\"format\":\"senml\",\"metrics\":{\"voltage_v\":120.1,\"current_a\":1.2}}",
    };
    static const char *const nobase[] = {
        "{\"schema\":1,\"device_id\":\"k-1\",\"ts\":\"2026-03-02T07:45:13.204Z\"," NOW_TXT
        ",\"format\":\"senml\",\"metrics\":{\"temp_c\":21.5,\"rh_pct\":40,\"level\":3}}",
    };

    check_pack(example_pack, "356307042441013", keyed, 1);
    check_pack("[{\"n\":\"urn:dev:ow:abc:temp\",\"u\":\"Cel\",\"v\":21.5},"
               "{\"n\":\"site/7/RH\",\"u\":\"%RH\",\"v\":40},{\"n\":\"level\",\"v\":3}]",
               "k-1", nobase, 1);
    /* An empty key counts as none. */
    {
        static const char *const bybn[] = {
            "{\"schema\":1,\"device_id\":\"urn:dev:ow:10e2073a01080063\","
            "\"ts\":\"2026-03-02T07:45:13.204Z\"," NOW_TXT ",\"format\":\"senml\","
            "\"metrics\":{\"voltage_v\":120.1,\"current_a\":1.2}}",
        };

        check_pack(example_pack, "", bybn, 1);
    }
}

FP_TEST(senml_position_mapping)
{
    /* Negative coordinates, speed in m/s converted to km/h, satellites. */
    static const char pack[] =
        "[{\"bn\":\"urn:dev:imei:356307042441013:\",\"bt\":1772437512,\"n\":\"lat\","
        "\"u\":\"lat\",\"v\":-34.6037},{\"n\":\"lon\",\"u\":\"lon\",\"v\":-58.3816},"
        "{\"n\":\"alt\",\"u\":\"m\",\"v\":25.5},{\"n\":\"speed\",\"u\":\"m/s\",\"v\":10},"
        "{\"n\":\"heading\",\"u\":\"deg\",\"v\":270},{\"n\":\"satellites\",\"v\":9},"
        "{\"n\":\"battery\",\"u\":\"%\",\"v\":87},"
        /* Long names, longitude first, speed in km/h, no satellites. */
        "{\"n\":\"Longitude\",\"v\":12.5683371,\"t\":1},{\"n\":\"latitude\",\"u\":\"deg\","
        "\"v\":55.6761234,\"t\":1},{\"n\":\"speed\",\"u\":\"km/h\",\"v\":42.5,\"t\":1},"
        /* Without latitude and longitude the other fields stay metrics. */
        "{\"n\":\"alt\",\"v\":-3,\"t\":2},{\"n\":\"speed\",\"u\":\"m/s\",\"v\":2.5,\"t\":2},"
        "{\"n\":\"heading\",\"v\":90,\"t\":2},{\"n\":\"satellites\",\"v\":0,\"t\":2}]";
    static const char *const expected[] = {
        "{\"schema\":1,\"device_id\":\"urn:dev:imei:356307042441013\","
        "\"ts\":\"2026-03-02T07:45:12.000Z\"," NOW_TXT ",\"format\":\"senml\","
        "\"position\":{\"lat\":-34.6037,\"lon\":-58.3816,\"alt_m\":25.5,\"heading_deg\":270,"
        "\"speed_kmh\":36,\"satellites\":9},\"metrics\":{\"battery_pct\":87}}",
        "{\"schema\":1,\"device_id\":\"urn:dev:imei:356307042441013\","
        "\"ts\":\"2026-03-02T07:45:13.000Z\"," NOW_TXT ",\"format\":\"senml\","
        "\"position\":{\"lat\":55.6761234,\"lon\":12.5683371,\"speed_kmh\":42.5}}",
        "{\"schema\":1,\"device_id\":\"urn:dev:imei:356307042441013\","
        "\"ts\":\"2026-03-02T07:45:14.000Z\"," NOW_TXT ",\"format\":\"senml\","
        "\"metrics\":{\"alt_m\":-3,\"speed_kmh\":9,\"heading_deg\":90,\"satellites\":0}}",
    };

    check_pack(pack, NULL, expected, 3);
}

FP_TEST(senml_value_kinds_and_sums)
{
    static const char pack[] =
        "[{\"bn\":\"gw1:\",\"n\":\"door\",\"vb\":true},{\"n\":\"fw\",\"vs\":\"1.2.3 \\\"b\\\"\"},"
        "{\"n\":\"blob\",\"vd\":\"aGVsbG8\"},{\"n\":\"energy\",\"u\":\"Wh\",\"s\":1500.5},"
        "{\"n\":\"flow\",\"u\":\"l\",\"v\":2,\"s\":300},{\"n\":\"lat\",\"s\":1}]";
    static const char *const expected[] = {
        "{\"schema\":1,\"device_id\":\"gw1\",\"ts\":\"2026-03-02T07:45:13.204Z\"," NOW_TXT
        ",\"format\":\"senml\",\"metrics\":{\"door\":true,\"fw\":\"1.2.3 \\\"b\\\"\","
        "\"blob\":\"aGVsbG8\",\"energy_sum_wh\":1500.5,\"flow_l\":2,\"flow_sum_l\":300,"
        "\"lat_sum\":1}}",
    };
    fp_record_batch b = {0};
    decode_error err = {0};

    check_pack(pack, NULL, expected, 1);
    FP_CHECK_INT(decode(pack, NULL, &b, &err), 0);
    if (b.len == 1) {
        const fp_metric *m = fp_record_metric(&b.recs[0], "door");

        FP_CHECK(m != NULL && m->kind == FP_METRIC_BOOL && m->b);
        m = fp_record_metric(&b.recs[0], "blob");
        FP_CHECK(m != NULL && m->kind == FP_METRIC_STRING);
        if (m != NULL)
            FP_CHECK_MEM(fp_record_str(&b.recs[0], m->str), m->str.len, "aGVsbG8");
    }
    decode_batch_free(&b);
}

/* Names are lowercased and sanitised; a unit suffix the name already has is not doubled; an
 * unknown unit is sanitised into the suffix; the last measurement of a name wins. */
FP_TEST(senml_metric_names_and_units)
{
    static const char pack[] = "[{\"bn\":\"d:\",\"n\":\"voltage_v\",\"u\":\"V\",\"v\":12},"
                               "{\"n\":\"Humidity_PCT\",\"u\":\"%RH\",\"v\":40},"
                               "{\"n\":\"supply_v\",\"u\":\"V\",\"s\":7},"
                               "{\"n\":\"Signal\",\"u\":\"dBm\",\"v\":-71},"
                               "{\"n\":\"loss\",\"u\":\"dB/m\",\"v\":0.25},"
                               "{\"n\":\"battery.level\",\"u\":\"%\",\"v\":99},"
                               "{\"n\":\"temp\",\"u\":\"Cel\",\"v\":20},"
                               "{\"n\":\"pos\",\"u\":\"lat\",\"v\":1},"
                               "{\"n\":\"v\",\"u\":\"V\",\"v\":1},"
                               "{\"n\":\"temp\",\"u\":\"Cel\",\"v\":21},"
                               "{\"n\":\"temp\",\"u\":\"Cel\",\"vs\":\"n/a\"}]";
    static const char *const expected[] = {
        "{\"schema\":1,\"device_id\":\"d\",\"ts\":\"2026-03-02T07:45:13.204Z\"," NOW_TXT
        ",\"format\":\"senml\",\"metrics\":{\"voltage_v\":12,\"humidity_pct\":40,"
        "\"supply_sum_v\":7,\"signal_dbm\":-71,\"loss_db_m\":0.25,\"battery_level_pct\":99,"
        "\"temp_c\":\"n/a\",\"pos\":1,\"v_v\":1}}",
    };

    check_pack(pack, NULL, expected, 1);
}

FP_TEST(senml_errors_have_stable_codes)
{
    static const struct {
        const char *payload, *key, *content_type, *code;
    } cases[] = {
        {"[{\"n\":", NULL, NULL, "json_syntax"},
        {"[1,]", NULL, NULL, "json_syntax"},
        {"[{\"bn\":\"d:\",\"n\":\"x\",\"v\":1}] x", NULL, NULL, "json_syntax"},
        {"[{\"bn\":\"d:\",\"n\":\"x\",\"vs\":\"\xc3\"}]", NULL, NULL, "json_syntax"},
        {"{\"bn\":\"d:\",\"n\":\"x\",\"v\":1}", NULL, "application/senml+json", "senml_not_array"},
        {"[1]", NULL, NULL, "senml_not_array"},
        {"[{\"bn\":\"d:\",\"n\":\"x\",\"v\":1},[]]", NULL, NULL, "senml_not_array"},
        {"[]", NULL, NULL, "senml_empty"},
        {" [ ]\n", "k", NULL, "senml_empty"},
        {"[{\"bn\":\"d:\",\"n\":\"bad name\",\"v\":1}]", NULL, NULL, "senml_bad_name"},
        {"[{\"bn\":\"-d:\",\"n\":\"x\",\"v\":1}]", NULL, NULL, "senml_bad_name"},
        {"[{\"v\":1}]", "k", NULL, "senml_bad_name"},
        {"[{\"n\":\"d:x:\",\"v\":1}]", "k", NULL, "senml_bad_name"},
        {"[{\"bn\":\"d:\",\"n\":\"t\\u00e9mp\",\"v\":1}]", NULL, NULL, "senml_bad_name"},
        {"[{\"bn\":\"d:\",\"n\":\"x\"}]", NULL, NULL, "senml_value"},
        {"[{\"bn\":\"d:\",\"n\":\"x\",\"v\":1,\"vs\":\"1\"}]", NULL, NULL, "senml_value"},
        {"[{\"bn\":\"d:\",\"n\":\"x\",\"v\":1,\"vb\":true,\"s\":1}]", NULL, NULL, "senml_value"},
        {"[{\"bn\":\"d:\",\"n\":\"x\",\"v\":\"1\"}]", NULL, NULL, "senml_value"},
        {"[{\"bn\":\"d:\",\"n\":\"x\",\"vb\":1}]", NULL, NULL, "senml_value"},
        {"[{\"bn\":\"d:\",\"n\":\"x\",\"vs\":1}]", NULL, NULL, "senml_value"},
        {"[{\"bn\":\"d:\",\"n\":\"x\",\"vd\":null}]", NULL, NULL, "senml_value"},
        {"[{\"bn\":\"d:\",\"n\":\"x\",\"s\":\"1\"}]", NULL, NULL, "senml_value"},
        {"[{\"bn\":\"d:\",\"n\":\"x\",\"v\":1,\"v\":2}]", NULL, NULL, "senml_value"},
        {"[{\"bn\":\"d:\",\"n\":\"x\",\"v\":1e999}]", NULL, NULL, "senml_value"},
        {"[{\"bn\":\"d:\",\"bv\":1e308,\"n\":\"x\",\"v\":1e308}]", NULL, NULL, "senml_value"},
        {"[{\"bn\":7,\"n\":\"x\",\"v\":1}]", NULL, NULL, "senml_bad_field"},
        {"[{\"bn\":\"d:\",\"n\":[],\"v\":1}]", NULL, NULL, "senml_bad_field"},
        {"[{\"bn\":\"d:\",\"n\":\"x\",\"u\":1,\"v\":1}]", NULL, NULL, "senml_bad_field"},
        {"[{\"bn\":\"d:\",\"bu\":true,\"n\":\"x\",\"v\":1}]", NULL, NULL, "senml_bad_field"},
        {"[{\"bn\":\"d:\",\"n\":\"x\",\"v\":1,\"t\":\"now\"}]", NULL, NULL, "senml_bad_field"},
        {"[{\"bn\":\"d:\",\"bt\":\"0\",\"n\":\"x\",\"v\":1}]", NULL, NULL, "senml_bad_field"},
        {"[{\"bn\":\"d:\",\"bv\":\"1\",\"n\":\"x\",\"v\":1}]", NULL, NULL, "senml_bad_field"},
        {"[{\"bn\":\"d:\",\"bs\":null,\"n\":\"x\",\"s\":1}]", NULL, NULL, "senml_bad_field"},
        {"[{\"bn\":\"d:\",\"bver\":\"5\",\"n\":\"x\",\"v\":1}]", NULL, NULL, "senml_bad_field"},
        {"[{\"bn\":\"d:\",\"n\":\"x\",\"v\":1,\"ut\":\"1\"}]", NULL, NULL, "senml_bad_field"},
        {"[{\"bn\":\"d:\",\"n\":\"x\",\"v\":1,\"t\":1e999}]", NULL, NULL, "senml_bad_field"},
        {"[{\"bn\":\"d:\",\"bt\":1.7e308,\"n\":\"x\",\"v\":1,\"t\":1.7e308}]", NULL, NULL,
         "senml_bad_field"},
        {"[{\"bn\":\"d:\",\"n\":\"x\",\"u\":\"abcdefghijklmnopqrstuvwxyz0123456\",\"v\":1}]", NULL,
         NULL, "senml_bad_field"},
        {"[{\"bn\":\"d:\",\"n\":\"x\",\"v\":1,\"foo_\":1}]", NULL, NULL, "senml_unknown_mandatory"},
        {"[{\"bn\":\"d:\",\"n\":\"x\",\"v\":1},{\"n\":\"y\",\"v\":1,\"_\":1}]", NULL, NULL,
         "senml_unknown_mandatory"},
        {"[{\"bn\":\"d:\",\"bver\":11,\"n\":\"x\",\"v\":1}]", NULL, NULL, "senml_version"},
        {"[{\"bn\":\"d:\",\"n\":\"lat\",\"v\":55}]", NULL, NULL, "senml_position"},
        {"[{\"bn\":\"d:\",\"n\":\"lon\",\"v\":12},{\"n\":\"lat\",\"v\":5,\"t\":-1}]", NULL, NULL,
         "senml_position"},
        {"[{\"bn\":\"d:\",\"n\":\"lat\",\"v\":91},{\"n\":\"lon\",\"v\":12}]", NULL, NULL,
         "senml_position"},
        {"[{\"bn\":\"d:\",\"n\":\"lat\",\"v\":-90.5},{\"n\":\"lon\",\"v\":12}]", NULL, NULL,
         "senml_position"},
        {"[{\"bn\":\"d:\",\"n\":\"lat\",\"v\":55},{\"n\":\"lon\",\"v\":-181}]", NULL, NULL,
         "senml_position"},
        {"[{\"bn\":\"d:\",\"n\":\"lat\",\"vs\":\"55\"}]", NULL, NULL, "senml_position"},
        {"[{\"bn\":\"d:\",\"n\":\"speed\",\"u\":\"mph\",\"v\":3}]", NULL, NULL, "senml_position"},
        {"[{\"bn\":\"d:\",\"n\":\"satellites\",\"v\":2.5}]", NULL, NULL, "senml_position"},
        {"[{\"bn\":\"d:\",\"n\":\"satellites\",\"v\":256}]", NULL, NULL, "senml_position"},
        {"[{\"bn\":\"d:\",\"n\":\"speed\",\"u\":\"m/s\",\"v\":1e308}]", NULL, NULL,
         "senml_position"},
        {"[{\"n\":\"urn:dev:ow:abc:temp\",\"v\":1}]", NULL, NULL, "missing_device_id"},
        {"[{\"n\":\"temp\",\"v\":1}]", NULL, NULL, "missing_device_id"},
        {"[{\"bn\":\"d:\",\"n\":\"x\",\"v\":1},{\"bn\":\"\",\"n\":\"y\",\"v\":1}]", NULL, NULL,
         "missing_device_id"},
        {"[{\"bn\":\"urn:dev:x:0123456789012345678901234567890123456789012345678901234:\","
         "\"n\":\"x\",\"v\":1}]",
         NULL, NULL, "bad_device_id"},
        {example_pack, "0123456789012345678901234567890123456789012345678901234567890123", NULL,
         "bad_device_id"},
        {example_pack, "dev\xff", NULL, "bad_device_id"},
        {"[{\"bn\":\"d:\",\"bt\":1e15,\"n\":\"x\",\"v\":1}]", NULL, NULL, "ts_out_of_range"},
        {"[{\"bn\":\"d:\",\"n\":\"x\",\"v\":1,\"t\":-1e300}]", NULL, NULL, "ts_out_of_range"},
        {"[{\"bn\":\"d:\",\"bt\":1e300,\"n\":\"x\",\"v\":1}]", NULL, NULL, "ts_out_of_range"},
        {"[{\"bn\":\"d:\",\"n\":\"x\",\"v\":1,\"t\":-946684800}]", NULL, NULL, "ts_out_of_range"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fp_record_batch b = {0};
        decode_error err = {0};
        int rc = decode_len(cases[i].payload, strlen(cases[i].payload), cases[i].key,
                            cases[i].content_type, &b, &err);

        FP_CHECK_INT(rc, -1);
        if (err.code == NULL || strcmp(err.code, cases[i].code) != 0)
            fp_test_fail(__FILE__, __LINE__, "case %zu %s: code %s (%s), expected %s", i,
                         cases[i].payload, err.code != NULL ? err.code : "(none)", err.message,
                         cases[i].code);
        FP_CHECK(err.message[0] != '\0');
        FP_CHECK_INT(b.len, 0);
        decode_batch_free(&b);
    }
}

/* Writes a pack of n records of device "d" into buf: with distinct_names, one measurement
 * "m<i>" each at the same time; otherwise measurement "m" at n distinct times (t = -i). */
static int build_pack(fp_buf *buf, size_t n, bool distinct_names)
{
    int rc = fp_buf_puts(buf, "[{\"bn\":\"d:\",\"n\":\"m0\",\"v\":0}");

    for (size_t i = 1; i < n && rc == 0; i++) {
        if (distinct_names)
            rc = fp_buf_printf(buf, ",{\"n\":\"m%zu\",\"v\":%zu}", i, i);
        else
            rc = fp_buf_printf(buf, ",{\"n\":\"m0\",\"v\":%zu,\"t\":-%zu}", i, i);
    }
    return rc == 0 ? fp_buf_putc(buf, ']') : -1;
}

/* 10000 records decode (as 10000 records, or as one with 10000 metrics); one more is too
 * many. */
FP_TEST(senml_pack_size_bound)
{
    fp_buf buf = {0};
    fp_record_batch b = {0};
    decode_error err = {0};

    FP_CHECK_INT(build_pack(&buf, 10000, false), 0);
    FP_CHECK_INT(decode_len(buf.data, buf.len, NULL, NULL, &b, &err), 0);
    FP_CHECK_INT(b.len, 10000);
    if (b.len == 10000) {
        FP_CHECK_INT(b.recs[9999].ts_ms, NOW_MS - 9999000);
        FP_CHECK_INT(b.recs[9999].metrics_len, 1);
        FP_CHECK(b.recs[9999].metrics[0].num == 9999);
    }

    fp_buf_clear(&buf);
    FP_CHECK_INT(build_pack(&buf, 10000, true), 0);
    FP_CHECK_INT(decode_len(buf.data, buf.len, NULL, NULL, &b, &err), 0);
    FP_CHECK_INT(b.len, 1);
    if (b.len == 1) {
        FP_CHECK_INT(b.recs[0].metrics_len, 10000);
        FP_CHECK(fp_record_metric(&b.recs[0], "m5000") != NULL &&
                 fp_record_metric(&b.recs[0], "m5000")->num == 5000);
    }

    fp_buf_clear(&buf);
    FP_CHECK_INT(build_pack(&buf, 10001, false), 0);
    FP_CHECK_INT(decode_len(buf.data, buf.len, NULL, NULL, &b, &err), -1);
    FP_CHECK_STR(err.code, "senml_too_large");
    FP_CHECK_INT(b.len, 0);
    fp_buf_free(&buf);
    decode_batch_free(&b);
}

/* Every prefix and every single-byte corruption of some packs decodes or fails cleanly. */
FP_TEST(senml_truncated_and_corrupted_input)
{
    static const char *const packs[] = {
        example_pack,
        "[{\"bn\":\"urn:dev:imei:1:\",\"bt\":1772437512.5,\"bu\":\"m/s\",\"n\":\"lat\","
        "\"u\":\"lat\",\"v\":-1},{\"n\":\"lon\",\"u\":\"lon\",\"v\":2},{\"n\":\"speed\",\"v\":3},"
        "{\"n\":\"x\",\"vs\":\"\\u00e9\",\"s\":4,\"t\":-1},{\"n\":\"y\",\"vd\":\"AA\"}]",
    };
    static const char junk[] = "[]{}\":,_-0e.\\\x00\xff";
    fp_record_batch b = {0};
    decode_error err = {0};
    char work[512];

    for (size_t p = 0; p < sizeof(packs) / sizeof(packs[0]); p++) {
        size_t len = strlen(packs[p]);

        for (size_t n = 0; n <= len; n++) {
            int rc = decode_len(packs[p], n, NULL, NULL, &b, &err);

            FP_CHECK(rc == 0 || (rc == -1 && err.code != NULL && b.len == 0));
        }
        for (size_t i = 0; i < len && len < sizeof(work); i++) {
            for (size_t j = 0; j < sizeof(junk) - 1; j++) {
                int rc;

                memcpy(work, packs[p], len);
                work[i] = junk[j];
                rc = decode_len(work, len, "", NULL, &b, &err);
                FP_CHECK(rc == 0 || (rc == -1 && err.code != NULL && b.len == 0));
            }
        }
    }
    decode_batch_free(&b);
}

/* Plain packs are read without cJSON, and every other form of JSON falls back to it: each form
 * below must decode like the plain pack, whichever reader takes it, and fail alike too. */
FP_TEST(senml_plain_and_other_json_forms_decode_alike)
{
#define X_PLAIN "{\"bn\":\"d:\",\"n\":\"x\",\"u\":\"m/s\",\"v\":1}"
#define Y_PLAIN "{\"n\":\"y\",\"vs\":\"a/b\"}"
    static const char plain[] = "[" X_PLAIN "," Y_PLAIN "]";
    static const char *const others[] = {
        /* An escaped label and escaped strings. */
        "[{\"bn\":\"d:\",\"n\":\"x\",\"u\":\"m/s\",\"\\u0076\":1}," Y_PLAIN "]",
        "[{\"bn\":\"d:\",\"n\":\"x\",\"u\":\"m\\/s\",\"v\":1},{\"n\":\"y\",\"vs\":\"a\\/b\"}]",
        /* Members of other types under unknown labels. */
        "[{\"bn\":\"d:\",\"n\":\"x\",\"u\":\"m/s\",\"v\":1,\"note\":null}," Y_PLAIN "]",
        "[{\"bn\":\"d:\",\"ext\":{\"a\":[1,{}]},\"n\":\"x\",\"u\":\"m/s\",\"v\":1}," Y_PLAIN "]",
        /* What cJSON accepts beyond strict JSON: a byte order mark, a leading zero, and any
         * control character as whitespace. */
        "\xef\xbb\xbf[" X_PLAIN "," Y_PLAIN "]",
        "[{\"bn\":\"d:\",\"n\":\"x\",\"u\":\"m/s\",\"v\":01}," Y_PLAIN "]",
        "[\f" X_PLAIN "\v,\x01" Y_PLAIN "]",
    };
    static const char *const ct = "application/senml+json";
    fp_record_batch want = {0}, got = {0};
    decode_error err = {0}, err2 = {0};
    fp_buf a = {0}, b = {0};

    FP_CHECK_INT(decode_len(plain, strlen(plain), NULL, ct, &want, &err), 0);
    FP_CHECK_INT(want.len, 1);
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        if (decode_len(others[i], strlen(others[i]), NULL, ct, &got, &err) != 0) {
            fp_test_fail(__FILE__, __LINE__, "%s: %s: %s", others[i], err.code, err.message);
            continue;
        }
        FP_CHECK_INT(got.len, want.len);
        for (size_t r = 0; r < got.len && r < want.len; r++)
            FP_CHECK_STR(record_json(&got.recs[r], &b), record_json(&want.recs[r], &a));
    }

    /* Found by fuzzing: a pack of empty objects, which the strict reader takes without storing
     * a single member, fails like any record without a value. */
    FP_CHECK_INT(decode("[{},{}]", NULL, &got, &err), -1);
    FP_CHECK_STR(err.code, "senml_value");
    FP_CHECK_STR(err.message, "pack[0]: expected exactly one of v, vs, vb, vd (or a sum s)");

    /* A label given twice, plainly and escaped: the same error. */
    FP_CHECK_INT(decode("[{\"bn\":\"d:\",\"n\":\"x\",\"v\":1,\"v\":2}]", NULL, &want, &err), -1);
    FP_CHECK_INT(decode("[{\"bn\":\"d:\",\"n\":\"x\",\"v\":1,\"\\u0076\":2}]", NULL, &got, &err2),
                 -1);
    FP_CHECK_STR(err2.code, err.code);
    FP_CHECK_STR(err2.message, err.message);
#undef X_PLAIN
#undef Y_PLAIN
    fp_buf_free(&a);
    fp_buf_free(&b);
    decode_batch_free(&want);
    decode_batch_free(&got);
}

/* Every number is the double strtod reads from its text, as cJSON gives it, whether it is short
 * enough for the strict reader's own exact conversion or not. */
FP_TEST(senml_numbers_read_as_strtod_reads_them)
{
    static const char *const numbers[] = {
        "0.1",
        "-0.0",
        "72.0",
        "55.5754196",
        "1767225601.310",
        "0.30000000000000004",
        "1e22",
        "1e-22",
        "123456789e-22",
        "1e23",
        "9007199254740992",
        "9007199254740993",
        "1234567890123456789",
        "12345678901234567890123",
        "4.9e-324",
        "2.2250738585072011e-308",
        "1.7976931348623157e308",
        "1.5E+3",
        "7E-3",
        "-0.000000000000000000000000000001",
        "100000000000000000000000000000000000000000000000000000000000001", /* 63 bytes */
    };
    fp_record_batch b = {0};
    decode_error err = {0};
    char pack[160];

    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
        const fp_metric *m;
        double want;

        snprintf(pack, sizeof(pack), "[{\"bn\":\"d:\",\"n\":\"x\",\"v\":%s}]", numbers[i]);
        if (decode(pack, "k", &b, &err) != 0) {
            fp_test_fail(__FILE__, __LINE__, "%s: %s: %s", pack, err.code, err.message);
            continue;
        }
        m = b.len == 1 ? fp_record_metric(&b.recs[0], "x") : NULL;
        /* The value is the base value (0) plus v, which turns -0 into 0. */
        want = 0.0 + strtod(numbers[i], NULL);
        FP_CHECK(m != NULL && memcmp(&m->num, &want, sizeof(want)) == 0);
    }
    decode_batch_free(&b);
}
