/* fp_args: one declarative table of command-line options per tool.
 *
 * The same table parses argv, validates every value and prints --help, so a tool's options are
 * declared once. It is the command-line sibling of fp_config (which reads the services'
 * environment); the tools in deploy/local use it.
 *
 * Syntax: "--name VALUE" and "--name=VALUE"; a flag takes no value. Options come first: the
 * first argument that does not start with '-' (or "-" alone) begins the positional arguments,
 * and "--" ends the options explicitly. "--help" and "-h" print the usage, "--version" the
 * version when the tool has one. A value is always the next argument, even when it starts
 * with '-' ("--start-ms -5" reads -5). Unlike getopt_long, names are never abbreviated.
 *
 * Defaults are the values the destinations hold before fp_args_parse runs; --help shows them. */
#ifndef FP_ARGS_H
#define FP_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum fp_arg_type {
    FP_ARG_STRING, /* const char *: points into argv */
    FP_ARG_INT,    /* int64_t, within [min, max] */
    FP_ARG_UINT,   /* uint64_t, within [0, umax] */
    FP_ARG_DOUBLE, /* double, finite, within [dmin, dmax] */
    FP_ARG_FLAG,   /* bool, set to true; takes no value */
    FP_ARG_ENUM,   /* const char *: one of the '|'-separated words of `choices`, from argv */
    FP_ARG_CUSTOM  /* whatever `parse` makes of the value */
} fp_arg_type;

/* Reads one value of an FP_ARG_CUSTOM option into dest. Returns 0, or -1 with the reason in
 * why (a phrase without the option's name, which fp_args_parse puts in front). */
typedef int (*fp_arg_parse_fn)(const char *value, void *dest, char *why, size_t why_size);

typedef struct fp_arg {
    const char *name; /* without the leading "--" */
    fp_arg_type type;
    /* The field the value is stored into. What it holds before fp_args_parse is the default. */
    void *dest;
    /* The value's placeholder in --help ("N", "PATH"); NULL: "VALUE", or the choices of an
     * FP_ARG_ENUM. */
    const char *metavar;
    const char *help;      /* one phrase; --help adds the default */
    int64_t min, max;      /* FP_ARG_INT */
    uint64_t umax;         /* FP_ARG_UINT */
    double dmin, dmax;     /* FP_ARG_DOUBLE */
    const char *choices;   /* FP_ARG_ENUM: "a|b|c" */
    fp_arg_parse_fn parse; /* FP_ARG_CUSTOM */
    /* The default as --help shows it, instead of the value of *dest (which an FP_ARG_CUSTOM
     * option cannot show by itself). */
    const char *def;
    bool nonempty; /* FP_ARG_STRING: an empty value is a usage error */
    bool required; /* the option must be given */
    bool *given;   /* when not NULL, set to true if the option was given */
} fp_arg;

#define FP_ARG_END                                                                                 \
    {                                                                                              \
        .name = NULL                                                                               \
    }

/* The --brokers option of a tool that talks to Kafka: required, not empty; field is a
 * const char **. */
#define FP_ARG_KAFKA_BROKERS(field)                                                                \
    {                                                                                              \
        .name = "brokers", .type = FP_ARG_STRING, .dest = (field), .metavar = "B",                 \
        .help = "Kafka bootstrap servers", .nonempty = true, .required = true                      \
    }

/* A tool's command line: who it is, what it says in --help, its options. */
typedef struct fp_args_spec {
    const char *program;    /* the name in messages and in the usage line */
    const char *summary;    /* one line: what the tool does */
    const char *usage;      /* the usage line after the name; NULL: "[options]" */
    const char *positional; /* NULL: the tool takes no positional arguments */
    const char *version;    /* the text --version prints after the name; NULL: no --version */
    const char *epilog;     /* text printed after the options in --help, or NULL */
    const fp_arg *args;     /* ended by FP_ARG_END */
    FILE *out;              /* --help and --version; NULL: stdout */
    FILE *err;              /* usage errors; NULL: stderr */
} fp_args_spec;

/* What fp_args_parse found: run the tool, or exit with this status. */
enum {
    FP_ARGS_RUN = -1,
    FP_ARGS_EXIT = 0, /* --help or --version was printed */
    FP_ARGS_USAGE = 2 /* a usage error was printed */
};

/* Parses argv[1..argc) against spec->args and stores each value at its option's dest.
 *
 * --help or -h among the options (before "--" or the first positional argument) prints the
 * usage to spec->out and returns FP_ARGS_EXIT, whatever else the command line holds; the
 * destinations are then untouched. --version does the same with "PROGRAM VERSION".
 *
 * On a usage error (an unknown option, a missing or unexpected value, a value that is not a
 * number in range, not a choice or empty where not allowed, a required option missing, a
 * positional argument for a tool that takes none) prints one line "PROGRAM: --name: problem"
 * and "PROGRAM: try --help" to spec->err and returns FP_ARGS_USAGE; the options before the
 * bad one may have been stored.
 *
 * Otherwise returns FP_ARGS_RUN and, when first_positional is not NULL, sets it to the index
 * of the first positional argument (argc when there is none). Every return value but
 * FP_ARGS_RUN is the tool's exit status. */
int fp_args_parse(const fp_args_spec *spec, int argc, char **argv, int *first_positional);

/* Prints the usage generated from spec: the usage line, the summary, every option with its
 * metavar, help and default, --help and --version, and the epilog. */
void fp_args_print_help(const fp_args_spec *spec, FILE *out);

/* Reports a usage error the tool found itself, as fp_args_parse reports its own ("PROGRAM:
 * message" and "PROGRAM: try --help" on spec->err). Returns FP_ARGS_USAGE. */
int fp_args_usage_error(const fp_args_spec *spec, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Strict number parsing, for option values and for anything else a tool reads as text: the
 * whole of s, in base 10 (an optional sign for the signed kinds), without blanks; overflow and
 * values outside [min, max] are rejected; doubles must be finite. Each returns 0 and sets
 * *out, or -1 and leaves *out alone. */
int fp_arg_parse_int(const char *s, int64_t min, int64_t max, int64_t *out);
int fp_arg_parse_uint(const char *s, uint64_t max, uint64_t *out);
int fp_arg_parse_double(const char *s, double min, double max, double *out);

/* True when s is one of the '|'-separated words of choices ("a|b|c"), as a whole and with the
 * same case. This function can't fail. */
bool fp_arg_is_choice(const char *s, const char *choices);

#endif
