/* fp_config: one declarative table of options per service, read from the environment.
 *
 * The same table prints --help, validates the environment at start-up (a bad value is a clear
 * message and exit code 2) and logs the effective configuration with secrets redacted. Values
 * are stored into the service's configuration struct at each option's offset. Every service's
 * struct begins with an fp_common_config, so the options every service shares are declared
 * once (FP_COMMON_OPTIONS) with per-service defaults. */
#ifndef FP_CONFIG_H
#define FP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum fp_opt_type {
    FP_OPT_STRING, /* const char * */
    FP_OPT_INT,    /* int64_t, within [min, max] */
    FP_OPT_BOOL,   /* bool: true/false/1/0/yes/no/on/off */
    FP_OPT_ENUM,   /* const char *, one of `choices` ("a|b|c") */
    FP_OPT_DSN     /* const char *, a libpq DSN or URI: checked with PQconninfoParse at start-up,
                      its secret options redacted in logs */
} fp_opt_type;

typedef struct fp_option {
    const char *name; /* environment variable */
    fp_opt_type type;
    const char *def; /* default as text; NULL means "unset" (a NULL string / 0) */
    const char *help;
    bool secret;   /* value never logged nor printed */
    bool required; /* must be set and non-empty */
    int64_t min, max;
    const char *choices;
    size_t offset; /* offsetof in the service's configuration struct */
} fp_option;

/* What every service has. It is the first member of each service's configuration struct. */
typedef struct fp_common_config {
    const char *kafka_brokers;
    const char *kafka_group_id;
    const char *in_topic;
    const char *out_topic;
    const char *dlq_topic;
    const char *http_bind;
    int64_t http_port;
    const char *log_level;
    int64_t shutdown_timeout_ms;
    int64_t max_inflight;
    int64_t max_inflight_bytes;
    const char *delivery;
    int64_t txn_interval_ms;
    const char *transactional_id;
} fp_common_config;

#define FP_OPT_TABLE_END                                                                           \
    {                                                                                              \
        .name = NULL                                                                               \
    }

#define FP_COMMON_OPT(opt_name, opt_type, opt_def, opt_help, lo, hi, field, ...)                   \
    {                                                                                              \
        .name = opt_name, .type = opt_type, .def = opt_def, .help = opt_help, .min = lo,           \
        .max = hi, .offset = offsetof(fp_common_config, field), __VA_ARGS__                        \
    }

/* The options every service shares, with the service's own defaults. */
#define FP_COMMON_OPTIONS(group, in, out, port, inflight_bytes)                                    \
    FP_COMMON_OPT("KAFKA_BROKERS", FP_OPT_STRING, "localhost:9092",                                \
                  "Kafka bootstrap servers (host:port,...)", 0, 0, kafka_brokers,                  \
                  .required = true),                                                               \
        FP_COMMON_OPT("KAFKA_GROUP_ID", FP_OPT_STRING, group,                                      \
                      "Kafka consumer group of this stage", 0, 0, kafka_group_id,                  \
                      .required = true),                                                           \
        FP_COMMON_OPT("IN_TOPIC", FP_OPT_STRING, in, "topic this stage consumes", 0, 0, in_topic,  \
                      .required = true),                                                           \
        FP_COMMON_OPT("OUT_TOPIC", FP_OPT_STRING, out, "topic this stage produces to", 0, 0,       \
                      out_topic, .required = false),                                               \
        FP_COMMON_OPT("DLQ_TOPIC", FP_OPT_STRING, "telemetry.dlq",                                 \
                      "dead-letter topic for bad input", 0, 0, dlq_topic, .required = true),       \
        FP_COMMON_OPT("HTTP_BIND", FP_OPT_STRING, "0.0.0.0",                                       \
                      "address of the metrics/health HTTP server", 0, 0, http_bind,                \
                      .required = true),                                                           \
        FP_COMMON_OPT("HTTP_PORT", FP_OPT_INT, port,                                               \
                      "port of /metrics, /healthz, /readyz (0 = disabled)", 0, 65535, http_port,   \
                      .required = false),                                                          \
        FP_COMMON_OPT("LOG_LEVEL", FP_OPT_ENUM, "info", "debug|info|warn|error", 0, 0, log_level,  \
                      .choices = "debug|info|warn|error"),                                         \
        FP_COMMON_OPT("SHUTDOWN_TIMEOUT_MS", FP_OPT_INT, "10000",                                  \
                      "on SIGTERM, how long to finish in-flight work before exiting", 0, 3600000,  \
                      shutdown_timeout_ms, .required = false),                                     \
        FP_COMMON_OPT("MAX_INFLIGHT", FP_OPT_INT, "20000",                                         \
                      "input messages taken but not yet durable downstream; consumption pauses "   \
                      "above it",                                                                  \
                      1, 10000000, max_inflight, .required = false),                               \
        FP_COMMON_OPT("MAX_INFLIGHT_BYTES", FP_OPT_INT, inflight_bytes,                            \
                      "bytes of those input messages; consumption pauses above it too", 1024,      \
                      INT64_C(1) << 40, max_inflight_bytes, .required = false),                    \
        FP_COMMON_OPT("DELIVERY", FP_OPT_ENUM, "at-least-once",                                    \
                      "at-least-once|exactly-once between Kafka stages (Kafka transactions)", 0,   \
                      0, delivery, .choices = "at-least-once|exactly-once"),                       \
        FP_COMMON_OPT("TXN_INTERVAL_MS", FP_OPT_INT, "100",                                        \
                      "exactly-once: how often the open transaction is committed", 1, 600000,      \
                      txn_interval_ms, .required = false),                                         \
        FP_COMMON_OPT("TRANSACTIONAL_ID", FP_OPT_STRING, NULL,                                     \
                      "exactly-once: this replica's stable transactional.id (default: "            \
                      "group-hostname)",                                                           \
                      0, 0, transactional_id, .required = false)

/* Reads every option of `table` (ended by FP_OPT_TABLE_END) from the environment into cfg.
 * Returns 0, or -1 with a message naming the variable and the problem in err. */
int fp_config_load(const fp_option *table, void *cfg, char *err, size_t err_size);

/* Prints usage, every option with its type, default and help, and the RDKAFKA_ passthrough. */
void fp_config_print_help(const char *program, const char *summary, const fp_option *table,
                          const char *extra_usage);

/* Logs the effective configuration (one line, one field per option) and the RDKAFKA_*
 * settings, redacted: an option with the secret flag or an RDKAFKA_* whose name is secret
 * (fp_config_is_secret_name) as ***, a FP_OPT_DSN as fp_config_redact_dsn, any other value
 * holding a URL as fp_config_redact_url. Every secret so masked is also registered with
 * fp_log_add_secret, so that no later log line shows it. */
void fp_config_log(const fp_option *table, const void *cfg);

/* Writes a libpq connection string (key=value or URI) into out (always NUL-terminated) with the
 * value of every option libpq marks secret (PQconninfoParse's dispchar '*': password,
 * sslpassword), in key=value pairs, URI user-info or URI query, replaced by ***. A string libpq
 * cannot parse is written as *** whole. */
void fp_config_redact_dsn(const char *dsn, char *out, size_t out_size);

/* Writes a value into out (always NUL-terminated) as the configuration shows it: a URL
 * (scheme://...) with its user-info and every query value replaced by ***, anything else as it
 * is. */
void fp_config_redact_url(const char *url, char *out, size_t out_size);

/* True when a librdkafka property, variable or URL query parameter name says it holds a
 * secret: it contains password, secret, token, key, oauthbearer, private, credential, auth or
 * sig (ignoring case). */
bool fp_config_is_secret_name(const char *name);

/* Handles --help and --version and rejects unknown arguments (exit 2), loads the table (exit 2
 * on a bad value), initialises logging from LOG_LEVEL and logs the configuration. Returns only
 * when the service should run. */
void fp_config_startup(int argc, char **argv, const char *program, const char *summary,
                       const fp_option *table, void *cfg);

#endif
