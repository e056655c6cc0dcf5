/* fp_metrics: a registry of counters, gauges and histograms rendered in the Prometheus text
 * exposition format 0.0.4.
 *
 * Series are created once (usually at start-up, or lazily for a bounded label set such as DLQ
 * error codes) and updated lock-free from the main loop; the HTTP thread renders them. Names
 * follow Prometheus conventions: prefix fleetpipe_, base units, counters end in _total. Labels
 * are a pre-rendered, bounded label set like `stage="parser",code="crc_mismatch"`. */
#ifndef FP_METRICS_H
#define FP_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "common/fp_buf.h"

typedef struct fp_counter fp_counter;
typedef struct fp_gauge fp_gauge;
typedef struct fp_histogram fp_histogram;

/* Returns the series with this name and labels, creating it (and its family) on first use.
 * `labels` may be NULL or "" for none; name, help and labels are copied. All series of one
 * name must be of one type and histograms of one name must share their buckets. Never returns
 * NULL: running out of memory or a type clash here is a bug, reported and aborted. */
fp_counter *fp_metrics_counter(const char *name, const char *help, const char *labels);
fp_gauge *fp_metrics_gauge(const char *name, const char *help, const char *labels);
/* `bounds` are the upper bounds of the buckets, ascending, without +Inf. */
fp_histogram *fp_metrics_histogram(const char *name, const char *help, const char *labels,
                                   const double *bounds, size_t nbounds);

void fp_counter_add(fp_counter *c, uint64_t n);
static inline void fp_counter_inc(fp_counter *c)
{
    fp_counter_add(c, 1);
}
uint64_t fp_counter_value(const fp_counter *c);

void fp_gauge_set(fp_gauge *g, double v);
void fp_gauge_add(fp_gauge *g, double delta);
double fp_gauge_value(const fp_gauge *g);

void fp_histogram_observe(fp_histogram *h, double v);
uint64_t fp_histogram_count(const fp_histogram *h);

/* Default buckets for durations in seconds, 0.5 ms .. 10 s. */
extern const double fp_latency_buckets[];
extern const size_t fp_latency_buckets_len;

/* Registers fleetpipe_build_info{service,version} 1 and the process_* metrics (resident
 * memory, CPU seconds, start time, open fds) that are read from /proc at render time. */
void fp_metrics_register_process(const char *service, const char *version);

/* Renders every family, sorted by name, into out. Returns 0, or -1 on out of memory. */
int fp_metrics_render(fp_buf *out);

/* Drops every series (for tests). Not safe while another thread renders or updates. */
void fp_metrics_reset(void);

#endif
