#include "enricher-svc/enrich.h"

#include <stdio.h>
#include <string.h>

#include "common/fp_kafka_output.h"
#include "common/fp_log.h"
#include "common/fp_signal.h"

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

    it->waiting &= (uint8_t) ~(1u << kind);
    if (outcome == LOOKUP_FAILED) {
        it->failed |= (uint8_t)(1u << kind);
        return;
    }
    if (outcome != LOOKUP_ANSWERED || a == NULL)
        return;
    if (kind == LOOKUP_GEO)
        enrich_set_address(r, a);
    else
        enrich_set_asset(r, a);
}

void enrich_set_site(fp_record *r, const geofence_site *site)
{
    fp_enrichment *en = &r->enrichment;

    en->has_site = true;
    set_str(r, &en->site_id, site->id);
    set_str(r, &en->site_name, site->name);
}

void enrich_set_address(fp_record *r, const lookup_answer *a)
{
    fp_enrichment *en = &r->enrichment;

    en->has_address = true;
    set_str(r, &en->address_display, a->f[0]);
    set_str(r, &en->address_road, a->f[1]);
    set_str(r, &en->address_city, a->f[2]);
    set_str(r, &en->address_postcode, a->f[3]);
    set_str(r, &en->address_country, a->f[4]);
    set_str(r, &en->address_country_code, a->f[5]);
}

void enrich_set_asset(fp_record *r, const lookup_answer *a)
{
    fp_enrichment *en = &r->enrichment;

    en->has_asset = true;
    en->asset_customer = en->asset_oem = en->asset_model = (fp_str){0, 0};
    en->asset_serial = en->asset_machine_type = (fp_str){0, 0};
    set_str(r, &en->asset_customer, a->f[0]);
    set_str(r, &en->asset_oem, a->f[1]);
    set_str(r, &en->asset_model, a->f[2]);
    set_str(r, &en->asset_serial, a->f[3]);
    set_str(r, &en->asset_machine_type, a->f[4]);
}

void enrich_start(fp_record *r)
{
    fp_enrichment *en = &r->enrichment;
    fp_enrichment hints = *en;

    memset(en, 0, sizeof(*en));
    if (hints.status != FP_ENRICH_NONE || !hints.has_asset)
        return;
    /* The strings stay in the record's arena; only the references are kept. */
    en->has_asset = true;
    en->asset_customer = hints.asset_customer;
    en->asset_oem = hints.asset_oem;
    en->asset_model = hints.asset_model;
    en->asset_serial = hints.asset_serial;
    en->asset_machine_type = hints.asset_machine_type;
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
void enrich_on_lookup_done(void *ctx, uint64_t waiter, lookup_kind kind, lookup_outcome outcome,
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
    /* PENDING: the answer comes through enrich_on_lookup_done (which may already have run). */
    if (o != LOOKUP_PENDING)
        apply(it, kind, o, a);
}

int enrich_handle(fp_stage *st, const rd_kafka_message_t *msg, void *ctx)
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
    enrich_start(&it->rec);
    if (e->geofences != NULL && it->rec.has_position) {
        site = geofence_find(e->geofences, it->rec.position.lat, it->rec.position.lon);
        if (site != NULL)
            enrich_set_site(&it->rec, site);
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
int enrich_load_geofences(enricher *e)
{
    char err[512];
    geofence_set *g;

    if (e->geofences_file == NULL || e->geofences_file[0] == '\0')
        return 0;
    g = geofence_load(e->geofences_file, err, sizeof(err));
    if (g == NULL) {
        fp_log_kv(FP_LOG_ERROR, "cannot load geofences; keeping the sites in use", "file",
                  e->geofences_file, "error", err, FP_KV_END);
        fp_counter_inc(e->m_reloads_failed);
        return -1;
    }
    geofence_free(e->geofences);
    e->geofences = g;
    fp_gauge_set(e->m_sites, (double)geofence_count(g));
    fp_counter_inc(e->m_reloads_ok);
    fp_info("geofences loaded: %zu sites from %s", geofence_count(g), e->geofences_file);
    return 0;
}

static void hook_poll(fp_stage *st, int max_wait_ms, void *ctx)
{
    enricher *e = ctx;

    (void)st;
    if (fp_signal_take_hup())
        enrich_load_geofences(e);
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

const fp_stage_hooks enrich_hooks = {
    .poll = hook_poll,
    .busy = hook_busy,
    .pending = hook_pending,
    .revoked = hook_revoked,
};

int enrich_init(enricher *e, const char *geofences_file)
{
    static const char *const status_names[4] = {"none", "ok", "partial", "unavailable"};

    memset(e, 0, sizeof(*e));
    e->geofences_file = geofences_file;
    for (int s = 1; s < 4; s++) {
        char labels[64];

        snprintf(labels, sizeof(labels), "status=\"%s\"", status_names[s]);
        e->m_status[s] = fp_metrics_counter("fleetpipe_enrich_records_total",
                                            "Records enriched, by resulting status.", labels);
    }
    e->m_pending = fp_metrics_gauge("fleetpipe_enrich_pending_records",
                                    "Records waiting for lookups or for earlier records.", NULL);
    e->m_sites = fp_metrics_gauge("fleetpipe_enrich_geofence_sites", "Sites loaded.", NULL);
    e->m_reloads_ok = fp_metrics_counter("fleetpipe_enrich_geofence_loads_total",
                                         "Geofence loads, by result.", "result=\"ok\"");
    e->m_reloads_failed = fp_metrics_counter("fleetpipe_enrich_geofence_loads_total",
                                             "Geofence loads, by result.", "result=\"failed\"");
    e->items = pending_new();
    return e->items != NULL ? 0 : -1;
}

void enrich_free(enricher *e)
{
    lookup_engine_free(e->lookups);
    geofence_free(e->geofences);
    pending_free(e->items);
    fp_buf_free(&e->out);
}
