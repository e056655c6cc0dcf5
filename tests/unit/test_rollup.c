/* Tests of sink-svc/rollup.c: the bucket and neighbour arithmetic of the CrateDB path, the
 * statement that records inserted keys, and the CrateDB rollup SQL. The PostgreSQL arithmetic
 * (telemetry_rollup_apply) is tested against a database by tests/integration/test_rollups.sh. */
#include <stdio.h>
#include <string.h>

#include "sink-svc/dialect.h"
#include "fp_test.h"
#include "common/fp_time.h"
#include "sink-svc/rollup.h"

#define HOUR ROLLUP_BUCKET_MS

static int64_t at(const char *rfc3339)
{
    int64_t ms = 0;

    if (fp_time_parse_ms(rfc3339, strlen(rfc3339), &ms) != 0)
        fp_test_fail(__FILE__, __LINE__, "bad time %s", rfc3339);
    return ms;
}

FP_TEST(rollup_bucket_is_the_utc_hour)
{
    FP_CHECK_INT(rollup_bucket_ms(at("2026-03-02T07:00:00.000Z")), at("2026-03-02T07:00:00Z"));
    FP_CHECK_INT(rollup_bucket_ms(at("2026-03-02T07:59:59.999Z")), at("2026-03-02T07:00:00Z"));
    FP_CHECK_INT(rollup_bucket_ms(at("2026-03-02T08:00:00.000Z")), at("2026-03-02T08:00:00Z"));
    /* An offset is an instant like any other: 09:30+02:00 is 07:30 UTC. */
    FP_CHECK_INT(rollup_bucket_ms(at("2026-03-02T09:30:00+02:00")), at("2026-03-02T07:00:00Z"));
    /* Half-hour zones do not shift the bucket off the UTC hour. */
    FP_CHECK_INT(rollup_bucket_ms(at("2026-03-02T12:15:00+05:30")), at("2026-03-02T06:00:00Z"));
    FP_CHECK_INT(rollup_bucket_ms(0), 0);
    FP_CHECK_INT(rollup_bucket_ms(HOUR - 1), 0);
    /* Before 1970 the floor goes down, not toward zero. */
    FP_CHECK_INT(rollup_bucket_ms(-1), -HOUR);
    FP_CHECK_INT(rollup_bucket_ms(-HOUR), -HOUR);
    FP_CHECK_INT(rollup_bucket_ms(-HOUR - 1), -2 * HOUR);
}

FP_TEST(rollup_buckets_distinct_sorted_per_device)
{
    rollup_key keys[] = {
        {"b", at("2026-01-01T10:30:00Z")},     {"a", at("2026-01-01T11:00:00Z")},
        {"a", at("2026-01-01T10:59:59.999Z")}, {"b", at("2026-01-01T10:00:00Z")},
        {"a", at("2026-01-01T10:00:00Z")},     {"a", at("2025-12-30T10:15:00Z")}, /* days late */
        {"a", at("2026-01-01T10:00:00Z")},                                        /* a resend */
    };
    rollup_bucket out[7];
    size_t n = rollup_buckets(keys, 7, out);

    FP_CHECK_INT(n, 4);
    FP_CHECK_STR(out[0].device_id, "a");
    FP_CHECK_INT(out[0].bucket_ms, at("2025-12-30T10:00:00Z"));
    FP_CHECK_STR(out[1].device_id, "a");
    FP_CHECK_INT(out[1].bucket_ms, at("2026-01-01T10:00:00Z"));
    FP_CHECK_STR(out[2].device_id, "a");
    FP_CHECK_INT(out[2].bucket_ms, at("2026-01-01T11:00:00Z"));
    FP_CHECK_STR(out[3].device_id, "b");
    FP_CHECK_INT(out[3].bucket_ms, at("2026-01-01T10:00:00Z"));
    /* The keys themselves are left sorted by device and time. */
    FP_CHECK_STR(keys[0].device_id, "a");
    FP_CHECK_INT(keys[0].ts_ms, at("2025-12-30T10:15:00Z"));
    FP_CHECK_STR(keys[6].device_id, "b");
    FP_CHECK_INT(keys[6].ts_ms, at("2026-01-01T10:30:00Z"));
    FP_CHECK_INT(rollup_buckets(keys, 0, out), 0);
}

/* The neighbour: a row that is the last of its bucket starts the interval of the next stored
 * row, so the bucket of the first stored row at or after the bucket's end is touched too. */
FP_TEST(rollup_neighbour_bucket_joins_the_set)
{
    rollup_key keys[] = {
        {"a", at("2026-01-01T10:58:00Z")}, /* a late row that splits 10:05 -> 11:02 */
        {"c", at("2026-01-01T08:00:00Z")},
    };
    rollup_bucket set[4];
    size_t len = rollup_buckets(keys, 2, set);

    FP_CHECK_INT(len, 2);
    /* The next stored row of a's bucket is at 11:02: the 11:00 bucket changes too. */
    FP_CHECK_INT(rollup_bucket_add(set, &len, 4, "a", at("2026-01-01T11:02:00Z")), 0);
    FP_CHECK_INT(len, 3);
    FP_CHECK_STR(set[1].device_id, "a");
    FP_CHECK_INT(set[1].bucket_ms, at("2026-01-01T11:00:00Z"));
    FP_CHECK_STR(set[2].device_id, "c");
    /* Days later (a unit that was out of coverage): still one bucket, the right one. */
    FP_CHECK_INT(rollup_bucket_add(set, &len, 4, "c", at("2026-01-03T17:45:10Z")), 0);
    FP_CHECK_INT(len, 4);
    FP_CHECK_INT(set[3].bucket_ms, at("2026-01-03T17:00:00Z"));
    /* A neighbour already in the set is not added twice, even with the set full. */
    FP_CHECK_INT(rollup_bucket_add(set, &len, 4, "a", at("2026-01-01T11:59:59.999Z")), 0);
    FP_CHECK_INT(len, 4);
    FP_CHECK_INT(rollup_bucket_add(set, &len, 4, "b", at("2026-01-01T11:00:00Z")), -1);
    FP_CHECK_INT(len, 4);
    /* Sorted throughout: a, a, c, c. */
    FP_CHECK(strcmp(set[0].device_id, "a") == 0 && set[0].bucket_ms < set[1].bucket_ms);
    FP_CHECK(strcmp(set[2].device_id, "c") == 0 && set[2].bucket_ms < set[3].bucket_ms);
}

/* A row before the device's first row: its bucket, and the bucket of the old first row, which
 * now has a previous row. */
FP_TEST(rollup_neighbour_of_a_row_before_the_first)
{
    rollup_key keys[] = {{"d", at("2026-01-01T06:59:00Z")}};
    rollup_bucket set[2];
    size_t len = rollup_buckets(keys, 1, set);

    FP_CHECK_INT(rollup_bucket_add(set, &len, 2, "d", at("2026-01-01T07:03:00Z")), 0);
    FP_CHECK_INT(len, 2);
    FP_CHECK_INT(set[0].bucket_ms, at("2026-01-01T06:00:00Z"));
    FP_CHECK_INT(set[1].bucket_ms, at("2026-01-01T07:00:00Z"));
}

FP_TEST(rollup_capture_sql_wraps_the_insert)
{
    rollup_set *on = rollup_new(true);
    rollup_set *off = rollup_new(false);
    fp_buf b = {0};

    FP_CHECK(on != NULL && off != NULL);
    FP_CHECK_INT(rollup_capture_sql(on, &b, "INSERT INTO telemetry (a) SELECT a FROM s"), 0);
    FP_CHECK_STR(fp_buf_cstr(&b),
                 "WITH fp_inserted AS (INSERT INTO telemetry (a) SELECT a FROM s RETURNING "
                 "device_id,ts,speed_kmh,ignition,site_id,site_name,metrics) INSERT INTO "
                 "telemetry_rollup_rows (device_id,ts,speed_kmh,ignition,site_id,site_name,"
                 "metrics) SELECT device_id,ts,speed_kmh,ignition,site_id,site_name,metrics "
                 "FROM fp_inserted");
    fp_buf_clear(&b);
    FP_CHECK_INT(rollup_capture_sql(off, &b, "INSERT INTO telemetry (a) SELECT a FROM s"), 0);
    FP_CHECK_STR(fp_buf_cstr(&b), "INSERT INTO telemetry (a) SELECT a FROM s");
    FP_CHECK(rollup_enabled(on) && !rollup_enabled(off));
    /* Off, CrateDB recomputes nothing (no connection needed to find that out). */
    {
        rollup_key k = {"a", 0};

        FP_CHECK_INT(rollup_crate_apply(off, NULL, &k, 1), 0);
        FP_CHECK_INT(rollup_last(off).rows_changed, 0);
    }
    fp_buf_free(&b);
    rollup_free(on);
    rollup_free(off);
    rollup_free(NULL);
}

/* The CrateDB rollup SQL (no CrateDB server runs here): the statements say what rollup.c
 * binds, and the recomputation is the reference's arithmetic. */
FP_TEST(rollup_cratedb_sql)
{
    const char *r = dialect_cratedb_recompute_sql;

    FP_CHECK_STR(dialect_cratedb_refresh_sql, "REFRESH TABLE telemetry");
    FP_CHECK_STR(dialect_cratedb_next_row_sql,
                 "SELECT CAST(min(ts) AS BIGINT) FROM telemetry WHERE device_id = $1 AND "
                 "ts >= $2::TIMESTAMP WITH TIME ZONE");
    FP_CHECK_STR(dialect_cratedb_prev_row_sql,
                 "SELECT CAST(max(ts) AS BIGINT) FROM telemetry WHERE device_id = $1 AND "
                 "ts < $2::TIMESTAMP WITH TIME ZONE");
    /* Reads from the row before the bucket ($4) to the bucket's end ($3), keeps the bucket's
     * own rows ($2 on), one device ($1). */
    FP_CHECK(strstr(r, "WHERE device_id = $1 AND ts >= $4::TIMESTAMP WITH TIME ZONE AND ts < "
                       "$3::TIMESTAMP WITH TIME ZONE WINDOW w AS (ORDER BY ts)) s WHERE ts >= "
                       "$2::TIMESTAMP WITH TIME ZONE GROUP BY device_id)") != NULL);
    FP_CHECK(strstr(r, "$5") == NULL);
    /* Counter increments only when not negative (a reset adds nothing). */
    FP_CHECK(strstr(r, "sum(CASE WHEN eh >= prev_eh THEN eh - prev_eh ELSE 0 END)") != NULL);
    FP_CHECK(strstr(r, "sum(CASE WHEN odo >= prev_odo THEN odo - prev_odo ELSE 0 END) / 1000.0") !=
             NULL);
    /* Ignition time: after a row with ignition on, gaps of at most 10 minutes. */
    FP_CHECK(strstr(r, "CASE WHEN prev_ign AND ts_ms - prev_ms <= 600000 THEN (ts_ms - prev_ms) "
                       "/ 1000.0 ELSE 0 END") != NULL);
    FP_CHECK(strstr(r, "TRY_CAST(metrics['engine_hours_h'] AS DOUBLE PRECISION)") != NULL);
    FP_CHECK(
        strstr(r, "ON CONFLICT (device_id, bucket) DO UPDATE SET samples = excluded.samples") !=
        NULL);
    /* An upsert that replaces, never adds: running it twice gives the same row. */
    FP_CHECK(strstr(r, "samples + ") == NULL);
    FP_CHECK(strstr(r, "jsonb") == NULL);
    /* The schema has the table and the daily view. */
    FP_CHECK(strstr(dialect_cratedb_schema[2], "CREATE TABLE IF NOT EXISTS telemetry_hourly (") !=
             NULL);
    FP_CHECK(strstr(dialect_cratedb_schema[2], "PRIMARY KEY (device_id, bucket)") != NULL);
    FP_CHECK(strstr(dialect_cratedb_schema[3], "CREATE OR REPLACE VIEW telemetry_daily AS") !=
             NULL);
    FP_CHECK(strstr(dialect_cratedb_schema[3], "date_trunc('day', 'UTC', bucket)") != NULL);
}
