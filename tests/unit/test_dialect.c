/* Tests of sink-svc/dialect.c: the CrateDB SQL (no CrateDB server runs here). */
#include <stdio.h>
#include <string.h>

#include "sink-svc/dialect.h"
#include "fp_test.h"
#include "sink-svc/rows.h"

FP_TEST(dialect_parse)
{
    sql_dialect d = DIALECT_CRATEDB;

    FP_CHECK_INT(dialect_parse("postgres", &d), 0);
    FP_CHECK_INT(d, DIALECT_POSTGRES);
    FP_CHECK_INT(dialect_parse("cratedb", &d), 0);
    FP_CHECK_INT(d, DIALECT_CRATEDB);
    FP_CHECK_INT(dialect_parse("mysql", &d), -1);
    FP_CHECK_INT(dialect_parse(NULL, &d), -1);
}

FP_TEST(dialect_cratedb_insert_sql)
{
    static const char one_row[] =
        "INSERT INTO telemetry (device_id,ts,received_at,format,priority,event_io,lat,lon,alt_m,"
        "heading_deg,speed_kmh,satellites,ignition,enrichment_status,site_id,site_name,address,"
        "road,city,postcode,country,country_code,asset_customer,asset_oem,asset_model,"
        "asset_serial_number,asset_machine_type,metrics,io) VALUES ($1, "
        "$2::TIMESTAMP WITH TIME ZONE, $3::TIMESTAMP WITH TIME ZONE, $4, $5, $6, $7, $8, $9, $10, "
        "$11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, "
        "$28::OBJECT, $29::OBJECT) ON CONFLICT (device_id, ts) DO NOTHING";
    fp_buf b = {0};
    const char *sql;

    FP_CHECK_INT(dialect_cratedb_insert_sql(&b, 1), 0);
    FP_CHECK_STR(fp_buf_cstr(&b), one_row);
    fp_buf_clear(&b);
    FP_CHECK_INT(dialect_cratedb_insert_sql(&b, 3), 0);
    sql = fp_buf_cstr(&b);
    FP_CHECK(strstr(sql, "$29::OBJECT), ($30, $31::TIMESTAMP WITH TIME ZONE") != NULL);
    FP_CHECK(strstr(sql, "$86::OBJECT, $87::OBJECT) ON CONFLICT (device_id, ts) DO NOTHING") !=
             NULL);
    FP_CHECK(strstr(sql, "$88") == NULL);
    fp_buf_clear(&b);
    FP_CHECK_INT(dialect_cratedb_insert_sql(&b, 0), -1);
    FP_CHECK_INT(dialect_cratedb_insert_sql(&b, DIALECT_CRATEDB_MAX_ROWS + 1), -1);
    fp_buf_free(&b);
}

FP_TEST(dialect_cratedb_schema_and_offsets)
{
    FP_CHECK(dialect_cratedb_schema[0] != NULL && dialect_cratedb_schema[1] != NULL &&
             dialect_cratedb_schema[2] != NULL && dialect_cratedb_schema[3] != NULL &&
             dialect_cratedb_schema[4] == NULL);
    FP_CHECK(strstr(dialect_cratedb_schema[0], "CREATE TABLE IF NOT EXISTS telemetry (") != NULL);
    FP_CHECK(strstr(dialect_cratedb_schema[0], "metrics OBJECT(DYNAMIC), io OBJECT(IGNORED)") !=
             NULL);
    FP_CHECK(strstr(dialect_cratedb_schema[0], "PRIMARY KEY (device_id, ts)") != NULL);
    FP_CHECK(strstr(dialect_cratedb_schema[0], "jsonb") == NULL);
    FP_CHECK(strstr(dialect_cratedb_schema[1], "PRIMARY KEY (consumer_group, topic, partition)") !=
             NULL);
    FP_CHECK(strstr(dialect_cratedb_offsets_sql,
                    "ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET next_offset = "
                    "GREATEST(next_offset, excluded.next_offset)") != NULL);
    /* Every column the INSERT names exists in the DDL. */
    {
        char cols[512];
        char *p = cols;

        snprintf(cols, sizeof(cols), "%s", rows_columns);
        while (p != NULL && *p != '\0') {
            char *comma = strchr(p, ',');
            char want[64];

            if (comma != NULL)
                *comma = '\0';
            snprintf(want, sizeof(want), "%.60s ", p);
            FP_CHECK(strstr(dialect_cratedb_schema[0], want) != NULL);
            p = comma != NULL ? comma + 1 : NULL;
        }
    }
}

typedef struct seen_fields {
    int n, nulls;
    char first[32];
} seen_fields;

static int count_field(void *ctx, int i, const char *text, size_t len)
{
    seen_fields *s = ctx;

    s->n++;
    if (text == NULL)
        s->nulls++;
    if (i == 0 && text != NULL)
        snprintf(s->first, sizeof(s->first), "%.*s", (int)len, text);
    return 0;
}

FP_TEST(rows_fields_for_parameters)
{
    fp_record r;
    fp_buf scratch = {0};
    seen_fields s = {0};

    fp_record_init(&r);
    r.schema = 1;
    memcpy(r.device_id, "dev\t1", 6);
    r.ts_ms = 0;
    FP_CHECK_INT(rows_fields(&r, &scratch, count_field, &s), 0);
    FP_CHECK_INT(s.n, ROWS_NCOLS);
    FP_CHECK_INT(s.nulls, ROWS_NCOLS - 2);
    FP_CHECK_STR(s.first, "dev\t1"); /* parameters are not escaped */
    fp_record_free(&r);
    fp_buf_free(&scratch);
}
