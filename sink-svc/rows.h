/* rows: canonical records as rows of the telemetry table, in COPY text format.
 *
 * The column list is fixed here and shared by the COPY into the staging table and the
 * INSERT … SELECT that moves rows into telemetry. */
#ifndef FP_ROWS_H
#define FP_ROWS_H

#include "fp_buf.h"
#include "fp_record.h"

/* The columns written, comma-separated, in the order fp_rows_append_copy writes them. */
extern const char fp_rows_columns[];

/* Appends one COPY text-format line (tab-separated, \N for NULL, ending in '\n') for the
 * record. `scratch` is a work buffer. Returns 0 or -1 on out of memory. */
int fp_rows_append_copy(fp_buf *out, const fp_record *r, fp_buf *scratch);

#endif
