/* pg: sink-svc's PostgreSQL side — connection, migrations, partition offsets and the batch
 * write that makes the sink exactly-once.
 *
 * A batch is written in one transaction. Its rows whose key (device_id, ts) the sink knows to
 * be stored, or which repeat an earlier row of the batch (recent.h), are left out; the rest go
 * by one COPY straight into telemetry. When that COPY meets a stored key the sink did not know
 * of (another replica wrote it, or an earlier run), the transaction starts over on the staging
 * path: COPY into a temporary table, then INSERT … SELECT … ON CONFLICT (device_id, ts) DO
 * NOTHING. Either way a row seen twice, in one batch or across batches, is stored once; the
 * hourly rollups of the rows really inserted are updated (rollup.h), and the Kafka offsets the
 * rows came from are upserted in the same transaction. After a crash the sink resumes from the
 * offsets in the database, so nothing is lost and nothing is written twice.
 *
 * Failures are classified once: a value the database rejects with one of a short list of
 * SQLSTATEs (pg_sqlstate_is_data) is the data's fault — the batch is split until the bad rows
 * are isolated, they are reported for the DLQ and the rest is committed; everything else
 * (connection lost, server down or read-only, disk full, serialization failure, a constraint or
 * a narrower column an operator added) is the infrastructure's — the transaction is abandoned
 * and the caller retries the whole batch later. */
#ifndef PG_H
#define PG_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sink-svc/dialect.h"
#include "common/fp_record.h"

typedef struct pg_conn pg_conn;

enum {
    PG_OK = 0,
    PG_RETRY = -1, /* infrastructure failure: nothing was committed, try again later */
    PG_PENDING = 1 /* pg_write_start, pg_write_poll: the database is still at it */
};

/* The longest message kept for a row the database refused, in bytes. */
#define PG_ROW_ERROR_MAX 255

/* One row of a batch. `rejected` and `error` are set by pg_write for rows the database
 * refused (`error` is allocated: pg_write frees an earlier attempt's, the caller frees the last
 * one; it may be NULL when memory ran out); `skip` rows (already rejected upstream) are not
 * written but their offsets count. */
typedef struct pg_row {
    const fp_record *rec;
    bool skip;
    bool rejected;
    bool known; /* set by pg_write (or pg_stream_row): its key is stored, or an earlier row of the
                 * batch has it */
    char *error;
} pg_row;

/* The next offset to read of one partition, committed with the batch. */
typedef struct pg_offset {
    int32_t partition;
    int64_t next_offset;
} pg_offset;

/* Called after the rows are written and before COMMIT, so that the DLQ messages of rejected rows
 * are durable before their offsets are. Returns 0, or -1 to abandon the batch (retry later). */
typedef int (*pg_before_commit)(const pg_row *rows, size_t n, void *ctx);

/* True when a failure with this SQLSTATE is the row's fault (the row goes to the DLQ), false
 * when it is the infrastructure's (the batch is retried). NULL is the infrastructure's. */
bool pg_sqlstate_is_data(const char *sqlstate);

/* Creates a handle for a database of the given dialect; does not connect. Returns NULL on out
 * of memory. */
pg_conn *pg_new(const char *dsn, sql_dialect dialect);
void pg_free(pg_conn *pg); /* accepts NULL */

/* Whether each batch also keeps the hourly rollups (telemetry_hourly, rollup.h); on by default.
 * Call before the first pg_ensure. Returns 0, or -1 on out of memory (setting unchanged). */
int pg_set_rollups(pg_conn *pg, bool on);

/* How many recently written keys the sink remembers (recent.h; 0: none, every batch takes the
 * staging path). Call before the first pg_write. Returns 0, or -1 on out of memory (setting
 * unchanged). */
int pg_set_recent_keys(pg_conn *pg, size_t capacity);

/* Connects when not connected, applies the migrations (under an advisory lock, so replicas
 * starting together do not race) and prepares the session. Returns PG_OK or PG_RETRY
 * (logged). */
int pg_ensure(pg_conn *pg);

/* True while the last operation found the connection working. */
bool pg_ok(const pg_conn *pg);

/* Checks the connection with a trivial query. Returns PG_OK or PG_RETRY. */
int pg_ping(pg_conn *pg);

/* Reads the stored next offsets of `group` for the partitions in `parts` (topic as listed) and
 * sets them; partitions without a stored offset are left as they are. Returns PG_OK or
 * PG_RETRY. */
int pg_load_offsets(pg_conn *pg, const char *group, rd_kafka_topic_partition_list_t *parts);

/* Whether pg_stream_row streams (on by default). */
void pg_set_stream(pg_conn *pg, bool on);

/* binary (the default): rows are COPYed in PostgreSQL's binary format, which the server reads
 * with less work, whenever telemetry's column types are the sink's own; false: always in the
 * text format. Takes effect at the next connection. */
void pg_set_copy_format(pg_conn *pg, bool binary);

/* PostgreSQL: the batch being gathered goes to the database as it grows. Called for each row
 * as it is added (i counts from 0 in every batch; rec is the row's record, which may move
 * afterwards; row->skip already set), it opens the batch's transaction and direct COPY at row
 * 0 and sends the rows' text in pieces, so that the database parses and inserts them while the
 * sink still reads the batch's next rows; pg_write then only ends the COPY. Sets row->known.
 * Never fails: when anything goes wrong (the database is down, out of memory), the rows are no
 * longer streamed and pg_write writes the batch from the start, as it does without this. Does
 * nothing for CrateDB or when streaming is off (pg_set_stream). */
void pg_stream_row(pg_conn *pg, pg_row *row, const fp_record *rec, size_t i);

/* Rolls back the batch streamed so far (its rows are abandoned, or will be written from the
 * start). Every other call on the connection does this first, except pg_write of the batch
 * streamed. */
void pg_stream_abort(pg_conn *pg);

/* Writes a batch and its offsets in one transaction (see above). On PG_OK, *inserted is the
 * number of new rows (duplicates excluded). */
int pg_write(pg_conn *pg, pg_row *rows, size_t n, const char *group, const char *topic,
             const pg_offset *offsets, size_t noffsets, pg_before_commit before_commit, void *ctx,
             uint64_t *inserted);

/* --- Committing without waiting ---
 *
 * A batch streamed whole (pg_stream_row) can be committed while the next one is gathered:
 * pg_write_start ends its COPY and returns; pg_write_poll drives the rest (rollups, offsets,
 * before_commit, COMMIT), each step sent when the last one answered, and says when it is done.
 * Meanwhile the next batch's rows are encoded and their keys checked as they come
 * (pg_stream_row), and sent when the first batch commits; its keys are known to them
 * (recent_seal). The rows handed to pg_write_start must stay as they are until then. When the
 * COPY meets a stored key or a refused value, pg_write_poll finishes the batch as pg_write would
 * (the staging path, isolation), waiting; when anything fails the next batch is written from the
 * start. Nothing else may use the connection while a tail is pending (pg_tail_pending). */

/* True when the batch of n rows (`rows`, as handed to pg_stream_row) was streamed whole, so
 * that pg_write_start can take it. */
bool pg_write_can_start(const pg_conn *pg, const pg_row *rows, size_t n);

/* Ends the streamed batch's COPY and returns PG_PENDING, or PG_RETRY (logged; nothing
 * committed) when it could not be sent. */
int pg_write_start(pg_conn *pg, pg_row *rows, size_t n, const char *group, const char *topic,
                   const pg_offset *offsets, size_t noffsets);

/* Drives the pending tail: with `wait`, until it is over. Returns PG_PENDING (only without
 * `wait`), PG_OK (committed; *inserted as pg_write says) or PG_RETRY (nothing committed). */
int pg_write_poll(pg_conn *pg, bool wait, pg_before_commit before_commit, void *ctx,
                  uint64_t *inserted);

/* True while a tail is pending. */
bool pg_tail_pending(const pg_conn *pg);

/* Waits up to max_ms for the database to answer a pending tail's step (returns at once without
 * one); pg_write_poll then reads the answer. */
void pg_tail_wait(pg_conn *pg, int max_ms);

/* Gives up a pending tail without waiting for it: the connection is closed, so the database
 * rolls it back unless its COMMIT was already processed (which is harmless: its rows and offsets
 * went together). */
void pg_tail_abandon(pg_conn *pg);

#endif
