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
#include <inttypes.h>
#include <limits.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fp_args.h"
#include "common/fp_time.h"

#define MAX_TOPICS     64
#define MAX_PARTITIONS 100000

typedef struct {
    char name[250];
    int partitions;
} topic_spec;

/* The command line: the options and the topics. */
typedef struct topics_options {
    const char *brokers;
    int64_t partitions;
    int64_t replication;
    int64_t timeout_ms;
    topic_spec specs[MAX_TOPICS];
    size_t n;
} topics_options;

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
        int64_t p;

        if (fp_arg_parse_int(colon + 1, 1, MAX_PARTITIONS, &p) != 0)
            return -1;
        spec->partitions = (int)p;
    }
    return 0;
}

/* Fills o (holding the defaults) from argv. Returns FP_ARGS_RUN, or the exit status after
 * --help or a usage error. */
static int parse_options(int argc, char **argv, topics_options *o)
{
    const fp_arg args[] = {
        FP_ARG_KAFKA_BROKERS(&o->brokers),
        {.name = "partitions",
         .type = FP_ARG_INT,
         .dest = &o->partitions,
         .metavar = "N",
         .help = "partitions of each topic without its own count",
         .min = 1,
         .max = MAX_PARTITIONS},
        {.name = "replication",
         .type = FP_ARG_INT,
         .dest = &o->replication,
         .metavar = "N",
         .help = "replication factor",
         .min = 1,
         .max = 32767},
        {.name = "timeout-ms",
         .type = FP_ARG_INT,
         .dest = &o->timeout_ms,
         .metavar = "MS",
         .help = "how long the broker may take to have every topic",
         .min = 1,
         .max = INT_MAX},
        FP_ARG_END,
    };
    const fp_args_spec spec = {
        .program = "fp-topics",
        .summary = "Creates Kafka topics and waits until the broker lists each of them.",
        .positional = "TOPIC[:PARTITIONS]...",
        .args = args};
    int first;
    int rc = fp_args_parse(&spec, argc, argv, &first);

    if (rc != FP_ARGS_RUN)
        return rc;
    if (first == argc)
        return fp_args_usage_error(&spec, "no topic given");
    if (argc - first > MAX_TOPICS)
        return fp_args_usage_error(&spec, "more than %d topics", MAX_TOPICS);
    for (int i = first; i < argc; i++) {
        if (parse_topic(argv[i], (int)o->partitions, &o->specs[o->n]) < 0)
            return fp_args_usage_error(&spec, "'%s' is not TOPIC[:PARTITIONS] (1..%d)", argv[i],
                                       MAX_PARTITIONS);
        o->n++;
    }
    return FP_ARGS_RUN;
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

int main(int argc, char **argv)
{
    topics_options o = {.partitions = 1, .replication = 1, .timeout_ms = 60000};
    char err[512];
    int rc = parse_options(argc, argv, &o);

    if (rc != FP_ARGS_RUN)
        return rc;
    rc = 1; /* until every topic is ready */

    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    if (rd_kafka_conf_set(conf, "bootstrap.servers", o.brokers, err, sizeof(err)) != 0 ||
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
    int64_t deadline = fp_mono_ms() + o.timeout_ms;
    int created = 1;

    while (created == 1 && fp_mono_ms() < deadline) {
        created = create_once(rk, o.specs, o.n, (int)o.replication, deadline);
        if (created == 1)
            rd_kafka_poll(rk, 200); /* paces the retries while the broker starts */
    }
    if (created == 0) {
        size_t ready = 0;

        /* Created is not yet visible everywhere: wait until metadata lists every topic. */
        while (ready < o.n && fp_mono_ms() < deadline) {
            if (topic_ready(rk, o.specs[ready].name))
                ready++;
            else
                rd_kafka_poll(rk, 100);
        }
        rc = ready == o.n ? 0 : 1;
    }
    if (rc != 0)
        fprintf(stderr, "fp-topics: topics not ready within %" PRId64 " ms (brokers %s)\n",
                o.timeout_ms, o.brokers);
    rd_kafka_destroy(rk);
    return rc;
}
