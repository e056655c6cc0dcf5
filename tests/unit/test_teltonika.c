/* Tests of parser-svc/teltonika.c and teltonika_frame.c: the example frames C1-C5 of
 * parser-svc/PROTOCOLS.md decoded field by field and rebuilt byte for byte, every error
 * code from a damaged frame, and the edges (negative coordinates, 255 records, NX text). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parser-svc/decode.h"
#include "fp_test.h"
#include "common/fp_json.h"
#include "common/fp_time.h"
#include "parser-svc/teltonika_frame.h"

#define NOW_MS INT64_C(1772437513204) /* 2026-03-02T07:45:13.204Z */
#define TS_MS  INT64_C(1772437512000) /* 2026-03-02T07:45:12.000Z */
#define IMEI   "356307042441013"

/* ---- Helpers ----------------------------------------------------------------------------- */

/* Hex text to bytes; returns the byte count (the text is trusted test data). */
static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;

    for (size_t i = 0; hex[i] != '\0' && hex[i + 1] != '\0' && n < cap; i += 2) {
        unsigned v = 0;

        for (int k = 0; k < 2; k++) {
            char c = hex[i + (size_t)k];

            v = v * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
        }
        out[n++] = (uint8_t)v;
    }
    return n;
}

/* Decodes with `dec` (detection when NULL) and key (may be NULL). Returns 0 or -1. */
static int decode_with(const decoder *dec, const void *data, size_t len, const char *key,
                       fp_record_batch *b, decode_error *err)
{
    decode_input in = {data, len, key, key != NULL ? strlen(key) : 0, NOW_MS};

    return decode_payload(dec, NULL, 0, &in, b, err);
}

/* Recomputes a TCP frame's data field length and CRC after the test changed its bytes. */
static void refresh_tcp(fp_buf *f)
{
    uint8_t *d = (uint8_t *)f->data;
    size_t dlen = f->len - 12;
    uint16_t crc = tk_crc16(d + 8, dlen);

    d[4] = (uint8_t)(dlen >> 24);
    d[5] = (uint8_t)(dlen >> 16);
    d[6] = (uint8_t)(dlen >> 8);
    d[7] = (uint8_t)dlen;
    d[f->len - 4] = 0;
    d[f->len - 3] = 0;
    d[f->len - 2] = (uint8_t)(crc >> 8);
    d[f->len - 1] = (uint8_t)crc;
}

/* Inserts n bytes at off into the buffer. */
static void insert_bytes(fp_buf *f, size_t off, const void *bytes, size_t n)
{
    FP_CHECK_INT(fp_buf_reserve(f, n), 0);
    memmove(f->data + off + n, f->data + off, f->len - off);
    memcpy(f->data + off, bytes, n);
    f->len += n;
}

/* Removes n bytes at off. */
static void remove_bytes(fp_buf *f, size_t off, size_t n)
{
    memmove(f->data + off, f->data + off + n, f->len - off - n);
    f->len -= n;
}

/* Checks that decoding fails with `code` and a message containing `part`. */
static void expect_error_at(const char *file, int line, const decoder *dec, const void *data,
                            size_t len, const char *key, const char *code, const char *part)
{
    fp_record_batch b = {0};
    decode_error err = {0};
    int rc = decode_with(dec, data, len, key, &b, &err);

    if (rc != -1 || err.code == NULL || strcmp(err.code, code) != 0 ||
        strstr(err.message, part) == NULL || b.len != 0)
        fp_test_fail(file, line, "expected %s (\"...%s...\"), got rc %d, %s: %s", code, part, rc,
                     err.code != NULL ? err.code : "(none)", err.message);
    decode_batch_free(&b);
}

#define EXPECT_ERROR(dec, buf, key, code, part)                                                    \
    expect_error_at(__FILE__, __LINE__, (dec), (buf)->data, (buf)->len, (key), (code), (part))

#define TCP (&decoder_teltonika_tcp)
#define UDP (&decoder_teltonika_udp)

/* The record JSON without received_at differences: both decoded at NOW_MS. */
static void check_same_json(const fp_record *a, const fp_record *b)
{
    fp_buf ja = {0}, jb = {0};

    FP_CHECK_INT(fp_record_encode_json(a, &ja), 0);
    FP_CHECK_INT(fp_record_encode_json(b, &jb), 0);
    FP_CHECK_STR(fp_buf_cstr(&ja), fp_buf_cstr(&jb));
    fp_buf_free(&ja);
    fp_buf_free(&jb);
}

static void check_metrics_json(const fp_record *r, const char *expected)
{
    fp_buf j = {0};

    /* Every named metric is marked plain, and is. */
    for (size_t i = 0; i < r->metrics_len; i++) {
        const fp_metric *m = &r->metrics[i];

        FP_CHECK(m->name_plain);
        FP_CHECK(fp_json_is_plain(fp_record_str(r, m->name), m->name.len));
    }

    FP_CHECK_INT(fp_record_encode_metrics_json(r, &j), 0);
    FP_CHECK_STR(fp_buf_cstr(&j), expected);
    fp_buf_free(&j);
}

/* ---- The example frames ------------------------------------------------------------------ */

struct ex_io {
    uint16_t id;
    uint8_t size;
    uint64_t value;
};

struct ex_rec {
    const char *ts; /* as the protocol document writes it */
    uint8_t priority;
    uint16_t event_io;
    uint8_t generation_type;
    size_t io_len;
    struct ex_io io[6];
    const char *metrics; /* expected metrics JSON */
};

struct example {
    const char *name;
    const char *hex;
    bool udp;
    uint8_t codec;
    const char *format;
    const char *device_id;
    size_t n;
    struct ex_rec recs[2];
};

static const struct example examples[] = {
    {"C1",
     "000000000000003608010000016B40D8EA30010000000000000000000000000000000105021503010101425E0F"
     "01F10000601A014E0000000000000000010000C7CF",
     false,
     TK_CODEC8,
     "teltonika.codec8",
     IMEI,
     1,
     {{"2019-06-10T10:04:46.000Z",
       1,
       1,
       0,
       5,
       {{21, 1, 3}, {1, 1, 1}, {66, 2, 24079}, {241, 4, 24602}, {78, 8, 0}},
       "{\"gsm_signal\":3,\"external_voltage_v\":24.079}"}}},
    {"C2",
     "000000000000004308020000016B40D57B480100000000000000000000000000000001010101000000000000016B"
     "40D5C198010000000000000000000000000000000101010101000000020000252C",
     false,
     TK_CODEC8,
     "teltonika.codec8",
     IMEI,
     2,
     {{"2019-06-10T10:01:01.000Z", 1, 1, 0, 1, {{1, 1, 0}}, "{}"},
      {"2019-06-10T10:01:19.000Z", 1, 1, 0, 1, {{1, 1, 1}}, "{}"}}},
    {"C3",
     "000000000000004A8E010000016B412CEE00010000000000000000000000000000000001000500010001010001001"
     "1"
     "001D00010010015E2C880002000B000000003544C87A000E000000001DD7E06A00000100002994",
     false,
     TK_CODEC8E,
     "teltonika.codec8e",
     IMEI,
     1,
     {{"2019-06-10T11:36:32.000Z",
       1,
       1,
       0,
       5,
       {{1, 1, 1}, {17, 2, 29}, {16, 4, 22949000}, {11, 8, 893700218}, {14, 8, 500686954}},
       "{\"odometer_m\":22949000}"}}},
    {"C4",
     "000000000000005F10020000016BDBC7833000000000000000000000000000000000000B050402000100000300"
     "02000B00270042563A00000000016BDBC7871800000000000000000000000000000000000B0504020001000003000"
     "2"
     "000B00260042563A00000200005FB3",
     false,
     TK_CODEC16,
     "teltonika.codec16",
     IMEI,
     2,
     {{"2019-07-10T12:06:54.000Z",
       0,
       11,
       5,
       4,
       {{1, 1, 0}, {3, 1, 0}, {11, 2, 39}, {66, 2, 22074}},
       "{\"external_voltage_v\":22.074}"},
      {"2019-07-10T12:06:55.000Z",
       0,
       11,
       5,
       4,
       {{1, 1, 0}, {3, 1, 0}, {11, 2, 38}, {66, 2, 22074}},
       "{\"external_voltage_v\":22.074}"}}},
    {"C5",
     "003DCAFE0105000F33353230393330383634303336353508010000016B4F815B30010000000000000000000000000"
     "0"
     "00000103021503010101425DBC000001",
     true,
     TK_CODEC8,
     "teltonika.codec8",
     "352093086403655",
     1,
     {{"2019-06-13T06:23:26.000Z",
       1,
       1,
       0,
       3,
       {{21, 1, 3}, {1, 1, 1}, {66, 2, 23996}},
       "{\"gsm_signal\":3,\"external_voltage_v\":23.996}"}}},
};

/* CRC-16/ARC one bit at a time, straight from its definition. */
static uint16_t crc16_bitwise(const uint8_t *data, size_t len)
{
    uint16_t crc = 0;

    for (size_t i = 0; i < len; i++) {
        crc ^= data[i];
        for (int bit = 0; bit < 8; bit++)
            crc = (uint16_t)(crc & 1 ? (crc >> 1) ^ 0xA001 : crc >> 1);
    }
    return crc;
}

FP_TEST(teltonika_crc16_check_value)
{
    uint8_t c1[128], noise[64];
    size_t n = unhex(examples[0].hex, c1, sizeof(c1));
    uint32_t x = 12345;

    /* The eight-at-a-time loop and its byte-wise tail agree with the definition at every
     * length and alignment. */
    for (size_t i = 0; i < sizeof(noise); i++) {
        x = x * 1103515245u + 12345u;
        noise[i] = (uint8_t)(x >> 16);
    }
    for (size_t off = 0; off < 8; off++)
        for (size_t len = 0; off + len <= sizeof(noise); len++)
            FP_CHECK_INT(tk_crc16(noise + off, len), crc16_bitwise(noise + off, len));

    FP_CHECK_INT(tk_crc16((const uint8_t *)"123456789", 9), 0xBB3D);
    FP_CHECK_INT(tk_crc16(NULL, 0), 0);
    /* C1's CRC covers codec id .. record count 2. */
    FP_CHECK_INT(tk_crc16(c1 + 8, n - 12), 0xC7CF);
}

FP_TEST(teltonika_decode_examples)
{
    for (size_t e = 0; e < sizeof(examples) / sizeof(examples[0]); e++) {
        const struct example *ex = &examples[e];
        uint8_t bytes[256];
        size_t len = unhex(ex->hex, bytes, sizeof(bytes));
        fp_record_batch b = {0};
        decode_error err = {0};

        /* Detection picks the framing; the UDP frame carries its own IMEI. */
        FP_CHECK(decoder_detect(NULL, 0, bytes, len) == (ex->udp ? UDP : TCP));
        if (decode_with(NULL, bytes, len, ex->udp ? NULL : ex->device_id, &b, &err) != 0) {
            fp_test_fail(__FILE__, __LINE__, "%s: %s: %s", ex->name, err.code, err.message);
            continue;
        }
        FP_CHECK_INT(b.len, ex->n);
        for (size_t i = 0; i < b.len && i < ex->n; i++) {
            const fp_record *r = &b.recs[i];
            const struct ex_rec *x = &ex->recs[i];
            char ts[32];

            FP_CHECK_INT(r->schema, 1);
            FP_CHECK_STR(r->device_id, ex->device_id);
            FP_CHECK_INT(fp_time_format_ms(r->ts_ms, ts, sizeof(ts)), 24);
            FP_CHECK_STR(ts, x->ts);
            FP_CHECK_INT(r->received_at_ms, NOW_MS);
            FP_CHECK_STR(r->format, ex->format);
            FP_CHECK_INT(r->priority, x->priority);
            FP_CHECK_INT(r->event_io, x->event_io);
            FP_CHECK(!r->has_position); /* every example has lat == lon == 0 */
            FP_CHECK_INT(r->io_len, x->io_len);
            for (size_t k = 0; k < r->io_len && k < x->io_len; k++) {
                FP_CHECK_INT(r->io[k].id, x->io[k].id);
                FP_CHECK_INT(r->io[k].kind, FP_IO_UINT);
                FP_CHECK(r->io[k].u == x->io[k].value);
            }
            check_metrics_json(r, x->metrics);
            FP_CHECK(r->enrichment.status == FP_ENRICH_NONE);
        }
        decode_batch_free(&b);
    }
}

FP_TEST(teltonika_c1_json)
{
    uint8_t bytes[128];
    size_t len = unhex(examples[0].hex, bytes, sizeof(bytes));
    fp_record_batch b = {0};
    decode_error err = {0};
    fp_buf j = {0};
    const fp_metric *m;

    FP_CHECK_INT(decode_with(NULL, bytes, len, IMEI, &b, &err), 0);
    FP_CHECK_INT(b.len, 1);
    if (b.len != 1)
        return;
    m = fp_record_metric(&b.recs[0], "external_voltage_v");
    FP_CHECK(m != NULL && m->kind == FP_METRIC_NUMBER && m->num == 24.079);
    FP_CHECK_INT(fp_record_encode_json(&b.recs[0], &j), 0);
    FP_CHECK_STR(
        fp_buf_cstr(&j),
        "{\"schema\":1,\"device_id\":\"356307042441013\",\"ts\":\"2019-06-10T10:04:46.000Z\","
        "\"received_at\":\"2026-03-02T07:45:13.204Z\",\"format\":\"teltonika.codec8\","
        "\"priority\":1,\"event_io\":1,\"io\":{\"21\":3,\"1\":1,\"66\":24079,\"241\":"
        "24602,\"78\":0},\"metrics\":{\"gsm_signal\":3,\"external_voltage_v\":24.079}}");
    fp_buf_free(&j);
    decode_batch_free(&b);
}

/* Builds the example's records as tk_avl_records (ios holds their IO elements). */
static void example_records(const struct example *ex, tk_avl_record *recs, tk_io (*ios)[6])
{
    for (size_t i = 0; i < ex->n; i++) {
        const struct ex_rec *x = &ex->recs[i];
        int64_t ms = 0;

        FP_CHECK_INT(fp_time_parse_ms(x->ts, strlen(x->ts), &ms), 0);
        memset(&recs[i], 0, sizeof(recs[i]));
        recs[i].ts_ms = ms;
        recs[i].priority = x->priority;
        recs[i].event_io = x->event_io;
        recs[i].generation_type = x->generation_type;
        for (size_t k = 0; k < x->io_len; k++)
            ios[i][k] = (tk_io){x->io[k].id, x->io[k].size, x->io[k].value, NULL, 0};
        recs[i].io = ios[i];
        recs[i].io_len = x->io_len;
    }
}

FP_TEST(teltonika_frame_rebuilds_examples)
{
    for (size_t e = 0; e < sizeof(examples) / sizeof(examples[0]); e++) {
        const struct example *ex = &examples[e];
        uint8_t bytes[256];
        size_t len = unhex(ex->hex, bytes, sizeof(bytes));
        tk_avl_record recs[2];
        tk_io ios[2][6];
        fp_buf f = {0};
        int rc;

        example_records(ex, recs, ios);
        if (ex->udp)
            rc = tk_frame_udp(&f, ex->codec, 0xCAFE, 0x05, ex->device_id, recs, ex->n);
        else
            rc = tk_frame_tcp(&f, ex->codec, recs, ex->n);
        FP_CHECK_INT(rc, 0);
        FP_CHECK_INT(f.len, len);
        if (f.len != len || memcmp(f.data, bytes, len) != 0)
            fp_test_fail(__FILE__, __LINE__, "%s rebuilt differs from the example", ex->name);
        fp_buf_free(&f);
    }
}

/* ---- Frames of our own ------------------------------------------------------------------- */

/* A typical record: parked with ignition on, at the design document's example position. */
static const tk_io base_io[] = {
    {239, 1, 1, NULL, 0},
    {66, 2, 24310, NULL, 0},
    {16, 4, 1532006, NULL, 0},
};

static tk_avl_record base_record(void)
{
    tk_avl_record r = {0};

    r.ts_ms = TS_MS;
    r.lat_e7 = 556761234;
    r.lon_e7 = 125683371;
    r.alt_m = 31;
    r.angle = 270;
    r.satellites = 9;
    r.event_io = 239;
    r.io = base_io;
    r.io_len = sizeof(base_io) / sizeof(base_io[0]);
    return r;
}

FP_TEST(teltonika_position_and_design_example)
{
    tk_avl_record rec = base_record();
    fp_record_batch b = {0};
    decode_error err = {0};
    fp_buf f = {0}, j = {0};

    FP_CHECK_INT(tk_frame_tcp(&f, TK_CODEC8E, &rec, 1), 0);
    FP_CHECK_INT(decode_with(NULL, f.data, f.len, IMEI, &b, &err), 0);
    FP_CHECK_INT(b.len, 1);
    if (b.len == 1) {
        FP_CHECK_INT(fp_record_encode_json(&b.recs[0], &j), 0);
        FP_CHECK_STR(fp_buf_cstr(&j),
                     "{\"schema\":1,\"device_id\":\"356307042441013\",\"ts\":\"2026-03-02T07:45:"
                     "12.000Z\",\"received_at\":\"2026-03-02T07:45:13.204Z\",\"format\":"
                     "\"teltonika.codec8e\",\"priority\":0,\"event_io\":239,\"position\":{\"lat\":"
                     "55.6761234,\"lon\":12.5683371,\"alt_m\":31,\"heading_deg\":270,\"speed_kmh\":"
                     "0,\"satellites\":9},\"io\":{\"239\":1,\"66\":24310,\"16\":1532006},"
                     "\"metrics\":{\"ignition\":true,\"external_voltage_v\":24.31,\"odometer_m\":"
                     "1532006}}");
    }
    fp_buf_free(&j);
    fp_buf_free(&f);
    decode_batch_free(&b);
}

FP_TEST(teltonika_negative_coordinates)
{
    tk_avl_record rec = base_record();
    fp_record_batch b = {0};
    decode_error err = {0};
    fp_buf f = {0};

    rec.lat_e7 = -338688197;
    rec.lon_e7 = -1512092955;
    rec.alt_m = -12;
    rec.angle = 359;
    rec.speed_kmh = 87;
    rec.satellites = 11;
    FP_CHECK_INT(tk_frame_tcp(&f, TK_CODEC8, &rec, 1), 0);
    FP_CHECK_INT(decode_with(NULL, f.data, f.len, IMEI, &b, &err), 0);
    FP_CHECK_INT(b.len, 1);
    if (b.len == 1) {
        const fp_position *p = &b.recs[0].position;
        fp_buf j = {0};

        FP_CHECK(b.recs[0].has_position);
        FP_CHECK(p->lat == -33.8688197);
        FP_CHECK(p->lon == -151.2092955);
        FP_CHECK(p->alt_m == -12);
        FP_CHECK(p->heading_deg == 359);
        FP_CHECK(p->speed_kmh == 87);
        FP_CHECK_INT(p->satellites, 11);
        FP_CHECK_INT(fp_record_encode_json(&b.recs[0], &j), 0);
        FP_CHECK(strstr(fp_buf_cstr(&j), "\"position\":{\"lat\":-33.8688197,\"lon\":-151.2092955,"
                                         "\"alt_m\":-12,\"heading_deg\":359,\"speed_kmh\":87,"
                                         "\"satellites\":11}") != NULL);
        fp_buf_free(&j);
    }
    /* Only exactly zero in both means "no position": one zero coordinate is a place. */
    fp_buf_clear(&f);
    rec.lat_e7 = 0;
    FP_CHECK_INT(tk_frame_tcp(&f, TK_CODEC8, &rec, 1), 0);
    FP_CHECK_INT(decode_with(NULL, f.data, f.len, IMEI, &b, &err), 0);
    FP_CHECK(b.len == 1 && b.recs[0].has_position && b.recs[0].position.lat == 0);
    fp_buf_free(&f);
    decode_batch_free(&b);
}

FP_TEST(teltonika_255_records)
{
    static tk_avl_record recs[256];
    fp_record_batch b = {0};
    decode_error err = {0};
    fp_buf f = {0};

    for (size_t i = 0; i < 256; i++) {
        recs[i] = base_record();
        recs[i].ts_ms = TS_MS - (int64_t)(255 - i) * 1000;
    }
    FP_CHECK_INT(tk_frame_tcp(&f, TK_CODEC8E, recs, 256), -1);
    FP_CHECK_INT(f.len, 0);
    FP_CHECK_INT(tk_frame_tcp(&f, TK_CODEC8E, recs, 255), 0);
    FP_CHECK_INT(decode_with(NULL, f.data, f.len, IMEI, &b, &err), 0);
    FP_CHECK_INT(b.len, 255);
    for (size_t i = 0; i < b.len; i++) {
        FP_CHECK_INT(b.recs[i].ts_ms, recs[i].ts_ms);
        FP_CHECK_INT(b.recs[i].io_len, 3);
        FP_CHECK_INT(b.recs[i].metrics_len, 3);
        FP_CHECK_STR(b.recs[i].device_id, IMEI);
    }
    /* The batch is reused: a one-record frame after it yields one record. */
    fp_buf_clear(&f);
    FP_CHECK_INT(tk_frame_tcp(&f, TK_CODEC8E, recs, 1), 0);
    FP_CHECK_INT(decode_with(NULL, f.data, f.len, IMEI, &b, &err), 0);
    FP_CHECK_INT(b.len, 1);
    fp_buf_free(&f);
    decode_batch_free(&b);
}

static const uint8_t vin_bytes[] = "WF0XXXGCDX1234567";
static const uint8_t dtc_bytes[] = "P0100,P0300\0\0"; /* NUL padding is trimmed */
static const uint8_t binary_bytes[] = {0x57, 0x00, 0xff};

static const tk_io nx_io[] = {
    {239, 1, 0, NULL, 0},       {256, 0, 0, vin_bytes, 17}, {300, 8, UINT64_MAX, NULL, 0},
    {281, 0, 0, dtc_bytes, 13}, {282, 0, 0, NULL, 0},
};

FP_TEST(teltonika_nx_vin_and_dtc)
{
    tk_avl_record rec = base_record();
    fp_record_batch b = {0};
    decode_error err = {0};
    fp_buf f = {0}, j = {0};

    rec.io = nx_io;
    rec.io_len = sizeof(nx_io) / sizeof(nx_io[0]);
    FP_CHECK_INT(tk_frame_tcp(&f, TK_CODEC8E, &rec, 1), 0);
    FP_CHECK_INT(decode_with(NULL, f.data, f.len, IMEI, &b, &err), 0);
    FP_CHECK_INT(b.len, 1);
    if (b.len == 1) {
        const fp_record *r = &b.recs[0];

        /* Group order: 1-byte, 8-byte, then NX in the order given. */
        FP_CHECK_INT(r->io_len, 5);
        FP_CHECK_INT(r->io[0].id, 239);
        FP_CHECK_INT(r->io[1].id, 300);
        FP_CHECK(r->io[1].kind == FP_IO_UINT && r->io[1].u == UINT64_MAX);
        FP_CHECK_INT(r->io[2].id, 256);
        FP_CHECK_INT(r->io[2].kind, FP_IO_HEX);
        FP_CHECK_MEM(fp_record_str(r, r->io[2].hex), r->io[2].hex.len,
                     "5746305858584743445831323334353637");
        FP_CHECK_INT(r->io[3].id, 281);
        FP_CHECK_MEM(fp_record_str(r, r->io[3].hex), r->io[3].hex.len,
                     "50303130302c50303330300000");
        FP_CHECK_INT(r->io[4].id, 282);
        FP_CHECK_INT(r->io[4].kind, FP_IO_HEX);
        FP_CHECK_INT(r->io[4].hex.len, 0);
        FP_CHECK_INT(fp_record_encode_json(r, &j), 0);
        FP_CHECK(strstr(fp_buf_cstr(&j),
                        "\"io\":{\"239\":0,\"300\":18446744073709551615,\"256\":"
                        "\"5746305858584743445831323334353637\",\"281\":\"50303130302c503033303000"
                        "00\",\"282\":\"\"},\"metrics\":{\"ignition\":false,\"vin\":"
                        "\"WF0XXXGCDX1234567\",\"dtc\":\"P0100,P0300\"}}") != NULL);
    }
    /* Bytes that are not ASCII text stay in io and make no metric. */
    fp_buf_clear(&f);
    {
        tk_io bin[] = {{256, 0, 0, binary_bytes, sizeof(binary_bytes)}};

        rec.io = bin;
        rec.io_len = 1;
        FP_CHECK_INT(tk_frame_tcp(&f, TK_CODEC8E, &rec, 1), 0);
        FP_CHECK_INT(decode_with(NULL, f.data, f.len, IMEI, &b, &err), 0);
        FP_CHECK(b.len == 1 && b.recs[0].io_len == 1 && b.recs[0].metrics_len == 0);
    }
    fp_buf_free(&j);
    fp_buf_free(&f);
    decode_batch_free(&b);
}

FP_TEST(teltonika_named_metrics)
{
    /* 107 and 103 come after 83 and 102 and lose to them. */
    static const tk_io all[] = {
        {239, 1, 1, NULL, 0},      {240, 1, 0, NULL, 0},     {115, 2, 0xff33, NULL, 0},
        {21, 4, 5, NULL, 0},       {66, 4, 24079, NULL, 0},  {67, 4, 4012, NULL, 0},
        {16, 4, 1532006, NULL, 0}, {199, 4, 12345, NULL, 0}, {181, 4, 12, NULL, 0},
        {182, 4, 9, NULL, 0},      {84, 4, 523, NULL, 0},    {89, 4, 77, NULL, 0},
        {83, 4, 12345, NULL, 0},   {107, 4, 99999, NULL, 0}, {102, 4, 125, NULL, 0},
        {103, 4, 999, NULL, 0},    {17, 4, 7, NULL, 0},
    };
    /* 107 and 103 come first (2-byte group) and are replaced by 83 and 102; 115 positive. */
    static const tk_io swapped[] = {
        {107, 2, 99999 & 0xffff, NULL, 0}, {103, 2, 999, NULL, 0}, {115, 2, 215, NULL, 0},
        {83, 4, 12345, NULL, 0},           {102, 4, 125, NULL, 0}, {239, 4, 1, NULL, 0},
    };
    tk_avl_record recs[2] = {base_record(), base_record()};
    fp_record_batch b = {0};
    decode_error err = {0};
    fp_buf f = {0};

    recs[0].io = all;
    recs[0].io_len = sizeof(all) / sizeof(all[0]);
    recs[1].io = swapped;
    recs[1].io_len = sizeof(swapped) / sizeof(swapped[0]);
    FP_CHECK_INT(tk_frame_tcp(&f, TK_CODEC8E, recs, 2), 0);
    FP_CHECK_INT(decode_with(NULL, f.data, f.len, IMEI, &b, &err), 0);
    FP_CHECK_INT(b.len, 2);
    if (b.len == 2) {
        FP_CHECK_INT(b.recs[0].io_len, 17);
        check_metrics_json(&b.recs[0],
                           "{\"ignition\":true,\"movement\":false,\"coolant_temp_c\":-20.5,"
                           "\"gsm_signal\":5,\"external_voltage_v\":24.079,\"battery_voltage_v\":"
                           "4.012,\"odometer_m\":1532006,\"trip_odometer_m\":12345,\"pdop\":1.2,"
                           "\"hdop\":0.9,\"fuel_level_l\":52.3,\"fuel_level_pct\":77,"
                           "\"fuel_used_l\":1234.5,\"engine_hours_h\":2.08}");
        FP_CHECK_INT(b.recs[1].io_len, 6);
        check_metrics_json(&b.recs[1], "{\"fuel_used_l\":1234.5,\"engine_hours_h\":2.08,"
                                       "\"coolant_temp_c\":21.5,\"ignition\":true}");
    }
    fp_buf_free(&f);
    decode_batch_free(&b);
}

FP_TEST(teltonika_udp_and_tcp_alike)
{
    tk_avl_record recs[3] = {base_record(), base_record(), base_record()};
    fp_record_batch bt = {0}, bu = {0};
    decode_error err = {0};
    fp_buf ft = {0}, fu = {0};

    recs[1].io = nx_io;
    recs[1].io_len = sizeof(nx_io) / sizeof(nx_io[0]);
    recs[2].lat_e7 = -338688197;
    recs[2].priority = 2;
    FP_CHECK_INT(tk_frame_tcp(&ft, TK_CODEC8E, recs, 3), 0);
    FP_CHECK_INT(tk_frame_udp(&fu, TK_CODEC8E, 7, 1, IMEI, recs, 3), 0);
    FP_CHECK(decoder_detect(NULL, 0, (const uint8_t *)fu.data, fu.len) == UDP);
    FP_CHECK_INT(decode_with(NULL, ft.data, ft.len, IMEI, &bt, &err), 0);
    /* A key that disagrees with the datagram's IMEI loses to it. */
    FP_CHECK_INT(decode_with(NULL, fu.data, fu.len, "999", &bu, &err), 0);
    FP_CHECK_INT(bt.len, 3);
    FP_CHECK_INT(bu.len, 3);
    for (size_t i = 0; i < bt.len && i < bu.len; i++) {
        FP_CHECK_STR(bu.recs[i].device_id, IMEI);
        check_same_json(&bt.recs[i], &bu.recs[i]);
    }
    fp_buf_free(&ft);
    fp_buf_free(&fu);
    decode_batch_free(&bt);
    decode_batch_free(&bu);
}

FP_TEST(teltonika_codec16_generation_type)
{
    static const tk_io io16[] = {
        {1, 1, 1, NULL, 0},
        {300, 4, 123456, NULL, 0},
        {66, 2, 12001, NULL, 0},
    };
    tk_avl_record rec = base_record();
    fp_record_batch b = {0}, first = {0};
    decode_error err = {0};
    fp_buf f = {0};
    static const uint8_t gens[] = {0, 1, 2, 4, 5, 6, 7};

    rec.io = io16;
    rec.io_len = 3;
    rec.event_io = 385; /* 2 bytes in Codec 16 */
    for (size_t g = 0; g < sizeof(gens); g++) {
        decode_batch_clear(&b);
        fp_buf_clear(&f);
        rec.generation_type = gens[g];
        FP_CHECK_INT(tk_frame_tcp(&f, TK_CODEC16, &rec, 1), 0);
        /* preamble 4, length 4, codec 1, count 1, record head 24, event IO id 2 */
        FP_CHECK_INT((uint8_t)f.data[36], gens[g]);
        FP_CHECK_INT((uint8_t)f.data[37], 3); /* total IO count, 1 byte */
        FP_CHECK_INT(decode_with(NULL, f.data, f.len, IMEI, g == 0 ? &first : &b, &err), 0);
        if (g == 0) {
            FP_CHECK_INT(first.len, 1);
            if (first.len != 1)
                break;
            FP_CHECK_STR(first.recs[0].format, "teltonika.codec16");
            FP_CHECK_INT(first.recs[0].event_io, 385);
            FP_CHECK_INT(first.recs[0].io_len, 3);
            FP_CHECK_INT(first.recs[0].io[0].id, 1);
            FP_CHECK_INT(first.recs[0].io[1].id, 66);
            FP_CHECK_INT(first.recs[0].io[2].id, 300);
            FP_CHECK_INT(first.recs[0].io[2].u, 123456);
            check_metrics_json(&first.recs[0], "{\"external_voltage_v\":12.001}");
        } else {
            FP_CHECK_INT(b.len, 1);
            if (b.len == 1)
                check_same_json(&first.recs[0], &b.recs[0]);
        }
    }
    fp_buf_free(&f);
    decode_batch_free(&b);
    decode_batch_free(&first);
}

FP_TEST(teltonika_detect)
{
    uint8_t c1[128], c5[128];
    size_t n1 = unhex(examples[0].hex, c1, sizeof(c1)), n5 = unhex(examples[4].hex, c5, 128);
    static const char json[] = "{\"schema\":1,\"device_id\":\"d\",\"ts\":\"2026-03-02T07:45:12Z\"}";
    static const char ct_udp[] = "application/vnd.teltonika.avl+udp";
    static const char ct_tcp[] = "Application/Vnd.Teltonika.AVL; v=1";
    uint8_t *fake;
    size_t fake_len = 0x7B22 + 2;
    const decoder *d;

    FP_CHECK(decoder_by_name("teltonika-tcp") == TCP);
    FP_CHECK(decoder_by_name("teltonika-udp") == UDP);
    FP_CHECK(decoder_detect(NULL, 0, c1, n1) == TCP);
    FP_CHECK(decoder_detect(NULL, 0, c5, n5) == UDP);
    FP_CHECK(decoder_detect(ct_udp, strlen(ct_udp), c1, n1) == UDP);
    FP_CHECK(decoder_detect(ct_tcp, strlen(ct_tcp), c5, n5) == TCP);
    d = decoder_detect(NULL, 0, (const uint8_t *)json, strlen(json));
    FP_CHECK(d != TCP && d != UDP);
    d = decoder_detect(NULL, 0, (const uint8_t *)"[{\"n\":\"x\",\"v\":1}]", 18);
    FP_CHECK(d != TCP && d != UDP);
    /* Short zero bytes are not a TCP frame; 11 bytes are too few. */
    FP_CHECK(!TCP->sniff(c1, 11));
    FP_CHECK(!UDP->sniff(c5, n5 - 1));
    FP_CHECK(!UDP->sniff(c1, n1));
    /* A payload that starts with '{' is never taken for a datagram, even when its first bytes
     * read as the right length, 0x01 and an IMEI length that fits. */
    fake = calloc(1, fake_len);
    FP_CHECK(fake != NULL);
    if (fake != NULL) {
        fake[0] = '{';
        fake[1] = '"';
        fake[4] = 0x01;
        fake[7] = 15;
        FP_CHECK(!UDP->sniff(fake, fake_len));
        /* The same shape without the '{' is claimed. */
        fake_len = 0x7C22 + 2;
        free(fake);
        fake = calloc(1, fake_len);
        if (fake != NULL) {
            fake[0] = 0x7C;
            fake[1] = 0x22;
            fake[4] = 0x01;
            fake[7] = 15;
            FP_CHECK(UDP->sniff(fake, fake_len));
        }
        free(fake);
    }
}

FP_TEST(teltonika_frame_rejects_what_the_codec_cannot_carry)
{
    tk_avl_record rec = base_record();
    tk_io io = {256, 4, 1, NULL, 0};
    tk_io nx = {256, 0, 0, vin_bytes, 17};
    tk_io odd = {1, 3, 1, NULL, 0};
    fp_buf f = {0};

    FP_CHECK_INT(fp_buf_append(&f, "x", 1), 0);
    rec.io_len = 1;
    rec.io = &io;
    FP_CHECK_INT(tk_frame_tcp(&f, TK_CODEC8, &rec, 1), -1); /* id 256 in 1 byte */
    FP_CHECK_INT(tk_frame_tcp(&f, TK_CODEC16, &rec, 1), 0);
    f.len = 1;
    rec.io = &nx;
    FP_CHECK_INT(tk_frame_tcp(&f, TK_CODEC16, &rec, 1), -1); /* NX outside 8E */
    FP_CHECK_INT(tk_frame_udp(&f, TK_CODEC8, 1, 1, IMEI, &rec, 1), -1);
    rec.io = &odd;
    FP_CHECK_INT(tk_frame_tcp(&f, TK_CODEC8E, &rec, 1), -1); /* no 3-byte group */
    rec.io = base_io;
    rec.io_len = 3;
    rec.event_io = 300;
    FP_CHECK_INT(tk_frame_tcp(&f, TK_CODEC8, &rec, 1), -1); /* event id in 1 byte */
    rec.event_io = 1;
    FP_CHECK_INT(tk_frame_tcp(&f, 0x0C, &rec, 1), -1);
    FP_CHECK_INT(tk_frame_udp(&f, TK_CODEC8, 1, 1, NULL, &rec, 1), -1);
    FP_CHECK_INT(f.len, 1); /* failures append nothing */
    fp_buf_free(&f);
}

/* ---- Errors ------------------------------------------------------------------------------ */

/* A valid Codec 8 TCP frame of the base record into f (cleared first). Layout: data field from
 * offset 8; codec 8, count 9, record 10..; event IO id at 34, total IO count at 35. */
static void base_frame(fp_buf *f, uint8_t codec)
{
    tk_avl_record rec = base_record();

    fp_buf_clear(f);
    FP_CHECK_INT(tk_frame_tcp(f, codec, &rec, 1), 0);
}

FP_TEST(teltonika_errors_framing)
{
    fp_buf f = {0};
    char crc_text[16];

    /* truncated: the frame ends before its declared length, or before a header field. */
    base_frame(&f, TK_CODEC8);
    f.len--;
    EXPECT_ERROR(NULL, &f, IMEI, "truncated", "bytes are present");
    f.len = 6;
    EXPECT_ERROR(TCP, &f, IMEI, "truncated", "data field length needs 4 bytes at offset 4");
    f.len = 3;
    EXPECT_ERROR(TCP, &f, IMEI, "truncated", "preamble needs 4 bytes at offset 0");

    /* truncated: consistent lengths and CRC, but the records end early. */
    base_frame(&f, TK_CODEC8);
    remove_bytes(&f, f.len - 6, 2); /* the 8-byte group count and record count 2 */
    refresh_tcp(&f);
    EXPECT_ERROR(NULL, &f, IMEI, "truncated", "record 1: IO group count needs 1 bytes");

    /* length_mismatch: a trailing byte after the CRC; bytes after record count 2. */
    base_frame(&f, TK_CODEC8);
    FP_CHECK_INT(fp_buf_putc(&f, 0), 0);
    EXPECT_ERROR(NULL, &f, IMEI, "length_mismatch", "bytes are present");
    base_frame(&f, TK_CODEC8);
    insert_bytes(&f, f.len - 4, "\0\0", 2);
    refresh_tcp(&f);
    EXPECT_ERROR(NULL, &f, IMEI, "length_mismatch", "2 bytes follow record count 2");

    /* bad_preamble */
    base_frame(&f, TK_CODEC8);
    f.data[2] = 1;
    EXPECT_ERROR(TCP, &f, IMEI, "bad_preamble", "found 00000100");

    /* crc_mismatch: both CRCs in the message. */
    base_frame(&f, TK_CODEC8);
    snprintf(crc_text, sizeof(crc_text), "0x%04X",
             tk_crc16((const uint8_t *)f.data + 8, f.len - 12));
    f.data[f.len - 1] ^= 0x01;
    EXPECT_ERROR(NULL, &f, IMEI, "crc_mismatch", crc_text);
    EXPECT_ERROR(NULL, &f, IMEI, "crc_mismatch", "0x0000");
    base_frame(&f, TK_CODEC8);
    f.data[f.len - 4] = 1; /* the two zero bytes before the CRC */
    EXPECT_ERROR(NULL, &f, IMEI, "crc_mismatch", "is 0x0100");

    /* unknown_codec */
    base_frame(&f, TK_CODEC8);
    f.data[8] = 0x0C;
    refresh_tcp(&f);
    EXPECT_ERROR(NULL, &f, IMEI, "unknown_codec",
                 "codec 0x0C at offset 8 carries commands, not records");
    f.data[8] = 0x42;
    refresh_tcp(&f);
    EXPECT_ERROR(NULL, &f, IMEI, "unknown_codec", "codec 0x42 at offset 8");

    /* count_mismatch */
    base_frame(&f, TK_CODEC8);
    f.data[f.len - 5] = 2;
    refresh_tcp(&f);
    EXPECT_ERROR(NULL, &f, IMEI, "count_mismatch", "record count 2 at offset");

    /* no_records: a frame of zero records. */
    fp_buf_clear(&f);
    FP_CHECK_INT(tk_frame_tcp(&f, TK_CODEC8E, NULL, 0), 0);
    EXPECT_ERROR(NULL, &f, IMEI, "no_records", "record count 1 at offset 9 is 0");

    /* An empty data field with a matching (zero) CRC. */
    fp_buf_clear(&f);
    FP_CHECK_INT(fp_buf_append(&f, "\0\0\0\0\0\0\0\0\0\0\0\0", 12), 0);
    EXPECT_ERROR(NULL, &f, IMEI, "truncated", "codec id needs 1 bytes at offset 8");
    fp_buf_free(&f);
}

FP_TEST(teltonika_errors_io_and_device)
{
    fp_buf f = {0};
    tk_avl_record rec = base_record();
    tk_io nx[] = {{1, 1, 1, NULL, 0}, {256, 0, 0, vin_bytes, 17}};
    char long_key[80];

    /* io_count_mismatch: total IO count too high (groups hold fewer) and too low (a group
     * holds more than the total leaves). */
    base_frame(&f, TK_CODEC8);
    FP_CHECK_INT((uint8_t)f.data[35], 3);
    f.data[35] = 4;
    refresh_tcp(&f);
    EXPECT_ERROR(NULL, &f, IMEI, "io_count_mismatch", "total IO count at offset 35 is 4");
    f.data[35] = 0;
    refresh_tcp(&f);
    EXPECT_ERROR(NULL, &f, IMEI, "io_count_mismatch", "1-byte IO group at offset 36");

    /* bad_position: coordinates beyond the poles or the antimeridian (int32 reaches 214.7°);
     * the limits themselves are places. */
    {
        tk_avl_record far = base_record();
        fp_record_batch b = {0};
        decode_error err = {0};

        far.lon_e7 = -2130706432;
        fp_buf_clear(&f);
        FP_CHECK_INT(tk_frame_tcp(&f, TK_CODEC8, &far, 1), 0);
        EXPECT_ERROR(NULL, &f, IMEI, "bad_position", "longitude -2130706432");
        far.lon_e7 = 1800000000;
        far.lat_e7 = 900000001;
        fp_buf_clear(&f);
        FP_CHECK_INT(tk_frame_tcp(&f, TK_CODEC8, &far, 1), 0);
        EXPECT_ERROR(NULL, &f, IMEI, "bad_position", "record 1: latitude 900000001");
        far.lat_e7 = -900000000;
        far.lon_e7 = -1800000000;
        fp_buf_clear(&f);
        FP_CHECK_INT(tk_frame_tcp(&f, TK_CODEC8, &far, 1), 0);
        FP_CHECK_INT(decode_with(NULL, f.data, f.len, IMEI, &b, &err), 0);
        FP_CHECK(b.len == 1 && b.recs[0].position.lat == -90 && b.recs[0].position.lon == -180);
        decode_batch_free(&b);
    }

    /* bad_io: an NX element longer than what is left of the data field. */
    rec.io = nx;
    rec.io_len = 2;
    fp_buf_clear(&f);
    FP_CHECK_INT(tk_frame_tcp(&f, TK_CODEC8E, &rec, 1), 0);
    /* ... NX count 2, id 2, length 2, 17 bytes, then count 2 (1) and CRC (4) */
    FP_CHECK_INT((uint8_t)f.data[f.len - 5 - 17 - 1], 17);
    f.data[f.len - 5 - 17 - 1] = 19;
    refresh_tcp(&f);
    EXPECT_ERROR(NULL, &f, IMEI, "bad_io", "NX IO element 256");
    f.data[f.len - 5 - 17 - 1] = 18; /* takes record count 2 as its last byte */
    refresh_tcp(&f);
    EXPECT_ERROR(NULL, &f, IMEI, "truncated", "record count 2 needs 1 bytes");

    /* missing_device_id / bad_device_id: the key of a TCP frame. */
    base_frame(&f, TK_CODEC8);
    EXPECT_ERROR(NULL, &f, NULL, "missing_device_id", "message key");
    EXPECT_ERROR(NULL, &f, "", "missing_device_id", "message key");
    EXPECT_ERROR(NULL, &f, "35630 7042441013", "bad_device_id", "0x20 at position 5");
    EXPECT_ERROR(NULL, &f, "35630\x01", "bad_device_id", "0x01 at position 5");
    memset(long_key, '7', 64);
    long_key[64] = '\0';
    EXPECT_ERROR(NULL, &f, long_key, "bad_device_id", "64 bytes");
    long_key[63] = '\0';
    {
        fp_record_batch b = {0};
        decode_error err = {0};

        FP_CHECK_INT(decode_with(NULL, f.data, f.len, long_key, &b, &err), 0);
        FP_CHECK(b.len == 1 && strcmp(b.recs[0].device_id, long_key) == 0);
        /* Any printable key is a device id, not only IMEIs. */
        FP_CHECK_INT(decode_with(NULL, f.data, f.len, "unit-7/A", &b, &err), 0);
        FP_CHECK(b.len == 1 && strcmp(b.recs[0].device_id, "unit-7/A") == 0);
        decode_batch_free(&b);
    }
    fp_buf_free(&f);
}

FP_TEST(teltonika_errors_udp)
{
    fp_buf f = {0};
    tk_avl_record rec = base_record();

    FP_CHECK_INT(tk_frame_udp(&f, TK_CODEC8, 1, 2, IMEI, &rec, 1), 0);
    /* The length field one short of the bytes present; one more than present. */
    f.data[1]--;
    EXPECT_ERROR(UDP, &f, NULL, "length_mismatch", "declares");
    f.data[1] = (char)(f.data[1] + 2);
    EXPECT_ERROR(UDP, &f, NULL, "truncated", "declares");
    f.data[1]--;
    /* Trailing bytes inside the declared length (a record count 2 that is not last). */
    FP_CHECK_INT(fp_buf_putc(&f, 0), 0);
    f.data[1]++;
    EXPECT_ERROR(NULL, &f, NULL, "length_mismatch", "1 bytes follow record count 2");
    f.len--;
    f.data[1]--;
    f.data[4] = 2;
    EXPECT_ERROR(UDP, &f, NULL, "bad_preamble", "expected 0x01 at offset 4");
    f.data[4] = 1;
    f.data[8 + 3] = 'A';
    EXPECT_ERROR(NULL, &f, NULL, "bad_device_id", "IMEI byte at offset 11 is 0x41");
    /* The IMEI length runs past the datagram. */
    f.data[8 + 3] = '6';
    f.data[7] = (char)0xF0;
    EXPECT_ERROR(UDP, &f, NULL, "truncated", "IMEI needs 240 bytes at offset 8");
    fp_buf_clear(&f);
    FP_CHECK_INT(tk_frame_udp(&f, TK_CODEC8, 1, 2, "", &rec, 1), 0);
    EXPECT_ERROR(UDP, &f, NULL, "bad_device_id", "IMEI length at offset 6 is 0");
    fp_buf_clear(&f);
    FP_CHECK_INT(tk_frame_udp(&f, TK_CODEC8, 1, 2, IMEI, &rec, 1), 0);
    f.len = 5;
    f.data[1] = 3;
    EXPECT_ERROR(UDP, &f, NULL, "truncated", "needs 6 bytes at offset 2");
    fp_buf_free(&f);
}

/* Every prefix and every single-byte change of every example frame decodes or fails cleanly,
 * never reading outside the exact-size copy (AddressSanitizer checks that in SANITIZE=1). */
FP_TEST(teltonika_prefixes_and_byte_changes)
{
    fp_record_batch b = {0};
    decode_error err = {0};
    static const uint8_t values[] = {0x00, 0x01, 0x7f, 0x80, 0xff};

    for (size_t e = 0; e < sizeof(examples) / sizeof(examples[0]); e++) {
        uint8_t bytes[256];
        size_t len = unhex(examples[e].hex, bytes, sizeof(bytes));
        const decoder *dec = examples[e].udp ? UDP : TCP;

        for (size_t n = 0; n < len; n++) {
            uint8_t *copy = malloc(n > 0 ? n : 1);

            FP_CHECK(copy != NULL);
            if (copy == NULL)
                return;
            memcpy(copy, bytes, n);
            if (decode_with(dec, copy, n, IMEI, &b, &err) != -1 || b.len != 0)
                fp_test_fail(__FILE__, __LINE__, "%s prefix %zu decoded", examples[e].name, n);
            free(copy);
        }
        for (size_t i = 0; i < len; i++) {
            for (size_t v = 0; v < sizeof(values); v++) {
                uint8_t *copy = malloc(len);
                int rc;

                FP_CHECK(copy != NULL);
                if (copy == NULL)
                    return;
                memcpy(copy, bytes, len);
                copy[i] = values[v];
                rc = decode_with(dec, copy, len, IMEI, &b, &err);
                FP_CHECK(rc == 0 || (rc == -1 && b.len == 0 && err.code != NULL));
                /* TCP frames are CRC-protected: a changed byte in the data field or CRC never
                 * decodes. */
                if (!examples[e].udp && i >= 8 && bytes[i] != values[v])
                    FP_CHECK_INT(rc, -1);
                free(copy);
            }
        }
    }
    decode_batch_free(&b);
}

/* A Teltonika record that names an IO element twice would store the first value in the typed
 * column and the last in jsonb: refused. A message key that is a dot segment is no device id. */
FP_TEST(teltonika_refuses_repeated_io_and_dot_device_ids)
{
    const tk_io io[] = {{239, 1, 1, NULL, 0}, {66, 2, 24310, NULL, 0}, {239, 1, 0, NULL, 0}};
    const tk_io once[] = {{239, 1, 1, NULL, 0}};
    tk_avl_record rec = {
        INT64_C(1772437512000), 0, 125683371, 556761234, 31, 270, 9, 0, 239, 0, io, 3};
    fp_record_batch b = {0};
    decode_error err = {0};
    fp_buf f = {0};
    decode_input in;

    FP_CHECK_INT(tk_frame_tcp(&f, TK_CODEC8E, &rec, 1), 0);
    in = (decode_input){(const uint8_t *)f.data, f.len, "356307042441013", 15,
                        INT64_C(1772437513204)};
    FP_CHECK_INT(decode_payload(&decoder_teltonika_tcp, NULL, 0, &in, &b, &err), -1);
    FP_CHECK(err.code != NULL && strcmp(err.code, "duplicate_key") == 0);

    fp_buf_clear(&f);
    rec.io = once;
    rec.io_len = 1;
    FP_CHECK_INT(tk_frame_tcp(&f, TK_CODEC8E, &rec, 1), 0);
    in = (decode_input){(const uint8_t *)f.data, f.len, "..", 2, INT64_C(1772437513204)};
    FP_CHECK_INT(decode_payload(&decoder_teltonika_tcp, NULL, 0, &in, &b, &err), -1);
    FP_CHECK(err.code != NULL && strcmp(err.code, "bad_device_id") == 0);
    in.key = "356307042441013";
    in.key_len = 15;
    FP_CHECK_INT(decode_payload(&decoder_teltonika_tcp, NULL, 0, &in, &b, &err), 0);
    FP_CHECK_INT(b.len, 1);
    fp_buf_free(&f);
    decode_batch_free(&b);
}
