/* Tests of parser-svc/decode.c and canonical.c: format detection and record checks. */
#include <string.h>

#include "parser-svc/decode.h"
#include "fp_test.h"

#define NOW_MS INT64_C(1772437513204) /* 2026-03-02T07:45:13.204Z */

/* Decodes a C string with detection; returns 0 or -1 and leaves the error in err. */
static int decode(const char *payload, const char *ct, fp_record_batch *b, decode_error *err)
{
    decode_input in = {(const uint8_t *)payload, strlen(payload), NULL, 0, NOW_MS};

    return decode_payload(NULL, ct, ct != NULL ? strlen(ct) : 0, &in, b, err);
}

FP_TEST(decode_canonical_sets_received_at_and_format)
{
    fp_record_batch b = {0};
    decode_error err = {0};

    FP_CHECK_INT(decode("  {\"schema\":1,\"device_id\":\"356307042441013\","
                        "\"ts\":\"2026-03-02T07:45:12.000Z\"}",
                        NULL, &b, &err),
                 0);
    FP_CHECK_INT(b.len, 1);
    FP_CHECK_STR(b.recs[0].device_id, "356307042441013");
    FP_CHECK_INT(b.recs[0].ts_ms, INT64_C(1772437512000));
    FP_CHECK_INT(b.recs[0].received_at_ms, NOW_MS);
    FP_CHECK_STR(b.recs[0].format, "canonical");
    decode_batch_free(&b);
}

FP_TEST(decode_errors_have_stable_codes)
{
    static const struct {
        const char *payload, *content_type, *code;
    } cases[] = {
        {"", NULL, "empty"},
        {"\x01\x02garbage", NULL, "unknown_format"},
        {"{\"schema\":1,", NULL, "json_syntax"},
        {"{\"schema\":1,\"ts\":\"2026-03-02T07:45:12Z\"}", NULL, "missing_device_id"},
        {"{\"schema\":1,\"device_id\":\"d\",\"ts\":\"soon\"}", NULL, "bad_timestamp"},
        {"{\"schema\":2,\"device_id\":\"d\",\"ts\":\"2026-03-02T07:45:12Z\"}", NULL, "schema"},
        {"{\"schema\":1,\"device_id\":\"d\",\"ts\":\"1999-12-31T23:59:59Z\"}", NULL,
         "ts_out_of_range"},
        {"{\"schema\":1,\"device_id\":\"d\",\"ts\":\"2026-03-03T07:45:14Z\"}", NULL,
         "ts_out_of_range"},
        /* The content type wins over sniffing: JSON bytes declared as JSON but broken. */
        {"[1]", "application/json; charset=utf-8", "schema"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fp_record_batch b = {0};
        decode_error err = {0};

        FP_CHECK_INT(decode(cases[i].payload, cases[i].content_type, &b, &err), -1);
        FP_CHECK_STR(err.code, cases[i].code);
        FP_CHECK(err.message[0] != '\0');
        FP_CHECK_INT(b.len, 0);
        decode_batch_free(&b);
    }
}

FP_TEST(decode_detect_by_name_and_content_type)
{
    FP_CHECK(decoder_by_name("canonical") == &decoder_canonical);
    FP_CHECK(decoder_by_name("nope") == NULL);
    FP_CHECK(decoder_detect("Application/JSON", 16, (const uint8_t *)"x", 1) == &decoder_canonical);
    FP_CHECK(decoder_detect(NULL, 0, (const uint8_t *)"\x00\x00", 2) == NULL);
}

/* What PostgreSQL's typed columns, text and jsonb cannot hold is refused in the parser, whatever
 * the format, with its own code: values outside a column type's range (alt_m, heading_deg and
 * speed_kmh are real), a member named twice (the typed column would take the first, jsonb the
 * last), U+0000 in a string (text and jsonb refuse it) and a device id that is a dot segment.
 * What they can hold still decodes. */
FP_TEST(decode_refuses_what_the_columns_cannot_hold)
{
#define REC  "{\"schema\":1,\"device_id\":\"d\",\"ts\":\"2026-03-02T07:45:12Z\","
#define POS  REC "\"position\":{\"lat\":55.6,\"lon\":12.5,"
#define PACK "[{\"bn\":\"urn:dev:ow:10e2073a01080063:\",\"bt\":1772437512,"
    static const struct {
        const char *payload, *key, *code;
    } cases[] = {
        {POS "\"alt_m\":1e39}}", NULL, "out_of_range"},
        {POS "\"heading_deg\":-3.5e38}}", NULL, "out_of_range"},
        {POS "\"speed_kmh\":1e-50}}", NULL, "out_of_range"},
        {REC "\"ts\":\"2026-03-02T07:45:13Z\"}", NULL, "duplicate_key"},
        {REC "\"metrics\":{\"ignition\":true,\"ignition\":false}}", NULL, "duplicate_key"},
        {POS "\"lat\":56}}", NULL, "duplicate_key"},
        {REC "\"enrichment\":{\"status\":\"ok\",\"asset\":{\"oem\":\"a\",\"oem\":\"b\"}}}", NULL,
         "duplicate_key"},
        {REC "\"extra\":{\"x\":1,\"x\":2}}", NULL, "duplicate_key"},
        {REC "\"metrics\":{\"vin\":\"ab\\u0000c\"}}", NULL, "nul_character"},
        {REC "\"metrics\":{\"v\\u0000\":1}}", NULL, "nul_character"},
        {"{\"schema\":1,\"device_id\":\"..\",\"ts\":\"2026-03-02T07:45:12Z\"}", NULL,
         "bad_device_id"},
        {"{\"schema\":1,\"device_id\":\".\",\"ts\":\"2026-03-02T07:45:12Z\"}", NULL,
         "bad_device_id"},
        {PACK "\"n\":\"lat\",\"v\":55.6},{\"n\":\"lon\",\"v\":12.5},"
              "{\"n\":\"alt\",\"u\":\"m\",\"v\":1e39}]",
         NULL, "out_of_range"},
        {PACK "\"n\":\"lat\",\"v\":55.6},{\"n\":\"lon\",\"v\":12.5},"
              "{\"n\":\"speed\",\"u\":\"m/s\",\"v\":1e38}]",
         NULL, "out_of_range"},
        {PACK "\"n\":\"vin\",\"vs\":\"ab\\u0000c\"}]", NULL, "nul_character"},
        {PACK "\"n\":\"x\",\"v\":1,\"note\":1,\"note\":2}]", NULL, "duplicate_key"},
        {PACK "\"n\":\"x\",\"v\":1}]", "..", "bad_device_id"},
    };
    static const char *const good[] = {
        POS "\"alt_m\":3.4e38,\"heading_deg\":0,\"speed_kmh\":-1e-30}}",
        REC "\"metrics\":{\"path\":\"c:\\\\u0000\",\"big\":1e300}}",
        "{\"schema\":1,\"device_id\":\"gw.site-1\",\"ts\":\"2026-03-02T07:45:12Z\"}",
        PACK "\"n\":\"x\",\"v\":1,\"note\":1,\"other\":2}]",
    };
#undef PACK
#undef POS
#undef REC

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *key = cases[i].key;
        decode_input in = {(const uint8_t *)cases[i].payload, strlen(cases[i].payload), key,
                           key != NULL ? strlen(key) : 0, NOW_MS};
        fp_record_batch b = {0};
        decode_error err = {0};
        int rc = decode_payload(NULL, NULL, 0, &in, &b, &err);

        if (rc != -1 || err.code == NULL || strcmp(err.code, cases[i].code) != 0)
            fp_test_fail(__FILE__, __LINE__, "%s: rc %d, code %s (%s), expected %s",
                         cases[i].payload, rc, rc < 0 ? err.code : "-", err.message, cases[i].code);
        FP_CHECK_INT(b.len, 0);
        decode_batch_free(&b);
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        fp_record_batch b = {0};
        decode_error err = {0};

        if (decode(good[i], NULL, &b, &err) != 0)
            fp_test_fail(__FILE__, __LINE__, "%s: refused: %s %s", good[i], err.code, err.message);
        decode_batch_free(&b);
    }
}
