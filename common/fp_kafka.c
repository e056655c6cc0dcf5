#include "common/fp_kafka.h"

#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "common/fp_log.h"

extern char **environ;

/* What every handle carries as its opaque. */
typedef struct kafka_state {
    void *user;
    atomic_int brokers_up;
    atomic_bool fatal;
} kafka_state;

/* librdkafka's log lines, as our JSON lines. Syslog levels: 0..3 error, 4 warn, 5..6 info. */
static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    fp_log_level l = level <= 3   ? FP_LOG_ERROR
                     : level == 4 ? FP_LOG_WARN
                     : level <= 6 ? FP_LOG_INFO
                                  : FP_LOG_DEBUG;

    if (!fp_log_enabled(l))
        return;
    fp_log_kv(l, buf, "source", "librdkafka", "facility", fac, "client", rd_kafka_name(rk),
              FP_KV_END);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    kafka_state *st = opaque;

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[512];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof(buf));

        atomic_store(&st->fatal, true);
        fp_log_kv(FP_LOG_ERROR, "kafka fatal error", "error", rd_kafka_err2name(orig), "reason",
                  buf, FP_KV_END);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        atomic_store(&st->brokers_up, 0);
    fp_log_kv(FP_LOG_WARN, "kafka error", "error", rd_kafka_err2name(err), "reason", reason,
              "client", rd_kafka_name(rk), FP_KV_END);
}

/* Counts the brokers (not the bootstrap placeholders) whose connection is up. */
static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    kafka_state *st = opaque;
    cJSON *root = cJSON_ParseWithLength(json, len);
    const cJSON *brokers, *b;
    int up = 0;

    (void)rk;
    if (root == NULL)
        return 0;
    brokers = cJSON_GetObjectItemCaseSensitive(root, "brokers");
    cJSON_ArrayForEach(b, brokers)
    {
        const cJSON *nodeid = cJSON_GetObjectItemCaseSensitive(b, "nodeid");
        const cJSON *state = cJSON_GetObjectItemCaseSensitive(b, "state");

        if (cJSON_IsNumber(nodeid) && nodeid->valueint >= 0 && cJSON_IsString(state) &&
            strcmp(state->valuestring, "UP") == 0)
            up++;
    }
    atomic_store(&st->brokers_up, up);
    cJSON_Delete(root);
    return 0; /* librdkafka frees json */
}

int fp_kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                      size_t err_size)
{
    char errstr[512];

    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        snprintf(err, err_size, "kafka property %s: %s", name, errstr);
        return -1;
    }
    return 0;
}

int fp_kafka_env_to_property(const char *env_name, const char *prefix, char *out, size_t out_size)
{
    size_t plen = strlen(prefix);
    size_t i = 0;

    if (strncmp(env_name, prefix, plen) != 0)
        return -1;
    for (const char *p = env_name + plen; *p != '\0' && *p != '='; p++) {
        if (i + 1 >= out_size)
            return -1;
        out[i++] = *p == '_' ? '.' : (char)tolower((unsigned char)*p);
    }
    if (i == 0)
        return -1;
    out[i] = '\0';
    return 0;
}

/* Applies RDKAFKA_* (both roles) then RDKAFKA_CONSUMER_* or RDKAFKA_PRODUCER_*. */
static int apply_env(rd_kafka_conf_t *conf, fp_kafka_role role, char *err, size_t err_size)
{
    const char *own = role == FP_KAFKA_CONSUMER ? "RDKAFKA_CONSUMER_" : "RDKAFKA_PRODUCER_";

    for (int pass = 0; pass < 2; pass++) {
        for (char **e = environ; *e != NULL; e++) {
            char prop[256];
            const char *eq = strchr(*e, '=');
            bool sided = strncmp(*e, "RDKAFKA_CONSUMER_", 17) == 0 ||
                         strncmp(*e, "RDKAFKA_PRODUCER_", 17) == 0;

            if (eq == NULL)
                continue;
            if (pass == 0 &&
                (sided || fp_kafka_env_to_property(*e, "RDKAFKA_", prop, sizeof(prop)) < 0))
                continue;
            if (pass == 1 && fp_kafka_env_to_property(*e, own, prop, sizeof(prop)) < 0)
                continue;
            if (fp_kafka_conf_set(conf, prop, eq + 1, err, err_size) < 0)
                return -1;
        }
    }
    return 0;
}

rd_kafka_t *fp_kafka_new(fp_kafka_role role, const fp_common_config *cfg, void *user,
                         const fp_kafka_hooks *hooks, char *err, size_t err_size)
{
    static const char *const consumer_defaults[][2] = {
        {"enable.auto.offset.store", "false"},
        {"enable.auto.commit", "true"},
        {"auto.commit.interval.ms", "1000"},
        {"auto.offset.reset", "earliest"},
        {"enable.partition.eof", "false"},
        /* librdkafka prefetches up to 64 MiB by default, and one fetch response may carry 50 MiB:
         * 4 MiB of each keeps a replica's memory small. With librdkafka 2.0 (Debian 12's) a full
         * prefetch queue also stalls fetching for up to a second, which fp_stage undoes (it wakes
         * the fetcher, see fp_stage.h); without that, a lagging sink read 8,300 rows/s with
         * 4 MiB, 24,600 with 16 MiB and 38,500 with 32 MiB. A message larger than
         * fetch.max.bytes is still returned whole. */
        {"queued.max.messages.kbytes", "4096"},
        {"fetch.max.bytes", "4194304"},
        /* The broker answers a fetch once it holds 64 KiB for it or after 25 ms. With
         * librdkafka's 1 byte, each fetch under a steady stream returns a handful of messages
         * and the broker spends its CPU on requests: at 15,800 records/s through the three
         * stages on 2 shared cores this took the whole pipeline's p99 from 5.9 s to 0.4-0.9 s
         * (the broker was the largest CPU user). At low rates a hop waits at most 25 ms. */
        {"fetch.min.bytes", "65536"},
        {"fetch.wait.max.ms", "25"},
    };
    static const char *const producer_defaults[][2] = {
        {"enable.idempotence", "true"},
        {"acks", "all"},
        {"message.timeout.ms", "0"},
        /* Larger produce requests, fewer of them: the same measurement as fetch.min.bytes. */
        {"linger.ms", "10"},
        {"partitioner", "murmur2_random"},
    };
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    kafka_state *st = calloc(1, sizeof(*st));
    rd_kafka_t *rk = NULL;
    size_t n;
    const char *const(*defaults)[2];

    if (conf == NULL || st == NULL) {
        snprintf(err, err_size, "out of memory");
        goto err;
    }
    st->user = user;
    if (fp_kafka_conf_set(conf, "bootstrap.servers", cfg->kafka_brokers, err, err_size) < 0 ||
        fp_kafka_conf_set(conf, "statistics.interval.ms", "1000", err, err_size) < 0 ||
        fp_kafka_conf_set(conf, "client.id", "fleetpipe", err, err_size) < 0)
        goto err;
    if (role == FP_KAFKA_CONSUMER) {
        defaults = consumer_defaults;
        n = sizeof(consumer_defaults) / sizeof(consumer_defaults[0]);
        if (fp_kafka_conf_set(conf, "group.id", cfg->kafka_group_id, err, err_size) < 0)
            goto err;
    } else {
        defaults = producer_defaults;
        n = sizeof(producer_defaults) / sizeof(producer_defaults[0]);
    }
    for (size_t i = 0; i < n; i++)
        if (fp_kafka_conf_set(conf, defaults[i][0], defaults[i][1], err, err_size) < 0)
            goto err;
    for (size_t i = 0; hooks != NULL && i < hooks->nprops; i++)
        if (fp_kafka_conf_set(conf, hooks->props[i][0], hooks->props[i][1], err, err_size) < 0)
            goto err;
    if (apply_env(conf, role, err, err_size) < 0)
        goto err;
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_stats_cb(conf, on_stats);
    if (hooks != NULL && hooks->rebalance_cb != NULL)
        rd_kafka_conf_set_rebalance_cb(conf, hooks->rebalance_cb);
    if (hooks != NULL && hooks->dr_msg_cb != NULL)
        rd_kafka_conf_set_dr_msg_cb(conf, hooks->dr_msg_cb);
    rd_kafka_conf_set_opaque(conf, st);
    /* rd_kafka_new takes the configuration only on success. */
    rk = rd_kafka_new(role == FP_KAFKA_CONSUMER ? RD_KAFKA_CONSUMER : RD_KAFKA_PRODUCER, conf, err,
                      err_size);
    if (rk == NULL)
        goto err;
    if (role == FP_KAFKA_CONSUMER)
        rd_kafka_poll_set_consumer(rk);
    return rk;
err:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    free(st);
    return NULL;
}

void fp_kafka_destroy(rd_kafka_t *rk)
{
    kafka_state *st;

    if (rk == NULL)
        return;
    st = rd_kafka_opaque(rk);
    rd_kafka_destroy(rk);
    free(st);
}

void *fp_kafka_user(rd_kafka_t *rk)
{
    kafka_state *st = rd_kafka_opaque(rk);

    return st != NULL ? st->user : NULL;
}

bool fp_kafka_connected(rd_kafka_t *rk)
{
    kafka_state *st = rd_kafka_opaque(rk);

    return st != NULL && atomic_load(&st->brokers_up) > 0 && !atomic_load(&st->fatal);
}

bool fp_kafka_fatal(rd_kafka_t *rk)
{
    kafka_state *st = rd_kafka_opaque(rk);

    return st != NULL && atomic_load(&st->fatal);
}
