/* fp_dlq: dead-letter messages. The failed message's key and value go to the DLQ unchanged,
 * with its own headers kept and the fp.error.* headers added (README.md, "Architecture and
 * contracts"): stage, code, message, topic, partition, offset, time. An operator can fix and
 * replay it from these. */
#ifndef FP_DLQ_H
#define FP_DLQ_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where a failed message came from and why it failed. */
typedef struct fp_dlq_reason {
    const char *stage;   /* parser | enricher | sink */
    const char *code;    /* stable short code, e.g. "crc_mismatch" */
    const char *message; /* human readable */
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t time_ms; /* when it failed, ms since epoch */
} fp_dlq_reason;

/* Builds the DLQ headers: a copy of `original` (may be NULL) without any earlier fp.error.*
 * headers, then the fp.error.* headers of `why`. Returns NULL on out of memory; the caller owns
 * the result (rd_kafka_headers_destroy, or hands it to rd_kafka_producev). */
rd_kafka_headers_t *fp_dlq_headers(const rd_kafka_headers_t *original, const fp_dlq_reason *why);

/* Bytes a message takes against the producer's message.max.bytes beyond its key, value and
 * headers (record framing), with room to spare. */
#define FP_DLQ_OVERHEAD 512

/* One dead letter ready to produce: what fp_dlq_prepare chose to send. */
typedef struct fp_dlq_message {
    rd_kafka_headers_t *headers; /* owned; rd_kafka_headers_destroy unless produced */
    size_t key_len;              /* the key's first key_len bytes are sent */
    size_t value_len;            /* the value's first value_len bytes are sent */
    bool claim_check;            /* the value (or key) was cut to fit */
} fp_dlq_message;

/* Builds a dead letter that fits in max_bytes (the producer's message.max.bytes): key, value
 * and fp_dlq_headers when they fit; otherwise a claim check — the original headers are dropped
 * when they do not fit, the key is cut to 1 KiB, and the value to the first bytes that fit,
 * with fp.claim.sha256 (hex SHA-256 of the whole value), fp.claim.length (its length in bytes)
 * and fp.claim.key_length added, so a DLQ write never fails for size and the operator can find
 * the whole message at its source (fp.error.topic/partition/offset). Returns 0, or -1 on out
 * of memory. */
int fp_dlq_prepare(const void *key, size_t key_len, const void *value, size_t value_len,
                   const rd_kafka_headers_t *original, const fp_dlq_reason *why, size_t max_bytes,
                   fp_dlq_message *out);

/* Bytes the headers take in a record (names, values and their length fields). */
size_t fp_dlq_headers_size(const rd_kafka_headers_t *h);

/* Produces one DLQ message (fp_dlq_prepare within max_bytes). `opaque` is the per-message
 * opaque passed to the delivery report. Returns the rd_kafka_producev error
 * (RD_KAFKA_RESP_ERR__QUEUE_FULL means: poll and try again). */
rd_kafka_resp_err_t fp_dlq_produce(rd_kafka_t *producer, const char *dlq_topic, const void *key,
                                   size_t key_len, const void *value, size_t value_len,
                                   const rd_kafka_headers_t *original, const fp_dlq_reason *why,
                                   size_t max_bytes, void *opaque);

#endif
