/* Tests of enricher-svc/lookup.c against a real HTTP server (libmicrohttpd, on loopback, in
 * this process) whose answers each test scripts: single-flight, the cache, 404 as an answer,
 * retries, malformed answers, the circuit breaker and the in-flight window. */
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/fp_metrics.h"
#include "fp_test.h"
#include "common/fp_time.h"
#include "enricher-svc/lookup.h"

typedef enum server_mode { ANSWER, NOT_FOUND, UNAVAILABLE, GARBAGE } server_mode;

static _Atomic int mode;
static atomic_int requests;
static atomic_int in_flight;
static atomic_int max_in_flight;
static atomic_int delay_ms;

/* The raw request targets the server received (before libmicrohttpd decodes them), in order. */
#define MAX_PATHS 16
static char paths[MAX_PATHS][256];
static atomic_int npaths;

/* libmicrohttpd's URI log callback: sees each request's target exactly as sent. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    int i = atomic_fetch_add(&npaths, 1);

    (void)cls, (void)conn;
    if (i < MAX_PATHS)
        snprintf(paths[i], sizeof(paths[i]), "%s", uri);
    return NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_size, void **req_cls)
{
    static const char geo[] = "{\"display_name\":\"Vej 1, Køge, 4600, Denmark\",\"address\":"
                              "{\"road\":\"Vej 1\",\"town\":\"Køge\",\"postcode\":\"4600\","
                              "\"country\":\"Denmark\",\"country_code\":\"dk\"}}";
    static const char asset[] = "{\"customer\":\"Nordbyg A/S\",\"oem\":\"Volvo CE\","
                                "\"model\":\"EC220E\",\"serial_number\":\"S1\","
                                "\"machine_type\":\"excavator\"}";
    const char *body = strncmp(url, "/reverse", 8) == 0 ? geo : asset;
    unsigned int status = 200;
    struct MHD_Response *resp;
    enum MHD_Result rc;
    int now;

    (void)cls, (void)method, (void)version, (void)data, (void)data_size, (void)req_cls;
    atomic_fetch_add(&requests, 1);
    now = atomic_fetch_add(&in_flight, 1) + 1;
    for (int m = atomic_load(&max_in_flight); now > m;)
        if (atomic_compare_exchange_weak(&max_in_flight, &m, now))
            break;
    if (atomic_load(&delay_ms) > 0) {
        struct timespec ts = {0, (long)atomic_load(&delay_ms) * 1000000L};

        nanosleep(&ts, NULL); /* the scripted service latency */
    }
    switch (atomic_load(&mode)) {
    case NOT_FOUND:
        status = 404;
        body = "{\"error\":\"unknown asset\"}";
        break;
    case UNAVAILABLE:
        status = 503;
        body = "{\"error\":\"busy\"}";
        break;
    case GARBAGE:
        body = "{\"display_name\": oops";
        break;
    default:
        break;
    }
    resp = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
    rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    atomic_fetch_sub(&in_flight, 1);
    return rc;
}

typedef struct results {
    int calls;
    lookup_outcome outcome[64];
    char first_field[64][64];
} results;

static void on_done(void *ctx, uint64_t waiter, lookup_kind kind, lookup_outcome outcome,
                    const lookup_answer *answer)
{
    results *r = ctx;

    (void)kind;
    r->calls++;
    if (waiter < 64) {
        r->outcome[waiter] = outcome;
        snprintf(r->first_field[waiter], 64, "%s",
                 answer != NULL && answer->f[0] != NULL ? answer->f[0] : "");
    }
}

typedef struct fixture {
    struct MHD_Daemon *d;
    char geo_url[64], asset_url[96];
    lookup_settings s;
    results res;
} fixture;

static void fixture_start(fixture *f, server_mode m)
{
    memset(f, 0, sizeof(*f));
    atomic_store(&mode, m);
    atomic_store(&requests, 0);
    atomic_store(&max_in_flight, 0);
    atomic_store(&delay_ms, 0);
    atomic_store(&npaths, 0);
    fp_metrics_reset();
    f->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
                            NULL, NULL, on_request, NULL, MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL,
                            MHD_OPTION_END);
    if (f->d != NULL) {
        int port = MHD_get_daemon_info(f->d, MHD_DAEMON_INFO_BIND_PORT)->port;

        snprintf(f->geo_url, sizeof(f->geo_url), "http://127.0.0.1:%d", port);
        snprintf(f->asset_url, sizeof(f->asset_url), "http://127.0.0.1:%d/assets/{device_id}",
                 port);
    }
    f->s = (lookup_settings){.geocoder_url = f->geo_url,
                             .assets_url = f->asset_url,
                             .max_inflight = 8,
                             .timeout_ms = 2000,
                             .retries = 2,
                             .backoff_ms = 5,
                             .cache_size = 100,
                             .cache_bytes = 1 << 20,
                             .cache_ttl_ms = 60000,
                             .negative_ttl_ms = 60000,
                             .cb_failures = 5,
                             .cb_open_ms = 60000,
                             .geo_cell_m = 100,
                             .wait_on_failure = false};
}

static void fixture_stop(fixture *f)
{
    if (f->d != NULL)
        MHD_stop_daemon(f->d);
    fp_metrics_reset();
}

/* Polls until `want` done-callbacks arrived or 5 s passed. */
static void drive(lookup_engine *e, results *r, int want)
{
    int64_t deadline = fp_mono_ms() + 5000;

    while (r->calls < want && fp_mono_ms() < deadline)
        lookup_poll(e, 10);
}

FP_TEST(lookup_single_flight_then_cache)
{
    fixture f;
    lookup_engine *e;
    const lookup_answer *a = NULL;
    char err[128];

    fixture_start(&f, ANSWER);
    FP_CHECK(f.d != NULL);
    e = lookup_engine_new(&f.s, on_done, &f.res, err, sizeof(err));
    FP_CHECK(e != NULL);
    /* Twenty records within a few metres: one cell, one request. */
    for (uint64_t i = 0; i < 20; i++)
        FP_CHECK_INT(lookup_geo(e, 55.6761 + (double)i * 1e-6, 12.5683, i, &a), LOOKUP_PENDING);
    drive(e, &f.res, 20);
    FP_CHECK_INT(f.res.calls, 20);
    FP_CHECK_INT(atomic_load(&requests), 1);
    for (int i = 0; i < 20; i++) {
        FP_CHECK_INT(f.res.outcome[i], LOOKUP_ANSWERED);
        FP_CHECK_STR(f.res.first_field[i], "Vej 1, Køge, 4600, Denmark");
    }
    /* Now from the cache, at once and without a request. */
    FP_CHECK_INT(lookup_geo(e, 55.6761, 12.5683, 30, &a), LOOKUP_ANSWERED);
    FP_CHECK(a != NULL && strcmp(a->f[2], "Køge") == 0 && strcmp(a->f[5], "dk") == 0);
    FP_CHECK_INT(atomic_load(&requests), 1);
    lookup_engine_free(e);
    fixture_stop(&f);
}

FP_TEST(lookup_not_found_is_an_answer_and_cached)
{
    fixture f;
    lookup_engine *e;
    const lookup_answer *a = NULL;
    char err[128];

    fixture_start(&f, NOT_FOUND);
    e = lookup_engine_new(&f.s, on_done, &f.res, err, sizeof(err));
    FP_CHECK_INT(lookup_asset(e, "356307042441013", 1, &a), LOOKUP_PENDING);
    drive(e, &f.res, 1);
    FP_CHECK_INT(f.res.outcome[1], LOOKUP_NOT_FOUND);
    FP_CHECK_INT(lookup_asset(e, "356307042441013", 2, &a), LOOKUP_NOT_FOUND);
    FP_CHECK_INT(atomic_load(&requests), 1);
    lookup_engine_free(e);
    fixture_stop(&f);
}

FP_TEST(lookup_retries_5xx_then_fails)
{
    fixture f;
    lookup_engine *e;
    const lookup_answer *a = NULL;
    char err[128];

    fixture_start(&f, UNAVAILABLE);
    e = lookup_engine_new(&f.s, on_done, &f.res, err, sizeof(err));
    FP_CHECK_INT(lookup_asset(e, "d1", 1, &a), LOOKUP_PENDING);
    drive(e, &f.res, 1);
    FP_CHECK_INT(f.res.outcome[1], LOOKUP_FAILED);
    FP_CHECK_INT(atomic_load(&requests), 3); /* the first try and two retries */
    lookup_engine_free(e);
    fixture_stop(&f);
}

FP_TEST(lookup_malformed_answer_fails_without_retry)
{
    fixture f;
    lookup_engine *e;
    const lookup_answer *a = NULL;
    char err[128];

    fixture_start(&f, GARBAGE);
    e = lookup_engine_new(&f.s, on_done, &f.res, err, sizeof(err));
    FP_CHECK_INT(lookup_geo(e, 10, 10, 1, &a), LOOKUP_PENDING);
    drive(e, &f.res, 1);
    FP_CHECK_INT(f.res.outcome[1], LOOKUP_FAILED);
    FP_CHECK_INT(atomic_load(&requests), 1);
    lookup_engine_free(e);
    fixture_stop(&f);
}

FP_TEST(lookup_circuit_opens_and_fails_fast)
{
    fixture f;
    lookup_engine *e;
    const lookup_answer *a = NULL;
    char err[128];

    fixture_start(&f, UNAVAILABLE);
    f.s.retries = 0;
    f.s.cb_failures = 2;
    e = lookup_engine_new(&f.s, on_done, &f.res, err, sizeof(err));
    FP_CHECK_INT(lookup_asset(e, "a", 1, &a), LOOKUP_PENDING);
    FP_CHECK_INT(lookup_asset(e, "b", 2, &a), LOOKUP_PENDING);
    drive(e, &f.res, 2);
    FP_CHECK_INT(atomic_load(&requests), 2);
    /* Open: the next lookup fails at once, without a request. */
    FP_CHECK_INT(lookup_asset(e, "c", 3, &a), LOOKUP_FAILED);
    FP_CHECK_INT(atomic_load(&requests), 2);
    lookup_engine_free(e);
    fixture_stop(&f);
}

FP_TEST(lookup_window_bounds_requests_in_flight)
{
    fixture f;
    lookup_engine *e;
    const lookup_answer *a = NULL;
    char err[128], id[16];

    fixture_start(&f, ANSWER);
    atomic_store(&delay_ms, 50);
    f.s.max_inflight = 2;
    e = lookup_engine_new(&f.s, on_done, &f.res, err, sizeof(err));
    for (uint64_t i = 0; i < 6; i++) {
        snprintf(id, sizeof(id), "dev%d", (int)i);
        FP_CHECK_INT(lookup_asset(e, id, i, &a), LOOKUP_PENDING);
    }
    FP_CHECK(lookup_busy(e)); /* four wait for a slot */
    FP_CHECK_INT(lookup_outstanding(e), 6);
    drive(e, &f.res, 6);
    FP_CHECK_INT(f.res.calls, 6);
    FP_CHECK(!lookup_busy(e));
    FP_CHECK_INT(atomic_load(&requests), 6);
    FP_CHECK(atomic_load(&max_in_flight) <= 2);
    lookup_engine_free(e);
    fixture_stop(&f);
}

/* Decodes %XX escapes of s into out (out_size > strlen(s)). */
static void percent_decode(const char *s, char *out)
{
    size_t n = 0;

    for (size_t i = 0; s[i] != '\0'; i++) {
        unsigned v;

        if (s[i] == '%' && sscanf(s + i + 1, "%2x", &v) == 1) {
            out[n++] = (char)v;
            i += 2;
        } else {
            out[n++] = s[i];
        }
    }
    out[n] = '\0';
}

/* A device id that is a dot segment ("." or "..") or holds one must not move the request out of
 * the registry's path: the request goes to /assets/<the id, escaped> and nowhere else, and each
 * id gets its own request (no two ids meet at one normalised URL). */
FP_TEST(lookup_asset_ids_stay_inside_the_registry_path)
{
    static const char *const ids[] = {"..", ".", "a/../..", "..%2F", "%2E%2E", "x.y"};
    const size_t nids = sizeof(ids) / sizeof(ids[0]);
    fixture f;
    lookup_engine *e;
    const lookup_answer *a = NULL;
    char err[128];

    fixture_start(&f, ANSWER);
    FP_CHECK(f.d != NULL);
    e = lookup_engine_new(&f.s, on_done, &f.res, err, sizeof(err));
    FP_CHECK(e != NULL);
    for (size_t i = 0; i < nids; i++)
        FP_CHECK_INT(lookup_asset(e, ids[i], i, &a), LOOKUP_PENDING);
    drive(e, &f.res, (int)nids);
    FP_CHECK_INT(f.res.calls, (int)nids);
    FP_CHECK_INT(atomic_load(&npaths), (int)nids);
    for (int i = 0; i < atomic_load(&npaths) && i < MAX_PATHS; i++) {
        const char *seg = paths[i] + strlen("/assets/");
        char decoded[256];
        bool known = false;

        if (strncmp(paths[i], "/assets/", 8) != 0) {
            fp_test_fail(__FILE__, __LINE__, "request went to %s, outside /assets/", paths[i]);
            continue;
        }
        /* One segment, not a dot segment, that decodes back to one of the ids. */
        FP_CHECK(strchr(seg, '/') == NULL);
        FP_CHECK(strcmp(seg, ".") != 0 && strcmp(seg, "..") != 0);
        percent_decode(seg, decoded);
        for (size_t j = 0; j < nids; j++)
            known = known || strcmp(decoded, ids[j]) == 0;
        if (!known)
            fp_test_fail(__FILE__, __LINE__, "request %s names no device id asked for", paths[i]);
    }
    lookup_engine_free(e);
    fixture_stop(&f);
}

/* A geocoder request asks for the centre of the point's cell, or of the site, one after the
 * other on reused transfer handles; a cache hit sends nothing (its URL is never built). */
FP_TEST(lookup_reverse_asks_cell_and_site_centres)
{
    fixture f;
    lookup_engine *e;
    const lookup_answer *a = NULL;
    char err[128], key[64], want[2][128];
    double clat, clon;

    fixture_start(&f, ANSWER);
    FP_CHECK(f.d != NULL);
    f.s.max_inflight = 1; /* one transfer at a time: the second reuses the first's handle */
    e = lookup_engine_new(&f.s, on_done, &f.res, err, sizeof(err));
    FP_CHECK(e != NULL);
    lookup_geo_cell(e, 55.5754196, 12.3828269, key, sizeof(key), &clat, &clon);
    snprintf(want[0], sizeof(want[0]), "/reverse?format=jsonv2&lat=%.7f&lon=%.7f", clat, clon);
    snprintf(want[1], sizeof(want[1]), "/reverse?format=jsonv2&lat=%.7f&lon=%.7f", 55.25, 12.5);
    FP_CHECK_INT(lookup_geo(e, 55.5754196, 12.3828269, 0, &a), LOOKUP_PENDING);
    drive(e, &f.res, 1);
    FP_CHECK_INT(lookup_geo_site(e, "plant-7", 55.25, 12.5, 1, &a), LOOKUP_PENDING);
    drive(e, &f.res, 2);
    FP_CHECK_INT(f.res.calls, 2);
    FP_CHECK_INT(f.res.outcome[0], LOOKUP_ANSWERED);
    FP_CHECK_INT(f.res.outcome[1], LOOKUP_ANSWERED);
    /* The same cell and the same site again: answered from the cache, no request. */
    FP_CHECK_INT(lookup_geo(e, 55.5754190, 12.3828260, 2, &a), LOOKUP_ANSWERED);
    FP_CHECK_INT(lookup_geo_site(e, "plant-7", 55.25, 12.5, 3, &a), LOOKUP_ANSWERED);
    FP_CHECK_INT(atomic_load(&requests), 2);
    FP_CHECK_INT(atomic_load(&npaths), 2);
    FP_CHECK_STR(paths[0], want[0]);
    FP_CHECK_STR(paths[1], want[1]);
    lookup_engine_free(e);
    fixture_stop(&f);
}

/* The cell key reads "row:col" exactly as "%ld:%ld" prints it, signs included (a latitude
 * below -90 or a longitude below -180 gives a negative row or column), and a short buffer gets
 * the key cut like snprintf cuts it. */
FP_TEST(lookup_cell_key_is_row_colon_col)
{
    static const double points[][2] = {
        {55.5754196, 12.3828269}, {-90, -180},         {90, 180}, {0, 0}, {-91, -181},
        {-33.9, 151.2},           {89.9999, -179.9999}};
    fixture f;
    lookup_engine *e;
    char err[128];

    fixture_start(&f, ANSWER);
    e = lookup_engine_new(&f.s, on_done, &f.res, err, sizeof(err));
    FP_CHECK(e != NULL);
    for (size_t i = 0; e != NULL && i < sizeof(points) / sizeof(points[0]); i++) {
        char key[64], again[64], cut[5], want_cut[5];
        long row = 0, col = 0;
        double clat, clon;

        lookup_geo_cell(e, points[i][0], points[i][1], key, sizeof(key), &clat, &clon);
        FP_CHECK_INT(sscanf(key, "%ld:%ld", &row, &col), 2);
        snprintf(again, sizeof(again), "%ld:%ld", row, col);
        FP_CHECK_STR(key, again);
        lookup_geo_cell(e, points[i][0], points[i][1], cut, sizeof(cut), &clat, &clon);
        snprintf(want_cut, sizeof(want_cut), "%.4s", key);
        FP_CHECK_STR(cut, want_cut);
    }
    lookup_engine_free(e);
    fixture_stop(&f);
}
