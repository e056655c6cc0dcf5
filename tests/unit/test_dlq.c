/* Tests of common/fp_dlq.c: the fp.error.* headers. */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <string.h>

#include "common/fp_dlq.h"
#include "common/fp_sha256.h"
#include "fp_test.h"

/* The value of the last header `name`, as a NUL-terminated copy in buf ("" when absent). */
static const char *header(const rd_kafka_headers_t *h, const char *name, char *buf, size_t size)
{
    const void *v = NULL;
    size_t len = 0;

    buf[0] = '\0';
    if (rd_kafka_header_get_last(h, name, &v, &len) == RD_KAFKA_RESP_ERR_NO_ERROR && v != NULL)
        snprintf(buf, size, "%.*s", (int)len, (const char *)v);
    return buf;
}

FP_TEST(dlq_headers)
{
    rd_kafka_headers_t *orig = rd_kafka_headers_new(4);
    rd_kafka_headers_t *h;
    fp_dlq_reason why = {"parser", "crc_mismatch", "CRC 0x1234 != 0xC7CF", "telemetry.raw",
                         7,        123456789012,   1767225600000};
    char buf[128];
    const void *v;
    size_t len;

    rd_kafka_header_add(orig, "content-type", -1, "application/octet-stream", -1);
    rd_kafka_header_add(orig, "fp.error.code", -1, "old_code", -1);
    h = fp_dlq_headers(orig, &why);
    FP_CHECK(h != NULL);
    FP_CHECK_STR(header(h, "content-type", buf, sizeof(buf)), "application/octet-stream");
    FP_CHECK_STR(header(h, "fp.error.stage", buf, sizeof(buf)), "parser");
    FP_CHECK_STR(header(h, "fp.error.code", buf, sizeof(buf)), "crc_mismatch");
    FP_CHECK_STR(header(h, "fp.error.message", buf, sizeof(buf)), "CRC 0x1234 != 0xC7CF");
    FP_CHECK_STR(header(h, "fp.error.topic", buf, sizeof(buf)), "telemetry.raw");
    FP_CHECK_STR(header(h, "fp.error.partition", buf, sizeof(buf)), "7");
    FP_CHECK_STR(header(h, "fp.error.offset", buf, sizeof(buf)), "123456789012");
    FP_CHECK_STR(header(h, "fp.error.time", buf, sizeof(buf)), "1767225600000");
    /* The earlier reason is replaced, not repeated. */
    FP_CHECK(rd_kafka_header_get(h, 1, "fp.error.code", &v, &len) == RD_KAFKA_RESP_ERR__NOENT);
    FP_CHECK_INT(rd_kafka_header_cnt(h), 8);
    rd_kafka_headers_destroy(h);
    h = fp_dlq_headers(NULL, &why);
    FP_CHECK_INT(rd_kafka_header_cnt(h), 7);
    rd_kafka_headers_destroy(h);
    rd_kafka_headers_destroy(orig);
}

FP_TEST(dlq_prepare_fits_whole)
{
    fp_dlq_reason why = {"parser", "bad_json", "x", "telemetry.raw", 0, 1, 2};
    fp_dlq_message m;
    char buf[80];

    FP_CHECK_INT(fp_dlq_prepare("k", 1, "value", 5, NULL, &why, 1000000, &m), 0);
    FP_CHECK(!m.claim_check);
    FP_CHECK_INT(m.key_len, 1);
    FP_CHECK_INT(m.value_len, 5);
    FP_CHECK_STR(header(m.headers, "fp.claim.sha256", buf, sizeof(buf)), "");
    rd_kafka_headers_destroy(m.headers);
}

/* A payload too large for the DLQ becomes a claim check: the first bytes that fit, the digest
 * and length of the whole, and librdkafka accepts it under the same message.max.bytes. */
FP_TEST(dlq_claim_check_fits_the_producer)
{
    enum { MAX = 100000, LEN = 150000 };
    fp_dlq_reason why = {"parser", "too_large", "record of 150000 bytes", "telemetry.raw", 3, 42,
                         2};
    static char value[LEN];
    char key[3000], buf[80], expect[65], errstr[256];
    rd_kafka_headers_t *orig = rd_kafka_headers_new(1);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;
    fp_dlq_message m;

    memset(value, 'v', sizeof(value));
    memset(key, 'k', sizeof(key));
    rd_kafka_header_add(orig, "content-type", -1, "application/json", -1);
    FP_CHECK_INT(fp_dlq_prepare(key, sizeof(key), value, sizeof(value), orig, &why, MAX, &m), 0);
    FP_CHECK(m.claim_check);
    FP_CHECK_INT(m.key_len, 1024);
    FP_CHECK(m.value_len > MAX / 2 && m.value_len < MAX);
    FP_CHECK(m.key_len + m.value_len + fp_dlq_headers_size(m.headers) + FP_DLQ_OVERHEAD <= MAX);
    fp_sha256_hex(value, sizeof(value), expect);
    FP_CHECK_STR(header(m.headers, "fp.claim.sha256", buf, sizeof(buf)), expect);
    FP_CHECK_STR(header(m.headers, "fp.claim.length", buf, sizeof(buf)), "150000");
    FP_CHECK_STR(header(m.headers, "fp.claim.key_length", buf, sizeof(buf)), "3000");
    FP_CHECK_STR(header(m.headers, "fp.error.code", buf, sizeof(buf)), "too_large");
    FP_CHECK_STR(header(m.headers, "content-type", buf, sizeof(buf)), "application/json");
    rd_kafka_headers_destroy(m.headers);

    /* librdkafka's own size check (at produce time, no broker needed). */
    rd_kafka_conf_set(conf, "bootstrap.servers", "127.0.0.1:1", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "message.max.bytes", "100000", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof(errstr));
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    FP_CHECK(rk != NULL);
    if (rk != NULL) {
        FP_CHECK_INT(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("t"),
                                       RD_KAFKA_V_VALUE(value, sizeof(value)), RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
        FP_CHECK_INT(fp_dlq_produce(rk, "dlq", key, sizeof(key), value, sizeof(value), orig, &why,
                                    MAX, NULL),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
        rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE);
        rd_kafka_destroy(rk);
    }
    rd_kafka_headers_destroy(orig);
}

FP_TEST(sha256_vectors)
{
    static char million[1000000];
    char hex[65];

    fp_sha256_hex("", 0, hex);
    FP_CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    fp_sha256_hex("abc", 3, hex);
    FP_CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    fp_sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, hex);
    FP_CHECK_STR(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    memset(million, 'a', sizeof(million));
    fp_sha256_hex(million, sizeof(million), hex);
    FP_CHECK_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
