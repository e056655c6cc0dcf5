/* fp_txn: Kafka transactions for consume-transform-produce (DELIVERY=exactly-once), following
 * librdkafka's examples/transactions.c: a transactional producer with a stable
 * transactional.id per replica, the input offsets sent to the transaction with the consumer
 * group's metadata, a commit every TXN_INTERVAL_MS, and on an error that requires it, abort
 * and rewind the consumer to the committed offsets.
 *
 * What to do after a failed transactional call depends only on the error's class; that
 * decision is fp_txn_classify, kept free of librdkafka so it can be tested on every class. */
#ifndef FP_TXN_H
#define FP_TXN_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum fp_txn_action {
    FP_TXN_DONE = 0,  /* the call succeeded */
    FP_TXN_RETRY = 1, /* retriable: call again (after a short backoff) */
    FP_TXN_ABORT = 2, /* abort the transaction and rewind the consumer to committed offsets */
    FP_TXN_FATAL = 3  /* the producer is unusable: exit without committing, restart */
} fp_txn_action;

/* The action for an error's class (no error: FP_TXN_DONE). Fatal wins over everything, then
 * "requires abort", then "retriable"; any other error aborts, since the transaction's outcome
 * is unknown otherwise. */
fp_txn_action fp_txn_classify(bool has_error, bool fatal, bool retriable, bool requires_abort);

/* fp_txn_classify for a librdkafka error object (NULL: no error). Destroys the error. */
fp_txn_action fp_txn_action_of(rd_kafka_error_t *error, const char *what);

/* Whether an open transaction is due for commit: older than interval_ms, or holding max
 * messages. */
bool fp_txn_due(int64_t opened_ms, int64_t now_ms, int64_t interval_ms, uint64_t messages,
                uint64_t max_messages);

#endif
