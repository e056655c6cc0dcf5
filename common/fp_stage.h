/* fp_stage: the consume → transform → produce loop of parser-svc and enricher-svc.
 *
 * The stage consumes IN_TOPIC in its consumer group, hands each message to the service's
 * handler, which emits zero or more records to OUT_TOPIC or rejects the message to the DLQ.
 * An input offset is stored for commit only when every record it caused was delivered
 * (fp_offsets), so a crash anywhere re-processes instead of losing (at-least-once). When too
 * many messages are in flight, the assigned partitions are paused until the producer catches
 * up: memory stays bounded and nothing is dropped. /readyz follows the Kafka connections.
 *
 * Shutdown (SIGTERM/SIGINT): stop consuming, flush the producer within SHUTDOWN_TIMEOUT_MS,
 * store and commit what was delivered, close the consumer. */
#ifndef FP_STAGE_H
#define FP_STAGE_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "fp_config.h"

typedef struct fp_stage fp_stage;

/* Handles one input message by calling fp_stage_emit for each output record or fp_stage_reject
 * once. Returns 0, or -1 when the service cannot go on (the stage stops and exits 1 without
 * committing the message). */
typedef int (*fp_stage_handler)(fp_stage *st, const rd_kafka_message_t *msg, void *ctx);

/* What an asynchronous stage (enricher-svc) adds to the loop. Every member may be NULL. */
typedef struct fp_stage_hooks {
    /* Drives the stage's own asynchronous work (HTTP lookups): called every loop turn. It may
     * block up to max_wait_ms waiting for that work (the loop passes 0 while Kafka has
     * messages for it). */
    void (*poll)(fp_stage *st, int max_wait_ms, void *ctx);
    /* True while the stage cannot take more input (its own window is full): consumption
     * pauses, as it does at MAX_INFLIGHT. */
    bool (*busy)(void *ctx);
    /* Number of messages the stage still holds (fp_stage_hold) and has not released. */
    size_t (*pending)(void *ctx);
    /* A partition was revoked: drop what is held for it without emitting (its next owner reads
     * it again, as its offsets were not committed). */
    void (*revoked)(fp_stage *st, int32_t partition, void *ctx);
} fp_stage_hooks;

/* Creates the consumer and producer. `stage_name` is the stage's label in metrics and DLQ
 * headers ("parser", "enricher"). Returns NULL with a message in err (a configuration error). */
fp_stage *fp_stage_new(const char *stage_name, const fp_common_config *cfg, char *err,
                       size_t err_size);

/* Runs until a stop signal or a fatal error. Returns the process exit code: 0 after a clean
 * drain, 1 after a fatal error. */
int fp_stage_run(fp_stage *st, fp_stage_handler handler, void *ctx);

/* Like fp_stage_run, with the hooks of an asynchronous stage. On shutdown, held messages are
 * given up to SHUTDOWN_TIMEOUT_MS to be emitted and released (hooks->pending reaching 0). */
int fp_stage_run_async(fp_stage *st, fp_stage_handler handler, const fp_stage_hooks *hooks,
                       void *ctx);

/* Keeps the message being handled open after the handler returns: returns its token with one
 * more hold. The stage later emits for it with fp_stage_emit_for and releases it with
 * fp_stage_release; until then its offset (and every later one of its partition) is not
 * committed. */
uint64_t fp_stage_hold(fp_stage *st);

/* Produces one record for a held message (see fp_stage_emit for the rest). */
int fp_stage_emit_for(fp_stage *st, uint64_t token, const void *key, size_t key_len,
                      const void *value, size_t value_len);

/* Drops one hold of a held message. */
void fp_stage_release(fp_stage *st, uint64_t token);

/* Produces one record for the message being handled. Blocks (serving delivery reports) while
 * the producer's queue is full. Returns 0, or -1 on a non-retriable produce error. */
int fp_stage_emit(fp_stage *st, const void *key, size_t key_len, const void *value,
                  size_t value_len);

/* Sends the message being handled to the DLQ, unchanged, with the reason. Returns 0 or -1. */
int fp_stage_reject(fp_stage *st, const char *code, const char *message);

/* Stops the stage after a failure it cannot recover from: fp_stage_run returns 1 without
 * committing what is unfinished. */
void fp_stage_fail(fp_stage *st, const char *why);

/* Frees the stage; accepts NULL. */
void fp_stage_free(fp_stage *st);

#endif
