/* fp_kafka: librdkafka handles configured the fleetpipe way.
 *
 * Defaults that carry the delivery guarantees (README.md, "Architecture and contracts"): consumers
 * never store offsets by themselves (enable.auto.offset.store=false; the service stores an offset
 * only after the message's downstream effect is durable) and commit what was stored in the
 * background; producers are idempotent, retry without a time limit (message.timeout.ms=0: an outage
 * delays, it never drops) and partition keys like the Java client (murmur2). Every RDKAFKA_<NAME>
 * variable is applied on top (RDKAFKA_CONSUMER_/RDKAFKA_PRODUCER_ for one side only).
 *
 * Each handle's broker connectivity is tracked from librdkafka's statistics, for /readyz. */
#ifndef FP_KAFKA_H
#define FP_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/fp_config.h"

typedef enum fp_kafka_role { FP_KAFKA_CONSUMER, FP_KAFKA_PRODUCER } fp_kafka_role;

/* Callbacks a service may add; NULL ones are left unset. */
typedef struct fp_kafka_hooks {
    void (*rebalance_cb)(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *partitions, void *opaque);
    void (*dr_msg_cb)(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque);
    /* Properties set after fleetpipe's defaults and before RDKAFKA_* (name, value pairs). */
    const char *const (*props)[2];
    size_t nprops;
} fp_kafka_hooks;

/* Creates a consumer or producer with the defaults above, logging, error and statistics
 * callbacks, the hooks, and the RDKAFKA_* overrides. `user` is handed back by fp_kafka_user()
 * (librdkafka's callbacks get the handle's internal state as their opaque: use
 * fp_kafka_user(rk)). A consumer's main queue is redirected to its consumer queue. Returns NULL
 * with a message in err; a rejected property value is a configuration error (exit 2). */
rd_kafka_t *fp_kafka_new(fp_kafka_role role, const fp_common_config *cfg, void *user,
                         const fp_kafka_hooks *hooks, char *err, size_t err_size);

/* Sets one property; returns 0 or -1 with a message in err. */
int fp_kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                      size_t err_size);

/* Destroys a handle created by fp_kafka_new; accepts NULL. Consumers must be closed first. */
void fp_kafka_destroy(rd_kafka_t *rk);

/* The `user` pointer given to fp_kafka_new. */
void *fp_kafka_user(rd_kafka_t *rk);

/* True when the last statistics showed at least one broker connection up, and no fatal error
 * was raised. Before the first statistics (about a second after start) it is false. */
bool fp_kafka_connected(rd_kafka_t *rk);

/* True once librdkafka raised a fatal error on this handle (the service must restart). */
bool fp_kafka_fatal(rd_kafka_t *rk);

/* Turns RDKAFKA_SASL_PASSWORD into "sasl.password" in out. Returns 0, or -1 when the name does
 * not start with the prefix or out is too small. */
int fp_kafka_env_to_property(const char *env_name, const char *prefix, char *out, size_t out_size);

#endif
