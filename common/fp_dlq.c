#include "fp_dlq.h"

#include <stdio.h>
#include <string.h>

rd_kafka_headers_t *fp_dlq_headers(const rd_kafka_headers_t *original, const fp_dlq_reason *why)
{
    rd_kafka_headers_t *h;
    char num[32];
    size_t i = 0;
    const char *name;
    const void *value;
    size_t size;

    h = rd_kafka_headers_new(8 + (original != NULL ? rd_kafka_header_cnt(original) : 0));
    if (h == NULL)
        return NULL;
    /* A message replayed from the DLQ that fails again must not carry two reasons. */
    while (original != NULL && rd_kafka_header_get_all(original, i++, &name, &value, &size) ==
                                   RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (strncmp(name, "fp.error.", 9) != 0)
            rd_kafka_header_add(h, name, -1, value, value != NULL ? (ssize_t)size : 0);
    }
    rd_kafka_header_add(h, "fp.error.stage", -1, why->stage, -1);
    rd_kafka_header_add(h, "fp.error.code", -1, why->code, -1);
    rd_kafka_header_add(h, "fp.error.message", -1, why->message, -1);
    rd_kafka_header_add(h, "fp.error.topic", -1, why->topic, -1);
    snprintf(num, sizeof(num), "%d", (int)why->partition);
    rd_kafka_header_add(h, "fp.error.partition", -1, num, -1);
    snprintf(num, sizeof(num), "%lld", (long long)why->offset);
    rd_kafka_header_add(h, "fp.error.offset", -1, num, -1);
    snprintf(num, sizeof(num), "%lld", (long long)why->time_ms);
    rd_kafka_header_add(h, "fp.error.time", -1, num, -1);
    return h;
}

rd_kafka_resp_err_t fp_dlq_produce(rd_kafka_t *producer, const char *dlq_topic, const void *key,
                                   size_t key_len, const void *value, size_t value_len,
                                   const rd_kafka_headers_t *original, const fp_dlq_reason *why,
                                   void *opaque)
{
    rd_kafka_headers_t *h = fp_dlq_headers(original, why);
    rd_kafka_resp_err_t err;

    if (h == NULL)
        return RD_KAFKA_RESP_ERR__FAIL;
    /* On success the headers belong to the message; on failure they are still ours. */
    err = rd_kafka_producev(
        producer, RD_KAFKA_V_TOPIC(dlq_topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY((void *)key, key_len), RD_KAFKA_V_VALUE((void *)value, value_len),
        RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        rd_kafka_headers_destroy(h);
    return err;
}
