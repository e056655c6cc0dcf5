/* inspect: `parser-svc decode [--hex] [--format F] [--device-id ID] < payload`. */
#ifndef INSPECT_H
#define INSPECT_H

/* The subcommand's usage lines, for --help. */
extern const char inspect_usage[];

/* Runs the subcommand (argv[1] is "decode"). Returns the exit code: 0, 1 on bad input, 2 on
 * bad usage. */
int inspect_command(int argc, char **argv);

#endif
