/* enricher-svc: canonical records on telemetry.parsed → records with "enrichment" on
 * telemetry.enriched.
 *
 * Reads as: parse the configuration, load the geofences, connect, then for each record ask
 * where the machine is (site from local geofences, address from the reverse geocoder) and what
 * it is (asset registry), asynchronously, and emit each record when it and every record before
 * it in its partition are done; on SIGTERM drain and exit. A lookup that cannot answer never
 * drops a record: it leaves with status "partial" or "unavailable" (or, with
 * ENRICH_ON_FAILURE=wait, it waits). A record that is not a canonical record goes to the DLQ. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fp_buf.h"
#include "common/fp_config.h"
#include "common/fp_http.h"
#include "common/fp_kafka_output.h"
#include "common/fp_log.h"
#include "common/fp_metrics.h"
#include "common/fp_record.h"
#include "common/fp_signal.h"
#include "common/fp_stage.h"
#include "enricher-svc/geofence.h"
#include "enricher-svc/lookup.h"
#include "enricher-svc/enrich.h"

typedef struct enricher_config {
    fp_common_config common;
    const char *geocoder_url;
    const char *assets_url;
    const char *geofences_file;
    const char *on_failure;
    int64_t max_requests;
    int64_t timeout_ms;
    int64_t retries;
    int64_t backoff_ms;
    int64_t cache_size;
    int64_t cache_bytes;
    int64_t cache_ttl_ms;
    int64_t negative_ttl_ms;
    int64_t cb_failures;
    int64_t cb_open_ms;
    int64_t geo_cell_m;
} enricher_config;

#define OPT_INT(opt_name, opt_def, opt_help, lo, hi, field)                                        \
    {                                                                                              \
        .name = opt_name, .type = FP_OPT_INT, .def = opt_def, .help = opt_help, .min = lo,         \
        .max = hi, .offset = offsetof(enricher_config, field)                                      \
    }
#define OPT_STR(opt_name, opt_help, field)                                                         \
    {                                                                                              \
        .name = opt_name, .type = FP_OPT_STRING, .help = opt_help,                                 \
        .offset = offsetof(enricher_config, field)                                                 \
    }

static const fp_option enricher_options[] = {
    FP_COMMON_OPTIONS("fleetpipe-enricher", "telemetry.parsed", "telemetry.enriched", "9102",
                      "8388608"),
    OPT_STR("GEOCODER_URL",
            "Nominatim-compatible reverse geocoder base URL (…/reverse is appended); empty = off",
            geocoder_url),
    OPT_STR("ASSETS_URL", "asset registry URL template with {device_id}; empty = off", assets_url),
    OPT_STR("GEOFENCES_FILE", "GeoJSON FeatureCollection of site polygons; SIGHUP reloads it",
            geofences_file),
    {.name = "ENRICH_ON_FAILURE",
     .type = FP_OPT_ENUM,
     .def = "forward",
     .help = "forward: a failed lookup leaves the record partial/unavailable; wait: retry until it "
             "answers",
     .choices = "forward|wait",
     .offset = offsetof(enricher_config, on_failure)},
    OPT_INT("ENRICH_MAX_INFLIGHT", "64", "HTTP lookups in flight at most (more pause consumption)",
            1, 100000, max_requests),
    OPT_INT("ENRICH_TIMEOUT_MS", "2000", "timeout of one HTTP lookup", 1, 600000, timeout_ms),
    OPT_INT("ENRICH_RETRIES", "2", "retries of a lookup after a timeout, connection error or 5xx",
            0, 100, retries),
    OPT_INT("ENRICH_BACKOFF_MS", "100", "first retry delay (doubles, with jitter)", 1, 600000,
            backoff_ms),
    OPT_INT("ENRICH_CACHE_SIZE", "100000", "cache entries per lookup (0 = no cache)", 0, 100000000,
            cache_size),
    OPT_INT("ENRICH_CACHE_BYTES", "33554432", "bytes per lookup's cache at most", 4096,
            INT64_C(1) << 40, cache_bytes),
    OPT_INT("ENRICH_CACHE_TTL_MS", "86400000", "how long an answer is reused", 1, INT64_MAX / 4,
            cache_ttl_ms),
    OPT_INT("ENRICH_NEGATIVE_TTL_MS", "60000", "how long a 'not found' is reused", 0, INT64_MAX / 4,
            negative_ttl_ms),
    OPT_INT("ENRICH_CB_FAILURES", "5", "consecutive failures that open a lookup's circuit", 1,
            1000000, cb_failures),
    OPT_INT("ENRICH_CB_OPEN_MS", "5000", "how long an open circuit waits before a probe", 1,
            3600000, cb_open_ms),
    OPT_INT("GEO_CACHE_CELL_M", "100", "geocoder cache grid cell, metres", 1, 100000, geo_cell_m),
    FP_OPT_TABLE_END,
};

int main(int argc, char **argv)
{
    enricher_config cfg;
    enricher e;
    lookup_settings ls;
    fp_kafka_output *ko;
    fp_http *http;
    bool http_off;
    char err[512];
    int rc;

    memset(&cfg, 0, sizeof(cfg));
    fp_config_startup(argc, argv, "enricher-svc",
                      "Adds site, address and asset data to canonical records from IN_TOPIC and "
                      "writes them to OUT_TOPIC in partition order; bad input goes to DLQ_TOPIC.",
                      enricher_options, &cfg);
    fp_signal_install();
    fp_metrics_register_process("enricher-svc", FP_VERSION);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (enrich_init(&e, cfg.geofences_file) < 0) {
        fp_error("out of memory");
        return 2;
    }
    if (cfg.geofences_file != NULL && cfg.geofences_file[0] != '\0' &&
        enrich_load_geofences(&e) < 0)
        return 2;
    ls = (lookup_settings){.geocoder_url = cfg.geocoder_url,
                           .assets_url = cfg.assets_url,
                           .max_inflight = cfg.max_requests,
                           .timeout_ms = cfg.timeout_ms,
                           .retries = cfg.retries,
                           .backoff_ms = cfg.backoff_ms,
                           .cache_size = cfg.cache_size,
                           .cache_bytes = cfg.cache_bytes,
                           .cache_ttl_ms = cfg.cache_ttl_ms,
                           .negative_ttl_ms = cfg.negative_ttl_ms,
                           .cb_failures = cfg.cb_failures,
                           .cb_open_ms = cfg.cb_open_ms,
                           .geo_cell_m = cfg.geo_cell_m,
                           .wait_on_failure = strcmp(cfg.on_failure, "wait") == 0};
    e.lookups = lookup_engine_new(&ls, enrich_on_lookup_done, &e, err, sizeof(err));
    if (e.lookups == NULL) {
        fp_log_kv(FP_LOG_ERROR, "cannot start", "error", err, FP_KV_END);
        enrich_free(&e);
        return 2;
    }
    fp_info("lookups: geocoder %s, assets %s, geofences %s, on failure %s",
            lookup_enabled(e.lookups, LOOKUP_GEO) ? "on" : "off",
            lookup_enabled(e.lookups, LOOKUP_ASSET) ? "on" : "off",
            e.geofences != NULL ? "on" : "off", cfg.on_failure);

    ko = fp_kafka_output_new(&cfg.common);
    e.st = ko != NULL
               ? fp_stage_new("enricher", &cfg.common, fp_kafka_output_ops(ko), err, sizeof(err))
               : NULL;
    if (e.st == NULL) {
        fp_log_kv(FP_LOG_ERROR, "cannot start", "error", ko != NULL ? err : "out of memory",
                  FP_KV_END);
        rc = 2;
    } else {
        http = fp_http_start(cfg.common.http_bind, (int)cfg.common.http_port, &http_off);
        rc = http != NULL || http_off ? fp_stage_run(e.st, enrich_handle, &enrich_hooks, &e) : 1;
        fp_http_stop(http);
    }
    fp_stage_free(e.st);
    fp_kafka_output_free(ko);
    enrich_free(&e);
    curl_global_cleanup();
    return rc;
}
