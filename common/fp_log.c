#include "common/fp_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fp_buf.h"
#include "common/fp_json.h"
#include "common/fp_time.h"

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

#define SECRETS_MAX 64

/* The registered secrets, each as written in a JSON string (escaped); only read after start-up. */
static char *secrets[SECRETS_MAX];
static size_t secret_len[SECRETS_MAX];
static size_t nsecrets;

/* Remembers one form of a secret, unless it is already known. */
static void add_secret_form(const char *s, size_t len)
{
    char *copy;

    if (len < FP_LOG_SECRET_MIN || nsecrets == SECRETS_MAX)
        return;
    for (size_t i = 0; i < nsecrets; i++)
        if (secret_len[i] == len && memcmp(secrets[i], s, len) == 0)
            return;
    copy = malloc(len);
    if (copy == NULL)
        return;
    memcpy(copy, s, len);
    secrets[nsecrets] = copy;
    secret_len[nsecrets++] = len;
}

void fp_log_add_secret(const char *s, size_t len)
{
    fp_buf esc = {0};

    if (s == NULL || len < FP_LOG_SECRET_MIN)
        return;
    add_secret_form(s, len);
    /* In a line the secret appears as fp_json_put_string writes it, without the quotes. */
    if (fp_json_put_string(&esc, s, len) == 0 && esc.len >= 2)
        add_secret_form(esc.data + 1, esc.len - 2);
    fp_buf_free(&esc);
}

void fp_log_clear_secrets(void)
{
    for (size_t i = 0; i < nsecrets; i++)
        free(secrets[i]);
    nsecrets = 0;
}

/* Replaces every occurrence of secret k in b by ***. Returns 0, or -1 when memory runs out (b
 * is then unchanged). */
static int mask_one(fp_buf *b, size_t k)
{
    fp_buf out = {0};
    size_t from = 0, at;

    while ((at = fp_buf_find(b, from, secrets[k], secret_len[k])) != SIZE_MAX) {
        if (fp_buf_append(&out, b->data + from, at - from) < 0 || fp_buf_puts(&out, "***") < 0)
            goto err;
        from = at + secret_len[k];
    }
    if (from == 0)
        return 0;
    if (fp_buf_append(&out, b->data + from, b->len - from) < 0)
        goto err;
    fp_buf_free(b);
    *b = out;
    return 0;
err:
    fp_buf_free(&out);
    return -1;
}

/* Rewrites b with every registered secret replaced by ***. On out of memory the line becomes a
 * notice rather than being written unmasked. */
static void mask_secrets(fp_buf *b)
{
    for (size_t k = 0; k < nsecrets; k++) {
        if (mask_one(b, k) < 0) {
            fp_buf_clear(b);
            fp_buf_puts(b,
                        "{\"level\":\"error\",\"msg\":\"a log line was dropped (out of memory)\"");
            return;
        }
    }
}

/* Ends the line and writes it with one call, so that threads never interleave lines. */
static void log_end(fp_buf *b)
{
    mask_secrets(b);
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
