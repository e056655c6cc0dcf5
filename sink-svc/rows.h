/* rows: canonical records as rows of the telemetry table.
 *
 * One list of columns (rows_columns) and one function that produces each column's text
 * (rows_fields), shared by both ways rows reach a database: PostgreSQL's COPY text format
 * (rows_append_copy) and the parameters of a multi-row INSERT (CrateDB, dialect.c). */
#ifndef ROWS_H
#define ROWS_H

#include <stddef.h>

#include "common/fp_buf.h"
#include "common/fp_record.h"

#define ROWS_NCOLS 29

/* The columns written, comma-separated, in the order rows_fields produces them. */
extern const char rows_columns[];

/* Writes to idx[0..max) the indexes in rows_columns of the comma-separated column names in
 * `names`. Returns how many names were found, stopping at the first that is not a column, or
 * -1 when there are more than max. */
int rows_column_indexes(const char *names, int *idx, int max);

/* Calls field(ctx, i, text, len) for each column i in order, with the column's value as text
 * (not NUL-terminated, valid during the call only), or text == NULL for SQL NULL. `scratch`
 * is a work buffer. Returns 0, or the first non-zero value a call returned, or -1 on out of
 * memory. */
int rows_fields(const fp_record *r, fp_buf *scratch,
                int (*field)(void *ctx, int i, const char *text, size_t len), void *ctx);

/* Appends one COPY text-format line (tab-separated, \N for NULL, ending in '\n') for the
 * record. `scratch` is a work buffer. Returns 0 or -1 on out of memory (out unchanged). */
int rows_append_copy(fp_buf *out, const fp_record *r, fp_buf *scratch);

/* Appends, as one COPY text field, the metrics column's object with only the metrics named in
 * names[0..n) (fp_record_encode_metrics_subset_json). `scratch` is a work buffer. Returns 0 or
 * -1 on out of memory (out unchanged). */
int rows_append_copy_metrics(fp_buf *out, const fp_record *r, const char *const *names, size_t n,
                             fp_buf *scratch);

#endif
