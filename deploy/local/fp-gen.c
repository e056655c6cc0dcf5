/* fp-gen: writes canonical-JSON records, some of them twice and a few invalid payloads, into
 * telemetry.raw, and says exactly what it wrote, so a test or the demo can check the database
 * and the DLQ against it. Same seed, same bytes.
 *
 * Usage: fp-gen --brokers B [--topic T] [--devices N] [--first-device N] [--records N]
 *               [--duplicates N]
 *               [--invalid N] [--rate MSGS_PER_S] [--seed S] [--manifest FILE]
 *
 * The manifest has one line per distinct valid record ("valid DEVICE TS LAT LON") and one per
 * invalid payload ("invalid CODE"). The summary on stdout is one JSON object. */
#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/fp_args.h"
#include "common/fp_buf.h"
#include "common/fp_record.h"
#include "common/fp_time.h"

typedef struct gen_options {
    const char *brokers;
    const char *topic;
    int64_t devices;
    int64_t first_device;
    int64_t records;
    int64_t duplicates;
    int64_t invalid;
    int64_t rate;
    uint64_t seed;
    const char *manifest;
} gen_options;

/* xorshift64*: small, fast and the same everywhere for a given seed. */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}

/* A number in [0, 1) that depends only on the seed, the record and the field, so that a resent
 * record is byte for byte the one sent before. */
static double record_unit(const gen_options *o, long i, unsigned field)
{
    uint64_t x = (uint64_t)o->seed * UINT64_C(0x9E3779B97F4A7C15) ^
                 (uint64_t)i * 0xBF58476D1CE4E5B9u ^ (uint64_t)field * 0x94D049BB133111EBu;

    x ^= x >> 31;
    x *= UINT64_C(0xD6E8FEB86659FD93);
    x ^= x >> 32;
    return (double)(x >> 11) / 9007199254740992.0;
}

/* Fills o (holding the defaults) from argv. Returns FP_ARGS_RUN, or the exit status after
 * --help or a usage error. */
static int parse_options(int argc, char **argv, gen_options *o)
{
    const fp_arg args[] = {
        FP_ARG_KAFKA_BROKERS(&o->brokers),
        {.name = "topic",
         .type = FP_ARG_STRING,
         .dest = &o->topic,
         .metavar = "T",
         .help = "topic to produce to",
         .nonempty = true},
        {.name = "devices",
         .type = FP_ARG_INT,
         .dest = &o->devices,
         .metavar = "N",
         .help = "devices the records are spread over",
         .min = 1,
         .max = INT64_MAX},
        {.name = "first-device",
         .type = FP_ARG_INT,
         .dest = &o->first_device,
         .metavar = "N",
         .help = "number of the first device",
         .min = 0,
         .max = INT64_MAX},
        {.name = "records",
         .type = FP_ARG_INT,
         .dest = &o->records,
         .metavar = "N",
         .help = "distinct valid records",
         .min = 0,
         .max = INT64_MAX},
        {.name = "duplicates",
         .type = FP_ARG_INT,
         .dest = &o->duplicates,
         .metavar = "N",
         .help = "exact resends of earlier records",
         .min = 0,
         .max = INT64_MAX},
        {.name = "invalid",
         .type = FP_ARG_INT,
         .dest = &o->invalid,
         .metavar = "N",
         .help = "invalid payloads, every kind in turn",
         .min = 0,
         .max = INT64_MAX},
        {.name = "rate",
         .type = FP_ARG_INT,
         .dest = &o->rate,
         .metavar = "MSGS_PER_S",
         .help = "messages per second; 0: as fast as possible",
         .min = 0,
         .max = INT64_MAX},
        {.name = "seed",
         .type = FP_ARG_UINT,
         .dest = &o->seed,
         .metavar = "S",
         .help = "random seed: the same seed gives the same records within the hour",
         .umax = INT64_MAX},
        {.name = "manifest",
         .type = FP_ARG_STRING,
         .dest = &o->manifest,
         .metavar = "FILE",
         .help = "write the manifest of what was sent there",
         .nonempty = true},
        FP_ARG_END,
    };
    const fp_args_spec spec = {
        .program = "fp-gen",
        .summary = "Writes canonical-JSON records, some twice and some invalid, into a topic and "
                   "says\nexactly what it wrote.",
        .args = args};

    return fp_args_parse(&spec, argc, argv, NULL);
}

/* Builds valid record number i: device i % devices, one observation per device per 10 s. */
static void make_record(fp_record *r, long i, const gen_options *o, int64_t base_ms)
{
    long dev = o->first_device + i % o->devices;
    long k = i / o->devices;

    fp_record_reset(r);
    r->schema = 1;
    snprintf(r->device_id, sizeof(r->device_id), "35630704%07ld", dev);
    r->ts_ms = base_ms + (int64_t)k * 10000 + dev % 1000;
    r->priority = 0;
    r->event_io = 0;
    r->has_position = true;
    r->position.lat =
        (double)(int64_t)((55.6 + 0.01 * (double)(dev % 100) + 0.001 * record_unit(o, i, 1)) *
                          1e7) /
        1e7;
    r->position.lon =
        (double)(int64_t)((12.5 + 0.01 * (double)(dev % 100) + 0.001 * record_unit(o, i, 2)) *
                          1e7) /
        1e7;
    r->position.alt_m = 30;
    r->position.heading_deg = (double)(int)(360 * record_unit(o, i, 3));
    r->position.speed_kmh = (double)(int)(40 * record_unit(o, i, 4));
    r->position.satellites = 9;
    fp_record_add_io_uint(r, 239, k % 2);
    fp_record_add_io_uint(r, 66, 24000 + (uint64_t)(600 * record_unit(o, i, 5)));
    fp_record_add_metric_bool(r, "ignition", k % 2 == 1);
    fp_record_add_metric_number(r, "external_voltage_v",
                                24.0 + (double)(uint64_t)(600 * record_unit(o, i, 5)) / 1000);
    fp_record_add_metric_number(r, "odometer_m", (double)(1000000 + k * 50));
}

/* Invalid payload number i, one kind after the other, with the code the parser must give. */
static const char *make_invalid(long i, int64_t base_ms, fp_buf *out)
{
    char ts[32];

    fp_time_format_ms(base_ms, ts, sizeof(ts));
    fp_buf_clear(out);
    switch (i % 6) {
    case 0:
        fp_buf_printf(out, "{\"schema\":1,\"device_id\":\"356307049999999\",\"ts\":\"%s\"", ts);
        return "json_syntax";
    case 1:
        fp_buf_printf(out, "{\"schema\":1,\"ts\":\"%s\",\"n\":%ld}", ts, i);
        return "missing_device_id";
    case 2:
        fp_buf_printf(out,
                      "{\"schema\":1,\"device_id\":\"356307049999999\",\"ts\":\"yesterday\","
                      "\"n\":%ld}",
                      i);
        return "bad_timestamp";
    case 3:
        fp_buf_printf(out,
                      "{\"schema\":2,\"device_id\":\"356307049999999\",\"ts\":\"%s\","
                      "\"n\":%ld}",
                      ts, i);
        return "schema";
    case 4:
        fp_buf_printf(out,
                      "{\"schema\":1,\"device_id\":\"356307049999999\","
                      "\"ts\":\"1990-01-01T00:00:00.000Z\",\"n\":%ld}",
                      i);
        return "ts_out_of_range";
    default:
        fp_buf_printf(out, "\x01\x02garbage-%ld", i);
        return "unknown_format";
    }
}

static int produce(rd_kafka_t *rk, const char *topic, const char *key, const fp_buf *value)
{
    rd_kafka_resp_err_t err;
    size_t key_len = key != NULL ? strlen(key) : 0;

    while ((err = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_KEY((void *)key, key_len), RD_KAFKA_V_VALUE(value->data, value->len),
                RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(rk, 50);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "fp-gen: produce: %s\n", rd_kafka_err2str(err));
        return -1;
    }
    rd_kafka_poll(rk, 0);
    return 0;
}

static long delivery_failures;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR)
        delivery_failures++;
}

/* Paces the feed to o->rate messages per second (pacing load, not synchronisation). */
static void pace(const gen_options *o, long sent, int64_t start_ms)
{
    int64_t due, now;

    if (o->rate <= 0)
        return;
    due = start_ms + (int64_t)sent * 1000 / o->rate;
    now = fp_mono_ms();
    if (due > now) {
        struct timespec ts = {(time_t)((due - now) / 1000), (long)((due - now) % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

int main(int argc, char **argv)
{
    gen_options o = {.topic = "telemetry.raw", .devices = 20, .records = 1000, .seed = 1};
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    char errstr[512];
    fp_record rec;
    fp_buf value = {0};
    FILE *manifest = NULL;
    int64_t base_ms, start;
    long total, sent = 0, dup_every, inv_every, valid_i = 0, dup_i = 0, inv_i = 0;
    int rc = parse_options(argc, argv, &o);

    if (rc != FP_ARGS_RUN)
        return rc;
    rng_state = o.seed * UINT64_C(0x9E3779B97F4A7C15) + 1;
    /* A whole hour early enough that every record lies in the past; the same seed gives the
     * same bytes within that hour. */
    base_ms =
        ((fp_now_ms() - (int64_t)(o.records / o.devices + 1) * 10000) / 3600000 - 1) * 3600000;
    conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", o.brokers, errstr, sizeof(errstr)) != 0 ||
        rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr)) != 0 ||
        rd_kafka_conf_set(conf, "partitioner", "murmur2_random", errstr, sizeof(errstr)) != 0 ||
        rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "fp-gen: %s\n", errstr);
        return 2;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "fp-gen: %s\n", errstr);
        return 1;
    }
    if (o.manifest != NULL && (manifest = fopen(o.manifest, "w")) == NULL) {
        fprintf(stderr, "fp-gen: cannot write %s: %s\n", o.manifest, strerror(errno));
        rd_kafka_destroy(rk);
        return 1;
    }
    fp_record_init(&rec);
    total = o.records + o.duplicates + o.invalid;
    dup_every = o.duplicates > 0 ? total / o.duplicates : 0;
    inv_every = o.invalid > 0 ? total / o.invalid : 0;
    start = fp_mono_ms();
    while (sent < total) {
        const char *key = NULL;
        char keybuf[64];

        if (inv_i < o.invalid && (valid_i >= o.records || (sent + 1) % inv_every == 0)) {
            const char *code = make_invalid(inv_i++, base_ms, &value);

            if (manifest != NULL)
                fprintf(manifest, "invalid %s\n", code);
        } else if (dup_i < o.duplicates && valid_i > 0 &&
                   (valid_i >= o.records || (sent + 1) % dup_every == 0)) {
            /* Resend an earlier record exactly, as a unit that missed its acknowledgement. */
            make_record(&rec, (long)(rng_next() % (uint64_t)valid_i), &o, base_ms);
            fp_buf_clear(&value);
            fp_record_encode_json(&rec, &value);
            snprintf(keybuf, sizeof(keybuf), "%s", rec.device_id);
            key = keybuf;
            dup_i++;
        } else if (valid_i < o.records) {
            char ts[32];

            make_record(&rec, valid_i++, &o, base_ms);
            fp_buf_clear(&value);
            fp_record_encode_json(&rec, &value);
            snprintf(keybuf, sizeof(keybuf), "%s", rec.device_id);
            key = keybuf;
            fp_time_format_ms(rec.ts_ms, ts, sizeof(ts));
            if (manifest != NULL)
                fprintf(manifest, "valid %s %s %.7f %.7f\n", rec.device_id, ts, rec.position.lat,
                        rec.position.lon);
        } else {
            break;
        }
        if (produce(rk, o.topic, key, &value) < 0)
            break;
        sent++;
        pace(&o, sent, start);
    }
    rd_kafka_flush(rk, 60000);
    printf("{\"sent\":%ld,\"valid\":%ld,\"duplicates\":%ld,\"invalid\":%ld,"
           "\"undelivered\":%ld}\n",
           sent, valid_i, dup_i, inv_i, delivery_failures + rd_kafka_outq_len(rk));
    if (manifest != NULL)
        fclose(manifest);
    fp_record_free(&rec);
    fp_buf_free(&value);
    rd_kafka_destroy(rk);
    return delivery_failures == 0 ? 0 : 1;
}
