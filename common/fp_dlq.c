#include "common/fp_dlq.h"

#include <stdio.h>
#include <string.h>

#include "common/fp_sha256.h"

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

size_t fp_dlq_headers_size(const rd_kafka_headers_t *h)
{
    const char *name;
    const void *value;
    size_t size, total = 0;

    for (size_t i = 0; h != NULL && rd_kafka_header_get_all(h, i, &name, &value, &size) ==
                                        RD_KAFKA_RESP_ERR_NO_ERROR;
         i++)
        total += strlen(name) + size + 10; /* two varint lengths at most 5 bytes each */
    return total;
}

/* The longest key a claim check keeps. */
#define CLAIM_KEY_MAX 1024

int fp_dlq_prepare(const void *key, size_t key_len, const void *value, size_t value_len,
                   const rd_kafka_headers_t *original, const fp_dlq_reason *why, size_t max_bytes,
                   fp_dlq_message *out)
{
    char num[32], digest[65];
    size_t room;

    (void)key; /* only its length matters: the caller sends its first key_len bytes */

    memset(out, 0, sizeof(*out));
    out->headers = fp_dlq_headers(original, why);
    if (out->headers == NULL)
        return -1;
    out->key_len = key_len;
    out->value_len = value_len;
    if (key_len + value_len + fp_dlq_headers_size(out->headers) + FP_DLQ_OVERHEAD <= max_bytes)
        return 0;
    /* A claim check: what fits, and what identifies the rest. */
    out->claim_check = true;
    if (fp_dlq_headers_size(out->headers) > max_bytes / 4) {
        rd_kafka_headers_destroy(out->headers);
        out->headers = fp_dlq_headers(NULL, why);
        if (out->headers == NULL)
            return -1;
    }
    fp_sha256_hex(value, value_len, digest);
    rd_kafka_header_add(out->headers, "fp.claim.sha256", -1, digest, -1);
    snprintf(num, sizeof(num), "%zu", value_len);
    rd_kafka_header_add(out->headers, "fp.claim.length", -1, num, -1);
    snprintf(num, sizeof(num), "%zu", key_len);
    rd_kafka_header_add(out->headers, "fp.claim.key_length", -1, num, -1);
    if (out->key_len > CLAIM_KEY_MAX)
        out->key_len = CLAIM_KEY_MAX;
    room = fp_dlq_headers_size(out->headers) + out->key_len + FP_DLQ_OVERHEAD;
    out->value_len = room < max_bytes ? max_bytes - room : 0;
    if (out->value_len > value_len)
        out->value_len = value_len;
    return 0;
}

rd_kafka_resp_err_t fp_dlq_produce(rd_kafka_t *producer, const char *dlq_topic, const void *key,
                                   size_t key_len, const void *value, size_t value_len,
                                   const rd_kafka_headers_t *original, const fp_dlq_reason *why,
                                   size_t max_bytes, void *opaque)
{
    fp_dlq_message m;
    rd_kafka_resp_err_t err;

    if (fp_dlq_prepare(key, key_len, value, value_len, original, why, max_bytes, &m) < 0)
        return RD_KAFKA_RESP_ERR__FAIL;
    /* On success the headers belong to the message; on failure they are still ours. */
    err = rd_kafka_producev(
        producer, RD_KAFKA_V_TOPIC(dlq_topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY((void *)key, m.key_len), RD_KAFKA_V_VALUE((void *)value, m.value_len),
        RD_KAFKA_V_HEADERS(m.headers), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        rd_kafka_headers_destroy(m.headers);
    return err;
}
