/* summary: what a batch adds to the hourly rollups, computed by the sink as it writes the rows,
 * so that the database gets about one element per device and one per device and hour instead of
 * every row (telemetry_rollup_summary_apply, migrations/006_rollup_summary.sql).
 *
 * The rows added must all be inserted (the direct COPY: a stored key fails it), each key once.
 * Per device the summary holds its first and last row (the first one's interval starts at the
 * device's newest stored row, which only the database knows) and per device and hour the
 * samples, first and last ts, highest speed and the sums over the intervals between the batch's
 * own rows: an interval belongs to the hour of its later row, engine hours and odometer count
 * only where they did not decrease, ignition seconds only after a row with ignition on and for
 * gaps of at most ten minutes (the contract of telemetry_hourly, README "Rollups").
 *
 * Values are taken as the database takes them from the stored row: a metric that is a number
 * is its double, a boolean one or an absent one is NULL. A string metric would be cast by the
 * database (telemetry_metric), which the sink does not imitate: such a device is marked (its
 * first ts NULL) and the database hands it back with the late ones, for the per-row step. */
#ifndef SUMMARY_H
#define SUMMARY_H

#include <stddef.h>

#include "common/fp_buf.h"
#include "common/fp_record.h"

/* The parameters of telemetry_rollup_summary_apply, in its order: ten device arrays, nine hour
 * arrays. */
#define SUMMARY_NPARAMS 19

typedef struct summary summary;

/* Returns NULL on out of memory. */
summary *summary_new(void);
void summary_free(summary *s); /* accepts NULL */

/* Forgets the rows (keeps the memory). */
void summary_clear(summary *s);

/* Adds an inserted row; the record is borrowed until the next summary_clear. `index` is handed
 * back by summary_rows_of. Returns 0 or -1 on out of memory. */
int summary_add(summary *s, const fp_record *rec, size_t index);

/* Rows added since the last clear. */
size_t summary_len(const summary *s);

/* Orders the rows and writes the parameters, as PostgreSQL array literals, to values[0..
 * SUMMARY_NPARAMS) (valid until the next call on s). Returns 0 or -1 on out of memory. */
int summary_build(summary *s, const char **values);

/* After summary_build: writes the indexes of the rows of device `device_id` to out (room for
 * summary_len) and returns how many. */
size_t summary_rows_of(const summary *s, const char *device_id, size_t *out);

#endif
