/* fp_stage: the consumer runtime every service runs on — parser-svc, enricher-svc and sink-svc.
 *
 * The stage consumes IN_TOPIC in its consumer group (eager or cooperative rebalancing, as
 * partition.assignment.strategy says) and hands each message to the service's handler, which
 * hands results to the stage's output (fp_output.h: the Kafka output or the sink's database
 * writer) or rejects the message to the DLQ. Every consumed message is tracked (fp_offsets)
 * until each effect it caused is durable — its records delivered, its dead letter confirmed,
 * its row committed — and an input offset moves only over finished messages, so a crash
 * anywhere re-processes instead of losing (at-least-once; exactly-once through the output).
 *
 * Backpressure: when MAX_INFLIGHT messages or MAX_INFLIGHT_BYTES bytes are unfinished, while
 * the service says it is busy for a while, or while the output retries, the assigned partitions
 * are paused; they resume below half of both bounds (hysteresis), so memory stays bounded and
 * nothing is dropped. /readyz follows the Kafka connections and the output's readiness.
 *
 * Shutdown (SIGTERM/SIGINT): stop consuming, let held work finish, flush the output within
 * SHUTDOWN_TIMEOUT_MS, store and commit what finished, close the consumer. After a fatal error
 * nothing unfinished is committed: the output aborts and the process exits 1. */
#ifndef FP_STAGE_H
#define FP_STAGE_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/fp_config.h"
#include "common/fp_output.h"

typedef struct fp_stage fp_stage;

/* Handles one input message: hands results to the output (fp_stage_emit for the Kafka output)
 * or calls fp_stage_reject once. Returns 0, or -1 when the service cannot go on (the stage
 * stops and exits 1 without committing the message). */
typedef int (*fp_stage_handler)(fp_stage *st, const rd_kafka_message_t *msg, void *ctx);

/* What an asynchronous stage (enricher-svc) adds to the loop. Every member may be NULL. */
typedef struct fp_stage_hooks {
    /* Drives the stage's own asynchronous work (HTTP lookups): called every loop turn. It may
     * block up to max_wait_ms waiting for that work (the loop passes 0 while Kafka has
     * messages for it). */
    void (*poll)(fp_stage *st, int max_wait_ms, void *ctx);
    /* True while the stage cannot take more input (its own window is full). */
    bool (*busy)(void *ctx);
    /* Number of messages the stage still holds (fp_stage_hold) and has not released. */
    size_t (*pending)(void *ctx);
    /* A partition was revoked: drop what is held for it without emitting (its next owner reads
     * it again, as its offsets were not committed). */
    void (*revoked)(fp_stage *st, int32_t partition, void *ctx);
} fp_stage_hooks;

/* Creates the consumer and the producer (records and dead letters) for `out`, which must
 * outlive the stage. `stage_name` is the stage's label in metrics and DLQ headers ("parser",
 * "enricher", "sink"). Returns NULL with a message in err (a configuration error). */
fp_stage *fp_stage_new(const char *stage_name, const fp_common_config *cfg, const fp_output *out,
                       char *err, size_t err_size);

/* Runs until a stop signal or a fatal error; hooks may be NULL. Returns the process exit code:
 * 0 after a clean drain, 1 after a fatal error. */
int fp_stage_run(fp_stage *st, fp_stage_handler handler, const fp_stage_hooks *hooks, void *ctx);

/* Frees the stage; accepts NULL. */
void fp_stage_free(fp_stage *st);

/* --- For handlers --- */

/* Keeps the message being handled unfinished after the handler returns: returns its token with
 * one more hold, released by fp_stage_release. Until then its offset (and every later one of
 * its partition) is not committed. */
uint64_t fp_stage_hold(fp_stage *st);

/* Adds one hold to a tracked message (one more effect to wait for). */
void fp_stage_hold_token(fp_stage *st, uint64_t token);

/* The token of the message being handled. */
uint64_t fp_stage_current(const fp_stage *st);

/* Drops one hold of a message. */
void fp_stage_release(fp_stage *st, uint64_t token);

/* Takes ownership of the message being handled: the runtime will not destroy it
 * (rd_kafka_message_destroy is the caller's). */
rd_kafka_message_t *fp_stage_take_message(fp_stage *st);

/* Sends the message being handled to the DLQ with the reason (fp_stage_dead_letter). */
int fp_stage_reject(fp_stage *st, const char *code, const char *message);

/* Sends a message to the DLQ for `token` (its input message): its key, value and headers with
 * the fp.error.* headers, as a claim check when it would not fit (fp_dlq_prepare). The message
 * stays unfinished until the dead letter is confirmed. Returns 0, or -1 when the producer
 * refused it for good. */
int fp_stage_dead_letter(fp_stage *st, const rd_kafka_message_t *msg, uint64_t token,
                         const char *code, const char *message);

/* Sends an arbitrary payload (an output record) to the DLQ for `token`, with the source of the
 * token's input message. Returns 0 or -1 as fp_stage_dead_letter. */
int fp_stage_dead_letter_payload(fp_stage *st, uint64_t token, const void *key, size_t key_len,
                                 const void *value, size_t value_len, const char *code,
                                 const char *message);

/* Stops the stage after a failure it cannot recover from: fp_stage_run returns 1 without
 * committing what is unfinished. */
void fp_stage_fail(fp_stage *st, const char *why);

/* True once the stage failed (fp_stage_fail, a fatal Kafka error, an ERROR from the output). */
bool fp_stage_failed(const fp_stage *st);

/* --- Backpressure --- */

/* What backpressure looks at. */
typedef struct fp_stage_load {
    size_t inflight, max_inflight; /* unfinished input messages, MAX_INFLIGHT */
    size_t bytes, max_bytes;       /* their bytes, MAX_INFLIGHT_BYTES */
    bool hold;                     /* the output retries, or the stage was busy for a while */
} fp_stage_load;

/* Whether consumption should be paused next, given whether it is now: pause when either bound
 * is reached or on hold; resume only when both are below half their bound and nothing holds
 * (the gap keeps it from flapping). */
bool fp_stage_should_pause(bool paused, const fp_stage_load *load);

/* --- The prefetch stall (librdkafka 2.0) ---
 *
 * librdkafka 2.0 stops fetching once the consumer queue holds queued.max.messages.kbytes and
 * looks again only when its broker thread next wakes, up to a second later (2.2 added
 * fetch.queue.backoff.ms for it). A stage that is the slower side would then read at most that
 * bound per second. The stage notices the stall from its side: when a poll finds the queue
 * empty after at least half the bound was read since the last empty poll, it seeks the most
 * lagging partition to its own position, which wakes the broker thread (librdkafka purges and
 * refetches only that partition's messages after the position, so nothing is lost or read
 * twice). A seek leaves rd_kafka_position invalid until the partition's next message, so no
 * commit reads it: a transaction's offsets are the stage's own (fp_stage_positions). */

/* Whether an empty poll after `read_bytes` read since the previous one means a likely stall,
 * with a prefetch bound of `prefetch_bytes`. */
bool fp_stage_prefetch_drained(size_t read_bytes, size_t prefetch_bytes);

/* Of n partitions with the stage's positions and the last known high watermarks, the index of
 * the one furthest behind (position known, high above it), or -1 when none is behind. */
int fp_stage_most_lagging(const int64_t *position, const int64_t *high, int n);

/* Fetcher wake-ups so far (fleetpipe_consumer_fetch_wakeups_total). */
uint64_t fp_stage_fetch_wakeups(const fp_stage *st);

/* --- For outputs --- */

rd_kafka_t *fp_stage_consumer(fp_stage *st);
rd_kafka_t *fp_stage_producer(fp_stage *st);
const fp_common_config *fp_stage_config(const fp_stage *st);
const char *fp_stage_name(const fp_stage *st);

/* The input positions a transaction commits: for each assigned partition with a message
 * handled since it was assigned or rewound, the offset after the last one (the partitions
 * without are left out: their committed offsets stand). Never rd_kafka_position, which a seek
 * leaves unknown until the partition's next message. The caller destroys the list; NULL on
 * out of memory. */
rd_kafka_topic_partition_list_t *fp_stage_positions(const fp_stage *st);

/* The largest message the producer sends (message.max.bytes). */
size_t fp_stage_max_message(const fp_stage *st);

/* Serves delivery reports for up to timeout_ms, and stores the offsets they made committable
 * (unless the output is transactional). */
void fp_stage_serve(fp_stage *st, int timeout_ms);

/* Serves delivery reports until the producer's queue is empty or timeout_ms passed. Returns 0
 * when everything was delivered. */
int fp_stage_drain_producer(fp_stage *st, int64_t timeout_ms);

/* Lets held messages finish (hooks->poll) until none is held or the deadline (monotonic ms)
 * passes. Returns 0 when none is held. */
int fp_stage_settle(fp_stage *st, int64_t deadline_ms);

/* Moves every assigned partition back to its committed offset (the beginning when none) and
 * drops everything tracked or held for them: it is read and processed again. */
void fp_stage_rewind(fp_stage *st);

/* Moves the listed partitions back to the listed offsets (the input topic's) and drops
 * everything tracked or held for them. */
void fp_stage_rewind_to(fp_stage *st, rd_kafka_topic_partition_list_t *parts);

#endif
