/* fp_record_check: what a canonical record must hold to be stored.
 *
 * One check of the record, whichever decoder made it, so that the database never refuses a
 * record the parser let through (every refusal there costs the sink savepoint COPYs to isolate
 * the row): each typed column's range (ts, received_at timestamptz in years 0001 to 9999; lat,
 * lon double precision within ±90/±180; alt_m,
 * heading_deg, speed_kmh real; satellites, priority smallint; event_io integer), metric numbers
 * finite, no metric and no IO element named twice (the typed column would take one and jsonb
 * another), no U+0000 in any text (text and jsonb refuse it), and a device id that is not a
 * dot segment ("." or "..": it becomes a path segment of the asset registry's URL). */
#ifndef FP_RECORD_CHECK_H
#define FP_RECORD_CHECK_H

#include <stddef.h>

#include "common/fp_record.h"

/* Returns 0 when the record can be stored, else a negative fp_record_err (FP_REC_ERR_RANGE,
 * FP_REC_ERR_DUPLICATE, FP_REC_ERR_NUL, FP_REC_ERR_BAD_DEVICE_ID, FP_REC_ERR_DEVICE_ID,
 * FP_REC_ERR_NOMEM) with the
 * reason in errmsg (when not NULL; always NUL-terminated). */
int fp_record_check(const fp_record *r, char *errmsg, size_t errmsg_size);

#endif
