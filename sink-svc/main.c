/* sink-svc: enriched records on telemetry.enriched → rows in PostgreSQL, exactly once.
 *
 * Reads as: parse the configuration, connect to the database (applying migrations) and to
 * Kafka, then gather records into batches and write each batch with its offsets in one
 * transaction (pg.c). On partition assignment the consumer starts from the offsets stored in
 * the database. While the database is away the batch is kept, consumption pauses and /readyz
 * says 503; nothing good goes to the DLQ for it. On SIGTERM the last batch is written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fp_config.h"
#include "fp_dlq.h"
#include "fp_http.h"
#include "fp_kafka.h"
#include "fp_log.h"
#include "fp_rand.h"
#include "fp_metrics.h"
#include "fp_record.h"
#include "fp_signal.h"
#include "fp_time.h"
#include "pg.h"

typedef struct sink_config {
    fp_common_config common;
    const char *pg_dsn;
    const char *dialect;
    int64_t batch_max;
    int64_t batch_ms;
    const char *rollups;
} sink_config;

static const fp_option sink_options[] = {
    FP_COMMON_OPTIONS("fleetpipe-sink", "telemetry.enriched", NULL, "9103"),
    {"PG_DSN", FP_OPT_DSN, "host=localhost dbname=fleetpipe",
     "PostgreSQL connection string or URI (libpq); its password is never logged", false, true, 0, 0,
     NULL, offsetof(sink_config, pg_dsn)},
    {"SINK_DIALECT", FP_OPT_ENUM, "postgres",
     "postgres (tested) or cratedb (PostgreSQL wire protocol; SQL covered by unit tests only)",
     false, false, 0, 0, "postgres|cratedb", offsetof(sink_config, dialect)},
    {"SINK_BATCH_MAX", FP_OPT_INT, "5000", "rows per database transaction at most", false, false, 1,
     1000000, NULL, offsetof(sink_config, batch_max)},
    {"SINK_BATCH_MS", FP_OPT_INT, "200",
     "a batch is written at the latest this long after its "
     "first row",
     false, false, 1, 600000, NULL, offsetof(sink_config, batch_ms)},
    {"SINK_ROLLUPS", FP_OPT_ENUM, "on",
     "on: keep the hourly rollups (telemetry_hourly) in each batch's transaction; off: do not "
     "(a sink with rollups on rebuilds them when it next connects)",
     false, false, 0, 0, "on|off", offsetof(sink_config, rollups)},
    FP_OPT_TABLE_END,
};

/* Rows taken from Kafka and not yet committed to the database. */
typedef struct batch {
    rd_kafka_message_t **msgs;
    fp_record *recs;
    fp_pg_row *rows;
    size_t len, cap;
    int64_t started_ms;
} batch;

typedef struct sink {
    sink_config cfg;
    rd_kafka_t *consumer;
    rd_kafka_t *producer; /* DLQ only */
    fp_pg *pg;
    batch b;
    bool paused;
    bool dlq_failed;
    int64_t retry_at_ms;
    int64_t backoff_ms;
    int64_t last_db_check_ms;

    fp_counter *m_consumed;
    fp_counter *m_inserted;
    fp_counter *m_duplicates;
    fp_counter *m_batches;
    fp_counter *m_retries;
    fp_histogram *m_batch_seconds;
    fp_histogram *m_batch_rows;
    fp_gauge *m_db_up;
    fp_gauge *m_paused;
    fp_gauge *m_connected;
    fp_gauge *m_inflight;
    fp_counter *m_delivery_errors;
} sink;

static const double batch_row_buckets[] = {1, 10, 50, 100, 500, 1000, 2000, 5000, 10000, 50000};

/* Produces one DLQ message for a consumed message. Retries while the queue is full. */
static int send_to_dlq(sink *s, const rd_kafka_message_t *msg, const char *code,
                       const char *message)
{
    rd_kafka_headers_t *original = NULL;
    fp_dlq_reason why = {"sink",         code,        message,    s->cfg.common.in_topic,
                         msg->partition, msg->offset, fp_now_ms()};
    char labels[128];
    rd_kafka_resp_err_t err;

    rd_kafka_message_headers(msg, &original);
    while ((err = fp_dlq_produce(s->producer, s->cfg.common.dlq_topic, msg->key, msg->key_len,
                                 msg->payload, msg->len, original, &why, NULL)) ==
           RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(s->producer, 50);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fp_error("produce to %s: %s", s->cfg.common.dlq_topic, rd_kafka_err2str(err));
        s->dlq_failed = true;
        return -1;
    }
    snprintf(labels, sizeof(labels), "stage=\"sink\",code=\"%s\"", code);
    fp_counter_inc(fp_metrics_counter("fleetpipe_dlq_messages_total",
                                      "Messages sent to the DLQ, by stage and error code.",
                                      labels));
    return 0;
}

static void on_dlq_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    sink *s = fp_kafka_user(rk);

    (void)opaque;
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fp_error("DLQ delivery failed: %s", rd_kafka_err2str(msg->err));
        fp_counter_inc(s->m_delivery_errors);
        s->dlq_failed = true;
    }
}

/* Before COMMIT: the rejected rows' DLQ messages must be durable first. */
static int dlq_rejected_rows(const fp_pg_row *rows, size_t n, void *ctx)
{
    sink *s = ctx;

    for (size_t i = 0; i < n; i++)
        if (rows[i].rejected && send_to_dlq(s, s->b.msgs[i], "db_rejected", rows[i].error) < 0)
            return -1;
    if (rd_kafka_flush(s->producer, (int)s->cfg.common.shutdown_timeout_ms) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        s->dlq_failed) {
        fp_warn("DLQ messages not delivered; the batch will be retried");
        s->dlq_failed = false;
        return -1;
    }
    return 0;
}

static void batch_release(batch *b)
{
    for (size_t i = 0; i < b->len; i++)
        rd_kafka_message_destroy(b->msgs[i]);
    b->len = 0;
}

static void batch_free(batch *b)
{
    batch_release(b);
    for (size_t i = 0; i < b->cap; i++)
        fp_record_free(&b->recs[i]);
    free(b->msgs);
    free(b->recs);
    free(b->rows);
}

/* Makes room for one more row. Returns 0 or -1 on out of memory. */
static int batch_grow(batch *b)
{
    size_t cap = b->cap != 0 ? b->cap * 2 : 256;
    rd_kafka_message_t **msgs = realloc(b->msgs, cap * sizeof(*msgs));
    fp_record *recs;
    fp_pg_row *rows;

    if (msgs == NULL)
        return -1;
    b->msgs = msgs;
    recs = realloc(b->recs, cap * sizeof(*recs));
    if (recs == NULL)
        return -1;
    b->recs = recs;
    for (size_t i = b->cap; i < cap; i++)
        fp_record_init(&recs[i]);
    rows = realloc(b->rows, cap * sizeof(*rows));
    if (rows == NULL)
        return -1;
    b->rows = rows;
    b->cap = cap;
    return 0;
}

/* Takes one consumed message into the batch (ownership of msg passes to the batch). A message
 * that is not a canonical record goes to the DLQ now; its offset still counts in the batch. */
static int batch_add(sink *s, rd_kafka_message_t *msg)
{
    batch *b = &s->b;
    fp_pg_row *row;
    char why[256];
    int rc;

    if (b->len == b->cap && batch_grow(b) < 0) {
        fp_error("out of memory growing a batch");
        rd_kafka_message_destroy(msg);
        return -1;
    }
    if (b->len == 0)
        b->started_ms = fp_mono_ms();
    row = &b->rows[b->len];
    memset(row, 0, sizeof(*row));
    b->msgs[b->len] = msg;
    /* msg now belongs to the batch. */
    rc = fp_record_decode_json(&b->recs[b->len], msg->payload, msg->len, why, sizeof(why));
    b->len++;
    fp_counter_inc(s->m_consumed);
    if (rc < 0) {
        row->skip = true;
        return send_to_dlq(s, msg, fp_record_err_code(rc), why);
    }
    return 0;
}

/* The next offset of each partition in the batch (messages of one partition come in order). */
static size_t batch_offsets(const batch *b, fp_pg_offset *out, size_t max)
{
    size_t n = 0;

    for (size_t i = 0; i < b->len; i++) {
        const rd_kafka_message_t *m = b->msgs[i];
        size_t j;

        for (j = 0; j < n; j++)
            if (out[j].partition == m->partition)
                break;
        if (j == n) {
            if (n == max)
                continue;
            out[n].partition = m->partition;
            n++;
        }
        out[j].next_offset = m->offset + 1;
    }
    return n;
}

/* Stores the written offsets in Kafka too, so consumer-group lag shows the sink's progress. */
static void mirror_offsets(sink *s, const fp_pg_offset *offs, size_t n)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)n);

    for (size_t i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(list, s->cfg.common.in_topic, offs[i].partition)->offset =
            offs[i].next_offset;
    rd_kafka_offsets_store(s->consumer, list);
    rd_kafka_topic_partition_list_destroy(list);
}

static void set_paused(sink *s, bool paused)
{
    rd_kafka_topic_partition_list_t *parts = NULL;

    if (s->paused == paused)
        return;
    if (rd_kafka_assignment(s->consumer, &parts) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (paused)
            rd_kafka_pause_partitions(s->consumer, parts);
        else
            rd_kafka_resume_partitions(s->consumer, parts);
        rd_kafka_topic_partition_list_destroy(parts);
    }
    s->paused = paused;
    fp_gauge_set(s->m_paused, paused ? 1 : 0);
}

/* Writes the batch. Returns FP_PG_OK (the batch is then empty) or FP_PG_RETRY (kept, retried
 * after a backoff while consumption pauses). */
static int flush_batch(sink *s)
{
    fp_pg_offset offs[1024];
    size_t noffs;
    uint64_t inserted = 0, written = 0;
    double start = fp_mono_seconds();
    int rc;

    if (s->b.len == 0)
        return FP_PG_OK;
    /* Rows point at their records only now: the record array moves while the batch grows. */
    for (size_t i = 0; i < s->b.len; i++)
        s->b.rows[i].rec = &s->b.recs[i];
    noffs = batch_offsets(&s->b, offs, sizeof(offs) / sizeof(offs[0]));
    rc = fp_pg_write(s->pg, s->b.rows, s->b.len, s->cfg.common.kafka_group_id,
                     s->cfg.common.in_topic, offs, noffs, dlq_rejected_rows, s, &inserted);
    s->last_db_check_ms = fp_mono_ms();
    if (rc != FP_PG_OK) {
        fp_counter_inc(s->m_retries);
        s->backoff_ms = s->backoff_ms == 0 ? 100 : s->backoff_ms * 2;
        if (s->backoff_ms > 5000)
            s->backoff_ms = 5000;
        /* Jitter keeps replicas from retrying in step. */
        s->retry_at_ms = fp_mono_ms() + fp_rand_jitter_ms(s->backoff_ms);
        set_paused(s, true);
        return rc;
    }
    for (size_t i = 0; i < s->b.len; i++)
        if (!s->b.rows[i].skip && !s->b.rows[i].rejected)
            written++;
    fp_counter_inc(s->m_batches);
    fp_counter_add(s->m_inserted, inserted);
    fp_counter_add(s->m_duplicates, written - inserted);
    fp_histogram_observe(s->m_batch_seconds, fp_mono_seconds() - start);
    fp_histogram_observe(s->m_batch_rows, (double)s->b.len);
    mirror_offsets(s, offs, noffs);
    batch_release(&s->b);
    s->backoff_ms = 0;
    set_paused(s, false);
    return FP_PG_OK;
}

/* Waits `ms` while keeping the health beat (a retry backoff, not a synchronisation). */
static void backoff_wait(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

    fp_health_beat();
    nanosleep(&ts, NULL);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    sink *s = fp_kafka_user(rk);
    int64_t wait_ms = 100;

    (void)opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        /* Start where the database says this group stands: that is the exactly-once point. */
        while (fp_pg_load_offsets(s->pg, s->cfg.common.kafka_group_id, parts) != FP_PG_OK) {
            if (fp_signal_stop_requested())
                break;
            fp_health_set_ready(false, "database unavailable");
            backoff_wait(wait_ms);
            wait_ms = wait_ms < 2000 ? wait_ms * 2 : wait_ms;
        }
        fp_info("assigned %d partitions, resuming from the database's offsets", parts->cnt);
        rd_kafka_assign(rk, parts);
        if (s->paused)
            rd_kafka_pause_partitions(rk, parts);
        return;
    }
    /* Losing partitions: write what we hold once; if that fails, the next owner reads it
     * again from the database's offsets, so dropping it loses nothing. */
    if (s->b.len > 0 && flush_batch(s) != FP_PG_OK) {
        fp_warn("revoked with an unwritten batch of %zu rows; the next owner re-reads them",
                s->b.len);
        batch_release(&s->b);
    }
    rd_kafka_assign(rk, NULL);
    s->paused = false;
}

static void update_readiness(sink *s)
{
    bool kafka = fp_kafka_connected(s->consumer);
    bool db = fp_pg_ok(s->pg);

    fp_gauge_set(s->m_db_up, db ? 1 : 0);
    fp_gauge_set(s->m_connected, kafka && fp_kafka_connected(s->producer) ? 1 : 0);
    fp_gauge_set(s->m_inflight, (double)s->b.len);
    if (kafka && db)
        fp_health_set_ready(true, NULL);
    else
        fp_health_set_ready(false,
                            db ? "consumer has no broker connection" : "database unavailable");
}

static int run(sink *s)
{
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t err;

    rd_kafka_topic_partition_list_add(topics, s->cfg.common.in_topic, RD_KAFKA_PARTITION_UA);
    err = rd_kafka_subscribe(s->consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fp_error("subscribe to %s: %s", s->cfg.common.in_topic, rd_kafka_err2str(err));
        return 1;
    }
    while (!fp_signal_stop_requested()) {
        int64_t now = fp_mono_ms();
        int64_t due = s->b.len > 0 ? s->b.started_ms + s->cfg.batch_ms : now + 100;
        rd_kafka_message_t *msg;

        fp_health_beat();
        rd_kafka_poll(s->producer, 0);
        update_readiness(s);
        if (s->retry_at_ms != 0 && now < s->retry_at_ms) {
            /* Backing off: keep serving the group, take nothing new (partitions paused). */
            msg = rd_kafka_consumer_poll(s->consumer, 50);
            /* A message fetched just before the pause still belongs in the batch: dropping it
             * would let the batch's offsets pass over it. */
            if (msg != NULL && msg->err == RD_KAFKA_RESP_ERR_NO_ERROR && batch_add(s, msg) < 0)
                return 1;
            if (msg != NULL && msg->err != RD_KAFKA_RESP_ERR_NO_ERROR)
                rd_kafka_message_destroy(msg);
            continue;
        }
        if (s->retry_at_ms != 0) {
            s->retry_at_ms = 0;
            if (s->b.len == 0 && fp_pg_ping(s->pg) != FP_PG_OK) {
                s->backoff_ms = s->backoff_ms < 5000 ? s->backoff_ms * 2 + 100 : 5000;
                s->retry_at_ms = now + s->backoff_ms;
                continue;
            }
            if (s->b.len == 0)
                set_paused(s, false);
        }
        if (s->b.len > 0 && ((int64_t)s->b.len >= s->cfg.batch_max || now >= due)) {
            flush_batch(s);
            continue;
        }
        if (now - s->last_db_check_ms >= 1000) {
            /* Idle: make sure /readyz tells the truth about the database. */
            s->last_db_check_ms = now;
            if (s->b.len == 0 && fp_pg_ping(s->pg) != FP_PG_OK) {
                set_paused(s, true);
                s->backoff_ms = 100;
                s->retry_at_ms = now + s->backoff_ms;
                continue;
            }
        }
        msg = rd_kafka_consumer_poll(s->consumer,
                                     (int)(due > now ? (due - now < 100 ? due - now : 100) : 0));
        if (msg == NULL)
            continue;
        if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                fp_log_kv(FP_LOG_WARN, "consumer error", "error", rd_kafka_message_errstr(msg),
                          FP_KV_END);
            rd_kafka_message_destroy(msg);
            if (fp_kafka_fatal(s->consumer))
                return 1;
            continue;
        }
        if (batch_add(s, msg) < 0)
            return 1;
    }
    return 0;
}

/* On SIGTERM: write the last batch (retrying within the shutdown timeout), then close. */
static void drain(sink *s)
{
    int64_t deadline = fp_mono_ms() + s->cfg.common.shutdown_timeout_ms;

    fp_health_set_ready(false, "draining");
    while (s->b.len > 0 && fp_mono_ms() < deadline) {
        if (flush_batch(s) == FP_PG_OK)
            break;
        backoff_wait(s->backoff_ms);
    }
    if (s->b.len > 0)
        fp_warn("exiting with %zu unwritten rows; they are read again at the next start", s->b.len);
    rd_kafka_commit(s->consumer, NULL, 0);
    rd_kafka_consumer_close(s->consumer);
    rd_kafka_flush(s->producer, (int)s->cfg.common.shutdown_timeout_ms);
}

int main(int argc, char **argv)
{
    fp_kafka_hooks consumer_hooks = {.rebalance_cb = on_rebalance};
    fp_kafka_hooks producer_hooks = {.dr_msg_cb = on_dlq_delivery};
    sink s;
    fp_http *http = NULL;
    bool http_off;
    char err[512];
    int rc = 1;

    memset(&s, 0, sizeof(s));
    fp_config_startup(argc, argv, "sink-svc",
                      "Writes enriched records from IN_TOPIC into PostgreSQL, exactly once; rows "
                      "the database refuses go to DLQ_TOPIC.",
                      sink_options, &s.cfg);
    fp_signal_install();
    fp_metrics_register_process("sink-svc", FP_VERSION);
    s.m_consumed =
        fp_metrics_counter("fleetpipe_messages_consumed_total",
                           "Input messages taken from the input topic.", "stage=\"sink\"");
    s.m_inserted = fp_metrics_counter("fleetpipe_sink_rows_inserted_total",
                                      "Rows committed into the telemetry table.", NULL);
    s.m_duplicates =
        fp_metrics_counter("fleetpipe_sink_rows_duplicate_total",
                           "Rows not inserted because (device_id, ts) was already stored.", NULL);
    s.m_batches = fp_metrics_counter("fleetpipe_sink_batches_total", "Batches committed.", NULL);
    s.m_retries = fp_metrics_counter("fleetpipe_sink_batch_retries_total",
                                     "Batch writes that failed for infrastructure reasons and "
                                     "were retried.",
                                     NULL);
    s.m_batch_seconds = fp_metrics_histogram("fleetpipe_sink_batch_duration_seconds",
                                             "Time to write and commit one batch.", NULL,
                                             fp_latency_buckets, fp_latency_buckets_len);
    s.m_batch_rows = fp_metrics_histogram("fleetpipe_sink_batch_rows", "Rows per committed batch.",
                                          NULL, batch_row_buckets,
                                          sizeof(batch_row_buckets) / sizeof(batch_row_buckets[0]));
    s.m_db_up =
        fp_metrics_gauge("fleetpipe_sink_database_up", "1 while the database answers.", NULL);
    s.m_connected =
        fp_metrics_gauge("fleetpipe_kafka_connected",
                         "1 while both Kafka clients have a broker connection.", "stage=\"sink\"");
    s.m_inflight = fp_metrics_gauge("fleetpipe_inflight_messages",
                                    "Input messages whose outputs are not all delivered yet.",
                                    "stage=\"sink\"");
    s.m_delivery_errors =
        fp_metrics_counter("fleetpipe_delivery_errors_total",
                           "Records the producer failed to deliver.", "stage=\"sink\"");
    s.m_paused =
        fp_metrics_gauge("fleetpipe_consumer_paused",
                         "1 while consumption is paused for backpressure.", "stage=\"sink\"");

    {
        fp_dialect dialect = FP_DIALECT_POSTGRES;

        fp_dialect_parse(s.cfg.dialect, &dialect); /* the config table already checked it */
        s.pg = fp_pg_new(s.cfg.pg_dsn, dialect);
        if (s.pg != NULL && fp_pg_set_rollups(s.pg, strcmp(s.cfg.rollups, "on") == 0) < 0) {
            fp_pg_free(s.pg);
            s.pg = NULL;
        }
    }
    s.consumer =
        fp_kafka_new(FP_KAFKA_CONSUMER, &s.cfg.common, &s, &consumer_hooks, err, sizeof(err));
    if (s.consumer != NULL)
        s.producer =
            fp_kafka_new(FP_KAFKA_PRODUCER, &s.cfg.common, &s, &producer_hooks, err, sizeof(err));
    if (s.pg == NULL || s.consumer == NULL || s.producer == NULL) {
        fp_log_kv(FP_LOG_ERROR, "cannot start", "error", err, FP_KV_END);
        rc = 2;
        goto out;
    }
    http = fp_http_start(s.cfg.common.http_bind, (int)s.cfg.common.http_port, &http_off);
    if (http == NULL && !http_off)
        goto out;
    fp_health_set_ready(false, "connecting to the database");
    /* Migrations first: nothing is consumed before the schema is there. */
    for (int64_t wait_ms = 100; fp_pg_ensure(s.pg) != FP_PG_OK && !fp_signal_stop_requested();
         wait_ms = wait_ms < 2000 ? wait_ms * 2 : wait_ms)
        backoff_wait(wait_ms);
    rc = run(&s);
    drain(&s);
out:
    fp_http_stop(http);
    if (s.consumer != NULL)
        fp_kafka_destroy(s.consumer);
    if (s.producer != NULL)
        fp_kafka_destroy(s.producer);
    fp_pg_free(s.pg);
    batch_free(&s.b);
    fp_info("stopped");
    return rc;
}
