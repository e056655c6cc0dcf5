/*
 * devkafka: librdkafka's mock cluster as a standalone Kafka-protocol broker for the embedded
 * stack and the tests. The README ("The embedded stack") says what the mock does and does
 * not do; in short, it keeps ~5 MiB per partition and has no Admin API, so every topic is created
 * here, up front, with an explicit partition count.
 *
 * Start-up contract: the brokers listen on random ports of 127.0.0.1. Once every topic exists,
 * the first line on stdout is "bootstrap=<host:port,...>" (flushed), and with --bootstrap-file
 * the same list plus a newline is written atomically (PATH.tmp, then rename). A stale bootstrap
 * file is removed before the cluster starts and again on exit, so that a waiting script never
 * reads the address of a cluster that is gone. Logs are JSON lines on stderr.
 *
 * Control channel: with --control PATH, devkafka creates a FIFO at PATH (unless a FIFO is already
 * there) and reads commands from it, one per line; with --stdin it also reads them from stdin.
 * Writers may open, write and close the FIFO any number of times, e.g.
 *
 *     echo 'down 1' > "$FIFO"
 *
 * The commands are:
 *
 *     down <broker>                  disconnect the broker and refuse new connections
 *     up <broker>                    accept connections again
 *     rtt <broker> <ms>              add <ms> of round-trip delay to the broker's responses
 *     leader <topic> <part> <broker> move a partition's leadership ("none": leader-less)
 *     quit                           shut down as on SIGTERM
 *
 * Broker ids run from 1 to --brokers; "all" stands for every broker in down, up and rtt. At
 * start, partition p of every topic is led by broker 1 + (p % brokers), so a test knows which
 * partitions a "down" hits. A broker set down stays leader of its partitions until "leader"
 * moves them. "leader" only accepts topics devkafka created (the mock would silently create any
 * other name). Every command's outcome is logged as
 * {"msg":"command","command":"...","result":"ok"|"error"}; a bad command is logged and ignored.
 * Empty lines and lines starting with '#' are skipped. Commands are run one at a time, in order.
 *
 * devkafka runs until SIGTERM, SIGINT or "quit", then destroys the cluster, removes the FIFO if it
 * created it, and exits 0. Exit status 2 means bad options, 1 a failure to start.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "common/fp_args.h"
#include "common/fp_file.h"
#include "common/fp_log.h"
#include "common/fp_signal.h"

#ifndef FP_VERSION
#define FP_VERSION "dev"
#endif

#define DEFAULT_TOPICS     "telemetry.raw,telemetry.parsed,telemetry.enriched,telemetry.dlq"
#define DEFAULT_PARTITIONS 16
#define MAX_BROKERS        32
#define MAX_PARTITIONS     10000
#define MAX_TOPICS         64
#define MAX_TOPIC_NAME     249
#define MAX_COMMAND_LINE   512
#define MAX_LOG_LINE       4096
#define POLL_INTERVAL_MS   100

/* One topic to create: its name and partition count (0 until the default is applied). */
struct topic_spec {
    char name[MAX_TOPIC_NAME + 1];
    int partitions;
};

/* The effective configuration after option parsing. */
struct options {
    int brokers;
    int partitions;
    struct topic_spec topics[MAX_TOPICS];
    int topic_cnt;
    const char *bootstrap_file;
    const char *control_path;
    bool read_stdin;
};

/*
 * A command source (the control FIFO or stdin), read when poll() says so, and the partial line
 * read so far. A line longer than MAX_COMMAND_LINE is discarded up to its newline ("overlong" is
 * set meanwhile).
 */
struct line_reader {
    const char *name;
    int fd;
    char buf[MAX_COMMAND_LINE + 1];
    size_t len;
    bool overlong;
};

/* ---- Logging ---------------------------------------------------------------------------- */

/* The level named as in the JSON log ("error", "warn", "info", "debug"). */
static fp_log_level level_of(const char *name)
{
    fp_log_level level = FP_LOG_INFO;

    fp_log_level_parse(name, &level);
    return level;
}

/* Logs a line with one optional string field (key may be NULL). */
static void log_msg(const char *level, const char *msg, const char *key, const char *value)
{
    fp_log_kv(level_of(level), msg, key, value, FP_KV_END);
}

/* Forwards librdkafka's own log lines (syslog levels) into the JSON log. Called from any thread. */
static void on_rdkafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    /* The mock's handle has no bootstrap.servers by design; librdkafka's warning about it would
     * only mislead whoever reads the log. */
    if (strcmp(fac, "CONFWARN") == 0 && strstr(buf, "bootstrap.servers") != NULL)
        return;
    const char *lvl = level <= 3 ? "error" : level == 4 ? "warn" : level <= 6 ? "info" : "debug";
    fp_log_kv(level_of(lvl), buf, "source", "librdkafka", "facility", fac, FP_KV_END);
}

/* ---- Options ---------------------------------------------------------------------------- */

/* Returns true when name is a legal Kafka topic name: 1..249 of [A-Za-z0-9._-], not "." or "..". */
static bool topic_name_ok(const char *name, size_t len)
{
    if (len == 0 || len > MAX_TOPIC_NAME)
        return false;
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

/*
 * Parses a comma-separated list of "name" or "name:partitions" into opts->topics, replacing any
 * earlier list. Partition counts left 0 take --partitions later. Returns 0, or -1 with the
 * reason in why. An fp_arg_parse_fn for --topics (dest is the struct options).
 */
static int parse_topics(const char *list, void *dest, char *why, size_t why_size)
{
    struct options *opts = dest;
    const char *p = list;

    opts->topic_cnt = 0;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t item_len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        const char *colon = memchr(p, ':', item_len);
        size_t name_len = colon != NULL ? (size_t)(colon - p) : item_len;

        if (!topic_name_ok(p, name_len)) {
            snprintf(why, why_size, "bad topic name '%.*s'", (int)item_len, p);
            return -1;
        }
        if (opts->topic_cnt == MAX_TOPICS) {
            snprintf(why, why_size, "more than %d topics", MAX_TOPICS);
            return -1;
        }
        struct topic_spec *t = &opts->topics[opts->topic_cnt];
        memcpy(t->name, p, name_len);
        t->name[name_len] = '\0';
        t->partitions = 0;

        if (colon != NULL) {
            char num[16];
            size_t num_len = item_len - name_len - 1;
            int64_t v;
            if (num_len >= sizeof(num)) {
                num_len = 0; /* Too long to be valid: make fp_arg_parse_int reject it. */
            }
            memcpy(num, colon + 1, num_len);
            num[num_len] = '\0';
            if (fp_arg_parse_int(num, 1, MAX_PARTITIONS, &v) != 0) {
                snprintf(why, why_size, "bad partition count in '%.*s' (1..%d)", (int)item_len, p,
                         MAX_PARTITIONS);
                return -1;
            }
            t->partitions = (int)v;
        }
        for (int i = 0; i < opts->topic_cnt; i++) {
            if (strcmp(opts->topics[i].name, t->name) == 0) {
                snprintf(why, why_size, "'%s' listed twice", t->name);
                return -1;
            }
        }
        opts->topic_cnt++;

        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return 0;
}

/*
 * Fills opts from argv. Returns FP_ARGS_RUN, or the exit status after --help, --version or a
 * usage error.
 */
static int parse_options(int argc, char **argv, struct options *opts)
{
    int64_t brokers = 1, partitions = DEFAULT_PARTITIONS;
    char why[128];
    char version[128];
    const fp_arg args[] = {
        {.name = "brokers",
         .type = FP_ARG_INT,
         .dest = &brokers,
         .metavar = "N",
         .help = "number of brokers, ids 1..N (at most 32)",
         .min = 1,
         .max = MAX_BROKERS},
        {.name = "partitions",
         .type = FP_ARG_INT,
         .dest = &partitions,
         .metavar = "N",
         .help = "partitions of every topic without its own count",
         .min = 1,
         .max = MAX_PARTITIONS},
        {.name = "topics",
         .type = FP_ARG_CUSTOM,
         .dest = opts,
         .metavar = "LIST",
         .help = "comma-separated name or name:partitions",
         .parse = parse_topics,
         .def = DEFAULT_TOPICS},
        {.name = "bootstrap-file",
         .type = FP_ARG_STRING,
         .dest = &opts->bootstrap_file,
         .metavar = "PATH",
         .help = "write the bootstrap list there once the topics exist",
         .nonempty = true},
        {.name = "control",
         .type = FP_ARG_STRING,
         .dest = &opts->control_path,
         .metavar = "PATH",
         .help = "FIFO to read commands from (created if missing)",
         .nonempty = true},
        {.name = "stdin",
         .type = FP_ARG_FLAG,
         .dest = &opts->read_stdin,
         .help = "also read commands from stdin"},
        FP_ARG_END,
    };
    const fp_args_spec spec = {
        .program = "devkafka",
        .summary = "Runs librdkafka's mock cluster on 127.0.0.1 as a standalone Kafka broker.",
        .version = version,
        .epilog = "Commands: down <broker>|all, up <broker>|all, rtt <broker>|all <ms>,\n"
                  "          leader <topic> <partition> <broker>|none, quit\n",
        .args = args};
    int rc;

    memset(opts, 0, sizeof(*opts));
    snprintf(version, sizeof(version), "%s (librdkafka %s)", FP_VERSION, rd_kafka_version_str());
    if (parse_topics(DEFAULT_TOPICS, opts, why, sizeof(why)) != 0) {
        fprintf(stderr, "devkafka: default topics: %s\n", why);
        return FP_ARGS_USAGE;
    }
    rc = fp_args_parse(&spec, argc, argv, NULL);
    if (rc != FP_ARGS_RUN)
        return rc;
    opts->brokers = (int)brokers;
    opts->partitions = (int)partitions;
    for (int i = 0; i < opts->topic_cnt; i++) {
        if (opts->topics[i].partitions == 0)
            opts->topics[i].partitions = opts->partitions;
    }
    return FP_ARGS_RUN;
}

/* ---- Start-up helpers ------------------------------------------------------------------- */

/*
 * Opens the control FIFO at path, creating it when nothing is there; *created tells whether it
 * was created here (and must be removed on exit). It is opened O_RDWR so that this process is
 * always a writer too: writers that come and go never produce EOF. Returns the descriptor, or -1
 * after logging why (an existing non-FIFO file at path is an error).
 */
static int open_control_fifo(const char *path, bool *created)
{
    struct stat st;
    *created = false;
    if (mkfifo(path, 0600) == 0) {
        *created = true;
    } else if (errno != EEXIST) {
        log_msg("error", "cannot create control FIFO", "error", strerror(errno));
        return -1;
    }
    if (stat(path, &st) != 0 || !S_ISFIFO(st.st_mode)) {
        log_msg("error", "control path exists and is not a FIFO", "path", path);
        if (*created)
            unlink(path);
        *created = false;
        return -1;
    }
    int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        log_msg("error", "cannot open control FIFO", "error", strerror(errno));
        if (*created)
            unlink(path);
        *created = false;
        return -1;
    }
    return fd;
}

/* ---- Calls into the mock --------------------------------------------------------------- */

/*
 * The mock cluster and what is needed to call it safely.
 *
 * librdkafka 2.0.2's mock loses the wake-up of an operation (topic_create, set_leader,
 * set_down/up, set_rtt, ...) that is queued while its thread is still finishing the previous
 * one, and the caller then waits forever; even rd_kafka_mock_cluster_destroy() hangs after that.
 * Measured here: back-to-back calls hang within a few hundred, while calls that each wait for
 * the mock thread to be back in poll() never did (thousands, also under full CPU load). So every
 * call is followed by mock_settle(), which watches the thread's current system call in
 * /proc/self/task/TID/syscall.
 */
struct mock {
    rd_kafka_mock_cluster_t *cluster;
    char syscall_path[64]; /* Empty when the mock thread was not found: settle by sleeping. */
};

static void sleep_us(long us)
{
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = us % 1000000 * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/*
 * Finds librdkafka's "rdk:mock" thread among this process's threads and stores the path of its
 * syscall file in m. It retries for up to a second, because the thread names itself only once
 * it runs. Returns 0, or -1 when it was not found (m->syscall_path stays empty).
 */
static int mock_find_thread(struct mock *m)
{
    m->syscall_path[0] = '\0';
    for (int attempt = 0; attempt < 100; attempt++) {
        DIR *dir = opendir("/proc/self/task");
        if (dir == NULL)
            return -1;
        const struct dirent *e;
        while ((e = readdir(dir)) != NULL && m->syscall_path[0] == '\0') {
            char path[64];
            char comm[32] = "";
            if (e->d_name[0] < '1' || e->d_name[0] > '9' || strlen(e->d_name) > 20)
                continue; /* Not a thread id: ".", "..". */
            snprintf(path, sizeof(path), "/proc/self/task/%.20s/comm", e->d_name);
            FILE *f = fopen(path, "r");
            if (f == NULL)
                continue;
            if (fgets(comm, sizeof(comm), f) != NULL && strncmp(comm, "rdk:mock\n", 9) == 0)
                snprintf(m->syscall_path, sizeof(m->syscall_path), "/proc/self/task/%.20s/syscall",
                         e->d_name);
            fclose(f);
        }
        closedir(dir);
        if (m->syscall_path[0] != '\0')
            return 0;
        sleep_us(10000);
    }
    return -1;
}

/* Returns true when the thread behind path is blocked in poll() or ppoll(). */
static bool in_poll(const char *path)
{
    char line[128] = "";
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    bool got = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    if (!got || line[0] < '0' || line[0] > '9')
        return false; /* "running", or blocked outside a system call ("-1 ..."). */
    long nr = strtol(line, NULL, 10);
#ifdef SYS_poll
    if (nr == SYS_poll)
        return true;
#endif
#ifdef SYS_ppoll
    if (nr == SYS_ppoll)
        return true;
#endif
    return false;
}

/*
 * Waits until the mock thread is back in poll() after the call that just returned, which is when
 * the next call can be queued safely. Without the /proc file it sleeps 20 ms instead. After a
 * second it gives up waiting (the thread can be busy with clients) and logs a warning.
 */
static void mock_settle(const struct mock *m)
{
    if (m->syscall_path[0] == '\0') {
        sleep_us(20000);
        return;
    }
    for (int i = 0; i < 5000; i++) {
        if (in_poll(m->syscall_path))
            return;
        sleep_us(200);
    }
    log_msg("warn", "mock thread did not return to poll() within 1 s; going on", NULL, NULL);
}

/* ---- Commands --------------------------------------------------------------------------- */

/* Splits line in place at runs of spaces and tabs. Returns the number of words (at most max). */
static int split_words(char *line, char **words, int max)
{
    int n = 0;
    char *p = line;
    while (*p != '\0') {
        while (*p == ' ' || *p == '\t')
            *p++ = '\0';
        if (*p == '\0')
            break;
        if (n == max)
            return max + 1;
        words[n++] = p;
        while (*p != '\0' && *p != ' ' && *p != '\t')
            p++;
    }
    return n;
}

/* Parses a broker id in 1..brokers, or the word allow_word (if not NULL) as -1. */
static int parse_broker(const char *s, int brokers, const char *allow_word, int32_t *out)
{
    int64_t v;
    if (allow_word != NULL && strcmp(s, allow_word) == 0) {
        *out = -1;
        return 0;
    }
    if (fp_arg_parse_int(s, 1, brokers, &v) != 0)
        return -1;
    *out = (int32_t)v;
    return 0;
}

/*
 * Runs one command line against the cluster and logs the outcome. Sets *quit for "quit".
 * Never fails: a bad command is logged as an error and otherwise ignored.
 */
static void run_command(const struct mock *m, const struct options *opts, const char *line,
                        bool *quit)
{
    char copy[MAX_COMMAND_LINE + 1];
    char *w[5];
    const char *error = NULL;
    char detail[160];
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    int32_t broker;
    int64_t v;
    bool called = false;

    snprintf(copy, sizeof(copy), "%s", line);
    int n = split_words(copy, w, 4);
    if (n == 0 || w[0][0] == '#')
        return;

    if (strcmp(w[0], "down") == 0 || strcmp(w[0], "up") == 0) {
        if (n != 2 || parse_broker(w[1], opts->brokers, "all", &broker) != 0) {
            snprintf(detail, sizeof(detail), "usage: %s <broker 1..%d|all>", w[0], opts->brokers);
            error = detail;
        } else if (w[0][0] == 'd') {
            err = rd_kafka_mock_broker_set_down(m->cluster, broker);
            called = true;
        } else {
            err = rd_kafka_mock_broker_set_up(m->cluster, broker);
            called = true;
        }
    } else if (strcmp(w[0], "rtt") == 0) {
        if (n != 3 || parse_broker(w[1], opts->brokers, "all", &broker) != 0 ||
            fp_arg_parse_int(w[2], 0, 600000, &v) != 0) {
            snprintf(detail, sizeof(detail), "usage: rtt <broker 1..%d|all> <ms 0..600000>",
                     opts->brokers);
            error = detail;
        } else {
            err = rd_kafka_mock_broker_set_rtt(m->cluster, broker, (int)v);
            called = true;
        }
    } else if (strcmp(w[0], "leader") == 0) {
        const struct topic_spec *t = NULL;
        if (n == 4) {
            for (int i = 0; i < opts->topic_cnt; i++) {
                if (strcmp(opts->topics[i].name, w[1]) == 0)
                    t = &opts->topics[i];
            }
        }
        if (n != 4) {
            snprintf(detail, sizeof(detail),
                     "usage: leader <topic> <partition> <broker 1..%d|none>", opts->brokers);
            error = detail;
        } else if (t == NULL) {
            error = "unknown topic: leader only moves partitions of topics devkafka created";
        } else if (fp_arg_parse_int(w[2], 0, t->partitions - 1, &v) != 0) {
            snprintf(detail, sizeof(detail), "partition must be in 0..%d", t->partitions - 1);
            error = detail;
        } else if (parse_broker(w[3], opts->brokers, "none", &broker) != 0) {
            snprintf(detail, sizeof(detail), "broker must be in 1..%d or none", opts->brokers);
            error = detail;
        } else {
            err = rd_kafka_mock_partition_set_leader(m->cluster, t->name, (int32_t)v, broker);
            called = true;
        }
    } else if (strcmp(w[0], "quit") == 0) {
        if (n != 1)
            error = "usage: quit";
        else
            *quit = true;
    } else {
        error = "unknown command (down, up, rtt, leader, quit)";
    }

    if (called)
        mock_settle(m);
    if (error == NULL && err != RD_KAFKA_RESP_ERR_NO_ERROR)
        error = rd_kafka_err2str(err);

    fp_log_kv(error == NULL ? FP_LOG_INFO : FP_LOG_ERROR, "command", "command", line, "result",
              error == NULL ? "ok" : "error", error != NULL ? "error" : FP_KV_END, error,
              FP_KV_END);
}

/*
 * Reads once from r->fd (poll() said it is readable) and runs every complete line. One read per
 * call keeps a blocking stdin from stalling the loop; what is left is picked up by the next
 * poll(). Returns 0, or -1 when the source reached EOF or failed (the caller stops polling it).
 * Sets *quit on "quit"; lines after it in the same read are not run.
 */
static int drain_commands(struct line_reader *r, const struct mock *m, const struct options *opts,
                          bool *quit)
{
    char chunk[1024];
    ssize_t got = read(r->fd, chunk, sizeof(chunk));
    if (got < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    if (got < 0) {
        log_msg("error", "cannot read commands", "error", strerror(errno));
        return -1;
    }
    if (got == 0) {
        log_msg("info", "command source closed", "source", r->name);
        return -1;
    }
    for (ssize_t i = 0; i < got && !*quit; i++) {
        char c = chunk[i];
        if (c != '\n') {
            if (r->len < MAX_COMMAND_LINE)
                r->buf[r->len++] = c;
            else
                r->overlong = true;
            continue;
        }
        if (r->len > 0 && r->buf[r->len - 1] == '\r')
            r->len--;
        while (r->len > 0 && (r->buf[r->len - 1] == ' ' || r->buf[r->len - 1] == '\t'))
            r->len--;
        r->buf[r->len] = '\0';
        if (r->overlong) {
            fp_log_kv(FP_LOG_ERROR, "command", "result", "error", "error",
                      "command line too long; ignored", FP_KV_END);
        } else {
            const char *line = r->buf;
            while (*line == ' ' || *line == '\t')
                line++;
            run_command(m, opts, line, quit);
        }
        r->len = 0;
        r->overlong = false;
    }
    return 0;
}

/* ---- Main ------------------------------------------------------------------------------- */

/* Everything devkafka owns while it runs; devkafka_close() releases it in any state. */
struct devkafka {
    rd_kafka_t *rk;
    struct mock mock;
    struct line_reader readers[2];
    int reader_cnt;
    bool fifo_created;
};

/*
 * Opens the command sources: the control FIFO (--control) and stdin (--stdin). Returns 0, or -1
 * after logging why; what was opened is left in dk for devkafka_close().
 */
static int open_sources(struct devkafka *dk, const struct options *opts)
{
    if (opts->control_path != NULL) {
        int fd = open_control_fifo(opts->control_path, &dk->fifo_created);
        if (fd < 0)
            return -1;
        dk->readers[dk->reader_cnt++] = (struct line_reader){.name = "control", .fd = fd};
    }
    if (opts->read_stdin) {
        if (fcntl(STDIN_FILENO, F_GETFL) < 0) {
            log_msg("error", "--stdin given but stdin is not open", NULL, NULL);
            return -1;
        }
        dk->readers[dk->reader_cnt++] = (struct line_reader){.name = "stdin", .fd = STDIN_FILENO};
    }
    return 0;
}

/*
 * Makes broker 1 + (p % brokers) the leader of partition p, so that leadership is spread over
 * every broker (the mock would leave brokers above 3 without any) and tests know which
 * partitions a "down" hits. Returns the first error of the mock, or RD_KAFKA_RESP_ERR_NO_ERROR.
 */
static rd_kafka_resp_err_t spread_leaders(const struct mock *m, const struct topic_spec *t,
                                          int brokers)
{
    if (brokers == 1)
        return RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int p = 0; p < t->partitions; p++) {
        rd_kafka_resp_err_t err =
            rd_kafka_mock_partition_set_leader(m->cluster, t->name, p, 1 + p % brokers);
        mock_settle(m);
        if (err)
            return err;
    }
    return RD_KAFKA_RESP_ERR_NO_ERROR;
}

/*
 * Creates the mock cluster on a throwaway producer handle (the mock needs one for its
 * bookkeeping; it never sends anything) and every topic. Returns 0, or -1 after logging why;
 * what was created is left in dk for devkafka_close().
 */
static int start_cluster(struct devkafka *dk, const struct options *opts)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, on_rdkafka_log);
    if (rd_kafka_conf_set(conf, "client.id", "devkafka", errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
        log_msg("error", "cannot configure the mock's client handle", "error", errstr);
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    dk->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (dk->rk == NULL) {
        /* On failure rd_kafka_new() leaves conf with the caller. */
        log_msg("error", "cannot create the mock's client handle", "error", errstr);
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    conf = NULL; /* Owned by dk->rk now. */

    dk->mock.cluster = rd_kafka_mock_cluster_new(dk->rk, opts->brokers);
    if (dk->mock.cluster == NULL) {
        log_msg("error", "cannot create the mock cluster", NULL, NULL);
        return -1;
    }
    if (mock_find_thread(&dk->mock) != 0)
        log_msg("warn", "mock thread not found in /proc; spacing mock calls by 20 ms", NULL, NULL);
    /* The mock ignores the replication factor: every partition's replicas are brokers 1..3 (or
     * fewer), with a random leader among them. */
    int replication = opts->brokers;
    for (int i = 0; i < opts->topic_cnt; i++) {
        const struct topic_spec *t = &opts->topics[i];
        rd_kafka_resp_err_t err =
            rd_kafka_mock_topic_create(dk->mock.cluster, t->name, t->partitions, replication);
        mock_settle(&dk->mock);
        char parts[16];

        snprintf(parts, sizeof(parts), "%d", (int)t->partitions);
        fp_log_kv(err ? FP_LOG_ERROR : FP_LOG_INFO, err ? "cannot create topic" : "topic created",
                  "topic", t->name, "partitions", parts, err ? "error" : FP_KV_END,
                  rd_kafka_err2str(err), FP_KV_END);
        if (err)
            return -1;
        err = spread_leaders(&dk->mock, t, opts->brokers);
        if (err) {
            log_msg("error", "cannot place partition leaders", "error", rd_kafka_err2str(err));
            return -1;
        }
    }
    return 0;
}

/*
 * Publishes the bootstrap list: the bootstrap file first (so that a script waiting for it finds
 * a cluster that is ready), then the first line on stdout. Returns 0, or -1 after logging why.
 */
static int announce(const struct devkafka *dk, const struct options *opts)
{
    const char *bootstraps = rd_kafka_mock_cluster_bootstraps(dk->mock.cluster);
    if (opts->bootstrap_file != NULL) {
        char line[1024];
        snprintf(line, sizeof(line), "%s\n", bootstraps);
        if (fp_file_write_atomic(opts->bootstrap_file, line, strlen(line)) != 0) {
            log_msg("error", "cannot write bootstrap file", "error", strerror(errno));
            return -1;
        }
    }
    printf("bootstrap=%s\n", bootstraps);
    fflush(stdout);

    char brokers[16], topics[16];

    snprintf(brokers, sizeof(brokers), "%d", (int)opts->brokers);
    snprintf(topics, sizeof(topics), "%d", (int)opts->topic_cnt);
    fp_log_kv(FP_LOG_INFO, "ready", "bootstrap", bootstraps, "brokers", brokers, "topics", topics,
              "version", FP_VERSION, "librdkafka", rd_kafka_version_str(), FP_KV_END);
    return 0;
}

/*
 * Runs commands until "quit" or a stop signal. poll() wakes up at least every
 * POLL_INTERVAL_MS so that a signal is noticed promptly even when it hit another thread.
 * Returns 0, or -1 when poll() fails.
 */
static int serve(struct devkafka *dk, const struct options *opts)
{
    bool quit = false;
    while (!quit && !fp_signal_stop_requested()) {
        struct pollfd pfds[2];
        for (int i = 0; i < dk->reader_cnt; i++)
            pfds[i] = (struct pollfd){.fd = dk->readers[i].fd, .events = POLLIN};
        int ready = poll(pfds, (nfds_t)dk->reader_cnt, POLL_INTERVAL_MS);
        if (ready < 0 && errno != EINTR) {
            log_msg("error", "poll failed", "error", strerror(errno));
            return -1;
        }
        for (int i = 0; i < dk->reader_cnt && ready > 0 && !quit; i++) {
            if ((pfds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0)
                continue;
            if (drain_commands(&dk->readers[i], &dk->mock, opts, &quit) != 0) {
                /* Stop polling a closed source (stdin; the FIFO never ends since it is O_RDWR).
                 * The other source is polled again on the next turn. */
                dk->readers[i] = dk->readers[dk->reader_cnt - 1];
                dk->reader_cnt--;
                break;
            }
        }
    }
    log_msg("info", "shutting down", "reason", quit ? "quit command" : "signal");
    return 0;
}

/* Releases everything in dk, in any state of construction, and removes the files devkafka made. */
static void devkafka_close(struct devkafka *dk, const struct options *opts)
{
    for (int i = 0; i < dk->reader_cnt; i++) {
        if (dk->readers[i].fd != STDIN_FILENO)
            close(dk->readers[i].fd);
    }
    dk->reader_cnt = 0;
    if (dk->fifo_created)
        unlink(opts->control_path);
    dk->fifo_created = false;
    if (opts->bootstrap_file != NULL)
        unlink(opts->bootstrap_file);
    if (dk->mock.cluster != NULL)
        rd_kafka_mock_cluster_destroy(dk->mock.cluster);
    dk->mock.cluster = NULL;
    if (dk->rk != NULL)
        rd_kafka_destroy(dk->rk);
    dk->rk = NULL;
}

int main(int argc, char **argv)
{
    struct options opts;
    int rc;

    fp_log_init("devkafka", FP_LOG_INFO);
    rc = parse_options(argc, argv, &opts);
    if (rc != FP_ARGS_RUN)
        return rc;

    if (fp_signal_install() != 0) {
        log_msg("error", "cannot install signal handlers", "error", strerror(errno));
        return 1;
    }
    if (opts.bootstrap_file != NULL && unlink(opts.bootstrap_file) != 0 && errno != ENOENT) {
        log_msg("error", "cannot remove stale bootstrap file", "error", strerror(errno));
        return 1;
    }

    /* The command sources come first, so that a bad --control path fails before the cluster
     * starts. */
    struct devkafka dk = {0};
    int exit_code = 1;
    if (open_sources(&dk, &opts) == 0 && start_cluster(&dk, &opts) == 0 &&
        announce(&dk, &opts) == 0 && serve(&dk, &opts) == 0)
        exit_code = 0;
    devkafka_close(&dk, &opts);
    log_msg(exit_code == 0 ? "info" : "error", "stopped", NULL, NULL);
    return exit_code;
}
