/* fp_kafka_output: the stage output of parser-svc and enricher-svc — records to OUT_TOPIC.
 *
 * DELIVERY=at-least-once: a record holds its input message (fp_stage) until its delivery
 * report, and the runtime stores the input offsets that became committable; a flush waits for
 * the producer's queue to empty. DELIVERY=exactly-once: records, dead letters and the input
 * positions go in one Kafka transaction (fp_txn), committed when due, on revocation and on
 * shutdown; a failed commit aborts and rewinds, a fatal error aborts and never commits.
 *
 * A record that does not fit the producer's message.max.bytes is not produced: it goes to the
 * DLQ with code too_large, as a claim check (fp_dlq_prepare), and its input finishes. */
#ifndef FP_KAFKA_OUTPUT_H
#define FP_KAFKA_OUTPUT_H

#include <stddef.h>
#include <stdint.h>

#include "common/fp_config.h"
#include "common/fp_output.h"
#include "common/fp_stage.h"

typedef struct fp_kafka_output fp_kafka_output;

/* The output for cfg->delivery; NULL on out of memory. Pass fp_kafka_output_ops() of it to
 * fp_stage_new. */
fp_kafka_output *fp_kafka_output_new(const fp_common_config *cfg);
const fp_output *fp_kafka_output_ops(const fp_kafka_output *ko);
void fp_kafka_output_free(fp_kafka_output *ko); /* accepts NULL */

/* Produces one record to OUT_TOPIC for the message being handled. Blocks (serving delivery
 * reports) while the producer's queue is full. Returns 0, or -1 on a non-retriable produce
 * error (the handler then returns -1). */
int fp_kafka_output_emit(fp_stage *st, const void *key, size_t key_len, const void *value,
                         size_t value_len);

/* Produces one record for a held message (fp_stage_hold's token). */
int fp_kafka_output_emit_for(fp_stage *st, uint64_t token, const void *key, size_t key_len,
                             const void *value, size_t value_len);

#endif
