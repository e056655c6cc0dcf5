#include "fp_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fp_buf.h"
#include "fp_json.h"
#include "fp_log.h"

extern char **environ;

/* Parses a boolean word. Returns 0, or -1 when the text is not one. */
static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};

    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

/* True when `s` is one of the '|'-separated words in `choices`. */
static bool is_choice(const char *s, const char *choices)
{
    size_t len = strlen(s);
    const char *p = choices;

    while (p != NULL && *p != '\0') {
        const char *bar = strchr(p, '|');
        size_t wlen = bar != NULL ? (size_t)(bar - p) : strlen(p);

        if (wlen == len && strncmp(p, s, len) == 0)
            return true;
        p = bar != NULL ? bar + 1 : NULL;
    }
    return false;
}

/* Stores one option's text value into cfg. Returns 0, or -1 with a message in err. */
static int store_option(const fp_option *o, const char *value, void *cfg, char *err,
                        size_t err_size)
{
    char *field = (char *)cfg + o->offset;

    switch (o->type) {
    case FP_OPT_STRING:
    case FP_OPT_DSN:
        *(const char **)(void *)field = value;
        return 0;
    case FP_OPT_ENUM:
        if (value != NULL && !is_choice(value, o->choices)) {
            snprintf(err, err_size, "%s: \"%s\" is not one of %s", o->name, value, o->choices);
            return -1;
        }
        *(const char **)(void *)field = value;
        return 0;
    case FP_OPT_BOOL: {
        bool b = false;

        if (value != NULL && parse_bool(value, &b) < 0) {
            snprintf(err, err_size, "%s: \"%s\" is not a boolean (true/false)", o->name, value);
            return -1;
        }
        *(bool *)(void *)field = b;
        return 0;
    }
    case FP_OPT_INT: {
        long long v = 0;

        if (value != NULL) {
            char *end = NULL;

            errno = 0;
            v = strtoll(value, &end, 10);
            if (errno != 0 || end == value || *end != '\0') {
                snprintf(err, err_size, "%s: \"%s\" is not an integer", o->name, value);
                return -1;
            }
            if (v < o->min || v > o->max) {
                snprintf(err, err_size, "%s: %lld is out of range [%lld, %lld]", o->name, v,
                         (long long)o->min, (long long)o->max);
                return -1;
            }
        }
        *(int64_t *)(void *)field = v;
        return 0;
    }
    }
    snprintf(err, err_size, "%s: unknown option type", o->name);
    return -1;
}

int fp_config_load(const fp_option *table, void *cfg, char *err, size_t err_size)
{
    for (const fp_option *o = table; o->name != NULL; o++) {
        const char *value = getenv(o->name);

        if (value == NULL || value[0] == '\0')
            value = o->def;
        if (o->required && (value == NULL || value[0] == '\0')) {
            snprintf(err, err_size, "%s: required but not set", o->name);
            return -1;
        }
        if (store_option(o, value, cfg, err, err_size) < 0)
            return -1;
    }
    return 0;
}

static const char *type_name(fp_opt_type t)
{
    switch (t) {
    case FP_OPT_STRING:
        return "string";
    case FP_OPT_INT:
        return "int";
    case FP_OPT_BOOL:
        return "bool";
    case FP_OPT_ENUM:
        return "enum";
    case FP_OPT_DSN:
        return "dsn";
    }
    return "?";
}

void fp_config_print_help(const char *program, const char *summary, const fp_option *table,
                          const char *extra_usage)
{
    printf("Usage: %s [--help] [--version]\n", program);
    if (extra_usage != NULL)
        fputs(extra_usage, stdout);
    printf("\n%s\n\nConfiguration (environment variables):\n", summary);
    for (const fp_option *o = table; o->name != NULL; o++) {
        printf("  %-24s %-6s default: %s%s\n      %s", o->name, type_name(o->type),
               o->def != NULL && !o->secret ? o->def : "(none)", o->required ? " (required)" : "",
               o->help);
        if (o->type == FP_OPT_INT)
            printf(" [%lld..%lld]", (long long)o->min, (long long)o->max);
        if (o->secret)
            printf(" (secret: never logged)");
        putchar('\n');
    }
    printf("  RDKAFKA_<NAME>           any librdkafka property for both consumer and producer,\n"
           "                           dots written as underscores "
           "(RDKAFKA_SECURITY_PROTOCOL=SASL_SSL)\n"
           "  RDKAFKA_CONSUMER_<NAME>, RDKAFKA_PRODUCER_<NAME>\n"
           "                           the same for the consumer or the producer only\n"
           "\nExit codes: 0 clean shutdown, 1 fatal runtime error, 2 bad configuration.\n");
}

/* True when `word` occurs in `s`, ignoring ASCII case. */
static bool contains_nocase(const char *s, const char *word)
{
    size_t n = strlen(word);

    for (; *s != '\0'; s++)
        if (strncasecmp(s, word, n) == 0)
            return true;
    return false;
}

bool fp_config_is_secret_name(const char *name)
{
    static const char *const words[] = {"password",    "secret",      "token",
                                        "private",     "credential",  "sasl_jaas",
                                        "ssl_key_pem", "ssl.key.pem", "key_pem"};

    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (contains_nocase(name, words[i]))
            return true;
    return false;
}

void fp_config_redact_dsn(const char *dsn, char *out, size_t out_size)
{
    fp_buf b = {0};
    const char *scheme_end = strstr(dsn, "://");

    if (out_size == 0)
        return;
    if (scheme_end != NULL) {
        /* URI: scheme://[user[:password]@]host... — mask what sits between ':' and '@'. */
        const char *auth = scheme_end + 3;
        const char *at = strchr(auth, '@');
        const char *colon = at != NULL ? memchr(auth, ':', (size_t)(at - auth)) : NULL;

        if (colon != NULL) {
            fp_buf_append(&b, dsn, (size_t)(colon - dsn) + 1);
            fp_buf_puts(&b, "***");
            fp_buf_puts(&b, at);
        } else {
            fp_buf_puts(&b, dsn);
        }
        /* A password may also come as a query parameter. */
    } else {
        /* key=value pairs separated by spaces; values may be single-quoted with \-escapes. */
        const char *p = dsn;

        while (*p != '\0') {
            const char *eq = strchr(p, '=');
            size_t keylen;
            bool is_password;

            if (eq == NULL) {
                fp_buf_puts(&b, p);
                break;
            }
            keylen = (size_t)(eq - p);
            while (keylen > 0 && (p[keylen - 1] == ' '))
                keylen--;
            {
                const char *k = p;
                while (*k == ' ' && k < eq)
                    k++;
                is_password = (size_t)(eq - k) >= 8 && strncmp(k, "password", 8) == 0 &&
                              (k[8] == '=' || k[8] == ' ');
            }
            fp_buf_append(&b, p, (size_t)(eq - p) + 1);
            p = eq + 1;
            while (*p == ' ')
                p++;
            if (*p == '\'') {
                const char *q = p + 1;
                while (*q != '\0' && *q != '\'') {
                    if (*q == '\\' && q[1] != '\0')
                        q++;
                    q++;
                }
                if (*q == '\'')
                    q++;
                if (is_password)
                    fp_buf_puts(&b, "***");
                else
                    fp_buf_append(&b, p, (size_t)(q - p));
                p = q;
            } else {
                const char *q = p;
                while (*q != '\0' && *q != ' ')
                    q++;
                if (is_password)
                    fp_buf_puts(&b, "***");
                else
                    fp_buf_append(&b, p, (size_t)(q - p));
                p = q;
            }
            while (*p == ' ') {
                fp_buf_putc(&b, ' ');
                p++;
            }
        }
    }
    snprintf(out, out_size, "%s", fp_buf_cstr(&b));
    fp_buf_free(&b);
}

/* Appends the text form of one option's current value to b, redacted as its kind requires. */
static void put_value(fp_buf *b, const fp_option *o, const void *cfg)
{
    const char *field = (const char *)cfg + o->offset;
    char text[1024];

    switch (o->type) {
    case FP_OPT_STRING:
    case FP_OPT_ENUM:
    case FP_OPT_DSN: {
        const char *s = *(const char *const *)(const void *)field;

        if (s == NULL) {
            fp_buf_puts(b, "null");
            return;
        }
        if (o->secret) {
            s = "***";
        } else if (o->type == FP_OPT_DSN) {
            fp_config_redact_dsn(s, text, sizeof(text));
            s = text;
        }
        fp_json_put_string(b, s, strlen(s));
        return;
    }
    case FP_OPT_INT:
        fp_buf_put_i64(b, *(const int64_t *)(const void *)field);
        return;
    case FP_OPT_BOOL:
        fp_buf_puts(b, *(const bool *)(const void *)field ? "true" : "false");
        return;
    }
}

void fp_config_log(const fp_option *table, const void *cfg)
{
    fp_buf b = {0};

    fp_buf_putc(&b, '{');
    for (const fp_option *o = table; o->name != NULL; o++) {
        if (o != table)
            fp_buf_putc(&b, ',');
        fp_json_put_string(&b, o->name, strlen(o->name));
        fp_buf_putc(&b, ':');
        put_value(&b, o, cfg);
    }
    for (char **e = environ; *e != NULL; e++) {
        const char *eq = strchr(*e, '=');

        if (strncmp(*e, "RDKAFKA_", 8) != 0 || eq == NULL)
            continue;
        fp_buf_putc(&b, ',');
        fp_json_put_string(&b, *e, (size_t)(eq - *e));
        fp_buf_putc(&b, ':');
        if (fp_config_is_secret_name(*e))
            fp_buf_puts(&b, "\"***\"");
        else
            fp_json_put_string(&b, eq + 1, strlen(eq + 1));
    }
    fp_buf_putc(&b, '}');
    fp_log_json(FP_LOG_INFO, "effective configuration", "config", fp_buf_cstr(&b));
    fp_buf_free(&b);
}

void fp_config_startup(int argc, char **argv, const char *program, const char *summary,
                       const fp_option *table, void *cfg)
{
    char err[512];
    fp_log_level level = FP_LOG_INFO;
    const fp_common_config *common = cfg;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fp_config_print_help(program, summary, table, NULL);
            exit(0);
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("%s %s\n", program, FP_VERSION);
            exit(0);
        }
        fprintf(stderr, "%s: unknown argument \"%s\" (see --help)\n", program, argv[i]);
        exit(2);
    }
    fp_log_init(program, FP_LOG_INFO);
    if (fp_config_load(table, cfg, err, sizeof(err)) < 0) {
        fp_log_kv(FP_LOG_ERROR, "bad configuration", "error", err, FP_KV_END);
        fprintf(stderr, "%s: bad configuration: %s\n", program, err);
        exit(2);
    }
    if (common->log_level != NULL)
        fp_log_level_parse(common->log_level, &level);
    fp_log_init(program, level);
    fp_config_log(table, cfg);
}
