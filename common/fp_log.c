#include "fp_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fp_buf.h"
#include "fp_json.h"
#include "fp_time.h"

static const char *log_service = "fleetpipe";
static fp_log_level log_min = FP_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void fp_log_init(const char *service, fp_log_level level)
{
    log_service = service;
    log_min = level;
}

int fp_log_level_parse(const char *s, fp_log_level *out)
{
    if (s == NULL)
        return -1;
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (fp_log_level)i;
            return 0;
        }
    }
    if (strcmp(s, "warning") == 0) {
        *out = FP_LOG_WARN;
        return 0;
    }
    return -1;
}

const char *fp_log_level_name(fp_log_level level)
{
    return level >= FP_LOG_DEBUG && level <= FP_LOG_ERROR ? level_names[level] : "unknown";
}

bool fp_log_enabled(fp_log_level level)
{
    return level >= log_min;
}

/* Starts a line with ts, level, service and msg. Returns 0 or -1 on out of memory. */
static int log_begin(fp_buf *b, fp_log_level level, const char *msg, size_t msg_len)
{
    char ts[32];

    if (fp_time_format_ms(fp_now_ms(), ts, sizeof(ts)) < 0)
        ts[0] = '\0';
    if (fp_buf_puts(b, "{\"ts\":\"") < 0 || fp_buf_puts(b, ts) < 0 ||
        fp_buf_puts(b, "\",\"level\":\"") < 0 || fp_buf_puts(b, fp_log_level_name(level)) < 0 ||
        fp_buf_puts(b, "\",\"service\":") < 0 ||
        fp_json_put_string(b, log_service, strlen(log_service)) < 0 ||
        fp_buf_puts(b, ",\"msg\":") < 0 || fp_json_put_string(b, msg, msg_len) < 0)
        return -1;
    return 0;
}

/* Ends the line and writes it with one call, so that threads never interleave lines. */
static void log_end(fp_buf *b)
{
    if (fp_buf_puts(b, "}\n") == 0)
        fwrite(b->data, 1, b->len, stderr);
    fp_buf_free(b);
}

void fp_log(fp_log_level level, const char *fmt, ...)
{
    char msg[2048];
    fp_buf b = {0};
    va_list ap;
    int n;

    if (level < log_min)
        return;
    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(msg))
        n = sizeof(msg) - 1;
    if (log_begin(&b, level, msg, (size_t)n) == 0)
        log_end(&b);
    else
        fp_buf_free(&b);
}

void fp_log_kv(fp_log_level level, const char *msg, ...)
{
    fp_buf b = {0};
    va_list ap;
    const char *key;
    int rc;

    if (level < log_min)
        return;
    rc = log_begin(&b, level, msg, strlen(msg));
    va_start(ap, msg);
    while (rc == 0 && (key = va_arg(ap, const char *)) != NULL) {
        const char *value = va_arg(ap, const char *);

        rc = fp_buf_putc(&b, ',');
        if (rc == 0)
            rc = fp_json_put_string(&b, key, strlen(key));
        if (rc == 0)
            rc = fp_buf_putc(&b, ':');
        if (rc == 0)
            rc = value != NULL ? fp_json_put_string(&b, value, strlen(value))
                               : fp_buf_puts(&b, "null");
    }
    va_end(ap);
    if (rc == 0)
        log_end(&b);
    else
        fp_buf_free(&b);
}

void fp_log_json(fp_log_level level, const char *msg, const char *key, const char *json)
{
    fp_buf b = {0};

    if (level < log_min)
        return;
    if (log_begin(&b, level, msg, strlen(msg)) == 0 && fp_buf_putc(&b, ',') == 0 &&
        fp_json_put_string(&b, key, strlen(key)) == 0 && fp_buf_putc(&b, ':') == 0 &&
        fp_buf_puts(&b, json) == 0)
        log_end(&b);
    else
        fp_buf_free(&b);
}
