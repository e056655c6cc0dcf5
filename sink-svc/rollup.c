#include "sink-svc/rollup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink-svc/dialect.h"
#include "common/fp_log.h"
#include "common/fp_metrics.h"
#include "common/fp_time.h"

struct rollup_set {
    bool enabled;
    bool sent_summary; /* rollup_send sent the summary's call (not rollup_apply's statement) */
    rollup_counts last;
    fp_counter *m_late;
    fp_counter *m_recomputed;
    fp_histogram *m_changed;
};

static const double rows_changed_buckets[] = {0, 1, 10, 50, 100, 500, 1000, 5000, 10000};

/* PostgreSQL statements; the functions they call are in migrations/003_rollups.sql and
 * 005_rollup_rows.sql. */
static const char session_sql[] = "SELECT telemetry_rollup_session()";
static const char state_sql[] = "SELECT valid FROM telemetry_rollup_state";
static const char rebuild_sql[] = "SELECT telemetry_rollup_rebuild(false)";
static const char apply_sql[] =
    "SELECT late_rows, rollup_rows, recomputed_rows FROM telemetry_rollup_apply()";
static const char summary_sql[] =
    "SELECT r.rollup_rows, l.device_id FROM telemetry_rollup_summary_apply($1, $2, $3, $4, $5, "
    "$6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) AS r "
    "LEFT JOIN LATERAL unnest(r.late_devices) AS l(device_id) ON true";
static const char stale_sql[] =
    "UPDATE telemetry_rollup_state SET valid = false, changed_at = now() WHERE valid";
const char *const rollup_metrics[ROLLUP_NMETRICS] = {"engine_hours_h", "odometer_m"};

static const char capture_head[] = "WITH fp_inserted AS (";
static const char capture_tail[] =
    " RETURNING " ROLLUP_ROW_COLUMNS ") INSERT INTO telemetry_rollup_rows (" ROLLUP_ROW_COLUMNS
    ") SELECT " ROLLUP_ROW_COLUMNS " FROM fp_inserted";

rollup_set *rollup_new(bool enabled)
{
    rollup_set *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    r->enabled = enabled;
    r->m_late = fp_metrics_counter("fleetpipe_sink_late_rows_total",
                                   "Rows older than their device's newest stored row when "
                                   "written (each changes up to two hourly rollups).",
                                   NULL);
    r->m_recomputed = fp_metrics_counter("fleetpipe_sink_rollup_recomputed_total",
                                         "telemetry_hourly rows recomputed from the stored rows "
                                         "because a late row changed them.",
                                         NULL);
    r->m_changed = fp_metrics_histogram(
        "fleetpipe_sink_rollup_rows_changed", "telemetry_hourly rows written per committed batch.",
        NULL, rows_changed_buckets, sizeof(rows_changed_buckets) / sizeof(rows_changed_buckets[0]));
    return r;
}

void rollup_free(rollup_set *r)
{
    free(r);
}

bool rollup_enabled(const rollup_set *r)
{
    return r->enabled;
}

rollup_counts rollup_last(const rollup_set *r)
{
    return r->last;
}

/* Logs a failed statement of the rollup step. */
static void log_failure(PGconn *conn, const char *what, const PGresult *res)
{
    const char *msg = res != NULL ? PQresultErrorMessage(res) : NULL;
    char line[512];
    size_t n;

    if (msg == NULL || msg[0] == '\0')
        msg = PQerrorMessage(conn);
    snprintf(line, sizeof(line), "%s", msg);
    n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == ' '))
        line[--n] = '\0';
    fp_log_kv(FP_LOG_WARN, "rollup step failed", "operation", what, "error", line, FP_KV_END);
}

/* Runs a statement without parameters; returns its result when it succeeded (the caller clears
 * it), else logs, clears and returns NULL. */
static PGresult *run(PGconn *conn, const char *what, const char *sql)
{
    PGresult *res = PQexec(conn, sql);

    if (PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK)
        return res;
    log_failure(conn, what, res);
    PQclear(res);
    return NULL;
}

static uint64_t value_u64(const PGresult *res, int col)
{
    if (PQntuples(res) < 1 || PQgetisnull(res, 0, col))
        return 0;
    return strtoull(PQgetvalue(res, 0, col), NULL, 10);
}

int rollup_session(rollup_set *r, PGconn *conn)
{
    PGresult *res;
    bool valid;

    if (!r->enabled)
        return 0;
    res = run(conn, "rollup session", session_sql);
    if (res == NULL)
        return -1;
    PQclear(res);
    res = run(conn, "rollup state", state_sql);
    if (res == NULL)
        return -1;
    valid = PQntuples(res) > 0 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (valid)
        return 0;
    fp_info("rebuilding telemetry_hourly from telemetry: rows were written with SINK_ROLLUPS=off "
            "since it was last complete");
    res = run(conn, "rollup rebuild", rebuild_sql);
    if (res == NULL)
        return -1;
    fp_log_kv(FP_LOG_INFO, "telemetry_hourly rebuilt", "rows",
              PQgetisnull(res, 0, 0) ? "0 (already rebuilt by another sink)"
                                     : PQgetvalue(res, 0, 0),
              FP_KV_END);
    PQclear(res);
    return 0;
}

int rollup_capture_sql(const rollup_set *r, fp_buf *out, const char *insert_sql)
{
    if (!r->enabled)
        return fp_buf_puts(out, insert_sql);
    if (fp_buf_puts(out, capture_head) < 0 || fp_buf_puts(out, insert_sql) < 0 ||
        fp_buf_puts(out, capture_tail) < 0)
        return -1;
    return 0;
}

/* Takes what rollup_apply's statement answered (`res`: apply_sql's row, or stale_sql's when
 * rollups are off) as the last apply's counts. */
static void take_counts(rollup_set *r, const PGresult *res)
{
    memset(&r->last, 0, sizeof(r->last));
    if (!r->enabled)
        return;
    r->last.late_rows = value_u64(res, 0);
    r->last.rows_changed = value_u64(res, 1);
    r->last.recomputed = value_u64(res, 2);
}

int rollup_apply(rollup_set *r, PGconn *conn)
{
    PGresult *res;

    memset(&r->last, 0, sizeof(r->last));
    res = r->enabled ? run(conn, "rollup apply", apply_sql)
                     : run(conn, "mark rollups stale", stale_sql);
    if (res == NULL)
        return -1;
    take_counts(r, res);
    PQclear(res);
    return 0;
}

int rollup_send(rollup_set *r, PGconn *conn, summary *s)
{
    const char *values[SUMMARY_NPARAMS];
    int sent;

    r->sent_summary = r->enabled && summary_len(s) > 0;
    if (!r->sent_summary)
        sent = PQsendQuery(conn, r->enabled ? apply_sql : stale_sql);
    else if (summary_build(s, values) < 0) {
        fp_error("out of memory summarising %zu rows for the rollups", summary_len(s));
        return -1;
    } else
        sent = PQsendQueryParams(conn, summary_sql, SUMMARY_NPARAMS, NULL, values, NULL, NULL, 0);
    if (sent != 1) {
        log_failure(conn, "rollup send", NULL);
        return -1;
    }
    return 0;
}

/* The summary's call answered `res`: the devices it did not apply take the per-row step. */
static int receive_summary(rollup_set *r, PGconn *conn, summary *s, const PGresult *res,
                           rollup_rows_fn rows_of_late, void *ctx)
{
    uint64_t written = value_u64(res, 0);
    size_t *late, nlate = 0;
    int rc = -1;

    late = malloc(summary_len(s) * sizeof(*late));
    if (late == NULL) {
        fp_error("out of memory listing the late rows of %zu", summary_len(s));
        return -1;
    }
    for (int i = 0; i < PQntuples(res); i++)
        if (!PQgetisnull(res, i, 1))
            nlate += summary_rows_of(s, PQgetvalue(res, i, 1), late + nlate);
    /* The devices the summary did not apply take the per-row step, as rows the writer lists. */
    if (nlate > 0 && (rows_of_late(ctx, late, nlate) < 0 || rollup_apply(r, conn) < 0))
        goto out;
    if (nlate == 0)
        memset(&r->last, 0, sizeof(r->last));
    r->last.rows_changed += written;
    rc = 0;
out:
    free(late);
    return rc;
}

int rollup_receive(rollup_set *r, PGconn *conn, summary *s, const PGresult *res,
                   rollup_rows_fn rows_of_late, void *ctx)
{
    ExecStatusType status = PQresultStatus(res);

    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        log_failure(conn, r->sent_summary ? "rollup summary" : "rollup apply", res);
        return -1;
    }
    if (r->sent_summary)
        return receive_summary(r, conn, s, res, rows_of_late, ctx);
    take_counts(r, res);
    return 0;
}

int rollup_apply_summary(rollup_set *r, PGconn *conn, summary *s, rollup_rows_fn rows_of_late,
                         void *ctx)
{
    PGresult *res, *extra;
    int rc;

    if (rollup_send(r, conn, s) < 0)
        return -1;
    res = PQgetResult(conn);
    while ((extra = PQgetResult(conn)) != NULL)
        PQclear(extra);
    rc = rollup_receive(r, conn, s, res, rows_of_late, ctx);
    PQclear(res);
    return rc;
}

void rollup_committed(rollup_set *r)
{
    if (!r->enabled)
        return;
    fp_counter_add(r->m_late, r->last.late_rows);
    fp_counter_add(r->m_recomputed, r->last.recomputed);
    fp_histogram_observe(r->m_changed, (double)r->last.rows_changed);
}

int64_t rollup_bucket_ms(int64_t ts_ms)
{
    int64_t b = ts_ms / ROLLUP_BUCKET_MS * ROLLUP_BUCKET_MS;

    /* C division truncates toward zero: before 1970 the floor is one hour further down. */
    if (b > ts_ms)
        b -= ROLLUP_BUCKET_MS;
    return b;
}

static int cmp_bucket(const char *da, int64_t ba, const char *db, int64_t bb)
{
    int c = strcmp(da, db);

    if (c != 0)
        return c;
    return ba < bb ? -1 : ba > bb ? 1 : 0;
}

static int cmp_key(const void *a, const void *b)
{
    const rollup_key *x = a, *y = b;

    return cmp_bucket(x->device_id, x->ts_ms, y->device_id, y->ts_ms);
}

size_t rollup_buckets(rollup_key *keys, size_t n, rollup_bucket *out)
{
    size_t len = 0;

    if (n == 0)
        return 0;
    qsort(keys, n, sizeof(*keys), cmp_key);
    for (size_t i = 0; i < n; i++) {
        int64_t b = rollup_bucket_ms(keys[i].ts_ms);

        if (len > 0 && strcmp(out[len - 1].device_id, keys[i].device_id) == 0 &&
            out[len - 1].bucket_ms == b)
            continue;
        out[len].device_id = keys[i].device_id;
        out[len].bucket_ms = b;
        len++;
    }
    return len;
}

int rollup_bucket_add(rollup_bucket *set, size_t *len, size_t cap, const char *device_id,
                      int64_t next_ts_ms)
{
    int64_t b = rollup_bucket_ms(next_ts_ms);
    size_t lo = 0, hi = *len;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_bucket(set[mid].device_id, set[mid].bucket_ms, device_id, b);

        if (c == 0)
            return 0;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (*len == cap)
        return -1;
    memmove(&set[lo + 1], &set[lo], (*len - lo) * sizeof(*set));
    set[lo].device_id = device_id;
    set[lo].bucket_ms = b;
    (*len)++;
    return 0;
}

/* CrateDB: runs one parameterised statement. For a query, *ms receives its single value (epoch
 * ms) and *found whether it was not NULL; ms may be NULL for a command. Returns 0 or -1
 * (logged). */
static int crate_exec(PGconn *conn, const char *what, const char *sql, int nparams,
                      const char *const *params, int64_t *ms, bool *found)
{
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    int rc = 0;

    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_failure(conn, what, res);
        rc = -1;
    } else if (ms != NULL) {
        *found = PQntuples(res) > 0 && !PQgetisnull(res, 0, 0);
        if (*found)
            *ms = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    }
    PQclear(res);
    return rc;
}

/* CrateDB: recomputes one bucket from the stored rows: reads from the row before the bucket
 * (its first row's interval starts there) to the bucket's end. */
static int crate_recompute(PGconn *conn, const rollup_bucket *b)
{
    char start[32], end[32], from[32];
    const char *params[4] = {b->device_id, start, end, from};
    int64_t prev_ms = 0;
    bool found = false;

    if (fp_time_format_ms(b->bucket_ms, start, sizeof(start)) < 0 ||
        fp_time_format_ms(b->bucket_ms + ROLLUP_BUCKET_MS, end, sizeof(end)) < 0)
        return -1;
    if (crate_exec(conn, "rollup previous row", dialect_cratedb_prev_row_sql, 2, params, &prev_ms,
                   &found) < 0)
        return -1;
    if (fp_time_format_ms(found ? prev_ms : b->bucket_ms, from, sizeof(from)) < 0)
        return -1;
    return crate_exec(conn, "rollup recompute", dialect_cratedb_recompute_sql, 4, params, NULL,
                      NULL);
}

int rollup_crate_apply(rollup_set *r, PGconn *conn, rollup_key *keys, size_t n)
{
    rollup_bucket *set = NULL, *own = NULL;
    size_t len, nown;
    int rc = -1;

    memset(&r->last, 0, sizeof(r->last));
    if (!r->enabled || n == 0)
        return 0;
    /* Rows written a moment ago become visible to queries only after a refresh. */
    if (crate_exec(conn, "rollup refresh", dialect_cratedb_refresh_sql, 0, NULL, NULL, NULL) < 0)
        return -1;
    set = malloc(2 * n * sizeof(*set));
    own = malloc(n * sizeof(*own));
    if (set == NULL || own == NULL) {
        fp_error("out of memory computing the rollup buckets of %zu rows", n);
        goto err;
    }
    nown = rollup_buckets(keys, n, own);
    memcpy(set, own, nown * sizeof(*own));
    len = nown;
    for (size_t i = 0; i < nown; i++) {
        char end[32];
        const char *params[2] = {own[i].device_id, end};
        int64_t next_ms = 0;
        bool found = false;

        if (fp_time_format_ms(own[i].bucket_ms + ROLLUP_BUCKET_MS, end, sizeof(end)) < 0)
            goto err;
        if (crate_exec(conn, "rollup next row", dialect_cratedb_next_row_sql, 2, params, &next_ms,
                       &found) < 0)
            goto err;
        if (found && rollup_bucket_add(set, &len, 2 * n, own[i].device_id, next_ms) < 0)
            goto err;
    }
    for (size_t i = 0; i < len; i++)
        if (crate_recompute(conn, &set[i]) < 0)
            goto err;
    r->last.rows_changed = len;
    r->last.recomputed = len;
    rc = 0;
err:
    free(set);
    free(own);
    return rc;
}
