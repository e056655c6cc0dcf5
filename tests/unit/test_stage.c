/* Tests of common/fp_stage.c and fp_kafka_output.c, the stage runtime, on librdkafka's
 * in-process mock cluster (no network beyond loopback): the pause hysteresis, a run under eager
 * and cooperative rebalancing, and a fatal error under transactions, which must abort the open
 * transaction — never commit it. */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fp_kafka_output.h"
#include "common/fp_log.h"
#include "common/fp_signal.h"
#include "common/fp_stage.h"
#include "fp_test.h"
#include "common/fp_time.h"

FP_TEST(stage_pause_hysteresis)
{
    fp_stage_load l = {.inflight = 0, .max_inflight = 100, .bytes = 0, .max_bytes = 1000};

    FP_CHECK(!fp_stage_should_pause(false, &l));
    l.inflight = 100; /* the message bound */
    FP_CHECK(fp_stage_should_pause(false, &l));
    l.inflight = 60; /* below the bound, above half: stays paused */
    FP_CHECK(fp_stage_should_pause(true, &l));
    FP_CHECK(!fp_stage_should_pause(false, &l)); /* and stays running */
    l.inflight = 50;
    FP_CHECK(!fp_stage_should_pause(true, &l)); /* resumes at half */
    l.bytes = 1000;                             /* the byte bound alone pauses */
    FP_CHECK(fp_stage_should_pause(false, &l));
    l.bytes = 600;
    FP_CHECK(fp_stage_should_pause(true, &l));
    l.bytes = 400;
    FP_CHECK(!fp_stage_should_pause(true, &l));
    l.hold = true; /* the output retries: pause whatever the load */
    FP_CHECK(fp_stage_should_pause(false, &l));
    FP_CHECK(fp_stage_should_pause(true, &l));
}

/* A mock cluster with topics in, out, dlq (one partition each) and `n` messages in `in`. */
typedef struct mock {
    rd_kafka_t *owner;
    rd_kafka_mock_cluster_t *mc;
    char brokers[256];
} mock;

static int mock_start_sized(mock *m, int n, size_t size)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *p;

    rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof(errstr));
    m->owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (m->owner == NULL)
        return -1;
    m->mc = rd_kafka_mock_cluster_new(m->owner, 1);
    if (m->mc == NULL)
        return -1;
    snprintf(m->brokers, sizeof(m->brokers), "%s", rd_kafka_mock_cluster_bootstraps(m->mc));
    rd_kafka_mock_topic_create(m->mc, "in", 1, 1);
    rd_kafka_mock_topic_create(m->mc, "out", 1, 1);
    rd_kafka_mock_topic_create(m->mc, "dlq", 1, 1);
    conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", m->brokers, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof(errstr));
    p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (p == NULL)
        return -1;
    for (int i = 0; i < n; i++) {
        char v[2048];
        size_t len = (size_t)snprintf(v, sizeof(v), "m%d", i);

        /* Padded to `size` bytes (at most the buffer) after the number. */
        for (; len < size && len < sizeof(v); len++)
            v[len] = '.';
        rd_kafka_producev(p, RD_KAFKA_V_TOPIC("in"), RD_KAFKA_V_PARTITION(0),
                          RD_KAFKA_V_VALUE(v, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_END);
    }
    rd_kafka_flush(p, 10000);
    rd_kafka_destroy(p);
    return 0;
}

static int mock_start(mock *m, int n)
{
    return mock_start_sized(m, n, 0);
}

static void mock_stop(mock *m)
{
    if (m->mc != NULL)
        rd_kafka_mock_cluster_destroy(m->mc);
    if (m->owner != NULL)
        rd_kafka_destroy(m->owner);
}

/* Messages in `topic` a consumer with this isolation level reads within a few seconds. */
static int count_messages(const mock *m, const char *topic, const char *isolation)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_t *c;
    int n = 0;
    int64_t deadline = fp_mono_ms() + 10000;

    rd_kafka_conf_set(conf, "bootstrap.servers", m->brokers, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "group.id", "test-reader", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "isolation.level", isolation, errstr, sizeof(errstr));
    /* The end of the partition (for read_committed: of what is committed) ends the count. */
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof(errstr));
    c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (c == NULL)
        return -1;
    rd_kafka_topic_partition_list_add(parts, topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(c, parts);
    while (fp_mono_ms() < deadline) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(c, 100);

        if (msg == NULL)
            continue;
        if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR)
            n++;
        if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            rd_kafka_message_destroy(msg);
            break;
        }
        rd_kafka_message_destroy(msg);
    }
    if (fp_mono_ms() >= deadline)
        n = -1; /* the end was never reached: no count */
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return n;
}

/* The offset the group committed on in/0 (-1 when none). */
static int64_t committed_offset(const mock *m, const char *group)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_t *c;
    int64_t off = -2;

    rd_kafka_conf_set(conf, "bootstrap.servers", m->brokers, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof(errstr));
    c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (c == NULL)
        return -2;
    rd_kafka_topic_partition_list_add(parts, "in", 0);
    if (rd_kafka_committed(c, parts, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR)
        off = parts->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_destroy(c);
    return off < 0 ? -1 : off;
}

typedef struct run_ctx {
    int handled;
    int fail_at;  /* the handler fails on this message (0-based), -1: never */
    int stop_at;  /* a stop is requested once this many are handled, -1: never */
    int in_order; /* messages whose number was the one expected next */
    uint64_t wakeups_at_first, wakeups_at_stop; /* fp_stage_fetch_wakeups */
    /* After this many are handled, the handler seeks the partition to the next offset, as a
     * fetcher wake-up does, and reads both positions right after it (0: never). */
    int seek_after;
    int64_t librdkafka_position, stage_position;
} run_ctx;

/* The number of a message "m<n>…" (the payload is not NUL-terminated), or -1. */
static long message_number(const rd_kafka_message_t *msg)
{
    const char *p = msg->payload;
    long n = 0;
    size_t i = 1;

    if (msg->len < 2 || p[0] != 'm')
        return -1;
    for (; i < msg->len && p[i] >= '0' && p[i] <= '9'; i++)
        n = n * 10 + (p[i] - '0');
    return i > 1 ? n : -1;
}

/* Seeks msg's partition to the offset after msg and reads rd_kafka_position and
 * fp_stage_positions for it into rc. */
static void seek_and_look(fp_stage *st, const rd_kafka_message_t *msg, run_ctx *rc)
{
    rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1), *mine;
    rd_kafka_error_t *e;

    rd_kafka_topic_partition_list_add(one, "in", msg->partition)->offset = msg->offset + 1;
    e = rd_kafka_seek_partitions(fp_stage_consumer(st), one, 5000);
    FP_CHECK(e == NULL);
    if (e != NULL)
        rd_kafka_error_destroy(e);
    rd_kafka_position(fp_stage_consumer(st), one);
    rc->librdkafka_position = one->elems[0].offset;
    mine = fp_stage_positions(st);
    rc->stage_position = -1;
    for (int i = 0; mine != NULL && i < mine->cnt; i++)
        if (mine->elems[i].partition == msg->partition)
            rc->stage_position = mine->elems[i].offset;
    if (mine != NULL)
        rd_kafka_topic_partition_list_destroy(mine);
    rd_kafka_topic_partition_list_destroy(one);
}

static int echo(fp_stage *st, const rd_kafka_message_t *msg, void *ctx)
{
    run_ctx *rc = ctx;

    if (rc->handled == rc->fail_at) {
        fp_stage_fail(st, "test: the handler fails");
        return -1;
    }
    if (rc->handled == 0)
        rc->wakeups_at_first = fp_stage_fetch_wakeups(st);
    if (message_number(msg) == rc->handled)
        rc->in_order++;
    rc->handled++;
    if (rc->handled == rc->seek_after)
        seek_and_look(st, msg, rc);
    if (rc->handled == rc->stop_at) {
        rc->wakeups_at_stop = fp_stage_fetch_wakeups(st);
        fp_signal_request_stop();
    }
    return fp_kafka_output_emit(st, "k", 1, msg->payload, msg->len);
}

/* Runs one stage on the mock until it stops; returns its exit code. */
static int run_stage(const mock *m, const char *delivery, const char *strategy, run_ctx *rc)
{
    fp_common_config cfg = {
        .kafka_brokers = m->brokers,
        .kafka_group_id = "test-stage",
        .in_topic = "in",
        .out_topic = "out",
        .dlq_topic = "dlq",
        .shutdown_timeout_ms = 3000,
        .max_inflight = 1000,
        .max_inflight_bytes = 1 << 20,
        .delivery = delivery,
        .txn_interval_ms = 600000, /* open until the end */
        .transactional_id = "test-stage-1",
    };
    char err[256], env[64];
    fp_kafka_output *ko = fp_kafka_output_new(&cfg);
    fp_stage *st;
    int code = -1;

    snprintf(env, sizeof(env), "%s", strategy);
    setenv("RDKAFKA_CONSUMER_PARTITION_ASSIGNMENT_STRATEGY", env, 1);
    st = fp_stage_new("test", &cfg, fp_kafka_output_ops(ko), err, sizeof(err));
    if (st == NULL)
        fp_test_fail(__FILE__, __LINE__, "fp_stage_new: %s", err);
    else
        code = fp_stage_run(st, echo, NULL, rc);
    fp_stage_free(st);
    fp_kafka_output_free(ko);
    unsetenv("RDKAFKA_CONSUMER_PARTITION_ASSIGNMENT_STRATEGY");
    fp_signal_reset_stop();
    return code;
}

static void run_both_protocols(const char *strategy)
{
    mock m = {0};
    run_ctx rc = {.fail_at = -1, .stop_at = 10};

    fp_log_init("test", FP_LOG_ERROR);
    FP_CHECK_INT(mock_start(&m, 10), 0);
    FP_CHECK_INT(run_stage(&m, "at-least-once", strategy, &rc), 0);
    FP_CHECK_INT(rc.handled, 10);
    FP_CHECK_INT(count_messages(&m, "out", "read_uncommitted"), 10);
    /* The drain committed everything it delivered. */
    FP_CHECK_INT(committed_offset(&m, "test-stage"), 10);
    mock_stop(&m);
}

FP_TEST(stage_eager_rebalance_run)
{
    run_both_protocols("range");
}

FP_TEST(stage_cooperative_rebalance_run)
{
    run_both_protocols("cooperative-sticky");
}

/* Edge: a fatal error with a transaction open. Five records are in the open transaction when
 * the handler fails on the sixth; closing the consumer revokes the partition, and the revoke
 * must abort — committing would publish the five and move the group's offset past them. */
FP_TEST(stage_fatal_under_transaction_aborts)
{
    mock m = {0};
    run_ctx rc = {.fail_at = 5, .stop_at = -1};

    fp_log_init("test", FP_LOG_ERROR);
    FP_CHECK_INT(mock_start(&m, 10), 0);
    FP_CHECK_INT(run_stage(&m, "exactly-once", "cooperative-sticky", &rc), 1);
    FP_CHECK_INT(rc.handled, 5);
    FP_CHECK_INT(count_messages(&m, "out", "read_committed"), 0);
    FP_CHECK(committed_offset(&m, "test-stage") <= 0);
    mock_stop(&m);
}

/* The prefetch stall of librdkafka 2.0 (fp_stage.h): with a 16 KiB prefetch bound and 1 KiB
 * messages every fetch overfills the queue, so librdkafka waits for its next wake-up before it
 * fetches again. Runs a stage over 3000 such messages; every one must arrive once, in order. */
static void run_stall(const char *delivery, run_ctx *rc)
{
    mock m = {0};

    fp_log_init("test", FP_LOG_ERROR);
    FP_CHECK_INT(mock_start_sized(&m, 3000, 1024), 0);
    setenv("RDKAFKA_CONSUMER_QUEUED_MAX_MESSAGES_KBYTES", "16", 1);
    FP_CHECK_INT(run_stage(&m, delivery, "cooperative-sticky", rc), 0);
    unsetenv("RDKAFKA_CONSUMER_QUEUED_MAX_MESSAGES_KBYTES");
    FP_CHECK_INT(rc->handled, 3000);
    FP_CHECK_INT(rc->in_order, 3000);
    FP_CHECK_INT(count_messages(&m, "out",
                                strcmp(delivery, "exactly-once") == 0 ? "read_committed"
                                                                      : "read_uncommitted"),
                 3000);
    mock_stop(&m);
}

/* At least once, the stage wakes the fetcher by seeking to its own position. */
FP_TEST(stage_wakes_the_fetcher_after_a_full_prefetch)
{
    run_ctx rc = {.fail_at = -1, .stop_at = 3000};

    run_stall("at-least-once", &rc);
    FP_CHECK(rc.wakeups_at_stop > rc.wakeups_at_first);
}

FP_TEST(stage_stall_decisions)
{
    const int64_t pos[] = {10, RD_KAFKA_OFFSET_INVALID, 50, 7};
    const int64_t high[] = {12, 900, 80, -1};
    const int64_t caught_up[] = {10, 5, 50, 7};

    FP_CHECK(!fp_stage_prefetch_drained(0, 4096));
    FP_CHECK(!fp_stage_prefetch_drained(2047, 4096));
    FP_CHECK(fp_stage_prefetch_drained(2048, 4096));
    FP_CHECK(!fp_stage_prefetch_drained(1 << 20, 0)); /* bound unknown: never */
    /* Partition 1 has no position yet and partition 3 no watermark: neither counts. */
    FP_CHECK_INT(fp_stage_most_lagging(pos, high, 4), 2);
    FP_CHECK_INT(fp_stage_most_lagging(pos, caught_up, 4), -1);
    FP_CHECK_INT(fp_stage_most_lagging(pos, high, 0), -1);
}

/* Under a transactional output too: its offsets are the stage's own positions, which a seek
 * leaves alone. */
FP_TEST(stage_wakes_the_fetcher_under_transactions)
{
    run_ctx rc = {.fail_at = -1, .stop_at = 3000};

    run_stall("exactly-once", &rc);
    FP_CHECK(rc.wakeups_at_stop > rc.wakeups_at_first);
}

/* Right after a seek librdkafka no longer knows the partition's position (until its next
 * message), so a transaction committed then with rd_kafka_position's offsets carried none for
 * it, and its records were processed again after a restart (test_exactly_once.sh found 3,477
 * twice). The stage's positions still say where it is. (The mock keeps no transactional
 * offsets to read back; test_exactly_once.sh checks them on the real broker.) */
FP_TEST(stage_positions_survive_a_seek)
{
    mock m = {0};
    run_ctx rc = {.fail_at = -1, .stop_at = 10, .seek_after = 5};

    fp_log_init("test", FP_LOG_ERROR);
    FP_CHECK_INT(mock_start(&m, 10), 0);
    FP_CHECK_INT(run_stage(&m, "exactly-once", "cooperative-sticky", &rc), 0);
    FP_CHECK_INT(rc.handled, 10);
    FP_CHECK_INT(rc.in_order, 10);
    FP_CHECK_INT(rc.librdkafka_position, RD_KAFKA_OFFSET_INVALID);
    FP_CHECK_INT(rc.stage_position, 5);
    FP_CHECK_INT(count_messages(&m, "out", "read_committed"), 10);
    mock_stop(&m);
}
