/* rollup: event-time hourly rollups per device (table telemetry_hourly), kept by the sink in the
 * same transaction as the rows and offsets, so that they are exactly once by construction and
 * exact whatever the lateness.
 *
 * The arithmetic lives in the database (migrations 003_rollups.sql and 005_rollup_rows.sql,
 * telemetry_rollup_apply(); 006_rollup_summary.sql for a batch's summary): this module only has
 * to hand it the rows a transaction really inserted, with the values the rollups read
 * (ROLLUP_ROW_COLUMNS), and that is its whole contract with the insert path. With PostgreSQL a
 * write transaction
 *
 *   1. inserts its rows with the statement rollup_capture_sql made of its INSERT: the same
 *      INSERT, whose RETURNING of those columns goes into the session table
 *      telemetry_rollup_rows (a duplicate is not inserted, so it is not listed and changes
 *      nothing). A path that writes rows otherwise (COPY straight into telemetry) COPYs the
 *      same columns of its rows into telemetry_rollup_rows itself, each row once;
 *   2. calls rollup_apply once, after the last row and before COMMIT;
 *   3. after COMMIT calls rollup_committed (metrics).
 * The direct COPY path (every row of the batch inserted) skips step 1 for most rows: it hands
 * rollup_apply_summary the batch's summary (summary.h, migration 006_rollup_summary.sql), which
 * the database adds to telemetry_hourly in one call with about one element per device and hour.
 * A device the summary cannot settle (a row older than its newest stored one, a metric stored
 * as a string) comes back from that call; only its rows are then listed in
 * telemetry_rollup_rows and take the per-row step 2.
 * Savepoints need no care: a range rolled back takes its rows with it.
 *
 * With SINK_ROLLUPS=off the sink keeps nothing, and rollup_apply marks the rollups stale in
 * the transaction instead; the next sink with rollups on that connects rebuilds them from
 * telemetry (rollup_session).
 *
 * CrateDB has no transactions, so a crash can leave rows written and rollups not: there every
 * bucket a batch touches is recomputed from the stored rows (rollup_crate_apply), which is
 * idempotent, so a replayed batch fixes whatever its first attempt left. The buckets a batch
 * touches are those of its rows, and for each of those the bucket of the first stored row after
 * its end (a row that is the last of its bucket starts the interval of that row). */
#ifndef ROLLUP_H
#define ROLLUP_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/fp_buf.h"
#include "sink-svc/summary.h"

#define ROLLUP_BUCKET_MS 3600000 /* one hour */

typedef struct rollup_set rollup_set;

/* What the last rollup_apply or rollup_crate_apply did. */
typedef struct rollup_counts {
    uint64_t late_rows;    /* rows older than their device's newest stored row when written */
    uint64_t rows_changed; /* telemetry_hourly rows written */
    uint64_t recomputed;   /* of those, recomputed from the stored rows */
} rollup_counts;

/* One written row's key (CrateDB). device_id is borrowed. */
typedef struct rollup_key {
    const char *device_id;
    int64_t ts_ms;
} rollup_key;

/* One device's hour. device_id is borrowed from the keys it came from. */
typedef struct rollup_bucket {
    const char *device_id;
    int64_t bucket_ms; /* start of the UTC hour, ms since epoch */
} rollup_bucket;

/* Creates the module, enabled or not, and registers its metrics. Returns NULL on out of
 * memory. */
rollup_set *rollup_new(bool enabled);
void rollup_free(rollup_set *r); /* accepts NULL */
bool rollup_enabled(const rollup_set *r);

/* PostgreSQL, once per session after the migrations, outside a transaction: when enabled,
 * creates the session's key table and rebuilds the rollups if a sink with rollups off has
 * written since they were last complete (one pass over telemetry, logged). Returns 0, or -1
 * with the connection's error message set. */
int rollup_session(rollup_set *r, PGconn *conn);

/* The columns of telemetry the rollups read, in the order of telemetry_rollup_rows. */
#define ROLLUP_ROW_COLUMNS "device_id,ts,speed_kmh,ignition,site_id,site_name,metrics"
#define ROLLUP_NCOLS       7

/* Of the metrics, the rollup step reads only these (telemetry_rollup_apply, migrations 003 and
 * 005): the session row's metrics object needs no other member, and parsing a two-member jsonb
 * costs the database far less than the whole object. */
extern const char *const rollup_metrics[];
#define ROLLUP_NMETRICS 2

/* Appends to `out` the statement that runs `insert_sql` (an INSERT INTO telemetry … without
 * RETURNING) and records the rows it inserts (their ROLLUP_ROW_COLUMNS): `insert_sql` itself when
 * rollups are off. Its command tag's row count is still the number of rows inserted. Returns 0, or
 * -1 on out of memory. */
int rollup_capture_sql(const rollup_set *r, fp_buf *out, const char *insert_sql);

/* PostgreSQL, inside the write transaction after its last row: applies the inserted rows to
 * telemetry_hourly (or, when off, marks the rollups stale). Waits for another writer of the same
 * devices to commit first. Returns 0, or -1 (logged; the caller abandons the transaction and
 * retries it: the database's troubles, never the data's). */
int rollup_apply(rollup_set *r, PGconn *conn);

/* Lists the rows at indexes[0..n) of the batch in telemetry_rollup_rows (as step 1 above says).
 * Returns 0 or -1. */
typedef int (*rollup_rows_fn)(void *ctx, const size_t *indexes, size_t n);

/* PostgreSQL, the direct path, instead of rollup_apply: applies the batch's summary (every row
 * of `s` inserted by this transaction; summary.h); the devices it could not apply (a late row,
 * a metric the database must read) have their rows listed by rows_of_late and then take
 * rollup_apply's per-row step. When rollups are off or `s` is empty, does what rollup_apply
 * does. Returns 0, or -1 (logged; the caller abandons the transaction and retries it). */
int rollup_apply_summary(rollup_set *r, PGconn *conn, summary *s, rollup_rows_fn rows_of_late,
                         void *ctx);

/* rollup_apply_summary in two halves, for a writer that does not wait for the database: sends
 * the summary's call (or, when rollups are off or `s` is empty, rollup_apply's statement)
 * without waiting for it. Returns 0, or -1 (logged). */
int rollup_send(rollup_set *r, PGconn *conn, summary *s);

/* Takes the result of the call rollup_send sent (`res`, not cleared) and does the rest of what
 * rollup_apply_summary does (the late devices' per-row step waits for the database). Returns 0,
 * or -1 (logged; the caller abandons the transaction and retries it). */
int rollup_receive(rollup_set *r, PGconn *conn, summary *s, const PGresult *res,
                   rollup_rows_fn rows_of_late, void *ctx);

/* After COMMIT: counts what the last apply did in the metrics. */
void rollup_committed(rollup_set *r);

/* What the last apply did (also before rollup_committed). */
rollup_counts rollup_last(const rollup_set *r);

/* CrateDB, after the batch's rows are written: recomputes every bucket they touch. `keys` are
 * the rows written (inserted or already there) and are reordered. Returns 0, or -1 (logged;
 * the caller retries the batch). Does nothing when rollups are off. */
int rollup_crate_apply(rollup_set *r, PGconn *conn, rollup_key *keys, size_t n);

/* The bucket arithmetic, for the CrateDB path and its tests. */

/* The start of the UTC hour holding ts_ms (floor, also before 1970). */
int64_t rollup_bucket_ms(int64_t ts_ms);

/* Sorts keys by device and time and writes the distinct (device, bucket) pairs they fall in
 * into out (room for n), sorted by device and bucket. Returns how many. */
size_t rollup_buckets(rollup_key *keys, size_t n, rollup_bucket *out);

/* Adds (device_id, bucket of next_ts_ms) to the sorted, distinct set[0..*len) unless present,
 * keeping it sorted; set has room for cap. The bucket after a touched one: the first stored row
 * at or after a touched bucket's end starts the next interval. Returns 0, or -1 when full. */
int rollup_bucket_add(rollup_bucket *set, size_t *len, size_t cap, const char *device_id,
                      int64_t next_ts_ms);

#endif
