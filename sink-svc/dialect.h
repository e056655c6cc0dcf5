/* dialect: the SQL that differs between PostgreSQL (the default, tested target) and CrateDB
 * (a documented second dialect: it speaks the PostgreSQL wire protocol but has no COPY FROM
 * STDIN, no jsonb (it has OBJECT), no transactions and different DDL).
 *
 * For CrateDB the sink writes a batch as multi-row INSERT … ON CONFLICT (device_id, ts) DO
 * NOTHING with bound parameters, recomputes the hourly rollups the batch touches, then upserts
 * the offsets (they only move forward). Without transactions these are not atomic, but the
 * result is still exactly once: rows written before a crash are written again after it and
 * ignored by the primary key, and their buckets are recomputed again, which is idempotent.
 *
 * No CrateDB server can run on the build machine: this SQL is covered by unit tests only. */
#ifndef DIALECT_H
#define DIALECT_H

#include <stddef.h>

#include "common/fp_buf.h"

typedef enum sql_dialect { DIALECT_POSTGRES = 0, DIALECT_CRATEDB = 1 } sql_dialect;

/* "postgres" or "cratedb". Returns 0, or -1 for anything else. */
int dialect_parse(const char *name, sql_dialect *out);

/* CrateDB's schema: statements to run in order at start-up (each idempotent), NULL-ended. */
extern const char *const dialect_cratedb_schema[];

/* Appends "INSERT INTO telemetry (…) VALUES ($1, …, $29::OBJECT), (…) ON CONFLICT (device_id,
 * ts) DO NOTHING" for nrows rows (1 ≤ nrows ≤ DIALECT_CRATEDB_MAX_ROWS). Returns 0, or -1 on out of
 * memory or a bad nrows. */
#define DIALECT_CRATEDB_MAX_ROWS 1000
int dialect_cratedb_insert_sql(fp_buf *out, size_t nrows);

/* The offsets upsert for CrateDB, parameters $1 group, $2 topic, $3 partition, $4 next offset. */
extern const char dialect_cratedb_offsets_sql[];

/* The offsets lookup for CrateDB (a primary-key get, which CrateDB answers in real time). */
extern const char dialect_cratedb_load_offset_sql[];

/* The rollups for CrateDB (rollup.c recomputes every bucket a batch touches; see rollup.h).
 * Times are bound as RFC 3339 text and come back as epoch milliseconds (CAST … AS BIGINT).
 *
 * refresh:   makes the rows just written visible to the queries that follow.
 * next_row:  $1 device, $2 time: the first stored row at or after $2 (NULL when none).
 * prev_row:  $1 device, $2 time: the last stored row before $2 (NULL when none).
 * recompute: $1 device, $2 bucket start, $3 bucket end, $4 where to start reading (the row
 *            before the bucket, or the bucket's start): upserts the bucket's telemetry_hourly
 *            row computed from the stored rows, the same arithmetic as PostgreSQL's
 *            telemetry_hourly_reference (a metric that is not a number reads as missing). */
extern const char dialect_cratedb_refresh_sql[];
extern const char dialect_cratedb_next_row_sql[];
extern const char dialect_cratedb_prev_row_sql[];
extern const char dialect_cratedb_recompute_sql[];

#endif
