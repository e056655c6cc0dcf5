/* passthrough: the baseline a Kafka stage is measured against — consume every message of a
 * topic in a consumer group and produce it unchanged to another topic, with the same client
 * producer settings fleetpipe uses (idempotent, murmur2 partitioner) and the embedded stack's
 * consumer timings, and nothing else (offsets auto-stored and auto-committed). Times from the first
 * message consumed to the delivery report of the last, so the group join is not counted.
 *
 * With --out - it only consumes: the baseline of a stage whose output is not Kafka (the sink).
 *
 * Usage: passthrough --brokers B --in TOPIC --out TOPIC|- --group G --count N [--timeout S]
 * Prints one JSON object: messages, seconds, messages_per_s. */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fp_time.h"

static long delivered;
static long failed;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR)
        failed++;
    else
        delivered++;
}

static int set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
    char err[256];

    if (rd_kafka_conf_set(conf, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "passthrough: %s\n", err);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *brokers = NULL, *in = NULL, *out = NULL, *group = NULL;
    long count = 0, consumed = 0;
    double timeout = 120, start = 0, deadline;
    rd_kafka_conf_t *cc = rd_kafka_conf_new(), *pc = rd_kafka_conf_new();
    rd_kafka_t *consumer, *producer;
    rd_kafka_topic_partition_list_t *topics;
    char err[512];

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--brokers") == 0)
            brokers = argv[i + 1];
        else if (strcmp(argv[i], "--in") == 0)
            in = argv[i + 1];
        else if (strcmp(argv[i], "--out") == 0)
            out = argv[i + 1];
        else if (strcmp(argv[i], "--group") == 0)
            group = argv[i + 1];
        else if (strcmp(argv[i], "--count") == 0)
            count = strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--timeout") == 0)
            timeout = strtod(argv[i + 1], NULL);
    }
    if (brokers == NULL || in == NULL || out == NULL || group == NULL || count <= 0) {
        fprintf(stderr, "usage: passthrough --brokers B --in T --out T|- --group G --count N\n");
        return 2;
    }
    if (set(cc, "bootstrap.servers", brokers) < 0 || set(cc, "group.id", group) < 0 ||
        set(cc, "auto.offset.reset", "earliest") < 0 ||
        set(cc, "queued.max.messages.kbytes", "4096") < 0 ||
        set(cc, "fetch.max.bytes", "4194304") < 0 || set(cc, "session.timeout.ms", "6000") < 0 ||
        set(cc, "heartbeat.interval.ms", "500") < 0 || set(pc, "bootstrap.servers", brokers) < 0 ||
        set(pc, "enable.idempotence", "true") < 0 || set(pc, "linger.ms", "5") < 0 ||
        set(pc, "partitioner", "murmur2_random") < 0)
        return 2;
    rd_kafka_conf_set_dr_msg_cb(pc, on_delivery);
    consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof(err));
    producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof(err));
    if (consumer == NULL || producer == NULL) {
        fprintf(stderr, "passthrough: %s\n", err);
        return 1;
    }
    rd_kafka_poll_set_consumer(consumer);
    topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, in, RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    deadline = fp_mono_seconds() + timeout;
    if (strcmp(out, "-") == 0)
        out = NULL;
    while ((consumed < count || (out != NULL && delivered + failed < count)) &&
           fp_mono_seconds() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(consumer, consumed < count ? 5 : 0);

        rd_kafka_poll(producer, 0);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_resp_err_t e;

            if (consumed == 0)
                start = fp_mono_seconds();
            if (out == NULL) {
                consumed++;
                delivered++;
                rd_kafka_message_destroy(m);
                continue;
            }
            while ((e = rd_kafka_producev(
                        producer, RD_KAFKA_V_TOPIC(out), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                        RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_VALUE(m->payload, m->len),
                        RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(producer, 10);
            if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
                failed++;
            consumed++;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_flush(producer, 10000);
    {
        double secs = fp_mono_seconds() - start;

        printf("{\"messages\":%ld,\"delivered\":%ld,\"seconds\":%.3f,\"messages_per_s\":%.0f}\n",
               consumed, delivered, secs, secs > 0 ? (double)consumed / secs : 0.0);
    }
    rd_kafka_consumer_close(consumer);
    rd_kafka_destroy(consumer);
    rd_kafka_destroy(producer);
    return delivered >= count ? 0 : 1;
}
