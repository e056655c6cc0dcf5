#include "common/fp_kafka_output.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fp_dlq.h"
#include "common/fp_log.h"
#include "common/fp_time.h"
#include "common/fp_txn.h"

struct fp_kafka_output {
    fp_output ops;
    const fp_common_config *cfg;
    fp_txn txn;
};

static int ko_start(fp_stage *st, void *ctx, char *err, size_t err_size)
{
    fp_kafka_output *ko = ctx;
    char labels[64];

    snprintf(labels, sizeof(labels), "stage=\"%s\"", fp_stage_name(st));
    if (fp_txn_init(&ko->txn, fp_stage_producer(st), labels, err, err_size) < 0)
        return -1;
    fp_info("exactly-once: commit every %lld ms", (long long)ko->cfg->txn_interval_ms);
    return 0;
}

static fp_flush_result ko_begin(fp_stage *st, void *ctx)
{
    fp_kafka_output *ko = ctx;

    (void)st;
    return fp_txn_begin(&ko->txn) == FP_TXN_DONE ? FP_FLUSH_OK : FP_FLUSH_ERROR;
}

static bool ko_due(fp_stage *st, int64_t now_ms, bool idle, void *ctx)
{
    fp_kafka_output *ko = ctx;

    (void)st;
    return ko->txn.open && fp_txn_due(ko->txn.opened_ms, now_ms, ko->cfg->txn_interval_ms, idle,
                                      ko->txn.messages, (uint64_t)ko->cfg->max_inflight);
}

static void ko_abort(fp_stage *st, void *ctx)
{
    fp_kafka_output *ko = ctx;

    if (!ko->txn.open)
        return;
    if (fp_txn_abort(&ko->txn) != FP_TXN_DONE) {
        fp_stage_fail(st, "the transaction could not be aborted");
        return;
    }
    /* Everything the aborted transaction consumed is read and processed again. */
    if (!fp_stage_failed(st))
        fp_stage_rewind(st);
}

/* Exactly-once: held messages are finished first (they belong in the transaction), then it
 * commits; what cannot be finished in time, or a commit that fails, aborts it. */
static fp_flush_result ko_flush_txn(fp_stage *st, fp_kafka_output *ko)
{
    rd_kafka_topic_partition_list_t *positions;
    fp_txn_action a;

    if (!ko->txn.open)
        return FP_FLUSH_OK;
    if (fp_stage_settle(st, fp_mono_ms() + ko->cfg->shutdown_timeout_ms) < 0) {
        fp_warn("held messages did not finish in time; aborting the transaction");
        ko_abort(st, ko);
        return fp_stage_failed(st) ? FP_FLUSH_ERROR : FP_FLUSH_OK;
    }
    positions = fp_stage_positions(st);
    if (positions == NULL) {
        fp_stage_fail(st, "out of memory listing the transaction's offsets");
        return FP_FLUSH_ERROR;
    }
    a = fp_txn_commit(&ko->txn, fp_stage_consumer(st), positions);
    rd_kafka_topic_partition_list_destroy(positions);
    if (a == FP_TXN_ABORT)
        ko_abort(st, ko);
    if (a == FP_TXN_FATAL || fp_stage_failed(st))
        return FP_FLUSH_ERROR;
    return FP_FLUSH_OK;
}

static fp_flush_result ko_flush(fp_stage *st, void *ctx)
{
    fp_kafka_output *ko = ctx;

    if (ko->ops.transactional)
        return ko_flush_txn(st, ko);
    /* At-least-once: what is not delivered in time is read again by whoever owns the
     * partition next (its offset was never stored). */
    if (fp_stage_drain_producer(st, ko->cfg->shutdown_timeout_ms) < 0)
        fp_warn("%d records still undelivered after %lld ms; their input will be read again",
                rd_kafka_outq_len(fp_stage_producer(st)), (long long)ko->cfg->shutdown_timeout_ms);
    return FP_FLUSH_OK;
}

fp_kafka_output *fp_kafka_output_new(const fp_common_config *cfg)
{
    fp_kafka_output *ko = calloc(1, sizeof(*ko));

    if (ko == NULL)
        return NULL;
    ko->cfg = cfg;
    ko->ops = (fp_output){
        .name = "kafka",
        .transactional = strcmp(cfg->delivery, "exactly-once") == 0,
        .flush = ko_flush,
        .ctx = ko,
    };
    if (ko->ops.transactional) {
        ko->ops.start = ko_start;
        ko->ops.begin = ko_begin;
        ko->ops.due = ko_due;
        ko->ops.abort = ko_abort;
    }
    return ko;
}

const fp_output *fp_kafka_output_ops(const fp_kafka_output *ko)
{
    return &ko->ops;
}

void fp_kafka_output_free(fp_kafka_output *ko)
{
    free(ko);
}

int fp_kafka_output_emit_for(fp_stage *st, uint64_t token, const void *key, size_t key_len,
                             const void *value, size_t value_len)
{
    rd_kafka_t *producer = fp_stage_producer(st);
    const char *topic = fp_stage_config(st)->out_topic;
    rd_kafka_resp_err_t err;

    if (key_len + value_len + FP_DLQ_OVERHEAD > fp_stage_max_message(st)) {
        char why[160];

        snprintf(why, sizeof(why), "a record of %zu bytes exceeds message.max.bytes %zu",
                 key_len + value_len, fp_stage_max_message(st));
        fp_log_kv(FP_LOG_WARN, "record too large for the output topic; sent to the DLQ", "reason",
                  why, FP_KV_END);
        return fp_stage_dead_letter_payload(st, token, key, key_len, value, value_len, "too_large",
                                            why);
    }
    fp_stage_hold_token(st, token); /* the record's own hold, released by its delivery */
    for (;;) {
        err = rd_kafka_producev(
            producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY((void *)key, key_len), RD_KAFKA_V_VALUE((void *)value, value_len),
            RD_KAFKA_V_OPAQUE((void *)(uintptr_t)token), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        fp_stage_serve(st, 50);
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fp_error("produce to %s: %s", topic, rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

int fp_kafka_output_emit(fp_stage *st, const void *key, size_t key_len, const void *value,
                         size_t value_len)
{
    return fp_kafka_output_emit_for(st, fp_stage_current(st), key, key_len, value, value_len);
}
