/* rows: canonical records as rows of the telemetry table.
 *
 * One list of columns (rows_columns, with their types rows_column_type) and one function that
 * produces each column's value, shared by every way rows reach a database: PostgreSQL's COPY in
 * its binary or its text format (rows_append_copy), and the parameters of a multi-row INSERT
 * (CrateDB, dialect.c; rows_fields).
 *
 * Both COPY formats store the same values: the binary format carries what the server would
 * have parsed from the text (a real is the float that strtof reads from the double's shortest
 * digits, -0 is 0, a timestamp outside years 0000-9999 is NULL). The records given must have
 * passed fp_record_check, which keeps every value inside its column's type. */
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

/* PostgreSQL's type of column i of rows_columns, as format_type() names it (NULL when i is no
 * column). A binary COPY needs the table's columns to have exactly these types. */
const char *rows_column_type(int i);

/* Calls field(ctx, i, text, len) for each column i in order, with the column's value as text
 * (not NUL-terminated, valid during the call only), or text == NULL for SQL NULL. `scratch`
 * is a work buffer. Returns 0, or the first non-zero value a call returned, or -1 on out of
 * memory. */
int rows_fields(const fp_record *r, fp_buf *scratch,
                int (*field)(void *ctx, int i, const char *text, size_t len), void *ctx);

/* The two formats of PostgreSQL's COPY. */
typedef enum rows_format { ROWS_COPY_BINARY = 0, ROWS_COPY_TEXT } rows_format;

/* Sets *bytes to what starts (header) or ends (trailer) a COPY's data in format f, the binary
 * format's header and trailer (nothing for text), and returns their length. These functions
 * can't fail. */
size_t rows_copy_header(rows_format f, const char **bytes);
size_t rows_copy_trailer(rows_format f, const char **bytes);

/* Appends one COPY row for the record: in text a line (tab-separated, \N for NULL, ending in
 * '\n'), in binary a tuple (its field count, then each field's length, -1 for NULL, and
 * bytes). `scratch` is a work buffer. Returns 0 or -1 on out of memory (out unchanged). */
int rows_append_copy(fp_buf *out, rows_format f, const fp_record *r, fp_buf *scratch);

/* The pieces of a COPY row of other columns, built from a telemetry row (rows_append_copy):
 * rows_copy_row_start (binary: the field count n), then fields, then rows_copy_row_end (text:
 * the newline). rows_copy_pick appends the fields at indexes col[0..n) (ascending) of the row
 * `row` (len bytes, as rows_append_copy wrote it), each as a field of the new row (text: with
 * its tab). All return 0, or -1 on out of memory or (rows_copy_pick) when the row has too few
 * fields; out is then unchanged. */
int rows_copy_row_start(fp_buf *out, rows_format f, int n);
int rows_copy_pick(fp_buf *out, rows_format f, const char *row, size_t len, const int *col, int n);
int rows_copy_row_end(fp_buf *out, rows_format f);

/* Appends, as one COPY field of type jsonb, the metrics column's object with only the metrics
 * named in names[0..n) (fp_record_encode_metrics_subset_json). `scratch` is a work buffer.
 * Returns 0 or -1 on out of memory (out unchanged). */
int rows_append_copy_metrics(fp_buf *out, rows_format f, const fp_record *r,
                             const char *const *names, size_t n, fp_buf *scratch);

#endif
