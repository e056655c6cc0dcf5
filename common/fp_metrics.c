#include "common/fp_metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fp_json.h"
#include "common/fp_log.h"
#include "common/fp_time.h"

typedef enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM } metric_type;

struct fp_counter {
    _Atomic uint64_t value;
};

/* Doubles are kept as their bit patterns in an atomic 64-bit word. */
struct fp_gauge {
    _Atomic uint64_t bits;
};

struct fp_histogram {
    size_t nbounds;
    double *bounds;
    _Atomic uint64_t *buckets; /* nbounds + 1 (the last is +Inf), not cumulative */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_bits;
};

typedef struct series {
    char *labels;
    union {
        fp_counter counter;
        fp_gauge gauge;
        fp_histogram histogram;
    } u;
    struct series *next;
} series;

typedef struct family {
    char *name;
    char *help;
    metric_type type;
    series *first, *last;
    struct family *next;
} family;

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static family *families;
static int64_t process_start_ms;
static bool process_registered;

const double fp_latency_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                     0.1,    0.25,  0.5,    1,     2.5,  5,     10};
const size_t fp_latency_buckets_len = sizeof(fp_latency_buckets) / sizeof(fp_latency_buckets[0]);

static uint64_t double_bits(double v)
{
    uint64_t u;

    memcpy(&u, &v, sizeof(u));
    return u;
}

static double bits_double(uint64_t u)
{
    double v;

    memcpy(&v, &u, sizeof(v));
    return v;
}

/* Aborts with a message: the registry is used wrongly or memory ran out at registration. */
static void registry_bug(const char *what, const char *name)
{
    fp_error("metrics registry: %s (%s)", what, name);
    abort();
}

static char *dup_or_die(const char *s)
{
    char *d = strdup(s != NULL ? s : "");

    if (d == NULL)
        registry_bug("out of memory", s != NULL ? s : "");
    return d;
}

/* Finds or creates the series; called with registry_lock held. */
static series *find_series(const char *name, const char *help, const char *labels, metric_type type,
                           bool *created)
{
    family *f;
    series *s;

    if (labels == NULL)
        labels = "";
    for (f = families; f != NULL; f = f->next)
        if (strcmp(f->name, name) == 0)
            break;
    if (f == NULL) {
        f = calloc(1, sizeof(*f));
        if (f == NULL)
            registry_bug("out of memory", name);
        f->name = dup_or_die(name);
        f->help = dup_or_die(help);
        f->type = type;
        f->next = families;
        families = f;
    } else if (f->type != type) {
        registry_bug("one name registered with two types", name);
    }
    for (s = f->first; s != NULL; s = s->next) {
        if (strcmp(s->labels, labels) == 0) {
            *created = false;
            return s;
        }
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        registry_bug("out of memory", name);
    s->labels = dup_or_die(labels);
    if (f->last != NULL)
        f->last->next = s;
    else
        f->first = s;
    f->last = s;
    *created = true;
    return s;
}

fp_counter *fp_metrics_counter(const char *name, const char *help, const char *labels)
{
    bool created;
    series *s;

    pthread_mutex_lock(&registry_lock);
    s = find_series(name, help, labels, METRIC_COUNTER, &created);
    pthread_mutex_unlock(&registry_lock);
    return &s->u.counter;
}

fp_gauge *fp_metrics_gauge(const char *name, const char *help, const char *labels)
{
    bool created;
    series *s;

    pthread_mutex_lock(&registry_lock);
    s = find_series(name, help, labels, METRIC_GAUGE, &created);
    pthread_mutex_unlock(&registry_lock);
    return &s->u.gauge;
}

fp_histogram *fp_metrics_histogram(const char *name, const char *help, const char *labels,
                                   const double *bounds, size_t nbounds)
{
    bool created;
    series *s;

    pthread_mutex_lock(&registry_lock);
    s = find_series(name, help, labels, METRIC_HISTOGRAM, &created);
    if (created) {
        fp_histogram *h = &s->u.histogram;

        h->nbounds = nbounds;
        h->bounds = malloc(nbounds * sizeof(double) + 1);
        h->buckets = calloc(nbounds + 1, sizeof(*h->buckets));
        if (h->bounds == NULL || h->buckets == NULL)
            registry_bug("out of memory", name);
        memcpy(h->bounds, bounds, nbounds * sizeof(double));
    }
    pthread_mutex_unlock(&registry_lock);
    return &s->u.histogram;
}

void fp_counter_add(fp_counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

uint64_t fp_counter_value(const fp_counter *c)
{
    return atomic_load_explicit(&c->value, memory_order_relaxed);
}

void fp_gauge_set(fp_gauge *g, double v)
{
    atomic_store_explicit(&g->bits, double_bits(v), memory_order_relaxed);
}

void fp_gauge_add(fp_gauge *g, double delta)
{
    uint64_t old = atomic_load_explicit(&g->bits, memory_order_relaxed);

    while (!atomic_compare_exchange_weak_explicit(&g->bits, &old,
                                                  double_bits(bits_double(old) + delta),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

double fp_gauge_value(const fp_gauge *g)
{
    return bits_double(atomic_load_explicit(&g->bits, memory_order_relaxed));
}

void fp_histogram_observe(fp_histogram *h, double v)
{
    size_t i = 0;
    uint64_t old;

    while (i < h->nbounds && v > h->bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    old = atomic_load_explicit(&h->sum_bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&h->sum_bits, &old,
                                                  double_bits(bits_double(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

uint64_t fp_histogram_count(const fp_histogram *h)
{
    return atomic_load_explicit(&h->count, memory_order_relaxed);
}

/* Appends a sample value: the shortest text that reads back exactly; NaN and infinities as
 * the exposition format spells them. */
static int put_sample_value(fp_buf *b, double v)
{
    if (v != v)
        return fp_buf_puts(b, "NaN");
    if (v > 1.7976931348623157e308)
        return fp_buf_puts(b, "+Inf");
    if (v < -1.7976931348623157e308)
        return fp_buf_puts(b, "-Inf");
    return fp_json_put_double(b, v);
}

/* Appends `name{labels[,extra]}` (the braces only when there is a label). */
static int put_series_name(fp_buf *b, const char *name, const char *suffix, const char *labels,
                           const char *extra)
{
    bool has_labels = labels[0] != '\0';
    bool has_extra = extra != NULL && extra[0] != '\0';

    if (fp_buf_puts(b, name) < 0 || fp_buf_puts(b, suffix) < 0)
        return -1;
    if (!has_labels && !has_extra)
        return 0;
    return fp_buf_printf(b, "{%s%s%s}", labels, has_labels && has_extra ? "," : "",
                         has_extra ? extra : "");
}

/* Appends HELP text with backslash and newline escaped, as the format requires. */
static int put_help(fp_buf *b, const char *help)
{
    for (const char *p = help; *p != '\0'; p++) {
        int rc;

        if (*p == '\\')
            rc = fp_buf_puts(b, "\\\\");
        else if (*p == '\n')
            rc = fp_buf_puts(b, "\\n");
        else
            rc = fp_buf_putc(b, *p);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int render_histogram(fp_buf *b, const char *name, const series *s)
{
    const fp_histogram *h = &s->u.histogram;
    uint64_t cumulative = 0;
    char le[64];
    int rc = 0;

    for (size_t i = 0; i <= h->nbounds && rc == 0; i++) {
        cumulative += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        if (i < h->nbounds) {
            fp_buf tmp = {0};
            put_sample_value(&tmp, h->bounds[i]);
            snprintf(le, sizeof(le), "le=\"%s\"", fp_buf_cstr(&tmp));
            fp_buf_free(&tmp);
        } else {
            snprintf(le, sizeof(le), "le=\"+Inf\"");
        }
        rc = put_series_name(b, name, "_bucket", s->labels, le);
        if (rc == 0)
            rc = fp_buf_putc(b, ' ');
        if (rc == 0)
            rc = fp_buf_put_u64(b, cumulative);
        if (rc == 0)
            rc = fp_buf_putc(b, '\n');
    }
    if (rc == 0)
        rc = put_series_name(b, name, "_sum", s->labels, NULL);
    if (rc == 0)
        rc = fp_buf_putc(b, ' ');
    if (rc == 0)
        rc = put_sample_value(
            b, bits_double(atomic_load_explicit(&h->sum_bits, memory_order_relaxed)));
    if (rc == 0)
        rc = fp_buf_putc(b, '\n');
    if (rc == 0)
        rc = put_series_name(b, name, "_count", s->labels, NULL);
    if (rc == 0)
        rc = fp_buf_printf(b, " %llu\n", (unsigned long long)cumulative);
    return rc;
}

/* Reads the process figures from /proc and updates their gauges/counters. */
static void refresh_process_metrics(void)
{
    char buf[1024];
    FILE *f;
    long page = sysconf(_SC_PAGESIZE);
    long ticks = sysconf(_SC_CLK_TCK);

    f = fopen("/proc/self/statm", "r");
    if (f != NULL) {
        unsigned long size = 0, resident = 0;

        if (fscanf(f, "%lu %lu", &size, &resident) == 2) {
            fp_gauge_set(fp_metrics_gauge("process_resident_memory_bytes",
                                          "Resident memory size in bytes.", NULL),
                         (double)resident * (double)page);
            fp_gauge_set(fp_metrics_gauge("process_virtual_memory_bytes",
                                          "Virtual memory size in bytes.", NULL),
                         (double)size * (double)page);
        }
        fclose(f);
    }
    f = fopen("/proc/self/stat", "r");
    if (f != NULL) {
        if (fgets(buf, sizeof(buf), f) != NULL) {
            /* Fields after the command name, which is in parentheses and may hold spaces. */
            const char *p = strrchr(buf, ')');
            unsigned long utime = 0, stime = 0;

            if (p != NULL && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                                    &utime, &stime) == 2)
                fp_gauge_set(fp_metrics_gauge("process_cpu_seconds_total",
                                              "Total user and system CPU time spent in seconds.",
                                              NULL),
                             (double)(utime + stime) / (double)ticks);
        }
        fclose(f);
    }
}

int fp_metrics_render(fp_buf *out)
{
    family **sorted = NULL;
    size_t n = 0, i;
    int rc = 0;

    if (process_registered)
        refresh_process_metrics();
    pthread_mutex_lock(&registry_lock);
    for (family *f = families; f != NULL; f = f->next)
        n++;
    sorted = calloc(n + 1, sizeof(*sorted));
    if (sorted == NULL) {
        pthread_mutex_unlock(&registry_lock);
        return -1;
    }
    i = 0;
    for (family *f = families; f != NULL; f = f->next)
        sorted[i++] = f;
    /* Insertion sort: the registry holds a few dozen families. */
    for (i = 1; i < n; i++) {
        family *f = sorted[i];
        size_t j = i;

        while (j > 0 && strcmp(sorted[j - 1]->name, f->name) > 0) {
            sorted[j] = sorted[j - 1];
            j--;
        }
        sorted[j] = f;
    }
    for (i = 0; i < n && rc == 0; i++) {
        const family *f = sorted[i];
        /* A gauge whose name ends in _total (process_cpu_seconds_total) is exposed as a
         * counter, which is what it is; it is only set, never added to, from /proc. */
        bool counter_like =
            f->type == METRIC_COUNTER ||
            (strlen(f->name) > 6 && strcmp(f->name + strlen(f->name) - 6, "_total") == 0);
        const char *type = f->type == METRIC_HISTOGRAM ? "histogram"
                           : counter_like              ? "counter"
                                                       : "gauge";

        rc = fp_buf_printf(out, "# HELP %s ", f->name);
        if (rc == 0)
            rc = put_help(out, f->help);
        if (rc == 0)
            rc = fp_buf_printf(out, "\n# TYPE %s %s\n", f->name, type);
        for (const series *s = f->first; s != NULL && rc == 0; s = s->next) {
            if (f->type == METRIC_HISTOGRAM) {
                rc = render_histogram(out, f->name, s);
                continue;
            }
            rc = put_series_name(out, f->name, "", s->labels, NULL);
            if (rc == 0)
                rc = fp_buf_putc(out, ' ');
            if (rc == 0)
                rc = f->type == METRIC_COUNTER
                         ? fp_buf_put_u64(out, fp_counter_value(&s->u.counter))
                         : put_sample_value(out, fp_gauge_value(&s->u.gauge));
            if (rc == 0)
                rc = fp_buf_putc(out, '\n');
        }
    }
    pthread_mutex_unlock(&registry_lock);
    free(sorted);
    return rc;
}

void fp_metrics_register_process(const char *service, const char *version)
{
    char labels[256];

    snprintf(labels, sizeof(labels), "service=\"%s\",version=\"%s\"", service, version);
    fp_gauge_set(fp_metrics_gauge("fleetpipe_build_info",
                                  "Build information; the value is always 1.", labels),
                 1);
    process_start_ms = fp_now_ms();
    fp_gauge_set(fp_metrics_gauge("process_start_time_seconds",
                                  "Start time of the process since unix epoch in seconds.", NULL),
                 (double)(process_start_ms / 1000));
    process_registered = true;
    refresh_process_metrics();
}

void fp_metrics_reset(void)
{
    pthread_mutex_lock(&registry_lock);
    while (families != NULL) {
        family *f = families;

        families = f->next;
        while (f->first != NULL) {
            series *s = f->first;

            f->first = s->next;
            if (f->type == METRIC_HISTOGRAM) {
                free(s->u.histogram.bounds);
                free((void *)s->u.histogram.buckets);
            }
            free(s->labels);
            free(s);
        }
        free(f->name);
        free(f->help);
        free(f);
    }
    process_registered = false;
    pthread_mutex_unlock(&registry_lock);
}
