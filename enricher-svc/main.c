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

#include "fp_buf.h"
#include "fp_config.h"
#include "fp_http.h"
#include "fp_log.h"
#include "fp_metrics.h"
#include "fp_record.h"
#include "fp_signal.h"
#include "fp_stage.h"
#include "geofence.h"
#include "lookup.h"
#include "reorder.h"

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
    int64_t cache_ttl_ms;
    int64_t negative_ttl_ms;
    int64_t cb_failures;
    int64_t cb_open_ms;
    int64_t geo_cell_m;
} enricher_config;

#define OPT_INT(name, def, help, lo, hi, field)                                                    \
    {                                                                                              \
        name, FP_OPT_INT, def, help, false, false, lo, hi, NULL, offsetof(enricher_config, field)  \
    }
#define OPT_STR(name, help, field)                                                                 \
    {                                                                                              \
        name, FP_OPT_STRING, NULL, help, false, false, 0, 0, NULL,                                 \
            offsetof(enricher_config, field)                                                       \
    }

static const fp_option enricher_options[] = {
    FP_COMMON_OPTIONS("fleetpipe-enricher", "telemetry.parsed", "telemetry.enriched", "9102"),
    OPT_STR("GEOCODER_URL",
            "Nominatim-compatible reverse geocoder base URL (…/reverse is appended); empty = off",
            geocoder_url),
    OPT_STR("ASSETS_URL", "asset registry URL template with {device_id}; empty = off", assets_url),
    OPT_STR("GEOFENCES_FILE", "GeoJSON FeatureCollection of site polygons; SIGHUP reloads it",
            geofences_file),
    {"ENRICH_ON_FAILURE", FP_OPT_ENUM, "forward",
     "forward: a failed lookup leaves the record partial/unavailable; wait: retry until it "
     "answers",
     false, false, 0, 0, "forward|wait", offsetof(enricher_config, on_failure)},
    OPT_INT("ENRICH_MAX_INFLIGHT", "64", "HTTP lookups in flight at most (more pause consumption)",
            1, 100000, max_requests),
    OPT_INT("ENRICH_TIMEOUT_MS", "2000", "timeout of one HTTP lookup", 1, 600000, timeout_ms),
    OPT_INT("ENRICH_RETRIES", "2", "retries of a lookup after a timeout, connection error or 5xx",
            0, 100, retries),
    OPT_INT("ENRICH_BACKOFF_MS", "100", "first retry delay (doubles, with jitter)", 1, 600000,
            backoff_ms),
    OPT_INT("ENRICH_CACHE_SIZE", "100000", "cache entries per lookup (0 = no cache)", 0, 100000000,
            cache_size),
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

/* One record between its arrival and its departure. */
typedef struct item {
    uint32_t gen;
    bool used;
    bool setting_up; /* the handler is still asking: answers must not finish it yet */
    bool done;
    uint8_t asked, waiting, failed; /* bits per lookup_kind */
    uint64_t token;
    int32_t partition;
    uint32_t next_free;
    fp_record rec;
} item;

#define NO_ITEM UINT32_MAX

typedef struct enricher {
    enricher_config cfg;
    fp_stage *st;
    lookup_engine *lookups;
    fp_geofences *geofences;
    fp_reorder *order;
    item *items;
    uint32_t nitems, used, free_head;
    fp_buf out;
    fp_counter *m_status[4];
    fp_gauge *m_pending, *m_sites;
    fp_counter *m_reloads_ok, *m_reloads_failed;
} enricher;

static uint64_t item_id(const enricher *e, uint32_t idx)
{
    return (uint64_t)e->items[idx].gen << 32 | idx;
}

/* The item of an id, or NULL when it has left (or its partition was revoked) since. */
static item *item_get(enricher *e, uint64_t id)
{
    uint32_t idx = (uint32_t)id;

    if (idx >= e->nitems || !e->items[idx].used || e->items[idx].gen != (uint32_t)(id >> 32))
        return NULL;
    return &e->items[idx];
}

/* Takes a free item, growing the pool. Returns its index, or NO_ITEM on out of memory. */
static uint32_t item_alloc(enricher *e)
{
    uint32_t idx;

    if (e->free_head == NO_ITEM) {
        uint32_t n = e->nitems != 0 ? e->nitems * 2 : 256;
        item *items = realloc(e->items, n * sizeof(*items));

        if (items == NULL)
            return NO_ITEM;
        for (uint32_t i = e->nitems; i < n; i++) {
            memset(&items[i], 0, sizeof(items[i]));
            fp_record_init(&items[i].rec);
            items[i].next_free = i + 1 < n ? i + 1 : e->free_head;
        }
        e->free_head = e->nitems;
        e->items = items;
        e->nitems = n;
    }
    idx = e->free_head;
    e->free_head = e->items[idx].next_free;
    e->items[idx].used = true;
    e->items[idx].done = false;
    e->items[idx].setting_up = true;
    e->items[idx].asked = e->items[idx].waiting = e->items[idx].failed = 0;
    e->used++;
    fp_gauge_set(e->m_pending, e->used);
    return idx;
}

static void item_release(enricher *e, uint32_t idx)
{
    item *it = &e->items[idx];

    it->used = false;
    it->gen++;
    it->next_free = e->free_head;
    e->free_head = idx;
    e->used--;
    fp_gauge_set(e->m_pending, e->used);
}

static void set_str(fp_record *r, fp_str *field, const char *value)
{
    if (value != NULL)
        fp_record_set_enrich_str(r, field, value, strlen(value));
}

/* Records one lookup's outcome in the item (not LOOKUP_PENDING). */
static void apply(item *it, lookup_kind kind, lookup_outcome outcome, const lookup_answer *a)
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
static fp_enrich_status final_status(const enricher *e, const item *it)
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

/* Emits the finished prefix of a partition's records, in order. */
static void flush_partition(enricher *e, int32_t partition)
{
    uint64_t id;

    while (fp_reorder_head(e->order, partition, &id) == 0) {
        item *it = item_get(e, id);
        fp_record *r;

        if (it == NULL) { /* cannot happen: items leave only through here or revocation */
            fp_reorder_pop(e->order, partition);
            continue;
        }
        if (!it->done)
            return;
        r = &it->rec;
        r->enrichment.status = final_status(e, it);
        fp_counter_inc(e->m_status[r->enrichment.status]);
        fp_buf_clear(&e->out);
        if (fp_record_encode_json(r, &e->out) < 0 ||
            fp_stage_emit_for(e->st, it->token, r->device_id, strlen(r->device_id), e->out.data,
                              e->out.len) < 0) {
            fp_stage_fail(e->st, "cannot emit an enriched record");
            return;
        }
        fp_stage_release(e->st, it->token);
        fp_reorder_pop(e->order, partition);
        item_release(e, (uint32_t)id);
    }
}

/* A lookup answered (from lookup_poll). */
static void on_lookup_done(void *ctx, uint64_t waiter, lookup_kind kind, lookup_outcome outcome,
                           const lookup_answer *answer)
{
    enricher *e = ctx;
    item *it = item_get(e, waiter);

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
static void ask(enricher *e, item *it, uint64_t id, lookup_kind kind, const fp_site *site)
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
    uint32_t idx = item_alloc(e);
    const fp_site *site = NULL;
    uint64_t id;
    item *it;
    char why[256];
    int rc;

    if (idx == NO_ITEM) {
        fp_stage_fail(st, "out of memory for a record");
        return -1;
    }
    it = &e->items[idx];
    id = item_id(e, idx);
    rc = fp_record_decode_json(&it->rec, msg->payload, msg->len, why, sizeof(why));
    if (rc < 0) {
        item_release(e, idx);
        return fp_stage_reject(st, fp_record_err_code(rc), why);
    }
    it->token = fp_stage_hold(st);
    it->partition = msg->partition;
    if (fp_reorder_push(e->order, msg->partition, id) < 0) {
        fp_stage_fail(st, "out of memory in the reorder buffer");
        return -1;
    }
    /* Whatever enrichment came in is replaced by today's answers. */
    memset(&it->rec.enrichment, 0, sizeof(it->rec.enrichment));
    if (e->geofences != NULL && it->rec.has_position) {
        site = fp_geofences_find(e->geofences, it->rec.position.lat, it->rec.position.lon);
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
    fp_geofences *g;

    if (e->cfg.geofences_file == NULL || e->cfg.geofences_file[0] == '\0')
        return 0;
    g = fp_geofences_load(e->cfg.geofences_file, err, sizeof(err));
    if (g == NULL) {
        fp_log_kv(FP_LOG_ERROR, "cannot load geofences; keeping the sites in use", "file",
                  e->cfg.geofences_file, "error", err, FP_KV_END);
        fp_counter_inc(e->m_reloads_failed);
        return -1;
    }
    fp_geofences_free(e->geofences);
    e->geofences = g;
    fp_gauge_set(e->m_sites, (double)fp_geofences_count(g));
    fp_counter_inc(e->m_reloads_ok);
    fp_info("geofences loaded: %zu sites from %s", fp_geofences_count(g), e->cfg.geofences_file);
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
    return ((enricher *)ctx)->used;
}

/* Drops the revoked partition's records: their offsets were not committed, so the partition's
 * next owner reads them again. Late answers for them find no item and are ignored. */
static void hook_revoked(fp_stage *st, int32_t partition, void *ctx)
{
    enricher *e = ctx;
    uint64_t id;

    (void)st;
    while (fp_reorder_head(e->order, partition, &id) == 0) {
        fp_reorder_pop(e->order, partition);
        if (item_get(e, id) != NULL)
            item_release(e, (uint32_t)id);
    }
}

int main(int argc, char **argv)
{
    static const char *const status_names[4] = {"none", "ok", "partial", "unavailable"};
    fp_stage_hooks hooks = {hook_poll, hook_busy, hook_pending, hook_revoked};
    enricher e;
    lookup_settings ls;
    fp_http *http;
    bool http_off;
    char err[512];
    int rc;

    memset(&e, 0, sizeof(e));
    e.free_head = NO_ITEM;
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
    ls = (lookup_settings){e.cfg.geocoder_url,
                           e.cfg.assets_url,
                           e.cfg.max_requests,
                           e.cfg.timeout_ms,
                           e.cfg.retries,
                           e.cfg.backoff_ms,
                           e.cfg.cache_size,
                           e.cfg.cache_ttl_ms,
                           e.cfg.negative_ttl_ms,
                           e.cfg.cb_failures,
                           e.cfg.cb_open_ms,
                           e.cfg.geo_cell_m,
                           strcmp(e.cfg.on_failure, "wait") == 0};
    e.lookups = lookup_engine_new(&ls, on_lookup_done, &e, err, sizeof(err));
    e.order = fp_reorder_new();
    if (e.lookups == NULL || e.order == NULL) {
        fp_log_kv(FP_LOG_ERROR, "cannot start", "error", e.lookups == NULL ? err : "out of memory",
                  FP_KV_END);
        return 2;
    }
    fp_info("lookups: geocoder %s, assets %s, geofences %s, on failure %s",
            lookup_enabled(e.lookups, LOOKUP_GEO) ? "on" : "off",
            lookup_enabled(e.lookups, LOOKUP_ASSET) ? "on" : "off",
            e.geofences != NULL ? "on" : "off", e.cfg.on_failure);

    e.st = fp_stage_new("enricher", &e.cfg.common, err, sizeof(err));
    if (e.st == NULL) {
        fp_log_kv(FP_LOG_ERROR, "cannot start", "error", err, FP_KV_END);
        return 2;
    }
    http = fp_http_start(e.cfg.common.http_bind, (int)e.cfg.common.http_port, &http_off);
    if (http == NULL && !http_off) {
        fp_stage_free(e.st);
        return 1;
    }
    rc = fp_stage_run_async(e.st, handle_parsed, &hooks, &e);
    fp_stage_free(e.st);
    fp_http_stop(http);
    lookup_engine_free(e.lookups);
    fp_geofences_free(e.geofences);
    fp_reorder_free(e.order);
    for (uint32_t i = 0; i < e.nitems; i++)
        fp_record_free(&e.items[i].rec);
    free(e.items);
    fp_buf_free(&e.out);
    curl_global_cleanup();
    return rc;
}
