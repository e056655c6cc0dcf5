/* dialect: the SQL that differs between PostgreSQL (the default, tested target) and CrateDB
 * (a documented second dialect: it speaks the PostgreSQL wire protocol but has no COPY FROM
 * STDIN, no jsonb (it has OBJECT), no transactions and different DDL).
 *
 * For CrateDB the sink writes a batch as multi-row INSERT … ON CONFLICT (device_id, ts) DO
 * NOTHING with bound parameters, then upserts the offsets (they only move forward). Without
 * transactions the two are not atomic, but the result is still exactly once: rows written
 * before a crash are written again after it and ignored by the primary key.
 *
 * No CrateDB server can run on the build machine: this SQL is covered by unit tests only. */
#ifndef FP_DIALECT_H
#define FP_DIALECT_H

#include <stddef.h>

#include "fp_buf.h"

typedef enum fp_dialect { FP_DIALECT_POSTGRES = 0, FP_DIALECT_CRATEDB = 1 } fp_dialect;

/* "postgres" or "cratedb". Returns 0, or -1 for anything else. */
int fp_dialect_parse(const char *name, fp_dialect *out);

/* CrateDB's schema: statements to run in order at start-up (each idempotent), NULL-ended. */
extern const char *const fp_cratedb_schema[];

/* Appends "INSERT INTO telemetry (…) VALUES ($1, …, $29::OBJECT), (…) ON CONFLICT (device_id,
 * ts) DO NOTHING" for nrows rows (1 ≤ nrows ≤ FP_CRATEDB_MAX_ROWS). Returns 0, or -1 on out of
 * memory or a bad nrows. */
#define FP_CRATEDB_MAX_ROWS 1000
int fp_cratedb_insert_sql(fp_buf *out, size_t nrows);

/* The offsets upsert for CrateDB, parameters $1 group, $2 topic, $3 partition, $4 next offset. */
extern const char fp_cratedb_offsets_sql[];

/* The offsets lookup for CrateDB (a primary-key get, which CrateDB answers in real time). */
extern const char fp_cratedb_load_offset_sql[];

#endif
