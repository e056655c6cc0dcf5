/* fp_args: command-line options from one table (see fp_args.h for the contracts).
 *
 * fp_args_parse walks the options twice. The first walk only looks for --help and --version,
 * so that the usage shows the defaults as they were, untouched by the options before it. The
 * second stores each value and stops at the first usage error. Both walks read the arguments
 * alike (classify), so they agree on which argument is a value and where the options end. */
#include "common/fp_args.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define HELP_WIDTH      80 /* --help lines stay shorter than this */
#define HELP_MAX_COLUMN 30 /* where the help texts start, at the most */

/* ---- Values ------------------------------------------------------------------------------ */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int fp_arg_parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end = NULL;
    long long v;

    /* strtoll would skip blanks and read an empty string as 0. */
    if (s == NULL || !(is_digit(s[0]) || ((s[0] == '-' || s[0] == '+') && is_digit(s[1]))))
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = (int64_t)v;
    return 0;
}

int fp_arg_parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    unsigned long long v;

    /* strtoull would also take "-1", as the largest value. */
    if (s == NULL || !is_digit(s[0]))
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

int fp_arg_parse_double(const char *s, double min, double max, double *out)
{
    char *end = NULL;
    double v;

    if (s == NULL ||
        !(is_digit(s[0]) || s[0] == '.' || ((s[0] == '-' || s[0] == '+') && s[1] != '\0')))
        return -1;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

bool fp_arg_is_choice(const char *s, const char *choices)
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

/* ---- Reading the arguments --------------------------------------------------------------- */

/* What one argument is. */
typedef enum token_kind {
    TOKEN_END,        /* "--": the options end, positional arguments follow */
    TOKEN_POSITIONAL, /* the first positional argument: the options end here */
    TOKEN_HELP,
    TOKEN_VERSION,
    TOKEN_OPTION, /* an option of the table */
    TOKEN_UNKNOWN
} token_kind;

typedef struct token {
    token_kind kind;
    const fp_arg *arg;        /* TOKEN_OPTION */
    const char *name;         /* the name as given, with its dashes (not NUL-terminated) */
    int name_len;             /* its length */
    const char *inline_value; /* the text after '=', or NULL */
} token;

/* True when name[0..len) is word. */
static bool same_name(const char *name, size_t len, const char *word)
{
    return strlen(word) == len && strncmp(name, word, len) == 0;
}

/* Finds the option called name[0..len) in the table, or NULL. */
static const fp_arg *find_arg(const fp_arg *args, const char *name, size_t len)
{
    for (const fp_arg *o = args; o->name != NULL; o++)
        if (same_name(name, len, o->name))
            return o;
    return NULL;
}

/* Says what the argument a is. Only "-h" is a short option; any other "-x" is unknown. */
static token classify(const fp_args_spec *spec, const char *a)
{
    token t = {TOKEN_UNKNOWN, NULL, a, (int)strlen(a), NULL};
    const char *eq;
    size_t len;

    if (strcmp(a, "--") == 0) {
        t.kind = TOKEN_END;
        return t;
    }
    if (a[0] != '-' || a[1] == '\0') {
        t.kind = TOKEN_POSITIONAL;
        return t;
    }
    if (strcmp(a, "-h") == 0) {
        t.kind = TOKEN_HELP;
        return t;
    }
    if (a[1] != '-')
        return t;
    eq = strchr(a, '=');
    len = eq != NULL ? (size_t)(eq - a - 2) : strlen(a + 2);
    t.name_len = (int)len + 2;
    t.inline_value = eq != NULL ? eq + 1 : NULL;
    if (same_name(a + 2, len, "help")) {
        t.kind = TOKEN_HELP;
    } else if (spec->version != NULL && same_name(a + 2, len, "version")) {
        t.kind = TOKEN_VERSION;
    } else {
        t.arg = find_arg(spec->args, a + 2, len);
        if (t.arg != NULL)
            t.kind = TOKEN_OPTION;
    }
    return t;
}

static bool takes_value(const fp_arg *o)
{
    return o->type != FP_ARG_FLAG;
}

/* ---- Usage errors ------------------------------------------------------------------------ */

int fp_args_usage_error(const fp_args_spec *spec, const char *fmt, ...)
{
    FILE *err = spec->err != NULL ? spec->err : stderr;
    va_list ap;

    fprintf(err, "%s: ", spec->program);
    va_start(ap, fmt);
    vfprintf(err, fmt, ap);
    va_end(ap);
    fprintf(err, "\n%s: try --help\n", spec->program);
    return FP_ARGS_USAGE;
}

/* Stores one option's value at its dest. Returns 0, or FP_ARGS_USAGE after reporting why. */
static int store(const fp_args_spec *spec, const fp_arg *o, const char *value)
{
    char why[256] = "";

    switch (o->type) {
    case FP_ARG_FLAG:
        *(bool *)o->dest = true;
        return 0;
    case FP_ARG_STRING:
        if (o->nonempty && value[0] == '\0')
            return fp_args_usage_error(spec, "--%s: empty value", o->name);
        *(const char **)o->dest = value;
        return 0;
    case FP_ARG_ENUM:
        if (!fp_arg_is_choice(value, o->choices))
            return fp_args_usage_error(spec, "--%s: '%s' is not one of %s", o->name, value,
                                       o->choices);
        *(const char **)o->dest = value;
        return 0;
    case FP_ARG_INT:
        if (fp_arg_parse_int(value, o->min, o->max, o->dest) == 0)
            return 0;
        if (o->max == INT64_MAX)
            return fp_args_usage_error(spec, "--%s: '%s' is not an integer >= %" PRId64, o->name,
                                       value, o->min);
        return fp_args_usage_error(spec, "--%s: '%s' is not an integer in %" PRId64 "..%" PRId64,
                                   o->name, value, o->min, o->max);
    case FP_ARG_UINT:
        if (fp_arg_parse_uint(value, o->umax, o->dest) == 0)
            return 0;
        if (o->umax == UINT64_MAX)
            return fp_args_usage_error(spec, "--%s: '%s' is not an integer >= 0", o->name, value);
        return fp_args_usage_error(spec, "--%s: '%s' is not an integer in 0..%" PRIu64, o->name,
                                   value, o->umax);
    case FP_ARG_DOUBLE:
        if (fp_arg_parse_double(value, o->dmin, o->dmax, o->dest) == 0)
            return 0;
        return fp_args_usage_error(spec, "--%s: '%s' is not a number in %g..%g", o->name, value,
                                   o->dmin, o->dmax);
    case FP_ARG_CUSTOM:
        if (o->parse(value, o->dest, why, sizeof(why)) == 0)
            return 0;
        return fp_args_usage_error(spec, "--%s: %s", o->name, why[0] != '\0' ? why : "bad value");
    }
    return fp_args_usage_error(spec, "--%s: unknown option type", o->name);
}

/* ---- --help ------------------------------------------------------------------------------ */

/* Where --help is writing: words wrap before HELP_WIDTH and go on at `indent`. */
typedef struct help_line {
    FILE *out;
    size_t column;
    size_t indent;
} help_line;

/* Writes the words of text (separated by spaces) on the line, wrapping before a word that
 * would reach HELP_WIDTH; whole: text is one word, never split. A word longer than a whole
 * line gets a line of its own. */
static void put_words(help_line *l, const char *text, bool whole)
{
    const char *p = text;

    while (*p != '\0') {
        size_t len;

        while (*p == ' ')
            p++;
        if (*p == '\0')
            break;
        len = whole ? strlen(p) : strcspn(p, " ");
        if (l->column > l->indent && l->column + 1 + len >= HELP_WIDTH) {
            fprintf(l->out, "\n%*s", (int)l->indent, "");
            l->column = l->indent;
        } else if (l->column > l->indent) {
            fputc(' ', l->out);
            l->column++;
        }
        fwrite(p, 1, len, l->out);
        l->column += len;
        p += len;
    }
}

/* Writes what --help shows after an option's help into buf: "(required)", the default, or ""
 * when there is none to show (a flag, a NULL or empty string, a custom option without def). */
static void format_default(const fp_arg *o, char *buf, size_t size)
{
    const char *s = NULL;

    buf[0] = '\0';
    if (o->required) {
        snprintf(buf, size, "(required)");
        return;
    }
    if (o->def != NULL) {
        snprintf(buf, size, "(default %s)", o->def);
        return;
    }
    switch (o->type) {
    case FP_ARG_STRING:
    case FP_ARG_ENUM:
        s = *(const char *const *)o->dest;
        if (s != NULL && s[0] != '\0')
            snprintf(buf, size, "(default %s)", s);
        return;
    case FP_ARG_INT:
        snprintf(buf, size, "(default %" PRId64 ")", *(const int64_t *)o->dest);
        return;
    case FP_ARG_UINT:
        snprintf(buf, size, "(default %" PRIu64 ")", *(const uint64_t *)o->dest);
        return;
    case FP_ARG_DOUBLE:
        snprintf(buf, size, "(default %g)", *(const double *)o->dest);
        return;
    case FP_ARG_FLAG:
    case FP_ARG_CUSTOM:
        return;
    }
}

/* The placeholder of o's value in --help, or NULL for a flag. */
static const char *metavar_of(const fp_arg *o)
{
    if (!takes_value(o))
        return NULL;
    if (o->metavar != NULL)
        return o->metavar;
    return o->type == FP_ARG_ENUM ? o->choices : "VALUE";
}

/* The width of "  --name METAVAR". */
static size_t left_width(const char *names, const char *metavar)
{
    return 2 + strlen(names) + (metavar != NULL ? 1 + strlen(metavar) : 0);
}

/* Writes one option's entry: "  --name METAVAR", then at `column` (or on the next line, when
 * the name reaches it) the help and the default, wrapped. */
static void put_entry(FILE *out, size_t column, const char *names, const char *metavar,
                      const char *help, const char *def)
{
    help_line l = {out, left_width(names, metavar), column};

    fprintf(out, "  %s%s%s", names, metavar != NULL ? " " : "", metavar != NULL ? metavar : "");
    if (l.column + 2 > column) {
        fputc('\n', out);
        l.column = 0;
    }
    fprintf(out, "%*s", (int)(column - l.column), "");
    l.column = column;
    put_words(&l, help != NULL ? help : "", false);
    put_words(&l, def, true);
    fputc('\n', out);
}

void fp_args_print_help(const fp_args_spec *spec, FILE *out)
{
    size_t column = left_width("-h, --help", NULL);
    char names[128], def[256];

    fprintf(out, "usage: %s %s", spec->program, spec->usage != NULL ? spec->usage : "[options]");
    if (spec->usage == NULL && spec->positional != NULL)
        fprintf(out, " %s", spec->positional);
    fprintf(out, "\n\n%s\n\nOptions:\n", spec->summary != NULL ? spec->summary : "");
    for (const fp_arg *o = spec->args; o->name != NULL; o++) {
        snprintf(names, sizeof(names), "--%s", o->name);
        if (left_width(names, metavar_of(o)) > column)
            column = left_width(names, metavar_of(o));
    }
    column = column + 2 > HELP_MAX_COLUMN ? HELP_MAX_COLUMN : column + 2;
    for (const fp_arg *o = spec->args; o->name != NULL; o++) {
        snprintf(names, sizeof(names), "--%s", o->name);
        format_default(o, def, sizeof(def));
        put_entry(out, column, names, metavar_of(o), o->help, def);
    }
    put_entry(out, column, "-h, --help", NULL, "print this help and exit", "");
    if (spec->version != NULL)
        put_entry(out, column, "--version", NULL, "print the version and exit", "");
    if (spec->epilog != NULL)
        fprintf(out, "\n%s", spec->epilog);
}

/* ---- Parsing ----------------------------------------------------------------------------- */

/* The first walk: TOKEN_HELP or TOKEN_VERSION when one of them comes before the options end,
 * else TOKEN_END. An unknown option is taken for a flag here: the second walk reports it. */
static token_kind find_help(const fp_args_spec *spec, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        token t = classify(spec, argv[i]);

        switch (t.kind) {
        case TOKEN_END:
        case TOKEN_POSITIONAL:
            return TOKEN_END;
        case TOKEN_HELP:
        case TOKEN_VERSION:
            if (t.inline_value == NULL)
                return t.kind;
            break;
        case TOKEN_OPTION:
            if (takes_value(t.arg) && t.inline_value == NULL)
                i++;
            break;
        case TOKEN_UNKNOWN:
            break;
        }
    }
    return TOKEN_END;
}

/* True when option o is among argv[1..end): the options part that fp_args_parse has read. */
static bool was_given(const fp_args_spec *spec, const fp_arg *o, int end, char **argv)
{
    for (int i = 1; i < end; i++) {
        token t = classify(spec, argv[i]);

        if (t.kind == TOKEN_OPTION && t.arg == o)
            return true;
        if (t.kind == TOKEN_OPTION && takes_value(t.arg) && t.inline_value == NULL)
            i++;
    }
    return false;
}

/* Reads one option at argv[*i] (and its value at argv[*i + 1], moving *i past it). Returns 0,
 * or FP_ARGS_USAGE after reporting why. */
static int read_option(const fp_args_spec *spec, const token *t, int *i, int argc, char **argv)
{
    const char *value = t->inline_value;
    int rc;

    if (t->kind == TOKEN_UNKNOWN)
        return fp_args_usage_error(spec, "unknown option '%.*s'", t->name_len, t->name);
    /* The first walk took --help and --version without a value: here they have one. */
    if (t->kind != TOKEN_OPTION || (!takes_value(t->arg) && value != NULL))
        return fp_args_usage_error(spec, "%.*s: takes no value", t->name_len, t->name);
    if (takes_value(t->arg) && value == NULL) {
        if (*i + 1 >= argc)
            return fp_args_usage_error(spec, "--%s: needs a value", t->arg->name);
        value = argv[++*i];
    }
    rc = store(spec, t->arg, value);
    if (rc == 0 && t->arg->given != NULL)
        *t->arg->given = true;
    return rc;
}

int fp_args_parse(const fp_args_spec *spec, int argc, char **argv, int *first_positional)
{
    token_kind builtin = find_help(spec, argc, argv);
    FILE *out = spec->out != NULL ? spec->out : stdout;
    int i, end;

    if (builtin == TOKEN_HELP) {
        fp_args_print_help(spec, out);
        return FP_ARGS_EXIT;
    }
    if (builtin == TOKEN_VERSION) {
        fprintf(out, "%s %s\n", spec->program, spec->version);
        return FP_ARGS_EXIT;
    }
    for (i = 1; i < argc; i++) {
        token t = classify(spec, argv[i]);

        if (t.kind == TOKEN_END || t.kind == TOKEN_POSITIONAL)
            break;
        if (read_option(spec, &t, &i, argc, argv) != 0)
            return FP_ARGS_USAGE;
    }
    end = i;
    if (i < argc && strcmp(argv[i], "--") == 0)
        i++;
    if (spec->positional == NULL && i < argc)
        return fp_args_usage_error(spec, "unexpected argument '%s'", argv[i]);
    for (const fp_arg *o = spec->args; o->name != NULL; o++)
        if (o->required && !was_given(spec, o, end, argv))
            return fp_args_usage_error(spec, "--%s is required", o->name);
    if (first_positional != NULL)
        *first_positional = i;
    return FP_ARGS_RUN;
}
