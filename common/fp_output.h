/* fp_output: where a stage's results go, behind one contract.
 *
 * The stage runtime (fp_stage) consumes, hands each message to the service's handler, and
 * leaves making results durable to its output, in the style of Fluent Bit's output flush
 * callbacks: the output's flush answers OK (everything handed over so far is durable, with its
 * input offsets), RETRY (an infrastructure failure: nothing is lost, the output keeps what it
 * holds, the runtime stops taking input, says not ready and calls flush again after a backoff)
 * or ERROR (the output is unusable: the stage stops without committing anything unfinished).
 *
 * Two outputs exist: the Kafka output (fp_kafka_output.h: records to OUT_TOPIC, offsets stored
 * after delivery, or sent with a Kafka transaction under DELIVERY=exactly-once) and sink-svc's
 * database batch writer (sink-svc/batch.h). Every callback may be NULL (nothing to do). All are
 * called from the stage's thread (the main loop or librdkafka's rebalance callback within it). */
#ifndef FP_OUTPUT_H
#define FP_OUTPUT_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fp_stage fp_stage;

typedef enum fp_flush_result {
    FP_FLUSH_OK = 0,
    FP_FLUSH_RETRY = 1,
    FP_FLUSH_ERROR = 2
} fp_flush_result;

typedef struct fp_output {
    const char *name;
    /* Offsets travel with the output's own commits (Kafka transactions): the runtime never
     * stores them in the consumer group, and the producer is transactional. */
    bool transactional;
    /* Once the Kafka clients exist and before consuming. Returns 0, or -1 with a message. */
    int (*start)(fp_stage *st, void *ctx, char *err, size_t err_size);
    /* Before a message is handled (opens a transaction). Returns FP_FLUSH_OK or ERROR. */
    fp_flush_result (*begin)(fp_stage *st, void *ctx);
    /* Partitions are being assigned: may set where each starts (the database's offsets).
     * RETRY: called again after a backoff (consumption waits for it). */
    fp_flush_result (*assign)(fp_stage *st, rd_kafka_topic_partition_list_t *parts, void *ctx);
    /* Whether a flush is due now (a full or old batch, a transaction's interval). `idle`: the
     * consumer had nothing more to read at its last poll, so waiting longer only adds latency
     * (an output that batches flushes what it holds then). */
    bool (*due)(fp_stage *st, int64_t now_ms, bool idle, void *ctx);
    /* Makes everything handed over so far durable, see above. Also called on revocation and
     * shutdown (a clean one only), and after a RETRY. */
    fp_flush_result (*flush)(fp_stage *st, void *ctx);
    /* Called instead of flush when it is due, if set: like flush, but OK may leave the write in
     * progress, its messages held (fp_stage_hold) until it is durable, so that the stage goes on
     * reading meanwhile; `progress` finishes it. */
    fp_flush_result (*start_flush)(fp_stage *st, void *ctx);
    /* Every loop turn: drives a write start_flush left in progress. OK (done, or still going),
     * RETRY or ERROR as from flush. */
    fp_flush_result (*progress)(fp_stage *st, void *ctx);
    /* Gives up everything unfinished without committing any of it: after a fatal error, or for
     * lost partitions (they are someone else's already). */
    void (*abort)(fp_stage *st, void *ctx);
    /* Partitions are revoked, after flush (or abort): drop what is still held for them. */
    void (*revoked)(fp_stage *st, const rd_kafka_topic_partition_list_t *parts, void *ctx);
    /* False with a reason while the output cannot write (the database is away). */
    bool (*ready)(fp_stage *st, const char **why, void *ctx);
    /* A dead letter for `token` was confirmed (err 0) or failed. NULL: a failed dead letter
     * stops the stage (without a transaction) or fails its transaction (with one). */
    void (*dead_letter_done)(fp_stage *st, uint64_t token, rd_kafka_resp_err_t err, void *ctx);
    void *ctx;
} fp_output;

#endif
