#include "common/fp_txn.h"

#include <stdio.h>

#include "common/fp_log.h"
#include "common/fp_time.h"

fp_txn_action fp_txn_classify(bool has_error, bool fatal, bool retriable, bool requires_abort)
{
    if (!has_error)
        return FP_TXN_DONE;
    if (fatal)
        return FP_TXN_FATAL;
    if (requires_abort)
        return FP_TXN_ABORT;
    if (retriable)
        return FP_TXN_RETRY;
    return FP_TXN_ABORT;
}

fp_txn_action fp_txn_action_of(rd_kafka_error_t *error, const char *what)
{
    fp_txn_action a;

    if (error == NULL)
        return FP_TXN_DONE;
    a = fp_txn_classify(true, rd_kafka_error_is_fatal(error), rd_kafka_error_is_retriable(error),
                        rd_kafka_error_txn_requires_abort(error));
    fp_log_kv(a == FP_TXN_RETRY ? FP_LOG_WARN : FP_LOG_ERROR, "transaction call failed", "call",
              what, "error", rd_kafka_error_string(error), "action",
              a == FP_TXN_RETRY   ? "retry"
              : a == FP_TXN_ABORT ? "abort and rewind"
                                  : "fatal",
              FP_KV_END);
    rd_kafka_error_destroy(error);
    return a;
}

bool fp_txn_due(int64_t opened_ms, int64_t now_ms, int64_t interval_ms, bool idle,
                uint64_t messages, uint64_t max_messages)
{
    return now_ms - opened_ms >= interval_ms || messages >= max_messages || (idle && messages > 0);
}

int fp_txn_init(fp_txn *t, rd_kafka_t *producer, const char *stage_labels, char *err,
                size_t err_size)
{
    char labels[128];
    rd_kafka_error_t *error;

    t->producer = producer;
    t->open = t->failed = false;
    snprintf(labels, sizeof(labels), "%s,result=\"committed\"", stage_labels);
    t->m_commits =
        fp_metrics_counter("fleetpipe_transactions_total",
                           "Kafka transactions (DELIVERY=exactly-once), by result.", labels);
    snprintf(labels, sizeof(labels), "%s,result=\"aborted\"", stage_labels);
    t->m_aborts =
        fp_metrics_counter("fleetpipe_transactions_total",
                           "Kafka transactions (DELIVERY=exactly-once), by result.", labels);
    error = rd_kafka_init_transactions(producer, 30000);
    if (error != NULL) {
        snprintf(err, err_size, "init_transactions: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        return -1;
    }
    return 0;
}

fp_txn_action fp_txn_begin(fp_txn *t)
{
    if (t->failed)
        return FP_TXN_FATAL;
    if (!t->open) {
        rd_kafka_error_t *error = rd_kafka_begin_transaction(t->producer);

        if (error != NULL) {
            fp_txn_action_of(error, "begin_transaction");
            t->failed = true;
            return FP_TXN_FATAL;
        }
        t->open = true;
        t->opened_ms = fp_mono_ms();
        t->messages = 0;
    }
    t->messages++;
    return FP_TXN_DONE;
}

fp_txn_action fp_txn_commit(fp_txn *t, rd_kafka_t *consumer,
                            const rd_kafka_topic_partition_list_t *positions)
{
    rd_kafka_consumer_group_metadata_t *cgmd;
    fp_txn_action a;

    if (t->failed)
        return FP_TXN_FATAL;
    if (!t->open)
        return FP_TXN_DONE;
    cgmd = rd_kafka_consumer_group_metadata(consumer);
    do
        a = fp_txn_action_of(rd_kafka_send_offsets_to_transaction(t->producer, positions, cgmd, -1),
                             "send_offsets_to_transaction");
    while (a == FP_TXN_RETRY);
    while (a == FP_TXN_DONE && (a = fp_txn_action_of(rd_kafka_commit_transaction(t->producer, -1),
                                                     "commit_transaction")) == FP_TXN_RETRY)
        ;
    rd_kafka_consumer_group_metadata_destroy(cgmd);
    if (a == FP_TXN_DONE) {
        /* The offsets were committed with the transaction: nothing to commit through the
         * consumer (doing so could only repeat them). */
        t->open = false;
        fp_counter_inc(t->m_commits);
    } else if (a == FP_TXN_FATAL) {
        t->failed = true;
    }
    return a;
}

fp_txn_action fp_txn_abort(fp_txn *t)
{
    fp_txn_action a;

    if (t->failed)
        return FP_TXN_FATAL;
    if (!t->open)
        return FP_TXN_DONE;
    do
        a = fp_txn_action_of(rd_kafka_abort_transaction(t->producer, -1), "abort_transaction");
    while (a == FP_TXN_RETRY);
    if (a != FP_TXN_DONE) {
        t->failed = true;
        return FP_TXN_FATAL;
    }
    t->open = false;
    fp_counter_inc(t->m_aborts);
    return FP_TXN_DONE;
}
