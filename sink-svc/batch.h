/* batch: sink-svc's stage output — rows gathered from Kafka and written to the database, one
 * transaction per batch, with the partitions' next offsets (pg.h: exactly once).
 *
 * A batch is written when it holds SINK_BATCH_MAX rows or SINK_BATCH_BYTES bytes, or its first
 * row is SINK_BATCH_MS old, on revocation and on shutdown. Every row holds its input message
 * (fp_stage) until the batch is committed; the offsets then mirrored into the consumer group
 * only show progress (the database's are the truth, loaded on assignment).
 *
 * Dead letters (a message that is not a canonical record; a row the database refuses) are
 * tracked per row: none, in flight, confirmed or failed. The batch is committed only when
 * every dead letter it owes is confirmed; a failed one is sent again on every retry, and a
 * batch whose dead letters cannot be written is never committed — after the shutdown timeout
 * it is dropped without a commit and read again at the next start. */
#ifndef BATCH_H
#define BATCH_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/fp_output.h"
#include "common/fp_record.h"
#include "common/fp_stage.h"
#include "sink-svc/pg.h"

typedef enum batch_dead_letter {
    BATCH_DL_NONE = 0,  /* none owed, or owed and not sent yet (code set) */
    BATCH_DL_INFLIGHT,  /* sent, delivery report pending */
    BATCH_DL_CONFIRMED, /* durable in the DLQ */
    BATCH_DL_FAILED     /* the producer gave up: send again */
} batch_dead_letter;

typedef struct batch_row {
    rd_kafka_message_t *msg; /* owned */
    uint64_t token;
    int32_t partition;
    int64_t offset;
    size_t bytes;
    batch_dead_letter dl;
    const char *dl_code; /* non-NULL: a dead letter is owed */
    char *dl_why;        /* its reason (owned; NULL when memory ran out) */
} batch_row;

typedef struct batch_settings {
    int64_t max_rows, max_bytes, max_ms;
    const char *group, *topic;
    int64_t dlq_timeout_ms; /* how long a batch waits for its dead letters */
    bool overlap; /* a streamed batch commits while the next is gathered (pg_write_start) */
} batch_settings;

typedef struct batch batch;

/* A batch writer on `pg` (not owned; may be NULL in tests that only exercise the rows). */
batch *batch_new(pg_conn *pg, const batch_settings *set);
void batch_free(batch *b); /* accepts NULL */
const fp_output *batch_output(batch *b);

/* The sink's stage handler: decodes the message into a row (taking the message), or owes a
 * dead letter for it. Returns 0 or -1 (out of memory). */
int batch_handle(fp_stage *st, const rd_kafka_message_t *msg, void *ctx);

/* Stage hook (fp_stage_hooks.poll) with SINK_COMMIT_OVERLAP: while a batch commits and Kafka is
 * quiet, waits on the database's answer instead of the consumer. */
void batch_poll(fp_stage *st, int max_wait_ms, void *ctx);

/* --- The rows, for the writer and its tests --- */

/* Appends a row for a message of `len` bytes (payload decoded into the row's record) with its
 * hold `token`. A payload that is not a canonical record owes a dead letter. Returns the row's
 * index, or -1 on out of memory. */
long batch_push(batch *b, rd_kafka_message_t *msg, uint64_t token, int32_t partition,
                int64_t offset, const void *payload, size_t len);

size_t batch_len(const batch *b);
size_t batch_bytes(const batch *b);
batch_row *batch_row_at(batch *b, size_t i);

/* Marks that row i owes a dead letter with this code and reason (kept when already owed). */
void batch_owe_dead_letter(batch *b, size_t i, const char *code, const char *why);

/* The next row, from *i on, whose dead letter must be sent (owed and never sent, or failed).
 * Returns true and sets *i, or false. */
bool batch_next_to_send(const batch *b, size_t *i);

/* A dead letter's delivery report (by the row's token). */
void batch_dead_letter_done(batch *b, uint64_t token, bool ok);

/* True when every dead letter owed is confirmed. */
bool batch_dead_letters_confirmed(const batch *b);

/* Whether the batch is due: full in rows or bytes, old, or holding rows while the input is
 * drained (`idle`: a bigger batch would only come later, so waiting adds latency, not
 * throughput). */
bool batch_is_due(const batch *b, int64_t now_ms, bool idle);

#endif
