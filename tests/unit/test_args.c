/* Tests of common/fp_args.c: both value syntaxes, types and ranges, "--", positional arguments,
 * --help and --version, and the text of every usage error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fp_args.h"
#include "fp_test.h"

/* What a test command line fills. Each test starts from these defaults. */
typedef struct test_opts {
    const char *brokers;
    const char *path;
    const char *clock;
    int64_t count;
    uint64_t seed;
    double rate;
    bool verbose;
    bool count_given;
    int64_t pair[2]; /* --pair A:B */
} test_opts;

static const test_opts defaults = {.brokers = NULL,
                                   .path = "out.bin",
                                   .clock = "sim",
                                   .count = 10,
                                   .seed = 1,
                                   .rate = 0.5,
                                   .pair = {0, 0}};

/* --pair A:B, two integers in 0..99. */
static int parse_pair(const char *value, void *dest, char *why, size_t why_size)
{
    int64_t *pair = dest;
    const char *colon = strchr(value, ':');
    char first[8];
    size_t len = colon != NULL ? (size_t)(colon - value) : 0;

    if (colon == NULL || len >= sizeof(first)) {
        snprintf(why, why_size, "'%s' is not A:B", value);
        return -1;
    }
    memcpy(first, value, len);
    first[len] = '\0';
    if (fp_arg_parse_int(first, 0, 99, &pair[0]) != 0 ||
        fp_arg_parse_int(colon + 1, 0, 99, &pair[1]) != 0) {
        snprintf(why, why_size, "'%s' is not two numbers in 0..99", value);
        return -1;
    }
    return 0;
}

/* One parse: the command line (after the program name), its outcome and what it printed. */
typedef struct parse_run {
    test_opts o;
    int rc;
    int first;
    char *out;
    char *err;
} parse_run;

/* Parses words (NULL-terminated) as the command line of "prog". positional: what the tool
 * takes, NULL for nothing. */
static void run_parse(parse_run *r, const char *positional, const char *version,
                      const char *const *words)
{
    char *argv[32];
    int argc = 0;
    size_t out_len = 0, err_len = 0;
    FILE *out, *err;

    memset(r, 0, sizeof(*r));
    r->o = defaults;
    const fp_arg args[] = {
        {.name = "brokers",
         .type = FP_ARG_STRING,
         .dest = &r->o.brokers,
         .metavar = "B",
         .help = "Kafka bootstrap servers",
         .nonempty = true},
        {.name = "path",
         .type = FP_ARG_STRING,
         .dest = &r->o.path,
         .metavar = "FILE",
         .help = "where to write"},
        {.name = "count",
         .type = FP_ARG_INT,
         .dest = &r->o.count,
         .metavar = "N",
         .help = "how many",
         .min = 1,
         .max = 64,
         .given = &r->o.count_given},
        {.name = "offset",
         .type = FP_ARG_INT,
         .dest = &r->o.count,
         .metavar = "N",
         .help = "signed",
         .min = -5,
         .max = INT64_MAX},
        {.name = "seed",
         .type = FP_ARG_UINT,
         .dest = &r->o.seed,
         .metavar = "S",
         .help = "seed",
         .umax = UINT64_MAX},
        {.name = "small-seed",
         .type = FP_ARG_UINT,
         .dest = &r->o.seed,
         .metavar = "S",
         .help = "seed",
         .umax = 1000},
        {.name = "rate",
         .type = FP_ARG_DOUBLE,
         .dest = &r->o.rate,
         .metavar = "P",
         .help = "a fraction",
         .dmin = 0,
         .dmax = 1},
        {.name = "verbose", .type = FP_ARG_FLAG, .dest = &r->o.verbose, .help = "say more"},
        {.name = "clock",
         .type = FP_ARG_ENUM,
         .dest = &r->o.clock,
         .choices = "sim|wall",
         .help = "which clock"},
        {.name = "pair",
         .type = FP_ARG_CUSTOM,
         .dest = r->o.pair,
         .metavar = "A:B",
         .help = "two numbers",
         .parse = parse_pair,
         .def = "0:0"},
        FP_ARG_END,
    };
    fp_args_spec spec = {.program = "prog",
                         .summary = "Tests the parser.",
                         .positional = positional,
                         .version = version,
                         .args = args};

    argv[argc++] = "prog";
    for (size_t i = 0; words[i] != NULL && argc < 31; i++)
        argv[argc++] = (char *)words[i];
    argv[argc] = NULL;
    out = open_memstream(&r->out, &out_len);
    err = open_memstream(&r->err, &err_len);
    FP_CHECK(out != NULL && err != NULL);
    if (out == NULL || err == NULL)
        return;
    spec.out = out;
    spec.err = err;
    r->first = -1;
    r->rc = fp_args_parse(&spec, argc, argv, &r->first);
    fclose(out);
    fclose(err);
}

static void free_run(parse_run *r)
{
    free(r->out);
    free(r->err);
}

#define WORDS(...)                                                                                 \
    (const char *const[])                                                                          \
    {                                                                                              \
        __VA_ARGS__, NULL                                                                          \
    }

FP_TEST(args_value_syntaxes)
{
    parse_run r;

    run_parse(&r, NULL, NULL, WORDS("--brokers", "b:9092", "--count=7", "--path="));
    FP_CHECK_INT(r.rc, FP_ARGS_RUN);
    FP_CHECK_STR(r.o.brokers, "b:9092");
    FP_CHECK_INT(r.o.count, 7);
    FP_CHECK(r.o.count_given);
    FP_CHECK_STR(r.o.path, ""); /* an empty value where it is allowed */
    FP_CHECK_INT(r.first, 5);
    FP_CHECK_STR(r.err, "");
    FP_CHECK_STR(r.out, "");
    free_run(&r);

    /* Everything after the first '=' is the value; a separate value may start with '-'. */
    run_parse(&r, NULL, NULL, WORDS("--brokers=a=b", "--offset", "-5", "--count", "3"));
    FP_CHECK_INT(r.rc, FP_ARGS_RUN);
    FP_CHECK_STR(r.o.brokers, "a=b");
    FP_CHECK_INT(r.o.count, 3);
    free_run(&r);

    /* Untouched options keep their defaults; the last of a repeated option wins. */
    run_parse(&r, NULL, NULL, WORDS("--rate", "0.25", "--rate=1"));
    FP_CHECK_INT(r.rc, FP_ARGS_RUN);
    FP_CHECK(r.o.rate == 1.0);
    FP_CHECK_INT(r.o.count, 10);
    FP_CHECK(!r.o.count_given);
    FP_CHECK_STR(r.o.path, "out.bin");
    FP_CHECK(r.o.brokers == NULL);
    free_run(&r);
}

FP_TEST(args_flags_enums_and_custom_values)
{
    parse_run r;

    run_parse(&r, NULL, NULL, WORDS("--verbose", "--clock", "wall", "--pair=3:42"));
    FP_CHECK_INT(r.rc, FP_ARGS_RUN);
    FP_CHECK(r.o.verbose);
    FP_CHECK_STR(r.o.clock, "wall");
    FP_CHECK_INT(r.o.pair[0], 3);
    FP_CHECK_INT(r.o.pair[1], 42);
    free_run(&r);

    run_parse(&r, NULL, NULL, WORDS("--verbose=yes"));
    FP_CHECK_INT(r.rc, FP_ARGS_USAGE);
    FP_CHECK(!r.o.verbose);
    FP_CHECK_STR(r.err, "prog: --verbose: takes no value\nprog: try --help\n");
    free_run(&r);

    run_parse(&r, NULL, NULL, WORDS("--clock", "Wall"));
    FP_CHECK_INT(r.rc, FP_ARGS_USAGE);
    FP_CHECK_STR(r.o.clock, "sim");
    FP_CHECK_STR(r.err, "prog: --clock: 'Wall' is not one of sim|wall\nprog: try --help\n");
    free_run(&r);

    run_parse(&r, NULL, NULL, WORDS("--pair", "3:100"));
    FP_CHECK_INT(r.rc, FP_ARGS_USAGE);
    FP_CHECK_STR(r.err, "prog: --pair: '3:100' is not two numbers in 0..99\nprog: try --help\n");
    free_run(&r);
}

FP_TEST(args_numbers_in_range)
{
    static const struct {
        const char *option, *value, *message; /* message NULL: accepted */
    } cases[] = {
        {"--count", "1", NULL},
        {"--count", "64", NULL},
        {"--count", "+5", NULL},
        {"--count", "0", "prog: --count: '0' is not an integer in 1..64\n"},
        {"--count", "65", "prog: --count: '65' is not an integer in 1..64\n"},
        {"--count", "5x", "prog: --count: '5x' is not an integer in 1..64\n"},
        {"--count", "", "prog: --count: '' is not an integer in 1..64\n"},
        {"--count", " 5", "prog: --count: ' 5' is not an integer in 1..64\n"},
        {"--count", "1.5", "prog: --count: '1.5' is not an integer in 1..64\n"},
        {"--count", "0x10", "prog: --count: '0x10' is not an integer in 1..64\n"},
        {"--count", "-", "prog: --count: '-' is not an integer in 1..64\n"},
        {"--offset", "-5", NULL},
        {"--offset", "9223372036854775807", NULL},
        {"--offset", "-6", "prog: --offset: '-6' is not an integer >= -5\n"},
        /* Overflow: strtoll would clamp both to the limits. */
        {"--offset", "9223372036854775808",
         "prog: --offset: '9223372036854775808' is not an integer >= -5\n"},
        {"--count", "-9223372036854775809",
         "prog: --count: '-9223372036854775809' is not an integer in 1..64\n"},
        {"--seed", "18446744073709551615", NULL},
        {"--seed", "18446744073709551616",
         "prog: --seed: '18446744073709551616' is not an integer >= 0\n"},
        {"--seed", "-1", "prog: --seed: '-1' is not an integer >= 0\n"},
        {"--small-seed", "1001", "prog: --small-seed: '1001' is not an integer in 0..1000\n"},
        {"--rate", "0", NULL},
        {"--rate", "1e-3", NULL},
        {"--rate", ".5", NULL},
        {"--rate", "1.5", "prog: --rate: '1.5' is not a number in 0..1\n"},
        {"--rate", "-0.1", "prog: --rate: '-0.1' is not a number in 0..1\n"},
        {"--rate", "nan", "prog: --rate: 'nan' is not a number in 0..1\n"},
        {"--rate", "-inf", "prog: --rate: '-inf' is not a number in 0..1\n"},
        {"--rate", "1e999", "prog: --rate: '1e999' is not a number in 0..1\n"},
        {"--rate", "0.5%", "prog: --rate: '0.5%' is not a number in 0..1\n"},
        {"--rate", "", "prog: --rate: '' is not a number in 0..1\n"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        parse_run r;
        char expected[256];

        run_parse(&r, NULL, NULL, WORDS(cases[i].option, cases[i].value));
        if (cases[i].message == NULL) {
            FP_CHECK_INT(r.rc, FP_ARGS_RUN);
            FP_CHECK_STR(r.err, "");
        } else {
            snprintf(expected, sizeof(expected), "%sprog: try --help\n", cases[i].message);
            FP_CHECK_INT(r.rc, FP_ARGS_USAGE);
            FP_CHECK_STR(r.err, expected);
        }
        free_run(&r);
    }
}

FP_TEST(args_stored_numbers)
{
    parse_run r;

    run_parse(&r, NULL, NULL,
              WORDS("--offset", "-5", "--seed", "18446744073709551615", "--rate", "0.125"));
    FP_CHECK_INT(r.rc, FP_ARGS_RUN);
    FP_CHECK_INT(r.o.count, -5);
    FP_CHECK(r.o.seed == UINT64_MAX);
    FP_CHECK(r.o.rate == 0.125);
    free_run(&r);
}

FP_TEST(args_choices)
{
    FP_CHECK(fp_arg_is_choice("sim", "sim|wall"));
    FP_CHECK(fp_arg_is_choice("wall", "sim|wall"));
    FP_CHECK(fp_arg_is_choice("one", "one"));
    FP_CHECK(!fp_arg_is_choice("si", "sim|wall"));
    FP_CHECK(!fp_arg_is_choice("simwall", "sim|wall"));
    FP_CHECK(!fp_arg_is_choice("sim|wall", "sim|wall"));
    FP_CHECK(!fp_arg_is_choice("Sim", "sim|wall"));
    FP_CHECK(!fp_arg_is_choice("", "sim|wall"));
}

FP_TEST(args_usage_errors)
{
    static const struct {
        const char *const words[4];
        const char *message;
    } cases[] = {
        {{"--bogus"}, "prog: unknown option '--bogus'\n"},
        {{"--bogus=1"}, "prog: unknown option '--bogus'\n"},
        {{"-x"}, "prog: unknown option '-x'\n"},
        /* No abbreviations: getopt_long took these. */
        {{"--brok", "b"}, "prog: unknown option '--brok'\n"},
        {{"--version"}, "prog: unknown option '--version'\n"},
        {{"--count", "3", "--brokers"}, "prog: --brokers: needs a value\n"},
        {{"--brokers", ""}, "prog: --brokers: empty value\n"},
        {{"--brokers="}, "prog: --brokers: empty value\n"},
        {{"--help=1"}, "prog: --help: takes no value\n"},
        {{"topic"}, "prog: unexpected argument 'topic'\n"},
        {{"--", "--count"}, "prog: unexpected argument '--count'\n"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        parse_run r;
        char expected[256];
        const char *words[5] = {cases[i].words[0], cases[i].words[1], cases[i].words[2],
                                cases[i].words[3], NULL};

        run_parse(&r, NULL, NULL, words);
        snprintf(expected, sizeof(expected), "%sprog: try --help\n", cases[i].message);
        FP_CHECK_INT(r.rc, FP_ARGS_USAGE);
        FP_CHECK_STR(r.err, expected);
        FP_CHECK_STR(r.out, "");
        free_run(&r);
    }
}

FP_TEST(args_positional_and_double_dash)
{
    parse_run r;

    run_parse(&r, "TOPIC...", NULL, WORDS("--count", "2", "a:4", "--count", "5"));
    FP_CHECK_INT(r.rc, FP_ARGS_RUN);
    FP_CHECK_INT(r.first, 3); /* options end at the first positional argument */
    FP_CHECK_INT(r.o.count, 2);
    free_run(&r);

    run_parse(&r, "TOPIC...", NULL, WORDS("--verbose", "--", "--count", "-"));
    FP_CHECK_INT(r.rc, FP_ARGS_RUN);
    FP_CHECK_INT(r.first, 3);
    FP_CHECK_INT(r.o.count, 10);
    FP_CHECK(r.o.verbose);
    free_run(&r);

    /* "-" alone is a positional argument; "--" as a value is a value. */
    run_parse(&r, "FILE", NULL, WORDS("--path", "--", "-"));
    FP_CHECK_INT(r.rc, FP_ARGS_RUN);
    FP_CHECK_STR(r.o.path, "--");
    FP_CHECK_INT(r.first, 3);
    free_run(&r);

    run_parse(&r, "TOPIC...", NULL, WORDS("--verbose"));
    FP_CHECK_INT(r.rc, FP_ARGS_RUN);
    FP_CHECK_INT(r.first, 2); /* argc: none */
    free_run(&r);

    run_parse(&r, NULL, NULL, WORDS("--verbose", "--"));
    FP_CHECK_INT(r.rc, FP_ARGS_RUN);
    FP_CHECK_INT(r.first, 3);
    free_run(&r);
}

FP_TEST(args_required_option)
{
    const char *server = NULL;
    int64_t n = 0;
    const fp_arg args[] = {
        {.name = "server", .type = FP_ARG_STRING, .dest = &server, .required = true},
        {.name = "n", .type = FP_ARG_INT, .dest = &n, .min = 0, .max = 9},
        FP_ARG_END,
    };
    char *err = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&err, &len);
    fp_args_spec spec = {.program = "t", .summary = "s", .args = args, .err = f};
    char *missing[] = {"t", "--n", "3", NULL};
    char *given[] = {"t", "--n=3", "--server", "x", NULL};

    FP_CHECK(f != NULL);
    if (f == NULL)
        return;
    FP_CHECK_INT(fp_args_parse(&spec, 3, missing, NULL), FP_ARGS_USAGE);
    FP_CHECK_INT(fp_args_parse(&spec, 4, given, NULL), FP_ARGS_RUN);
    FP_CHECK_STR(server, "x");
    FP_CHECK_INT(fp_args_usage_error(&spec, "give one of --%s and --%s", "a", "b"), FP_ARGS_USAGE);
    fclose(f);
    FP_CHECK_STR(err, "t: --server is required\nt: try --help\n"
                      "t: give one of --a and --b\nt: try --help\n");
    free(err);
}

/* The whole usage text of the test table: wrapping, metavars, defaults as the destinations held
 * them before the options stored anything. */
static const char help_text[] = "usage: prog [options] TOPIC...\n"
                                "\n"
                                "Tests the parser.\n"
                                "\n"
                                "Options:\n"
                                "  --brokers B       Kafka bootstrap servers\n"
                                "  --path FILE       where to write (default out.bin)\n"
                                "  --count N         how many (default 10)\n"
                                "  --offset N        signed (default 10)\n"
                                "  --seed S          seed (default 1)\n"
                                "  --small-seed S    seed (default 1)\n"
                                "  --rate P          a fraction (default 0.5)\n"
                                "  --verbose         say more\n"
                                "  --clock sim|wall  which clock (default sim)\n"
                                "  --pair A:B        two numbers (default 0:0)\n"
                                "  -h, --help        print this help and exit\n"
                                "  --version         print the version and exit\n";

FP_TEST(args_help_and_version)
{
    parse_run r;

    /* --help wins over what comes before it, bad or not, and stores nothing. */
    run_parse(&r, "TOPIC...", "1.2.3", WORDS("--count", "3", "--bogus", "--help", "--count=x"));
    FP_CHECK_INT(r.rc, FP_ARGS_EXIT);
    FP_CHECK_STR(r.out, help_text);
    FP_CHECK_STR(r.err, "");
    FP_CHECK_INT(r.o.count, 10);
    free_run(&r);

    run_parse(&r, "TOPIC...", "1.2.3", WORDS("-h"));
    FP_CHECK_INT(r.rc, FP_ARGS_EXIT);
    FP_CHECK_STR(r.out, help_text);
    free_run(&r);

    /* A value that reads "--help" is a value; after "--" it is a positional argument. */
    run_parse(&r, "TOPIC...", NULL, WORDS("--path", "--help", "--", "--help"));
    FP_CHECK_INT(r.rc, FP_ARGS_RUN);
    FP_CHECK_STR(r.o.path, "--help");
    FP_CHECK_STR(r.out, "");
    free_run(&r);

    run_parse(&r, NULL, "1.2.3 (lib 4)", WORDS("--version"));
    FP_CHECK_INT(r.rc, FP_ARGS_EXIT);
    FP_CHECK_STR(r.out, "prog 1.2.3 (lib 4)\n");
    free_run(&r);
}

FP_TEST(args_help_wraps_long_lines)
{
    bool flag = false;
    int64_t timeout_ms = 10000;
    const fp_arg args[] = {
        {.name = "a-rather-long-option-name",
         .type = FP_ARG_STRING,
         .dest = &(const char *){"x"},
         .metavar = "PATH",
         .help = "goes to a line of its own"},
        {.name = "flag",
         .type = FP_ARG_FLAG,
         .dest = &flag,
         .help = "a help text long enough that it has to wrap onto a second line below the "
                 "first one"},
        {.name = "timeout-ms",
         .type = FP_ARG_INT,
         .dest = &timeout_ms,
         .metavar = "MS",
         .help = "only half of its default would fit here",
         .min = 1,
         .max = 99999},
        FP_ARG_END,
    };
    fp_args_spec spec = {.program = "w",
                         .summary = "Wraps.",
                         .usage = "[--flag] FILE",
                         .epilog = "Notes: none.\n",
                         .args = args};
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    FP_CHECK(f != NULL);
    if (f == NULL)
        return;
    fp_args_print_help(&spec, f);
    fclose(f);
    FP_CHECK_STR(text,
                 "usage: w [--flag] FILE\n"
                 "\n"
                 "Wraps.\n"
                 "\n"
                 "Options:\n"
                 "  --a-rather-long-option-name PATH\n"
                 "                              goes to a line of its own (default x)\n"
                 "  --flag                      a help text long enough that it has to wrap onto\n"
                 "                              a second line below the first one\n"
                 "  --timeout-ms MS             only half of its default would fit here\n"
                 "                              (default 10000)\n"
                 "  -h, --help                  print this help and exit\n"
                 "\n"
                 "Notes: none.\n");
    free(text);
}
