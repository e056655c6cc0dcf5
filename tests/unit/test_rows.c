/* Tests of sink-svc/rows.c: records as COPY text-format lines. */
#include <string.h>

#include "fp_test.h"
#include "sink-svc/rows.h"

/* Counts the columns of one COPY line (tabs + 1) and checks it ends in one newline. */
static int columns(const char *line)
{
    int n = 1;

    for (const char *p = line; *p != '\0'; p++)
        if (*p == '\t')
            n++;
    return n;
}

FP_TEST(rows_copy_line_full_record)
{
    static const char expected[] =
        "dev\\\\1\\t\\n\t2026-03-02T07:45:12.000Z\t2026-03-02T07:45:13.204Z\tcanonical\t0\t239\t"
        "-33.8688197\t-151.2092955\t31\t270\t12.5\t9\tt\tok\tS1\tNorth yard\tMain St 1\\\\2\t"
        "\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t"
        "{\"ignition\":true,\"external_voltage_v\":24.31}\t{\"239\":1,\"256\":\"5746\"}\n";
    fp_record r;
    fp_buf out = {0}, scratch = {0};
    const uint8_t vin[] = {0x57, 0x46};

    fp_record_init(&r);
    r.schema = 1;
    memcpy(r.device_id, "dev\\1\t\n", 8);
    r.ts_ms = INT64_C(1772437512000);
    r.received_at_ms = INT64_C(1772437513204);
    memcpy(r.format, "canonical", 10);
    r.priority = 0;
    r.event_io = 239;
    r.has_position = true;
    r.position.lat = -33.8688197;
    r.position.lon = -151.2092955;
    r.position.alt_m = 31;
    r.position.heading_deg = 270;
    r.position.speed_kmh = 12.5;
    r.position.satellites = 9;
    FP_CHECK_INT(fp_record_add_io_uint(&r, 239, 1), 0);
    FP_CHECK_INT(fp_record_add_io_hex(&r, 256, vin, sizeof(vin)), 0);
    FP_CHECK_INT(fp_record_add_metric_bool(&r, "ignition", true), 0);
    FP_CHECK_INT(fp_record_add_metric_number(&r, "external_voltage_v", 24.31), 0);
    r.enrichment.status = FP_ENRICH_OK;
    r.enrichment.has_site = true;
    r.enrichment.has_address = true;
    FP_CHECK_INT(fp_record_set_enrich_str(&r, &r.enrichment.site_id, "S1", 2), 0);
    FP_CHECK_INT(fp_record_set_enrich_str(&r, &r.enrichment.site_name, "North yard", 10), 0);
    FP_CHECK_INT(fp_record_set_enrich_str(&r, &r.enrichment.address_display, "Main St 1\\2", 11),
                 0);
    FP_CHECK_INT(rows_append_copy(&out, &r, &scratch), 0);
    FP_CHECK_STR(fp_buf_cstr(&out), expected);
    FP_CHECK_INT(columns(fp_buf_cstr(&out)), 29);
    fp_record_free(&r);
    fp_buf_free(&out);
    fp_buf_free(&scratch);
}

FP_TEST(rows_copy_line_minimal_record)
{
    static const char expected[] = "d\t2026-03-02T07:45:12.000Z\t"
                                   "\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t"
                                   "\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t"
                                   "\\N\t\\N\t\\N\n";
    fp_record r;
    fp_buf out = {0}, scratch = {0};
    int ncols = 1;

    for (const char *p = rows_columns; *p != '\0'; p++)
        ncols += *p == ',';
    fp_record_init(&r);
    r.schema = 1;
    memcpy(r.device_id, "d", 2);
    r.ts_ms = INT64_C(1772437512000);
    FP_CHECK_INT(rows_append_copy(&out, &r, &scratch), 0);
    FP_CHECK_STR(fp_buf_cstr(&out), expected);
    FP_CHECK_INT(columns(fp_buf_cstr(&out)), ncols);
    fp_record_free(&r);
    fp_buf_free(&out);
    fp_buf_free(&scratch);
}

FP_TEST(rows_column_indexes_finds_names)
{
    int idx[4] = {0};

    FP_CHECK_INT(rows_column_indexes("device_id,ts,speed_kmh,metrics", idx, 4), 4);
    FP_CHECK_INT(idx[0], 0);
    FP_CHECK_INT(idx[1], 1);
    FP_CHECK_INT(idx[2], 10);
    FP_CHECK_INT(idx[3], 27);
    /* A prefix of a column is not the column; the search stops at an unknown name. */
    FP_CHECK_INT(rows_column_indexes("ts,speed,io", idx, 4), 1);
    FP_CHECK_INT(rows_column_indexes("io", idx, 4), 1);
    FP_CHECK_INT(idx[0], 28);
    FP_CHECK_INT(rows_column_indexes("device_id,ts", idx, 1), -1);
}

/* The metrics the rollup step reads, as a COPY field: only the named members, in the order
 * named, each as in the whole metrics column (escaped for COPY), and "{}" when none is there. */
FP_TEST(rows_copy_metrics_subset)
{
    static const char *const names[] = {"engine_hours_h", "odometer_m", "absent"};
    fp_record r;
    fp_buf out = {0}, scratch = {0}, whole = {0};

    fp_record_init(&r);
    FP_CHECK_INT(fp_record_add_metric_number(&r, "odometer_m", 120034.5), 0);
    FP_CHECK_INT(fp_record_add_metric_bool(&r, "ignition", true), 0);
    FP_CHECK_INT(fp_record_add_metric_string(&r, "engine_hours_h", "12\\7\t", 5), 0);
    FP_CHECK_INT(rows_append_copy_metrics(&out, &r, names, 3, &scratch), 0);
    FP_CHECK_STR(fp_buf_cstr(&out),
                 "{\"engine_hours_h\":\"12\\\\\\\\7\\\\t\",\"odometer_m\":120034.5}");
    FP_CHECK_INT(fp_record_encode_metrics_json(&r, &whole), 0);
    FP_CHECK_STR(fp_buf_cstr(&whole),
                 "{\"odometer_m\":120034.5,\"ignition\":true,\"engine_hours_h\":\"12\\\\7\\t\"}");
    fp_buf_clear(&out);
    FP_CHECK_INT(rows_append_copy_metrics(&out, &r, names + 2, 1, &scratch), 0);
    FP_CHECK_STR(fp_buf_cstr(&out), "{}");
    fp_record_free(&r);
    fp_buf_free(&out);
    fp_buf_free(&scratch);
    fp_buf_free(&whole);
}
