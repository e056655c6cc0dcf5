/* enrich: what enricher-svc does to one record. A record waits (pending.h) while its site is
 * found in the local geofences and its address and asset are asked from the lookups
 * (lookup.h), asynchronously; it leaves with "enrichment" and its status (ok, partial,
 * unavailable) when it and every record before it in its partition are done. A lookup that
 * cannot answer never drops a record. A record that is not canonical goes to the DLQ. */
#ifndef ENRICH_H
#define ENRICH_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "common/fp_buf.h"
#include "common/fp_metrics.h"
#include "common/fp_stage.h"
#include "enricher-svc/geofence.h"
#include "enricher-svc/lookup.h"
#include "enricher-svc/pending.h"

typedef struct enricher {
    fp_stage *st;           /* set before the stage runs */
    lookup_engine *lookups; /* set before the stage runs (its callback: enrich_on_lookup_done) */
    const char *geofences_file; /* NULL or "": no geofences */
    geofence_set *geofences;
    pending *items;
    fp_buf out;
    fp_counter *m_status[4];
    fp_gauge *m_pending, *m_sites;
    fp_counter *m_reloads_ok, *m_reloads_failed;
} enricher;

/* Clears e, registers its metrics and creates its pending pool. Returns 0 or -1 (out of
 * memory). */
int enrich_init(enricher *e, const char *geofences_file);

/* Frees what e holds (lookups, geofences, pool, buffer). */
void enrich_free(enricher *e);

/* Loads (or reloads, on SIGHUP) the geofences; on failure the sites in use stay. Returns 0
 * or -1. */
int enrich_load_geofences(enricher *e);

/* Clears the enrichment a record came with, for today's answers, but keeps a decoder's asset
 * hints (status "none" with an asset: an ISO 15143-3 machine's header), which stay unless the
 * asset registry knows the machine. Never fails. */
void enrich_start(fp_record *r);

/* Sets the record's site to the geofence it lies in. Fails only for memory (a field is then
 * left out). */
void enrich_set_site(fp_record *r, const geofence_site *site);

/* Sets the record's address to the geocoder's answer. Fails only for memory (a field is then
 * left out). */
void enrich_set_address(fp_record *r, const lookup_answer *a);

/* Sets the record's asset to the registry's answer: the registry knows the machine, so its
 * answer replaces any hints, and the fields it leaves out are absent. Fails only for memory
 * (a field is then left out). */
void enrich_set_asset(fp_record *r, const lookup_answer *a);

/* The stage handler (ctx: the enricher). */
int enrich_handle(fp_stage *st, const rd_kafka_message_t *msg, void *ctx);

/* The lookup engine's done callback (ctx: the enricher). */
void enrich_on_lookup_done(void *ctx, uint64_t waiter, lookup_kind kind, lookup_outcome outcome,
                           const lookup_answer *answer);

/* The stage hooks: drive the lookups, say busy while their window is full, count pending
 * records, drop a revoked partition's records. */
extern const fp_stage_hooks enrich_hooks;

#endif
