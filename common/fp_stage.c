#include "common/fp_stage.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/fp_dlq.h"
#include "common/fp_http.h"
#include "common/fp_kafka.h"
#include "common/fp_log.h"
#include "common/fp_metrics.h"
#include "common/fp_offsets.h"
#include "common/fp_rand.h"
#include "common/fp_signal.h"
#include "common/fp_time.h"

/* A stage that says it is busy first simply stops taking messages (librdkafka's own prefetch
 * queue, bounded by queued.max.messages.kbytes, holds what arrives meanwhile), which costs
 * nothing when it lasts a moment; only when it lasts longer than this are the partitions paused,
 * which drops the prefetched messages and costs a fetch round trip on resume. */
#define BUSY_BEFORE_PAUSE_MS 1000

/* How long after waking the fetcher (fp_stage.h) an empty poll still does not count as idle:
 * a few fetch round trips (fetch.wait.max.ms is 25 ms). */
#define REFILL_MS 100

/* The output's retry backoff: doubles from the first to the last, with jitter. */
#define RETRY_FIRST_MS 100
#define RETRY_MAX_MS   5000

struct fp_stage {
    const char *name;
    const fp_common_config *cfg;
    const fp_output *out;
    rd_kafka_t *consumer;
    rd_kafka_t *producer;
    fp_offsets *offsets;
    size_t max_message;
    bool paused;
    bool idle; /* the last consumer poll returned nothing: the input is drained for now */
    bool fatal;
    size_t read_bytes;       /* input bytes read since the last empty poll */
    size_t prefetch_bytes;   /* the consumer's queued.max.messages.kbytes, in bytes */
    int64_t refill_until_ms; /* not idle before this: the fetcher was just woken */

    /* The message being handled, its token, and whether the handler took it. */
    rd_kafka_message_t *current;
    uint64_t current_token;
    bool taken;

    const fp_stage_hooks *hooks;
    void *hooks_ctx;
    int64_t busy_since_ms;

    /* The output's retry after FP_FLUSH_RETRY (0: not retrying). */
    int64_t retry_at_ms;
    int64_t backoff_ms;

    char txn_id[256];
    const char *producer_props[2][2];

    fp_counter *m_consumed;
    fp_counter *m_produced;
    fp_counter *m_delivery_errors;
    fp_counter *m_retries;
    fp_gauge *m_inflight;
    fp_gauge *m_inflight_bytes;
    fp_gauge *m_paused;
    fp_counter *m_fetch_wakeups;
    fp_gauge *m_connected;
    fp_histogram *m_handle_seconds;
};

bool fp_stage_should_pause(bool paused, const fp_stage_load *load)
{
    bool full = load->inflight >= load->max_inflight || load->bytes >= load->max_bytes;
    bool low = load->inflight < load->max_inflight / 2 + 1 && load->bytes < load->max_bytes / 2 + 1;

    if (!paused)
        return full || load->hold;
    return !(low && !load->hold);
}

bool fp_stage_prefetch_drained(size_t read_bytes, size_t prefetch_bytes)
{
    return prefetch_bytes > 0 && read_bytes >= prefetch_bytes / 2;
}

int fp_stage_most_lagging(const int64_t *position, const int64_t *high, int n)
{
    int best = -1;
    int64_t most = 0;

    for (int i = 0; i < n; i++) {
        int64_t lag = position[i] >= 0 && high[i] >= 0 ? high[i] - position[i] : 0;

        if (lag > most) {
            most = lag;
            best = i;
        }
    }
    return best;
}

uint64_t fp_stage_fetch_wakeups(const fp_stage *st)
{
    return fp_counter_value(st->m_fetch_wakeups);
}

/* The prefetch stall (fp_stage.h): seeks the assigned partition furthest behind to the stage's
 * position, which wakes librdkafka's broker thread. Returns whether it did (some partition is
 * behind). */
static bool wake_fetcher(fp_stage *st)
{
    rd_kafka_topic_partition_list_t *parts = NULL, *one;
    rd_kafka_error_t *e;
    int64_t position[64], high[64];
    int n, i;

    if (rd_kafka_assignment(st->consumer, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || parts == NULL)
        return false;
    if (rd_kafka_position(st->consumer, parts) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_topic_partition_list_destroy(parts);
        return false;
    }
    /* A replica with more than 64 partitions looks at its first 64: waking one is enough. */
    n = parts->cnt < 64 ? parts->cnt : 64;
    for (i = 0; i < n; i++) {
        const rd_kafka_topic_partition_t *p = &parts->elems[i];
        int64_t lo;

        position[i] = p->offset;
        if (rd_kafka_get_watermark_offsets(st->consumer, p->topic, p->partition, &lo, &high[i]) !=
            RD_KAFKA_RESP_ERR_NO_ERROR)
            high[i] = -1;
    }
    i = fp_stage_most_lagging(position, high, n);
    if (i >= 0) {
        one = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(one, parts->elems[i].topic, parts->elems[i].partition)
            ->offset = position[i];
        /* Asynchronous (timeout 0): errors, such as a partition being revoked meanwhile, only
         * mean that this wake-up did not happen. */
        e = rd_kafka_seek_partitions(st->consumer, one, 0);
        if (e != NULL)
            rd_kafka_error_destroy(e);
        else
            fp_counter_inc(st->m_fetch_wakeups);
        rd_kafka_topic_partition_list_destroy(one);
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return i >= 0;
}

/* The consumer's prefetch bound in bytes (0 when unknown). */
static size_t prefetch_bound(rd_kafka_t *consumer)
{
    char v[32];
    size_t len = sizeof(v);

    if (rd_kafka_conf_get(rd_kafka_conf(consumer), "queued.max.messages.kbytes", v, &len) !=
        RD_KAFKA_CONF_OK)
        return 0;
    return (size_t)strtoull(v, NULL, 10) * 1024;
}

/* Producer delivery report: a record or dead letter is durable (or the producer gave up). */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    fp_stage *st = fp_kafka_user(rk);
    uint64_t token = (uint64_t)(uintptr_t)msg->_private;
    bool dead_letter = strcmp(rd_kafka_topic_name(msg->rkt), st->cfg->dlq_topic) == 0;

    (void)opaque;
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fp_counter_inc(st->m_delivery_errors);
        fp_log_kv(FP_LOG_ERROR, "delivery failed", "topic", rd_kafka_topic_name(msg->rkt), "error",
                  rd_kafka_err2str(msg->err), FP_KV_END);
        if (dead_letter && st->out->dead_letter_done != NULL) {
            /* The output keeps its own hold and sends the dead letter again. */
            st->out->dead_letter_done(st, token, msg->err, st->out->ctx);
            fp_offsets_release(st->offsets, token);
            return;
        }
        /* With message.timeout.ms=0 only non-retriable errors end here. The input message stays
         * unfinished, so its offset is never committed: after the restart it is read again.
         * In a transaction the commit fails instead, and the transaction is aborted. */
        if (!st->out->transactional)
            st->fatal = true;
        return;
    }
    fp_counter_inc(st->m_produced);
    if (dead_letter && st->out->dead_letter_done != NULL)
        st->out->dead_letter_done(st, token, RD_KAFKA_RESP_ERR_NO_ERROR, st->out->ctx);
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

void fp_stage_serve(fp_stage *st, int timeout_ms)
{
    store_ctx sc = {NULL, st->cfg->in_topic};

    rd_kafka_poll(st->producer, timeout_ms);
    sc.list = rd_kafka_topic_partition_list_new(4);
    fp_offsets_collect(st->offsets, collect_one, &sc);
    /* In a transaction the offsets travel with it (send_offsets_to_transaction). */
    if (sc.list->cnt > 0 && !st->out->transactional) {
        rd_kafka_resp_err_t err = rd_kafka_offsets_store(st->consumer, sc.list);

        /* _STATE/unassigned: the partition was revoked meanwhile; its new owner re-reads. */
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__STATE)
            fp_warn("offsets_store: %s", rd_kafka_err2str(err));
    }
    rd_kafka_topic_partition_list_destroy(sc.list);
    fp_gauge_set(st->m_inflight, (double)fp_offsets_inflight(st->offsets));
    fp_gauge_set(st->m_inflight_bytes, (double)fp_offsets_inflight_bytes(st->offsets));
}

int fp_stage_drain_producer(fp_stage *st, int64_t timeout_ms)
{
    int64_t deadline = fp_mono_ms() + timeout_ms;

    while (rd_kafka_outq_len(st->producer) > 0 && fp_mono_ms() < deadline && !st->fatal) {
        fp_stage_serve(st, 50);
        fp_health_beat();
    }
    fp_stage_serve(st, 0);
    return rd_kafka_outq_len(st->producer) > 0 ? -1 : 0;
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

int fp_stage_settle(fp_stage *st, int64_t deadline_ms)
{
    while (held_by_stage(st) > 0 && fp_mono_ms() < deadline_ms && !st->fatal) {
        poll_hook(st, 10);
        fp_stage_serve(st, 0);
        fp_health_beat();
    }
    return held_by_stage(st) > 0 ? -1 : 0;
}

/* Waits `ms` while keeping the health beat (a retry backoff, not a synchronisation). */
static void backoff_wait(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

    fp_health_beat();
    nanosleep(&ts, NULL);
}

rd_kafka_topic_partition_list_t *fp_stage_positions(const fp_stage *st)
{
    store_ctx sc = {rd_kafka_topic_partition_list_new(8), st->cfg->in_topic};

    if (sc.list != NULL)
        fp_offsets_each_read(st->offsets, collect_one, &sc);
    return sc.list;
}

/* Drops what the stage holds for a partition and forgets its offsets. */
static void drop_partition(fp_stage *st, int32_t partition)
{
    if (st->hooks != NULL && st->hooks->revoked != NULL)
        st->hooks->revoked(st, partition, st->hooks_ctx);
    fp_offsets_forget(st->offsets, partition);
}

void fp_stage_rewind(fp_stage *st)
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
            drop_partition(st, parts->elems[i].partition);
        }
        error = rd_kafka_seek_partitions(st->consumer, parts, 10000);
        if (error != NULL) {
            fp_error("rewind: %s", rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
        }
    }
    rd_kafka_topic_partition_list_destroy(parts);
}

void fp_stage_rewind_to(fp_stage *st, rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_error_t *error;

    for (int i = 0; i < parts->cnt; i++)
        drop_partition(st, parts->elems[i].partition);
    error = rd_kafka_seek_partitions(st->consumer, parts, 10000);
    if (error != NULL) {
        fp_error("rewind: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
}

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

/* Partitions arrive: the output may say where each starts (retried while it cannot). */
static void on_assign(fp_stage *st, rd_kafka_topic_partition_list_t *parts)
{
    int64_t wait_ms = RETRY_FIRST_MS;

    while (st->out->assign != NULL && !st->fatal) {
        fp_flush_result r = st->out->assign(st, parts, st->out->ctx);

        if (r == FP_FLUSH_OK)
            break;
        if (r == FP_FLUSH_ERROR || fp_signal_stop_requested()) {
            st->fatal = r == FP_FLUSH_ERROR;
            break;
        }
        fp_health_set_ready(false, "output unavailable");
        backoff_wait(fp_rand_jitter_ms(wait_ms));
        wait_ms = wait_ms < RETRY_MAX_MS / 2 ? wait_ms * 2 : RETRY_MAX_MS;
    }
    fp_info("assigned %d partitions", parts->cnt);
    apply_assignment(st->consumer, true, parts);
    if (st->paused)
        rd_kafka_pause_partitions(st->consumer, parts);
}

/* Partitions leave. Revoked ones are handed over cleanly: what they started is flushed first.
 * Lost ones belong to someone else already, and after a fatal error nothing unfinished may be
 * committed: the output aborts instead. */
static void on_revoke(fp_stage *st, rd_kafka_topic_partition_list_t *parts)
{
    bool lost = rd_kafka_assignment_lost(st->consumer);

    fp_info("%s %d partitions", lost ? "lost" : "revoking", parts->cnt);
    if (lost || st->fatal) {
        if (st->out->abort != NULL)
            st->out->abort(st, st->out->ctx);
    } else if (st->out->flush != NULL && st->out->flush(st, st->out->ctx) != FP_FLUSH_OK &&
               st->out->abort != NULL) {
        st->out->abort(st, st->out->ctx);
    }
    for (int i = 0; i < parts->cnt; i++)
        if (st->hooks != NULL && st->hooks->revoked != NULL)
            st->hooks->revoked(st, parts->elems[i].partition, st->hooks_ctx);
    if (st->out->revoked != NULL)
        st->out->revoked(st, parts, st->out->ctx);
    /* Only finished messages' offsets were stored: committing them is right even after a
     * fatal error. With transactions they went with the transaction. */
    if (!st->out->transactional) {
        fp_stage_serve(st, 0);
        commit_stored(st);
    }
    for (int i = 0; i < parts->cnt; i++)
        fp_offsets_forget(st->offsets, parts->elems[i].partition);
    apply_assignment(st->consumer, false, parts);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    fp_stage *st = fp_kafka_user(rk);

    (void)opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
        on_assign(st, parts);
    else
        on_revoke(st, parts);
}

/* The producer's message.max.bytes. */
static size_t max_message_bytes(rd_kafka_t *producer)
{
    char buf[32];
    size_t size = sizeof(buf);
    long long v;

    if (rd_kafka_conf_get(rd_kafka_conf(producer), "message.max.bytes", buf, &size) !=
        RD_KAFKA_CONF_OK)
        return 1000000;
    v = strtoll(buf, NULL, 10);
    return v > 0 ? (size_t)v : 1000000;
}

fp_stage *fp_stage_new(const char *stage_name, const fp_common_config *cfg, const fp_output *out,
                       char *err, size_t err_size)
{
    static const char *const eos_consumer_props[][2] = {
        {"enable.auto.commit", "false"},
        {"isolation.level", "read_committed"},
        {"partition.assignment.strategy", "cooperative-sticky"},
    };
    fp_kafka_hooks consumer_hooks = {.rebalance_cb = on_rebalance};
    fp_kafka_hooks producer_hooks = {.dr_msg_cb = on_delivery};
    char labels[64], buffer_kb[32];
    fp_stage *st;

    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    st->name = stage_name;
    st->cfg = cfg;
    st->out = out;
    /* The producer's buffer is bounded like the input's (MAX_INFLIGHT_BYTES, at least 4 MiB):
     * librdkafka's default of 1 GiB would not fit a pod. RDKAFKA_PRODUCER_* still wins. */
    snprintf(
        buffer_kb, sizeof(buffer_kb), "%lld",
        (long long)(cfg->max_inflight_bytes / 1024 > 4096 ? cfg->max_inflight_bytes / 1024 : 4096));
    st->producer_props[0][0] = "queue.buffering.max.kbytes";
    st->producer_props[0][1] = buffer_kb;
    producer_hooks.props = (const char *const(*)[2])st->producer_props;
    producer_hooks.nprops = 1;
    if (out->transactional) {
        char host[128] = "localhost";

        if (cfg->out_topic == NULL || cfg->out_topic[0] == '\0') {
            snprintf(err, err_size, "OUT_TOPIC: required but not set");
            goto err;
        }
        gethostname(host, sizeof(host) - 1);
        snprintf(st->txn_id, sizeof(st->txn_id), "%s-%s", cfg->kafka_group_id, host);
        if (cfg->transactional_id != NULL && cfg->transactional_id[0] != '\0')
            snprintf(st->txn_id, sizeof(st->txn_id), "%s", cfg->transactional_id);
        st->producer_props[1][0] = "transactional.id";
        st->producer_props[1][1] = st->txn_id;
        producer_hooks.nprops = 2;
        consumer_hooks.props = eos_consumer_props;
        consumer_hooks.nprops = sizeof(eos_consumer_props) / sizeof(eos_consumer_props[0]);
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
    st->max_message = max_message_bytes(st->producer);
    st->prefetch_bytes = prefetch_bound(st->consumer);

    snprintf(labels, sizeof(labels), "stage=\"%s\"", stage_name);
    st->m_consumed = fp_metrics_counter("fleetpipe_messages_consumed_total",
                                        "Input messages taken from the input topic.", labels);
    st->m_produced =
        fp_metrics_counter("fleetpipe_records_produced_total",
                           "Records delivered to the output topic or the DLQ.", labels);
    st->m_delivery_errors = fp_metrics_counter("fleetpipe_delivery_errors_total",
                                               "Records the producer failed to deliver.", labels);
    st->m_retries = fp_metrics_counter(
        "fleetpipe_output_retries_total",
        "Output flushes that failed for infrastructure reasons and were retried.", labels);
    st->m_inflight =
        fp_metrics_gauge("fleetpipe_inflight_messages",
                         "Input messages whose outputs are not all durable yet.", labels);
    st->m_inflight_bytes =
        fp_metrics_gauge("fleetpipe_inflight_bytes", "Bytes of those input messages.", labels);
    st->m_paused = fp_metrics_gauge("fleetpipe_consumer_paused",
                                    "1 while consumption is paused for backpressure.", labels);
    st->m_fetch_wakeups = fp_metrics_counter(
        "fleetpipe_consumer_fetch_wakeups_total",
        "Times the stage woke librdkafka's fetcher after draining a full prefetch queue.", labels);
    st->m_connected =
        fp_metrics_gauge("fleetpipe_kafka_connected",
                         "1 while both Kafka clients have a broker connection.", labels);
    st->m_handle_seconds = fp_metrics_histogram("fleetpipe_handle_duration_seconds",
                                                "Time to handle one input message in process.",
                                                labels, fp_latency_buckets, fp_latency_buckets_len);
    if (out->start != NULL && out->start(st, out->ctx, err, err_size) < 0)
        goto err;
    if (out->transactional)
        fp_info("transactional.id %s", st->txn_id);
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

/* Applies backpressure (fp_stage_should_pause). Returns true while no message should be taken:
 * the stage is busy or the output is retrying. */
static bool regulate(fp_stage *st, int64_t now)
{
    bool busy = st->hooks != NULL && st->hooks->busy != NULL && st->hooks->busy(st->hooks_ctx);
    fp_stage_load load = {fp_offsets_inflight(st->offsets), (size_t)st->cfg->max_inflight,
                          fp_offsets_inflight_bytes(st->offsets),
                          (size_t)st->cfg->max_inflight_bytes, false};

    if (!busy)
        st->busy_since_ms = 0;
    else if (st->busy_since_ms == 0)
        st->busy_since_ms = now;
    load.hold = st->retry_at_ms != 0 || (busy && now - st->busy_since_ms >= BUSY_BEFORE_PAUSE_MS);
    if (fp_stage_should_pause(st->paused, &load) != st->paused)
        set_paused(st, !st->paused);
    return busy || st->retry_at_ms != 0;
}

static void update_readiness(fp_stage *st)
{
    bool consumer_up = fp_kafka_connected(st->consumer);
    bool producer_up = fp_kafka_connected(st->producer);
    const char *why = NULL;

    fp_gauge_set(st->m_connected, consumer_up && producer_up ? 1 : 0);
    if (!consumer_up || !producer_up)
        fp_health_set_ready(false, consumer_up ? "producer has no broker connection"
                                               : "consumer has no broker connection");
    else if (st->out->ready != NULL && !st->out->ready(st, &why, st->out->ctx))
        fp_health_set_ready(false, why != NULL ? why : "output unavailable");
    else
        fp_health_set_ready(true, NULL);
}

/* Takes what a flush (or its start, or its progress) answered: after RETRY the output is
 * flushed again after a growing, jittered backoff (input paused meanwhile), after ERROR the
 * stage stops. */
static fp_flush_result flushed(fp_stage *st, fp_flush_result r)
{
    if (r == FP_FLUSH_OK) {
        st->retry_at_ms = 0;
        st->backoff_ms = 0;
    } else if (r == FP_FLUSH_RETRY) {
        fp_counter_inc(st->m_retries);
        st->backoff_ms = st->backoff_ms == 0 ? RETRY_FIRST_MS : st->backoff_ms * 2;
        if (st->backoff_ms > RETRY_MAX_MS)
            st->backoff_ms = RETRY_MAX_MS;
        /* Jitter keeps replicas from retrying in step. */
        st->retry_at_ms = fp_mono_ms() + fp_rand_jitter_ms(st->backoff_ms);
    } else {
        fp_stage_fail(st, "the output failed");
    }
    return r;
}

/* Flushes the output: everything durable on return, or retried as flushed() says. */
static fp_flush_result flush_output(fp_stage *st)
{
    return flushed(st, st->out->flush != NULL ? st->out->flush(st, st->out->ctx) : FP_FLUSH_OK);
}

/* Hands one consumed message to the handler. Returns 0, or -1 when the handler failed. */
static int handle_message(fp_stage *st, rd_kafka_message_t *msg, fp_stage_handler handler,
                          void *ctx)
{
    double start = fp_mono_seconds();
    int rc;

    fp_counter_inc(st->m_consumed);
    if (st->out->begin != NULL && st->out->begin(st, st->out->ctx) != FP_FLUSH_OK)
        return -1;
    if (fp_offsets_track(st->offsets, msg->partition, msg->offset, msg->len + msg->key_len,
                         &st->current_token) < 0) {
        fp_error("cannot track partition %d", (int)msg->partition);
        return -1;
    }
    st->current = msg;
    rc = handler(st, msg, ctx);
    st->current = NULL;
    /* The handler's own hold: the message finishes when its last effect is durable (now, when
     * it caused none). */
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

/* How long the loop may wait in the consumer: not at all while the stage's own work is
 * outstanding (it waits on its sockets instead), briefly while messages are unfinished. */
static int poll_timeout(const fp_stage *st)
{
    if (held_by_stage(st) > 0)
        return 0;
    return fp_offsets_inflight(st->offsets) > 0 ? 5 : 100;
}

/* One turn's housekeeping: health, delivery reports, readiness, output flushes. */
static void turn(fp_stage *st, int64_t now, int64_t *next_ready_check)
{
    fp_health_beat();
    fp_stage_serve(st, 0);
    if (now >= *next_ready_check) {
        update_readiness(st);
        *next_ready_check = now + 250;
    }
    if (fp_kafka_fatal(st->producer) || fp_kafka_fatal(st->consumer)) {
        st->fatal = true;
        return;
    }
    if (st->retry_at_ms != 0) {
        if (now >= st->retry_at_ms)
            flush_output(st);
        return;
    }
    if (st->out->progress != NULL &&
        flushed(st, st->out->progress(st, st->out->ctx)) != FP_FLUSH_OK)
        return;
    if (st->out->due == NULL || !st->out->due(st, now, st->idle, st->out->ctx))
        return;
    if (st->out->start_flush != NULL)
        flushed(st, st->out->start_flush(st, st->out->ctx));
    else
        flush_output(st);
}

/* Shutdown: held work finishes, the output flushes within SHUTDOWN_TIMEOUT_MS (retrying), or
 * aborts after a fatal error or when the time is up; finished offsets are committed. */
static void drain(fp_stage *st)
{
    int64_t deadline = fp_mono_ms() + st->cfg->shutdown_timeout_ms;
    fp_flush_result r = FP_FLUSH_ERROR;

    fp_health_set_ready(false, "draining");
    fp_info("stopping: draining %zu in-flight messages", fp_offsets_inflight(st->offsets));
    if (!st->fatal)
        fp_stage_settle(st, deadline);
    while (!st->fatal) {
        r = flush_output(st);
        if (r != FP_FLUSH_RETRY || fp_mono_ms() + st->backoff_ms >= deadline)
            break;
        backoff_wait(st->retry_at_ms - fp_mono_ms());
    }
    if (r != FP_FLUSH_OK) {
        if (!st->fatal)
            fp_warn("the output could not flush in time; what it held is read again");
        if (st->out->abort != NULL)
            st->out->abort(st, st->out->ctx);
    }
    if (fp_stage_drain_producer(st, st->fatal ? 0 : deadline - fp_mono_ms()) < 0)
        fp_warn("%d messages still undelivered; their input will be read again",
                rd_kafka_outq_len(st->producer));
    if (!st->out->transactional)
        commit_stored(st);
    /* Closing revokes the assignment: on_revoke sees st->fatal and never commits then. */
    rd_kafka_consumer_close(st->consumer);
}

int fp_stage_run(fp_stage *st, fp_stage_handler handler, const fp_stage_hooks *hooks, void *ctx)
{
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t err;
    int64_t next_ready_check = 0, last_hook_ms = 0;
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
    fp_info("consuming %s into the %s output", st->cfg->in_topic, st->out->name);

    while (!fp_signal_stop_requested() && !st->fatal) {
        rd_kafka_message_t *msg;
        int64_t now = fp_mono_ms();

        turn(st, now, &next_ready_check);
        if (st->fatal)
            break;
        if (regulate(st, now) && !st->paused) {
            /* Take nothing until there is room; wait on the stage's own work meanwhile. */
            poll_hook(st, 5);
            if (st->hooks == NULL || st->hooks->poll == NULL)
                rd_kafka_poll(st->producer, 5);
            continue;
        }
        msg = rd_kafka_consumer_poll(st->consumer, poll_timeout(st));
        if (msg == NULL) {
            /* A drained prefetch wakes the fetcher (fp_stage.h), and the queue refills within
             * a fetch round trip: until then the input is not drained, so an output flushing on
             * idle waits (the sink's batch keeps filling). */
            if (!st->paused && fp_stage_prefetch_drained(st->read_bytes, st->prefetch_bytes) &&
                wake_fetcher(st))
                st->refill_until_ms = now + REFILL_MS;
            st->read_bytes = 0;
        }
        st->idle = msg == NULL && now >= st->refill_until_ms;
        /* The stage's own work is driven when Kafka is quiet, and while messages stream in every
         * 64 messages or 2 ms: driving it per message would cost a system call each. */
        if (msg == NULL || ++since_hook >= 64 || now - last_hook_ms >= 2) {
            poll_hook(st, msg == NULL ? 5 : 0);
            since_hook = 0;
            last_hook_ms = now;
        }
        if (msg == NULL)
            continue;
        st->read_bytes += msg->len + msg->key_len;
        /* A message fetched just before a pause is handled like any other: dropping it would
         * let later offsets pass over it. */
        if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR)
            consumer_error(st, msg);
        else if (handle_message(st, msg, handler, ctx) < 0)
            st->fatal = true;
        if (!st->taken)
            rd_kafka_message_destroy(msg);
        st->taken = false;
    }
    drain(st);
    fp_info("stopped%s", st->fatal ? " after a fatal error" : "");
    return st->fatal ? 1 : 0;
}

void fp_stage_fail(fp_stage *st, const char *why)
{
    fp_log_kv(FP_LOG_ERROR, "stopping after a fatal error", "reason", why, FP_KV_END);
    st->fatal = true;
}

bool fp_stage_failed(const fp_stage *st)
{
    return st->fatal;
}

uint64_t fp_stage_hold(fp_stage *st)
{
    fp_offsets_hold(st->offsets, st->current_token);
    return st->current_token;
}

void fp_stage_hold_token(fp_stage *st, uint64_t token)
{
    fp_offsets_hold(st->offsets, token);
}

uint64_t fp_stage_current(const fp_stage *st)
{
    return st->current_token;
}

void fp_stage_release(fp_stage *st, uint64_t token)
{
    fp_offsets_release(st->offsets, token);
}

rd_kafka_message_t *fp_stage_take_message(fp_stage *st)
{
    st->taken = true;
    return st->current;
}

rd_kafka_t *fp_stage_consumer(fp_stage *st)
{
    return st->consumer;
}

rd_kafka_t *fp_stage_producer(fp_stage *st)
{
    return st->producer;
}

const fp_common_config *fp_stage_config(const fp_stage *st)
{
    return st->cfg;
}

const char *fp_stage_name(const fp_stage *st)
{
    return st->name;
}

size_t fp_stage_max_message(const fp_stage *st)
{
    return st->max_message;
}

/* Produces one dead letter (retrying while the queue is full), holding `token` until its
 * delivery report. Returns 0 or -1. */
static int produce_dead_letter(fp_stage *st, uint64_t token, const void *key, size_t key_len,
                               const void *value, size_t value_len,
                               const rd_kafka_headers_t *original, const char *code,
                               const char *message)
{
    fp_dlq_reason why = {st->name, code, message, st->cfg->in_topic, -1, -1, fp_now_ms()};
    char labels[128];
    rd_kafka_resp_err_t err;

    fp_offsets_source(st->offsets, token, &why.partition, &why.offset);
    snprintf(labels, sizeof(labels), "stage=\"%s\",code=\"%s\"", st->name, code);
    fp_counter_inc(fp_metrics_counter("fleetpipe_dlq_messages_total",
                                      "Messages sent to the DLQ, by stage and error code.",
                                      labels));
    fp_log_kv(FP_LOG_DEBUG, "rejected to the DLQ", "code", code, "reason", message, FP_KV_END);
    fp_offsets_hold(st->offsets, token);
    for (;;) {
        err = fp_dlq_produce(st->producer, st->cfg->dlq_topic, key, key_len, value, value_len,
                             original, &why, st->max_message, (void *)(uintptr_t)token);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        fp_stage_serve(st, 50);
        fp_health_beat();
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fp_error("produce to %s: %s", st->cfg->dlq_topic, rd_kafka_err2str(err));
        fp_offsets_release(st->offsets, token);
        return -1;
    }
    return 0;
}

int fp_stage_dead_letter(fp_stage *st, const rd_kafka_message_t *msg, uint64_t token,
                         const char *code, const char *message)
{
    rd_kafka_headers_t *original = NULL;

    rd_kafka_message_headers(msg, &original);
    return produce_dead_letter(st, token, msg->key, msg->key_len, msg->payload, msg->len, original,
                               code, message);
}

int fp_stage_dead_letter_payload(fp_stage *st, uint64_t token, const void *key, size_t key_len,
                                 const void *value, size_t value_len, const char *code,
                                 const char *message)
{
    return produce_dead_letter(st, token, key, key_len, value, value_len, NULL, code, message);
}

int fp_stage_reject(fp_stage *st, const char *code, const char *message)
{
    return fp_stage_dead_letter(st, st->current, st->current_token, code, message);
}
