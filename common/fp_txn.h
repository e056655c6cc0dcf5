/* fp_txn: the Kafka transaction state machine of DELIVERY=exactly-once (consume-transform-
 * produce), following librdkafka's examples/transactions.c: a transactional producer with a
 * stable transactional.id per replica; a transaction opens before the first message after a
 * commit, carries the input positions (send_offsets_to_transaction with the consumer group's
 * metadata) and commits every TXN_INTERVAL_MS; on an error that requires it, it is aborted and
 * the caller rewinds the consumer to the committed offsets.
 *
 *   closed --begin--> open --commit--> closed
 *                      |  \--abort---> closed (the caller rewinds)
 *                      \--fatal error--> failed (the process exits without committing)
 *
 * What to do after a failed transactional call depends only on the error's class; that
 * decision is fp_txn_classify, kept free of librdkafka so it can be tested on every class. */
#ifndef FP_TXN_H
#define FP_TXN_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/fp_metrics.h"

typedef enum fp_txn_action {
    FP_TXN_DONE = 0,  /* the call succeeded */
    FP_TXN_RETRY = 1, /* retriable: call again (after a short backoff) */
    FP_TXN_ABORT = 2, /* abort the transaction and rewind the consumer to committed offsets */
    FP_TXN_FATAL = 3  /* the producer is unusable: exit without committing, restart */
} fp_txn_action;

typedef struct fp_txn {
    rd_kafka_t *producer;
    bool open;
    bool failed;
    int64_t opened_ms;
    uint64_t messages; /* input messages handled in the open transaction */
    fp_counter *m_commits;
    fp_counter *m_aborts;
} fp_txn;

/* The action for an error's class (no error: FP_TXN_DONE). Fatal wins over everything, then
 * "requires abort", then "retriable"; any other error aborts, since the transaction's outcome
 * is unknown otherwise. */
fp_txn_action fp_txn_classify(bool has_error, bool fatal, bool retriable, bool requires_abort);

/* fp_txn_classify for a librdkafka error object (NULL: no error). Destroys the error. */
fp_txn_action fp_txn_action_of(rd_kafka_error_t *error, const char *what);

/* Whether an open transaction is due for commit: older than interval_ms, holding max
 * messages, or holding any while the input is drained (idle: committing then costs no
 * throughput and makes the records visible to read_committed consumers at once). */
bool fp_txn_due(int64_t opened_ms, int64_t now_ms, int64_t interval_ms, bool idle,
                uint64_t messages, uint64_t max_messages);

/* Initialises the producer's transactions (fences an earlier instance with the same
 * transactional.id). Returns 0, or -1 with a message in err. */
int fp_txn_init(fp_txn *t, rd_kafka_t *producer, const char *stage_labels, char *err,
                size_t err_size);

/* Opens a transaction unless one is open, and counts one more input message in it. Returns
 * FP_TXN_DONE or FP_TXN_FATAL. */
fp_txn_action fp_txn_begin(fp_txn *t);

/* Sends `positions` (the input offsets to commit, fp_stage_positions) with the consumer's group
 * metadata and commits. Returns FP_TXN_DONE (closed, or nothing was open), FP_TXN_ABORT (the
 * caller must abort and rewind) or FP_TXN_FATAL. */
fp_txn_action fp_txn_commit(fp_txn *t, rd_kafka_t *consumer,
                            const rd_kafka_topic_partition_list_t *positions);

/* Aborts the open transaction (nothing of it becomes visible to read_committed readers).
 * Returns FP_TXN_DONE or FP_TXN_FATAL. */
fp_txn_action fp_txn_abort(fp_txn *t);

#endif
