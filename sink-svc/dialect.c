#include "dialect.h"

#include <string.h>

#include "rows.h"

int fp_dialect_parse(const char *name, fp_dialect *out)
{
    if (name != NULL && strcmp(name, "postgres") == 0) {
        *out = FP_DIALECT_POSTGRES;
        return 0;
    }
    if (name != NULL && strcmp(name, "cratedb") == 0) {
        *out = FP_DIALECT_CRATEDB;
        return 0;
    }
    return -1;
}

/* The same columns as PostgreSQL's telemetry table, OBJECT for the JSON ones. Very large
 * deployments would partition by month (the partition column then joins the primary key). */
const char *const fp_cratedb_schema[] = {
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
    NULL,
};

const char fp_cratedb_offsets_sql[] =
    "INSERT INTO fleetpipe_offsets (consumer_group, topic, partition, next_offset, updated_at) "
    "VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP) ON CONFLICT (consumer_group, topic, partition) "
    "DO UPDATE SET next_offset = GREATEST(next_offset, excluded.next_offset), "
    "updated_at = CURRENT_TIMESTAMP";

const char fp_cratedb_load_offset_sql[] =
    "SELECT next_offset FROM fleetpipe_offsets WHERE consumer_group = $1 AND topic = $2 AND "
    "partition = $3";

int fp_cratedb_insert_sql(fp_buf *out, size_t nrows)
{
    size_t n = 1;

    if (nrows == 0 || nrows > FP_CRATEDB_MAX_ROWS)
        return -1;
    if (fp_buf_puts(out, "INSERT INTO telemetry (") < 0 || fp_buf_puts(out, fp_rows_columns) < 0 ||
        fp_buf_puts(out, ") VALUES ") < 0)
        return -1;
    for (size_t r = 0; r < nrows; r++) {
        if (fp_buf_puts(out, r > 0 ? ", (" : "(") < 0)
            return -1;
        for (int c = 0; c < FP_ROWS_NCOLS; c++, n++) {
            /* Timestamps travel as RFC 3339 text, the two JSON columns as objects. */
            const char *cast = c == 1 || c == 2 ? "::TIMESTAMP WITH TIME ZONE"
                               : c == FP_ROWS_NCOLS - 2 || c == FP_ROWS_NCOLS - 1 ? "::OBJECT"
                                                                                  : "";

            if (fp_buf_printf(out, "%s$%zu%s", c > 0 ? ", " : "", n, cast) < 0)
                return -1;
        }
        if (fp_buf_putc(out, ')') < 0)
            return -1;
    }
    return fp_buf_puts(out, " ON CONFLICT (device_id, ts) DO NOTHING");
}
