/* fp_dlq: dead-letter messages. The failed message's key and value go to the DLQ unchanged,
 * with its own headers kept and the fp.error.* headers added (README.md, "Architecture and
 * contracts"): stage, code, message, topic, partition, offset, time. An operator can fix and
 * replay it from these. */
#ifndef FP_DLQ_H
#define FP_DLQ_H

#include <librdkafka/rdkafka.h>
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

/* Produces one DLQ message (key and value as given) with fp_dlq_headers. `opaque` is the
 * per-message opaque passed to the delivery report. Returns the rd_kafka_producev error
 * (RD_KAFKA_RESP_ERR__QUEUE_FULL means: poll and try again). */
rd_kafka_resp_err_t fp_dlq_produce(rd_kafka_t *producer, const char *dlq_topic, const void *key,
                                   size_t key_len, const void *value, size_t value_len,
                                   const rd_kafka_headers_t *original, const fp_dlq_reason *why,
                                   void *opaque);

#endif
