/* fleet-sim: a deterministic construction-fleet simulator that writes real device frames
 * (Teltonika Codec 8 Extended and Codec 8 over TCP, Codec 8 over UDP, SenML JSON packs) into
 * telemetry.raw, or into a corpus file for benchmarks, and says exactly what it wrote.
 *
 * Usage: fleet-sim (--brokers B | --output FILE) [--topic telemetry.raw] [--devices 50]
 *                  [--sites 8] [--records 10000 | --duration S] [--rate R] [--seed 1]
 *                  [--retransmit-rate 0.02] [--corrupt-rate 0] [--manifest FILE]
 *                  [--interval-ms 10000] [--clock sim|wall] [--start-ms 1767225600000]
 *                  [--inject-fatal-after N]
 *
 * The model. Every machine has a 15-digit IMEI with a valid Luhn check digit (from the seed and
 * its index) and belongs to one of two regions, around Copenhagen and around Santiago de Chile,
 * each with a few construction sites a few hundred metres across. A machine is PARKED at a site
 * most of the time (ignition off, a report every 60 s), WORKING at times (ignition on, moving
 * slowly inside the site) and sometimes DRIVING to another site of its region along a straight
 * line at 30-60 km/h; running, it reports every --interval-ms. Engine hours (IO 102, minutes)
 * rise while the ignition is on, the odometer (IO 16, metres) while it moves, the fuel level
 * (IO 84, 0.1 l) falls while running and is refilled at sites; external voltage (IO 66) is
 * ~27.5 V running and ~24.4 V off; there are battery voltage (67), GSM signal (21), movement
 * (240) and ignition (239), records without a fix now and then (satellites 0, last known
 * position), and in Codec 8E frames occasional fault codes (IO 281) and the VIN (IO 256).
 * Machines whose index % 10 == 9 are SenML gateways; the others send Teltonika frames, the
 * codec chosen per frame (about 75 % Codec 8E TCP, 10 % Codec 8 TCP, 5 % Codec 8 UDP of all
 * frames, SenML making the rest). A unit keeps its records and sends them 1-8 per frame (most
 * frames hold one). Every message's key is the IMEI; there are no headers.
 *
 * Time. With --clock sim (the default) event time starts at --start-ms and runs as fast as the
 * output allows; the same seed and options give the same bytes. With --clock wall a record's
 * timestamp is the wall clock when its frame is sent (still strictly increasing per device),
 * for latency measurements. Either way a device's timestamps strictly increase, so every
 * (device, ts) in the output is one observation.
 *
 * Faults. --retransmit-rate P sends that fraction of frames again, byte for byte, 1-32 frames
 * later (a unit that missed its acknowledgement); resent records are not new records.
 * --corrupt-rate P sends a damaged copy BEFORE that fraction of intact frames (a line error
 * followed by the unit's resend): a TCP frame with one byte of record data changed
 * (crc_mismatch) or cut short by at least one byte, keeping its first 12 (truncated); a SenML
 * pack cut in half (json_syntax). UDP frames are never damaged.
 *
 * --output FILE writes a corpus instead of producing: per message a big-endian u16 key length,
 * the key, a big-endian u32 value length and the value.
 *
 * The manifest has one line per distinct valid observation and one per damaged frame:
 *
 *     valid DEVICE_ID TS LAT LON      TS as 2026-01-01T00:00:00.000Z; LAT and LON as %.7f of
 *                                     what the decoder reads, or "- -" without a position
 *     corrupt CODE                    the parser's expected error code for that message
 *
 * The summary on stdout is one JSON object: frames (messages sent) and by_kind, retransmitted,
 * corrupt and corrupt_by_code, records (valid records in intact first-time frames), distinct
 * (records whose timestamp is above their device's previous one: equal to records while the
 * timestamps strictly increase), undelivered (delivery failures plus messages still queued),
 * the settings, elapsed_s and records_per_s. Exit status: 0 when everything was delivered and
 * distinct equals records, 1 otherwise or on a failure, 2 on bad options.
 *
 * Delivery. Every message is to reach the topic whatever the broker goes through: a failed
 * delivery is kept and sent again, and after a fatal error of the idempotent producer (a broker
 * that lost acknowledged state, e.g. after SIGKILL, answers with an out-of-order sequence) the
 * queued and in-flight messages are taken back, a new producer replaces the old one and sends
 * them again; producers_renewed in the summary counts those. Messages sent again may arrive twice
 * and out of their first order; the pipeline drops the duplicates by key.
 * --inject-fatal-after N raises such a fatal error (librdkafka's rd_kafka_test_fatal_error) after
 * the Nth message, for the test of that path. */
#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/fp_args.h"
#include "common/fp_buf.h"
#include "common/fp_hash.h"
#include "common/fp_signal.h"
#include "common/fp_time.h"
#include "parser-svc/teltonika_frame.h"

#define MAX_DEVICES        1000000L /* the IMEI serials stay distinct up to here */
#define MAX_SITES          1000L
#define MAX_BATCH          8  /* records a unit keeps before it must send */
#define MAX_IO             10 /* IO elements in one record */
#define PARKED_PERIOD_MS   60000
#define METRES_PER_DEG_LAT 111320.0
#define KEEP_TCP_BYTES     12 /* a truncated TCP frame keeps preamble, length and a little more */
#define MAX_RENEWALS       10 /* new producers after fatal errors before giving up */
#define RESEND_ROUNDS      5  /* flushes that send failed deliveries again, at the end */

/* ---- options ------------------------------------------------------------------------------ */

typedef struct sim_options {
    const char *brokers;
    const char *output;
    const char *topic;
    const char *manifest;
    const char *geofences; /* write the sites as GeoJSON polygons here */
    int64_t devices;
    int64_t sites;
    int64_t records;   /* -1: no limit */
    double duration_s; /* 0: no limit */
    double rate;       /* valid records per second, 0: as fast as possible */
    uint64_t seed;
    double retransmit_rate;
    double corrupt_rate;
    int64_t interval_ms;
    const char *clock; /* "sim" or "wall" */
    bool wall_clock;
    int64_t start_ms;
    int64_t inject_fatal_after; /* 0: never */
} sim_options;

/* Fills o (holding the defaults) from argv. Returns FP_ARGS_RUN, or the exit status after
 * --help or a usage error. */
static int parse_options(int argc, char **argv, sim_options *o)
{
    bool records_given = false;
    const fp_arg args[] = {
        {.name = "brokers",
         .type = FP_ARG_STRING,
         .dest = &o->brokers,
         .metavar = "B",
         .help = "Kafka bootstrap servers to produce to",
         .nonempty = true},
        {.name = "output",
         .type = FP_ARG_STRING,
         .dest = &o->output,
         .metavar = "FILE",
         .help = "write a corpus file instead (u16 BE key length, key, u32 BE value length, "
                 "value; per message)",
         .nonempty = true},
        {.name = "topic",
         .type = FP_ARG_STRING,
         .dest = &o->topic,
         .metavar = "T",
         .help = "topic",
         .nonempty = true},
        {.name = "devices",
         .type = FP_ARG_INT,
         .dest = &o->devices,
         .metavar = "N",
         .help = "machines; index % 10 == 9 sends SenML",
         .min = 1,
         .max = MAX_DEVICES},
        {.name = "sites",
         .type = FP_ARG_INT,
         .dest = &o->sites,
         .metavar = "N",
         .help = "construction sites, in two regions",
         .min = 1,
         .max = MAX_SITES},
        {.name = "records",
         .type = FP_ARG_INT,
         .dest = &o->records,
         .metavar = "N",
         .help = "stop after N valid records",
         .min = 0,
         .max = INT64_MAX / 2,
         .given = &records_given},
        {.name = "duration",
         .type = FP_ARG_DOUBLE,
         .dest = &o->duration_s,
         .metavar = "S",
         .help = "stop after S seconds of wall time instead; 0: no limit",
         .dmin = 0,
         .dmax = 1e9},
        {.name = "rate",
         .type = FP_ARG_DOUBLE,
         .dest = &o->rate,
         .metavar = "R",
         .help = "valid records per second; 0: as fast as possible",
         .dmin = 0,
         .dmax = 1e9},
        {.name = "seed",
         .type = FP_ARG_UINT,
         .dest = &o->seed,
         .metavar = "S",
         .help = "random seed: the same seed gives the same bytes",
         .umax = INT64_MAX},
        {.name = "retransmit-rate",
         .type = FP_ARG_DOUBLE,
         .dest = &o->retransmit_rate,
         .metavar = "P",
         .help = "fraction of frames sent again",
         .dmin = 0,
         .dmax = 1},
        {.name = "corrupt-rate",
         .type = FP_ARG_DOUBLE,
         .dest = &o->corrupt_rate,
         .metavar = "P",
         .help = "fraction of frames preceded by a damaged copy",
         .dmin = 0,
         .dmax = 1},
        {.name = "manifest",
         .type = FP_ARG_STRING,
         .dest = &o->manifest,
         .metavar = "FILE",
         .help = "write the manifest of valid records and damaged frames",
         .nonempty = true},
        {.name = "geofences",
         .type = FP_ARG_STRING,
         .dest = &o->geofences,
         .metavar = "FILE",
         .help = "write the sites as a GeoJSON FeatureCollection (for the enricher's "
                 "GEOFENCES_FILE)",
         .nonempty = true},
        {.name = "interval-ms",
         .type = FP_ARG_INT,
         .dest = &o->interval_ms,
         .metavar = "MS",
         .help = "report period while the ignition is on",
         .min = 1,
         .max = 86400000},
        {.name = "clock",
         .type = FP_ARG_ENUM,
         .dest = &o->clock,
         .choices = "sim|wall",
         .help = "timestamps from the simulation or the wall clock"},
        /* From 2^28 s on, so that SenML times stay absolute, to well before year 9999. */
        {.name = "start-ms",
         .type = FP_ARG_INT,
         .dest = &o->start_ms,
         .metavar = "MS",
         .help = "simulated start time",
         .min = 268435456000LL,
         .max = 250000000000000LL},
        {.name = "inject-fatal-after",
         .type = FP_ARG_INT,
         .dest = &o->inject_fatal_after,
         .metavar = "N",
         .help = "for tests: raise a fatal producer error after N messages (0: never)",
         .min = 0,
         .max = INT64_MAX / 2},
        FP_ARG_END,
    };
    const fp_args_spec spec = {
        .program = "fleet-sim",
        .summary = "Simulates a fleet's Teltonika and SenML frames, into Kafka or a corpus file.",
        .usage = "(--brokers B | --output FILE) [options]",
        .args = args};
    int rc = fp_args_parse(&spec, argc, argv, NULL);

    if (rc != FP_ARGS_RUN)
        return rc;
    if ((o->brokers == NULL) == (o->output == NULL))
        return fp_args_usage_error(&spec, "give exactly one of --brokers and --output");
    o->wall_clock = strcmp(o->clock, "wall") == 0;
    if (o->duration_s > 0 && !records_given)
        o->records = -1;
    return FP_ARGS_RUN;
}

/* ---- random numbers ----------------------------------------------------------------------- */

/* splitmix64: any state is valid, streams seeded from (seed, purpose, index) are independent
 * enough for a simulation, and the sequence is the same on every platform. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));

    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static uint64_t rng_stream(unsigned long long seed, uint64_t purpose, uint64_t index)
{
    uint64_t s = (uint64_t)seed ^ purpose * UINT64_C(0xD1B54A32D192ED03);

    (void)rng_next(&s);
    s ^= index * UINT64_C(0xABC98388FB8FAC03);
    return rng_next(&s);
}

/* A number in [0, 1). */
static double rng_unit(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* A number in [0, n). */
static uint32_t rng_below(uint64_t *s, uint32_t n)
{
    return (uint32_t)(((rng_next(s) >> 32) * n) >> 32);
}

static double rng_range(uint64_t *s, double lo, double hi)
{
    return lo + (hi - lo) * rng_unit(s);
}

static bool rng_chance(uint64_t *s, double p)
{
    return rng_unit(s) < p;
}

/* ---- the world ---------------------------------------------------------------------------- */

typedef struct site {
    double lat, lon;
    double radius_m;
    double m_per_deg_lon; /* metres per degree of longitude at the site */
    double alt_m;
    int region;
} site;

static const struct {
    double lat, lon, alt_m;
} regions[2] = {{55.6, 12.5, 15}, {-33.4, -70.6, 560}};

enum machine_state { PARKED, WORKING, DRIVING };

enum frame_kind { K_CODEC8E_TCP, K_CODEC8_TCP, K_CODEC8_UDP, K_SENML, K_COUNT };
static const char *const kind_names[K_COUNT] = {"codec8e_tcp", "codec8_tcp", "codec8_udp", "senml"};

enum damage { D_CRC, D_TRUNCATED, D_JSON, D_COUNT };
static const char *const damage_codes[D_COUNT] = {"crc_mismatch", "truncated", "json_syntax"};

/* One observation as the unit recorded it. */
typedef struct sample {
    int64_t ts_ms;
    int32_t lat_e7, lon_e7; /* 0/0 only when the unit never had a fix */
    uint32_t odometer_m, engine_min;
    uint16_t heading, speed_kmh, ext_mv, batt_mv, fuel_dl, event_io;
    int16_t alt_m;
    uint8_t satellites, priority, ignition, movement, gsm;
    bool with_vin;
    uint8_t dtc_len;
    char dtc[24];
} sample;

typedef struct device {
    char imei[16];
    char vin[18];
    uint64_t rng;
    bool senml;
    /* Where it is and what it does. */
    int site, target_site;
    enum machine_state state;
    int64_t clock_ms;  /* the simulation has advanced this machine up to here */
    int64_t state_end; /* when the current state ends */
    double lat, lon, alt_m;
    double heading;
    double speed_kmh; /* speed over the interval that follows the last sample */
    bool work_moving;
    double from_lat, from_lon, from_alt, to_lat, to_lon, to_alt;
    double trip_m, trip_frac, cruise_kmh;
    int64_t trip_start, trip_end;
    /* Counters and tanks. */
    double odometer_m, engine_ms, fuel_dl, fuel_cap_dl;
    double work_l_per_h, drive_l_per_h;
    /* What the unit knows. */
    int fixless; /* samples without a fix still to come before the first one */
    bool had_fix;
    int32_t last_lat_e7, last_lon_e7;
    uint8_t prev_ignition, prev_movement;
    int64_t dtc_until;
    uint8_t dtc_len;
    char dtc[24];
    /* The unit's buffer and transport. */
    int64_t next_ts;
    int64_t last_sent_ts; /* the last timestamp sent, for the distinct count and wall clock */
    enum frame_kind kind;
    int target, nbuf;
    sample buf[MAX_BATCH];
    uint16_t udp_packet_id;
    uint8_t avl_packet_id;
} device;

/* A frame waiting to be sent again. */
typedef struct resend {
    uint64_t due; /* when this many first-time frames have been sent */
    enum frame_kind kind;
    char key[16];
    uint8_t *data;
    size_t len;
} resend;

/* A message the producer gave back undelivered, kept to be sent again. */
typedef struct unsent {
    char *key;
    size_t key_len;
    void *data;
    size_t len;
} unsent;

typedef struct sim {
    const sim_options *o;
    site *sites;
    int *region_sites[2];
    int region_count[2];
    device *dev;
    uint32_t *heap; /* device indices ordered by (next_ts, index) */
    size_t nheap;
    uint64_t net_rng; /* retransmission and damage decisions */
    /* Outputs. */
    rd_kafka_t *rk;
    FILE *out;
    FILE *manifest;
    fp_buf frame, damaged;
    resend *resends;
    size_t nresends, cap_resends;
    unsent *unsent;
    size_t nunsent, cap_unsent;
    int renewals; /* producers replaced after a fatal error */
    /* Counts. */
    long long taken; /* samples taken */
    uint64_t first_frames;
    uint64_t frames, by_kind[K_COUNT], retransmitted, corrupt, by_damage[D_COUNT];
    uint64_t records, distinct;
    int64_t start_mono;
} sim;

static long delivery_failures;

/* ---- geometry ----------------------------------------------------------------------------- */

static double deg2rad(double d)
{
    return d * (M_PI / 180.0);
}

/* Bearing in [0, 360) from north, clockwise, on a local flat map (fine for tens of km). */
static double bearing_deg(double dx_m, double dy_m)
{
    double b = atan2(dx_m, dy_m) * (180.0 / M_PI);

    return b < 0 ? b + 360.0 : b;
}

static int32_t to_e7(double deg)
{
    return (int32_t)llround(deg * 1e7);
}

/* A point uniformly inside the site's disc. */
static void point_in_site(uint64_t *rng, const site *st, double *lat, double *lon)
{
    double r = st->radius_m * sqrt(rng_unit(rng));
    double a = rng_range(rng, 0, 2 * M_PI);

    *lat = st->lat + r * cos(a) / METRES_PER_DEG_LAT;
    *lon = st->lon + r * sin(a) / st->m_per_deg_lon;
}

/* ---- the machine model -------------------------------------------------------------------- */

static const char *const dtc_pool[] = {"P0123", "P0456", "P0300", "P0171", "P0087", "P2002",
                                       "P0401", "P0118", "U0100", "C0035", "B1000", "P0540"};

/* Appends `d` digits of v (most significant first) at p; returns p + d. */
static char *put_digits(char *p, uint64_t v, int d)
{
    for (int i = d - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + d;
}

/* IMEI = 8-digit type allocation code, 6-digit serial, Luhn check digit (doubling every second
 * digit from the left, starting with the second). */
static void make_imei(char out[16], const char *tac, uint32_t serial)
{
    int sum = 0;

    memcpy(out, tac, 8);
    put_digits(out + 8, serial, 6);
    for (int i = 0; i < 14; i++) {
        int dg = out[i] - '0';

        if (i % 2 == 1) {
            dg *= 2;
            if (dg > 9)
                dg -= 9;
        }
        sum += dg;
    }
    out[14] = (char)('0' + (10 - sum % 10) % 10);
    out[15] = '\0';
}

static void set_state(sim *s, device *d, enum machine_state st, int64_t now);

/* Moves the machine's physics (position, counters, tank) on to time t within its state. */
static void move_to(sim *s, device *d, int64_t t)
{
    double dt = (double)(t - d->clock_ms);

    if (dt <= 0)
        return;
    if (d->state == DRIVING) {
        double frac = d->trip_end > d->trip_start
                          ? (double)(t - d->trip_start) / (double)(d->trip_end - d->trip_start)
                          : 1.0;

        if (frac > 1)
            frac = 1;
        d->odometer_m += d->trip_m * (frac - d->trip_frac);
        d->trip_frac = frac;
        d->lat = d->from_lat + (d->to_lat - d->from_lat) * frac;
        d->lon = d->from_lon + (d->to_lon - d->from_lon) * frac;
        d->alt_m = d->from_alt + (d->to_alt - d->from_alt) * frac;
        d->fuel_dl -= d->drive_l_per_h * 10.0 * dt / 3600000.0;
        d->engine_ms += dt;
    } else if (d->state == WORKING) {
        const site *st = &s->sites[d->site];
        double dist = d->speed_kmh / 3.6 * dt / 1000.0;

        if (dist > 0) {
            double dy, dx, r;

            d->lat += dist * cos(deg2rad(d->heading)) / METRES_PER_DEG_LAT;
            d->lon += dist * sin(deg2rad(d->heading)) / st->m_per_deg_lon;
            d->odometer_m += dist;
            /* A machine that reaches the edge of the site turns back towards its middle. */
            dy = (d->lat - st->lat) * METRES_PER_DEG_LAT;
            dx = (d->lon - st->lon) * st->m_per_deg_lon;
            r = sqrt(dx * dx + dy * dy);
            if (r > st->radius_m) {
                d->lat = st->lat + dy * 0.95 * st->radius_m / r / METRES_PER_DEG_LAT;
                d->lon = st->lon + dx * 0.95 * st->radius_m / r / st->m_per_deg_lon;
                d->heading = bearing_deg(-dx, -dy);
            }
        }
        d->fuel_dl -= d->work_l_per_h * 10.0 * dt / 3600000.0;
        d->engine_ms += dt;
    }
    if (d->fuel_dl < 0)
        d->fuel_dl = 0;
    d->clock_ms = t;
}

/* At a site with a low tank, the fuel bowser comes now and then (always when nearly empty). */
static void maybe_refill(device *d)
{
    double level = d->fuel_dl / d->fuel_cap_dl;

    if (level < 0.1 || (level < 0.35 && rng_chance(&d->rng, 0.6)))
        d->fuel_dl = d->fuel_cap_dl * rng_range(&d->rng, 0.9, 1.0);
}

/* Starts a trip to another site of the region, or returns false when there is none. */
static bool start_trip(sim *s, device *d, int64_t now)
{
    const site *from = &s->sites[d->site];
    int r = from->region, n = s->region_count[r];
    const site *to;
    double dx, dy;
    int k;

    if (n < 2)
        return false;
    k = (int)rng_below(&d->rng, (uint32_t)(n - 1));
    if (s->region_sites[r][k] == d->site)
        k = n - 1;
    d->target_site = s->region_sites[r][k];
    to = &s->sites[d->target_site];
    d->from_lat = d->lat;
    d->from_lon = d->lon;
    d->from_alt = d->alt_m;
    point_in_site(&d->rng, to, &d->to_lat, &d->to_lon);
    d->to_alt = to->alt_m + rng_range(&d->rng, -3, 3);
    dy = (d->to_lat - d->from_lat) * METRES_PER_DEG_LAT;
    dx = (d->to_lon - d->from_lon) * from->m_per_deg_lon;
    d->trip_m = sqrt(dx * dx + dy * dy);
    d->trip_frac = 0;
    d->heading = bearing_deg(dx, dy);
    d->cruise_kmh = rng_range(&d->rng, 33, 57);
    d->trip_start = now;
    d->trip_end = now + 1000 + (int64_t)(d->trip_m / (d->cruise_kmh / 3.6) * 1000.0);
    d->state_end = d->trip_end;
    return true;
}

/* Enters state st at time now and decides how long it lasts. */
static void set_state(sim *s, device *d, enum machine_state st, int64_t now)
{
    if (st == DRIVING && start_trip(s, d, now)) {
        d->state = DRIVING;
        return;
    }
    if (st == DRIVING)
        st = WORKING;
    d->state = st;
    d->speed_kmh = 0;
    if (st == PARKED)
        d->state_end = now + (int64_t)rng_range(&d->rng, 30 * 60000.0, 240 * 60000.0);
    else
        d->state_end = now + (int64_t)rng_range(&d->rng, 15 * 60000.0, 60 * 60000.0);
    maybe_refill(d);
}

/* The state that follows the current one, when it ends at time now. */
static void next_state(sim *s, device *d, int64_t now)
{
    double u = rng_unit(&d->rng);

    switch (d->state) {
    case PARKED:
        set_state(s, d, u < 0.8 ? WORKING : DRIVING, now);
        break;
    case WORKING:
        set_state(s, d, u < 0.75 ? PARKED : DRIVING, now);
        break;
    case DRIVING:
        d->site = d->target_site;
        d->lat = d->to_lat;
        d->lon = d->to_lon;
        d->alt_m = d->to_alt;
        set_state(s, d, u < 0.6 ? WORKING : PARKED, now);
        break;
    }
}

static void init_sites(sim *s)
{
    uint64_t rng = rng_stream(s->o->seed, 1, 0);

    for (long i = 0; i < s->o->sites; i++) {
        site *st = &s->sites[i];
        int r = (int)(i % 2);

        st->region = r;
        st->lat = regions[r].lat + rng_range(&rng, -0.15, 0.15);
        st->lon = regions[r].lon + rng_range(&rng, -0.25, 0.25);
        st->radius_m = rng_range(&rng, 120, 400);
        st->m_per_deg_lon = METRES_PER_DEG_LAT * cos(deg2rad(st->lat));
        st->alt_m = regions[r].alt_m + rng_range(&rng, -10, 40);
        s->region_sites[r][s->region_count[r]++] = (int)i;
    }
}

/* Writes every site as a 32-sided polygon a tenth wider than the disc machines park in, with
 * properties id "site-N" and a name, as the enricher's GEOFENCES_FILE expects. Returns 0 or
 * -1. */
static int write_geofences(const sim *s, const char *path)
{
    static const char *const region_names[2] = {"Copenhagen", "Santiago"};
    FILE *f = fopen(path, "w");

    if (f == NULL) {
        fprintf(stderr, "fleet-sim: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    fputs("{\"type\":\"FeatureCollection\",\"features\":[", f);
    for (long i = 0; i < s->o->sites; i++) {
        const site *st = &s->sites[i];
        double r = st->radius_m * 1.1;

        fprintf(f,
                "%s{\"type\":\"Feature\",\"properties\":{\"id\":\"site-%ld\",\"name\":\"%s "
                "site %ld\"},\"geometry\":{\"type\":\"Polygon\",\"coordinates\":[[",
                i > 0 ? "," : "", i, region_names[st->region], i);
        for (int k = 0; k <= 32; k++) {
            double a = deg2rad((double)(k % 32) * 360.0 / 32.0);

            fprintf(f, "%s[%.7f,%.7f]", k > 0 ? "," : "", st->lon + r * sin(a) / st->m_per_deg_lon,
                    st->lat + r * cos(a) / METRES_PER_DEG_LAT);
        }
        fputs("]]}}", f);
    }
    fputs("]}\n", f);
    return fclose(f) == 0 ? 0 : -1;
}

static void init_device(sim *s, long i)
{
    static const char *const tacs[] = {"35209308", "35630704", "86494603", "35331410"};
    static const char *const wmis[] = {"CAT", "KMT", "VCE", "JCB", "LBH", "HCM"};
    static const char vin_chars[] = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ";
    device *d = &s->dev[i];
    uint64_t serial_base = rng_stream(s->o->seed, 2, 0) % 1000000;
    double u;

    memset(d, 0, sizeof(*d));
    d->rng = rng_stream(s->o->seed, 3, (uint64_t)i);
    /* 7919 is prime to 10^6, so serials differ for up to a million machines. */
    make_imei(d->imei, tacs[rng_below(&d->rng, 4)],
              (uint32_t)((serial_base + (uint64_t)i * 7919) % 1000000));
    memcpy(d->vin, wmis[rng_below(&d->rng, 6)], 3);
    for (int k = 3; k < 17; k++)
        d->vin[k] = vin_chars[rng_below(&d->rng, sizeof(vin_chars) - 1)];
    d->vin[17] = '\0';
    d->senml = i % 10 == 9;
    d->site = (int)rng_below(&d->rng, (uint32_t)s->o->sites);
    point_in_site(&d->rng, &s->sites[d->site], &d->lat, &d->lon);
    d->alt_m = s->sites[d->site].alt_m + rng_range(&d->rng, -3, 3);
    d->heading = rng_range(&d->rng, 0, 360);
    d->odometer_m = rng_range(&d->rng, 5e6, 4e8);
    d->engine_ms = rng_range(&d->rng, 500, 15000) * 3600000.0;
    d->fuel_cap_dl = 10.0 * (double)(200 + 50 * rng_below(&d->rng, 9));
    d->fuel_dl = d->fuel_cap_dl * rng_range(&d->rng, 0.4, 1.0);
    d->work_l_per_h = rng_range(&d->rng, 8, 22);
    d->drive_l_per_h = rng_range(&d->rng, 20, 32);
    d->fixless = rng_chance(&d->rng, 0.05) ? 1 + (int)rng_below(&d->rng, 3) : 0;
    d->udp_packet_id = (uint16_t)rng_below(&d->rng, 65536);
    d->avl_packet_id = (uint8_t)rng_below(&d->rng, 256);
    d->clock_ms = s->o->start_ms;
    d->last_sent_ts = INT64_MIN;
    /* Machines start somewhere in their day: mostly parked, part way into each state. */
    u = rng_unit(&d->rng);
    set_state(s, d, u < 0.7 ? PARKED : u < 0.92 ? WORKING : DRIVING, s->o->start_ms);
    if (d->state != DRIVING)
        d->state_end = s->o->start_ms + (int64_t)((double)(d->state_end - s->o->start_ms) *
                                                  rng_range(&d->rng, 0.05, 1));
    d->prev_ignition = d->state != PARKED;
    d->prev_movement = d->state == DRIVING;
    d->next_ts = s->o->start_ms + (int64_t)rng_below(&d->rng, PARKED_PERIOD_MS);
}

/* Chooses the kind of the next frame and how many records the unit keeps for it. */
static void start_batch(device *d)
{
    double u = rng_unit(&d->rng);

    if (d->senml) {
        d->kind = K_SENML;
        d->target = rng_chance(&d->rng, 0.75) ? 2 : 1;
    } else if (u < 75.0 / 90.0) {
        d->kind = K_CODEC8E_TCP;
        d->target = rng_chance(&d->rng, 0.8) ? 1 : 2 + (int)rng_below(&d->rng, 7);
    } else if (u < 85.0 / 90.0) {
        d->kind = K_CODEC8_TCP;
        d->target = 1 + (int)rng_below(&d->rng, 3);
    } else {
        d->kind = K_CODEC8_UDP;
        d->target = 1 + (int)rng_below(&d->rng, 2);
    }
}

/* A GSM signal level 1-5, mostly good. */
static uint8_t gsm_level(uint64_t *rng)
{
    double u = rng_unit(rng);

    return u < 0.4 ? 5 : u < 0.75 ? 4 : u < 0.9 ? 3 : u < 0.97 ? 2 : 1;
}

/* Fault codes come and go while the engine runs. */
static void update_faults(device *d, int64_t t, bool running, bool *fresh)
{
    *fresh = false;
    if (d->dtc_len > 0 && t >= d->dtc_until)
        d->dtc_len = 0;
    if (d->dtc_len == 0 && running && rng_chance(&d->rng, 0.002)) {
        int n = 1 + (int)rng_below(&d->rng, 3);
        size_t len = 0;

        for (int k = 0; k < n; k++) {
            if (k > 0)
                d->dtc[len++] = ',';
            memcpy(d->dtc + len, dtc_pool[rng_below(&d->rng, 12)], 5);
            len += 5;
        }
        d->dtc_len = (uint8_t)len;
        d->dtc_until = t + (int64_t)rng_range(&d->rng, 10 * 60000.0, 90 * 60000.0);
        *fresh = true;
    }
}

/* Takes the device's next sample into its buffer and schedules the one after it. */
static void take_sample(sim *s, device *d)
{
    int64_t t = d->next_ts, next;
    sample *sm;
    bool running, fix, fresh_dtc;

    while (d->state_end <= t) {
        move_to(s, d, d->state_end);
        next_state(s, d, d->state_end);
    }
    move_to(s, d, t);
    if (d->nbuf == 0)
        start_batch(d);
    sm = &d->buf[d->nbuf++];
    memset(sm, 0, sizeof(*sm));
    running = d->state != PARKED;

    /* What the machine does over the next interval. */
    if (d->state == DRIVING) {
        d->speed_kmh = d->cruise_kmh + rng_range(&d->rng, -3, 3);
    } else if (d->state == WORKING) {
        /* A machine at work moves for a while, then stands for a while (digging, loading). */
        if (rng_chance(&d->rng, 0.2))
            d->work_moving = !d->work_moving;
        if (d->work_moving) {
            d->speed_kmh = (double)(2 + rng_below(&d->rng, 7));
            d->heading = fmod(d->heading + rng_range(&d->rng, -35, 35) + 360.0, 360.0);
        } else {
            d->speed_kmh = 0;
        }
    } else {
        d->speed_kmh = 0;
    }

    fix = d->fixless > 0 ? false : !rng_chance(&d->rng, 0.02);
    if (d->fixless > 0)
        d->fixless--;
    sm->ts_ms = t;
    sm->ignition = running;
    sm->movement = d->speed_kmh > 0.5;
    if (fix) {
        sm->lat_e7 = to_e7(d->lat);
        sm->lon_e7 = to_e7(d->lon);
        sm->satellites = (uint8_t)(7 + rng_below(&d->rng, 9));
        sm->speed_kmh = (uint16_t)lround(d->speed_kmh);
        d->last_lat_e7 = sm->lat_e7;
        d->last_lon_e7 = sm->lon_e7;
        d->had_fix = true;
    } else {
        /* Without a fix the unit repeats the last known position (0/0 when it never had one). */
        sm->lat_e7 = d->last_lat_e7;
        sm->lon_e7 = d->last_lon_e7;
        sm->satellites = 0;
        sm->speed_kmh = 0;
    }
    sm->heading = (uint16_t)((int)lround(d->heading) % 360);
    sm->alt_m = (int16_t)lround(d->alt_m);
    sm->gsm = gsm_level(&d->rng);
    sm->ext_mv = (uint16_t)(running ? 27500 + (int)rng_below(&d->rng, 501) - 250
                                    : 24400 + (int)rng_below(&d->rng, 301) - 150);
    sm->batt_mv = (uint16_t)(4020 + rng_below(&d->rng, 160));
    sm->odometer_m = (uint32_t)d->odometer_m;
    sm->engine_min = (uint32_t)(d->engine_ms / 60000.0);
    sm->fuel_dl = (uint16_t)d->fuel_dl;
    if (sm->ignition != d->prev_ignition)
        sm->event_io = 239;
    else if (sm->movement != d->prev_movement)
        sm->event_io = 240;
    sm->priority = sm->event_io != 0;
    d->prev_ignition = sm->ignition;
    d->prev_movement = sm->movement;

    /* Fault codes and the VIN travel in Codec 8E only (NX elements, ids above 255). */
    update_faults(d, t, running, &fresh_dtc);
    if (d->kind == K_CODEC8E_TCP) {
        sm->with_vin = (sm->event_io == 239 && sm->ignition) || rng_chance(&d->rng, 0.01);
        if (d->dtc_len > 0 && (fresh_dtc || rng_chance(&d->rng, 0.1))) {
            memcpy(sm->dtc, d->dtc, d->dtc_len);
            sm->dtc_len = d->dtc_len;
        }
    }

    next = t + (running ? s->o->interval_ms : PARKED_PERIOD_MS);
    /* The unit reports state changes (ignition on and off) when they happen. */
    if (d->state_end > t && d->state_end < next)
        next = d->state_end;
    d->next_ts = next;
    s->taken++;
}

/* ---- encoding ----------------------------------------------------------------------------- */

/* Fills io[] with the sample's IO elements; NX ones only when ext (Codec 8E). */
static size_t build_io(const device *d, const sample *sm, bool ext, tk_io *io)
{
    size_t n = 0;

    io[n++] = (tk_io){239, 1, sm->ignition, NULL, 0};
    io[n++] = (tk_io){240, 1, sm->movement, NULL, 0};
    io[n++] = (tk_io){21, 1, sm->gsm, NULL, 0};
    io[n++] = (tk_io){66, 2, sm->ext_mv, NULL, 0};
    io[n++] = (tk_io){67, 2, sm->batt_mv, NULL, 0};
    io[n++] = (tk_io){84, 2, sm->fuel_dl, NULL, 0};
    io[n++] = (tk_io){16, 4, sm->odometer_m, NULL, 0};
    io[n++] = (tk_io){102, 4, sm->engine_min, NULL, 0};
    if (ext && sm->with_vin)
        io[n++] = (tk_io){256, 0, 0, (const uint8_t *)d->vin, 17};
    if (ext && sm->dtc_len > 0)
        io[n++] = (tk_io){281, 0, 0, (const uint8_t *)sm->dtc, sm->dtc_len};
    return n;
}

/* Bytes one record takes on the wire (parser-svc/PROTOCOLS.md, "AVL record" and "IO
 * element"): 24 bytes of GPS element, then event id, total count, four groups and, in 8E, NX. */
static size_t record_wire_size(bool ext, const tk_avl_record *r)
{
    size_t n = 24 + (ext ? 2 + 2 + 4 * 2 + 2 : 1 + 1 + 4 * 1);

    for (size_t i = 0; i < r->io_len; i++)
        n += r->io[i].size == 0 ? 4 + (size_t)r->io[i].nx_len
                                : (size_t)(ext ? 2 : 1) + r->io[i].size;
    return n;
}

/* Encodes the device's buffered samples as a Teltonika frame into s->frame. With damage_at
 * non-NULL, also stores the offset of a byte inside the record data that can be changed
 * without touching any length or count: a low byte of a timestamp, longitude or latitude.
 * Returns 0 or -1 (the encoder refused, which is a bug here, or memory ran out). */
static int encode_teltonika(sim *s, device *d, size_t *damage_at)
{
    static const size_t safe_offsets[3] = {7, 12, 16};
    tk_avl_record recs[MAX_BATCH];
    tk_io io[MAX_BATCH][MAX_IO];
    bool ext = d->kind == K_CODEC8E_TCP;
    uint8_t codec = ext ? TK_CODEC8E : TK_CODEC8;
    size_t sizes[MAX_BATCH], total = 0;
    int rc;

    for (int i = 0; i < d->nbuf; i++) {
        const sample *sm = &d->buf[i];

        recs[i] = (tk_avl_record){.ts_ms = sm->ts_ms,
                                  .priority = sm->priority,
                                  .lon_e7 = sm->lon_e7,
                                  .lat_e7 = sm->lat_e7,
                                  .alt_m = sm->alt_m,
                                  .angle = sm->heading,
                                  .satellites = sm->satellites,
                                  .speed_kmh = sm->speed_kmh,
                                  .event_io = sm->event_io,
                                  .io = io[i],
                                  .io_len = build_io(d, sm, ext, io[i])};
        sizes[i] = record_wire_size(ext, &recs[i]);
        total += sizes[i];
    }
    fp_buf_clear(&s->frame);
    if (d->kind == K_CODEC8_UDP)
        rc = tk_frame_udp(&s->frame, codec, d->udp_packet_id++, d->avl_packet_id++, d->imei, recs,
                          (size_t)d->nbuf);
    else
        rc = tk_frame_tcp(&s->frame, codec, recs, (size_t)d->nbuf);
    if (rc < 0) {
        fprintf(stderr, "fleet-sim: the Teltonika encoder refused a %s frame\n",
                kind_names[d->kind]);
        return -1;
    }
    if (damage_at != NULL) {
        /* Preamble 4, length 4, codec 1, count 1, records, count 1, CRC 4. */
        size_t r = rng_below(&s->net_rng, (uint32_t)d->nbuf), off = 10;

        if (s->frame.len != 15 + total) {
            fprintf(stderr, "fleet-sim: a %zu-byte frame where %zu were expected\n", s->frame.len,
                    15 + total);
            return -1;
        }
        for (size_t i = 0; i < r; i++)
            off += sizes[i];
        *damage_at = off + safe_offsets[rng_below(&s->net_rng, 3)];
    }
    return 0;
}

/* Appends v / 10^decimals with exactly that many decimals ("-33.4123456"). */
static int put_fixed(fp_buf *b, int64_t v, int decimals)
{
    char tmp[32], *p = tmp + sizeof(tmp);
    uint64_t a = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

    for (int i = 0; i < decimals; i++) {
        *--p = (char)('0' + a % 10);
        a /= 10;
    }
    if (decimals > 0)
        *--p = '.';
    do {
        *--p = (char)('0' + a % 10);
        a /= 10;
    } while (a > 0);
    if (v < 0)
        *--p = '-';
    return fp_buf_append(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

#define PUT_LIT(b, lit) fp_buf_append((b), (lit), sizeof(lit) - 1)

/* Starts the SenML record `name` and writes up to its value label (`label`). The pack's first
 * record continues the object that already holds bn and bt; every later one closes the record
 * before it. Records of a later observation carry its offset from bt in `t` (seconds).
 * Returns 0 or -1. */
static int senml_open(fp_buf *b, bool first, const char *name, int64_t t_ms, const char *label)
{
    int rc = first ? PUT_LIT(b, ",\"n\":\"") : PUT_LIT(b, "},{\"n\":\"");

    rc |= fp_buf_puts(b, name);
    rc |= PUT_LIT(b, "\"");
    if (t_ms != 0) {
        rc |= PUT_LIT(b, ",\"t\":");
        rc |= put_fixed(b, t_ms, 3);
    }
    rc |= fp_buf_puts(b, label);
    return rc;
}

/* Encodes the buffered samples as one SenML pack into s->frame: base name and absolute base
 * time (seconds with milliseconds) on the first record, a later observation at a `t` offset.
 * Positions have seven decimals and speeds and headings are integral, as a unit would send
 * them; an observation without a fix has no position records. Returns 0 or -1. */
static int encode_senml(sim *s, const device *d)
{
    fp_buf *b = &s->frame;
    int64_t bt = d->buf[0].ts_ms;
    bool first = true;
    int rc = 0;

    fp_buf_clear(b);
    rc |= PUT_LIT(b, "[{\"bn\":\"urn:dev:imei:");
    rc |= fp_buf_append(b, d->imei, 15);
    rc |= PUT_LIT(b, ":\",\"bt\":");
    rc |= put_fixed(b, bt, 3);
    for (int i = 0; i < d->nbuf; i++) {
        const sample *sm = &d->buf[i];
        int64_t t = sm->ts_ms - bt;

        if (sm->satellites > 0) {
            rc |= senml_open(b, first, "lat", t, ",\"v\":");
            rc |= put_fixed(b, sm->lat_e7, 7);
            rc |= senml_open(b, false, "lon", t, ",\"v\":");
            rc |= put_fixed(b, sm->lon_e7, 7);
            rc |= senml_open(b, false, "speed", t, ",\"u\":\"km/h\",\"v\":");
            rc |= fp_buf_put_u64(b, sm->speed_kmh);
            rc |= senml_open(b, false, "heading", t, ",\"v\":");
            rc |= fp_buf_put_u64(b, sm->heading);
            first = false;
        }
        rc |= senml_open(b, first, "ignition", t, sm->ignition ? ",\"vb\":true" : ",\"vb\":false");
        first = false;
        rc |= senml_open(b, false, "voltage", t, ",\"u\":\"V\",\"v\":");
        rc |= put_fixed(b, sm->ext_mv, 3);
        rc |= senml_open(b, false, "engine_hours", t, ",\"u\":\"h\",\"v\":");
        rc |= put_fixed(b, ((int64_t)sm->engine_min * 100 + 30) / 60, 2);
        rc |= senml_open(b, false, "fuel", t, ",\"u\":\"%\",\"v\":");
        rc |= put_fixed(b, (int64_t)llround(sm->fuel_dl * 1000.0 / d->fuel_cap_dl), 1);
    }
    rc |= PUT_LIT(b, "}]");
    return rc != 0 ? -1 : 0;
}

/* ---- output ------------------------------------------------------------------------------- */

/* Keeps an undelivered message to send again; counts it lost when memory runs out. */
static void keep_unsent(sim *s, const void *key, size_t key_len, const void *data, size_t len)
{
    unsent u = {
        .key = malloc(key_len + 1), .key_len = key_len, .data = malloc(len + 1), .len = len};

    if (u.key != NULL && u.data != NULL && s->nunsent == s->cap_unsent) {
        size_t cap = s->cap_unsent != 0 ? 2 * s->cap_unsent : 64;
        unsent *grown = realloc(s->unsent, cap * sizeof(*grown));

        if (grown != NULL) {
            s->unsent = grown;
            s->cap_unsent = cap;
        }
    }
    if (u.key == NULL || u.data == NULL || s->nunsent == s->cap_unsent) {
        free(u.key);
        free(u.data);
        delivery_failures++;
        return;
    }
    memcpy(u.key, key, key_len);
    memcpy(u.data, data, len);
    s->unsent[s->nunsent++] = u;
}

/* A failed delivery (timed out, refused, purged after a fatal error) is sent again later:
 * fleet-sim's output is to reach the topic whatever the broker went through. A copy that did
 * reach it before the failure is a duplicate, which the pipeline drops by key. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR)
        keep_unsent(opaque, m->key, m->key_len, m->payload, m->len);
}

static rd_kafka_t *make_producer(sim *s);
static int renew_producer(sim *s);

/* Produces one message, replacing the producer after a fatal error. Returns 0 or -1. */
static int produce(sim *s, const char *key, size_t key_len, const void *data, size_t len)
{
    for (;;) {
        rd_kafka_resp_err_t err;

        while ((err = rd_kafka_producev(
                    s->rk, RD_KAFKA_V_TOPIC(s->o->topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_KEY((void *)key, key_len), RD_KAFKA_V_VALUE((void *)data, len),
                    RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(s->rk, 50);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_poll(s->rk, 0);
            return 0;
        }
        if (err != RD_KAFKA_RESP_ERR__FATAL) {
            fprintf(stderr, "fleet-sim: produce: %s\n", rd_kafka_err2str(err));
            return -1;
        }
        if (renew_producer(s) < 0)
            return -1;
    }
}

/* Sends again every message kept undelivered. Returns 0 or -1. */
static int resend_unsent(sim *s)
{
    unsent *list = s->unsent;
    size_t n = s->nunsent;
    int rc = 0;

    /* Failures while these are sent go to a fresh list. */
    s->unsent = NULL;
    s->nunsent = s->cap_unsent = 0;
    for (size_t i = 0; i < n; i++) {
        if (rc == 0 && produce(s, list[i].key, list[i].key_len, list[i].data, list[i].len) < 0)
            rc = -1;
        if (rc < 0)
            delivery_failures++;
        free(list[i].key);
        free(list[i].data);
    }
    free(list);
    return rc;
}

/* An idempotent producer that met a fatal error (a broker that lost acknowledged sequence
 * state, say after SIGKILL) refuses everything from then on. Gets its queued and in-flight
 * messages back, replaces it and sends them again. Returns 0 or -1. */
static int renew_producer(sim *s)
{
    char reason[512] = "";
    int64_t deadline = fp_mono_ms() + 10000;

    if (s->renewals >= MAX_RENEWALS) {
        fprintf(stderr, "fleet-sim: giving up after %d new producers\n", s->renewals);
        return -1;
    }
    (void)rd_kafka_fatal_error(s->rk, reason, sizeof(reason));
    rd_kafka_purge(s->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    while (rd_kafka_outq_len(s->rk) > 0 && fp_mono_ms() < deadline)
        rd_kafka_poll(s->rk, 100);
    delivery_failures += rd_kafka_outq_len(s->rk);
    rd_kafka_destroy(s->rk);
    s->renewals++;
    fprintf(stderr,
            "fleet-sim: fatal producer error (%s); a new producer sends the %zu "
            "undelivered messages again\n",
            reason, s->nunsent);
    s->rk = make_producer(s);
    if (s->rk == NULL)
        return -1;
    return resend_unsent(s);
}

/* Sends one message (Kafka or corpus file) and counts it. Returns 0 or -1. */
static int send_message(sim *s, enum frame_kind kind, const char *key, const void *data, size_t len)
{
    size_t key_len = strlen(key);

    if (s->rk != NULL) {
        if (produce(s, key, key_len, data, len) < 0)
            return -1;
        if (s->o->inject_fatal_after > 0 && s->renewals == 0 &&
            s->frames + 1 == (uint64_t)s->o->inject_fatal_after)
            rd_kafka_test_fatal_error(s->rk, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                                      "--inject-fatal-after");
    } else {
        uint8_t hdr[2];
        uint8_t vlen[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                           (uint8_t)len};

        hdr[0] = (uint8_t)(key_len >> 8);
        hdr[1] = (uint8_t)key_len;
        if (fwrite(hdr, 1, 2, s->out) != 2 || fwrite(key, 1, key_len, s->out) != key_len ||
            fwrite(vlen, 1, 4, s->out) != 4 || fwrite(data, 1, len, s->out) != len) {
            fprintf(stderr, "fleet-sim: cannot write %s: %s\n", s->o->output, strerror(errno));
            return -1;
        }
    }
    s->frames++;
    s->by_kind[kind]++;
    return 0;
}

/* Appends coordinate v (degrees x 10^7) as %.7f prints v / 1e7: the quotient's nearest double
 * lies within far less than 0.5e-7 of the exact seven-decimal value, so both agree. */
static char *put_coord(char *p, int32_t v)
{
    uint64_t a = v < 0 ? (uint64_t)0 - (uint64_t)(int64_t)v : (uint64_t)v;
    uint64_t whole = a / 10000000;
    char tmp[12], *q = tmp + sizeof(tmp);

    if (v < 0)
        *p++ = '-';
    do {
        *--q = (char)('0' + whole % 10);
        whole /= 10;
    } while (whole > 0);
    memcpy(p, q, (size_t)(tmp + sizeof(tmp) - q));
    p += tmp + sizeof(tmp) - q;
    *p++ = '.';
    return put_digits(p, a % 10000000, 7);
}

static void manifest_valid(sim *s, const device *d, const sample *sm, bool has_position)
{
    char line[128], *p = line;

    memcpy(p, "valid ", 6);
    p += 6;
    memcpy(p, d->imei, 15);
    p += 15;
    *p++ = ' ';
    if (fp_time_format_ms(sm->ts_ms, p, 32) < 0)
        *p = '\0';
    p += strlen(p);
    *p++ = ' ';
    if (has_position) {
        p = put_coord(p, sm->lat_e7);
        *p++ = ' ';
        p = put_coord(p, sm->lon_e7);
    } else {
        memcpy(p, "- -", 3);
        p += 3;
    }
    *p++ = '\n';
    fwrite(line, 1, (size_t)(p - line), s->manifest);
}

/* Sends the resends that have come due (all of them with force). Returns 0 or -1. */
static int send_due_resends(sim *s, bool force)
{
    size_t i = 0;

    while (i < s->nresends) {
        resend *r = &s->resends[i];

        if (!force && r->due > s->first_frames) {
            i++;
            continue;
        }
        if (send_message(s, r->kind, r->key, r->data, r->len) < 0)
            return -1;
        s->retransmitted++;
        free(r->data);
        memmove(r, r + 1, (s->nresends - i - 1) * sizeof(*r));
        s->nresends--;
    }
    return 0;
}

/* Keeps a copy of s->frame to send again 1-32 first-time frames from now. Returns 0 or -1. */
static int schedule_resend(sim *s, const device *d)
{
    resend *r;

    if (s->nresends == s->cap_resends) {
        size_t cap = s->cap_resends != 0 ? 2 * s->cap_resends : 16;
        resend *grown = realloc(s->resends, cap * sizeof(*grown));

        if (grown == NULL)
            return -1;
        s->resends = grown;
        s->cap_resends = cap;
    }
    r = &s->resends[s->nresends];
    r->data = malloc(s->frame.len);
    if (r->data == NULL)
        return -1;
    memcpy(r->data, s->frame.data, s->frame.len);
    r->len = s->frame.len;
    r->kind = d->kind;
    memcpy(r->key, d->imei, 16);
    r->due = s->first_frames + 1 + rng_below(&s->net_rng, 32);
    s->nresends++;
    return 0;
}

/* Sends a damaged copy of s->frame first (see the header comment). damage_at is a safe byte
 * for a TCP frame. Returns 0 or -1. */

static int send_damaged(sim *s, const device *d, size_t damage_at)
{
    enum damage kind;

    fp_buf_clear(&s->damaged);
    if (fp_buf_append(&s->damaged, s->frame.data, s->frame.len) < 0)
        return -1;
    if (d->kind == K_SENML) {
        kind = D_JSON;
        s->damaged.len = s->frame.len / 2;
    } else if (rng_chance(&s->net_rng, 0.5)) {
        kind = D_CRC;
        s->damaged.data[damage_at] ^= (char)(1 + rng_below(&s->net_rng, 255));
    } else {
        kind = D_TRUNCATED;
        s->damaged.len -= 1 + rng_below(&s->net_rng, (uint32_t)(s->frame.len - KEEP_TCP_BYTES));
    }
    if (send_message(s, d->kind, d->imei, s->damaged.data, s->damaged.len) < 0)
        return -1;
    s->corrupt++;
    s->by_damage[kind]++;
    if (s->manifest != NULL)
        fprintf(s->manifest, "corrupt %s %016llx %s\n", damage_codes[kind],
                (unsigned long long)fp_hash_bytes(s->damaged.data, s->damaged.len), d->imei);
    return 0;
}

/* Sends the device's buffered samples as one frame (after a damaged copy, perhaps, and with a
 * resend scheduled, perhaps), writes the manifest and empties the buffer. Returns 0 or -1. */
static int emit_frame(sim *s, device *d)
{
    bool damage = d->kind != K_CODEC8_UDP && s->o->corrupt_rate > 0 &&
                  rng_chance(&s->net_rng, s->o->corrupt_rate);
    size_t damage_at = 0;
    int rc;

    if (s->o->wall_clock) {
        int64_t now = fp_now_ms(), last = d->last_sent_ts;

        for (int i = 0; i < d->nbuf; i++) {
            int64_t ts = now - (d->nbuf - 1 - i);

            d->buf[i].ts_ms = ts > last ? ts : last + 1;
            last = d->buf[i].ts_ms;
        }
    }
    if (d->kind == K_SENML)
        rc = encode_senml(s, d);
    else
        rc = encode_teltonika(s, d, damage ? &damage_at : NULL);
    if (rc < 0)
        return -1;
    if (damage && send_damaged(s, d, damage_at) < 0)
        return -1;
    if (send_message(s, d->kind, d->imei, s->frame.data, s->frame.len) < 0)
        return -1;
    s->first_frames++;
    for (int i = 0; i < d->nbuf; i++) {
        const sample *sm = &d->buf[i];
        bool has_position =
            d->kind == K_SENML ? sm->satellites > 0 : (sm->lat_e7 != 0 || sm->lon_e7 != 0);

        if (sm->ts_ms > d->last_sent_ts)
            s->distinct++;
        d->last_sent_ts = sm->ts_ms;
        if (s->manifest != NULL)
            manifest_valid(s, d, sm, has_position);
    }
    s->records += (uint64_t)d->nbuf;
    d->nbuf = 0;
    if (s->o->retransmit_rate > 0 && rng_chance(&s->net_rng, s->o->retransmit_rate) &&
        schedule_resend(s, d) < 0)
        return -1;
    return send_due_resends(s, false);
}

/* ---- the event loop ----------------------------------------------------------------------- */

static bool heap_less(const sim *s, uint32_t a, uint32_t b)
{
    const device *x = &s->dev[a], *y = &s->dev[b];

    return x->next_ts < y->next_ts || (x->next_ts == y->next_ts && a < b);
}

static void heap_sift_down(sim *s, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        uint32_t t;

        if (l < s->nheap && heap_less(s, s->heap[l], s->heap[m]))
            m = l;
        if (r < s->nheap && heap_less(s, s->heap[r], s->heap[m]))
            m = r;
        if (m == i)
            return;
        t = s->heap[i];
        s->heap[i] = s->heap[m];
        s->heap[m] = t;
        i = m;
    }
}

/* Paces the feed to o->rate valid records per second (pacing load, not synchronisation). */
static void pace(const sim *s)
{
    int64_t due, now;

    if (s->o->rate <= 0)
        return;
    due = s->start_mono + (int64_t)((double)s->records * 1000.0 / s->o->rate);
    now = fp_mono_ms();
    if (due > now) {
        struct timespec ts = {(time_t)((due - now) / 1000), (long)((due - now) % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static bool should_stop(const sim *s)
{
    if (s->o->records >= 0 && s->taken >= s->o->records)
        return true;
    if (s->o->duration_s > 0 && (double)(fp_mono_ms() - s->start_mono) >= s->o->duration_s * 1000.0)
        return true;
    return fp_signal_stop_requested();
}

/* Runs the simulation until a limit is reached, then sends what the units still keep and
 * the resends still due. Returns 0 or -1. */
static int run(sim *s)
{
    while (!should_stop(s)) {
        device *d = &s->dev[s->heap[0]];

        take_sample(s, d);
        heap_sift_down(s, 0);
        if (d->nbuf >= d->target) {
            if (emit_frame(s, d) < 0)
                return -1;
            pace(s);
        }
    }
    for (long i = 0; i < s->o->devices; i++) {
        if (s->dev[i].nbuf > 0 && emit_frame(s, &s->dev[i]) < 0)
            return -1;
    }
    return send_due_resends(s, true);
}

static rd_kafka_t *make_producer(sim *s)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;
    char errstr[512];

    if (rd_kafka_conf_set(conf, "bootstrap.servers", s->o->brokers, errstr, sizeof(errstr)) != 0 ||
        rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr)) != 0 ||
        rd_kafka_conf_set(conf, "partitioner", "murmur2_random", errstr, sizeof(errstr)) != 0 ||
        rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "fleet-sim: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, s);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL)
        fprintf(stderr, "fleet-sim: %s\n", errstr);
    return rk;
}

/* Waits until everything is delivered, sending again what failed, for a few rounds. Returns the
 * messages still undelivered. */
static long deliver_all(sim *s)
{
    for (int round = 0; round < RESEND_ROUNDS; round++) {
        rd_kafka_flush(s->rk, 60000);
        if (rd_kafka_fatal_error(s->rk, NULL, 0) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (renew_producer(s) < 0)
                break;
        } else if (s->nunsent > 0) {
            if (resend_unsent(s) < 0)
                break;
        } else if (rd_kafka_outq_len(s->rk) == 0) {
            break;
        }
    }
    return delivery_failures + (long)s->nunsent + (s->rk != NULL ? rd_kafka_outq_len(s->rk) : 0);
}

static void print_summary(const sim *s, long undelivered)
{
    double elapsed = (double)(fp_mono_ms() - s->start_mono) / 1000.0;

    printf("{\"frames\":%" PRIu64 ",\"by_kind\":{", s->frames);
    for (int k = 0; k < K_COUNT; k++)
        printf("%s\"%s\":%" PRIu64, k > 0 ? "," : "", kind_names[k], s->by_kind[k]);
    printf("},\"retransmitted\":%" PRIu64 ",\"corrupt\":%" PRIu64 ",\"corrupt_by_code\":{",
           s->retransmitted, s->corrupt);
    for (int k = 0; k < D_COUNT; k++)
        printf("%s\"%s\":%" PRIu64, k > 0 ? "," : "", damage_codes[k], s->by_damage[k]);
    printf("},\"records\":%" PRIu64 ",\"distinct\":%" PRIu64 ",\"undelivered\":%ld,"
           "\"producers_renewed\":%d,"
           "\"seed\":%" PRIu64 ",\"devices\":%" PRId64 ",\"sites\":%" PRId64
           ",\"rate\":%g,\"clock\":\"%s\","
           "\"elapsed_s\":%.3f,\"records_per_s\":%.0f}\n",
           s->records, s->distinct, undelivered, s->renewals, s->o->seed, s->o->devices,
           s->o->sites, s->o->rate, s->o->wall_clock ? "wall" : "sim", elapsed,
           elapsed > 0 ? (double)s->records / elapsed : 0.0);
}

int main(int argc, char **argv)
{
    sim_options o = {.topic = "telemetry.raw",
                     .devices = 50,
                     .sites = 8,
                     .records = 10000,
                     .seed = 1,
                     .retransmit_rate = 0.02,
                     .interval_ms = 10000,
                     .clock = "sim",
                     .start_ms = 1767225600000LL};
    sim s = {.o = &o};
    long undelivered = 0;
    int rc, status = 1;

    rc = parse_options(argc, argv, &o);
    if (rc != FP_ARGS_RUN)
        return rc;
    s.sites = calloc((size_t)o.sites, sizeof(*s.sites));
    s.region_sites[0] = calloc((size_t)o.sites, sizeof(int));
    s.region_sites[1] = calloc((size_t)o.sites, sizeof(int));
    s.dev = calloc((size_t)o.devices, sizeof(*s.dev));
    s.heap = calloc((size_t)o.devices, sizeof(*s.heap));
    if (s.sites == NULL || s.region_sites[0] == NULL || s.region_sites[1] == NULL ||
        s.dev == NULL || s.heap == NULL) {
        fprintf(stderr, "fleet-sim: out of memory\n");
        goto out;
    }
    if (fp_signal_install() < 0) {
        fprintf(stderr, "fleet-sim: cannot install signal handlers\n");
        goto out;
    }
    if (o.brokers != NULL) {
        s.rk = make_producer(&s);
        if (s.rk == NULL)
            goto out;
    } else {
        s.out = fopen(o.output, "wb");
        if (s.out == NULL) {
            fprintf(stderr, "fleet-sim: cannot write %s: %s\n", o.output, strerror(errno));
            goto out;
        }
        setvbuf(s.out, NULL, _IOFBF, 1 << 20);
    }
    if (o.manifest != NULL) {
        s.manifest = fopen(o.manifest, "w");
        if (s.manifest == NULL) {
            fprintf(stderr, "fleet-sim: cannot write %s: %s\n", o.manifest, strerror(errno));
            goto out;
        }
        setvbuf(s.manifest, NULL, _IOFBF, 1 << 20);
    }

    s.net_rng = rng_stream(o.seed, 4, 0);
    init_sites(&s);
    if (o.geofences != NULL && write_geofences(&s, o.geofences) < 0)
        goto out;
    for (long i = 0; i < o.devices; i++) {
        init_device(&s, i);
        s.heap[i] = (uint32_t)i;
    }
    s.nheap = (size_t)o.devices;
    for (size_t i = s.nheap / 2 + 1; i-- > 0;)
        heap_sift_down(&s, i);

    s.start_mono = fp_mono_ms();
    rc = run(&s);
    if (s.rk != NULL)
        undelivered = deliver_all(&s);
    if (s.out != NULL && fflush(s.out) != 0) {
        fprintf(stderr, "fleet-sim: cannot write %s: %s\n", o.output, strerror(errno));
        rc = -1;
    }
    if (s.manifest != NULL && fflush(s.manifest) != 0) {
        fprintf(stderr, "fleet-sim: cannot write %s: %s\n", o.manifest, strerror(errno));
        rc = -1;
    }
    print_summary(&s, undelivered);
    status = rc == 0 && undelivered == 0 && s.distinct == s.records ? 0 : 1;
out:
    if (s.manifest != NULL)
        fclose(s.manifest);
    if (s.out != NULL)
        fclose(s.out);
    if (s.rk != NULL)
        rd_kafka_destroy(s.rk);
    for (size_t i = 0; i < s.nresends; i++)
        free(s.resends[i].data);
    for (size_t i = 0; i < s.nunsent; i++) {
        free(s.unsent[i].key);
        free(s.unsent[i].data);
    }
    free(s.unsent);
    free(s.resends);
    fp_buf_free(&s.frame);
    fp_buf_free(&s.damaged);
    free(s.heap);
    free(s.dev);
    free(s.region_sites[0]);
    free(s.region_sites[1]);
    free(s.sites);
    return status;
}
