#include "sink-svc/batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fp_log.h"
#include "common/fp_metrics.h"
#include "common/fp_signal.h"
#include "common/fp_time.h"

/* The most partitions one batch's offsets list (more would be a misconfigured topic). */
#define MAX_PARTITIONS 1024

struct batch {
    fp_output ops;
    batch_settings set;
    pg_conn *pg;
    batch_row *rows;
    fp_record *recs;
    pg_row *pgrows;
    size_t len, cap, bytes;
    int64_t started_ms;
    int64_t last_db_check_ms;

    fp_counter *m_inserted;
    fp_counter *m_duplicates;
    fp_counter *m_batches;
    fp_counter *m_retries;
    fp_histogram *m_batch_seconds;
    fp_histogram *m_batch_rows;
    fp_gauge *m_db_up;
    fp_gauge *m_rows;
};

static const double batch_row_buckets[] = {1, 10, 50, 100, 500, 1000, 2000, 5000, 10000, 50000};

size_t batch_len(const batch *b)
{
    return b->len;
}

size_t batch_bytes(const batch *b)
{
    return b->bytes;
}

batch_row *batch_row_at(batch *b, size_t i)
{
    return &b->rows[i];
}

/* Makes room for one more row. Returns 0 or -1 on out of memory. */
static int grow(batch *b)
{
    size_t cap = b->cap != 0 ? b->cap * 2 : 256;
    batch_row *rows = realloc(b->rows, cap * sizeof(*rows));
    fp_record *recs;
    pg_row *pgrows;

    if (rows == NULL)
        return -1;
    b->rows = rows;
    recs = realloc(b->recs, cap * sizeof(*recs));
    if (recs == NULL)
        return -1;
    b->recs = recs;
    for (size_t i = b->cap; i < cap; i++)
        fp_record_init(&recs[i]);
    pgrows = realloc(b->pgrows, cap * sizeof(*pgrows));
    if (pgrows == NULL)
        return -1;
    b->pgrows = pgrows;
    b->cap = cap;
    return 0;
}

long batch_push(batch *b, rd_kafka_message_t *msg, uint64_t token, int32_t partition,
                int64_t offset, const void *payload, size_t len)
{
    batch_row *row;
    char why[256];
    int rc;

    if (b->len == b->cap && grow(b) < 0)
        return -1;
    if (b->len == 0)
        b->started_ms = fp_mono_ms();
    row = &b->rows[b->len];
    memset(row, 0, sizeof(*row));
    row->msg = msg;
    row->token = token;
    row->partition = partition;
    row->offset = offset;
    row->bytes = len;
    memset(&b->pgrows[b->len], 0, sizeof(b->pgrows[b->len]));
    rc = fp_record_decode_json(&b->recs[b->len], payload, len, why, sizeof(why));
    b->len++;
    b->bytes += len;
    fp_gauge_set(b->m_rows, (double)b->len);
    if (rc < 0) {
        b->pgrows[b->len - 1].skip = true;
        batch_owe_dead_letter(b, b->len - 1, fp_record_err_code(rc), why);
    }
    if (b->pg != NULL)
        pg_stream_row(b->pg, &b->pgrows[b->len - 1], &b->recs[b->len - 1], b->len - 1);
    return (long)b->len - 1;
}

void batch_owe_dead_letter(batch *b, size_t i, const char *code, const char *why)
{
    batch_row *row = &b->rows[i];

    if (row->dl_code != NULL)
        return;
    row->dl_code = code;
    snprintf(row->dl_why, sizeof(row->dl_why), "%s", why);
    row->dl = BATCH_DL_NONE;
}

bool batch_next_to_send(const batch *b, size_t *i)
{
    for (; *i < b->len; (*i)++) {
        const batch_row *row = &b->rows[*i];

        if (row->dl_code != NULL && (row->dl == BATCH_DL_NONE || row->dl == BATCH_DL_FAILED))
            return true;
    }
    return false;
}

void batch_dead_letter_done(batch *b, uint64_t token, bool ok)
{
    for (size_t i = 0; i < b->len; i++) {
        if (b->rows[i].token == token && b->rows[i].dl == BATCH_DL_INFLIGHT) {
            b->rows[i].dl = ok ? BATCH_DL_CONFIRMED : BATCH_DL_FAILED;
            return;
        }
    }
}

bool batch_dead_letters_confirmed(const batch *b)
{
    for (size_t i = 0; i < b->len; i++)
        if (b->rows[i].dl_code != NULL && b->rows[i].dl != BATCH_DL_CONFIRMED)
            return false;
    return true;
}

static bool any_in_flight(const batch *b)
{
    for (size_t i = 0; i < b->len; i++)
        if (b->rows[i].dl == BATCH_DL_INFLIGHT)
            return true;
    return false;
}

bool batch_is_due(const batch *b, int64_t now_ms, bool idle)
{
    return b->len > 0 &&
           (idle || (int64_t)b->len >= b->set.max_rows || (int64_t)b->bytes >= b->set.max_bytes ||
            now_ms - b->started_ms >= b->set.max_ms);
}

/* Empties the batch. With release, the rows' holds go (they are durable); without, the holds
 * stay with their partitions, which the caller rewinds. */
static void clear(batch *b, fp_stage *st, bool release)
{
    for (size_t i = 0; i < b->len; i++) {
        if (release && st != NULL)
            fp_stage_release(st, b->rows[i].token);
        if (b->rows[i].msg != NULL)
            rd_kafka_message_destroy(b->rows[i].msg);
    }
    b->len = 0;
    b->bytes = 0;
    fp_gauge_set(b->m_rows, 0);
}

int batch_handle(fp_stage *st, const rd_kafka_message_t *msg, void *ctx)
{
    batch *b = ctx;
    rd_kafka_message_t *owned = fp_stage_take_message(st);

    if (batch_push(b, owned, fp_stage_hold(st), msg->partition, msg->offset, msg->payload,
                   msg->len) < 0) {
        fp_error("out of memory growing a batch");
        rd_kafka_message_destroy(owned);
        return -1;
    }
    return 0;
}

/* Before COMMIT: every dead letter the batch owes is sent (again, when it failed) and must be
 * confirmed within the timeout; otherwise the batch is abandoned and retried. */
typedef struct settle_ctx {
    fp_stage *st;
    batch *b;
} settle_ctx;

static int settle_dead_letters(const pg_row *pgrows, size_t n, void *ctx)
{
    fp_stage *st = ((settle_ctx *)ctx)->st;
    batch *b = ((settle_ctx *)ctx)->b;
    int64_t deadline = fp_mono_ms() + b->set.dlq_timeout_ms;
    size_t i = 0;

    for (size_t j = 0; j < n; j++)
        if (pgrows[j].rejected)
            batch_owe_dead_letter(b, j, "db_rejected", pgrows[j].error);
    while (batch_next_to_send(b, &i)) {
        batch_row *row = &b->rows[i];

        row->dl = BATCH_DL_INFLIGHT;
        if (fp_stage_dead_letter(st, row->msg, row->token, row->dl_code, row->dl_why) < 0) {
            row->dl = BATCH_DL_FAILED;
            return -1;
        }
        i++;
    }
    while (any_in_flight(b) && fp_mono_ms() < deadline && !fp_signal_stop_requested())
        fp_stage_serve(st, 50);
    if (!batch_dead_letters_confirmed(b)) {
        fp_warn("dead letters not confirmed; the batch is not committed and will be retried");
        return -1;
    }
    return 0;
}

/* The next offset of each partition in the batch (messages of one partition come in order). */
static size_t next_offsets(const batch *b, pg_offset *out, size_t max)
{
    size_t n = 0;

    for (size_t i = 0; i < b->len; i++) {
        size_t j;

        for (j = 0; j < n; j++)
            if (out[j].partition == b->rows[i].partition)
                break;
        if (j == n) {
            if (n == max)
                continue;
            out[n].partition = b->rows[i].partition;
            n++;
        }
        out[j].next_offset = b->rows[i].offset + 1;
    }
    return n;
}

static fp_flush_result out_flush(fp_stage *st, void *ctx)
{
    batch *b = ctx;
    pg_offset offs[MAX_PARTITIONS];
    size_t noffs;
    uint64_t inserted = 0, written = 0;
    double start = fp_mono_seconds();
    settle_ctx sc = {st, b};

    if (b->len == 0)
        return FP_FLUSH_OK;
    /* Rows point at their records only now: the record array moves while the batch grows. */
    for (size_t i = 0; i < b->len; i++)
        b->pgrows[i].rec = &b->recs[i];
    noffs = next_offsets(b, offs, MAX_PARTITIONS);
    b->last_db_check_ms = fp_mono_ms();
    if (pg_write(b->pg, b->pgrows, b->len, b->set.group, b->set.topic, offs, noffs,
                 settle_dead_letters, &sc, &inserted) != PG_OK) {
        fp_counter_inc(b->m_retries);
        return FP_FLUSH_RETRY;
    }
    for (size_t i = 0; i < b->len; i++)
        if (!b->pgrows[i].skip && !b->pgrows[i].rejected)
            written++;
    fp_counter_inc(b->m_batches);
    fp_counter_add(b->m_inserted, inserted);
    fp_counter_add(b->m_duplicates, written - inserted);
    fp_histogram_observe(b->m_batch_seconds, fp_mono_seconds() - start);
    fp_histogram_observe(b->m_batch_rows, (double)b->len);
    clear(b, st, true);
    return FP_FLUSH_OK;
}

/* Start where the database says this group stands: that is the exactly-once point. */
static fp_flush_result out_assign(fp_stage *st, rd_kafka_topic_partition_list_t *parts, void *ctx)
{
    batch *b = ctx;

    (void)st;
    if (pg_load_offsets(b->pg, b->set.group, parts) != PG_OK)
        return FP_FLUSH_RETRY;
    fp_info("resuming %d partitions from the database's offsets", parts->cnt);
    return FP_FLUSH_OK;
}

/* Drops the batch without committing; its partitions go back to its first rows (or, after a
 * fatal error, nothing more is read). */
static void out_abort(fp_stage *st, void *ctx)
{
    batch *b = ctx;
    rd_kafka_topic_partition_list_t *parts;

    if (b->pg != NULL)
        pg_stream_abort(b->pg);
    if (b->len == 0)
        return;
    fp_warn("dropping an unwritten batch of %zu rows; they are read again", b->len);
    parts = rd_kafka_topic_partition_list_new(4);
    for (size_t i = 0; i < b->len; i++)
        if (rd_kafka_topic_partition_list_find(parts, b->set.topic, b->rows[i].partition) == NULL)
            rd_kafka_topic_partition_list_add(parts, b->set.topic, b->rows[i].partition)->offset =
                b->rows[i].offset;
    clear(b, st, false);
    if (!fp_stage_failed(st))
        fp_stage_rewind_to(st, parts);
    rd_kafka_topic_partition_list_destroy(parts);
}

/* Readiness follows the database; an idle sink checks it every second. */
static bool out_ready(fp_stage *st, const char **why, void *ctx)
{
    batch *b = ctx;
    int64_t now = fp_mono_ms();
    bool up;

    (void)st;
    if (b->len == 0 && now - b->last_db_check_ms >= 1000) {
        b->last_db_check_ms = now;
        pg_ping(b->pg);
    }
    up = pg_ok(b->pg);
    fp_gauge_set(b->m_db_up, up ? 1 : 0);
    if (!up)
        *why = "database unavailable";
    return up;
}

static bool out_due(fp_stage *st, int64_t now_ms, bool idle, void *ctx)
{
    (void)st;
    return batch_is_due(ctx, now_ms, idle);
}

static void out_dead_letter_done(fp_stage *st, uint64_t token, rd_kafka_resp_err_t err, void *ctx)
{
    (void)st;
    batch_dead_letter_done(ctx, token, err == RD_KAFKA_RESP_ERR_NO_ERROR);
}

batch *batch_new(pg_conn *pg, const batch_settings *set)
{
    batch *b = calloc(1, sizeof(*b));

    if (b == NULL)
        return NULL;
    b->pg = pg;
    b->set = *set;
    b->ops = (fp_output){
        .name = "database",
        .assign = out_assign,
        .due = out_due,
        .flush = out_flush,
        .abort = out_abort,
        .ready = out_ready,
        .dead_letter_done = out_dead_letter_done,
        .ctx = b,
    };
    b->m_inserted = fp_metrics_counter("fleetpipe_sink_rows_inserted_total",
                                       "Rows committed into the telemetry table.", NULL);
    b->m_duplicates =
        fp_metrics_counter("fleetpipe_sink_rows_duplicate_total",
                           "Rows not inserted because (device_id, ts) was already stored.", NULL);
    b->m_batches = fp_metrics_counter("fleetpipe_sink_batches_total", "Batches committed.", NULL);
    b->m_retries = fp_metrics_counter("fleetpipe_sink_batch_retries_total",
                                      "Batch writes that failed for infrastructure reasons and "
                                      "were retried.",
                                      NULL);
    b->m_batch_seconds =
        fp_metrics_histogram("fleetpipe_sink_batch_duration_seconds",
                             "Time from a batch being due to its commit (with SINK_STREAM_COPY=on "
                             "most of its rows were sent while it was gathered).",
                             NULL, fp_latency_buckets, fp_latency_buckets_len);
    b->m_batch_rows = fp_metrics_histogram(
        "fleetpipe_sink_batch_rows", "Rows per committed batch.", NULL, batch_row_buckets,
        sizeof(batch_row_buckets) / sizeof(batch_row_buckets[0]));
    b->m_db_up =
        fp_metrics_gauge("fleetpipe_sink_database_up", "1 while the database answers.", NULL);
    b->m_rows = fp_metrics_gauge("fleetpipe_sink_batch_pending_rows",
                                 "Rows in the batch being gathered.", NULL);
    return b;
}

const fp_output *batch_output(batch *b)
{
    return &b->ops;
}

void batch_free(batch *b)
{
    if (b == NULL)
        return;
    clear(b, NULL, false);
    for (size_t i = 0; i < b->cap; i++)
        fp_record_free(&b->recs[i]);
    free(b->rows);
    free(b->recs);
    free(b->pgrows);
    free(b);
}
