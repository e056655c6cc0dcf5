#include "sink-svc/dialect.h"

#include <string.h>

#include "sink-svc/rows.h"

int dialect_parse(const char *name, sql_dialect *out)
{
    if (name != NULL && strcmp(name, "postgres") == 0) {
        *out = DIALECT_POSTGRES;
        return 0;
    }
    if (name != NULL && strcmp(name, "cratedb") == 0) {
        *out = DIALECT_CRATEDB;
        return 0;
    }
    return -1;
}

/* The same columns as PostgreSQL's telemetry table, OBJECT for the JSON ones. Very large
 * deployments would partition by month (the partition column then joins the primary key). */
const char *const dialect_cratedb_schema[] = {
    "CREATE TABLE IF NOT EXISTS telemetry ("
    "device_id TEXT NOT NULL, ts TIMESTAMP WITH TIME ZONE NOT NULL, "
    "received_at TIMESTAMP WITH TIME ZONE, "
    "stored_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP, "
    "format TEXT, priority SMALLINT, event_io INTEGER, lat DOUBLE PRECISION, "
    "lon DOUBLE PRECISION, alt_m REAL, heading_deg REAL, speed_kmh REAL, satellites SMALLINT, "
    "ignition BOOLEAN, enrichment_status TEXT, site_id TEXT, site_name TEXT, address TEXT, "
    "road TEXT, city TEXT, postcode TEXT, country TEXT, country_code TEXT, "
    "asset_customer TEXT, asset_oem TEXT, asset_model TEXT, asset_serial_number TEXT, "
    "asset_machine_type TEXT, metrics OBJECT(DYNAMIC), io OBJECT(IGNORED), "
    "PRIMARY KEY (device_id, ts))",
    "CREATE TABLE IF NOT EXISTS fleetpipe_offsets ("
    "consumer_group TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL, "
    "next_offset BIGINT NOT NULL, updated_at TIMESTAMP WITH TIME ZONE, "
    "PRIMARY KEY (consumer_group, topic, partition))",
    "CREATE TABLE IF NOT EXISTS telemetry_hourly ("
    "device_id TEXT NOT NULL, bucket TIMESTAMP WITH TIME ZONE NOT NULL, samples BIGINT, "
    "first_ts TIMESTAMP WITH TIME ZONE, last_ts TIMESTAMP WITH TIME ZONE, max_speed_kmh REAL, "
    "engine_hours_h DOUBLE PRECISION, distance_km DOUBLE PRECISION, "
    "ignition_on_s DOUBLE PRECISION, updated_at TIMESTAMP WITH TIME ZONE, "
    "PRIMARY KEY (device_id, bucket))",
    "CREATE OR REPLACE VIEW telemetry_daily AS SELECT device_id, "
    "date_trunc('day', 'UTC', bucket) AS day, sum(samples) AS samples, "
    "min(first_ts) AS first_ts, max(last_ts) AS last_ts, max(max_speed_kmh) AS max_speed_kmh, "
    "sum(engine_hours_h) AS engine_hours_h, sum(distance_km) AS distance_km, "
    "sum(ignition_on_s) AS ignition_on_s, max(updated_at) AS updated_at "
    "FROM telemetry_hourly GROUP BY device_id, date_trunc('day', 'UTC', bucket)",
    NULL,
};

const char dialect_cratedb_offsets_sql[] =
    "INSERT INTO fleetpipe_offsets (consumer_group, topic, partition, next_offset, updated_at) "
    "VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP) ON CONFLICT (consumer_group, topic, partition) "
    "DO UPDATE SET next_offset = GREATEST(next_offset, excluded.next_offset), "
    "updated_at = CURRENT_TIMESTAMP";

const char dialect_cratedb_load_offset_sql[] =
    "SELECT next_offset FROM fleetpipe_offsets WHERE consumer_group = $1 AND topic = $2 AND "
    "partition = $3";

const char dialect_cratedb_refresh_sql[] = "REFRESH TABLE telemetry";

const char dialect_cratedb_next_row_sql[] =
    "SELECT CAST(min(ts) AS BIGINT) FROM telemetry WHERE device_id = $1 AND "
    "ts >= $2::TIMESTAMP WITH TIME ZONE";

const char dialect_cratedb_prev_row_sql[] =
    "SELECT CAST(max(ts) AS BIGINT) FROM telemetry WHERE device_id = $1 AND "
    "ts < $2::TIMESTAMP WITH TIME ZONE";

/* The window reads from the row before the bucket so that the bucket's first row has its
 * previous row; the outer WHERE keeps the bucket's own rows. GROUP BY makes an empty bucket
 * write nothing (an aggregate without it returns one row). TRY_CAST reads a metric that is not
 * a number as missing. */
const char dialect_cratedb_recompute_sql[] =
    "INSERT INTO telemetry_hourly (device_id, bucket, samples, first_ts, last_ts, max_speed_kmh, "
    "engine_hours_h, distance_km, ignition_on_s, updated_at) "
    "(SELECT device_id, $2::TIMESTAMP WITH TIME ZONE, count(*), min(ts), max(ts), "
    "max(speed_kmh), "
    "sum(CASE WHEN eh >= prev_eh THEN eh - prev_eh ELSE 0 END), "
    "sum(CASE WHEN odo >= prev_odo THEN odo - prev_odo ELSE 0 END) / 1000.0, "
    "sum(CASE WHEN prev_ign AND ts_ms - prev_ms <= 600000 THEN (ts_ms - prev_ms) / 1000.0 "
    "ELSE 0 END), CURRENT_TIMESTAMP "
    "FROM (SELECT device_id, ts, speed_kmh, CAST(ts AS BIGINT) AS ts_ms, "
    "TRY_CAST(metrics['engine_hours_h'] AS DOUBLE PRECISION) AS eh, "
    "TRY_CAST(metrics['odometer_m'] AS DOUBLE PRECISION) AS odo, "
    "lag(CAST(ts AS BIGINT)) OVER w AS prev_ms, lag(ignition) OVER w AS prev_ign, "
    "lag(TRY_CAST(metrics['engine_hours_h'] AS DOUBLE PRECISION)) OVER w AS prev_eh, "
    "lag(TRY_CAST(metrics['odometer_m'] AS DOUBLE PRECISION)) OVER w AS prev_odo "
    "FROM telemetry WHERE device_id = $1 AND ts >= $4::TIMESTAMP WITH TIME ZONE "
    "AND ts < $3::TIMESTAMP WITH TIME ZONE WINDOW w AS (ORDER BY ts)) s "
    "WHERE ts >= $2::TIMESTAMP WITH TIME ZONE GROUP BY device_id) "
    "ON CONFLICT (device_id, bucket) DO UPDATE SET samples = excluded.samples, "
    "first_ts = excluded.first_ts, last_ts = excluded.last_ts, "
    "max_speed_kmh = excluded.max_speed_kmh, engine_hours_h = excluded.engine_hours_h, "
    "distance_km = excluded.distance_km, ignition_on_s = excluded.ignition_on_s, "
    "updated_at = excluded.updated_at";

int dialect_cratedb_insert_sql(fp_buf *out, size_t nrows)
{
    size_t n = 1;

    if (nrows == 0 || nrows > DIALECT_CRATEDB_MAX_ROWS)
        return -1;
    if (fp_buf_puts(out, "INSERT INTO telemetry (") < 0 || fp_buf_puts(out, rows_columns) < 0 ||
        fp_buf_puts(out, ") VALUES ") < 0)
        return -1;
    for (size_t r = 0; r < nrows; r++) {
        if (fp_buf_puts(out, r > 0 ? ", (" : "(") < 0)
            return -1;
        for (int c = 0; c < ROWS_NCOLS; c++, n++) {
            /* Timestamps travel as RFC 3339 text, the two JSON columns as objects. */
            const char *cast = c == 1 || c == 2 ? "::TIMESTAMP WITH TIME ZONE"
                               : c == ROWS_NCOLS - 2 || c == ROWS_NCOLS - 1 ? "::OBJECT"
                                                                            : "";

            if (fp_buf_printf(out, "%s$%zu%s", c > 0 ? ", " : "", n, cast) < 0)
                return -1;
        }
        if (fp_buf_putc(out, ')') < 0)
            return -1;
    }
    return fp_buf_puts(out, " ON CONFLICT (device_id, ts) DO NOTHING");
}
