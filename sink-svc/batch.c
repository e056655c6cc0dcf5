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

/* The rows of one batch. */
typedef struct rowset {
    batch_row *rows;
    fp_record *recs;
    pg_row *pgrows;
    size_t len, cap, bytes;
    size_t inited; /* recs[0, inited) are initialised (as rows first use them: fewer pages) */
    int64_t started_ms;
} rowset;

struct batch {
    fp_output ops;
    batch_settings set;
    pg_conn *pg;
    rowset cur;  /* the batch being gathered */
    rowset tail; /* the batch being committed (pending: pg_write_start), or not yet written */
    double tail_started; /* when its commit was started (fp_mono_seconds) */
    int64_t last_progress_ms;
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

/* Whether the tail's commit is outstanding (pg_write_start, not yet over). */
static bool pending(const batch *b)
{
    return b->pg != NULL && pg_tail_pending(b->pg);
}

static const double batch_row_buckets[] = {1, 10, 50, 100, 500, 1000, 2000, 5000, 10000, 50000};

size_t batch_len(const batch *b)
{
    return b->cur.len;
}

size_t batch_bytes(const batch *b)
{
    return b->cur.bytes;
}

batch_row *batch_row_at(batch *b, size_t i)
{
    return &b->cur.rows[i];
}

/* Makes room for one more row. Returns 0 or -1 on out of memory. */
static int grow(rowset *s)
{
    size_t cap = s->cap != 0 ? s->cap * 2 : 256;
    batch_row *rows = realloc(s->rows, cap * sizeof(*rows));
    fp_record *recs;
    pg_row *pgrows;

    if (rows == NULL)
        return -1;
    s->rows = rows;
    recs = realloc(s->recs, cap * sizeof(*recs));
    if (recs == NULL)
        return -1;
    s->recs = recs;
    pgrows = realloc(s->pgrows, cap * sizeof(*pgrows));
    if (pgrows == NULL)
        return -1;
    s->pgrows = pgrows;
    s->cap = cap;
    return 0;
}

long batch_push(batch *b, rd_kafka_message_t *msg, uint64_t token, int32_t partition,
                int64_t offset, const void *payload, size_t len)
{
    rowset *s = &b->cur;
    batch_row *row;
    char why[256];
    int rc;

    if (s->len == s->cap && grow(s) < 0)
        return -1;
    if (s->len == 0)
        s->started_ms = fp_mono_ms();
    if (s->len == s->inited)
        fp_record_init(&s->recs[s->inited++]);
    row = &s->rows[s->len];
    memset(row, 0, sizeof(*row));
    row->msg = msg;
    row->token = token;
    row->partition = partition;
    row->offset = offset;
    row->bytes = len;
    memset(&s->pgrows[s->len], 0, sizeof(s->pgrows[s->len]));
    rc = fp_record_decode_json(&s->recs[s->len], payload, len, why, sizeof(why));
    s->len++;
    s->bytes += len;
    fp_gauge_set(b->m_rows, (double)s->len);
    if (rc < 0) {
        s->pgrows[s->len - 1].skip = true;
        batch_owe_dead_letter(b, s->len - 1, fp_record_err_code(rc), why);
    }
    /* Not while an earlier batch waits to be written again: the connection is its. */
    if (b->pg != NULL && (b->tail.len == 0 || pending(b)))
        pg_stream_row(b->pg, &s->pgrows[s->len - 1], &s->recs[s->len - 1], s->len - 1);
    return (long)s->len - 1;
}

/* Row i of s owes a dead letter (batch_owe_dead_letter). */
static void owe_dead_letter(rowset *s, size_t i, const char *code, const char *why)
{
    batch_row *row = &s->rows[i];

    if (row->dl_code != NULL)
        return;
    row->dl_code = code;
    free(row->dl_why);
    row->dl_why = strndup(why, 255);
    row->dl = BATCH_DL_NONE;
}

void batch_owe_dead_letter(batch *b, size_t i, const char *code, const char *why)
{
    owe_dead_letter(&b->cur, i, code, why);
}

/* batch_next_to_send for the rows of s. */
static bool next_to_send(const rowset *s, size_t *i)
{
    for (; *i < s->len; (*i)++) {
        const batch_row *row = &s->rows[*i];

        if (row->dl_code != NULL && (row->dl == BATCH_DL_NONE || row->dl == BATCH_DL_FAILED))
            return true;
    }
    return false;
}

bool batch_next_to_send(const batch *b, size_t *i)
{
    return next_to_send(&b->cur, i);
}

/* Sets the state of the dead letter in flight for `token` in s. Returns true when s has it. */
static bool dead_letter_done(rowset *s, uint64_t token, bool ok)
{
    for (size_t i = 0; i < s->len; i++) {
        if (s->rows[i].token == token && s->rows[i].dl == BATCH_DL_INFLIGHT) {
            s->rows[i].dl = ok ? BATCH_DL_CONFIRMED : BATCH_DL_FAILED;
            return true;
        }
    }
    return false;
}

void batch_dead_letter_done(batch *b, uint64_t token, bool ok)
{
    if (!dead_letter_done(&b->tail, token, ok))
        dead_letter_done(&b->cur, token, ok);
}

/* Whether every dead letter the rows of s owe is confirmed. */
static bool confirmed(const rowset *s)
{
    for (size_t i = 0; i < s->len; i++)
        if (s->rows[i].dl_code != NULL && s->rows[i].dl != BATCH_DL_CONFIRMED)
            return false;
    return true;
}

bool batch_dead_letters_confirmed(const batch *b)
{
    return confirmed(&b->cur);
}

static bool any_in_flight(const rowset *s)
{
    for (size_t i = 0; i < s->len; i++)
        if (s->rows[i].dl == BATCH_DL_INFLIGHT)
            return true;
    return false;
}

bool batch_is_due(const batch *b, int64_t now_ms, bool idle)
{
    const rowset *s = &b->cur;

    return s->len > 0 &&
           (idle || (int64_t)s->len >= b->set.max_rows || (int64_t)s->bytes >= b->set.max_bytes ||
            now_ms - s->started_ms >= b->set.max_ms);
}

/* Empties s. With release, the rows' holds go (they are durable); without, the holds stay with
 * their partitions, which the caller rewinds. */
static void clear(batch *b, rowset *s, fp_stage *st, bool release)
{
    for (size_t i = 0; i < s->len; i++) {
        if (release && st != NULL)
            fp_stage_release(st, s->rows[i].token);
        if (s->rows[i].msg != NULL)
            rd_kafka_message_destroy(s->rows[i].msg);
        free(s->rows[i].dl_why);
        free(s->pgrows[i].error);
        s->pgrows[i].error = NULL;
    }
    s->len = 0;
    s->bytes = 0;
    if (s == &b->cur)
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
    rowset *s; /* the batch being written */
} settle_ctx;

static int settle_dead_letters(const pg_row *pgrows, size_t n, void *ctx)
{
    fp_stage *st = ((settle_ctx *)ctx)->st;
    batch *b = ((settle_ctx *)ctx)->b;
    rowset *s = ((settle_ctx *)ctx)->s;
    int64_t deadline = fp_mono_ms() + b->set.dlq_timeout_ms;
    size_t i = 0;

    for (size_t j = 0; j < n; j++)
        if (pgrows[j].rejected)
            owe_dead_letter(s, j, "db_rejected",
                            pgrows[j].error != NULL ? pgrows[j].error : "refused by the database");
    while (next_to_send(s, &i)) {
        batch_row *row = &s->rows[i];

        row->dl = BATCH_DL_INFLIGHT;
        if (fp_stage_dead_letter(st, row->msg, row->token, row->dl_code,
                                 row->dl_why != NULL ? row->dl_why : row->dl_code) < 0) {
            row->dl = BATCH_DL_FAILED;
            return -1;
        }
        i++;
    }
    while (any_in_flight(s) && fp_mono_ms() < deadline && !fp_signal_stop_requested())
        fp_stage_serve(st, 50);
    if (!confirmed(s)) {
        fp_warn("dead letters not confirmed; the batch is not committed and will be retried");
        return -1;
    }
    return 0;
}

/* The next offset of each partition in the batch (messages of one partition come in order). */
static size_t next_offsets(const rowset *s, pg_offset *out, size_t max)
{
    size_t n = 0;

    for (size_t i = 0; i < s->len; i++) {
        size_t j;

        for (j = 0; j < n; j++)
            if (out[j].partition == s->rows[i].partition)
                break;
        if (j == n) {
            if (n == max)
                continue;
            out[n].partition = s->rows[i].partition;
            n++;
        }
        out[j].next_offset = s->rows[i].offset + 1;
    }
    return n;
}

/* Counts a committed batch of s and empties it, releasing its messages. */
static void committed(batch *b, rowset *s, fp_stage *st, uint64_t inserted, double started)
{
    uint64_t written = 0;

    for (size_t i = 0; i < s->len; i++)
        if (!s->pgrows[i].skip && !s->pgrows[i].rejected)
            written++;
    fp_counter_inc(b->m_batches);
    fp_counter_add(b->m_inserted, inserted);
    fp_counter_add(b->m_duplicates, written - inserted);
    fp_histogram_observe(b->m_batch_seconds, fp_mono_seconds() - started);
    fp_histogram_observe(b->m_batch_rows, (double)s->len);
    clear(b, s, st, true);
}

/* Readies the rows of s for the writer and lists their partitions' next offsets. Returns how
 * many partitions. */
static size_t prepare(rowset *s, pg_offset *offs)
{
    /* Rows point at their records only now: the record array moves while the batch grows. */
    for (size_t i = 0; i < s->len; i++)
        s->pgrows[i].rec = &s->recs[i];
    return next_offsets(s, offs, MAX_PARTITIONS);
}

/* Writes the rows of s and waits for the commit. */
static fp_flush_result write_rows(batch *b, rowset *s, fp_stage *st)
{
    pg_offset offs[MAX_PARTITIONS];
    size_t noffs;
    uint64_t inserted = 0;
    double start = fp_mono_seconds();
    settle_ctx sc = {st, b, s};

    if (s->len == 0)
        return FP_FLUSH_OK;
    noffs = prepare(s, offs);
    b->last_db_check_ms = fp_mono_ms();
    if (pg_write(b->pg, s->pgrows, s->len, b->set.group, b->set.topic, offs, noffs,
                 settle_dead_letters, &sc, &inserted) != PG_OK) {
        fp_counter_inc(b->m_retries);
        return FP_FLUSH_RETRY;
    }
    committed(b, s, st, inserted, start);
    return FP_FLUSH_OK;
}

/* Finishes the batch in b->tail: drives its pending commit (waiting, with `wait`), or writes it
 * when an earlier attempt failed. OK when it is committed, or still pending without `wait`. */
static fp_flush_result finish_tail(batch *b, fp_stage *st, bool wait)
{
    settle_ctx sc = {st, b, &b->tail};
    uint64_t inserted = 0;
    int rc;

    if (b->tail.len == 0)
        return FP_FLUSH_OK;
    if (!pending(b))
        return write_rows(b, &b->tail, st);
    rc = pg_write_poll(b->pg, wait, settle_dead_letters, &sc, &inserted);
    if (rc == PG_PENDING)
        return FP_FLUSH_OK;
    b->last_db_check_ms = fp_mono_ms();
    if (rc != PG_OK) {
        fp_counter_inc(b->m_retries);
        return FP_FLUSH_RETRY;
    }
    committed(b, &b->tail, st, inserted, b->tail_started);
    return FP_FLUSH_OK;
}

static fp_flush_result out_flush(fp_stage *st, void *ctx)
{
    batch *b = ctx;
    fp_flush_result r = finish_tail(b, st, true);

    return r != FP_FLUSH_OK ? r : write_rows(b, &b->cur, st);
}

/* When due: the batch being gathered starts its commit and the next one is gathered meanwhile
 * (one commit outstanding at a time: an earlier one is waited for first). A batch that owes
 * dead letters, or was not streamed whole, is written waiting. */
static fp_flush_result out_start_flush(fp_stage *st, void *ctx)
{
    batch *b = ctx;
    pg_offset offs[MAX_PARTITIONS];
    size_t noffs;
    rowset t;
    fp_flush_result r = finish_tail(b, st, true);

    if (r != FP_FLUSH_OK || b->cur.len == 0)
        return r;
    if (!pg_write_can_start(b->pg, b->cur.pgrows, b->cur.len) || !confirmed(&b->cur))
        return write_rows(b, &b->cur, st);
    t = b->tail;
    b->tail = b->cur;
    b->cur = t;
    clear(b, &b->cur, st, false);
    noffs = prepare(&b->tail, offs);
    b->tail_started = fp_mono_seconds();
    b->last_db_check_ms = fp_mono_ms();
    if (pg_write_start(b->pg, b->tail.pgrows, b->tail.len, b->set.group, b->set.topic, offs,
                       noffs) != PG_PENDING) {
        fp_counter_inc(b->m_retries);
        return FP_FLUSH_RETRY;
    }
    b->last_progress_ms = fp_mono_ms();
    return FP_FLUSH_OK;
}

/* Drives a pending commit, at most once a millisecond while messages stream in (each look
 * costs a system call). */
static fp_flush_result out_progress(fp_stage *st, void *ctx)
{
    batch *b = ctx;
    int64_t now;

    if (!pending(b))
        return FP_FLUSH_OK;
    now = fp_mono_ms();
    if (now == b->last_progress_ms)
        return FP_FLUSH_OK;
    b->last_progress_ms = now;
    return finish_tail(b, st, false);
}

void batch_poll(fp_stage *st, int max_wait_ms, void *ctx)
{
    batch *b = ctx;

    (void)st;
    if (pending(b))
        pg_tail_wait(b->pg, max_wait_ms);
}

/* Start where the database says this group stands: that is the exactly-once point. */
static fp_flush_result out_assign(fp_stage *st, rd_kafka_topic_partition_list_t *parts, void *ctx)
{
    batch *b = ctx;

    /* The connection must be free: a commit still outstanding is finished first. */
    if (finish_tail(b, st, true) != FP_FLUSH_OK ||
        pg_load_offsets(b->pg, b->set.group, parts) != PG_OK)
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
    rowset *sets[2] = {&b->tail, &b->cur}; /* the older rows first */

    if (b->pg != NULL) {
        pg_tail_abandon(b->pg);
        pg_stream_abort(b->pg);
    }
    if (b->tail.len + b->cur.len == 0)
        return;
    fp_warn("dropping %zu unwritten rows; they are read again", b->tail.len + b->cur.len);
    parts = rd_kafka_topic_partition_list_new(4);
    for (int k = 0; k < 2; k++) {
        rowset *s = sets[k];

        for (size_t i = 0; i < s->len; i++)
            if (rd_kafka_topic_partition_list_find(parts, b->set.topic, s->rows[i].partition) ==
                NULL)
                rd_kafka_topic_partition_list_add(parts, b->set.topic, s->rows[i].partition)
                    ->offset = s->rows[i].offset;
        clear(b, s, st, false);
    }
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
    if (b->cur.len == 0 && b->tail.len == 0 && now - b->last_db_check_ms >= 1000) {
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
        .start_flush = set->overlap ? out_start_flush : NULL,
        .progress = set->overlap ? out_progress : NULL,
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
                             "most of its rows were sent while it was gathered; with "
                             "SINK_COMMIT_OVERLAP=on the next batch is read meanwhile).",
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
    for (int k = 0; k < 2; k++) {
        rowset *s = k == 0 ? &b->cur : &b->tail;

        clear(b, s, NULL, false);
        for (size_t i = 0; i < s->inited; i++)
            fp_record_free(&s->recs[i]);
        free(s->rows);
        free(s->recs);
        free(s->pgrows);
    }
    free(b);
}
