/* lookup: the enricher's remote lookups — a Nominatim-compatible reverse geocoder and an asset
 * registry — made asynchronously through one libcurl multi handle on the main loop.
 *
 * In front of each service: an LRU cache with TTL (cache_lru; geocoder keys are grid cells of
 * GEO_CACHE_CELL_M, so a parked machine asks once), single-flight (records waiting for a key
 * already requested wait for that request instead of making another), a bounded window of
 * requests in flight (more wait in a queue, and the enricher pauses consumption while any
 * wait), per-request timeouts, retries with jittered exponential backoff on timeouts,
 * connection errors and 5xx, and a circuit breaker per service (open after consecutive
 * failures, one half-open probe after a pause). A malformed answer is a failure of the lookup,
 * never of the record. */
#ifndef LOOKUP_H
#define LOOKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum lookup_kind { LOOKUP_GEO = 0, LOOKUP_ASSET = 1 } lookup_kind;
#define LOOKUP_KINDS 2

/* Fields of an answer. Geocoder: display_name, road, city, postcode, country, country_code.
 * Asset registry: customer, oem, model, serial_number, machine_type. NULL when absent. */
#define LOOKUP_FIELDS 6
/* The longest field kept from an answer (bytes; longer ones are cut at a character). */
#define LOOKUP_FIELD_MAX 512

typedef struct lookup_answer {
    char *f[LOOKUP_FIELDS];
} lookup_answer;

typedef enum lookup_outcome {
    LOOKUP_PENDING = 0,   /* the answer comes later, through the done callback */
    LOOKUP_ANSWERED = 1,  /* answer given */
    LOOKUP_NOT_FOUND = 2, /* the service knows nothing about it (404): an answer, not a failure */
    LOOKUP_FAILED = 3     /* no answer could be had (circuit open, retries spent, malformed) */
} lookup_outcome;

/* Called from lookup_poll for every waiter of a finished request. `answer` is valid during the
 * call only and is NULL unless outcome is LOOKUP_ANSWERED. */
typedef void (*lookup_done_fn)(void *ctx, uint64_t waiter, lookup_kind kind, lookup_outcome outcome,
                               const lookup_answer *answer);

typedef struct lookup_settings {
    const char *geocoder_url; /* base URL; NULL or "" disables the geocoder */
    const char *assets_url;   /* URL template with {device_id}; NULL or "" disables it */
    int64_t max_inflight;     /* requests in flight at most, over both services */
    int64_t timeout_ms;       /* per request */
    int64_t retries;          /* further attempts after a retryable failure */
    int64_t backoff_ms;       /* first retry delay; doubles, with jitter */
    int64_t cache_size;       /* entries per service; 0 disables caching and coalescing */
    int64_t cache_bytes;      /* bytes per service's cache at most */
    int64_t cache_ttl_ms;
    int64_t negative_ttl_ms; /* for "not found" */
    int64_t cb_failures;     /* consecutive failures that open the circuit */
    int64_t cb_open_ms;      /* how long it stays open before a probe */
    int64_t geo_cell_m;      /* geocoder cache grid, metres */
    bool wait_on_failure;    /* ENRICH_ON_FAILURE=wait: never give up, retry with backoff */
} lookup_settings;

typedef struct lookup_engine lookup_engine;

/* Creates the engine (and its metrics). Returns NULL with a message in err. */
lookup_engine *lookup_engine_new(const lookup_settings *s, lookup_done_fn done, void *ctx,
                                 char *err, size_t err_size);

/* Frees the engine, abandoning requests in flight (their waiters are not called); accepts
 * NULL. */
void lookup_engine_free(lookup_engine *e);

bool lookup_enabled(const lookup_engine *e, lookup_kind kind);

/* Asks for the address of (lat, lon) / the asset of device_id on behalf of waiter. Returns the
 * outcome when it is known now (cache hit, or circuit open when not waiting), with *answer set
 * for LOOKUP_ANSWERED (valid until the next call into the engine); or LOOKUP_PENDING: done is
 * called later, from lookup_poll. */
lookup_outcome lookup_geo(lookup_engine *e, double lat, double lon, uint64_t waiter,
                          const lookup_answer **answer);
lookup_outcome lookup_asset(lookup_engine *e, const char *device_id, uint64_t waiter,
                            const lookup_answer **answer);

/* The address of a known site: the geocoder's answer at the site's centre, cached under the
 * site's id, so every machine parked or working anywhere on the site shares one lookup. */
lookup_outcome lookup_geo_site(lookup_engine *e, const char *site_id, double center_lat,
                               double center_lon, uint64_t waiter, const lookup_answer **answer);

/* Drives the requests: starts queued and due ones, reads finished ones and calls done. Waits up
 * to max_wait_ms for network activity when requests are outstanding. */
void lookup_poll(lookup_engine *e, int max_wait_ms);

/* True once as many requests wait for a free slot as the window holds, until none waits (the
 * caller should take no more input meanwhile). */
bool lookup_busy(const lookup_engine *e);

/* Requests started or waiting (in flight, queued or waiting for a retry). */
size_t lookup_outstanding(const lookup_engine *e);

/* The geocoder cache key of a position: its grid cell, as text into out. */
void lookup_geo_cell(const lookup_engine *e, double lat, double lon, char *out, size_t out_size,
                     double *cell_lat, double *cell_lon);

/* lookup_geo_cell for cells of cell_m metres (what the engine does with GEO_CACHE_CELL_M):
 * "row:col" into out (cut to out_size - 1 bytes), and the cell's centre. */
void lookup_cell_key(double cell_m, double lat, double lon, char *out, size_t out_size,
                     double *cell_lat, double *cell_lon);

#endif
