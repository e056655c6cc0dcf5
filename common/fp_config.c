#include "common/fp_config.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libpq-fe.h>

#include "common/fp_args.h"
#include "common/fp_buf.h"
#include "common/fp_json.h"
#include "common/fp_log.h"

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

/* Checks that libpq can parse a connection string. libpq's reason quotes words of the string
 * (a password among them, when its quotes are missing), so each quoted part is replaced by "…".
 * Returns 0, or -1 with the message in err. */
static int check_dsn(const fp_option *o, const char *dsn, char *err, size_t err_size)
{
    char *why = NULL;
    PQconninfoOption *opts = PQconninfoParse(dsn, &why);
    fp_buf msg = {0};
    bool quoted = false;

    if (opts != NULL) {
        PQconninfoFree(opts);
        return 0;
    }
    for (const char *p = why != NULL ? why : "out of memory"; *p != '\0' && *p != '\n'; p++) {
        if (*p == '"') {
            fp_buf_puts(&msg, quoted ? "\"" : "\"…");
            quoted = !quoted;
        } else if (!quoted) {
            fp_buf_putc(&msg, *p);
        }
    }
    snprintf(err, err_size, "%s: not a libpq connection string or URI (%s)", o->name,
             fp_buf_cstr(&msg));
    fp_buf_free(&msg);
    PQfreemem(why);
    return -1;
}

/* Stores one option's text value into cfg. Returns 0, or -1 with a message in err. */
static int store_option(const fp_option *o, const char *value, void *cfg, char *err,
                        size_t err_size)
{
    char *field = (char *)cfg + o->offset;

    switch (o->type) {
    case FP_OPT_STRING:
        *(const char **)(void *)field = value;
        return 0;
    case FP_OPT_DSN:
        if (value != NULL && check_dsn(o, value, err, err_size) < 0)
            return -1;
        *(const char **)(void *)field = value;
        return 0;
    case FP_OPT_ENUM:
        if (value != NULL && !fp_arg_is_choice(value, o->choices)) {
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

typedef void (*secret_fn)(const char *s, size_t len);

static void put_redacted(fp_buf *b, fp_opt_type type, bool secret, const char *value, secret_fn fn);

void fp_config_print_help(const char *program, const char *summary, const fp_option *table,
                          const char *extra_usage)
{
    printf("Usage: %s [--help] [--version]\n", program);
    if (extra_usage != NULL)
        fputs(extra_usage, stdout);
    printf("\n%s\n\nConfiguration (environment variables):\n", summary);
    for (const fp_option *o = table; o->name != NULL; o++) {
        fp_buf def = {0};

        if (o->def != NULL && !o->secret)
            put_redacted(&def, o->type, false, o->def, NULL);
        printf("  %-24s %-6s default: %s%s\n      %s", o->name, type_name(o->type),
               def.len > 0 ? fp_buf_cstr(&def) : "(none)", o->required ? " (required)" : "",
               o->help);
        fp_buf_free(&def);
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
static bool contains_nocase(const char *s, size_t len, const char *word)
{
    size_t n = strlen(word);

    for (size_t i = 0; n <= len && i <= len - n; i++)
        if (strncasecmp(s + i, word, n) == 0)
            return true;
    return false;
}

/* The words that make a name secret: librdkafka's sasl.password, ssl.key.password,
 * sasl.oauthbearer.config and .client.secret, ssl.key.pem, ...; a URL's api_key, token, sig. */
static bool is_secret_word(const char *name, size_t len)
{
    static const char *const words[] = {"password",  "passwd",      "secret",    "token",
                                        "key",       "oauthbearer", "private",   "credential",
                                        "sasl_jaas", "auth",        "signature", "sig"};

    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (contains_nocase(name, len, words[i]))
            return true;
    return false;
}

bool fp_config_is_secret_name(const char *name)
{
    return is_secret_word(name, strlen(name));
}

/* ---- Redaction ---------------------------------------------------------------------------
 *
 * One mechanism for every value the configuration shows (the start-up log, --help): an option
 * with the secret flag or a secret name is shown as ***; a libpq connection string has the
 * options libpq itself marks secret (dispchar '*': password, sslpassword) masked; a URL has its
 * user-info and its query values masked. Each secret it masks is also reported (to
 * fp_log_add_secret, by fp_config_log), so that no later log line can show it either. */

static void report(secret_fn fn, const char *s, size_t len)
{
    if (fn != NULL && s != NULL && len > 0)
        fn(s, len);
}

/* True when libpq marks the connection option `keyword` (len bytes) as secret. */
static bool libpq_secret_option(const char *keyword, size_t len)
{
    PQconninfoOption *defs = PQconndefaults();
    bool secret = false;

    /* Without libpq's table (out of memory) the known ones, and anything named like them. */
    if (defs == NULL)
        return is_secret_word(keyword, len);
    for (PQconninfoOption *o = defs; o->keyword != NULL; o++)
        if (strlen(o->keyword) == len && strncmp(o->keyword, keyword, len) == 0 &&
            o->dispchar != NULL && o->dispchar[0] == '*')
            secret = true;
    PQconninfoFree(defs);
    return secret;
}

/* Appends a URI's query (after '?', up to '#' or the end) with the values masked: those of
 * every parameter when all is true, else those of libpq's secret options. */
static void put_query(fp_buf *b, const char *q, size_t len, bool all, secret_fn fn)
{
    size_t i = 0;

    while (i < len) {
        size_t amp = i, eq;

        while (amp < len && q[amp] != '&')
            amp++;
        eq = i;
        while (eq < amp && q[eq] != '=')
            eq++;
        if (eq < amp && (all || libpq_secret_option(q + i, eq - i))) {
            fp_buf_append(b, q + i, eq - i + 1);
            fp_buf_puts(b, "***");
            /* Secret-looking values are also kept out of every later log line. */
            if (!all || is_secret_word(q + i, eq - i))
                report(fn, q + eq + 1, amp - eq - 1);
        } else {
            fp_buf_append(b, q + i, amp - i);
        }
        if (amp < len)
            fp_buf_putc(b, '&');
        i = amp + 1;
    }
}

/* Appends a URL (scheme://[user-info@]host/path?query#fragment) with the user-info and the query
 * values masked: every query value when all_query, else libpq's secret options only. */
static void put_url(fp_buf *b, const char *url, bool all_query, secret_fn fn)
{
    const char *auth = strstr(url, "://") + 3;
    size_t alen = strcspn(auth, "/?#");
    const char *at = NULL, *rest, *q, *frag;

    for (size_t i = 0; i < alen; i++)
        if (auth[i] == '@')
            at = auth + i;
    fp_buf_append(b, url, (size_t)(auth - url));
    if (at != NULL) {
        const char *colon = memchr(auth, ':', (size_t)(at - auth));

        /* A libpq URI's user-info is a user name and maybe a password: the name stays. Any other
         * URL's user-info may be a token on its own, and is masked whole. */
        if (colon != NULL || all_query) {
            report(fn, auth, (size_t)(at - auth));
            if (colon != NULL) {
                report(fn, colon + 1, (size_t)(at - colon - 1));
                if (!all_query)
                    fp_buf_append(b, auth, (size_t)(colon - auth) + 1);
            }
            fp_buf_puts(b, "***");
            auth = at;
        }
    }
    rest = auth;
    q = strchr(rest, '?');
    frag = strchr(rest, '#');
    if (q != NULL && frag != NULL && frag < q)
        q = NULL;
    if (q == NULL) {
        fp_buf_puts(b, rest);
        return;
    }
    fp_buf_append(b, rest, (size_t)(q - rest) + 1);
    put_query(b, q + 1, frag != NULL ? (size_t)(frag - q - 1) : strlen(q + 1), all_query, fn);
    if (frag != NULL)
        fp_buf_puts(b, frag);
}

/* Appends a key=value connection string with the values of libpq's secret options masked.
 * Values may be single-quoted with backslash escapes. */
static void put_keyword_dsn(fp_buf *b, const char *dsn)
{
    const char *p = dsn;

    while (*p != '\0') {
        const char *k = p, *eq = strchr(p, '='), *q;
        size_t klen;
        bool secret;

        if (eq == NULL) {
            fp_buf_puts(b, p);
            break;
        }
        while (*k == ' ' && k < eq)
            k++;
        klen = (size_t)(eq - k);
        while (klen > 0 && k[klen - 1] == ' ')
            klen--;
        secret = libpq_secret_option(k, klen);
        q = eq + 1;
        while (*q == ' ')
            q++;
        fp_buf_append(b, p, (size_t)(q - p));
        p = q;
        if (*q == '\'') {
            for (q++; *q != '\0' && *q != '\''; q++)
                if (*q == '\\' && q[1] != '\0')
                    q++;
            if (*q == '\'')
                q++;
        } else {
            while (*q != '\0' && *q != ' ')
                q++;
        }
        if (secret)
            fp_buf_puts(b, "***");
        else
            fp_buf_append(b, p, (size_t)(q - p));
        p = q;
        while (*p == ' ') {
            fp_buf_putc(b, ' ');
            p++;
        }
    }
}

/* Appends a libpq connection string (key=value or URI) with its secrets masked, and reports
 * them. What libpq cannot parse is shown as *** whole: its words cannot be told apart. When a
 * secret value would still show (a password that is also the text of another value, say), the
 * whole string is masked too. */
static void put_dsn(fp_buf *b, const char *dsn, secret_fn fn)
{
    PQconninfoOption *opts = PQconninfoParse(dsn, NULL);
    size_t start = b->len;

    if (opts == NULL) {
        report(fn, dsn, strlen(dsn));
        fp_buf_puts(b, "***");
        return;
    }
    if (strncmp(dsn, "postgresql://", 13) == 0 || strncmp(dsn, "postgres://", 11) == 0)
        put_url(b, dsn, false, fn);
    else
        put_keyword_dsn(b, dsn);
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL || o->dispchar == NULL || o->dispchar[0] != '*')
            continue;
        report(fn, o->val, strlen(o->val));
        if (fp_buf_find(b, start, o->val, strlen(o->val)) != SIZE_MAX) {
            b->len = start;
            fp_buf_puts(b, "***");
        }
    }
    PQconninfoFree(opts);
}

/* Appends `value` as the configuration shows it (see "Redaction" above). */
static void put_redacted(fp_buf *b, fp_opt_type type, bool secret, const char *value, secret_fn fn)
{
    if (secret) {
        report(fn, value, strlen(value));
        fp_buf_puts(b, "***");
    } else if (type == FP_OPT_DSN) {
        put_dsn(b, value, fn);
    } else if (strstr(value, "://") != NULL) {
        /* Any value holding a URL (GEOCODER_URL, ASSETS_URL, a librdkafka endpoint). */
        put_url(b, value, true, fn);
    } else {
        fp_buf_puts(b, value);
    }
}

void fp_config_redact_dsn(const char *dsn, char *out, size_t out_size)
{
    fp_buf b = {0};

    if (out_size == 0)
        return;
    put_dsn(&b, dsn, NULL);
    snprintf(out, out_size, "%s", fp_buf_cstr(&b));
    fp_buf_free(&b);
}

void fp_config_redact_url(const char *url, char *out, size_t out_size)
{
    fp_buf b = {0};

    if (out_size == 0)
        return;
    put_redacted(&b, FP_OPT_STRING, false, url, NULL);
    snprintf(out, out_size, "%s", fp_buf_cstr(&b));
    fp_buf_free(&b);
}

/* Appends the text form of one option's current value to b as JSON, redacted. */
static void put_value(fp_buf *b, const fp_option *o, const void *cfg, secret_fn fn)
{
    const char *field = (const char *)cfg + o->offset;

    switch (o->type) {
    case FP_OPT_STRING:
    case FP_OPT_ENUM:
    case FP_OPT_DSN: {
        const char *s = *(const char *const *)(const void *)field;
        fp_buf text = {0};

        if (s == NULL) {
            fp_buf_puts(b, "null");
            return;
        }
        put_redacted(&text, o->type, o->secret, s, fn);
        fp_json_put_string(b, fp_buf_cstr(&text), text.len);
        fp_buf_free(&text);
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

static void register_secret(const char *s, size_t len)
{
    fp_log_add_secret(s, len);
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
        put_value(&b, o, cfg, register_secret);
    }
    for (char **e = environ; *e != NULL; e++) {
        const char *eq = strchr(*e, '=');
        fp_buf text = {0};

        if (strncmp(*e, "RDKAFKA_", 8) != 0 || eq == NULL)
            continue;
        fp_buf_putc(&b, ',');
        fp_json_put_string(&b, *e, (size_t)(eq - *e));
        fp_buf_putc(&b, ':');
        put_redacted(&text, FP_OPT_STRING, is_secret_word(*e, (size_t)(eq - *e)), eq + 1,
                     register_secret);
        fp_json_put_string(&b, fp_buf_cstr(&text), text.len);
        fp_buf_free(&text);
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
    /* glibc gives each thread that allocates its own arena of up to 64 MiB; librdkafka's broker
     * threads allocate every message buffer, so a service's resident memory grew with its thread
     * count rather than with its data. Two arenas cost no measurable speed here. */
    mallopt(M_ARENA_MAX, 2);
    /* Blocks of 128 KiB and more (fetch responses, COPY buffers, batches) come from mmap and go
     * back to the system when freed. glibc raises this threshold by itself after the first
     * large free, and then keeps freed buffers in the heap: under the bench load that held the
     * sink at 59-66 MiB resident; with the fixed threshold 48 MiB (enricher 44 -> 37). */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
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
