/* bench_enrich: in-process enricher and sink decode throughput at cache hit, on one core.
 *
 * The corpus is a fleet-sim corpus (fleet-sim --output) decoded by the parser into canonical
 * records. Per record the enricher pass does what enricher-svc does at a cache hit, minus
 * Kafka: decode the canonical JSON, find the site in the geofences (GEOFENCES, optional), take
 * the address and the asset from warm LRU caches (cache.c, keyed by grid cell and device id as
 * lookup.c keys them), copy them into the record and encode it. The sink pass decodes the
 * enriched records alone; the cjson passes do the same with the cJSON reference decoder, the
 * baseline of the same run. Prints one JSON line with the median of --repeat passes.
 *
 * --only enrich runs the enricher pass alone (for a profiler) and prints its rate.
 *
 * Usage: bench_enrich CORPUS [GEOFENCES] [--seconds S] [--repeat N] [--only enrich]
 * The cache keys are written as lookup.c writes them (its lookup_cell_key, and "site:" with the
 * site's id); lookup.c's own path around the cache (lookup_geo, lookup_geo_site, lookup_asset:
 * the cache look-up, hit counters) is not measured here: tests/bench/profile.sh profiles
 * enricher-svc itself. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fp_buf.h"
#include "common/fp_record.h"
#include "common/fp_record_internal.h"
#include "common/fp_time.h"
#include "enricher-svc/cache.h"
#include "enricher-svc/enrich.h"
#include "enricher-svc/geofence.h"
#include "enricher-svc/lookup.h"
#include "parser-svc/decode.h"

typedef int (*decode_fn)(fp_record *r, const char *json, size_t len, char *errmsg,
                         size_t errmsg_size);

typedef struct corpus {
    fp_buf text; /* the canonical records, back to back */
    size_t *off; /* record i is text[off[i], off[i + 1]) */
    size_t n;
} corpus;

static int add_record(corpus *c, const fp_record *r, size_t *cap)
{
    if (c->n + 2 > *cap) {
        *cap = *cap ? *cap * 2 : 4096;
        c->off = realloc(c->off, *cap * sizeof(*c->off));
        if (c->off == NULL)
            return -1;
    }
    if (c->n == 0)
        c->off[0] = 0;
    if (fp_record_encode_json(r, &c->text) < 0)
        return -1;
    c->off[++c->n] = c->text.len;
    return 0;
}

/* Decodes every fleet-sim message into canonical records. */
static int load_corpus(const char *path, corpus *c)
{
    fp_buf raw = {0};
    fp_record_batch batch = {0};
    size_t off = 0, cap = 0;

    FILE *f = fopen(path, "rb");
    char chunk[65536];
    size_t got;

    if (f == NULL)
        return -1;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (fp_buf_append(&raw, chunk, got) < 0)
            return -1;
    fclose(f);
    while (off + 6 <= raw.len) {
        const uint8_t *p = (const uint8_t *)raw.data + off;
        size_t klen = (size_t)p[0] << 8 | p[1], vlen;
        decode_error derr;

        p += 2 + klen;
        vlen = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
        decode_input in = {p + 4, vlen, raw.data + off + 2, klen, INT64_C(1893456000000)};

        if (decode_payload(NULL, NULL, 0, &in, &batch, &derr) == 0)
            for (size_t j = 0; j < batch.len; j++)
                if (add_record(c, &batch.recs[j], &cap) < 0)
                    return -1;
        off += 2 + klen + 4 + vlen;
    }
    decode_batch_free(&batch);
    fp_buf_free(&raw);
    return c->n > 0 ? 0 : -1;
}

typedef struct world {
    geofence_set *sites;
    cache_lru *geo, *asset;
    lookup_answer address, machine;
} world;

/* The geocoder cache's key for a record: its site's ("site:" and the id, as lookup_geo_site
 * writes it) or its 100 m grid cell's (lookup.c's own lookup_cell_key). */
static void geo_key(const geofence_site *site, const fp_record *r, char *out, size_t n)
{
    static const char prefix[] = "site:";
    double clat, clon;

    if (site == NULL) {
        lookup_cell_key(100.0, r->position.lat, r->position.lon, out, n, &clat, &clon);
    } else {
        size_t len = strlen(site->id);

        len = len < n - sizeof(prefix) ? len : n - sizeof(prefix);
        memcpy(out, prefix, sizeof(prefix) - 1);
        memcpy(out + sizeof(prefix) - 1, site->id, len);
        out[sizeof(prefix) - 1 + len] = '\0';
    }
}

/* What enrich_handle and emit_item do to a decoded record at a cache hit, with enrich.c's own
 * setters. */
static void enrich(world *w, fp_record *r, int64_t now)
{
    const geofence_site *site = NULL;
    void *v = NULL;
    bool neg = false;
    char key[64];

    enrich_start(r);
    if (w->sites != NULL && r->has_position) {
        site = geofence_find(w->sites, r->position.lat, r->position.lon);
        if (site != NULL)
            enrich_set_site(r, site);
    }
    if (r->has_position) {
        geo_key(site, r, key, sizeof(key));
        if (!cache_get(w->geo, key, now, &v, &neg))
            cache_put(w->geo, key, NULL, true, now); /* warm-up pass */
        else if (v != NULL)
            enrich_set_address(r, v);
    }
    if (cache_get(w->asset, r->device_id, now, &v, &neg) && v != NULL)
        enrich_set_asset(r, v);
    r->enrichment.status = FP_ENRICH_OK;
}

static lookup_answer *answer_copy(const lookup_answer *a)
{
    lookup_answer *c = calloc(1, sizeof(*c));

    for (int i = 0; c != NULL && i < LOOKUP_FIELDS; i++)
        c->f[i] = a->f[i] != NULL ? strdup(a->f[i]) : NULL;
    return c;
}

static void answer_free(void *p)
{
    lookup_answer *a = p;

    for (int i = 0; a != NULL && i < LOOKUP_FIELDS; i++)
        free(a->f[i]);
    free(a);
}

/* Fills both caches with an answer for every key the corpus asks. */
static void warm(world *w, const corpus *c, int64_t now)
{
    fp_record r;
    char key[64];

    fp_record_init(&r);
    for (size_t i = 0; i < c->n; i++) {
        const geofence_site *site = NULL;

        if (fp_record_decode_json(&r, c->text.data + c->off[i], c->off[i + 1] - c->off[i], NULL,
                                  0) < 0)
            continue;
        cache_put(w->asset, r.device_id, answer_copy(&w->machine), false, now);
        if (!r.has_position)
            continue;
        if (w->sites != NULL)
            site = geofence_find(w->sites, r.position.lat, r.position.lon);
        geo_key(site, &r, key, sizeof(key));
        cache_put(w->geo, key, answer_copy(&w->address), false, now);
    }
    fp_record_free(&r);
}

/* One pass: decode (and, with w, enrich and encode) every record. Returns records done. */
static size_t pass(const corpus *c, decode_fn decode, world *w, fp_record *r, fp_buf *out,
                   int64_t now)
{
    size_t done = 0;

    for (size_t i = 0; i < c->n; i++) {
        if (decode(r, c->text.data + c->off[i], c->off[i + 1] - c->off[i], NULL, 0) < 0)
            continue;
        if (w != NULL) {
            enrich(w, r, now);
            fp_buf_clear(out);
            if (fp_record_encode_json(r, out) < 0)
                continue;
        }
        done++;
    }
    return done;
}

static double measure(const corpus *c, decode_fn decode, world *w, double seconds)
{
    fp_record r;
    fp_buf out = {0};
    double start = fp_mono_seconds(), elapsed;
    size_t n = 0;
    int64_t now = fp_mono_ms();

    fp_record_init(&r);
    do {
        n += pass(c, decode, w, &r, &out, now);
        elapsed = fp_mono_seconds() - start;
    } while (elapsed < seconds);
    fp_record_free(&r);
    fp_buf_free(&out);
    return (double)n / elapsed;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* The enriched corpus: each record as the enricher emits it (the sink's input). */
static int enriched_corpus(const corpus *in, world *w, corpus *out)
{
    fp_record r;
    size_t cap = 0;
    int64_t now = fp_mono_ms();

    fp_record_init(&r);
    for (size_t i = 0; i < in->n; i++) {
        if (fp_record_decode_json(&r, in->text.data + in->off[i], in->off[i + 1] - in->off[i], NULL,
                                  0) < 0)
            continue;
        enrich(w, &r, now);
        if (add_record(out, &r, &cap) < 0)
            return -1;
    }
    fp_record_free(&r);
    return 0;
}

int main(int argc, char **argv)
{
    static char *addr[LOOKUP_FIELDS] = {
        "Vej 12, Køge, 4600, Danmark", "Vej 12", "Køge", "4600", "Danmark", "dk"};
    static char *asset[LOOKUP_FIELDS] = {"Nordbyg A/S",       "Volvo CE",  "EC220E",
                                         "VCEC220EK00012345", "excavator", NULL};
    corpus c = {0}, enriched = {0};
    world w = {0};
    double seconds = 2, res[4][15];
    int repeat = 3, argi = 2;
    bool only_enrich = false;
    char err[512];

    if (argc < 2) {
        fprintf(stderr, "usage: bench_enrich CORPUS [GEOFENCES] [--seconds S] [--repeat N]\n");
        return 2;
    }
    if (argc > 2 && strncmp(argv[2], "--", 2) != 0) {
        w.sites = geofence_load(argv[2], err, sizeof(err));
        if (w.sites == NULL) {
            fprintf(stderr, "bench_enrich: %s\n", err);
            return 1;
        }
        argi = 3;
    }
    for (int i = argi; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--seconds") == 0)
            seconds = strtod(argv[i + 1], NULL);
        else if (strcmp(argv[i], "--repeat") == 0)
            repeat = (int)strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--only") == 0 && strcmp(argv[i + 1], "enrich") == 0)
            only_enrich = true;
    }
    if (repeat < 1 || repeat > 15 || seconds <= 0) {
        fprintf(stderr, "bench_enrich: --repeat 1..15, --seconds > 0\n");
        return 2;
    }
    if (load_corpus(argv[1], &c) < 0) {
        fprintf(stderr, "bench_enrich: %s is not a fleet-sim corpus\n", argv[1]);
        return 1;
    }
    memcpy(w.address.f, addr, sizeof(addr));
    memcpy(w.machine.f, asset, sizeof(asset));
    w.geo = cache_new(100000, INT64_C(86400000), 60000, answer_free);
    w.asset = cache_new(100000, INT64_C(86400000), 60000, answer_free);
    if (w.geo == NULL || w.asset == NULL)
        return 1;
    warm(&w, &c, fp_mono_ms());
    if (only_enrich) {
        printf("{\"enrich_records_per_s\":%.0f}\n",
               measure(&c, fp_record_decode_json, &w, seconds));
        return 0;
    }
    if (enriched_corpus(&c, &w, &enriched) < 0)
        return 1;
    for (int r = 0; r < repeat; r++) {
        res[0][r] = measure(&c, fp_record_decode_json, &w, seconds);
        res[1][r] = measure(&c, fp_record_decode_json_cjson, &w, seconds);
        res[2][r] = measure(&enriched, fp_record_decode_json, NULL, seconds);
        res[3][r] = measure(&enriched, fp_record_decode_json_cjson, NULL, seconds);
    }
    for (int k = 0; k < 4; k++)
        qsort(res[k], (size_t)repeat, sizeof(double), cmp_double);
    printf("{\"records\":%zu,\"sites\":%zu,\"enrich_records_per_s\":%.0f,"
           "\"enrich_cjson_records_per_s\":%.0f,\"sink_decode_records_per_s\":%.0f,"
           "\"sink_decode_cjson_records_per_s\":%.0f,\"repeat\":%d,\"seconds_per_pass\":%g}\n",
           c.n, geofence_count(w.sites), res[0][repeat / 2], res[1][repeat / 2], res[2][repeat / 2],
           res[3][repeat / 2], repeat, seconds);
    cache_free(w.geo);
    cache_free(w.asset);
    geofence_free(w.sites);
    fp_buf_free(&c.text);
    fp_buf_free(&enriched.text);
    free(c.off);
    free(enriched.off);
    return 0;
}
