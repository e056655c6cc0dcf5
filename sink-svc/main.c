/* sink-svc: enriched records on telemetry.enriched → rows in PostgreSQL, exactly once.
 *
 * Reads as: parse the configuration, connect to the database (applying migrations), then run
 * the stage runtime (fp_stage) with the database batch writer (batch.h) as its output: records
 * gather into batches, each written with its offsets in one transaction (pg.h); on partition
 * assignment the consumer starts from the offsets stored in the database. While the database is
 * away the batch is kept, consumption pauses and /readyz says 503; nothing good goes to the DLQ
 * for it. On SIGTERM the last batch is written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sink-svc/batch.h"
#include "common/fp_config.h"
#include "common/fp_http.h"
#include "common/fp_log.h"
#include "common/fp_metrics.h"
#include "common/fp_signal.h"
#include "common/fp_stage.h"
#include "sink-svc/pg.h"

typedef struct sink_config {
    fp_common_config common;
    const char *pg_dsn;
    const char *dialect;
    int64_t batch_max;
    int64_t batch_bytes;
    int64_t batch_ms;
    const char *rollups;
    int64_t recent_keys;
    const char *stream_copy;
    const char *commit_overlap;
    const char *copy_format;
} sink_config;

#define SINK_OPT(opt_name, opt_type, opt_def, opt_help, lo, hi, field, ...)                        \
    {                                                                                              \
        .name = opt_name, .type = opt_type, .def = opt_def, .help = opt_help, .min = lo,           \
        .max = hi, .offset = offsetof(sink_config, field), __VA_ARGS__                             \
    }

static const fp_option sink_options[] = {
    FP_COMMON_OPTIONS(
        "fleetpipe-sink", "telemetry.enriched", NULL, "9103",
        /* twice SINK_BATCH_BYTES: a batch is due before consumption pauses */ "33554432"),
    SINK_OPT("PG_DSN", FP_OPT_DSN, "host=localhost dbname=fleetpipe",
             "PostgreSQL connection string or URI (libpq); its password is never logged", 0, 0,
             pg_dsn, .required = true),
    SINK_OPT("SINK_DIALECT", FP_OPT_ENUM, "postgres",
             "postgres (tested) or cratedb (PostgreSQL wire protocol; SQL covered by unit tests "
             "only)",
             0, 0, dialect, .choices = "postgres|cratedb"),
    SINK_OPT("SINK_BATCH_MAX", FP_OPT_INT, "5000", "rows per database transaction at most", 1,
             1000000, batch_max),
    SINK_OPT("SINK_BATCH_BYTES", FP_OPT_INT, "16777216",
             "bytes of input per database transaction at most", 1024, INT64_C(1) << 30,
             batch_bytes),
    SINK_OPT("SINK_BATCH_MS", FP_OPT_INT, "200",
             "a batch is written at the latest this long after its first row", 1, 600000, batch_ms),
    SINK_OPT("SINK_ROLLUPS", FP_OPT_ENUM, "on",
             "on: keep the hourly rollups (telemetry_hourly) in each batch's transaction; off: do "
             "not (a sink with rollups on rebuilds them when it next connects)",
             0, 0, rollups, .choices = "on|off"),
    SINK_OPT("SINK_RECENT_KEYS", FP_OPT_INT, "131072",
             "keys (device_id, ts) of rows written lately that the sink remembers, so that a "
             "batch can be COPYed straight into telemetry without the staging pass (about 56 "
             "bytes each; 0 turns the direct path off)",
             0, 16777216, recent_keys),
    SINK_OPT("SINK_STREAM_COPY", FP_OPT_ENUM, "on",
             "on: a batch's transaction and COPY start with its first row and its rows are sent "
             "as they arrive, so the database inserts them while the sink reads the next; off: "
             "the whole batch is sent when it is due (the transaction lasts only the write)",
             0, 0, stream_copy, .choices = "on|off"),
    SINK_OPT("SINK_COMMIT_OVERLAP", FP_OPT_ENUM, "off",
             "on: while a streamed batch commits, the sink reads and encodes the next one (two "
             "batches in memory); off: reading waits for each commit",
             0, 0, commit_overlap, .choices = "on|off"),
    SINK_OPT("SINK_COPY_FORMAT", FP_OPT_ENUM, "binary",
             "binary: rows are COPYed in PostgreSQL's binary format (less parsing in the server; "
             "the sink falls back to text by itself when a column of telemetry has another "
             "type than its own); text: always the text format",
             0, 0, copy_format, .choices = "binary|text"),
    FP_OPT_TABLE_END,
};

/* Waits `ms` while keeping the health beat (a retry backoff, not a synchronisation). */
static void backoff_wait(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

    fp_health_beat();
    nanosleep(&ts, NULL);
}

/* Connects and applies the migrations, retrying until the database answers or a stop signal:
 * nothing is consumed before the schema is there. Returns 0, or -1 when asked to stop. */
static int connect_database(pg_conn *pg)
{
    for (int64_t wait_ms = 100; pg_ensure(pg) != PG_OK;
         wait_ms = wait_ms < 2000 ? wait_ms * 2 : wait_ms) {
        if (fp_signal_stop_requested())
            return -1;
        backoff_wait(wait_ms);
    }
    return 0;
}

int main(int argc, char **argv)
{
    sink_config cfg;
    sql_dialect dialect = DIALECT_POSTGRES;
    pg_conn *pg;
    batch *b = NULL;
    fp_stage *st = NULL;
    fp_http *http = NULL;
    bool http_off = true;
    char err[512] = "out of memory";
    int rc = 2;
    const fp_stage_hooks hooks = {.poll = batch_poll};
    bool overlap;

    memset(&cfg, 0, sizeof(cfg));
    fp_config_startup(argc, argv, "sink-svc",
                      "Writes enriched records from IN_TOPIC into PostgreSQL, exactly once; rows "
                      "the database refuses go to DLQ_TOPIC.",
                      sink_options, &cfg);
    overlap = strcmp(cfg.commit_overlap, "on") == 0;
    fp_signal_install();
    fp_metrics_register_process("sink-svc", FP_VERSION);
    dialect_parse(cfg.dialect, &dialect); /* the configuration table already checked it */
    pg = pg_new(cfg.pg_dsn, dialect);
    if (pg != NULL && pg_set_rollups(pg, strcmp(cfg.rollups, "on") == 0) == 0 &&
        pg_set_recent_keys(pg, (size_t)cfg.recent_keys) == 0) {
        pg_set_stream(pg, strcmp(cfg.stream_copy, "on") == 0);
        pg_set_copy_format(pg, strcmp(cfg.copy_format, "binary") == 0);
        batch_settings set = {
            .max_rows = cfg.batch_max,
            .max_bytes = cfg.batch_bytes,
            .max_ms = cfg.batch_ms,
            .group = cfg.common.kafka_group_id,
            .topic = cfg.common.in_topic,
            .dlq_timeout_ms = cfg.common.shutdown_timeout_ms,
            .overlap = overlap,
        };

        b = batch_new(pg, &set);
    }
    if (b != NULL)
        st = fp_stage_new("sink", &cfg.common, batch_output(b), err, sizeof(err));
    if (st == NULL) {
        fp_log_kv(FP_LOG_ERROR, "cannot start", "error", err, FP_KV_END);
        goto out;
    }
    http = fp_http_start(cfg.common.http_bind, (int)cfg.common.http_port, &http_off);
    rc = 1;
    if (http == NULL && !http_off)
        goto out;
    fp_health_set_ready(false, "connecting to the database");
    rc = connect_database(pg) == 0 ? fp_stage_run(st, batch_handle, overlap ? &hooks : NULL, b) : 0;
out:
    fp_http_stop(http);
    batch_free(b); /* its messages go before the consumer that made them */
    fp_stage_free(st);
    pg_free(pg);
    fp_info("stopped");
    return rc;
}
