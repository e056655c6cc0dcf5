#include "sink-svc/pg.h"

#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fp_buf.h"
#include "common/fp_log.h"
#include "common/fp_metrics.h"
#include "sink-svc/migrations.h"
#include "sink-svc/recent.h"
#include "sink-svc/rollup.h"
#include "sink-svc/rows.h"
#include "sink-svc/summary.h"

/* Key of the advisory lock that serialises migrations across replicas ("fleetpi" in ASCII). */
#define MIGRATION_LOCK_KEY "7378373865727469"

struct pg_conn {
    char *dsn;
    sql_dialect dialect;
    PGconn *conn;
    bool ok;
    bool outage_logged; /* the current outage's reason was logged (see infra_failure) */
    char sqlstate[6];   /* of the last failed result classified, "" when it had none */
    bool session_ready;
    bool binary_wanted; /* pg_set_copy_format */
    rows_format format; /* this session's: binary unless telemetry's types are not ours */
    fp_buf copy;        /* the batch's rows in COPY format `format` */
    size_t *row_at;     /* row i is copy[row_at[i] .. row_at[i+1]) */
    size_t row_cap;
    fp_buf scratch;
    fp_buf stmt;        /* the INSERT of write_range */
    rollup_set *rollup; /* telemetry_hourly, kept in each batch's transaction (rollup.h) */
    rollup_key *keys;   /* CrateDB: the written rows' keys */
    size_t keys_cap;
    recent_keys *recent;          /* keys committed lately, for the direct COPY */
    summary *summary;             /* the direct COPY's rows for the rollups (summary.h) */
    fp_buf key_copy;              /* the batch's ROLLUP_ROW_COLUMNS in COPY format `format` */
    int rollup_col[ROLLUP_NCOLS]; /* their indexes in rows_columns, ascending */
    /* The direct COPY in progress (write_direct, pg_stream_row): rows [0, direct_n) encoded
     * into copy, its first direct_sent bytes sent. */
    size_t direct_n, direct_sent;
    /* The rows array of the batch streamed or queued (pg_stream_row: &row[-i], as it moves while
     * the batch grows): pg_write and pg_write_start take the stream only for the same batch. */
    const pg_row *stream_rows;
    bool stream_on; /* pg_set_stream */
    int stream;     /* STREAM_*: where the batch being gathered stands */
    /* STREAM_QUEUED: the batch being gathered while another batch's tail holds the connection,
     * rows [0, queued_n) encoded into queued (row i at queued_at[i]), sent when it commits. */
    fp_buf queued;
    size_t *queued_at;
    size_t queued_cap, queued_n;
    /* The tail of the batch being committed without waiting (pg_write_start), TAIL_*. */
    int tail;
    PGresult *tail_res; /* the current step's result, kept until the step is complete */
    pg_row *tail_rows;
    size_t tail_n;
    const char *tail_group, *tail_topic;
    pg_offset *tail_offsets;
    size_t tail_noffsets, tail_offsets_cap;
    uint64_t tail_written;
    fp_counter *m_staged;
    fp_gauge *m_binary;
};

/* The direct COPY of the batch being gathered (pg_stream_row). */
enum {
    STREAM_NONE = 0, /* nothing open */
    STREAM_COPY,     /* a transaction whose COPY into telemetry holds rows [0, direct_n) */
    STREAM_BROKEN,   /* given up: a transaction may be open, its COPY is ended */
    STREAM_QUEUED    /* rows are encoded into pg->queued while a tail holds the connection */
};

/* The steps of a tail (pg_write_start): each sent and then awaited without blocking. */
enum {
    TAIL_NONE = 0,
    TAIL_COPY,    /* the direct COPY ended, its result awaited */
    TAIL_ROLLUP,  /* the rollups' call (rollup_send) */
    TAIL_OFFSETS, /* the offsets' upsert */
    TAIL_COMMIT
};

/* Keys remembered by default: at 10,000 rows/s about 13 s of retransmissions (~7 MiB). */
#define RECENT_KEYS_DEFAULT 131072

typedef enum failure { FAIL_NONE = 0, FAIL_DATA, FAIL_INFRA } failure;

/* Finds ROLLUP_ROW_COLUMNS in rows_columns: all of them, in ascending order (rows_copy_pick
 * picks all but metrics from each COPY row in one pass). */
static bool rollup_columns_found(int *col)
{
    if (rows_column_indexes(ROLLUP_ROW_COLUMNS, col, ROLLUP_NCOLS) != ROLLUP_NCOLS)
        return false;
    for (int k = 1; k < ROLLUP_NCOLS; k++)
        if (col[k] <= col[k - 1])
            return false;
    return true;
}

pg_conn *pg_new(const char *dsn, sql_dialect dialect)
{
    pg_conn *pg = calloc(1, sizeof(*pg));

    if (pg == NULL)
        return NULL;
    pg->dialect = dialect;
    pg->dsn = strdup(dsn);
    pg->rollup = rollup_new(true);
    pg->recent = recent_new(RECENT_KEYS_DEFAULT);
    pg->summary = summary_new();
    pg->stream_on = true;
    pg->binary_wanted = true;
    pg->m_staged = fp_metrics_counter(
        "fleetpipe_sink_staged_batches_total",
        "Batches whose direct COPY met a stored key the sink did not know of and that were "
        "written again through the staging table (INSERT ... ON CONFLICT DO NOTHING).",
        NULL);
    pg->m_binary = fp_metrics_gauge(
        "fleetpipe_sink_copy_binary",
        "1 while rows are COPYed in PostgreSQL's binary format, 0 in the text format "
        "(SINK_COPY_FORMAT=text, or a column of telemetry with another type than the sink's).",
        NULL);
    if (pg->dsn == NULL || pg->rollup == NULL || pg->recent == NULL || pg->summary == NULL ||
        !rollup_columns_found(pg->rollup_col)) {
        pg_free(pg);
        return NULL;
    }
    return pg;
}

int pg_set_rollups(pg_conn *pg, bool on)
{
    rollup_set *r = rollup_new(on);

    if (r == NULL)
        return -1;
    rollup_free(pg->rollup);
    pg->rollup = r;
    return 0;
}

int pg_set_recent_keys(pg_conn *pg, size_t capacity)
{
    recent_keys *k = recent_new(capacity);

    if (k == NULL)
        return -1;
    recent_free(pg->recent);
    pg->recent = k;
    return 0;
}

void pg_set_stream(pg_conn *pg, bool on)
{
    pg->stream_on = on;
}

void pg_set_copy_format(pg_conn *pg, bool binary)
{
    pg->binary_wanted = binary;
}

void pg_free(pg_conn *pg)
{
    if (pg == NULL)
        return;
    if (pg->conn != NULL)
        PQfinish(pg->conn);
    free(pg->dsn);
    fp_buf_free(&pg->copy);
    fp_buf_free(&pg->scratch);
    fp_buf_free(&pg->stmt);
    rollup_free(pg->rollup);
    recent_free(pg->recent);
    summary_free(pg->summary);
    fp_buf_free(&pg->key_copy);
    free(pg->keys);
    free(pg->row_at);
    fp_buf_free(&pg->queued);
    free(pg->queued_at);
    PQclear(pg->tail_res);
    free(pg->tail_offsets);
    free(pg);
}

bool pg_ok(const pg_conn *pg)
{
    return pg->ok;
}

/* The SQLSTATEs that say "this row's values cannot be stored" and nothing about the database:
 * a value that does not parse as its type (22P02: also JSON the jsonb column refuses), a number
 * out of its type's range (22003), a timestamp that does not parse or is out of range (22007,
 * 22008), text that is not valid in the server's encoding or holds U+0000 (22021, 22P05), a NULL
 * in a NOT NULL column (23502) and a CHECK constraint the row breaks (23514). Every other code,
 * of these classes too, is the infrastructure's: a column narrowed to varchar(n) (22001), a
 * unique index or foreign key an operator added (23505, 23503), a permission or a missing table
 * (42xxx) would otherwise divert the whole stream into the DLQ. */
static const char *const data_sqlstates[] = {
    "22P02", "22003", "22007", "22008", "22021", "22P05", "23502", "23514",
};

bool pg_sqlstate_is_data(const char *sqlstate)
{
    if (sqlstate == NULL)
        return false;
    for (size_t i = 0; i < sizeof(data_sqlstates) / sizeof(data_sqlstates[0]); i++)
        if (strcmp(sqlstate, data_sqlstates[i]) == 0)
            return true;
    return false;
}

/* Classifies a failed result: the data's fault (pg_sqlstate_is_data) or the
 * infrastructure's (everything else, including a lost connection). */
static failure classify(pg_conn *pg, const PGresult *res)
{
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    snprintf(pg->sqlstate, sizeof(pg->sqlstate), "%s", state != NULL ? state : "");
    if (PQstatus(pg->conn) != CONNECTION_OK || state == NULL)
        return FAIL_INFRA;
    return pg_sqlstate_is_data(state) ? FAIL_DATA : FAIL_INFRA;
}

/* The database's message for a failed result, one line. */
static const char *result_error(pg_conn *pg, const PGresult *res)
{
    const char *msg = res != NULL ? PQresultErrorMessage(res) : NULL;

    if (msg == NULL || msg[0] == '\0')
        msg = PQerrorMessage(pg->conn);
    return msg;
}

/* Closes the connection (the server rolls back what it had not committed); the next call
 * connects again. */
static void drop_connection(pg_conn *pg)
{
    if (pg->conn != NULL)
        PQfinish(pg->conn);
    pg->conn = NULL;
    pg->session_ready = false;
}

/* Records that the database works; the next failure starts a new outage and is logged. */
static void mark_up(pg_conn *pg)
{
    pg->ok = true;
    pg->outage_logged = false;
}

/* Marks the connection broken after an infrastructure failure. Why is logged once per outage:
 * at the first failure after the database worked, and at the first failure of all (a sink that
 * never connects says why, instead of only answering 503 on /readyz). */
static int infra_failure(pg_conn *pg, const char *what, const PGresult *res)
{
    const char *msg = result_error(pg, res);
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : pg->sqlstate;
    char line[512];
    size_t n;

    snprintf(line, sizeof(line), "%s", msg);
    n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == ' '))
        line[--n] = '\0';
    if (!pg->outage_logged)
        fp_log_kv(FP_LOG_WARN, "database unavailable; will retry", "operation", what, "error", line,
                  "sqlstate", state != NULL && state[0] != '\0' ? state : NULL, FP_KV_END);
    pg->outage_logged = true;
    /* Binary data the table refused: a column's type changed under the session. The next
     * connection checks the types again (choose_format) and falls back to text. */
    if (pg->format == ROWS_COPY_BINARY && state != NULL &&
        (strcmp(state, "22P03") == 0 || strcmp(state, "08P01") == 0))
        pg->session_ready = false;
    pg->sqlstate[0] = '\0'; /* `state` may point here */
    pg->ok = false;
    if (PQstatus(pg->conn) != CONNECTION_OK)
        drop_connection(pg);
    return PG_RETRY;
}

/* Runs a command that returns no rows. Returns FAIL_NONE or the failure's class; on failure the
 * result's message is copied into err when err is not NULL. */
static failure exec_cmd(pg_conn *pg, const char *sql, char *err, size_t err_size,
                        uint64_t *affected)
{
    PGresult *res = PQexec(pg->conn, sql);
    failure f = FAIL_NONE;

    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
        f = classify(pg, res);
        if (err != NULL)
            snprintf(err, err_size, "%s", result_error(pg, res));
    } else if (affected != NULL) {
        *affected = strtoull(PQcmdTuples(res), NULL, 10);
    }
    PQclear(res);
    return f;
}

/* Applies every migration not yet recorded, each in its own transaction, under the lock. */
static int migrate(pg_conn *pg)
{
    char err[512];
    int rc = PG_OK;

    if (exec_cmd(pg, "SELECT pg_advisory_lock(" MIGRATION_LOCK_KEY ")", err, sizeof(err), NULL) !=
        FAIL_NONE)
        return infra_failure(pg, "migration lock", NULL);
    if (exec_cmd(pg,
                 "CREATE TABLE IF NOT EXISTS fleetpipe_schema_migrations ("
                 "name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
                 err, sizeof(err), NULL) != FAIL_NONE) {
        rc = infra_failure(pg, "migration table", NULL);
        goto out;
    }
    for (int i = 0; i < migrations_count; i++) {
        const char *params[1] = {migrations_table[i].name};
        PGresult *res =
            PQexecParams(pg->conn, "SELECT 1 FROM fleetpipe_schema_migrations WHERE name = $1", 1,
                         NULL, params, NULL, NULL, 0);
        bool applied = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0;

        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            rc = infra_failure(pg, "migration check", res);
            PQclear(res);
            goto out;
        }
        PQclear(res);
        if (applied)
            continue;
        fp_info("applying migration %s", migrations_table[i].name);
        if (exec_cmd(pg, "BEGIN", err, sizeof(err), NULL) != FAIL_NONE ||
            exec_cmd(pg, migrations_table[i].sql, err, sizeof(err), NULL) != FAIL_NONE) {
            fp_log_kv(FP_LOG_ERROR, "migration failed", "migration", migrations_table[i].name,
                      "error", err, FP_KV_END);
            exec_cmd(pg, "ROLLBACK", NULL, 0, NULL);
            rc = infra_failure(pg, "migration", NULL);
            goto out;
        }
        res = PQexecParams(pg->conn, "INSERT INTO fleetpipe_schema_migrations (name) VALUES ($1)",
                           1, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK ||
            exec_cmd(pg, "COMMIT", err, sizeof(err), NULL) != FAIL_NONE) {
            rc = infra_failure(pg, "migration record", res);
            PQclear(res);
            goto out;
        }
        PQclear(res);
    }
out:
    if (pg->conn != NULL)
        exec_cmd(pg, "SELECT pg_advisory_unlock(" MIGRATION_LOCK_KEY ")", NULL, 0, NULL);
    return rc;
}

/* Picks the session's COPY format: binary when wanted (pg_set_copy_format) and every column of
 * telemetry has the type the binary rows carry (rows_column_type); text otherwise, so that a
 * column an operator gave another type (which text input converts) is still written. Returns 0,
 * or -1 when the database could not be asked (logged). */
static int choose_format(pg_conn *pg)
{
    bool seen[ROWS_NCOLS] = {false};
    int found = 0;
    PGresult *res;

    pg->format = ROWS_COPY_TEXT;
    fp_gauge_set(pg->m_binary, 0);
    if (!pg->binary_wanted)
        return 0;
    res = PQexec(pg->conn, "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                           "WHERE attrelid = 'telemetry'::regclass AND attnum > 0 AND NOT "
                           "attisdropped");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        infra_failure(pg, "column types", res);
        PQclear(res);
        return -1;
    }
    for (int t = 0; t < PQntuples(res); t++) {
        const char *name = PQgetvalue(res, t, 0), *type = PQgetvalue(res, t, 1);
        int i;

        if (strchr(name, ',') != NULL || rows_column_indexes(name, &i, 1) != 1 || seen[i])
            continue; /* a column the sink does not write */
        if (strcmp(type, rows_column_type(i)) != 0) {
            fp_log_kv(FP_LOG_WARN, "a column of telemetry has another type: writing COPY text",
                      "column", name, "type", type, "expected", rows_column_type(i), FP_KV_END);
            PQclear(res);
            return 0;
        }
        seen[i] = true;
        found++;
    }
    PQclear(res);
    if (found != ROWS_NCOLS) {
        fp_log_kv(FP_LOG_WARN,
                  "a column the sink writes is missing from telemetry: writing COPY text",
                  FP_KV_END);
        return 0;
    }
    pg->format = ROWS_COPY_BINARY;
    fp_gauge_set(pg->m_binary, 1);
    return 0;
}

/* Server notices ("relation already exists, skipping") become debug log lines, not raw text on
 * stderr. */
static void on_notice(void *arg, const char *message)
{
    (void)arg;
    fp_log_kv(FP_LOG_DEBUG, "database notice", "notice", message, FP_KV_END);
}

int pg_ensure(pg_conn *pg)
{
    char err[512];

    if (pg->tail != TAIL_NONE) {
        fp_error("the database connection was used while a batch's commit was outstanding");
        return PG_RETRY;
    }
    pg_stream_abort(pg);
    if (pg->conn != NULL && PQstatus(pg->conn) == CONNECTION_OK && pg->session_ready)
        return PG_OK;
    drop_connection(pg);
    pg->conn = PQconnectdb(pg->dsn);
    if (pg->conn == NULL || PQstatus(pg->conn) != CONNECTION_OK)
        return infra_failure(pg, "connect", NULL);
    PQsetNoticeProcessor(pg->conn, on_notice, NULL);
    if (pg->dialect == DIALECT_CRATEDB) {
        /* CrateDB: idempotent DDL, no staging table (no COPY), no advisory locks. */
        for (int i = 0; dialect_cratedb_schema[i] != NULL; i++)
            if (exec_cmd(pg, dialect_cratedb_schema[i], err, sizeof(err), NULL) != FAIL_NONE)
                return infra_failure(pg, "schema", NULL);
        pg->session_ready = true;
        mark_up(pg);
        return PG_OK;
    }
    if (migrate(pg) != PG_OK)
        return PG_RETRY;
    /* The staging table lives as long as the session and empties itself at every commit. */
    if (exec_cmd(pg,
                 "CREATE TEMP TABLE IF NOT EXISTS telemetry_stage "
                 "(LIKE telemetry INCLUDING DEFAULTS) ON COMMIT DELETE ROWS",
                 err, sizeof(err), NULL) != FAIL_NONE)
        return infra_failure(pg, "staging table", NULL);
    if (rollup_session(pg->rollup, pg->conn) < 0)
        return infra_failure(pg, "rollups", NULL);
    if (choose_format(pg) < 0)
        return PG_RETRY;
    pg->session_ready = true;
    if (!pg->ok)
        fp_info("database connected");
    mark_up(pg);
    return PG_OK;
}

int pg_ping(pg_conn *pg)
{
    if (pg_ensure(pg) != PG_OK)
        return PG_RETRY;
    if (exec_cmd(pg, "SELECT 1", NULL, 0, NULL) != FAIL_NONE)
        return infra_failure(pg, "ping", NULL);
    return PG_OK;
}

int pg_load_offsets(pg_conn *pg, const char *group, rd_kafka_topic_partition_list_t *parts)
{
    PGresult *res;

    if (pg_ensure(pg) != PG_OK)
        return PG_RETRY;
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        char partition[16];
        const char *params[3] = {group, tp->topic, partition};

        snprintf(partition, sizeof(partition), "%d", (int)tp->partition);
        res = PQexecParams(pg->conn,
                           "SELECT next_offset FROM fleetpipe_offsets WHERE consumer_group = $1 "
                           "AND topic = $2 AND partition = $3",
                           3, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            int rc = infra_failure(pg, "load offsets", res);
            PQclear(res);
            return rc;
        }
        if (PQntuples(res) > 0)
            tp->offset = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
    }
    return PG_OK;
}

/* Whether the batch of n rows at `rows` is the one streamed whole into the open direct COPY
 * (pg_stream_row). */
static bool streamed_whole(const pg_conn *pg, const pg_row *rows, size_t n)
{
    return pg->stream == STREAM_COPY && pg->direct_n == n && n > 0 && pg->stream_rows == rows;
}

/* Makes room in *row_at (*cap entries) for the offsets of n rows and the end. Returns 0 or
 * -1. */
static int reserve_offsets(size_t **row_at, size_t *row_cap, size_t n)
{
    size_t *at;
    size_t cap = *row_cap > 0 ? *row_cap : 256;

    if (*row_cap >= n + 1)
        return 0;
    while (cap < n + 1)
        cap *= 2;
    at = realloc(*row_at, cap * sizeof(*at));
    if (at == NULL)
        return -1;
    *row_at = at;
    *row_cap = cap;
    return 0;
}

/* Makes room in pg->row_at for the offsets of n rows and the end. Returns 0 or -1. */
static int reserve_rows(pg_conn *pg, size_t n)
{
    return reserve_offsets(&pg->row_at, &pg->row_cap, n);
}

/* Whether row i is written: neither skipped (dead-lettered) nor known to be stored. */
static bool row_written(const pg_row *row)
{
    return !row->skip && !row->known;
}

/* Encodes the rows to write into pg->copy, remembering where each starts. */
static int encode_rows(pg_conn *pg, const pg_row *rows, size_t n)
{
    if (reserve_rows(pg, n) < 0)
        return -1;
    fp_buf_clear(&pg->copy);
    for (size_t i = 0; i < n; i++) {
        pg->row_at[i] = pg->copy.len;
        if (row_written(&rows[i]) &&
            rows_append_copy(&pg->copy, pg->format, rows[i].rec, &pg->scratch) < 0)
            return -1;
    }
    pg->row_at[n] = pg->copy.len;
    return 0;
}

/* One CopyData message at most: the server refuses messages over 1 GB, and a length must fit
 * an int; smaller pieces also keep the send buffer small. */
#define COPY_CHUNK (1 << 20)

/* Sends COPY data in pieces of COPY_CHUNK bytes. Returns 0 or -1. */
static int put_copy_data(PGconn *conn, const char *data, size_t len)
{
    while (len > 0) {
        size_t n = len < COPY_CHUNK ? len : COPY_CHUNK;

        if (PQputCopyData(conn, data, (int)n) != 1)
            return -1;
        data += n;
        len -= n;
    }
    return 0;
}

static failure copy_finish(pg_conn *pg, const char *abort_reason, char *err, size_t err_size);

/* Starts a COPY into `table` (columns as listed), in the session's format. Returns FAIL_NONE or the
 * failure's class with the message in err. */
static failure copy_start(pg_conn *pg, const char *table, const char *columns, char *err,
                          size_t err_size)
{
    char sql[2048];
    PGresult *res;
    failure f = FAIL_NONE;

    snprintf(sql, sizeof(sql), "COPY %s (%s) FROM STDIN%s", table, columns,
             pg->format == ROWS_COPY_BINARY ? " (FORMAT binary)" : "");
    res = PQexec(pg->conn, sql);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        f = classify(pg, res);
        snprintf(err, err_size, "%s", result_error(pg, res));
    }
    PQclear(res);
    if (f == FAIL_NONE) {
        const char *header;
        size_t len = rows_copy_header(pg->format, &header);

        if (put_copy_data(pg->conn, header, len) < 0)
            f = copy_finish(pg, "could not send the COPY header", err, err_size);
    }
    return f;
}

/* Ends the COPY started (`abort_reason` NULL) or abandons it, and reads its result. Returns
 * FAIL_NONE or the failure's class with the message in err. */
/* Sends the COPY's trailer and its end (or, with *abort_reason, abandons it; a trailer that
 * cannot be sent abandons it too, setting *abort_reason). Returns 0, or -1 with the message in
 * err when the end could not be sent. */
static int copy_end(pg_conn *pg, const char **abort_reason, char *err, size_t err_size)
{
    const char *trailer;
    size_t trailer_len = rows_copy_trailer(pg->format, &trailer);

    if (*abort_reason == NULL && put_copy_data(pg->conn, trailer, trailer_len) < 0)
        *abort_reason = "could not send the COPY trailer";
    if (PQputCopyEnd(pg->conn, *abort_reason) != 1) {
        snprintf(err, err_size, "%s", PQerrorMessage(pg->conn));
        return -1;
    }
    return 0;
}

static failure copy_finish(pg_conn *pg, const char *abort_reason, char *err, size_t err_size)
{
    PGresult *res;
    failure f = FAIL_NONE;

    if (copy_end(pg, &abort_reason, err, err_size) < 0)
        return FAIL_INFRA;
    while ((res = PQgetResult(pg->conn)) != NULL) {
        if (f == FAIL_NONE && PQresultStatus(res) != PGRES_COMMAND_OK) {
            f = classify(pg, res);
            snprintf(err, err_size, "%s", result_error(pg, res));
        }
        PQclear(res);
    }
    if (abort_reason != NULL) {
        snprintf(err, err_size, "%s", abort_reason);
        return FAIL_INFRA;
    }
    return f;
}

/* COPYs `len` bytes of COPY rows (the session's format) into `table` (columns as listed). Returns
 * FAIL_NONE or the failure's class with the message in err. */
static failure copy_in(pg_conn *pg, const char *table, const char *columns, const char *data,
                       size_t len, char *err, size_t err_size)
{
    failure f = copy_start(pg, table, columns, err, err_size);

    if (f != FAIL_NONE)
        return f;
    if (put_copy_data(pg->conn, data, len) < 0) {
        snprintf(err, err_size, "%s", PQerrorMessage(pg->conn));
        return FAIL_INFRA;
    }
    return copy_finish(pg, NULL, err, err_size);
}

/* Notes which rows need not be written: their key is one the sink committed lately, or an
 * earlier row of the batch has it (the first one wins, as with ON CONFLICT DO NOTHING). */
static void mark_known(pg_conn *pg, pg_row *rows, size_t n)
{
    recent_begin(pg->recent);
    for (size_t i = 0; i < n; i++)
        rows[i].known = !rows[i].skip && recent_check(pg->recent, rows[i].rec->device_id,
                                                      rows[i].rec->ts_ms) != RECENT_NEW;
}

/* Appends row r's row of telemetry_rollup_rows: the fields of its telemetry COPY row (`row`,
 * `len` bytes) that the session table shares, then the metrics the rollup step reads. Returns 0
 * or -1 on out of memory. */
static int append_rollup_row(pg_conn *pg, const fp_record *r, const char *row, size_t len)
{
    rows_format f = pg->format;
    size_t mark = pg->key_copy.len;

    if (rows_copy_row_start(&pg->key_copy, f, ROLLUP_NCOLS) < 0 ||
        rows_copy_pick(&pg->key_copy, f, row, len, pg->rollup_col, ROLLUP_NCOLS - 1) < 0 ||
        rows_append_copy_metrics(&pg->key_copy, f, r, rollup_metrics, ROLLUP_NMETRICS,
                                 &pg->scratch) < 0 ||
        rows_copy_row_end(&pg->key_copy, f) < 0) {
        pg->key_copy.len = mark;
        return -1;
    }
    return 0;
}

/* The rows of the batch being written, for list_late_rows. */
typedef struct direct_ctx {
    pg_conn *pg;
    const pg_row *rows;
} direct_ctx;

/* rollup_rows_fn of the direct path: COPYs the rollup columns of the rows at indexes[0..n) into
 * the session's telemetry_rollup_rows, the same fields of the same lines and the metrics the
 * rollups read. */
static int list_late_rows(void *arg, const size_t *indexes, size_t n)
{
    direct_ctx *c = arg;
    pg_conn *pg = c->pg;
    char err[512];

    fp_buf_clear(&pg->key_copy);
    for (size_t k = 0; k < n; k++) {
        size_t i = indexes[k];

        if (append_rollup_row(pg, c->rows[i].rec, pg->copy.data + pg->row_at[i],
                              pg->row_at[i + 1] - pg->row_at[i]) < 0) {
            fp_error("out of memory listing %zu rows for the rollups", n);
            return -1;
        }
    }
    if (copy_in(pg, "telemetry_rollup_rows", ROLLUP_ROW_COLUMNS, pg->key_copy.data,
                pg->key_copy.len, err, sizeof(err)) != FAIL_NONE) {
        fp_log_kv(FP_LOG_WARN, "rollup step failed", "operation", "list late rows", "error", err,
                  FP_KV_END);
        return -1;
    }
    return 0;
}

/* Bytes of COPY rows encoded before they are sent: the server parses and inserts one piece
 * while the sink encodes the next. */
#define COPY_STREAM (64 * 1024)

/* Starts the direct COPY into telemetry (inside the transaction). Returns FAIL_NONE or the
 * failure's class with the message in err. */
static failure direct_start(pg_conn *pg, char *err, size_t err_size)
{
    fp_buf_clear(&pg->copy);
    pg->direct_n = 0;
    pg->direct_sent = 0;
    return copy_start(pg, "telemetry", rows_columns, err, err_size);
}

/* Adds the batch's next row to the direct COPY (its text when it is written) and sends the
 * text encoded so far once it reaches COPY_STREAM bytes: the server parses and inserts one
 * piece while the sink encodes the next. Returns FAIL_NONE, or FAIL_INFRA with the COPY ended
 * and the message in err. */
static failure direct_add(pg_conn *pg, const pg_row *row, const fp_record *rec, char *err,
                          size_t err_size)
{
    size_t i = pg->direct_n;

    if (reserve_rows(pg, i + 1) < 0)
        return copy_finish(pg, "out of memory", err, err_size);
    pg->row_at[i] = pg->copy.len;
    if (row_written(row) && rows_append_copy(&pg->copy, pg->format, rec, &pg->scratch) < 0)
        return copy_finish(pg, "out of memory", err, err_size);
    pg->direct_n = i + 1;
    if (pg->copy.len - pg->direct_sent >= COPY_STREAM) {
        if (put_copy_data(pg->conn, pg->copy.data + pg->direct_sent,
                          pg->copy.len - pg->direct_sent) < 0) {
            char why[256];

            /* Ended too, so that no later command meets a COPY libpq still thinks open. */
            snprintf(why, sizeof(why), "%s", PQerrorMessage(pg->conn));
            return copy_finish(pg, why, err, err_size);
        }
        pg->direct_sent = pg->copy.len;
    }
    return FAIL_NONE;
}

/* Sends what the direct COPY of rows [0, n) has not sent yet and builds the batch's summary for
 * the rollups. Returns FAIL_NONE or FAIL_INFRA with the message in err. */
static failure direct_send_rest(pg_conn *pg, const pg_row *rows, size_t n, char *err,
                                size_t err_size)
{
    pg->row_at[n] = pg->copy.len;
    if (put_copy_data(pg->conn, pg->copy.data + pg->direct_sent, pg->copy.len - pg->direct_sent) <
        0) {
        snprintf(err, err_size, "%s", PQerrorMessage(pg->conn));
        return FAIL_INFRA;
    }
    pg->direct_sent = pg->copy.len;
    /* The rollups' summary is built from the records now: they do not move any more. */
    summary_clear(pg->summary);
    if (rollup_enabled(pg->rollup))
        for (size_t i = 0; i < n; i++)
            if (row_written(&rows[i]) && summary_add(pg->summary, rows[i].rec, i) < 0)
                return copy_finish(pg, "out of memory", err, err_size);
    return FAIL_NONE;
}

/* The direct path: one COPY of the batch's rows straight into telemetry (every row written is
 * inserted: a stored key fails the COPY), and, with rollups, the batch's summary applied
 * (rollup_apply_summary; *rolled_up then says so). `streamed`: the COPY already holds every row
 * (pg_stream_row); otherwise it is started here and the rows encoded while they are sent.
 * Returns FAIL_NONE (adding the rows to *inserted; pg->copy then holds every row, as
 * encode_rows leaves it) or the failure's class with the message in err; a stored key is
 * FAIL_INFRA with SQLSTATE 23505 in pg->sqlstate (classify: a unique violation is never the
 * row's fault). */
static failure write_direct(pg_conn *pg, const pg_row *rows, size_t n, bool streamed,
                            uint64_t *inserted, bool *rolled_up, char *err, size_t err_size)
{
    direct_ctx ctx = {pg, rows};
    uint64_t written = 0;
    failure f;

    for (size_t i = 0; i < n; i++)
        written += row_written(&rows[i]);
    if (!streamed) {
        if (written == 0)
            return encode_rows(pg, rows, n) < 0 ? FAIL_INFRA : FAIL_NONE;
        f = direct_start(pg, err, err_size);
        for (size_t i = 0; i < n && f == FAIL_NONE; i++)
            f = direct_add(pg, &rows[i], rows[i].rec, err, err_size);
        if (f != FAIL_NONE)
            return f;
    }
    f = direct_send_rest(pg, rows, n, err, err_size);
    if (f == FAIL_NONE)
        f = copy_finish(pg, NULL, err, err_size);
    if (f == FAIL_NONE &&
        rollup_apply_summary(pg->rollup, pg->conn, pg->summary, list_late_rows, &ctx) < 0) {
        snprintf(err, err_size, "rollup step failed");
        f = FAIL_INFRA;
    }
    if (f == FAIL_NONE) {
        *inserted += written;
        *rolled_up = true;
    }
    return f;
}

/* Adds row i of the batch being gathered to pg->queued (STREAM_QUEUED), checking its key as
 * pg_stream_row does; anything wrong ends the queue (the batch is then written from the
 * start). */
static void queue_row(pg_conn *pg, pg_row *row, const fp_record *rec, size_t i)
{
    if (i != pg->queued_n || reserve_offsets(&pg->queued_at, &pg->queued_cap, i + 1) < 0) {
        pg->stream = STREAM_NONE;
        return;
    }
    row->known = !row->skip && recent_check(pg->recent, rec->device_id, rec->ts_ms) != RECENT_NEW;
    pg->queued_at[i] = pg->queued.len;
    if (row_written(row) && rows_append_copy(&pg->queued, pg->format, rec, &pg->scratch) < 0) {
        pg->stream = STREAM_NONE;
        return;
    }
    pg->queued_n = i + 1;
}

/* The tail committed: the queued batch becomes the direct COPY of its own transaction, and what
 * it gathered so far is sent. */
static void send_queued(pg_conn *pg)
{
    char err[512];
    fp_buf t = pg->copy;
    size_t *at = pg->row_at, cap = pg->row_cap;

    if (pg->stream != STREAM_QUEUED)
        return;
    pg->copy = pg->queued;
    pg->row_at = pg->queued_at;
    pg->row_cap = pg->queued_cap;
    pg->queued = t;
    pg->queued_at = at;
    pg->queued_cap = cap;
    pg->direct_n = pg->queued_n;
    pg->direct_sent = 0;
    pg->stream = STREAM_BROKEN;
    if (exec_cmd(pg, "BEGIN", err, sizeof(err), NULL) != FAIL_NONE ||
        copy_start(pg, "telemetry", rows_columns, err, sizeof(err)) != FAIL_NONE)
        return;
    if (put_copy_data(pg->conn, pg->copy.data, pg->copy.len) < 0) {
        copy_finish(pg, "could not send the queued rows", err, sizeof(err));
        return;
    }
    pg->direct_sent = pg->copy.len;
    pg->stream = STREAM_COPY;
}

void pg_stream_abort(pg_conn *pg)
{
    char err[512];
    int state = pg->stream;

    pg->stream = STREAM_NONE;
    /* A queued batch has nothing on the connection (which may be a tail's). */
    if (state == STREAM_NONE || state == STREAM_QUEUED || pg->conn == NULL ||
        PQstatus(pg->conn) != CONNECTION_OK)
        return;
    if (state == STREAM_COPY)
        copy_finish(pg, "batch abandoned", err, sizeof(err));
    if (exec_cmd(pg, "ROLLBACK", err, sizeof(err), NULL) != FAIL_NONE)
        infra_failure(pg, "rollback", NULL);
}

void pg_stream_row(pg_conn *pg, pg_row *row, const fp_record *rec, size_t i)
{
    char err[512];

    if (pg == NULL || pg->dialect != DIALECT_POSTGRES || !pg->stream_on)
        return;
    pg->stream_rows = row - i;
    if (i == 0 && pg->tail != TAIL_NONE) {
        /* The connection is the tail's: the rows wait in pg->queued until it commits. */
        pg_stream_abort(pg);
        recent_begin(pg->recent);
        fp_buf_clear(&pg->queued);
        pg->queued_n = 0;
        pg->stream = STREAM_QUEUED;
    }
    if (pg->stream == STREAM_QUEUED) {
        queue_row(pg, row, rec, i);
        return;
    }
    if (i == 0) {
        pg_stream_abort(pg);
        if (!pg->ok || !pg->session_ready || pg->conn == NULL ||
            PQstatus(pg->conn) != CONNECTION_OK)
            return;
        recent_begin(pg->recent);
        pg->stream = STREAM_BROKEN;
        if (exec_cmd(pg, "BEGIN", err, sizeof(err), NULL) != FAIL_NONE ||
            direct_start(pg, err, sizeof(err)) != FAIL_NONE)
            return;
        pg->stream = STREAM_COPY;
    }
    if (pg->stream != STREAM_COPY)
        return;
    if (i != pg->direct_n) {
        copy_finish(pg, "rows out of order", err, sizeof(err));
        pg->stream = STREAM_BROKEN;
        return;
    }
    row->known = !row->skip && recent_check(pg->recent, rec->device_id, rec->ts_ms) != RECENT_NEW;
    if (direct_add(pg, row, rec, err, sizeof(err)) != FAIL_NONE)
        pg->stream = STREAM_BROKEN;
}

/* COPYs rows [lo, hi) into the staging table and moves them into telemetry. Returns FAIL_NONE
 * (adding the rows inserted to *inserted) or the failure's class with the message in err. */
static failure write_range(pg_conn *pg, size_t lo, size_t hi, uint64_t *inserted, char *err,
                           size_t err_size)
{
    static const char insert_sql[] = "INSERT INTO telemetry (%s) SELECT %s FROM telemetry_stage "
                                     "ON CONFLICT (device_id, ts) DO NOTHING";
    char sql[2048];
    size_t len = pg->row_at[hi] - pg->row_at[lo];
    uint64_t n = 0;
    failure f;

    if (len == 0)
        return FAIL_NONE;
    f = copy_in(pg, "telemetry_stage", rows_columns, pg->copy.data + pg->row_at[lo], len, err,
                err_size);
    if (f != FAIL_NONE)
        return f;
    snprintf(sql, sizeof(sql), insert_sql, rows_columns, rows_columns);
    /* The rollups learn which rows this INSERT really inserted. */
    fp_buf_clear(&pg->stmt);
    if (rollup_capture_sql(pg->rollup, &pg->stmt, sql) < 0) {
        snprintf(err, err_size, "out of memory");
        return FAIL_INFRA;
    }
    f = exec_cmd(pg, fp_buf_cstr(&pg->stmt), err, err_size, &n);
    if (f == FAIL_NONE)
        f = exec_cmd(pg, "TRUNCATE telemetry_stage", err, err_size, NULL);
    if (f == FAIL_NONE)
        *inserted += n;
    return f;
}

/* Marks a row the database refused, with its message (one line, at most PG_ROW_ERROR_MAX
 * bytes; NULL when out of memory). */
static void reject_row(pg_row *row, const char *err)
{
    size_t n = strnlen(err, PG_ROW_ERROR_MAX);

    while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
        n--;
    free(row->error);
    row->error = strndup(err, n);
    row->rejected = true;
}

/* Clears what an earlier attempt of the row's batch found. */
static void unreject_row(pg_row *row)
{
    free(row->error);
    row->error = NULL;
    row->rejected = false;
}

/* Writes rows [lo, hi) inside a savepoint; when the database rejects them, splits the range
 * until each rejected row stands alone and marks it. Returns FAIL_NONE or FAIL_INFRA. */
static failure isolate(pg_conn *pg, pg_row *rows, size_t lo, size_t hi, uint64_t *inserted)
{
    char err[512];
    uint64_t got = 0;
    failure f;

    if (pg->row_at[hi] == pg->row_at[lo])
        return FAIL_NONE;
    if (exec_cmd(pg, "SAVEPOINT fp_rows", err, sizeof(err), NULL) != FAIL_NONE)
        return FAIL_INFRA;
    f = write_range(pg, lo, hi, &got, err, sizeof(err));
    if (f == FAIL_NONE) {
        *inserted += got;
        return exec_cmd(pg, "RELEASE SAVEPOINT fp_rows", NULL, 0, NULL) == FAIL_NONE ? FAIL_NONE
                                                                                     : FAIL_INFRA;
    }
    if (f == FAIL_INFRA ||
        exec_cmd(pg, "ROLLBACK TO SAVEPOINT fp_rows", NULL, 0, NULL) != FAIL_NONE)
        return FAIL_INFRA;
    exec_cmd(pg, "RELEASE SAVEPOINT fp_rows", NULL, 0, NULL);
    if (hi - lo == 1) {
        reject_row(&rows[lo], err);
        return FAIL_NONE;
    }
    f = isolate(pg, rows, lo, lo + (hi - lo) / 2, inserted);
    if (f == FAIL_NONE)
        f = isolate(pg, rows, lo + (hi - lo) / 2, hi, inserted);
    return f;
}

/* The upsert of a batch's offsets; they only move forward, so a late writer cannot rewind
 * them. */
static const char offsets_sql[] =
    "INSERT INTO fleetpipe_offsets (consumer_group, topic, partition, next_offset) SELECT $1, $2, "
    "p, o FROM unnest($3::int[], $4::bigint[]) AS t(p, o) ON CONFLICT (consumer_group, topic, "
    "partition) DO UPDATE SET next_offset = GREATEST(fleetpipe_offsets.next_offset, "
    "EXCLUDED.next_offset), updated_at = now()";

/* Sends the upsert of the batch's offsets: without waiting (`wait` false: returns NULL when it
 * was sent, a failed result when not), or waiting for its result. */
static PGresult *offsets_query(pg_conn *pg, const char *group, const char *topic,
                               const pg_offset *offsets, size_t n, bool wait)
{
    fp_buf parts = {0}, offs = {0};
    const char *params[4];
    PGresult *res = NULL;

    fp_buf_putc(&parts, '{');
    fp_buf_putc(&offs, '{');
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            fp_buf_putc(&parts, ',');
            fp_buf_putc(&offs, ',');
        }
        fp_buf_put_i64(&parts, offsets[i].partition);
        fp_buf_put_i64(&offs, offsets[i].next_offset);
    }
    fp_buf_putc(&parts, '}');
    fp_buf_putc(&offs, '}');
    params[0] = group;
    params[1] = topic;
    params[2] = fp_buf_cstr(&parts);
    params[3] = fp_buf_cstr(&offs);
    if (wait)
        res = PQexecParams(pg->conn, offsets_sql, 4, NULL, params, NULL, NULL, 0);
    else if (PQsendQueryParams(pg->conn, offsets_sql, 4, NULL, params, NULL, NULL, 0) != 1)
        res = PQmakeEmptyPGresult(pg->conn, PGRES_FATAL_ERROR);
    fp_buf_free(&parts);
    fp_buf_free(&offs);
    return res;
}

/* Upserts the batch's offsets (offsets_sql). */
static failure store_offsets(pg_conn *pg, const char *group, const char *topic,
                             const pg_offset *offsets, size_t n, char *err, size_t err_size)
{
    PGresult *res = offsets_query(pg, group, topic, offsets, n, true);
    failure f = FAIL_NONE;

    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        f = FAIL_INFRA;
        snprintf(err, err_size, "%s", result_error(pg, res));
    }
    PQclear(res);
    return f;
}

/* The parameters of one row for a multi-row INSERT: its texts live in one buffer, by offset
 * (the buffer moves as it grows), NULL marked by SIZE_MAX. */
typedef struct param_rows {
    fp_buf text;
    size_t *off, *len;
    size_t n, cap;
} param_rows;

static int collect_param(void *ctx, int i, const char *text, size_t len)
{
    param_rows *p = ctx;

    (void)i;
    if (p->n == p->cap) {
        size_t cap = p->cap != 0 ? p->cap * 2 : 64;
        size_t *off = realloc(p->off, cap * sizeof(*off));
        size_t *ln;

        if (off == NULL)
            return -1;
        p->off = off;
        ln = realloc(p->len, cap * sizeof(*ln));
        if (ln == NULL)
            return -1;
        p->len = ln;
        p->cap = cap;
    }
    p->off[p->n] = text == NULL ? SIZE_MAX : p->text.len;
    p->len[p->n] = len;
    p->n++;
    /* Each value NUL-terminated: libpq takes text parameters as C strings. */
    if (text != NULL && (fp_buf_append(&p->text, text, len) < 0 || fp_buf_putc(&p->text, '\0') < 0))
        return -1;
    return 0;
}

/* CrateDB: INSERTs rows [lo, hi) (skipped ones left out) in one statement. */
static failure crate_insert(pg_conn *pg, pg_row *rows, size_t lo, size_t hi, uint64_t *inserted,
                            char *err, size_t err_size)
{
    param_rows p = {{0}, NULL, NULL, 0, 0};
    const char **values = NULL;
    fp_buf sql = {0};
    size_t nrows = 0;
    failure f = FAIL_NONE;
    PGresult *res;

    for (size_t i = lo; i < hi; i++) {
        if (rows[i].skip)
            continue;
        if (rows_fields(rows[i].rec, &pg->scratch, collect_param, &p) != 0) {
            snprintf(err, err_size, "out of memory");
            f = FAIL_INFRA;
            goto out;
        }
        nrows++;
    }
    if (nrows == 0)
        goto out;
    values = malloc(p.n * sizeof(*values));
    if (values == NULL || dialect_cratedb_insert_sql(&sql, nrows) < 0) {
        snprintf(err, err_size, "out of memory");
        f = FAIL_INFRA;
        goto out;
    }
    for (size_t i = 0; i < p.n; i++)
        values[i] = p.off[i] == SIZE_MAX ? NULL : p.text.data + p.off[i];
    res = PQexecParams(pg->conn, fp_buf_cstr(&sql), (int)p.n, NULL, values, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        f = classify(pg, res);
        snprintf(err, err_size, "%s", result_error(pg, res));
    } else {
        *inserted += strtoull(PQcmdTuples(res), NULL, 10);
    }
    PQclear(res);
out:
    free(values);
    free(p.off);
    free(p.len);
    fp_buf_free(&p.text);
    fp_buf_free(&sql);
    return f;
}

/* CrateDB: writes rows [lo, hi); when a value is refused, halves the range until each refused
 * row stands alone and marks it. Rows are idempotent (primary key), so writing a half again is
 * harmless. Returns FAIL_NONE or FAIL_INFRA. */
static failure crate_isolate(pg_conn *pg, pg_row *rows, size_t lo, size_t hi, uint64_t *inserted)
{
    char err[512];
    failure f;

    if (hi - lo > DIALECT_CRATEDB_MAX_ROWS) {
        size_t mid = lo + DIALECT_CRATEDB_MAX_ROWS;

        f = crate_isolate(pg, rows, lo, mid, inserted);
        return f == FAIL_NONE ? crate_isolate(pg, rows, mid, hi, inserted) : f;
    }
    f = crate_insert(pg, rows, lo, hi, inserted, err, sizeof(err));
    if (f != FAIL_DATA)
        return f;
    if (hi - lo == 1) {
        reject_row(&rows[lo], err);
        return FAIL_NONE;
    }
    f = crate_isolate(pg, rows, lo, lo + (hi - lo) / 2, inserted);
    return f == FAIL_NONE ? crate_isolate(pg, rows, lo + (hi - lo) / 2, hi, inserted) : f;
}

/* CrateDB: recomputes the rollups of the rows written (inserted or already stored: a replay
 * after a crash must redo what its first attempt may have left undone). */
static int crate_rollups(pg_conn *pg, const pg_row *rows, size_t n)
{
    size_t nkeys = 0;

    if (!rollup_enabled(pg->rollup))
        return 0;
    if (pg->keys_cap < n) {
        rollup_key *k = realloc(pg->keys, n * sizeof(*k));

        if (k == NULL)
            return -1;
        pg->keys = k;
        pg->keys_cap = n;
    }
    for (size_t i = 0; i < n; i++) {
        if (rows[i].skip || rows[i].rejected)
            continue;
        pg->keys[nkeys].device_id = rows[i].rec->device_id;
        pg->keys[nkeys].ts_ms = rows[i].rec->ts_ms;
        nkeys++;
    }
    return rollup_crate_apply(pg->rollup, pg->conn, pg->keys, nkeys);
}

/* CrateDB has no transactions: rows first (idempotent), their rollups (idempotent), the DLQ,
 * then the offsets. */
static int crate_write(pg_conn *pg, pg_row *rows, size_t n, const char *group, const char *topic,
                       const pg_offset *offsets, size_t noffsets, pg_before_commit before_commit,
                       void *ctx, uint64_t *inserted)
{
    if (n > 0 && crate_isolate(pg, rows, 0, n, inserted) != FAIL_NONE)
        return infra_failure(pg, "write batch", NULL);
    if (crate_rollups(pg, rows, n) < 0)
        return infra_failure(pg, "rollups", NULL);
    if (before_commit != NULL && before_commit(rows, n, ctx) < 0)
        return PG_RETRY;
    for (size_t i = 0; i < noffsets; i++) {
        char part[16], next[32];
        const char *params[4] = {group, topic, part, next};
        PGresult *res;

        snprintf(part, sizeof(part), "%d", (int)offsets[i].partition);
        snprintf(next, sizeof(next), "%lld", (long long)offsets[i].next_offset);
        res = PQexecParams(pg->conn, dialect_cratedb_offsets_sql, 4, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            int rc = infra_failure(pg, "store offsets", res);

            PQclear(res);
            return rc;
        }
        PQclear(res);
    }
    rollup_committed(pg->rollup);
    mark_up(pg);
    return PG_OK;
}

/* The batch's write, from the outcome f of its direct COPY (and rollups, when rolled_up) on:
 * the staging path after a stored key, the isolation of refused rows, the rollups, the offsets,
 * the dead letters and COMMIT (see pg.h). Returns PG_OK or PG_RETRY. */
static int finish_write(pg_conn *pg, pg_row *rows, size_t n, failure f, bool rolled_up, char *err,
                        size_t err_size, const char *group, const char *topic,
                        const pg_offset *offsets, size_t noffsets, pg_before_commit before_commit,
                        void *ctx, uint64_t *inserted)
{
    if (f == FAIL_INFRA && strcmp(pg->sqlstate, "23505") == 0 &&
        PQstatus(pg->conn) == CONNECTION_OK) {
        /* A stored key the sink did not know of: ON CONFLICT DO NOTHING sorts it out. */
        fp_counter_inc(pg->m_staged);
        *inserted = 0;
        if (exec_cmd(pg, "ROLLBACK", NULL, 0, NULL) != FAIL_NONE ||
            exec_cmd(pg, "BEGIN", NULL, 0, NULL) != FAIL_NONE)
            return infra_failure(pg, "rollback", NULL);
        f = write_range(pg, 0, n, inserted, err, err_size);
    }
    if (f == FAIL_DATA) {
        /* Some value is refused: redo the batch row range by row range to find it. A repeat
         * left out for an earlier row of the batch is written on its own now (the earlier row
         * may be the refused one), and the batch's keys are not remembered (a refused row's key
         * is not stored). */
        fp_log_kv(FP_LOG_WARN, "database refused a value; isolating the rows", "error", err,
                  FP_KV_END);
        *inserted = 0;
        recent_begin(pg->recent);
        for (size_t i = 0; i < n; i++)
            rows[i].known = false;
        if (encode_rows(pg, rows, n) < 0) {
            fp_error("out of memory encoding a batch of %zu rows", n);
            exec_cmd(pg, "ROLLBACK", NULL, 0, NULL);
            return PG_RETRY;
        }
        if (exec_cmd(pg, "ROLLBACK", NULL, 0, NULL) != FAIL_NONE ||
            exec_cmd(pg, "BEGIN", NULL, 0, NULL) != FAIL_NONE)
            return infra_failure(pg, "rollback", NULL);
        f = isolate(pg, rows, 0, n, inserted);
    }
    /* The staging and isolating paths listed their rows for the per-row step. */
    if (f == FAIL_NONE && !rolled_up && rollup_apply(pg->rollup, pg->conn) < 0)
        f = FAIL_INFRA;
    if (f == FAIL_NONE)
        f = store_offsets(pg, group, topic, offsets, noffsets, err, err_size);
    if (f != FAIL_NONE) {
        exec_cmd(pg, "ROLLBACK", NULL, 0, NULL);
        return infra_failure(pg, "write batch", NULL);
    }
    if (before_commit != NULL && before_commit(rows, n, ctx) < 0) {
        exec_cmd(pg, "ROLLBACK", NULL, 0, NULL);
        return PG_RETRY;
    }
    if (exec_cmd(pg, "COMMIT", err, err_size, NULL) != FAIL_NONE)
        return infra_failure(pg, "commit", NULL);
    recent_commit(pg->recent);
    rollup_committed(pg->rollup);
    if (!pg->ok)
        fp_info("database available again");
    mark_up(pg);
    return PG_OK;
}

int pg_write(pg_conn *pg, pg_row *rows, size_t n, const char *group, const char *topic,
             const pg_offset *offsets, size_t noffsets, pg_before_commit before_commit, void *ctx,
             uint64_t *inserted)
{
    char err[512];
    bool rolled_up = false, streamed;
    failure f;

    *inserted = 0;
    if (pg->tail != TAIL_NONE) {
        fp_error("a batch was written while another one's commit was outstanding");
        return PG_RETRY;
    }
    for (size_t i = 0; i < n; i++)
        unreject_row(&rows[i]);
    /* The batch's COPY was started while it was gathered, unless that failed or missed a row:
     * then it is rolled back (pg_ensure) and the batch written from the start. */
    streamed = streamed_whole(pg, rows, n);
    if (streamed)
        pg->stream = STREAM_NONE;
    else if (pg_ensure(pg) != PG_OK)
        return PG_RETRY;
    if (pg->dialect == DIALECT_CRATEDB)
        return crate_write(pg, rows, n, group, topic, offsets, noffsets, before_commit, ctx,
                           inserted);
    if (!streamed) {
        mark_known(pg, rows, n);
        if (exec_cmd(pg, "BEGIN", err, sizeof(err), NULL) != FAIL_NONE)
            return infra_failure(pg, "begin", NULL);
    }
    f = write_direct(pg, rows, n, streamed, inserted, &rolled_up, err, sizeof(err));
    return finish_write(pg, rows, n, f, rolled_up, err, sizeof(err), group, topic, offsets,
                        noffsets, before_commit, ctx, inserted);
}

bool pg_write_can_start(const pg_conn *pg, const pg_row *rows, size_t n)
{
    return pg->dialect == DIALECT_POSTGRES && pg->tail == TAIL_NONE && streamed_whole(pg, rows, n);
}

bool pg_tail_pending(const pg_conn *pg)
{
    return pg->tail != TAIL_NONE;
}

/* The tail is over, committed or not: a batch queued meanwhile is written from the start unless
 * it commits (send_queued), and the keys set aside are kept by the caller or forgotten here. */
static void tail_end(pg_conn *pg, bool committed)
{
    pg->tail = TAIL_NONE;
    PQclear(pg->tail_res);
    pg->tail_res = NULL;
    if (committed) {
        recent_commit_sealed(pg->recent);
        return;
    }
    recent_forget(pg->recent);
    if (pg->stream == STREAM_QUEUED)
        pg->stream = STREAM_NONE;
}

void pg_tail_abandon(pg_conn *pg)
{
    if (pg->tail == TAIL_NONE)
        return;
    tail_end(pg, false);
    pg->stream = STREAM_NONE;
    drop_connection(pg);
}

int pg_write_start(pg_conn *pg, pg_row *rows, size_t n, const char *group, const char *topic,
                   const pg_offset *offsets, size_t noffsets)
{
    char err[512];
    const char *abort_reason = NULL;

    if (!pg_write_can_start(pg, rows, n)) {
        fp_error("a batch's commit was started without its COPY");
        return PG_RETRY;
    }
    if (pg->tail_offsets_cap < noffsets) {
        pg_offset *o = realloc(pg->tail_offsets, noffsets * sizeof(*o));

        if (o == NULL) {
            fp_error("out of memory keeping the offsets of %zu partitions", noffsets);
            pg_stream_abort(pg);
            return PG_RETRY;
        }
        pg->tail_offsets = o;
        pg->tail_offsets_cap = noffsets;
    }
    pg->stream = STREAM_NONE;
    pg->tail_written = 0;
    for (size_t i = 0; i < n; i++) {
        unreject_row(&rows[i]);
        pg->tail_written += row_written(&rows[i]);
    }
    if (direct_send_rest(pg, rows, n, err, sizeof(err)) != FAIL_NONE ||
        copy_end(pg, &abort_reason, err, sizeof(err)) < 0 || abort_reason != NULL) {
        fp_log_kv(FP_LOG_WARN, "database unavailable; will retry", "operation", "end COPY", "error",
                  abort_reason != NULL ? abort_reason : err, FP_KV_END);
        recent_begin(pg->recent);
        drop_connection(pg);
        pg->ok = false;
        return PG_RETRY;
    }
    memcpy(pg->tail_offsets, offsets, noffsets * sizeof(*offsets));
    pg->tail_noffsets = noffsets;
    pg->tail_rows = rows;
    pg->tail_n = n;
    pg->tail_group = group;
    pg->tail_topic = topic;
    recent_seal(pg->recent);
    pg->tail = TAIL_COPY;
    return PG_PENDING;
}

static bool result_ok(const PGresult *res)
{
    return PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
}

/* Reads the results of the tail's current step into pg->tail_res (its first failure, or its
 * first result). Returns 1 when the step is complete, 0 while the database is still at it
 * (only without `wait`), -1 when the connection failed. */
static int tail_collect(pg_conn *pg, bool wait)
{
    for (;;) {
        PGresult *res;

        if (!wait && PQconsumeInput(pg->conn) != 1)
            return -1;
        if (!wait && PQisBusy(pg->conn))
            return 0;
        res = PQgetResult(pg->conn);
        if (res == NULL)
            return 1;
        if (pg->tail_res == NULL || (result_ok(pg->tail_res) && !result_ok(res))) {
            PQclear(pg->tail_res);
            pg->tail_res = res;
        } else {
            PQclear(res);
        }
    }
}

/* An infrastructure failure in the tail: the transaction is rolled back, nothing committed. */
static int tail_failed(pg_conn *pg, const char *what, PGresult *res)
{
    PGresult *step = pg->tail_res;
    int rc;

    pg->tail_res = NULL;
    tail_end(pg, false);
    rc = infra_failure(pg, what, res);
    if (step != res)
        PQclear(step);
    PQclear(res);
    if (pg->conn != NULL)
        exec_cmd(pg, "ROLLBACK", NULL, 0, NULL);
    return rc;
}

/* Handles the result of the tail's current step and sends the next one. Returns PG_PENDING
 * (the next step was sent), PG_OK (committed) or PG_RETRY. */
static int tail_step(pg_conn *pg, pg_before_commit before_commit, void *ctx, uint64_t *inserted)
{
    PGresult *res = pg->tail_res;
    direct_ctx dc = {pg, pg->tail_rows};
    char err[512];

    if (!result_ok(res) && pg->tail != TAIL_COPY)
        return tail_failed(pg, pg->tail == TAIL_COMMIT ? "commit" : "write batch", res);
    switch (pg->tail) {
    case TAIL_COPY:
        if (!result_ok(res)) {
            /* The COPY met a stored key or a refused value: the rest of the batch's write
             * takes the paths that sort those out, waiting for the database. */
            failure f = classify(pg, res);
            pg_row *rows = pg->tail_rows;
            size_t n = pg->tail_n;

            snprintf(err, sizeof(err), "%s", result_error(pg, res));
            tail_end(pg, false);
            return finish_write(pg, rows, n, f, false, err, sizeof(err), pg->tail_group,
                                pg->tail_topic, pg->tail_offsets, pg->tail_noffsets, before_commit,
                                ctx, inserted);
        }
        if (rollup_send(pg->rollup, pg->conn, pg->summary) < 0)
            return tail_failed(pg, "rollups", NULL);
        pg->tail = TAIL_ROLLUP;
        break;
    case TAIL_ROLLUP:
        if (rollup_receive(pg->rollup, pg->conn, pg->summary, res, list_late_rows, &dc) < 0)
            return tail_failed(pg, "rollups", NULL);
        res = offsets_query(pg, pg->tail_group, pg->tail_topic, pg->tail_offsets, pg->tail_noffsets,
                            false);
        if (res != NULL)
            return tail_failed(pg, "store offsets", res);
        pg->tail = TAIL_OFFSETS;
        break;
    case TAIL_OFFSETS:
        if (before_commit != NULL && before_commit(pg->tail_rows, pg->tail_n, ctx) < 0) {
            tail_end(pg, false);
            exec_cmd(pg, "ROLLBACK", NULL, 0, NULL);
            return PG_RETRY;
        }
        if (PQsendQuery(pg->conn, "COMMIT") != 1)
            return tail_failed(pg, "commit", NULL);
        pg->tail = TAIL_COMMIT;
        break;
    default: /* TAIL_COMMIT */
        tail_end(pg, true);
        *inserted = pg->tail_written;
        rollup_committed(pg->rollup);
        if (!pg->ok)
            fp_info("database available again");
        mark_up(pg);
        send_queued(pg);
        return PG_OK;
    }
    PQclear(pg->tail_res);
    pg->tail_res = NULL;
    return PG_PENDING;
}

int pg_write_poll(pg_conn *pg, bool wait, pg_before_commit before_commit, void *ctx,
                  uint64_t *inserted)
{
    *inserted = 0;
    while (pg->tail != TAIL_NONE) {
        int got = tail_collect(pg, wait);
        int rc;

        if (got == 0)
            return PG_PENDING;
        if (got < 0) {
            tail_end(pg, false);
            rc = infra_failure(pg, "write batch", NULL);
            drop_connection(pg);
            return rc;
        }
        rc = tail_step(pg, before_commit, ctx, inserted);
        if (rc != PG_PENDING)
            return rc;
    }
    return PG_OK;
}

void pg_tail_wait(pg_conn *pg, int max_ms)
{
    struct pollfd p;

    if (pg->tail == TAIL_NONE || max_ms <= 0 || pg->conn == NULL || PQsocket(pg->conn) < 0)
        return;
    p.fd = PQsocket(pg->conn);
    p.events = POLLIN;
    p.revents = 0;
    (void)poll(&p, 1, max_ms);
}
