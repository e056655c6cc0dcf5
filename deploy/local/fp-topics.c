/* fp-topics: creates Kafka topics through librdkafka's admin API and waits until the broker
 * reports each of them with its partitions. A topic that exists already is fine (its partition
 * count is left as it is). For the embedded stack (deploy/local/kafka.sh) and for operators who
 * want the pipeline's topics without Kafka's Java tools.
 *
 * Usage: fp-topics --brokers B [--partitions N] [--replication N] [--timeout-ms MS]
 *                  TOPIC[:PARTITIONS]...
 *
 * Retries until the deadline while the broker is not reachable yet (it may still be starting).
 * Exit codes: 0 every topic exists, 1 the deadline passed or the broker refused, 2 bad usage. */
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fp_time.h"

#define MAX_TOPICS 64

typedef struct {
    char name[250];
    int partitions;
} topic_spec;

/* Parses a positive decimal integer; returns -1 for anything else. */
static long parse_positive(const char *s)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);

    return (end == s || *end != '\0' || v <= 0) ? -1 : v;
}

/* Splits "name:partitions" into spec; partitions defaults to def. Returns 0 or -1. */
static int parse_topic(const char *arg, int def, topic_spec *spec)
{
    const char *colon = strrchr(arg, ':');
    size_t len = colon != NULL ? (size_t)(colon - arg) : strlen(arg);

    if (len == 0 || len >= sizeof(spec->name))
        return -1;
    memcpy(spec->name, arg, len);
    spec->name[len] = '\0';
    spec->partitions = def;
    if (colon != NULL) {
        long p = parse_positive(colon + 1);

        if (p < 0 || p > 100000)
            return -1;
        spec->partitions = (int)p;
    }
    return 0;
}

/* Whether the broker's metadata lists topic with at least one partition and no error. */
static bool topic_ready(rd_kafka_t *rk, const char *topic)
{
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    bool ok = false;

    if (rkt == NULL)
        return false;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR && md != NULL) {
        ok = md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
             md->topics[0].partition_cnt > 0;
    }
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return ok;
}

/* Sends one CreateTopics request for specs[0..n) and waits for its answer until deadline_ms.
 * Returns 0 when every topic was created or existed, 1 when the request should be repeated
 * (timeout, broker not reachable), -1 when the broker refused a topic for good. */
static int create_once(rd_kafka_t *rk, const topic_spec *specs, size_t n, int replication,
                       int64_t deadline_ms)
{
    rd_kafka_NewTopic_t *nt[MAX_TOPICS];
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_event_t *ev = NULL;
    char err[256];
    int rc = 1;
    size_t made = 0;

    for (; made < n; made++) {
        nt[made] = rd_kafka_NewTopic_new(specs[made].name, specs[made].partitions, replication, err,
                                         sizeof(err));
        if (nt[made] == NULL) {
            fprintf(stderr, "fp-topics: %s: %s\n", specs[made].name, err);
            rc = -1;
            goto out;
        }
    }
    rd_kafka_CreateTopics(rk, nt, n, NULL, q);
    while (ev == NULL && fp_mono_ms() < deadline_ms)
        ev = rd_kafka_queue_poll(q, 500);
    if (ev == NULL)
        goto out;
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        /* The request itself failed: the broker is not there yet; try again. */
        goto out;
    }
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t cnt = 0;
    const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &cnt);

    rc = 0;
    for (size_t i = 0; i < cnt; i++) {
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);

        if (e == RD_KAFKA_RESP_ERR_NO_ERROR || e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            continue;
        fprintf(stderr, "fp-topics: %s: %s\n", rd_kafka_topic_result_name(tr[i]),
                rd_kafka_topic_result_error_string(tr[i]));
        /* Transient answers while a fresh controller settles are worth another request. */
        if (rc == 0)
            rc = (e == RD_KAFKA_RESP_ERR__TIMED_OUT || e == RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT ||
                  e == RD_KAFKA_RESP_ERR_NOT_CONTROLLER || e == RD_KAFKA_RESP_ERR__TRANSPORT)
                     ? 1
                     : -1;
    }
out:
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    for (size_t i = 0; i < made; i++)
        rd_kafka_NewTopic_destroy(nt[i]);
    rd_kafka_queue_destroy(q);
    return rc;
}

static int usage(void)
{
    fprintf(stderr, "usage: fp-topics --brokers B [--partitions N] [--replication N] "
                    "[--timeout-ms MS] TOPIC[:PARTITIONS]...\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *brokers = NULL;
    long partitions = 1, replication = 1, timeout_ms = 60000;
    topic_spec specs[MAX_TOPICS];
    size_t n = 0;
    int i, rc = 1;
    char err[512];

    for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (i + 1 >= argc)
            return usage();
        if (strcmp(argv[i], "--brokers") == 0)
            brokers = argv[i + 1];
        else if (strcmp(argv[i], "--partitions") == 0)
            partitions = parse_positive(argv[i + 1]);
        else if (strcmp(argv[i], "--replication") == 0)
            replication = parse_positive(argv[i + 1]);
        else if (strcmp(argv[i], "--timeout-ms") == 0)
            timeout_ms = parse_positive(argv[i + 1]);
        else
            return usage();
    }
    if (brokers == NULL || partitions < 0 || partitions > 100000 || replication < 0 ||
        replication > 32767 || timeout_ms < 0 || i >= argc)
        return usage();
    for (; i < argc; i++) {
        if (n == MAX_TOPICS || parse_topic(argv[i], (int)partitions, &specs[n]) < 0)
            return usage();
        n++;
    }

    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof(err)) != 0 ||
        rd_kafka_conf_set(conf, "log_level", "2", err, sizeof(err)) != 0) {
        fprintf(stderr, "fp-topics: %s\n", err);
        rd_kafka_conf_destroy(conf);
        return 2;
    }
    /* rd_kafka_new takes the configuration only on success. */
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));

    if (rk == NULL) {
        fprintf(stderr, "fp-topics: %s\n", err);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    int64_t deadline = fp_mono_ms() + timeout_ms;
    int created = 1;

    while (created == 1 && fp_mono_ms() < deadline) {
        created = create_once(rk, specs, n, (int)replication, deadline);
        if (created == 1)
            rd_kafka_poll(rk, 200); /* paces the retries while the broker starts */
    }
    if (created == 0) {
        size_t ready = 0;

        /* Created is not yet visible everywhere: wait until metadata lists every topic. */
        while (ready < n && fp_mono_ms() < deadline) {
            if (topic_ready(rk, specs[ready].name))
                ready++;
            else
                rd_kafka_poll(rk, 100);
        }
        rc = ready == n ? 0 : 1;
    }
    if (rc != 0)
        fprintf(stderr, "fp-topics: topics not ready within %ld ms (brokers %s)\n", timeout_ms,
                brokers);
    rd_kafka_destroy(rk);
    return rc;
}
