/* fp-dlq: reads a DLQ topic from the beginning to its end and prints one line per message:
 *
 *   DIGEST CODE STAGE SOURCE_TOPIC/PARTITION/OFFSET KEY
 *
 * DIGEST is a 64-bit FNV-1a of the message value (the failed input, unchanged), so the same bad
 * input delivered twice (at-least-once between stages, a producer retry) shows as one digest.
 * For operators reading the DLQ and for the fault-injection suite.
 *
 * Usage: fp-dlq --brokers B [--topic telemetry.dlq] [--timeout-ms 10000]
 *
 * Exit codes: 0 the whole topic was read, 1 it could not be, 2 bad usage. */
#include <limits.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fp_args.h"
#include "common/fp_time.h"
#include "common/fp_hash.h"

/* Prints a header's value (or "-") without spaces, so that lines split on spaces. */
static void print_header(rd_kafka_headers_t *h, const char *name)
{
    const void *v = NULL;
    size_t len = 0;

    if (h == NULL || rd_kafka_header_get_last(h, name, &v, &len) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        v == NULL) {
        fputc('-', stdout);
        return;
    }
    for (size_t i = 0; i < len; i++) {
        char c = ((const char *)v)[i];

        fputc(c == ' ' || c == '\n' ? '_' : c, stdout);
    }
}

int main(int argc, char **argv)
{
    const char *brokers = NULL, *topic = "telemetry.dlq";
    int64_t timeout_ms = 10000;
    const fp_arg args[] = {
        FP_ARG_KAFKA_BROKERS(&brokers),
        {.name = "topic",
         .type = FP_ARG_STRING,
         .dest = &topic,
         .metavar = "T",
         .help = "the DLQ topic",
         .nonempty = true},
        {.name = "timeout-ms",
         .type = FP_ARG_INT,
         .dest = &timeout_ms,
         .metavar = "MS",
         .help = "how long reading the topic to its end may take",
         .min = 1,
         .max = INT_MAX},
        FP_ARG_END,
    };
    const fp_args_spec spec = {.program = "fp-dlq",
                               .summary =
                                   "Reads a DLQ topic to its end and prints one line per message:\n"
                                   "  DIGEST CODE STAGE SOURCE_TOPIC/PARTITION/OFFSET KEY",
                               .args = args};
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_partition_list_t *parts;
    char err[512];
    int remaining = 0;
    int64_t deadline;
    int rc = fp_args_parse(&spec, argc, argv, NULL);

    if (rc != FP_ARGS_RUN)
        return rc;
    conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof(err)) != 0 ||
        rd_kafka_conf_set(conf, "group.id", "fp-dlq", err, sizeof(err)) != 0 ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof(err)) != 0 ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err)) != 0 ||
        rd_kafka_conf_set(conf, "fetch.wait.max.ms", "10", err, sizeof(err)) != 0) {
        fprintf(stderr, "fp-dlq: %s\n", err);
        return 2;
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (rk == NULL) {
        fprintf(stderr, "fp-dlq: %s\n", err);
        return 1;
    }
    {
        rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);

        if (rd_kafka_metadata(rk, 0, t, &md, (int)timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR ||
            md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "fp-dlq: no metadata for %s\n", topic);
            return 1;
        }
        rd_kafka_topic_destroy(t);
    }
    /* Assign every partition from the beginning, without a group join. */
    parts = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
    for (int i = 0; i < md->topics[0].partition_cnt; i++)
        rd_kafka_topic_partition_list_add(parts, topic, md->topics[0].partitions[i].id)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    remaining = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    deadline = fp_mono_ms() + timeout_ms;
    while (remaining > 0 && fp_mono_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        rd_kafka_headers_t *h = NULL;

        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            remaining--;
        } else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_message_headers(m, &h);
            printf("%016llx ", (unsigned long long)fp_hash_bytes(m->payload, m->len));
            print_header(h, "fp.error.code");
            fputc(' ', stdout);
            print_header(h, "fp.error.stage");
            fputc(' ', stdout);
            print_header(h, "fp.error.topic");
            fputc('/', stdout);
            print_header(h, "fp.error.partition");
            fputc('/', stdout);
            print_header(h, "fp.error.offset");
            printf(" %.*s\n", (int)m->key_len, m->key != NULL ? (const char *)m->key : "");
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (remaining > 0) {
        fprintf(stderr, "fp-dlq: %d partitions not read to their end in time\n", remaining);
        return 1;
    }
    return 0;
}
