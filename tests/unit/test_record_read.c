/* Tests of common/fp_record_read.c, the direct canonical-record reader: each case is decoded by
 * the reader and by the cJSON reference (fp_record_decode.c); both must give the expected code,
 * and accepted records must encode to the expected bytes (or, with none given, to the same
 * bytes as each other). Covers every field type, every refusal code, escapes, big integers,
 * repeated members, nulls, whitespace and trailing garbage, and the divergences the
 * differential fuzzer found. */
#include <string.h>

#include "common/fp_buf.h"
#include "common/fp_record.h"
#include "common/fp_record_internal.h"
#include "fp_test.h"

#define HEAD "{\"schema\":1,\"device_id\":\"d1\",\"ts\":\"2026-03-02T07:45:12.000Z\""
#define OUT  "{\"schema\":1,\"device_id\":\"d1\",\"ts\":\"2026-03-02T07:45:12.000Z\""

typedef struct read_case {
    const char *json;
    size_t len; /* 0: strlen */
    int code;
    const char *encoded; /* NULL: only both alike */
} read_case;

static const read_case cases[] = {
    {HEAD "}", 0, 0, OUT "}"},
    {" \t\r\n" HEAD "} \n", 0, 0, OUT "}"},
    {"\xef\xbb\xbf" HEAD "}", 0, 0, OUT "}"},
    {"{\x01\"schema\"\x1f:1,\"device_id\":\"d1\",\"ts\":\"2026-03-02T07:45:12.000Z\"}", 0, 0,
     OUT "}"},
    {HEAD "}\x01", 0, FP_REC_ERR_JSON, NULL},
    {HEAD "} x", 0, FP_REC_ERR_JSON, NULL},
    {HEAD "}{}", 0, FP_REC_ERR_JSON, NULL},
    {HEAD ",}", 0, FP_REC_ERR_JSON, NULL},
    {HEAD, 0, FP_REC_ERR_JSON, NULL},
    {"", 0, FP_REC_ERR_JSON, NULL},
    {"[1,2]", 0, FP_REC_ERR_SCHEMA, NULL},
    {"[{\"a\":1,\"a\":2}]", 0, FP_REC_ERR_DUPLICATE, NULL},
    {HEAD ",\"x\":{\"a\":1,\"b\":[{\"c\":1,\"c\":2}]}}", 0, FP_REC_ERR_DUPLICATE, NULL},
    {HEAD ",\"schema\":1}", 0, FP_REC_ERR_DUPLICATE, NULL},
    {HEAD ",\"\\u0073chema\":1}", 0, FP_REC_ERR_DUPLICATE, NULL},
    {HEAD ",\"x\":\"a\\u0000b\"}", 0, FP_REC_ERR_NUL, NULL},
    {HEAD ",\"x\":\"a\\\\u0000b\"}", 0, 0, OUT "}"},
    {HEAD ",\"x\":\"\\uZZZZ\"}", 0, FP_REC_ERR_JSON, NULL},
    {HEAD ",\"x\":\"\\ud800\"}", 0, FP_REC_ERR_JSON, NULL},
    {HEAD ",\"x\":\"\\udc00\"}", 0, FP_REC_ERR_JSON, NULL},
    {HEAD ",\"x\":\"\\q\"}", 0, FP_REC_ERR_JSON, NULL},
    {HEAD ",\"x\":1.5.3}", 0, FP_REC_ERR_JSON, NULL},
    {HEAD ",\"x\":1e}", 0, FP_REC_ERR_JSON, NULL},
    {HEAD ",\"x\":.5}", 0, FP_REC_ERR_JSON, NULL},
    {HEAD ",\"x\":nul}", 0, FP_REC_ERR_JSON, NULL},
    {HEAD ",\"x\":[01,1.,-.5,1.e5,-0,1E+2]}", 0, 0, OUT "}"},
    /* Metric names the encoder must escape (it copies only the names the reader found plain). */
    {HEAD ",\"metrics\":{\"ok\":1,\"q\\\"x\":2,\"c\\u0001\":3,\"\xc3\xa9\":4,\"t\x01\":5,"
          "\"b\\\\\":6,\"long_plain_name_1\":7}}",
     0, 0,
     OUT ",\"metrics\":{\"ok\":1,\"q\\\"x\":2,\"c\\u0001\":3,\"\xc3\xa9\":4,\"t\\u0001\":5,"
         "\"b\\\\\":6,\"long_plain_name_1\":7}}"},
    {"{\"schema\":1.0,\"device_id\":\"d\\u00e9\\ud83d\\ude00\",\"ts\":\"2026-03-02T07:45:12Z\"}", 0,
     0,
     "{\"schema\":1,\"device_id\":\"d\xc3\xa9\xf0\x9f\x98\x80"
     "\",\"ts\":\"2026-03-02T07:45:12.000Z\"}"},
    {"{\"schema\":2,\"device_id\":\"d1\",\"ts\":\"2026-03-02T07:45:12.000Z\"}", 0,
     FP_REC_ERR_SCHEMA, NULL},
    {"{\"schema\":null,\"device_id\":\"d1\",\"ts\":\"2026-03-02T07:45:12.000Z\"}", 0,
     FP_REC_ERR_SCHEMA, NULL},
    {"{\"device_id\":\"d1\",\"ts\":\"x\"}", 0, FP_REC_ERR_SCHEMA, NULL},
    {"{\"schema\":1,\"device_id\":null,\"ts\":\"x\"}", 0, FP_REC_ERR_DEVICE_ID, NULL},
    {"{\"ts\":\"x\",\"schema\":1,\"device_id\":\".\"}", 0, FP_REC_ERR_TS, NULL},
    {"{\"schema\":1,\"device_id\":\"..\",\"ts\":\"2026-03-02T07:45:12.000Z\"}", 0,
     FP_REC_ERR_BAD_DEVICE_ID, NULL},
    /* The reference's order of fields decides, not the text's. */
    {"{\"priority\":999,\"ts\":\"x\",\"schema\":1,\"device_id\":\"d1\"}", 0, FP_REC_ERR_TS, NULL},
    {HEAD ",\"metrics\":{\"x\":null},\"io\":{\"1\":true}}", 0, FP_REC_ERR_SCHEMA, NULL},
    {HEAD ",\"received_at\":null,\"format\":null,\"priority\":null,\"event_io\":null,"
          "\"position\":null,\"io\":null,\"metrics\":null,\"enrichment\":null}",
     0, 0, OUT "}"},
    {HEAD ",\"received_at\":\"2026-03-02T07:45:13.204Z\",\"format\":\"teltonika.codec8e\","
          "\"priority\":1,\"event_io\":239,\"position\":{\"lat\":55.6761234,\"lon\":12.5683371,"
          "\"alt_m\":31,\"heading_deg\":270.5,\"speed_kmh\":0,\"satellites\":9,\"extra\":1},"
          "\"io\":{\"239\":1,\"256\":\"0aFF\"},\"metrics\":{\"ignition\":true,\"v\":24.31,"
          "\"s\":\"a\\nb\"},\"unknown\":{\"deep\":[1,{\"x\":null}]}}",
     0, 0, NULL},
    {HEAD ",\"position\":{\"lon\":1}}", 0, FP_REC_ERR_SCHEMA, NULL},
    {HEAD ",\"position\":{\"lat\":91,\"lon\":1}}", 0, FP_REC_ERR_SCHEMA, NULL},
    {HEAD ",\"position\":{\"lat\":1,\"lon\":1,\"alt_m\":1e999}}", 0, FP_REC_ERR_SCHEMA, NULL},
    {HEAD ",\"position\":{\"lat\":1,\"lon\":1,\"alt_m\":1e300}}", 0, FP_REC_ERR_RANGE, NULL},
    {HEAD ",\"io\":{\"1\":18446744073709551615,\"2\":9007199254740993,\"3\":1e3,\"4\":-0}}", 0, 0,
     OUT ",\"io\":{\"1\":18446744073709551615,\"2\":9007199254740993,\"3\":1000,\"4\":0}}"},
    {HEAD ",\"io\":{\"1\":18446744073709551616}}", 0, 0,
     OUT ",\"io\":{\"1\":18446744073709551615}}"},
    {HEAD ",\"io\":{\"1\":1,\"01\":2}}", 0, FP_REC_ERR_DUPLICATE, NULL},
    {HEAD ",\"io\":{\"65536\":1}}", 0, FP_REC_ERR_SCHEMA, NULL},
    {HEAD ",\"metrics\":{\"x\":1,\"x\":2}}", 0, FP_REC_ERR_DUPLICATE, NULL},
    /* The reader compares names only when a known one comes twice or two are unknown: each of
     * those paths, a known name that only looks like another, and long plain strings whose
     * quote, backslash or NUL falls at every place of an eight-byte word. */
    {HEAD ",\"position\":{\"lat\":1,\"lon\":2,\"lat\":null}}", 0, FP_REC_ERR_DUPLICATE, NULL},
    {HEAD ",\"position\":{\"lat\":1,\"lon\":2,\"la\\u0074\":3}}", 0, FP_REC_ERR_DUPLICATE, NULL},
    {HEAD ",\"position\":{\"lat\":1,\"lon\":2,\"lat \":3,\"lax\":4,\"lat \":5}}", 0,
     FP_REC_ERR_DUPLICATE, NULL},
    {HEAD ",\"position\":{\"lat\":1,\"lon\":2,\"lat \":3,\"lax\":4}}", 0, 0,
     OUT ",\"position\":{\"lat\":1,\"lon\":2}}"},
    {HEAD ",\"enrichment\":{\"status\":\"ok\",\"site\":{\"id\":\"S1\",\"id\":\"S2\"}}}", 0,
     FP_REC_ERR_DUPLICATE, NULL},
    {HEAD ",\"enrichment\":{\"status\":\"ok\",\"site\":{\"id\":\"S1\"},\"site\":null}}", 0,
     FP_REC_ERR_DUPLICATE, NULL},
    {HEAD ",\"schema\":null}", 0, FP_REC_ERR_DUPLICATE, NULL},
    {HEAD ",\"schem\":1,\"schemas\":1,\"\":1}", 0, 0, OUT "}"},
    {HEAD ",\"\":1,\"\":2}", 0, FP_REC_ERR_DUPLICATE, NULL},
    {HEAD ",\"format\":\"abcdefghijklmnop\"}", 0, 0, OUT ",\"format\":\"abcdefghijklmnop\"}"},
    {HEAD ",\"format\":\"abcdefghijklmno\\u0070\"}", 0, 0, OUT ",\"format\":\"abcdefghijklmnop\"}"},
    {HEAD ",\"format\":\"abcdefghijk\\\"\"}", 0, 0, NULL},
    {HEAD ",\"format\":\"abcdefghijkl", 0, FP_REC_ERR_JSON, NULL},
    {HEAD ",\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxx\":\"a\0b\"}",
     sizeof(HEAD ",\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxx\":\"a\0b\"}") - 1, FP_REC_ERR_NUL, NULL},
    {HEAD ",\"io\":{\"1\":12345678901234567890,\"2\":1234567890123456789.0}}", 0, 0, NULL},
    {HEAD ",\"io\":{\"1\":123456789012345678901}}", 0, FP_REC_ERR_SCHEMA, NULL},
    {HEAD ",\"enrichment\":{\"status\":\"ok\",\"site\":{\"id\":\"S1\",\"name\":null},"
          "\"address\":{\"city\":\"K\\u00f8ge\"},\"asset\":{}}}",
     0, 0, NULL},
    {HEAD ",\"enrichment\":{\"status\":null}}", 0, FP_REC_ERR_SCHEMA, NULL},
    {HEAD ",\"enrichment\":{\"status\":\"ok\",\"address\":{\"road\":5}}}", 0, FP_REC_ERR_SCHEMA,
     NULL},
    /* "none" carries a decoder's hints (ISO 15143-3 assets); without any it is refused, and
     * after every group's own errors. */
    {HEAD ",\"enrichment\":{\"status\":\"none\",\"asset\":{\"oem\":\"CAT\"}}}", 0, 0, NULL},
    {HEAD ",\"enrichment\":{\"status\":\"none\"}}", 0, FP_REC_ERR_SCHEMA, NULL},
    {HEAD ",\"enrichment\":{\"status\":\"none\",\"site\":null}}", 0, FP_REC_ERR_SCHEMA, NULL},
    {HEAD ",\"x\":\"a\0b\"}", sizeof(HEAD ",\"x\":\"a\0b\"}") - 1, FP_REC_ERR_NUL, NULL},
    {HEAD ",\"x\":\"\xff\"}", 0, FP_REC_ERR_JSON, NULL},
    /* Found by fuzzing against the reference, fixed there: exact big IO values whatever the
     * whitespace, a byte order mark or an escaped member name. */
    {"\xef\xbb\xbf" HEAD ",\"io\":{\"1\":18446744073709551614}}", 0, 0,
     OUT ",\"io\":{\"1\":18446744073709551614}}"},
    {HEAD ",\x01\"io\":{\x01\"1\":\x01"
          "18446744073709551614}}",
     0, 0, OUT ",\"io\":{\"1\":18446744073709551614}}"},
    {HEAD ",\"\\u0069o\":{\"1\":18446744073709551614}}", 0, 0,
     OUT ",\"io\":{\"1\":18446744073709551614}}"},
};

FP_TEST(record_read_matches_reference)
{
    fp_record a, b;
    fp_buf ea = {0}, eb = {0};

    fp_record_init(&a);
    fp_record_init(&b);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const read_case *c = &cases[i];
        size_t len = c->len != 0 ? c->len : strlen(c->json);
        char ma[256], mb[256];
        int ra = fp_record_decode_json(&a, c->json, len, ma, sizeof(ma));
        int rb = fp_record_decode_json_cjson(&b, c->json, len, mb, sizeof(mb));

        if (ra != c->code || rb != c->code) {
            fp_test_fail(__FILE__, __LINE__,
                         "case %zu: reader %d (%s), reference %d (%s), "
                         "expected %d",
                         i, ra, ma, rb, mb, c->code);
            continue;
        }
        if (ra != 0) {
            FP_CHECK(ma[0] != '\0');
            continue;
        }
        fp_buf_clear(&ea);
        fp_buf_clear(&eb);
        FP_CHECK_INT(fp_record_encode_json(&a, &ea), 0);
        FP_CHECK_INT(fp_record_encode_json(&b, &eb), 0);
        if (ea.len != eb.len || memcmp(ea.data, eb.data, ea.len) != 0)
            fp_test_fail(__FILE__, __LINE__, "case %zu: %.*s against %.*s", i, (int)ea.len, ea.data,
                         (int)eb.len, eb.data);
        else if (c->encoded != NULL)
            FP_CHECK_MEM(ea.data, ea.len, c->encoded);
    }
    fp_record_free(&a);
    fp_record_free(&b);
    fp_buf_free(&ea);
    fp_buf_free(&eb);
}

/* The same refusal gets the same message from both. */
FP_TEST(record_read_messages)
{
    static const char *const texts[] = {
        "{", HEAD "}x", "{\"device_id\":\"d1\"}", HEAD ",\"io\":{\"x\":1}}",
        HEAD ",\"position\":{\"lat\":1}}", HEAD ",\"enrichment\":{\"status\":\"great\"}}",
        HEAD ",\"a\":1,\"a\":2}", HEAD ",\"x\":\"\\u0000\"}",
        HEAD ",\"enrichment\":{\"status\":\"none\"}}",
        HEAD ",\"enrichment\":{\"status\":\"none\",\"asset\":{\"oem\":1}}}",
        /* Invalid UTF-8 before, at and after the 32-byte blocks the reader takes for ASCII
         * unchecked, and after a character that straddles a block's end: the offset is the
         * text's. */
        "{\"\xff\":1}", "{\"xxxxxxxxxxxxxxxxxxxxxxxxxxxx\":\"\xff\"}",
        "{\"xxxxxxxxxxxxxxxxxxxxxxxxxxx\":\"\xe2\x82\"}", HEAD ",\"x\":\"\xff\"}",
        HEAD ",\"format\":\"K\xc3\xb8ge\",\"x\":\"\xc3\"}",
        "{\"xxxxxxxxxxxxxxxxxxxxxxxxx\":\"\xc3\xb8\xc3\xb8\xff\"}",
        HEAD ",\"position\":{\"lat\":1,\"lon\":2,\"lat\":3}}",
        HEAD ",\"position\":{\"lat\":1,\"lon\":2,\"b\":3,\"b\":4}}"};
    fp_record a;

    fp_record_init(&a);
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        char ma[256], mb[256];

        fp_record_decode_json(&a, texts[i], strlen(texts[i]), ma, sizeof(ma));
        fp_record_decode_json_cjson(&a, texts[i], strlen(texts[i]), mb, sizeof(mb));
        FP_CHECK_STR(ma, mb);
    }
    fp_record_free(&a);
}
