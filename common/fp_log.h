/* fp_log: JSON-lines logging on stderr.
 *
 * One line per event: {"ts":"…","level":"info","service":"parser-svc","msg":"…", …fields}.
 * Lines are written with one stdio call, so lines from librdkafka's and libmicrohttpd's threads
 * never interleave. Secrets must never be passed in (the config module redacts them first);
 * as a second line of defence, every secret the configuration holds is registered here
 * (fp_log_add_secret) and masked in every line, whoever wrote it (libpq's and librdkafka's error
 * texts included). */
#ifndef FP_LOG_H
#define FP_LOG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum fp_log_level {
    FP_LOG_DEBUG = 0,
    FP_LOG_INFO = 1,
    FP_LOG_WARN = 2,
    FP_LOG_ERROR = 3
} fp_log_level;

/* Sets the service name and the minimum level. Call once at start-up; before it, the service
 * is "fleetpipe" and the level info. */
void fp_log_init(const char *service, fp_log_level level);

/* Parses "debug", "info", "warn"/"warning", "error". Returns 0, or -1 for anything else. */
int fp_log_level_parse(const char *s, fp_log_level *out);
const char *fp_log_level_name(fp_log_level level);
bool fp_log_enabled(fp_log_level level);

/* Logs a printf-formatted message. */
void fp_log(fp_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Logs `msg` with extra string fields given as key, value pairs ended by FP_KV_END:
 * fp_log_kv(FP_LOG_INFO, "config", "KAFKA_BROKERS", "k:9092", FP_KV_END). A NULL value is
 * written as JSON null. */
void fp_log_kv(fp_log_level level, const char *msg, ...);

/* The end of fp_log_kv's pairs: a typed null pointer (a bare NULL may be an int in varargs). */
#define FP_KV_END ((const char *)0)

/* Secrets shorter than this are not masked in lines: they would mask ordinary words. */
#define FP_LOG_SECRET_MIN 4

/* Registers a secret (len bytes, copied): from now on each occurrence of it in a log line, as is
 * or as it appears escaped in JSON, is written as ***. Ignores secrets shorter than
 * FP_LOG_SECRET_MIN and more than 64 secrets. Call at start-up, before other threads log. */
void fp_log_add_secret(const char *s, size_t len);

/* Forgets every registered secret (for tests). */
void fp_log_clear_secrets(void);

/* Logs `msg` with one field whose value is already JSON (an object, say), written as is. */
void fp_log_json(fp_log_level level, const char *msg, const char *key, const char *json);

#define fp_debug(...) fp_log(FP_LOG_DEBUG, __VA_ARGS__)
#define fp_info(...)  fp_log(FP_LOG_INFO, __VA_ARGS__)
#define fp_warn(...)  fp_log(FP_LOG_WARN, __VA_ARGS__)
#define fp_error(...) fp_log(FP_LOG_ERROR, __VA_ARGS__)

#endif
