#include "enricher-svc/lookup.h"

#include <cJSON.h>
#include <curl/curl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enricher-svc/cache.h"
#include "common/fp_buf.h"
#include "common/fp_hash.h"
#include "common/fp_log.h"
#include "common/fp_metrics.h"
#include "common/fp_time.h"

#define MAX_BODY (1024 * 1024) /* an answer larger than this is malformed */

typedef enum circuit_state {
    CIRCUIT_CLOSED = 0,
    CIRCUIT_OPEN = 1,
    CIRCUIT_HALF_OPEN = 2
} circuit_state;

/* Failure classes, the label of fleetpipe_enrich_lookup_errors_total. */
typedef enum failure_class {
    FAIL_TIMEOUT,
    FAIL_CONNECT,
    FAIL_HTTP_5XX,
    FAIL_HTTP_4XX,
    FAIL_MALFORMED,
    FAIL_CIRCUIT_OPEN,
    FAIL_CLASSES
} failure_class;

static const char *const failure_names[FAIL_CLASSES] = {"timeout",  "connect",   "http_5xx",
                                                        "http_4xx", "malformed", "circuit_open"};
static const char *const kind_names[LOOKUP_KINDS] = {"geocoder", "assets"};

typedef struct request {
    lookup_kind kind;
    char *key;
    char *url;
    int attempt;
    bool probe; /* the half-open circuit's single trial */
    CURL *easy;
    fp_buf body;
    double started;
    int64_t retry_at_ms;
    uint64_t *waiters;
    size_t nwaiters, capwaiters;
    struct request *next;          /* in the waiting or retry list */
    struct request *rprev, *rnext; /* in the running list */
    struct request *hnext;         /* in the single-flight table */
} request;

/* Per service: its cache, circuit and metrics. */
typedef struct service {
    bool enabled;
    cache_lru *cache;
    request **flights; /* single-flight table: key → request */
    size_t nflights;   /* buckets, power of two */
    circuit_state circuit;
    int64_t consecutive_failures;
    int64_t open_until_ms;
    bool probe_inflight;
    fp_counter *m_hits, *m_misses, *m_coalesced, *m_calls;
    fp_counter *m_errors[FAIL_CLASSES];
    fp_histogram *m_seconds;
    fp_gauge *m_circuit, *m_inflight, *m_entries;
    int64_t inflight;
} service;

/* Finished transfers' handles kept for reuse at most (the default ENRICH_MAX_INFLIGHT). */
#define IDLE_HANDLES 64

struct lookup_engine {
    lookup_settings s;
    lookup_done_fn done;
    void *ctx;
    CURLM *multi;
    struct curl_slist *headers;
    service svc[LOOKUP_KINDS];
    size_t inflight;                 /* requests running in curl */
    request *waiting, *waiting_tail; /* not started yet: the window was full */
    size_t nwaiting;
    request *retries; /* waiting for their retry time */
    size_t nretries;
    request *running;         /* in curl */
    CURL *idle[IDLE_HANDLES]; /* finished transfers' handles, reused by the next requests */
    size_t nidle;
    bool busy; /* see update_busy */
    uint64_t rng;
};

/* Bytes an answer takes in the cache. */
static size_t answer_size(const void *p)
{
    const lookup_answer *a = p;
    size_t n = sizeof(*a);

    for (int i = 0; i < LOOKUP_FIELDS; i++)
        n += a->f[i] != NULL ? strlen(a->f[i]) + 1 : 0;
    return n;
}

/* A copy of at most LOOKUP_FIELD_MAX bytes of s, cut at a UTF-8 character boundary: a field
 * of a lookup answer must not make a record too large for Kafka. NULL on out of memory. */
static char *field_copy(const char *s)
{
    size_t n = strlen(s);

    if (n > LOOKUP_FIELD_MAX) {
        n = LOOKUP_FIELD_MAX;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--; /* s[n] continues a character: cut before that character */
    }
    return strndup(s, n);
}

static void answer_free(void *p)
{
    lookup_answer *a = p;

    if (a == NULL)
        return;
    for (int i = 0; i < LOOKUP_FIELDS; i++)
        free(a->f[i]);
    free(a);
}

/* A uniform number in [0, 1) for jitter (xorshift; quality is irrelevant here). */
static double jitter_unit(lookup_engine *e)
{
    e->rng ^= e->rng << 13;
    e->rng ^= e->rng >> 7;
    e->rng ^= e->rng << 17;
    return (double)(e->rng >> 11) / 9007199254740992.0;
}

static request **flight_slot(service *sv, const char *key)
{
    request **p = &sv->flights[fp_hash_str(key) & (sv->nflights - 1)];

    while (*p != NULL && strcmp((*p)->key, key) != 0)
        p = &(*p)->hnext;
    return p;
}

static void flight_remove(service *sv, request *r)
{
    request **p;

    if (sv->flights == NULL)
        return;
    p = flight_slot(sv, r->key);
    if (*p == r)
        *p = r->hnext;
    r->hnext = NULL;
}

static void request_free(request *r)
{
    if (r == NULL)
        return;
    free(r->key);
    free(r->url);
    free(r->waiters);
    fp_buf_free(&r->body);
    free(r);
}

static int add_waiter(request *r, uint64_t waiter)
{
    if (r->nwaiters == r->capwaiters) {
        size_t cap = r->capwaiters != 0 ? r->capwaiters * 2 : 4;
        uint64_t *w = realloc(r->waiters, cap * sizeof(*w));

        if (w == NULL)
            return -1;
        r->waiters = w;
        r->capwaiters = cap;
    }
    r->waiters[r->nwaiters++] = waiter;
    return 0;
}

static void update_gauges(lookup_engine *e, lookup_kind k)
{
    service *sv = &e->svc[k];

    fp_gauge_set(sv->m_circuit, (double)sv->circuit);
    fp_gauge_set(sv->m_inflight, (double)sv->inflight);
    fp_gauge_set(sv->m_entries, (double)cache_size(sv->cache));
}

lookup_engine *lookup_engine_new(const lookup_settings *s, lookup_done_fn done, void *ctx,
                                 char *err, size_t err_size)
{
    lookup_engine *e = calloc(1, sizeof(*e));

    if (e == NULL) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    e->s = *s;
    e->done = done;
    e->ctx = ctx;
    e->rng = (uint64_t)fp_now_ms() | 1;
    e->svc[LOOKUP_GEO].enabled = s->geocoder_url != NULL && s->geocoder_url[0] != '\0';
    e->svc[LOOKUP_ASSET].enabled = s->assets_url != NULL && s->assets_url[0] != '\0';
    if (e->svc[LOOKUP_ASSET].enabled && strstr(s->assets_url, "{device_id}") == NULL) {
        snprintf(err, err_size, "ASSETS_URL: \"%s\" has no {device_id} placeholder", s->assets_url);
        goto err;
    }
    e->multi = curl_multi_init();
    if (e->multi == NULL) {
        snprintf(err, err_size, "cannot create a libcurl multi handle");
        goto err;
    }
    curl_multi_setopt(e->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)s->max_inflight);
    curl_multi_setopt(e->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)s->max_inflight);
    e->headers = curl_slist_append(NULL, "Accept: application/json");
    for (int k = 0; k < LOOKUP_KINDS; k++) {
        service *sv = &e->svc[k];
        char labels[64], elabels[96];

        sv->cache =
            cache_new((size_t)s->cache_size, s->cache_ttl_ms, s->negative_ttl_ms, answer_free);
        if (sv->cache != NULL)
            cache_limit_bytes(sv->cache, (size_t)s->cache_bytes, answer_size);
        sv->nflights = 1024;
        sv->flights = calloc(sv->nflights, sizeof(*sv->flights));
        if (sv->cache == NULL || sv->flights == NULL) {
            snprintf(err, err_size, "out of memory");
            goto err;
        }
        snprintf(labels, sizeof(labels), "lookup=\"%s\"", kind_names[k]);
        sv->m_hits = fp_metrics_counter("fleetpipe_enrich_cache_hits_total",
                                        "Lookups answered from the cache.", labels);
        sv->m_misses = fp_metrics_counter("fleetpipe_enrich_cache_misses_total",
                                          "Lookups the cache could not answer.", labels);
        sv->m_coalesced = fp_metrics_counter(
            "fleetpipe_enrich_coalesced_total",
            "Lookups that waited for a request already in flight for the same key.", labels);
        sv->m_calls = fp_metrics_counter("fleetpipe_enrich_remote_calls_total",
                                         "HTTP requests made to the lookup service.", labels);
        for (int c = 0; c < FAIL_CLASSES; c++) {
            snprintf(elabels, sizeof(elabels), "lookup=\"%s\",class=\"%s\"", kind_names[k],
                     failure_names[c]);
            sv->m_errors[c] = fp_metrics_counter("fleetpipe_enrich_lookup_errors_total",
                                                 "Failed lookup attempts, by class.", elabels);
        }
        sv->m_seconds = fp_metrics_histogram("fleetpipe_enrich_lookup_duration_seconds",
                                             "Duration of one HTTP lookup request.", labels,
                                             fp_latency_buckets, fp_latency_buckets_len);
        sv->m_circuit = fp_metrics_gauge("fleetpipe_enrich_circuit_state",
                                         "Circuit breaker: 0 closed, 1 open, 2 half-open.", labels);
        sv->m_inflight = fp_metrics_gauge("fleetpipe_enrich_lookups_inflight",
                                          "HTTP lookup requests in flight.", labels);
        sv->m_entries = fp_metrics_gauge("fleetpipe_enrich_cache_entries",
                                         "Entries in the lookup cache.", labels);
        update_gauges(e, (lookup_kind)k);
    }
    return e;
err:
    lookup_engine_free(e);
    return NULL;
}

static void free_list(request *r)
{
    while (r != NULL) {
        request *next = r->next;

        request_free(r);
        r = next;
    }
}

void lookup_engine_free(lookup_engine *e)
{
    if (e == NULL)
        return;
    while (e->running != NULL) {
        request *r = e->running;

        e->running = r->rnext;
        curl_multi_remove_handle(e->multi, r->easy);
        curl_easy_cleanup(r->easy);
        request_free(r);
    }
    while (e->nidle > 0)
        curl_easy_cleanup(e->idle[--e->nidle]);
    free_list(e->waiting);
    free_list(e->retries);
    for (int k = 0; k < LOOKUP_KINDS; k++) {
        cache_free(e->svc[k].cache);
        free(e->svc[k].flights);
    }
    if (e->multi != NULL)
        curl_multi_cleanup(e->multi);
    curl_slist_free_all(e->headers);
    free(e);
}

bool lookup_enabled(const lookup_engine *e, lookup_kind kind)
{
    return e->svc[kind].enabled;
}

bool lookup_busy(const lookup_engine *e)
{
    return e->busy;
}

/* Busy from the moment as many requests wait for a slot as the window holds, until the queue is
 * empty again: the hysteresis keeps consumption from pausing and resuming at every request
 * (each pause makes librdkafka drop and fetch again what it had prefetched). */
static void update_busy(lookup_engine *e)
{
    if (e->nwaiting >= (size_t)e->s.max_inflight)
        e->busy = true;
    else if (e->nwaiting == 0)
        e->busy = false;
}

size_t lookup_outstanding(const lookup_engine *e)
{
    return e->inflight + e->nwaiting + e->nretries;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    request *r = userdata;
    size_t n = size * nmemb;

    if (r->body.len + n > MAX_BODY || fp_buf_append(&r->body, data, n) < 0)
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR, treated as malformed */
    return n;
}

/* A finished transfer's handle is kept for the next request (at most IDLE_HANDLES of them):
 * creating one per request cost more CPU than the request's own HTTP work. */
static void release_easy(lookup_engine *e, CURL *easy)
{
    if (e->nidle < IDLE_HANDLES) {
        curl_easy_reset(easy); /* back to the defaults: start sets every option it uses */
        e->idle[e->nidle++] = easy;
    } else {
        curl_easy_cleanup(easy);
    }
}

/* Starts a request in curl. Returns 0 or -1 (then the request is failed by the caller). */
static int start(lookup_engine *e, request *r)
{
    r->easy = e->nidle > 0 ? e->idle[--e->nidle] : curl_easy_init();
    if (r->easy == NULL)
        return -1;
    fp_buf_clear(&r->body);
    curl_easy_setopt(r->easy, CURLOPT_URL, r->url);
    curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
    curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)e->s.timeout_ms);
    curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)e->s.timeout_ms);
    curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, e->headers);
    curl_easy_setopt(r->easy, CURLOPT_USERAGENT, "fleetpipe-enricher/" FP_VERSION);
    curl_easy_setopt(r->easy, CURLOPT_TCP_KEEPALIVE, 1L);
    if (curl_multi_add_handle(e->multi, r->easy) != CURLM_OK) {
        release_easy(e, r->easy);
        r->easy = NULL;
        return -1;
    }
    r->started = fp_mono_seconds();
    r->rprev = NULL;
    r->rnext = e->running;
    if (e->running != NULL)
        e->running->rprev = r;
    e->running = r;
    e->inflight++;
    e->svc[r->kind].inflight++;
    fp_counter_inc(e->svc[r->kind].m_calls);
    update_gauges(e, r->kind);
    return 0;
}

/* Hands the outcome to every waiter and frees the request. */
static void resolve(lookup_engine *e, request *r, lookup_outcome outcome, lookup_answer *answer)
{
    service *sv = &e->svc[r->kind];
    int64_t now = fp_mono_ms();

    flight_remove(sv, r);
    for (size_t i = 0; i < r->nwaiters; i++)
        e->done(e->ctx, r->waiters[i], r->kind, outcome,
                outcome == LOOKUP_ANSWERED ? answer : NULL);
    if (outcome == LOOKUP_ANSWERED || outcome == LOOKUP_NOT_FOUND) {
        /* The cache owns the answer from here (and frees it when caching is off). */
        cache_put(sv->cache, r->key, answer, outcome == LOOKUP_NOT_FOUND, now);
    } else {
        answer_free(answer);
    }
    update_gauges(e, r->kind);
    request_free(r);
}

/* Schedules another attempt at `at_ms`. */
static void schedule_retry(lookup_engine *e, request *r, int64_t at_ms)
{
    r->retry_at_ms = at_ms;
    r->next = e->retries;
    e->retries = r;
    e->nretries++;
}

/* Circuit check before a request starts: true when it may go. */
static bool circuit_allows(lookup_engine *e, request *r, int64_t now)
{
    service *sv = &e->svc[r->kind];

    if (sv->circuit == CIRCUIT_CLOSED)
        return true;
    if (sv->circuit == CIRCUIT_OPEN && now >= sv->open_until_ms) {
        sv->circuit = CIRCUIT_HALF_OPEN;
        fp_info("%s circuit half-open: probing", kind_names[r->kind]);
    }
    if (sv->circuit == CIRCUIT_HALF_OPEN && !sv->probe_inflight) {
        sv->probe_inflight = true;
        r->probe = true;
        return true;
    }
    return false;
}

static void circuit_success(lookup_engine *e, request *r)
{
    service *sv = &e->svc[r->kind];

    if (r->probe)
        sv->probe_inflight = false;
    if (sv->circuit != CIRCUIT_CLOSED)
        fp_info("%s circuit closed: the service answers again", kind_names[r->kind]);
    sv->circuit = CIRCUIT_CLOSED;
    sv->consecutive_failures = 0;
}

static void circuit_failure(lookup_engine *e, request *r, int64_t now)
{
    service *sv = &e->svc[r->kind];

    if (r->probe)
        sv->probe_inflight = false;
    sv->consecutive_failures++;
    if (sv->circuit == CIRCUIT_HALF_OPEN ||
        (sv->circuit == CIRCUIT_CLOSED && sv->consecutive_failures >= e->s.cb_failures)) {
        if (sv->circuit == CIRCUIT_CLOSED)
            fp_warn("%s circuit open after %lld consecutive failures", kind_names[r->kind],
                    (long long)sv->consecutive_failures);
        sv->circuit = CIRCUIT_OPEN;
        sv->open_until_ms = now + e->s.cb_open_ms;
    }
}

/* A request that cannot be answered now: retried, or failed to its waiters. */
static void give_up_or_wait(lookup_engine *e, request *r, int64_t now)
{
    service *sv = &e->svc[r->kind];

    if (e->s.wait_on_failure) {
        int64_t delay = e->s.backoff_ms << (r->attempt < 10 ? r->attempt : 10);
        int64_t at = now + delay / 2 + (int64_t)(jitter_unit(e) * (double)(delay / 2 + 1));

        if (sv->circuit == CIRCUIT_OPEN && at < sv->open_until_ms)
            at = sv->open_until_ms;
        r->attempt++;
        schedule_retry(e, r, at);
        return;
    }
    resolve(e, r, LOOKUP_FAILED, NULL);
}

/* Starts a request now if the circuit and the window allow, or queues it. */
static void launch(lookup_engine *e, request *r, int64_t now)
{
    if (!circuit_allows(e, r, now)) {
        fp_counter_inc(e->svc[r->kind].m_errors[FAIL_CIRCUIT_OPEN]);
        give_up_or_wait(e, r, now);
        return;
    }
    if (e->inflight >= (size_t)e->s.max_inflight) {
        if (r->probe) {
            e->svc[r->kind].probe_inflight = false;
            r->probe = false;
        }
        r->next = NULL;
        if (e->waiting_tail != NULL)
            e->waiting_tail->next = r;
        else
            e->waiting = r;
        e->waiting_tail = r;
        e->nwaiting++;
        update_busy(e);
        return;
    }
    if (start(e, r) < 0) {
        fp_error("cannot start a %s request", kind_names[r->kind]);
        give_up_or_wait(e, r, now);
    }
}

/* Parses an answer body into a lookup_answer. Returns the outcome (ANSWERED, NOT_FOUND or
 * FAILED for a malformed body). */
static lookup_outcome parse_answer(lookup_kind kind, const fp_buf *body, lookup_answer **out)
{
    static const char *const geo_paths[LOOKUP_FIELDS][4] = {
        {"display_name", NULL},
        {"road", "pedestrian", "footway", NULL},
        {"city", "town", "village", "municipality"},
        {"postcode", NULL},
        {"country", NULL},
        {"country_code", NULL},
    };
    static const char *const asset_fields[LOOKUP_FIELDS] = {
        "customer", "oem", "model", "serial_number", "machine_type", NULL};
    cJSON *root = cJSON_ParseWithLength(body->data, body->len);
    lookup_answer *a;
    int found = 0;

    *out = NULL;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return LOOKUP_FAILED;
    }
    if (kind == LOOKUP_GEO && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(root, "error"))) {
        /* Nominatim says "Unable to geocode" this way: nothing is there. */
        cJSON_Delete(root);
        return LOOKUP_NOT_FOUND;
    }
    a = calloc(1, sizeof(*a));
    if (a == NULL) {
        cJSON_Delete(root);
        return LOOKUP_FAILED;
    }
    for (int i = 0; i < LOOKUP_FIELDS; i++) {
        const cJSON *v = NULL;

        if (kind == LOOKUP_GEO) {
            const cJSON *from = i == 0 ? root : cJSON_GetObjectItemCaseSensitive(root, "address");

            for (int j = 0; j < 4 && geo_paths[i][j] != NULL && v == NULL; j++) {
                v = cJSON_GetObjectItemCaseSensitive(from, geo_paths[i][j]);
                if (!cJSON_IsString(v))
                    v = NULL;
            }
        } else if (asset_fields[i] != NULL) {
            v = cJSON_GetObjectItemCaseSensitive(root, asset_fields[i]);
            if (!cJSON_IsString(v))
                v = NULL;
        }
        if (v != NULL && v->valuestring[0] != '\0') {
            a->f[i] = field_copy(v->valuestring);
            found++;
        }
    }
    cJSON_Delete(root);
    /* A geocoder answer without display_name, or an asset without any field, is not one. */
    if ((kind == LOOKUP_GEO && a->f[0] == NULL) || found == 0) {
        answer_free(a);
        return LOOKUP_FAILED;
    }
    *out = a;
    return LOOKUP_ANSWERED;
}

/* One finished transfer: classify, then answer, retry or fail. */
static void finished(lookup_engine *e, request *r, CURLcode code, int64_t now)
{
    service *sv = &e->svc[r->kind];
    long status = 0;
    failure_class fail = FAIL_CLASSES;
    bool retryable = false;
    lookup_answer *answer = NULL;
    lookup_outcome outcome = LOOKUP_FAILED;

    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(e->multi, r->easy);
    release_easy(e, r->easy);
    r->easy = NULL;
    if (r->rprev != NULL)
        r->rprev->rnext = r->rnext;
    else
        e->running = r->rnext;
    if (r->rnext != NULL)
        r->rnext->rprev = r->rprev;
    r->rprev = r->rnext = NULL;
    e->inflight--;
    sv->inflight--;
    fp_histogram_observe(sv->m_seconds, fp_mono_seconds() - r->started);

    if (code == CURLE_OPERATION_TIMEDOUT) {
        fail = FAIL_TIMEOUT;
        retryable = true;
    } else if (code == CURLE_WRITE_ERROR) {
        fail = FAIL_MALFORMED;
    } else if (code != CURLE_OK) {
        fail = FAIL_CONNECT;
        retryable = true;
    } else if (status == 404) {
        outcome = LOOKUP_NOT_FOUND;
    } else if (status >= 500) {
        fail = FAIL_HTTP_5XX;
        retryable = true;
    } else if (status != 200) {
        fail = FAIL_HTTP_4XX;
    } else {
        outcome = parse_answer(r->kind, &r->body, &answer);
        if (outcome == LOOKUP_FAILED)
            fail = FAIL_MALFORMED;
    }
    if (fail == FAIL_CLASSES) {
        circuit_success(e, r);
        resolve(e, r, outcome, answer);
        return;
    }
    fp_counter_inc(sv->m_errors[fail]);
    circuit_failure(e, r, now);
    if (retryable && r->attempt < e->s.retries && sv->circuit != CIRCUIT_OPEN) {
        int64_t delay = e->s.backoff_ms << (r->attempt < 10 ? r->attempt : 10);

        r->attempt++;
        schedule_retry(e, r, now + delay / 2 + (int64_t)(jitter_unit(e) * (double)(delay / 2 + 1)));
        return;
    }
    give_up_or_wait(e, r, now);
}

/* Starts due retries and queued requests while the window has room. */
static void start_pending(lookup_engine *e, int64_t now)
{
    request **p = &e->retries;

    while (*p != NULL) {
        request *r = *p;

        if (r->retry_at_ms > now) {
            p = &r->next;
            continue;
        }
        *p = r->next;
        e->nretries--;
        r->next = NULL;
        launch(e, r, now);
    }
    while (e->waiting != NULL && e->inflight < (size_t)e->s.max_inflight) {
        request *r = e->waiting;

        e->waiting = r->next;
        if (e->waiting == NULL)
            e->waiting_tail = NULL;
        e->nwaiting--;
        r->next = NULL;
        launch(e, r, now);
    }
    update_busy(e);
}

static void read_finished(lookup_engine *e)
{
    CURLMsg *m;
    int left;

    while ((m = curl_multi_info_read(e->multi, &left)) != NULL) {
        request *r = NULL;

        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        finished(e, r, m->data.result, fp_mono_ms());
    }
}

void lookup_poll(lookup_engine *e, int max_wait_ms)
{
    int running = 0;

    start_pending(e, fp_mono_ms());
    if (e->inflight == 0 && e->nretries == 0)
        return;
    curl_multi_perform(e->multi, &running);
    read_finished(e);
    if (max_wait_ms > 0 && (e->inflight > 0 || e->nretries > 0)) {
        curl_multi_poll(e->multi, NULL, 0, max_wait_ms, NULL);
        curl_multi_perform(e->multi, &running);
        read_finished(e);
    }
    start_pending(e, fp_mono_ms());
}

/* What a lookup asks about: the point a geocoder is asked for, or the device an asset registry
 * is asked for. Its URL is built only when a request is sent (nearly every record is a cache
 * hit, and formatting the point's coordinates cost more than the cache look-up). */
typedef struct target {
    double lat, lon;
    const char *device_id;
} target;

static char *target_url(const lookup_engine *e, lookup_kind kind, const target *t);

/* Looks up key: cache, then a request in flight, else a new request. */
static lookup_outcome ask(lookup_engine *e, lookup_kind kind, const char *key, const target *t,
                          uint64_t waiter, const lookup_answer **answer)
{
    service *sv = &e->svc[kind];
    int64_t now = fp_mono_ms();
    void *value = NULL;
    bool negative = false;
    request **slot = NULL;
    request *r;

    if (cache_get(sv->cache, key, now, &value, &negative)) {
        fp_counter_inc(sv->m_hits);
        *answer = value;
        return negative ? LOOKUP_NOT_FOUND : LOOKUP_ANSWERED;
    }
    fp_counter_inc(sv->m_misses);
    if (cache_enabled(sv->cache)) {
        slot = flight_slot(sv, key);
        if (*slot != NULL) {
            if (add_waiter(*slot, waiter) < 0)
                return LOOKUP_FAILED;
            fp_counter_inc(sv->m_coalesced);
            return LOOKUP_PENDING;
        }
    }
    if (!e->s.wait_on_failure && sv->circuit == CIRCUIT_OPEN && now < sv->open_until_ms) {
        /* Fail fast without building a request. */
        fp_counter_inc(sv->m_errors[FAIL_CIRCUIT_OPEN]);
        return LOOKUP_FAILED;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL || (r->key = strdup(key)) == NULL || (r->url = target_url(e, kind, t)) == NULL ||
        add_waiter(r, waiter) < 0) {
        request_free(r);
        return LOOKUP_FAILED;
    }
    r->kind = kind;
    if (slot != NULL) {
        r->hnext = NULL;
        *slot = r;
    }
    launch(e, r, now);
    return LOOKUP_PENDING;
}

/* Writes a signed number's digits; out has room for 21 bytes. Returns how many it wrote. */
static size_t put_long(char *out, long v)
{
    if (v < 0) {
        out[0] = '-';
        return 1 + fp_buf_format_u64(out + 1, 0 - (uint64_t)v);
    }
    return fp_buf_format_u64(out, (uint64_t)v);
}

/* "row:col", the cell's cache key (as snprintf's "%ld:%ld" would write it, without its cost:
 * this runs for every record off a site). */
static void put_cell_key(char *out, size_t out_size, long row, long col)
{
    char text[48];
    size_t n = put_long(text, row);

    text[n++] = ':';
    n += put_long(text + n, col);
    text[n] = '\0';
    if (out_size > 0) {
        n = n < out_size - 1 ? n : out_size - 1;
        memcpy(out, text, n);
        out[n] = '\0';
    }
}

void lookup_geo_cell(const lookup_engine *e, double lat, double lon, char *out, size_t out_size,
                     double *cell_lat, double *cell_lon)
{
    lookup_cell_key(e->s.geo_cell_m > 0 ? (double)e->s.geo_cell_m : 100.0, lat, lon, out, out_size,
                    cell_lat, cell_lon);
}

void lookup_cell_key(double cell_m, double lat, double lon, char *out, size_t out_size,
                     double *cell_lat, double *cell_lon)
{
    /* Rows of equal height in latitude; each row's columns are as wide in metres as tall, at
     * the row's middle latitude. */
    double dlat = cell_m / 111320.0;
    long row = (long)floor((lat + 90.0) / dlat);
    double mid = -90.0 + ((double)row + 0.5) * dlat;
    double dlon = cell_m / (111320.0 * fmax(cos(mid * M_PI / 180.0), 0.01));
    long col = (long)floor((lon + 180.0) / dlon);

    put_cell_key(out, out_size, row, col);
    *cell_lat = mid;
    *cell_lon = -180.0 + ((double)col + 0.5) * dlon;
}

/* The geocoder's URL for the point (lat, lon), or NULL when memory runs out. */
static char *reverse_url(const lookup_engine *e, double lat, double lon)
{
    fp_buf b = {0};
    char *url = NULL;

    if (fp_buf_printf(&b, "%s/reverse?format=jsonv2&lat=%.7f&lon=%.7f", e->s.geocoder_url, lat,
                      lon) == 0)
        url = strdup(fp_buf_cstr(&b));
    fp_buf_free(&b);
    return url;
}

lookup_outcome lookup_geo(lookup_engine *e, double lat, double lon, uint64_t waiter,
                          const lookup_answer **answer)
{
    char key[64];
    double clat, clon;

    lookup_geo_cell(e, lat, lon, key, sizeof(key), &clat, &clon);
    /* The cell's centre is asked, so the cached answer is the cell's, whoever asked first. */
    return ask(e, LOOKUP_GEO, key, &(target){clat, clon, NULL}, waiter, answer);
}

lookup_outcome lookup_geo_site(lookup_engine *e, const char *site_id, double center_lat,
                               double center_lon, uint64_t waiter, const lookup_answer **answer)
{
    static const char prefix[] = "site:";
    const size_t plen = sizeof(prefix) - 1, len = strlen(site_id);
    char local[128], *key = local;
    lookup_outcome o;

    /* The key on the stack: a site's id is short, and this runs for every record on a site. */
    if (plen + len >= sizeof(local) && (key = malloc(plen + len + 1)) == NULL)
        return LOOKUP_FAILED;
    memcpy(key, prefix, plen);
    memcpy(key + plen, site_id, len + 1);
    o = ask(e, LOOKUP_GEO, key, &(target){center_lat, center_lon, NULL}, waiter, answer);
    if (key != local)
        free(key);
    return o;
}

/* Appends `s` percent-encoded so that it stays one path segment whatever it holds: every byte
 * but ASCII letters, digits, '-', '_' and '~' becomes %XX. Unlike curl_easy_escape this also
 * encodes '.', so that a device id "." or ".." (or one that the template's text around the
 * placeholder would turn into a dot segment) cannot make libcurl remove a path segment and send
 * the request to another endpoint of the registry. An encoded dot means the same to a server that
 * decodes the segment. Returns 0, or -1 when memory runs out. */
static int put_path_segment(fp_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";

    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        char esc[3] = {'%', hex[*p >> 4], hex[*p & 0x0f]};
        bool plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                     (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '~';

        if (plain ? fp_buf_putc(b, (char)*p) < 0 : fp_buf_append(b, esc, sizeof(esc)) < 0)
            return -1;
    }
    return 0;
}

/* The asset registry's URL for a device, or NULL when memory runs out. */
static char *asset_url(const lookup_engine *e, const char *device_id)
{
    const char *tpl = e->s.assets_url;
    const char *at = strstr(tpl, "{device_id}");
    fp_buf b = {0};
    char *url = NULL;

    if (fp_buf_append(&b, tpl, (size_t)(at - tpl)) == 0 && put_path_segment(&b, device_id) == 0 &&
        fp_buf_puts(&b, at + strlen("{device_id}")) == 0)
        url = strdup(fp_buf_cstr(&b));
    fp_buf_free(&b);
    return url;
}

static char *target_url(const lookup_engine *e, lookup_kind kind, const target *t)
{
    return kind == LOOKUP_GEO ? reverse_url(e, t->lat, t->lon) : asset_url(e, t->device_id);
}

lookup_outcome lookup_asset(lookup_engine *e, const char *device_id, uint64_t waiter,
                            const lookup_answer **answer)
{
    return ask(e, LOOKUP_ASSET, device_id, &(target){0, 0, device_id}, waiter, answer);
}
