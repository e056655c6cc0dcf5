#include "fp_txn.h"

#include "fp_log.h"

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

bool fp_txn_due(int64_t opened_ms, int64_t now_ms, int64_t interval_ms, uint64_t messages,
                uint64_t max_messages)
{
    return now_ms - opened_ms >= interval_ms || messages >= max_messages;
}
