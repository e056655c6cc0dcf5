/* fp_signal: SIGTERM/SIGINT turn into a flag the main loop polls; SIGPIPE is ignored. */
#ifndef FP_SIGNAL_H
#define FP_SIGNAL_H

#include <stdbool.h>

/* Installs the handlers. Returns 0 or -1. */
int fp_signal_install(void);

/* True once SIGTERM or SIGINT arrived (or fp_signal_request_stop was called). */
bool fp_signal_stop_requested(void);
void fp_signal_request_stop(void);

/* Clears a stop request (for tests that run a stage more than once in one process). */
void fp_signal_reset_stop(void);

/* True once per SIGHUP since the last call (for reloads). */
bool fp_signal_take_hup(void);

#endif
