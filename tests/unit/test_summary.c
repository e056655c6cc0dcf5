/* Tests of sink-svc/summary.c: the per-device and per-hour arrays a batch hands the database.
 * That the database applies them exactly (telemetry_hourly equal to the reference query) is
 * tested against PostgreSQL by tests/integration/test_rollups.sh. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_test.h"
#include "common/fp_record.h"
#include "common/fp_time.h"
#include "sink-svc/summary.h"

enum {
    ID,
    FIRST_TS,
    FIRST_EH,
    FIRST_ODO,
    LAST_TS,
    LAST_IGN,
    LAST_EH,
    LAST_ODO,
    SITE_ID,
    SITE_NAME
};
enum { B_DEV = 10, B_BUCKET, B_SAMPLES, B_FIRST_TS, B_LAST_TS, B_SPEED, B_EH, B_ODO, B_IGN_MS };

static int64_t at(const char *rfc3339)
{
    int64_t ms = 0;

    if (fp_time_parse_ms(rfc3339, strlen(rfc3339), &ms) != 0)
        fp_test_fail(__FILE__, __LINE__, "bad time %s", rfc3339);
    return ms;
}

/* A row: ignition -1 absent; eh/odo NaN absent; speed NaN without position. */
static void make(fp_record *r, const char *device, const char *ts, int ignition, double eh,
                 double odo, double speed)
{
    fp_record_init(r);
    snprintf(r->device_id, sizeof(r->device_id), "%s", device);
    r->ts_ms = at(ts);
    if (!isnan(speed)) {
        r->has_position = true;
        fp_position_unknown(&r->position);
        r->position.speed_kmh = speed;
    }
    if (ignition >= 0)
        fp_record_add_metric_bool(r, "ignition", ignition == 1);
    if (!isnan(eh))
        fp_record_add_metric_number(r, "engine_hours_h", eh);
    if (!isnan(odo))
        fp_record_add_metric_number(r, "odometer_m", odo);
}

/* Adds r[0..n) in order, each with its own index, and builds the parameters into v. */
static void add_and_build(summary *s, fp_record *r, size_t n, const char **v)
{
    for (size_t i = 0; i < n; i++)
        FP_CHECK_INT(summary_add(s, &r[i], i), 0);
    FP_CHECK_INT(summary_build(s, v), 0);
}

static void free_rows(fp_record *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fp_record_free(&r[i]);
}

FP_TEST(summary_sums_intervals_between_the_batch_rows)
{
    summary *s = summary_new();
    const char *v[SUMMARY_NPARAMS];
    fp_record r[5];
    size_t idx[5];

    FP_CHECK(s != NULL);
    /* Added out of order: the summary orders by device and time. */
    make(&r[0], "m1", "2026-01-01T10:58:00Z", 1, 100.25, 5000, 12.5);
    make(&r[1], "m1", "2026-01-01T10:50:00Z", 1, 100.0, 4000, 30);
    make(&r[2], "m1", "2026-01-01T11:05:00Z", 0, 99.0, 7000, NAN); /* hour meter reset */
    make(&r[3], "m1", "2026-01-01T11:30:00Z", -1, 99.5, 8000, 3);  /* 25 min after ignition off */
    make(&r[4], "a\"b", "2026-01-01T09:00:00Z", -1, NAN, NAN, NAN);
    add_and_build(s, r, 5, v);
    FP_CHECK_INT(summary_len(s), 5);
    /* Devices in byte order, the quote escaped. */
    FP_CHECK_STR(v[ID], "{\"a\\\"b\",\"m1\"}");
    FP_CHECK_STR(v[FIRST_TS], "{\"2026-01-01T09:00:00.000Z\",\"2026-01-01T10:50:00.000Z\"}");
    FP_CHECK_STR(v[FIRST_EH], "{NULL,100}");
    FP_CHECK_STR(v[FIRST_ODO], "{NULL,4000}");
    FP_CHECK_STR(v[LAST_TS], "{\"2026-01-01T09:00:00.000Z\",\"2026-01-01T11:30:00.000Z\"}");
    FP_CHECK_STR(v[LAST_IGN], "{NULL,NULL}");
    FP_CHECK_STR(v[LAST_EH], "{NULL,99.5}");
    FP_CHECK_STR(v[SITE_ID], "{NULL,NULL}");
    /* Hours: a"b 09:00; m1 10:00 (10:50, 10:58); m1 11:00 (11:05, 11:30). */
    FP_CHECK_STR(v[B_DEV], "{\"a\\\"b\",\"m1\",\"m1\"}");
    FP_CHECK_STR(v[B_BUCKET], "{\"2026-01-01T09:00:00.000Z\",\"2026-01-01T10:00:00.000Z\","
                              "\"2026-01-01T11:00:00.000Z\"}");
    FP_CHECK_STR(v[B_SAMPLES], "{1,2,2}");
    FP_CHECK_STR(v[B_FIRST_TS], "{\"2026-01-01T09:00:00.000Z\",\"2026-01-01T10:50:00.000Z\","
                                "\"2026-01-01T11:05:00.000Z\"}");
    FP_CHECK_STR(v[B_SPEED], "{NULL,30,3}");
    /* 10:00: 10:50 -> 10:58 adds 0.25 h and 1000 m (10:50's interval is the database's);
     * 11:00: 10:58 -> 11:05 the hour meter went back (nothing) and 2000 m, 11:05 -> 11:30 0.5 h
     * and 1000 m. */
    FP_CHECK_STR(v[B_EH], "{0,0.25,0.5}");
    FP_CHECK_STR(v[B_ODO], "{0,1000,3000}");
    /* Ignition on before 10:58 (8 min) and before 11:05 (7 min); off before 11:30. */
    FP_CHECK_STR(v[B_IGN_MS], "{0,480000,420000}");
    FP_CHECK_INT(summary_rows_of(s, "m1", idx), 4);
    FP_CHECK_INT(idx[0], 1);
    FP_CHECK_INT(idx[3], 3);
    FP_CHECK_INT(summary_rows_of(s, "a\"b", idx), 1);
    FP_CHECK_INT(idx[0], 4);
    FP_CHECK_INT(summary_rows_of(s, "zz", idx), 0);
    free_rows(r, 5);
    summary_free(s);
}

/* A gap of more than ten minutes after ignition on counts nothing; exactly ten counts. */
FP_TEST(summary_ignition_gap_limit)
{
    summary *s = summary_new();
    const char *v[SUMMARY_NPARAMS];
    fp_record r[3];

    FP_CHECK(s != NULL);
    make(&r[0], "g", "2026-01-01T10:00:00Z", 1, NAN, NAN, NAN);
    make(&r[1], "g", "2026-01-01T10:10:00Z", 1, NAN, NAN, NAN);
    make(&r[2], "g", "2026-01-01T10:20:00.001Z", 1, NAN, NAN, NAN);
    add_and_build(s, r, 3, v);
    FP_CHECK_STR(v[B_IGN_MS], "{600000}");
    FP_CHECK_STR(v[LAST_IGN], "{t}");
    /* Cleared, the next build is empty arrays. */
    summary_clear(s);
    FP_CHECK_INT(summary_build(s, v), 0);
    FP_CHECK_STR(v[ID], "{}");
    FP_CHECK_STR(v[B_IGN_MS], "{}");
    free_rows(r, 3);
    summary_free(s);
}

/* A metric as a string is the database's to read: the device goes with a NULL first ts (the
 * database hands it back for the per-row step) and adds no hours. */
FP_TEST(summary_string_metric_is_left_to_the_database)
{
    summary *s = summary_new();
    const char *v[SUMMARY_NPARAMS];
    fp_record r[2];

    FP_CHECK(s != NULL);
    make(&r[0], "s", "2026-01-01T10:00:00Z", 1, 1, NAN, 5);
    make(&r[1], "s", "2026-01-01T10:01:00Z", 1, NAN, NAN, 5);
    FP_CHECK_INT(fp_record_add_metric_string(&r[1], "odometer_m", "12", 2), 0);
    add_and_build(s, r, 2, v);
    FP_CHECK_STR(v[ID], "{\"s\"}");
    FP_CHECK_STR(v[FIRST_TS], "{NULL}");
    FP_CHECK_STR(v[SITE_NAME], "{NULL}");
    FP_CHECK_STR(v[B_DEV], "{}");
    free_rows(r, 2);
    summary_free(s);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Devices come out in strcmp's order, also where ids agree in their first 16 bytes (the sort's
 * fast key), end within them, or hold bytes above 0x7f; rows of one device stay together. */
FP_TEST(summary_orders_devices_as_strcmp)
{
    const char *ids[] = {
        "abcdefghijklmnopZ", "b", "abcdefghijklmnop",   "abcdefghijklmno",  "abcdefghijklmnopA",
        "\xc3\xa9t\xc3\xa9", "a", "abcdefghijklmnopAA", "abcdefghijklmnpp", "A",
        "abcdefghijklmnopZ"};
    enum { N = sizeof(ids) / sizeof(ids[0]) };
    const char *sorted[N];
    fp_record r[N];
    summary *s = summary_new();
    const char *v[SUMMARY_NPARAMS];
    char want[512] = "{";
    size_t idx[N];

    FP_CHECK(s != NULL);
    for (size_t i = 0; i < N; i++) {
        make(&r[i], ids[i], i == 0 ? "2026-01-01T10:00:00Z" : "2026-01-01T11:00:00Z", -1, NAN, NAN,
             NAN);
        sorted[i] = ids[i];
    }
    add_and_build(s, r, N, v);
    /* The reference: the distinct ids sorted by strcmp itself. */
    qsort(sorted, N, sizeof(sorted[0]), cmp_str);
    for (size_t i = 0; i < N; i++) {
        if (i > 0 && strcmp(sorted[i], sorted[i - 1]) == 0)
            continue;
        snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s\"%s\"", i > 0 ? "," : "",
                 sorted[i]);
    }
    snprintf(want + strlen(want), sizeof(want) - strlen(want), "}");
    FP_CHECK_STR(v[ID], want);
    FP_CHECK_INT(summary_rows_of(s, "abcdefghijklmnopZ", idx), 2);
    FP_CHECK_INT(summary_rows_of(s, "abcdefghijklmnop", idx), 1);
    FP_CHECK_INT(idx[0], 2);
    free_rows(r, N);
    summary_free(s);
}
