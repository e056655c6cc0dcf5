/* Tests of common/fp_dlq.c: the fp.error.* headers. */
#include <librdkafka/rdkafka.h>
#include <stdio.h>

#include "fp_dlq.h"
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
