#include "fp_stage.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fp_dlq.h"
#include "fp_http.h"
#include "fp_kafka.h"
#include "fp_log.h"
#include "fp_metrics.h"
#include "fp_offsets.h"
#include "fp_signal.h"
#include "fp_time.h"
#include "fp_txn.h"

struct fp_stage {
    const char *name;
    const fp_common_config *cfg;
    rd_kafka_t *consumer;
    rd_kafka_t *producer;
    fp_offsets *offsets;
    bool paused;
    bool fatal;

    /* The message being handled and its token. */
    const rd_kafka_message_t *current;
    uint64_t current_token;

    const fp_stage_hooks *hooks;
    void *hooks_ctx;
    int64_t busy_since_ms;

    /* DELIVERY=exactly-once */
    bool eos;
    bool txn_open;
    int64_t txn_opened_ms;
    uint64_t txn_messages;
    char txn_id[256];
    const char *producer_props[1][2];
    fp_counter *m_txn_commits;
    fp_counter *m_txn_aborts;

    fp_counter *m_consumed;
    fp_counter *m_produced;
    fp_counter *m_delivery_errors;
    fp_gauge *m_inflight;
    fp_gauge *m_paused;
    fp_gauge *m_connected;
    fp_histogram *m_handle_seconds;
};

/* Producer delivery report: the record is durable (or the producer gave up: fatal). */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    fp_stage *st = fp_kafka_user(rk);
    uint64_t token = (uint64_t)(uintptr_t)msg->_private;

    (void)opaque;
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        /* With message.timeout.ms=0 only non-retriable errors end here. The input message stays
         * unfinished, so its offset is never committed: after the restart it is read again.
         * In a transaction the commit fails instead, and the transaction is aborted. */
        fp_counter_inc(st->m_delivery_errors);
        fp_log_kv(FP_LOG_ERROR, "delivery failed", "topic", rd_kafka_topic_name(msg->rkt), "error",
                  rd_kafka_err2str(msg->err), FP_KV_END);
        if (!st->eos)
            st->fatal = true;
        return;
    }
    fp_counter_inc(st->m_produced);
    fp_offsets_release(st->offsets, token);
}

/* Collects partitions whose committable offset moved; the topic is the one input topic. */
typedef struct store_ctx {
    rd_kafka_topic_partition_list_t *list;
    const char *topic;
} store_ctx;

static void collect_one(int32_t partition, int64_t offset, void *arg)
{
    store_ctx *sc = arg;

    rd_kafka_topic_partition_list_add(sc->list, sc->topic, partition)->offset = offset;
}

/* Serves delivery reports and stores the offsets they made committable. */
static void serve_producer(fp_stage *st, int timeout_ms)
{
    store_ctx sc = {NULL, st->cfg->in_topic};

    rd_kafka_poll(st->producer, timeout_ms);
    sc.list = rd_kafka_topic_partition_list_new(4);
    fp_offsets_collect(st->offsets, collect_one, &sc);
    /* In a transaction the offsets travel with it (send_offsets_to_transaction). */
    if (sc.list->cnt > 0 && !st->eos) {
        rd_kafka_resp_err_t err = rd_kafka_offsets_store(st->consumer, sc.list);

        /* _STATE/unassigned: the partition was revoked meanwhile; its new owner re-reads. */
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__STATE)
            fp_warn("offsets_store: %s", rd_kafka_err2str(err));
    }
    rd_kafka_topic_partition_list_destroy(sc.list);
    fp_gauge_set(st->m_inflight, (double)fp_offsets_inflight(st->offsets));
}

/* Waits until every produced record is delivered or the timeout passes, storing offsets. */
static void drain_producer(fp_stage *st, int64_t timeout_ms)
{
    int64_t deadline = fp_mono_ms() + timeout_ms;

    while (rd_kafka_outq_len(st->producer) > 0 && fp_mono_ms() < deadline && !st->fatal) {
        serve_producer(st, 50);
        fp_health_beat();
    }
    serve_producer(st, 0);
    if (rd_kafka_outq_len(st->producer) > 0)
        fp_warn("%d messages still undelivered after %lld ms; their input will be read again",
                rd_kafka_outq_len(st->producer), (long long)timeout_ms);
}

/* Commits the stored offsets now (synchronously). */
static void commit_stored(fp_stage *st)
{
    rd_kafka_resp_err_t err = rd_kafka_commit(st->consumer, NULL, 0);

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
        fp_warn("offset commit: %s", rd_kafka_err2str(err));
}

static size_t held_by_stage(const fp_stage *st)
{
    return st->hooks != NULL && st->hooks->pending != NULL ? st->hooks->pending(st->hooks_ctx) : 0;
}

static void poll_hook(fp_stage *st, int max_wait_ms)
{
    if (st->hooks != NULL && st->hooks->poll != NULL)
        st->hooks->poll(st, max_wait_ms, st->hooks_ctx);
}

static void txn_commit(fp_stage *st);
static void txn_abort(fp_stage *st, bool rewind);

/* Assigns or revokes, incrementally under the cooperative protocol. */
static void apply_assignment(rd_kafka_t *rk, bool assign, rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_error_t *error = NULL;

    if (strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0)
        error = assign ? rd_kafka_incremental_assign(rk, parts)
                       : rd_kafka_incremental_unassign(rk, parts);
    else
        rd_kafka_assign(rk, assign ? parts : NULL);
    if (error != NULL) {
        fp_error("%s: %s", assign ? "assign" : "unassign", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    fp_stage *st = fp_kafka_user(rk);

    (void)opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        fp_info("assigned %d partitions", parts->cnt);
        apply_assignment(rk, true, parts);
        if (st->paused)
            rd_kafka_pause_partitions(rk, parts);
        return;
    }
    fp_info("revoking %d partitions: finishing their in-flight records", parts->cnt);
    if (st->eos && st->txn_open) {
        /* Lost partitions belong to someone else already: what this transaction did with them
         * must not be committed. Revoked ones are handed over cleanly by committing first. */
        if (rd_kafka_assignment_lost(rk))
            txn_abort(st, false);
        else
            txn_commit(st);
    }
    if (st->hooks != NULL && st->hooks->revoked != NULL)
        for (int i = 0; i < parts->cnt; i++)
            st->hooks->revoked(st, parts->elems[i].partition, st->hooks_ctx);
    if (!st->eos) {
        /* Finish what the revoked partitions started so their offsets can be committed before
         * the next owner starts; what does not finish in time is read again by the next owner. */
        drain_producer(st, st->cfg->shutdown_timeout_ms);
        commit_stored(st);
    }
    for (int i = 0; i < parts->cnt; i++)
        fp_offsets_forget(st->offsets, parts->elems[i].partition);
    apply_assignment(rk, false, parts);
}

/* Opens a transaction before the first message after a commit. Returns 0 or -1 (fatal). */
static int txn_begin(fp_stage *st)
{
    rd_kafka_error_t *error;

    if (!st->eos || st->txn_open)
        return 0;
    error = rd_kafka_begin_transaction(st->producer);
    if (error != NULL) {
        fp_txn_action_of(error, "begin_transaction");
        st->fatal = true;
        return -1;
    }
    st->txn_open = true;
    st->txn_opened_ms = fp_mono_ms();
    st->txn_messages = 0;
    return 0;
}

/* Moves every assigned partition back to its committed offset (the beginning when none). */
static void rewind_to_committed(fp_stage *st)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_error_t *error;

    if (rd_kafka_assignment(st->consumer, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    if (parts->cnt > 0 &&
        rd_kafka_committed(st->consumer, parts, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (int i = 0; i < parts->cnt; i++) {
            if (parts->elems[i].offset < 0)
                parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
            if (st->hooks != NULL && st->hooks->revoked != NULL)
                st->hooks->revoked(st, parts->elems[i].partition, st->hooks_ctx);
            fp_offsets_forget(st->offsets, parts->elems[i].partition);
        }
        error = rd_kafka_seek_partitions(st->consumer, parts, 10000);
        if (error != NULL) {
            fp_error("rewind: %s", rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
        }
    }
    rd_kafka_topic_partition_list_destroy(parts);
}

/* Aborts the open transaction; with rewind, the consumer goes back to the committed offsets
 * and everything held since is dropped (it is read and processed again). */
static void txn_abort(fp_stage *st, bool rewind)
{
    fp_txn_action a;

    if (!st->txn_open)
        return;
    do
        a = fp_txn_action_of(rd_kafka_abort_transaction(st->producer, -1), "abort_transaction");
    while (a == FP_TXN_RETRY);
    if (a == FP_TXN_FATAL) {
        st->fatal = true;
        return;
    }
    st->txn_open = false;
    fp_counter_inc(st->m_txn_aborts);
    if (rewind)
        rewind_to_committed(st);
}

/* Commits the open transaction with the input offsets it consumed up to. Held messages are
 * finished first (they belong in it); what cannot be finished in time aborts it. */
static void txn_commit(fp_stage *st)
{
    int64_t deadline = fp_mono_ms() + st->cfg->shutdown_timeout_ms;
    rd_kafka_topic_partition_list_t *offsets = NULL;
    rd_kafka_consumer_group_metadata_t *cgmd;
    fp_txn_action a;

    if (!st->txn_open)
        return;
    while (held_by_stage(st) > 0 && fp_mono_ms() < deadline && !st->fatal) {
        poll_hook(st, 10);
        serve_producer(st, 0);
        fp_health_beat();
    }
    if (held_by_stage(st) > 0) {
        fp_warn("held messages did not finish in time; aborting the transaction");
        txn_abort(st, true);
        return;
    }
    if (rd_kafka_assignment(st->consumer, &offsets) != RD_KAFKA_RESP_ERR_NO_ERROR)
        offsets = rd_kafka_topic_partition_list_new(0);
    rd_kafka_position(st->consumer, offsets);
    cgmd = rd_kafka_consumer_group_metadata(st->consumer);
    do
        a = fp_txn_action_of(rd_kafka_send_offsets_to_transaction(st->producer, offsets, cgmd, -1),
                             "send_offsets_to_transaction");
    while (a == FP_TXN_RETRY);
    while (a == FP_TXN_DONE && (a = fp_txn_action_of(rd_kafka_commit_transaction(st->producer, -1),
                                                     "commit_transaction")) == FP_TXN_RETRY)
        ;
    rd_kafka_consumer_group_metadata_destroy(cgmd);
    if (a == FP_TXN_DONE) {
        st->txn_open = false;
        /* The offsets were committed with the transaction: nothing to commit through the
         * consumer (doing so could only repeat them). */
        fp_counter_inc(st->m_txn_commits);
    } else if (a == FP_TXN_ABORT) {
        txn_abort(st, true);
    } else {
        st->fatal = true;
    }
    rd_kafka_topic_partition_list_destroy(offsets);
}

fp_stage *fp_stage_new(const char *stage_name, const fp_common_config *cfg, char *err,
                       size_t err_size)
{
    fp_kafka_hooks consumer_hooks = {.rebalance_cb = on_rebalance};
    fp_kafka_hooks producer_hooks = {.dr_msg_cb = on_delivery};
    char labels[64];
    fp_stage *st;

    if (cfg->out_topic == NULL || cfg->out_topic[0] == '\0') {
        snprintf(err, err_size, "OUT_TOPIC: required but not set");
        return NULL;
    }
    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    st->name = stage_name;
    st->cfg = cfg;
    st->eos = strcmp(cfg->delivery, "exactly-once") == 0;
    if (st->eos) {
        static const char *const consumer_props[][2] = {
            {"enable.auto.commit", "false"},
            {"isolation.level", "read_committed"},
            {"partition.assignment.strategy", "cooperative-sticky"},
        };
        char host[128] = "localhost";

        gethostname(host, sizeof(host) - 1);
        snprintf(st->txn_id, sizeof(st->txn_id), "%s-%s", cfg->kafka_group_id, host);
        if (cfg->transactional_id != NULL && cfg->transactional_id[0] != '\0')
            snprintf(st->txn_id, sizeof(st->txn_id), "%s", cfg->transactional_id);
        st->producer_props[0][0] = "transactional.id";
        st->producer_props[0][1] = st->txn_id;
        consumer_hooks.props = consumer_props;
        consumer_hooks.nprops = 3;
        producer_hooks.props = (const char *const(*)[2])st->producer_props;
        producer_hooks.nprops = 1;
    }
    st->offsets = fp_offsets_new();
    if (st->offsets == NULL) {
        snprintf(err, err_size, "out of memory");
        goto err;
    }
    st->consumer = fp_kafka_new(FP_KAFKA_CONSUMER, cfg, st, &consumer_hooks, err, err_size);
    if (st->consumer == NULL)
        goto err;
    st->producer = fp_kafka_new(FP_KAFKA_PRODUCER, cfg, st, &producer_hooks, err, err_size);
    if (st->producer == NULL)
        goto err;

    snprintf(labels, sizeof(labels), "stage=\"%s\"", stage_name);
    st->m_consumed = fp_metrics_counter("fleetpipe_messages_consumed_total",
                                        "Input messages taken from the input topic.", labels);
    st->m_produced =
        fp_metrics_counter("fleetpipe_records_produced_total",
                           "Records delivered to the output topic or the DLQ.", labels);
    st->m_delivery_errors = fp_metrics_counter("fleetpipe_delivery_errors_total",
                                               "Records the producer failed to deliver.", labels);
    st->m_inflight =
        fp_metrics_gauge("fleetpipe_inflight_messages",
                         "Input messages whose outputs are not all delivered yet.", labels);
    st->m_paused = fp_metrics_gauge("fleetpipe_consumer_paused",
                                    "1 while consumption is paused for backpressure.", labels);
    st->m_connected =
        fp_metrics_gauge("fleetpipe_kafka_connected",
                         "1 while both Kafka clients have a broker connection.", labels);
    st->m_txn_commits = fp_metrics_counter("fleetpipe_transactions_total",
                                           "Kafka transactions (DELIVERY=exactly-once), by result.",
                                           st->eos ? "result=\"committed\"" : "result=\"none\"");
    st->m_txn_aborts = fp_metrics_counter("fleetpipe_transactions_total",
                                          "Kafka transactions (DELIVERY=exactly-once), by result.",
                                          st->eos ? "result=\"aborted\"" : "result=\"none\"");
    if (st->eos) {
        rd_kafka_error_t *error = rd_kafka_init_transactions(st->producer, 30000);

        if (error != NULL) {
            snprintf(err, err_size, "init_transactions (transactional.id %s): %s", st->txn_id,
                     rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
            goto err;
        }
        fp_info("exactly-once: transactional.id %s, commit every %lld ms", st->txn_id,
                (long long)cfg->txn_interval_ms);
    }
    st->m_handle_seconds = fp_metrics_histogram("fleetpipe_handle_duration_seconds",
                                                "Time to handle one input message in process.",
                                                labels, fp_latency_buckets, fp_latency_buckets_len);
    return st;
err:
    fp_stage_free(st);
    return NULL;
}

void fp_stage_free(fp_stage *st)
{
    if (st == NULL)
        return;
    if (st->consumer != NULL)
        fp_kafka_destroy(st->consumer);
    if (st->producer != NULL)
        fp_kafka_destroy(st->producer);
    fp_offsets_free(st->offsets);
    free(st);
}

/* Pauses or resumes every assigned partition. */
static void set_paused(fp_stage *st, bool paused)
{
    rd_kafka_topic_partition_list_t *parts = NULL;

    if (rd_kafka_assignment(st->consumer, &parts) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (paused)
            rd_kafka_pause_partitions(st->consumer, parts);
        else
            rd_kafka_resume_partitions(st->consumer, parts);
        rd_kafka_topic_partition_list_destroy(parts);
    }
    st->paused = paused;
    fp_gauge_set(st->m_paused, paused ? 1 : 0);
}

/* Applies backpressure: pause at MAX_INFLIGHT or while the stage says it is busy, resume
 * below half of MAX_INFLIGHT once it is not. */
/* A stage that says it is busy first simply stops taking messages (librdkafka's own prefetch
 * queue, bounded by queued.max.messages.kbytes, holds what arrives meanwhile), which costs
 * nothing when it lasts a moment; only when it lasts longer than this are the partitions paused,
 * which drops the prefetched messages and costs a fetch round trip on resume. */
#define BUSY_BEFORE_PAUSE_MS 1000

/* Applies backpressure: pause at MAX_INFLIGHT or after the stage was busy for a while, resume
 * below half of MAX_INFLIGHT once it is not busy. Returns true while no message should be
 * taken. */
static bool regulate(fp_stage *st, int64_t now)
{
    size_t inflight = fp_offsets_inflight(st->offsets);
    size_t max = (size_t)st->cfg->max_inflight;
    bool busy = st->hooks != NULL && st->hooks->busy != NULL && st->hooks->busy(st->hooks_ctx);

    if (!busy)
        st->busy_since_ms = 0;
    else if (st->busy_since_ms == 0)
        st->busy_since_ms = now;
    if (!st->paused &&
        (inflight >= max || (busy && now - st->busy_since_ms >= BUSY_BEFORE_PAUSE_MS)))
        set_paused(st, true);
    else if (st->paused && inflight < max / 2 + 1 && !busy)
        set_paused(st, false);
    return busy;
}

static void update_readiness(fp_stage *st)
{
    bool consumer_up = fp_kafka_connected(st->consumer);
    bool producer_up = fp_kafka_connected(st->producer);

    fp_gauge_set(st->m_connected, consumer_up && producer_up ? 1 : 0);
    if (consumer_up && producer_up)
        fp_health_set_ready(true, NULL);
    else
        fp_health_set_ready(false, consumer_up ? "producer has no broker connection"
                                               : "consumer has no broker connection");
}

/* Hands one consumed message to the handler. Returns 0, or -1 when the handler failed. */
static int handle_message(fp_stage *st, const rd_kafka_message_t *msg, fp_stage_handler handler,
                          void *ctx)
{
    double start = fp_mono_seconds();
    int rc;

    fp_counter_inc(st->m_consumed);
    if (txn_begin(st) < 0)
        return -1;
    st->txn_messages++;
    if (fp_offsets_track(st->offsets, msg->partition, msg->offset, &st->current_token) < 0) {
        fp_error("cannot track partition %d", (int)msg->partition);
        return -1;
    }
    st->current = msg;
    rc = handler(st, msg, ctx);
    st->current = NULL;
    /* The handler's own hold: the message finishes when its last record is delivered (now,
     * when it emitted nothing). */
    if (rc == 0)
        fp_offsets_release(st->offsets, st->current_token);
    fp_histogram_observe(st->m_handle_seconds, fp_mono_seconds() - start);
    return rc;
}

/* Consumer errors are informational (librdkafka retries); only fatal ones stop the stage. */
static void consumer_error(fp_stage *st, const rd_kafka_message_t *msg)
{
    if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
        return;
    fp_log_kv(FP_LOG_WARN, "consumer error", "error", rd_kafka_message_errstr(msg), FP_KV_END);
    if (msg->err == RD_KAFKA_RESP_ERR__FATAL || fp_kafka_fatal(st->consumer))
        st->fatal = true;
}

int fp_stage_run(fp_stage *st, fp_stage_handler handler, void *ctx)
{
    return fp_stage_run_async(st, handler, NULL, ctx);
}

int fp_stage_run_async(fp_stage *st, fp_stage_handler handler, const fp_stage_hooks *hooks,
                       void *ctx)
{
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t err;
    int64_t next_ready_check = 0, last_hook_ms = 0;
    bool busy;
    unsigned since_hook = 0;

    st->hooks = hooks;
    st->hooks_ctx = ctx;
    rd_kafka_topic_partition_list_add(topics, st->cfg->in_topic, RD_KAFKA_PARTITION_UA);
    err = rd_kafka_subscribe(st->consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fp_error("subscribe to %s: %s", st->cfg->in_topic, rd_kafka_err2str(err));
        return 1;
    }
    fp_info("consuming %s, producing %s", st->cfg->in_topic, st->cfg->out_topic);

    while (!fp_signal_stop_requested() && !st->fatal) {
        rd_kafka_message_t *msg;
        int64_t now = fp_mono_ms();

        fp_health_beat();
        serve_producer(st, 0);
        busy = regulate(st, now);
        if (now >= next_ready_check) {
            update_readiness(st);
            next_ready_check = now + 250;
        }
        if (fp_kafka_fatal(st->producer) || fp_kafka_fatal(st->consumer)) {
            st->fatal = true;
            break;
        }
        if (st->eos && st->txn_open &&
            fp_txn_due(st->txn_opened_ms, now, st->cfg->txn_interval_ms, st->txn_messages,
                       (uint64_t)st->cfg->max_inflight))
            txn_commit(st);
        if (busy && !st->paused) {
            /* Take nothing until the stage has room; wait on its own work meanwhile. */
            poll_hook(st, 5);
            continue;
        }
        /* With asynchronous work outstanding, Kafka is only peeked at and the wait happens in
         * the stage's own poll (on its sockets); otherwise the wait is here. */
        msg = rd_kafka_consumer_poll(st->consumer, held_by_stage(st) > 0                  ? 0
                                                   : fp_offsets_inflight(st->offsets) > 0 ? 5
                                                                                          : 100);
        /* The stage's own work is driven when Kafka is quiet, and while messages stream in every
         * 64 messages or 2 ms: driving it per message would cost a system call each. */
        if (msg == NULL || ++since_hook >= 64 || now - last_hook_ms >= 2) {
            poll_hook(st, msg == NULL ? 5 : 0);
            since_hook = 0;
            last_hook_ms = now;
        }
        if (msg == NULL)
            continue;
        if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR)
            consumer_error(st, msg);
        else if (handle_message(st, msg, handler, ctx) < 0)
            st->fatal = true;
        rd_kafka_message_destroy(msg);
    }

    fp_health_set_ready(false, "draining");
    fp_info("stopping: draining %zu in-flight messages", fp_offsets_inflight(st->offsets));
    if (!st->fatal) {
        /* Let held messages finish (their lookups answer or fail) within the timeout. */
        int64_t deadline = fp_mono_ms() + st->cfg->shutdown_timeout_ms;

        while (held_by_stage(st) > 0 && fp_mono_ms() < deadline && !st->fatal) {
            poll_hook(st, 10);
            serve_producer(st, 0);
            fp_health_beat();
        }
    }
    if (st->eos && !st->fatal)
        txn_commit(st);
    drain_producer(st, st->fatal ? 0 : st->cfg->shutdown_timeout_ms);
    if (!st->fatal && !st->eos)
        commit_stored(st);
    rd_kafka_consumer_close(st->consumer);
    fp_info("stopped%s", st->fatal ? " after a fatal error" : "");
    return st->fatal ? 1 : 0;
}

/* Serves the producer until it has room again, keeping the health beat. */
static void wait_for_room(fp_stage *st)
{
    serve_producer(st, 50);
    fp_health_beat();
}

void fp_stage_fail(fp_stage *st, const char *why)
{
    fp_log_kv(FP_LOG_ERROR, "stopping after a fatal error", "reason", why, FP_KV_END);
    st->fatal = true;
}

uint64_t fp_stage_hold(fp_stage *st)
{
    fp_offsets_hold(st->offsets, st->current_token);
    return st->current_token;
}

void fp_stage_release(fp_stage *st, uint64_t token)
{
    fp_offsets_release(st->offsets, token);
}

int fp_stage_emit(fp_stage *st, const void *key, size_t key_len, const void *value,
                  size_t value_len)
{
    return fp_stage_emit_for(st, st->current_token, key, key_len, value, value_len);
}

int fp_stage_emit_for(fp_stage *st, uint64_t token, const void *key, size_t key_len,
                      const void *value, size_t value_len)
{
    rd_kafka_resp_err_t err;

    fp_offsets_hold(st->offsets, token);
    for (;;) {
        err = rd_kafka_producev(st->producer, RD_KAFKA_V_TOPIC(st->cfg->out_topic),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_KEY((void *)key, key_len),
                                RD_KAFKA_V_VALUE((void *)value, value_len),
                                RD_KAFKA_V_OPAQUE((void *)(uintptr_t)token), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        wait_for_room(st);
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fp_error("produce to %s: %s", st->cfg->out_topic, rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

int fp_stage_reject(fp_stage *st, const char *code, const char *message)
{
    const rd_kafka_message_t *msg = st->current;
    rd_kafka_headers_t *original = NULL;
    fp_dlq_reason why = {st->name,       code,        message,    st->cfg->in_topic,
                         msg->partition, msg->offset, fp_now_ms()};
    char labels[128];
    rd_kafka_resp_err_t err;

    snprintf(labels, sizeof(labels), "stage=\"%s\",code=\"%s\"", st->name, code);
    fp_counter_inc(fp_metrics_counter("fleetpipe_dlq_messages_total",
                                      "Messages sent to the DLQ, by stage and error code.",
                                      labels));
    fp_log_kv(FP_LOG_DEBUG, "rejected to the DLQ", "code", code, "reason", message, FP_KV_END);
    rd_kafka_message_headers(msg, &original);
    fp_offsets_hold(st->offsets, st->current_token);
    for (;;) {
        err = fp_dlq_produce(st->producer, st->cfg->dlq_topic, msg->key, msg->key_len, msg->payload,
                             msg->len, original, &why, (void *)(uintptr_t)st->current_token);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        wait_for_room(st);
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fp_error("produce to %s: %s", st->cfg->dlq_topic, rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}
