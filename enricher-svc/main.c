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
#include "enricher-svc/pending.h"

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
    FP_COMMON_OPTIONS("fleetpipe-enricher", "telemetry.parsed", "telemetry.enriched", "9102"),
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

typedef struct enricher {
    enricher_config cfg;
    fp_stage *st;
    lookup_engine *lookups;
    geofence_set *geofences;
    pending *items;
    fp_buf out;
    fp_counter *m_status[4];
    fp_gauge *m_pending, *m_sites;
    fp_counter *m_reloads_ok, *m_reloads_failed;
} enricher;

static void set_str(fp_record *r, fp_str *field, const char *value)
{
    if (value != NULL)
        fp_record_set_enrich_str(r, field, value, strlen(value));
}

/* Records one lookup's outcome in the item (not LOOKUP_PENDING). */
static void apply(pending_item *it, lookup_kind kind, lookup_outcome outcome,
                  const lookup_answer *a)
{
    fp_record *r = &it->rec;
    fp_enrichment *en = &r->enrichment;

    it->waiting &= (uint8_t) ~(1u << kind);
    if (outcome == LOOKUP_FAILED) {
        it->failed |= (uint8_t)(1u << kind);
        return;
    }
    if (outcome != LOOKUP_ANSWERED || a == NULL)
        return;
    if (kind == LOOKUP_GEO) {
        en->has_address = true;
        set_str(r, &en->address_display, a->f[0]);
        set_str(r, &en->address_road, a->f[1]);
        set_str(r, &en->address_city, a->f[2]);
        set_str(r, &en->address_postcode, a->f[3]);
        set_str(r, &en->address_country, a->f[4]);
        set_str(r, &en->address_country_code, a->f[5]);
    } else {
        en->has_asset = true;
        set_str(r, &en->asset_customer, a->f[0]);
        set_str(r, &en->asset_oem, a->f[1]);
        set_str(r, &en->asset_model, a->f[2]);
        set_str(r, &en->asset_serial, a->f[3]);
        set_str(r, &en->asset_machine_type, a->f[4]);
    }
}

static int popcount8(uint8_t v)
{
    int n = 0;

    for (; v != 0; v &= (uint8_t)(v - 1))
        n++;
    return n;
}

/* ok: everything asked answered; partial: some lookups failed; unavailable: all failed, or
 * nothing is configured at all. */
static fp_enrich_status final_status(const enricher *e, const pending_item *it)
{
    int asked = popcount8(it->asked) + (e->geofences != NULL ? 1 : 0);
    int failed = popcount8(it->failed);

    if (e->geofences == NULL && !lookup_enabled(e->lookups, LOOKUP_GEO) &&
        !lookup_enabled(e->lookups, LOOKUP_ASSET))
        return FP_ENRICH_UNAVAILABLE;
    if (failed == 0)
        return FP_ENRICH_OK;
    return failed == asked ? FP_ENRICH_UNAVAILABLE : FP_ENRICH_PARTIAL;
}

/* Emits one finished record (pending_flush calls it in partition order). */
static int emit_item(pending_item *it, void *ctx)
{
    enricher *e = ctx;
    fp_record *r = &it->rec;

    r->enrichment.status = final_status(e, it);
    fp_counter_inc(e->m_status[r->enrichment.status]);
    fp_buf_clear(&e->out);
    if (fp_record_encode_json(r, &e->out) < 0 ||
        fp_kafka_output_emit_for(e->st, it->token, r->device_id, strlen(r->device_id), e->out.data,
                                 e->out.len) < 0) {
        fp_stage_fail(e->st, "cannot emit an enriched record");
        return -1;
    }
    fp_stage_release(e->st, it->token);
    return 0;
}

/* Emits the finished prefix of a partition's records, in order. */
static void flush_partition(enricher *e, int32_t partition)
{
    pending_flush(e->items, partition, emit_item, e);
    fp_gauge_set(e->m_pending, (double)pending_count(e->items));
}

/* A lookup answered (from lookup_poll). */
static void on_lookup_done(void *ctx, uint64_t waiter, lookup_kind kind, lookup_outcome outcome,
                           const lookup_answer *answer)
{
    enricher *e = ctx;
    pending_item *it = pending_get(e->items, waiter);

    if (it == NULL)
        return; /* its partition was revoked meanwhile */
    apply(it, kind, outcome, answer);
    if (it->waiting == 0 && !it->setting_up) {
        it->done = true;
        flush_partition(e, it->partition);
    }
}

/* Asks one lookup for the item; the answer may come now or later. A record inside a known site
 * gets the site's address (one lookup per site), any other its grid cell's. */
static void ask(enricher *e, pending_item *it, uint64_t id, lookup_kind kind,
                const geofence_site *site)
{
    const lookup_answer *a = NULL;
    lookup_outcome o;

    it->asked |= (uint8_t)(1u << kind);
    it->waiting |= (uint8_t)(1u << kind);
    if (kind == LOOKUP_ASSET)
        o = lookup_asset(e->lookups, it->rec.device_id, id, &a);
    else if (site != NULL)
        o = lookup_geo_site(e->lookups, site->id, site->center_lat, site->center_lon, id, &a);
    else
        o = lookup_geo(e->lookups, it->rec.position.lat, it->rec.position.lon, id, &a);
    /* PENDING: the answer comes through on_lookup_done (which may already have run). */
    if (o != LOOKUP_PENDING)
        apply(it, kind, o, a);
}

static int handle_parsed(fp_stage *st, const rd_kafka_message_t *msg, void *ctx)
{
    enricher *e = ctx;
    const geofence_site *site = NULL;
    pending_item *it;
    uint64_t id;
    char why[256];
    int rc;

    if (pending_alloc(e->items, &id) < 0) {
        fp_stage_fail(st, "out of memory for a record");
        return -1;
    }
    it = pending_get(e->items, id);
    rc = fp_record_decode_json(&it->rec, msg->payload, msg->len, why, sizeof(why));
    if (rc < 0) {
        pending_release(e->items, id);
        return fp_stage_reject(st, fp_record_err_code(rc), why);
    }
    it->token = fp_stage_hold(st);
    if (pending_enqueue(e->items, id, msg->partition) < 0) {
        fp_stage_fail(st, "out of memory in the reorder buffer");
        return -1;
    }
    fp_gauge_set(e->m_pending, (double)pending_count(e->items));
    /* Whatever enrichment came in is replaced by today's answers. */
    memset(&it->rec.enrichment, 0, sizeof(it->rec.enrichment));
    if (e->geofences != NULL && it->rec.has_position) {
        site = geofence_find(e->geofences, it->rec.position.lat, it->rec.position.lon);
        if (site != NULL) {
            it->rec.enrichment.has_site = true;
            set_str(&it->rec, &it->rec.enrichment.site_id, site->id);
            set_str(&it->rec, &it->rec.enrichment.site_name, site->name);
        }
    }
    if (lookup_enabled(e->lookups, LOOKUP_GEO) && it->rec.has_position)
        ask(e, it, id, LOOKUP_GEO, site);
    if (lookup_enabled(e->lookups, LOOKUP_ASSET))
        ask(e, it, id, LOOKUP_ASSET, NULL);
    it->setting_up = false;
    if (it->waiting == 0) {
        it->done = true;
        flush_partition(e, it->partition);
    }
    return 0;
}

/* Loads (or reloads) the geofences. On failure the sites in use stay. Returns 0 or -1. */
static int load_geofences(enricher *e)
{
    char err[512];
    geofence_set *g;

    if (e->cfg.geofences_file == NULL || e->cfg.geofences_file[0] == '\0')
        return 0;
    g = geofence_load(e->cfg.geofences_file, err, sizeof(err));
    if (g == NULL) {
        fp_log_kv(FP_LOG_ERROR, "cannot load geofences; keeping the sites in use", "file",
                  e->cfg.geofences_file, "error", err, FP_KV_END);
        fp_counter_inc(e->m_reloads_failed);
        return -1;
    }
    geofence_free(e->geofences);
    e->geofences = g;
    fp_gauge_set(e->m_sites, (double)geofence_count(g));
    fp_counter_inc(e->m_reloads_ok);
    fp_info("geofences loaded: %zu sites from %s", geofence_count(g), e->cfg.geofences_file);
    return 0;
}

static void hook_poll(fp_stage *st, int max_wait_ms, void *ctx)
{
    enricher *e = ctx;

    (void)st;
    if (fp_signal_take_hup())
        load_geofences(e);
    lookup_poll(e->lookups, max_wait_ms);
}

static bool hook_busy(void *ctx)
{
    return lookup_busy(((enricher *)ctx)->lookups);
}

static size_t hook_pending(void *ctx)
{
    return pending_count(((enricher *)ctx)->items);
}

/* Drops the revoked partition's records: their offsets were not committed, so the partition's
 * next owner reads them again. Late answers for them find no item and are ignored. */
static void hook_revoked(fp_stage *st, int32_t partition, void *ctx)
{
    enricher *e = ctx;

    (void)st;
    pending_drop_partition(e->items, partition);
    fp_gauge_set(e->m_pending, (double)pending_count(e->items));
}

int main(int argc, char **argv)
{
    static const char *const status_names[4] = {"none", "ok", "partial", "unavailable"};
    fp_stage_hooks hooks = {hook_poll, hook_busy, hook_pending, hook_revoked};
    enricher e;
    lookup_settings ls;
    fp_kafka_output *ko;
    fp_http *http;
    bool http_off;
    char err[512];
    int rc;

    memset(&e, 0, sizeof(e));
    fp_config_startup(argc, argv, "enricher-svc",
                      "Adds site, address and asset data to canonical records from IN_TOPIC and "
                      "writes them to OUT_TOPIC in partition order; bad input goes to DLQ_TOPIC.",
                      enricher_options, &e.cfg);
    fp_signal_install();
    fp_metrics_register_process("enricher-svc", FP_VERSION);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    for (int s = 1; s < 4; s++) {
        char labels[64];

        snprintf(labels, sizeof(labels), "status=\"%s\"", status_names[s]);
        e.m_status[s] = fp_metrics_counter("fleetpipe_enrich_records_total",
                                           "Records enriched, by resulting status.", labels);
    }
    e.m_pending = fp_metrics_gauge("fleetpipe_enrich_pending_records",
                                   "Records waiting for lookups or for earlier records.", NULL);
    e.m_sites = fp_metrics_gauge("fleetpipe_enrich_geofence_sites", "Sites loaded.", NULL);
    e.m_reloads_ok = fp_metrics_counter("fleetpipe_enrich_geofence_loads_total",
                                        "Geofence loads, by result.", "result=\"ok\"");
    e.m_reloads_failed = fp_metrics_counter("fleetpipe_enrich_geofence_loads_total",
                                            "Geofence loads, by result.", "result=\"failed\"");
    if (e.cfg.geofences_file != NULL && e.cfg.geofences_file[0] != '\0' && load_geofences(&e) < 0)
        return 2;
    ls = (lookup_settings){.geocoder_url = e.cfg.geocoder_url,
                           .assets_url = e.cfg.assets_url,
                           .max_inflight = e.cfg.max_requests,
                           .timeout_ms = e.cfg.timeout_ms,
                           .retries = e.cfg.retries,
                           .backoff_ms = e.cfg.backoff_ms,
                           .cache_size = e.cfg.cache_size,
                           .cache_bytes = e.cfg.cache_bytes,
                           .cache_ttl_ms = e.cfg.cache_ttl_ms,
                           .negative_ttl_ms = e.cfg.negative_ttl_ms,
                           .cb_failures = e.cfg.cb_failures,
                           .cb_open_ms = e.cfg.cb_open_ms,
                           .geo_cell_m = e.cfg.geo_cell_m,
                           .wait_on_failure = strcmp(e.cfg.on_failure, "wait") == 0};
    e.lookups = lookup_engine_new(&ls, on_lookup_done, &e, err, sizeof(err));
    e.items = pending_new();
    if (e.lookups == NULL || e.items == NULL) {
        fp_log_kv(FP_LOG_ERROR, "cannot start", "error", e.lookups == NULL ? err : "out of memory",
                  FP_KV_END);
        return 2;
    }
    fp_info("lookups: geocoder %s, assets %s, geofences %s, on failure %s",
            lookup_enabled(e.lookups, LOOKUP_GEO) ? "on" : "off",
            lookup_enabled(e.lookups, LOOKUP_ASSET) ? "on" : "off",
            e.geofences != NULL ? "on" : "off", e.cfg.on_failure);

    ko = fp_kafka_output_new(&e.cfg.common);
    e.st = ko != NULL
               ? fp_stage_new("enricher", &e.cfg.common, fp_kafka_output_ops(ko), err, sizeof(err))
               : NULL;
    if (e.st == NULL) {
        fp_log_kv(FP_LOG_ERROR, "cannot start", "error", ko != NULL ? err : "out of memory",
                  FP_KV_END);
        rc = 2;
    } else {
        http = fp_http_start(e.cfg.common.http_bind, (int)e.cfg.common.http_port, &http_off);
        rc = http != NULL || http_off ? fp_stage_run(e.st, handle_parsed, &hooks, &e) : 1;
        fp_http_stop(http);
    }
    fp_stage_free(e.st);
    fp_kafka_output_free(ko);
    lookup_engine_free(e.lookups);
    geofence_free(e.geofences);
    pending_free(e.items);
    fp_buf_free(&e.out);
    curl_global_cleanup();
    return rc;
}
