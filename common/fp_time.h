/* fp_time: RFC 3339 UTC timestamps with milliseconds, without gmtime/strftime/timegm, and
 * clocks. Civil-date arithmetic follows the proleptic Gregorian calendar. */
#ifndef FP_TIME_H
#define FP_TIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FP_RFC3339_LEN 24 /* "2026-03-02T07:45:12.000Z" without NUL */

/* Writes ms since epoch as "YYYY-MM-DDTHH:MM:SS.mmmZ" plus NUL into out (at least 25 bytes).
 * Years 0000..9999 only; returns 24, or -1 when ms is outside that range (out then holds ""). */
int fp_time_format_ms(int64_t ms, char *out, size_t out_size);

/* Whether fp_time_format_ms writes ms (years 0000..9999). This function can't fail. */
bool fp_time_in_range(int64_t ms);

/* Parses RFC 3339 date-time (len bytes, no NUL needed): "YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)",
 * 't'/'z' and a space for 'T' accepted; fractions beyond milliseconds are truncated; a leap
 * second (:60) is read as :59.999. Returns 0 and sets *ms, or -1 when the text is not such a
 * timestamp. */
int fp_time_parse_ms(const char *s, size_t len, int64_t *ms);

/* Days since 1970-01-01 of a civil date, and back. */
int64_t fp_days_from_civil(int64_t y, unsigned m, unsigned d);
void fp_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);

/* Wall clock in ms since epoch (CLOCK_REALTIME) and monotonic clock in ms / seconds. */
int64_t fp_now_ms(void);
int64_t fp_mono_ms(void);
double fp_mono_seconds(void);

#endif
