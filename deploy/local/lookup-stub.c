/*
 * lookup-stub: the HTTP lookup services enricher-svc calls, a Nominatim-compatible reverse
 * geocoder and an asset registry, with injectable faults, for the demo, the tests and the
 * benchmarks. It listens on loopback only and answers from synthetic data that depends only on
 * the query, so the same query gets the same body in every run and every process.
 *
 * Usage: lookup-stub [--bind 127.0.0.1] [--port 0] [--port-file FILE] [--latency-ms 0]
 *                    [--jitter-ms 0] [--error-rate 0] [--garbage-rate 0]
 *                    [--unknown-asset-rate 0.05] [--seed 1] [--max-connections 512]
 *                    [--log-level info] [--help] [--version]
 *
 * Start-up contract: with --port 0 (the default) the kernel picks a free port. Once the server
 * accepts connections, the port is written atomically to --port-file (FILE.tmp, then rename),
 * then "port=N" is printed as the first line on stdout (flushed). A stale port file is removed
 * before the server starts and again on exit. Logs are JSON lines on stderr (every request at
 * --log-level debug). lookup-stub runs until SIGTERM or SIGINT, then cuts injected delays short
 * (those lookups get 503 "shutting down"), gives the lookups in flight up to 1 s to be answered,
 * closes every connection and exits 0. Exit status 2 means bad options, 1 a failure to start.
 *
 * Lookup APIs (faults apply to these, and they are what the "requests" counter counts):
 *
 *   GET /reverse?format=jsonv2&lat=LAT&lon=LON     (also /reverse.php, format=json)
 *       200 and a Nominatim jsonv2 object: place_id, licence, osm_type, osm_id, lat, lon,
 *       category (format=json: class), type, place_rank, importance, addresstype, name,
 *       display_name ("road, city, postcode, country"), address {road, city, postcode, country,
 *       country_code}, boundingbox. The world is cut into ~200 m road cells; every point of a
 *       cell gets the same road, and lat/lon/boundingbox are the cell's centre and bounds.
 *       North of the equator is Denmark ("dk"), south of it Chile ("cl"); the city depends on
 *       the 0.1-degree longitude band, the postcode on the ~2 km district. A missing format
 *       means jsonv2; other formats, and a missing or invalid lat or lon, get 400
 *       {"error":"..."} as Nominatim does.
 *
 *   GET /assets/{device_id}                        (device_id: 1..64 of [A-Za-z0-9._:-])
 *       200 {"device_id", "customer", "oem", "model", "serial_number", "machine_type"}, or 404
 *       {"error":"unknown asset"} for the ids whose hash falls under --unknown-asset-rate. Raising
 *       the rate only adds unknown ids: an id unknown at 5 % is unknown at 10 % as well.
 *
 *   Any other path outside the control channel gets 404 {"error":"not found"}.
 *
 * Faults, decided per lookup in this order by a PRNG seeded with --seed (the seed never changes
 * the data): outage answers 503 at once; otherwise the answer waits latency_ms plus a uniform
 * -jitter_ms..+jitter_ms (never below 0) without holding up other connections (one thread per
 * connection); then error_rate answers 503 {"error":"injected failure"}, garbage_rate answers
 * 200 with a body that is alternately not JSON and JSON of the wrong shape, and the rest is
 * answered normally.
 *
 * Control channel (never delayed or failed, not counted in "requests"):
 *
 *   POST /control?latency_ms=N&jitter_ms=N&error_rate=P&garbage_rate=P&unknown_asset_rate=P
 *                &outage=0|1
 *       Sets any subset (all or nothing: one bad value changes nothing and gets 400), logs the
 *       change and returns the new settings as JSON. GET /control returns them unchanged.
 *       Times are integers in 0..600000 ms, rates numbers in 0..1.
 *   GET /stats
 *       {"requests", "reverse", "assets", "errors_injected" (outage answers included),
 *       "garbage_injected", "not_found", "bad_requests", "in_flight", "max_in_flight"}.
 *   POST /stats/reset
 *       Returns the counters as they were and sets them to 0 (max_in_flight to in_flight).
 *   GET /healthz
 *       200 "ok".
 *
 * Example: curl -X POST 'http://127.0.0.1:PORT/control?latency_ms=200&outage=0'
 *
 * Connections are kept alive (HTTP/1.1) and closed after 60 s idle; --max-connections (default
 * 512) bounds the connections served at once, and the open-files limit is raised to fit.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common/fp_args.h"
#include "common/fp_file.h"
#include "common/fp_buf.h"
#include "common/fp_json.h"
#include "common/fp_http.h"
#include "common/fp_log.h"
#include "common/fp_signal.h"
#include "common/fp_time.h"

#ifndef FP_VERSION
#define FP_VERSION "dev"
#endif

#define DEFAULT_BIND        "127.0.0.1"
#define MAX_DELAY_MS        600000
#define PPM                 1000000u /* rates are kept in parts per million */
#define ROAD_CELL_DEG       0.0018   /* ~200 m of latitude */
#define DISTRICT_CELLS      10       /* a postcode district is 10 x 10 road cells (~2 km) */
#define CITY_BAND_DEG       0.1      /* the city changes every 0.1 degree of longitude */
#define MAX_DEVICE_ID       64
#define MAX_CONNECTIONS_MIN 16
#define MAX_CONNECTIONS_MAX 16384
#define THREAD_STACK_BYTES  ((size_t)256 * 1024)
#define IDLE_TIMEOUT_S      60
#define LISTEN_BACKLOG      1024
#define STOP_POLL_MS        100
#define SLEEP_SLICE_MS      20   /* a delayed answer notices shutdown within this */
#define SHUTDOWN_GRACE_MS   1000 /* how long lookups in flight may take to be answered at exit */
#define GOLDEN              UINT64_C(0x9E3779B97F4A7C15)

#define JSON_TYPE "application/json; charset=utf-8"

/* The effective configuration after option parsing. */
struct options {
    const char *bind;
    int64_t port;
    const char *port_file;
    int64_t latency_ms;
    int64_t jitter_ms;
    double error_rate;
    double garbage_rate;
    double unknown_asset_rate;
    uint64_t seed;
    int64_t max_connections;
    fp_log_level log_level;
};

/* The fault settings, read by every lookup and changed by /control. Writers hold
 * settings_lock so that each /control call applies and reports one consistent set; readers only
 * load the atomics. */
static struct {
    atomic_long latency_ms;
    atomic_long jitter_ms;
    atomic_uint error_ppm;
    atomic_uint garbage_ppm;
    atomic_uint unknown_asset_ppm;
    atomic_bool outage;
} settings;
static pthread_mutex_t settings_lock = PTHREAD_MUTEX_INITIALIZER;

/* The counters /stats reports. in_flight counts lookups between their headers and the end of
 * their response. */
static struct {
    atomic_uint_fast64_t requests;
    atomic_uint_fast64_t reverse;
    atomic_uint_fast64_t assets;
    atomic_uint_fast64_t errors_injected;
    atomic_uint_fast64_t garbage_injected;
    atomic_uint_fast64_t not_found;
    atomic_uint_fast64_t bad_requests;
    atomic_int_fast64_t in_flight;
    atomic_int_fast64_t max_in_flight;
} stats;

/* Set at shutdown so that delayed answers stop waiting and the server can be stopped. */
static atomic_bool stopping;

/* The state of the fault PRNG (SplitMix64: one atomic add per number, so any thread may draw). */
static atomic_uint_fast64_t rng_state;

/* Numbers the garbage answers, which alternate between not-JSON and wrong-shape JSON. */
static atomic_uint_fast64_t garbage_seq;

/* ---- Hashing and random numbers ---------------------------------------------------------- */

/* SplitMix64's finaliser: a bijective mix whose output bits all depend on every input bit. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* The next fault decision number. Thread-safe; one seed gives one sequence. */
static uint64_t rng_next(void)
{
    return mix64(atomic_fetch_add_explicit(&rng_state, GOLDEN, memory_order_relaxed) + GOLDEN);
}

/* True with probability ppm / 1e6. */
static bool chance(uint32_t ppm)
{
    return ppm > 0 && rng_next() % PPM < ppm;
}

/* A hash of a string (FNV-1a, then mixed); salt gives independent hashes of the same string. */
static uint64_t hash_str(const char *s, uint64_t salt)
{
    uint64_t h = UINT64_C(0xCBF29CE484222325);

    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        h ^= *p;
        h *= UINT64_C(0x100000001B3);
    }
    return mix64(h ^ salt * GOLDEN);
}

/* A hash of a grid cell; salt gives independent hashes of the same cell. */
static uint64_t hash_cell(int64_t a, int64_t b, uint64_t salt)
{
    return mix64(mix64((uint64_t)a ^ salt * GOLDEN) ^ (uint64_t)b);
}

/* ---- Synthetic data ---------------------------------------------------------------------- */

/* A city: its name and postcodes base + k * step for k in 0..span-1. */
struct city {
    const char *name;
    unsigned base;
    unsigned span;
    unsigned step;
};

/* A country the geocoder answers for. A road is a name plus (1..99) * road_number_step. */
struct region {
    const char *country;
    const char *country_code;
    const char *const *roads;
    size_t road_count;
    const struct city *cities;
    size_t city_count;
    unsigned road_number_step;
};

static const char *const dk_roads[] = {
    "Industrivej",    "Vestergade",  "Nørregade", "Søndergade",  "Østergade",
    "Stationsvej",    "Møllevej",    "Havnevej",  "Kirkevej",    "Ringvej",
    "Entreprenørvej", "Grusgravvej", "Ågade",     "Strandvejen", "Bygmestervej",
};

/* Ordered so that the bands around Zealand land near the real towns (København at 12.5). */
static const struct city dk_cities[] = {
    {"Roskilde", 4000, 1, 1},        {"Køge", 4600, 1, 1},     {"Greve", 2670, 1, 1},
    {"Taastrup", 2630, 1, 1},        {"Ballerup", 2750, 1, 1}, {"København", 1050, 140, 10},
    {"Frederiksberg", 1800, 20, 10}, {"Hillerød", 3400, 1, 1},
};

static const char *const cl_roads[] = {
    "Avenida Vicuña Mackenna",  "Camino a Melipilla", "Avenida Pajaritos",     "Calle Los Aromos",
    "Avenida Departamental",    "Camino El Volcán",   "Avenida Concha y Toro", "Pasaje Las Acacias",
    "Avenida Américo Vespucio", "Calle Santa Rosa",
};

/* Ordered like dk_cities: Maipú, Santiago and Las Condes from west to east around -70.6. */
static const struct city cl_cities[] = {
    {"Puente Alto", 8150000, 10, 1000}, {"La Florida", 8240000, 10, 1000},
    {"Providencia", 7500000, 10, 1000}, {"Pudahuel", 9020000, 10, 1000},
    {"Maipú", 9250000, 10, 1000},       {"Santiago", 8320000, 20, 1000},
    {"Ñuñoa", 7750000, 10, 1000},       {"Las Condes", 7550000, 10, 1000},
};

static const struct region regions[2] = {
    {"Danmark", "dk", dk_roads, sizeof(dk_roads) / sizeof(dk_roads[0]), dk_cities,
     sizeof(dk_cities) / sizeof(dk_cities[0]), 1},
    {"Chile", "cl", cl_roads, sizeof(cl_roads) / sizeof(cl_roads[0]), cl_cities,
     sizeof(cl_cities) / sizeof(cl_cities[0]), 100},
};

/* One machine model of one OEM. */
struct machine {
    const char *oem;
    const char *serial_prefix;
    const char *model;
    const char *machine_type;
};

static const struct machine machines[] = {
    {"Volvo CE", "VCE", "EC220E", "excavator"},
    {"Volvo CE", "VCE", "EC480E", "excavator"},
    {"Volvo CE", "VCE", "L120H", "wheel loader"},
    {"Volvo CE", "VCE", "A30G", "articulated dumper"},
    {"Volvo CE", "VCE", "A40G", "articulated dumper"},
    {"Volvo CE", "VCE", "SD115", "roller"},
    {"Caterpillar", "CAT", "320", "excavator"},
    {"Caterpillar", "CAT", "336", "excavator"},
    {"Caterpillar", "CAT", "950 GC", "wheel loader"},
    {"Caterpillar", "CAT", "745", "articulated dumper"},
    {"Caterpillar", "CAT", "CS56B", "roller"},
    {"Caterpillar", "CAT", "TH357D", "telehandler"},
    {"Komatsu", "KMT", "PC210LC-11", "excavator"},
    {"Komatsu", "KMT", "PC490LC-11", "excavator"},
    {"Komatsu", "KMT", "WA380-8", "wheel loader"},
    {"Komatsu", "KMT", "HM400-5", "articulated dumper"},
    {"Liebherr", "LBH", "R 926", "excavator"},
    {"Liebherr", "LBH", "L 556", "wheel loader"},
    {"Liebherr", "LBH", "LR 1160", "crawler crane"},
    {"Liebherr", "LBH", "LR 1300 SX", "crawler crane"},
    {"Liebherr", "LBH", "T 55-7", "telehandler"},
    {"JCB", "JCB", "JS220", "excavator"},
    {"JCB", "JCB", "457", "wheel loader"},
    {"JCB", "JCB", "540-180", "telehandler"},
    {"JCB", "JCB", "535-95", "telehandler"},
    {"JCB", "JCB", "CT260", "roller"},
    {"Hitachi", "HCM", "ZX210LC-7", "excavator"},
    {"Hitachi", "HCM", "ZX350LC-7", "excavator"},
    {"Hitachi", "HCM", "ZW220-7", "wheel loader"},
};

static const char *const customers[] = {
    "Nordbyg A/S",
    "Sjællands Anlæg A/S",
    "Køge Entreprenørforretning ApS",
    "Øresund Jord & Beton A/S",
    "Constructora Andes SpA",
    "Movimiento de Tierras Maipo Ltda.",
    "Ingeniería y Construcción Cordillera SpA",
    "Áridos del Pacífico S.A.",
};

/* What the geocoder answers for one road cell. */
struct place {
    const struct region *region;
    const struct city *city;
    double lat, lon; /* the cell's centre */
    double south, north, west, east;
    char road[96];
    char postcode[16];
    uint64_t place_id;
    uint64_t osm_id;
};

/* floor(a / b) for b > 0, also for negative a. */
static int64_t floor_div(int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* a mod b in 0..b-1 for b > 0, also for negative a. */
static size_t floor_mod(int64_t a, int64_t b)
{
    return (size_t)(a - floor_div(a, b) * b);
}

/* Fills p for the point lat, lon (already range-checked). This function can't fail. */
static void geocode(double lat, double lon, struct place *p)
{
    /* Cells are ROAD_CELL_DEG high and about as wide in metres: their width in degrees of
     * longitude grows with 1 / cos(latitude) of the cell's row, so a row has one width. */
    int64_t row = (int64_t)floor(lat / ROAD_CELL_DEG);
    double centre_lat = ((double)row + 0.5) * ROAD_CELL_DEG;
    double c = cos(centre_lat * M_PI / 180.0);
    double width = ROAD_CELL_DEG / (c > 0.01 ? c : 0.01);
    int64_t col = (int64_t)floor((lon + 180.0) / width);
    uint64_t cell = hash_cell(row, col, 1);
    uint64_t district =
        hash_cell(floor_div(row, DISTRICT_CELLS), floor_div(col, DISTRICT_CELLS), 2);
    int64_t band;

    p->south = (double)row * ROAD_CELL_DEG;
    p->north = p->south + ROAD_CELL_DEG;
    p->west = -180.0 + (double)col * width;
    p->east = fmin(p->west + width, 180.0);
    p->lat = centre_lat;
    p->lon = (p->west + p->east) / 2;
    p->region = &regions[lat > 0 ? 0 : 1];
    band = (int64_t)floor(p->lon / CITY_BAND_DEG);
    p->city = &p->region->cities[floor_mod(band, (int64_t)p->region->city_count)];
    snprintf(p->road, sizeof(p->road), "%s %u", p->region->roads[cell % p->region->road_count],
             (unsigned)(1 + (cell >> 32) % 99) * p->region->road_number_step);
    snprintf(p->postcode, sizeof(p->postcode), "%u",
             p->city->base + (unsigned)(district % p->city->span) * p->city->step);
    p->place_id = 100000 + (cell >> 8) % 400000000;
    p->osm_id = 10000000 + (cell >> 16) % 1000000000;
}

/* ---- JSON helpers ------------------------------------------------------------------------ */

/* These append one member, with a leading comma unless first; 0, or -1 on out of memory. */
static int put_str(fp_buf *b, bool first, const char *key, const char *value)
{
    int err = 0;

    if (!first)
        err |= fp_buf_putc(b, ',');
    err |= fp_json_put_key(b, key);
    err |= fp_json_put_string(b, value, strlen(value));
    return err;
}

static int put_u64(fp_buf *b, bool first, const char *key, uint64_t value)
{
    int err = 0;

    if (!first)
        err |= fp_buf_putc(b, ',');
    err |= fp_json_put_key(b, key);
    err |= fp_buf_put_u64(b, value);
    return err;
}

static int put_double(fp_buf *b, bool first, const char *key, double value)
{
    int err = 0;

    if (!first)
        err |= fp_buf_putc(b, ',');
    err |= fp_json_put_key(b, key);
    err |= fp_json_put_double(b, value);
    return err;
}

/* Appends a coordinate as Nominatim writes it, a string with 7 decimals: as the member key when
 * key is not NULL, else as an array element. */
static int put_coord(fp_buf *b, bool first, const char *key, double value)
{
    char text[32];
    int err = 0;

    snprintf(text, sizeof(text), "%.7f", value);
    if (key != NULL)
        return put_str(b, first, key, text);
    if (!first)
        err |= fp_buf_putc(b, ',');
    err |= fp_json_put_string(b, text, strlen(text));
    return err;
}

/* Renders a place as Nominatim does for format=jsonv2 (jsonv2 true) or format=json. */
static int render_place(fp_buf *b, const struct place *p, bool jsonv2)
{
    char display[256];
    int err = 0;

    snprintf(display, sizeof(display), "%s, %s, %s, %s", p->road, p->city->name, p->postcode,
             p->region->country);
    err |= fp_buf_putc(b, '{');
    err |= put_u64(b, true, "place_id", p->place_id);
    err |= put_str(b, false, "licence", "Synthetic data from fleetpipe lookup-stub");
    err |= put_str(b, false, "osm_type", "way");
    err |= put_u64(b, false, "osm_id", p->osm_id);
    err |= put_coord(b, false, "lat", p->lat);
    err |= put_coord(b, false, "lon", p->lon);
    err |= put_str(b, false, jsonv2 ? "category" : "class", "highway");
    err |= put_str(b, false, "type", "residential");
    if (jsonv2)
        err |= put_u64(b, false, "place_rank", 26);
    err |= put_double(b, false, "importance", 0.1);
    if (jsonv2)
        err |= put_str(b, false, "addresstype", "road");
    err |= put_str(b, false, "name", p->road);
    err |= put_str(b, false, "display_name", display);
    err |= fp_buf_puts(b, ",\"address\":{");
    err |= put_str(b, true, "road", p->road);
    err |= put_str(b, false, "city", p->city->name);
    err |= put_str(b, false, "postcode", p->postcode);
    err |= put_str(b, false, "country", p->region->country);
    err |= put_str(b, false, "country_code", p->region->country_code);
    err |= fp_buf_puts(b, "},\"boundingbox\":[");
    err |= put_coord(b, true, NULL, p->south);
    err |= put_coord(b, false, NULL, p->north);
    err |= put_coord(b, false, NULL, p->west);
    err |= put_coord(b, false, NULL, p->east);
    err |= fp_buf_puts(b, "]}");
    return err;
}

/* Renders the asset record of a known device id. */
static int render_asset(fp_buf *b, const char *device_id)
{
    const struct machine *m =
        &machines[hash_str(device_id, 2) % (sizeof(machines) / sizeof(machines[0]))];
    const char *customer =
        customers[hash_str(device_id, 3) % (sizeof(customers) / sizeof(customers[0]))];
    char serial[32];
    int err = 0;

    snprintf(serial, sizeof(serial), "%s%07u", m->serial_prefix,
             (unsigned)(hash_str(device_id, 4) % 10000000));
    err |= fp_buf_putc(b, '{');
    err |= put_str(b, true, "device_id", device_id);
    err |= put_str(b, false, "customer", customer);
    err |= put_str(b, false, "oem", m->oem);
    err |= put_str(b, false, "model", m->model);
    err |= put_str(b, false, "serial_number", serial);
    err |= put_str(b, false, "machine_type", m->machine_type);
    err |= fp_buf_putc(b, '}');
    return err;
}

/* True when the device id is unknown at the current rate (a pure function of id and rate). */
static bool asset_unknown(const char *device_id)
{
    return hash_str(device_id, 1) % PPM < atomic_load(&settings.unknown_asset_ppm);
}

/* Renders the current fault settings. */
static int render_settings(fp_buf *b)
{
    int err = 0;

    err |= fp_buf_putc(b, '{');
    err |= put_u64(b, true, "latency_ms", (uint64_t)atomic_load(&settings.latency_ms));
    err |= put_u64(b, false, "jitter_ms", (uint64_t)atomic_load(&settings.jitter_ms));
    err |= put_double(b, false, "error_rate", atomic_load(&settings.error_ppm) / (double)PPM);
    err |= put_double(b, false, "garbage_rate", atomic_load(&settings.garbage_ppm) / (double)PPM);
    err |= put_double(b, false, "unknown_asset_rate",
                      atomic_load(&settings.unknown_asset_ppm) / (double)PPM);
    err |=
        fp_buf_puts(b, atomic_load(&settings.outage) ? ",\"outage\":true}" : ",\"outage\":false}");
    return err;
}

/* The counters at one moment (each read atomically, the set not). */
struct stats_snapshot {
    uint64_t requests, reverse, assets, errors_injected, garbage_injected, not_found, bad_requests;
    int64_t in_flight, max_in_flight;
};

/* Reads the counters; with reset, sets them to 0 in the same step (max_in_flight to the
 * current in_flight, which is a gauge and is never reset). */
static void take_stats(struct stats_snapshot *s, bool reset)
{
    if (reset) {
        s->requests = atomic_exchange(&stats.requests, 0);
        s->reverse = atomic_exchange(&stats.reverse, 0);
        s->assets = atomic_exchange(&stats.assets, 0);
        s->errors_injected = atomic_exchange(&stats.errors_injected, 0);
        s->garbage_injected = atomic_exchange(&stats.garbage_injected, 0);
        s->not_found = atomic_exchange(&stats.not_found, 0);
        s->bad_requests = atomic_exchange(&stats.bad_requests, 0);
        s->in_flight = atomic_load(&stats.in_flight);
        s->max_in_flight = atomic_exchange(&stats.max_in_flight, s->in_flight);
        return;
    }
    s->requests = atomic_load(&stats.requests);
    s->reverse = atomic_load(&stats.reverse);
    s->assets = atomic_load(&stats.assets);
    s->errors_injected = atomic_load(&stats.errors_injected);
    s->garbage_injected = atomic_load(&stats.garbage_injected);
    s->not_found = atomic_load(&stats.not_found);
    s->bad_requests = atomic_load(&stats.bad_requests);
    s->in_flight = atomic_load(&stats.in_flight);
    s->max_in_flight = atomic_load(&stats.max_in_flight);
}

static int render_stats(fp_buf *b, const struct stats_snapshot *s)
{
    int err = 0;

    err |= fp_buf_putc(b, '{');
    err |= put_u64(b, true, "requests", s->requests);
    err |= put_u64(b, false, "reverse", s->reverse);
    err |= put_u64(b, false, "assets", s->assets);
    err |= put_u64(b, false, "errors_injected", s->errors_injected);
    err |= put_u64(b, false, "garbage_injected", s->garbage_injected);
    err |= put_u64(b, false, "not_found", s->not_found);
    err |= put_u64(b, false, "bad_requests", s->bad_requests);
    err |= put_u64(b, false, "in_flight", (uint64_t)(s->in_flight > 0 ? s->in_flight : 0));
    err |=
        put_u64(b, false, "max_in_flight", (uint64_t)(s->max_in_flight > 0 ? s->max_in_flight : 0));
    err |= fp_buf_putc(b, '}');
    return err;
}

/* ---- Parsing ----------------------------------------------------------------------------- */

/* A rate in [0, 1] in parts per million. */
static uint32_t rate_ppm(double rate)
{
    return (uint32_t)llround(rate * PPM);
}

/* Parses a rate in [0, 1] into parts per million. Returns 0, or -1. */
static int parse_rate(const char *s, uint32_t *ppm)
{
    double v;

    if (fp_arg_parse_double(s, 0.0, 1.0, &v) != 0)
        return -1;
    *ppm = rate_ppm(v);
    return 0;
}

/* Parses "0"/"1"/"false"/"true". Returns 0, or -1. */
static int parse_bool(const char *s, bool *out)
{
    if (s == NULL)
        return -1;
    if (strcmp(s, "1") == 0 || strcmp(s, "true") == 0)
        *out = true;
    else if (strcmp(s, "0") == 0 || strcmp(s, "false") == 0)
        *out = false;
    else
        return -1;
    return 0;
}

/* ---- HTTP -------------------------------------------------------------------------------- */

/* Which handler a request goes to. The first four are lookups (faults, "requests", in_flight). */
enum endpoint {
    EP_REVERSE,
    EP_ASSETS,
    EP_UNKNOWN,
    EP_CONTROL,
    EP_STATS,
    EP_STATS_RESET,
    EP_HEALTHZ,
    EP_COUNT
};

/* libmicrohttpd keeps one pointer per request for us; it points into this array, so the
 * completion callback knows the endpoint without an allocation per request. */
static char endpoint_tags[EP_COUNT];

static bool is_lookup(enum endpoint ep)
{
    return ep == EP_REVERSE || ep == EP_ASSETS || ep == EP_UNKNOWN;
}

static enum endpoint classify(const char *url)
{
    if (strcmp(url, "/reverse") == 0 || strcmp(url, "/reverse.php") == 0)
        return EP_REVERSE;
    if (strncmp(url, "/assets/", 8) == 0)
        return EP_ASSETS;
    if (strcmp(url, "/control") == 0)
        return EP_CONTROL;
    if (strcmp(url, "/stats") == 0)
        return EP_STATS;
    if (strcmp(url, "/stats/reset") == 0)
        return EP_STATS_RESET;
    if (strcmp(url, "/healthz") == 0)
        return EP_HEALTHZ;
    return EP_UNKNOWN;
}

/* The request being answered, for the handlers and the debug log. */
struct request {
    struct MHD_Connection *conn;
    const char *method;
    const char *url;
};

/* Queues a response with a copy of body. Returns libmicrohttpd's verdict. */
static enum MHD_Result reply(const struct request *rq, unsigned int status,
                             const char *content_type, const char *body, size_t len)
{
    enum MHD_Result rc =
        (enum MHD_Result)fp_http_respond(rq->conn, status, content_type, body, len);

    if (fp_log_enabled(FP_LOG_DEBUG)) {
        char code[16];

        snprintf(code, sizeof(code), "%u", status);
        fp_log_kv(FP_LOG_DEBUG, "request", "method", rq->method, "path", rq->url, "status", code,
                  FP_KV_END);
    }
    return rc;
}

/* Answers with the JSON in b, or 500 when rendering it ran out of memory (err != 0). */
static enum MHD_Result reply_json(const struct request *rq, unsigned int status, fp_buf *b, int err)
{
    static const char oom[] = "{\"error\":\"out of memory\"}";

    if (err != 0)
        return reply(rq, 500, JSON_TYPE, oom, sizeof(oom) - 1);
    return reply(rq, status, JSON_TYPE, fp_buf_cstr(b), b->len);
}

/* Answers {"error": message}. */
static enum MHD_Result reply_error(const struct request *rq, unsigned int status,
                                   const char *message)
{
    fp_buf b = {0};
    int err = 0;
    enum MHD_Result rc;

    err |= fp_buf_putc(&b, '{');
    err |= put_str(&b, true, "error", message);
    err |= fp_buf_putc(&b, '}');
    rc = reply_json(rq, status, &b, err);
    fp_buf_free(&b);
    return rc;
}

static enum MHD_Result reply_bad_request(const struct request *rq, unsigned int status,
                                         const char *message)
{
    atomic_fetch_add(&stats.bad_requests, 1);
    return reply_error(rq, status, message);
}

/* Answers 200 with garbage: even numbers get a body that is not JSON, odd ones JSON of the
 * wrong shape for the endpoint. */
static enum MHD_Result reply_garbage(const struct request *rq, enum endpoint ep)
{
    static const char *const not_json[] = {
        "{\"place_id\":4711,\"lat\":\"55.67",
        "<html><body><h1>502 Bad Gateway</h1></body></html>\n",
        "{'error': undefined, data: NaN}",
    };
    static const char *const wrong_reverse[] = {
        "[]",
        "{\"status\":\"ok\",\"result\":null}",
        "{\"place_id\":\"x\",\"lat\":55.6,\"address\":\"Vestergade 1\"}",
    };
    static const char *const wrong_assets[] = {
        "[]",
        "{\"status\":\"ok\",\"result\":null}",
        "{\"device_id\":12345,\"oem\":[\"Volvo CE\"],\"model\":null}",
    };
    uint64_t n = atomic_fetch_add(&garbage_seq, 1);
    const char *body;

    atomic_fetch_add(&stats.garbage_injected, 1);
    if (n % 2 == 0)
        body = not_json[(n / 2) % 3];
    else
        body = (ep == EP_REVERSE ? wrong_reverse : wrong_assets)[(n / 2) % 3];
    return reply(rq, 200, JSON_TYPE, body, strlen(body));
}

/* Waits ms milliseconds, or less when shutdown begins. */
static void delay_ms(int64_t ms)
{
    int64_t deadline = fp_mono_ms() + ms;

    while (!atomic_load(&stopping)) {
        int64_t left = deadline - fp_mono_ms();
        struct timespec ts;

        if (left <= 0)
            break;
        if (left > SLEEP_SLICE_MS)
            left = SLEEP_SLICE_MS;
        ts.tv_sec = 0;
        ts.tv_nsec = (long)left * 1000000L;
        nanosleep(&ts, NULL);
    }
}

/* The configured latency with its jitter, never below 0. */
static int64_t pick_delay(void)
{
    int64_t latency = atomic_load(&settings.latency_ms);
    int64_t jitter = atomic_load(&settings.jitter_ms);
    int64_t d = latency;

    if (jitter > 0)
        d += (int64_t)(rng_next() % (uint64_t)(2 * jitter + 1)) - jitter;
    return d > 0 ? d : 0;
}

static enum MHD_Result handle_reverse(const struct request *rq)
{
    const char *format = MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, "format");
    const char *lat_s = MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, "lat");
    const char *lon_s = MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, "lon");
    bool jsonv2 = format == NULL || strcmp(format, "jsonv2") == 0;
    struct place p;
    double lat, lon;
    fp_buf b = {0};
    enum MHD_Result rc;
    int err;

    if (!jsonv2 && strcmp(format, "json") != 0)
        return reply_bad_request(rq, 400,
                                 "format must be jsonv2 or json (the stub serves no "
                                 "other)");
    if (lat_s == NULL || lon_s == NULL)
        return reply_bad_request(rq, 400, "Need coordinates or OSM object to lookup.");
    if (fp_arg_parse_double(lat_s, -90.0, 90.0, &lat) != 0 ||
        fp_arg_parse_double(lon_s, -180.0, 180.0, &lon) != 0)
        return reply_bad_request(rq, 400,
                                 "Invalid coordinates: lat must be a number in "
                                 "-90..90 and lon in -180..180.");
    geocode(lat, lon, &p);
    err = render_place(&b, &p, jsonv2);
    rc = reply_json(rq, 200, &b, err);
    fp_buf_free(&b);
    return rc;
}

/* True for 1..MAX_DEVICE_ID characters of [A-Za-z0-9._:-]. */
static bool device_id_ok(const char *id)
{
    size_t n = 0;

    for (const char *p = id; *p != '\0'; p++, n++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == ':' || c == '-';

        if (!ok || n == MAX_DEVICE_ID)
            return false;
    }
    return n > 0;
}

static enum MHD_Result handle_asset(const struct request *rq)
{
    const char *id = rq->url + strlen("/assets/");
    fp_buf b = {0};
    enum MHD_Result rc;
    int err;

    if (!device_id_ok(id))
        return reply_bad_request(rq, 400,
                                 "device id must be 1..64 characters of "
                                 "[A-Za-z0-9._:-]");
    if (asset_unknown(id)) {
        atomic_fetch_add(&stats.not_found, 1);
        return reply_error(rq, 404, "unknown asset");
    }
    err = render_asset(&b, id);
    rc = reply_json(rq, 200, &b, err);
    fp_buf_free(&b);
    return rc;
}

/* Answers a lookup: counts it, applies the faults, then the endpoint's own answer. */
static enum MHD_Result handle_lookup(const struct request *rq, enum endpoint ep)
{
    if (ep == EP_UNKNOWN) {
        atomic_fetch_add(&stats.not_found, 1);
        return reply_error(rq, 404, "not found");
    }
    if (strcmp(rq->method, "GET") != 0 && strcmp(rq->method, "HEAD") != 0)
        return reply_bad_request(rq, 405, "method not allowed");
    atomic_fetch_add(ep == EP_REVERSE ? &stats.reverse : &stats.assets, 1);

    if (atomic_load(&settings.outage)) {
        atomic_fetch_add(&stats.errors_injected, 1);
        return reply_error(rq, 503, "service unavailable (injected outage)");
    }
    delay_ms(pick_delay());
    if (atomic_load(&stopping))
        return reply_error(rq, 503, "shutting down");
    if (chance(atomic_load(&settings.error_ppm))) {
        atomic_fetch_add(&stats.errors_injected, 1);
        return reply_error(rq, 503, "injected failure");
    }
    if (chance(atomic_load(&settings.garbage_ppm)))
        return reply_garbage(rq, ep);
    return ep == EP_REVERSE ? handle_reverse(rq) : handle_asset(rq);
}

/* The new values a /control call asks for, gathered before any is applied. */
struct control_change {
    bool has_latency, has_jitter, has_error, has_garbage, has_unknown, has_outage;
    int64_t latency_ms, jitter_ms;
    uint32_t error_ppm, garbage_ppm, unknown_ppm;
    bool outage;
    int args;
    char error[160];
};

/* Reads one query argument of /control into the change; stops at the first bad one. */
static enum MHD_Result control_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    struct control_change *c = cls;
    int bad;

    (void)kind;
    c->args++;
    if (strcmp(key, "latency_ms") == 0) {
        bad = fp_arg_parse_int(value, 0, MAX_DELAY_MS, &c->latency_ms);
        c->has_latency = true;
    } else if (strcmp(key, "jitter_ms") == 0) {
        bad = fp_arg_parse_int(value, 0, MAX_DELAY_MS, &c->jitter_ms);
        c->has_jitter = true;
    } else if (strcmp(key, "error_rate") == 0) {
        bad = parse_rate(value, &c->error_ppm);
        c->has_error = true;
    } else if (strcmp(key, "garbage_rate") == 0) {
        bad = parse_rate(value, &c->garbage_ppm);
        c->has_garbage = true;
    } else if (strcmp(key, "unknown_asset_rate") == 0) {
        bad = parse_rate(value, &c->unknown_ppm);
        c->has_unknown = true;
    } else if (strcmp(key, "outage") == 0) {
        bad = parse_bool(value, &c->outage);
        c->has_outage = true;
    } else {
        snprintf(c->error, sizeof(c->error),
                 "unknown setting '%.40s' (latency_ms, jitter_ms, error_rate, garbage_rate, "
                 "unknown_asset_rate, outage)",
                 key);
        return MHD_NO;
    }
    if (bad != 0) {
        snprintf(c->error, sizeof(c->error),
                 "bad value for %s: times are integers in 0..%d, rates numbers in 0..1, "
                 "outage 0 or 1",
                 key, MAX_DELAY_MS);
        return MHD_NO;
    }
    return MHD_YES;
}

/* GET /control reports the settings, POST /control changes and then reports them. */
static enum MHD_Result handle_control(const struct request *rq)
{
    struct control_change c;
    bool post = strcmp(rq->method, "POST") == 0;
    fp_buf b = {0};
    enum MHD_Result rc;
    int err;

    if (!post && strcmp(rq->method, "GET") != 0 && strcmp(rq->method, "HEAD") != 0)
        return reply_error(rq, 405, "method not allowed");
    memset(&c, 0, sizeof(c));
    MHD_get_connection_values(rq->conn, MHD_GET_ARGUMENT_KIND, control_arg, &c);
    if (c.error[0] != '\0')
        return reply_error(rq, 400, c.error);
    if (!post && c.args > 0)
        return reply_error(rq, 405, "use POST to change settings");

    pthread_mutex_lock(&settings_lock);
    if (c.has_latency)
        atomic_store(&settings.latency_ms, c.latency_ms);
    if (c.has_jitter)
        atomic_store(&settings.jitter_ms, c.jitter_ms);
    if (c.has_error)
        atomic_store(&settings.error_ppm, c.error_ppm);
    if (c.has_garbage)
        atomic_store(&settings.garbage_ppm, c.garbage_ppm);
    if (c.has_unknown)
        atomic_store(&settings.unknown_asset_ppm, c.unknown_ppm);
    if (c.has_outage)
        atomic_store(&settings.outage, c.outage);
    err = render_settings(&b);
    pthread_mutex_unlock(&settings_lock);

    if (c.args > 0 && err == 0)
        fp_log_json(FP_LOG_INFO, "settings changed", "settings", fp_buf_cstr(&b));
    rc = reply_json(rq, 200, &b, err);
    fp_buf_free(&b);
    return rc;
}

static enum MHD_Result handle_stats(const struct request *rq, bool reset)
{
    struct stats_snapshot s;
    fp_buf b = {0};
    enum MHD_Result rc;

    if (reset ? strcmp(rq->method, "POST") != 0
              : strcmp(rq->method, "GET") != 0 && strcmp(rq->method, "HEAD") != 0)
        return reply_error(rq, 405, reset ? "use POST" : "method not allowed");
    take_stats(&s, reset);
    rc = reply_json(rq, 200, &b, render_stats(&b, &s));
    fp_buf_free(&b);
    if (reset)
        fp_info("stats reset");
    return rc;
}

static void in_flight_enter(void)
{
    int_fast64_t now = atomic_fetch_add(&stats.in_flight, 1) + 1;
    int_fast64_t seen = atomic_load(&stats.max_in_flight);

    while (now > seen && !atomic_compare_exchange_weak(&stats.max_in_flight, &seen, now)) {
    }
}

/*
 * libmicrohttpd's request callback, on the connection's own thread. The first call for a request
 * (headers read) only tags it; request bodies are read and ignored; the last call answers. A
 * handler may sleep (injected latency): it holds up only its own connection.
 */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct request rq = {conn, method, url};
    enum endpoint ep;

    (void)cls;
    (void)version;
    (void)upload_data;
    if (*req_cls == NULL) {
        ep = classify(url);
        *req_cls = &endpoint_tags[ep];
        if (is_lookup(ep)) {
            atomic_fetch_add(&stats.requests, 1);
            in_flight_enter();
        }
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    ep = (enum endpoint)((char *)*req_cls - endpoint_tags);
    switch (ep) {
    case EP_CONTROL:
        return handle_control(&rq);
    case EP_STATS:
        return handle_stats(&rq, false);
    case EP_STATS_RESET:
        return handle_stats(&rq, true);
    case EP_HEALTHZ:
        return reply(&rq, 200, "text/plain", "ok\n", 3);
    default:
        return handle_lookup(&rq, ep);
    }
}

/* Called when a request's response was sent or its connection died: ends its in-flight time. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    if (*req_cls != NULL && is_lookup((enum endpoint)((char *)*req_cls - endpoint_tags)))
        atomic_fetch_sub(&stats.in_flight, 1);
    *req_cls = NULL;
}

/* Forwards libmicrohttpd's error messages into the JSON log. */
__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    int n;

    (void)cls;
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (n < 0)
        return;
    n = (size_t)n >= sizeof(msg) ? (int)sizeof(msg) - 1 : n;
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    fp_log_kv(FP_LOG_WARN, msg, "source", "libmicrohttpd", FP_KV_END);
}

/* ---- Start-up ---------------------------------------------------------------------------- */

/* Reads --bind, an IPv4 loopback address (the stub serves synthetic data and test controls,
 * never the network), into the const char * at dest. An fp_arg_parse_fn. */
static int parse_bind(const char *value, void *dest, char *why, size_t why_size)
{
    struct in_addr addr;

    if (inet_pton(AF_INET, value, &addr) != 1 || (ntohl(addr.s_addr) >> 24) != 127) {
        snprintf(why, why_size, "'%s' is not an IPv4 loopback address (127.x.x.x)", value);
        return -1;
    }
    *(const char **)dest = value;
    return 0;
}

/* Reads --log-level into the fp_log_level at dest. An fp_arg_parse_fn. */
static int parse_log_level(const char *value, void *dest, char *why, size_t why_size)
{
    if (fp_log_level_parse(value, dest) == 0)
        return 0;
    snprintf(why, why_size, "'%s' is not debug, info, warn or error", value);
    return -1;
}

/*
 * Fills o from argv. Returns FP_ARGS_RUN, or the exit status after --help, --version or a usage
 * error.
 */
static int parse_options(int argc, char **argv, struct options *o)
{
    char version[128];
    const fp_arg args[] = {
        {.name = "bind",
         .type = FP_ARG_CUSTOM,
         .dest = &o->bind,
         .metavar = "ADDR",
         .help = "IPv4 loopback address",
         .parse = parse_bind,
         .def = DEFAULT_BIND},
        {.name = "port",
         .type = FP_ARG_INT,
         .dest = &o->port,
         .metavar = "N",
         .help = "port, 0 picks a free one",
         .min = 0,
         .max = 65535},
        {.name = "port-file",
         .type = FP_ARG_STRING,
         .dest = &o->port_file,
         .metavar = "PATH",
         .help = "write the port there once serving",
         .nonempty = true},
        {.name = "latency-ms",
         .type = FP_ARG_INT,
         .dest = &o->latency_ms,
         .metavar = "N",
         .help = "added latency of every lookup",
         .min = 0,
         .max = MAX_DELAY_MS},
        {.name = "jitter-ms",
         .type = FP_ARG_INT,
         .dest = &o->jitter_ms,
         .metavar = "N",
         .help = "uniform +/- jitter on the latency",
         .min = 0,
         .max = MAX_DELAY_MS},
        {.name = "error-rate",
         .type = FP_ARG_DOUBLE,
         .dest = &o->error_rate,
         .metavar = "P",
         .help = "fraction answered 503",
         .dmin = 0,
         .dmax = 1},
        {.name = "garbage-rate",
         .type = FP_ARG_DOUBLE,
         .dest = &o->garbage_rate,
         .metavar = "P",
         .help = "fraction answered 200 with garbage",
         .dmin = 0,
         .dmax = 1},
        {.name = "unknown-asset-rate",
         .type = FP_ARG_DOUBLE,
         .dest = &o->unknown_asset_rate,
         .metavar = "P",
         .help = "fraction of device ids that are unknown",
         .dmin = 0,
         .dmax = 1},
        {.name = "seed",
         .type = FP_ARG_UINT,
         .dest = &o->seed,
         .metavar = "S",
         .help = "seed of the fault decisions",
         .umax = UINT64_MAX},
        {.name = "max-connections",
         .type = FP_ARG_INT,
         .dest = &o->max_connections,
         .metavar = "N",
         .help = "connections served at once",
         .min = MAX_CONNECTIONS_MIN,
         .max = MAX_CONNECTIONS_MAX},
        {.name = "log-level",
         .type = FP_ARG_CUSTOM,
         .dest = &o->log_level,
         .metavar = "LEVEL",
         .help = "debug (every request), info, warn, error",
         .parse = parse_log_level,
         .def = "info"},
        FP_ARG_END,
    };
    const fp_args_spec spec = {
        .program = "lookup-stub",
        .summary = "Serves a Nominatim-compatible reverse geocoder (GET /reverse) and an asset "
                   "registry\n(GET /assets/ID) with injectable faults, on loopback only.",
        .version = version,
        .epilog = "Control: POST /control?latency_ms=&jitter_ms=&error_rate=&garbage_rate=\n"
                  "         &unknown_asset_rate=&outage=0|1, GET /control, GET /stats,\n"
                  "         POST /stats/reset, GET /healthz\n",
        .args = args};

    memset(o, 0, sizeof(*o));
    o->bind = DEFAULT_BIND;
    o->unknown_asset_rate = 0.05;
    o->seed = 1;
    o->max_connections = 512;
    o->log_level = FP_LOG_INFO;
    snprintf(version, sizeof(version), "%s (libmicrohttpd %s)", FP_VERSION, MHD_get_version());
    return fp_args_parse(&spec, argc, argv, NULL);
}

/* Fills sin from --bind (checked by parse_bind) and --port. */
static void bind_address(const struct options *o, struct sockaddr_in *sin)
{
    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)o->port);
    inet_pton(AF_INET, o->bind, &sin->sin_addr);
}

/* Raises the open-files limit so that max_connections sockets fit; logs when it cannot. */
static void raise_fd_limit(long max_connections)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)max_connections + 64;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < need)
        fp_warn("open-files limit %llu is below --max-connections + 64",
                (unsigned long long)rl.rlim_cur);
}

/* Starts the server (one thread per connection). Returns it and sets *port, or NULL after
 * logging why. */
static struct MHD_Daemon *start_server(const struct options *o, const struct sockaddr_in *sin,
                                       unsigned *port)
{
    const union MHD_DaemonInfo *info;
    struct MHD_Daemon *d;

    /* The logger comes first so that libmicrohttpd never writes to stderr on its own. */
    d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG,
        (uint16_t)o->port, NULL, NULL, on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log,
        NULL, MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)sin, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)o->max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)IDLE_TIMEOUT_S, MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)LISTEN_BACKLOG,
        MHD_OPTION_THREAD_STACK_SIZE, THREAD_STACK_BYTES, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
        NULL, MHD_OPTION_END);
    if (d == NULL) {
        char port_text[16];

        snprintf(port_text, sizeof(port_text), "%" PRId64, o->port);
        fp_log_kv(FP_LOG_ERROR, "cannot start the HTTP server", "bind", o->bind, "port", port_text,
                  FP_KV_END);
        return NULL;
    }
    info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    if (info == NULL || info->port == 0) {
        fp_error("cannot read the port the HTTP server listens on");
        MHD_stop_daemon(d);
        return NULL;
    }
    *port = info->port;
    return d;
}

/* Publishes the port: the port file first (a script waiting for it finds a server that is
 * ready), then "port=N" on stdout, then the "ready" log line. Returns 0, or -1 after logging. */
static int announce(const struct options *o, unsigned port)
{
    char line[32];
    fp_buf b = {0};
    int err = 0;

    snprintf(line, sizeof(line), "%u\n", port);
    if (o->port_file != NULL && fp_file_write_atomic(o->port_file, line, strlen(line)) != 0) {
        fp_log_kv(FP_LOG_ERROR, "cannot write the port file", "path", o->port_file, "error",
                  strerror(errno), FP_KV_END);
        return -1;
    }
    printf("port=%u\n", port);
    fflush(stdout);

    err |= fp_buf_putc(&b, '{');
    err |= put_str(&b, true, "bind", o->bind);
    err |= put_u64(&b, false, "port", port);
    err |= put_u64(&b, false, "max_connections", (uint64_t)o->max_connections);
    err |= put_u64(&b, false, "seed", o->seed);
    err |= put_str(&b, false, "version", FP_VERSION);
    err |= put_str(&b, false, "libmicrohttpd", MHD_get_version());
    err |= fp_buf_puts(&b, ",\"settings\":");
    err |= render_settings(&b);
    err |= fp_buf_putc(&b, '}');
    if (err == 0)
        fp_log_json(FP_LOG_INFO, "ready", "config", fp_buf_cstr(&b));
    fp_buf_free(&b);
    return 0;
}

int main(int argc, char **argv)
{
    struct options o;
    struct sockaddr_in sin;
    struct MHD_Daemon *daemon;
    unsigned port = 0;
    int rc = parse_options(argc, argv, &o);

    if (rc != FP_ARGS_RUN)
        return rc;
    bind_address(&o, &sin);
    fp_log_init("lookup-stub", o.log_level);
    atomic_store(&settings.latency_ms, o.latency_ms);
    atomic_store(&settings.jitter_ms, o.jitter_ms);
    atomic_store(&settings.error_ppm, rate_ppm(o.error_rate));
    atomic_store(&settings.garbage_ppm, rate_ppm(o.garbage_rate));
    atomic_store(&settings.unknown_asset_ppm, rate_ppm(o.unknown_asset_rate));
    atomic_store(&rng_state, o.seed);

    if (fp_signal_install() != 0) {
        fp_log_kv(FP_LOG_ERROR, "cannot install signal handlers", "error", strerror(errno),
                  FP_KV_END);
        return 1;
    }
    if (o.port_file != NULL && unlink(o.port_file) != 0 && errno != ENOENT) {
        fp_log_kv(FP_LOG_ERROR, "cannot remove the stale port file", "path", o.port_file, "error",
                  strerror(errno), FP_KV_END);
        return 1;
    }
    raise_fd_limit(o.max_connections);
    daemon = start_server(&o, &sin, &port);
    if (daemon == NULL)
        return 1;
    rc = announce(&o, port) == 0 ? 0 : 1;

    /* The handlers only set a flag, and may run on any thread: poll it. */
    while (rc == 0 && !fp_signal_stop_requested()) {
        struct timespec ts = {0, STOP_POLL_MS * 1000000L};

        nanosleep(&ts, NULL);
    }
    /* Delayed answers are cut short (503 "shutting down"); the lookups in flight get a moment
     * to be answered before every connection is closed. */
    fp_info("shutting down");
    atomic_store(&stopping, true);
    for (int i = 0; i < SHUTDOWN_GRACE_MS / 10 && atomic_load(&stats.in_flight) > 0; i++) {
        struct timespec ts = {0, 10 * 1000000L};

        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(daemon);
    if (o.port_file != NULL)
        unlink(o.port_file);
    fp_log(rc == 0 ? FP_LOG_INFO : FP_LOG_ERROR, "stopped");
    return rc;
}
