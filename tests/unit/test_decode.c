/* Tests of parser-svc/decode.c and canonical.c: format detection and record checks. */
#include <string.h>

#include "decode.h"
#include "fp_test.h"

#define NOW_MS INT64_C(1772437513204) /* 2026-03-02T07:45:13.204Z */

/* Decodes a C string with detection; returns 0 or -1 and leaves the error in err. */
static int decode(const char *payload, const char *ct, fp_record_batch *b, fp_decode_error *err)
{
    fp_decode_input in = {(const uint8_t *)payload, strlen(payload), NULL, 0, NOW_MS};

    return fp_decode_payload(NULL, ct, ct != NULL ? strlen(ct) : 0, &in, b, err);
}

FP_TEST(decode_canonical_sets_received_at_and_format)
{
    fp_record_batch b = {0};
    fp_decode_error err = {0};

    FP_CHECK_INT(decode("  {\"schema\":1,\"device_id\":\"356307042441013\","
                        "\"ts\":\"2026-03-02T07:45:12.000Z\"}",
                        NULL, &b, &err),
                 0);
    FP_CHECK_INT(b.len, 1);
    FP_CHECK_STR(b.recs[0].device_id, "356307042441013");
    FP_CHECK_INT(b.recs[0].ts_ms, INT64_C(1772437512000));
    FP_CHECK_INT(b.recs[0].received_at_ms, NOW_MS);
    FP_CHECK_STR(b.recs[0].format, "canonical");
    fp_batch_free(&b);
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
        fp_decode_error err = {0};

        FP_CHECK_INT(decode(cases[i].payload, cases[i].content_type, &b, &err), -1);
        FP_CHECK_STR(err.code, cases[i].code);
        FP_CHECK(err.message[0] != '\0');
        FP_CHECK_INT(b.len, 0);
        fp_batch_free(&b);
    }
}

FP_TEST(decode_detect_by_name_and_content_type)
{
    FP_CHECK(fp_decoder_by_name("canonical") == &fp_decoder_canonical);
    FP_CHECK(fp_decoder_by_name("nope") == NULL);
    FP_CHECK(fp_decoder_detect("Application/JSON", 16, (const uint8_t *)"x", 1) ==
             &fp_decoder_canonical);
    FP_CHECK(fp_decoder_detect(NULL, 0, (const uint8_t *)"\x00\x00", 2) == NULL);
}
