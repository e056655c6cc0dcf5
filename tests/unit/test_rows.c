/* Tests of sink-svc/rows.c: records as COPY rows, text lines and binary tuples. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/fp_json.h"
#include "common/fp_rand.h"
#include "common/fp_time.h"

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

/* A record with a value in every kind of column, some with characters COPY text escapes. */
static void full_record(fp_record *r)
{
    const uint8_t vin[] = {0x57, 0x46};

    fp_record_init(r);
    r->schema = 1;
    memcpy(r->device_id, "dev\\1\t\n", 8);
    r->ts_ms = INT64_C(1772437512000);
    r->received_at_ms = INT64_C(1772437513204);
    memcpy(r->format, "canonical", 10);
    r->priority = 0;
    r->event_io = 239;
    r->has_position = true;
    r->position.lat = -33.8688197;
    r->position.lon = -151.2092955;
    r->position.alt_m = 31;
    r->position.heading_deg = 270;
    r->position.speed_kmh = 12.5;
    r->position.satellites = 9;
    FP_CHECK_INT(fp_record_add_io_uint(r, 239, 1), 0);
    FP_CHECK_INT(fp_record_add_io_hex(r, 256, vin, sizeof(vin)), 0);
    FP_CHECK_INT(fp_record_add_metric_bool(r, "ignition", true), 0);
    FP_CHECK_INT(fp_record_add_metric_number(r, "external_voltage_v", 24.31), 0);
    r->enrichment.status = FP_ENRICH_OK;
    r->enrichment.has_site = true;
    r->enrichment.has_address = true;
    FP_CHECK_INT(fp_record_set_enrich_str(r, &r->enrichment.site_id, "S1", 2), 0);
    FP_CHECK_INT(fp_record_set_enrich_str(r, &r->enrichment.site_name, "North yard", 10), 0);
    FP_CHECK_INT(fp_record_set_enrich_str(r, &r->enrichment.address_display, "Main St 1\\2", 11),
                 0);
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

    full_record(&r);
    FP_CHECK_INT(rows_append_copy(&out, ROWS_COPY_TEXT, &r, &scratch), 0);
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
    FP_CHECK_INT(rows_append_copy(&out, ROWS_COPY_TEXT, &r, &scratch), 0);
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
    FP_CHECK_INT(rows_append_copy_metrics(&out, ROWS_COPY_TEXT, &r, names, 3, &scratch), 0);
    FP_CHECK_STR(fp_buf_cstr(&out),
                 "{\"engine_hours_h\":\"12\\\\\\\\7\\\\t\",\"odometer_m\":120034.5}");
    FP_CHECK_INT(fp_record_encode_metrics_json(&r, &whole), 0);
    FP_CHECK_STR(fp_buf_cstr(&whole),
                 "{\"odometer_m\":120034.5,\"ignition\":true,\"engine_hours_h\":\"12\\\\7\\t\"}");
    fp_buf_clear(&out);
    FP_CHECK_INT(rows_append_copy_metrics(&out, ROWS_COPY_TEXT, &r, names + 2, 1, &scratch), 0);
    FP_CHECK_STR(fp_buf_cstr(&out), "{}");
    fp_record_free(&r);
    fp_buf_free(&out);
    fp_buf_free(&scratch);
    fp_buf_free(&whole);
}

/* One field of a binary COPY tuple: its bytes, or NULL for SQL NULL. */
typedef struct tuple_field {
    const unsigned char *p;
    size_t len;
} tuple_field;

static uint64_t read_be(const unsigned char *p, size_t n)
{
    uint64_t v = 0;

    for (size_t k = 0; k < n; k++)
        v = v << 8 | p[k];
    return v;
}

/* Splits the binary tuple in [p, p + len) into f[0..max): returns its field count, or -1 when
 * the tuple is malformed or its fields do not end exactly at p + len. */
static int split_tuple(const char *data, size_t len, tuple_field *f, int max)
{
    const unsigned char *p = (const unsigned char *)data, *end = p + len;
    int n;

    if (len < 2)
        return -1;
    n = (int)read_be(p, 2);
    p += 2;
    if (n > max)
        return -1;
    for (int i = 0; i < n; i++) {
        uint32_t flen;

        if (end - p < 4)
            return -1;
        flen = (uint32_t)read_be(p, 4);
        p += 4;
        if (flen == UINT32_MAX) {
            f[i] = (tuple_field){NULL, 0};
            continue;
        }
        if ((size_t)(end - p) < flen)
            return -1;
        f[i] = (tuple_field){p, flen};
        p += flen;
    }
    return p == end ? n : -1;
}

static bool field_is(const tuple_field *f, const void *bytes, size_t len)
{
    return f->p != NULL && f->len == len && memcmp(f->p, bytes, len) == 0;
}

/* A field holding exactly the bytes of a string literal (without its NUL). */
#define FIELD_IS(f, literal) field_is(f, literal, sizeof(literal) - 1)

static uint32_t float_bits(float f)
{
    uint32_t w;

    memcpy(&w, &f, sizeof(w));
    return w;
}

/* The binary tuple holds each column with its type's binary form: texts raw (no COPY escapes),
 * timestamps in microseconds since 2000-01-01, numbers big-endian, jsonb with its version byte,
 * NULL as length -1. */
FP_TEST(rows_copy_binary_full_record)
{
    fp_record r;
    fp_buf out = {0}, scratch = {0}, text = {0};
    tuple_field f[ROWS_NCOLS + 1];
    double lat = -33.8688197;
    uint64_t lat_bits;
    const char *header;

    full_record(&r);
    FP_CHECK_INT(rows_append_copy(&out, ROWS_COPY_BINARY, &r, &scratch), 0);
    FP_CHECK_INT(split_tuple(out.data, out.len, f, ROWS_NCOLS + 1), ROWS_NCOLS);
    FP_CHECK(FIELD_IS(&f[0], "dev\\1\t\n"));
    FP_CHECK(f[1].len == 8 && read_be(f[1].p, 8) == (uint64_t)(INT64_C(1772437512000) * 1000 -
                                                               INT64_C(946684800000000)));
    FP_CHECK(f[2].len == 8 && read_be(f[2].p, 8) == read_be(f[1].p, 8) + 1204000);
    FP_CHECK(FIELD_IS(&f[3], "canonical"));
    FP_CHECK(f[4].len == 2 && read_be(f[4].p, 2) == 0);
    FP_CHECK(f[5].len == 4 && read_be(f[5].p, 4) == 239);
    memcpy(&lat_bits, &lat, sizeof(lat_bits));
    FP_CHECK(f[6].len == 8 && read_be(f[6].p, 8) == lat_bits);
    FP_CHECK(f[8].len == 4 && read_be(f[8].p, 4) == float_bits(31.0f));
    FP_CHECK(f[10].len == 4 && read_be(f[10].p, 4) == float_bits(12.5f));
    FP_CHECK(f[11].len == 2 && read_be(f[11].p, 2) == 9);
    FP_CHECK(FIELD_IS(&f[12], "\1"));
    FP_CHECK(FIELD_IS(&f[13], "ok"));
    FP_CHECK(FIELD_IS(&f[16], "Main St 1\\2"));
    for (int i = 17; i < 27; i++)
        if (f[i].p != NULL)
            fp_test_fail(__FILE__, __LINE__, "column %d should be NULL", i);
    FP_CHECK(FIELD_IS(&f[27], "\1{\"ignition\":true,\"external_voltage_v\":24.31}"));
    FP_CHECK(FIELD_IS(&f[28], "\1{\"239\":1,\"256\":\"5746\"}"));
    /* The header and trailer frame the tuples; text has neither. */
    FP_CHECK_INT((int)rows_copy_header(ROWS_COPY_BINARY, &header), 19);
    FP_CHECK(memcmp(header, "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0", 19) == 0);
    FP_CHECK_INT((int)rows_copy_trailer(ROWS_COPY_BINARY, &header), 2);
    FP_CHECK(memcmp(header, "\377\377", 2) == 0);
    FP_CHECK_INT((int)rows_copy_header(ROWS_COPY_TEXT, &header), 0);
    FP_CHECK_INT((int)rows_copy_trailer(ROWS_COPY_TEXT, &header), 0);
    fp_record_free(&r);
    fp_buf_free(&out);
    fp_buf_free(&scratch);
    fp_buf_free(&text);
}

/* A real is what the server reads from the text format's digits (strtof of the shortest digits
 * of the double): a double exactly halfway between two floats goes to the digits' side, not to
 * the even float that a cast picks; -0 is 0 (written so in text) and NaN is NULL. */
FP_TEST(rows_copy_binary_reals_as_the_text_reads)
{
    static const struct {
        double d;
        uint32_t bits;
    } cases[] = {
        {1.0 + 0x1p-24, 0x3f800001},     /* digits above the tie: up, where a cast rounds down */
        {1.0 + 3 * 0x1p-24, 0x3f800001}, /* digits below the tie: down, a cast rounds up */
        {12.3, 0x4144cccd},
        {-0.0, 0},
        {0x1p-149, 1}, /* the smallest subnormal float */
        {-3.4028234663852886e38, 0xff7fffff},
    };
    fp_record r;
    fp_buf out = {0}, scratch = {0}, digits = {0};
    tuple_field f[ROWS_NCOLS];

    fp_record_init(&r);
    memcpy(r.device_id, "d", 2);
    r.ts_ms = 0;
    r.has_position = true;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        double d = cases[i].d;

        r.position.alt_m = d;
        r.position.lat = d == 0 ? d : 1; /* -0 in a double column too */
        fp_buf_clear(&out);
        FP_CHECK_INT(rows_append_copy(&out, ROWS_COPY_BINARY, &r, &scratch), 0);
        FP_CHECK_INT(split_tuple(out.data, out.len, f, ROWS_NCOLS), ROWS_NCOLS);
        if (f[8].len != 4 || read_be(f[8].p, 4) != cases[i].bits)
            fp_test_fail(__FILE__, __LINE__, "%a: real bits %08x, expected %08x", d,
                         f[8].len == 4 ? (unsigned)read_be(f[8].p, 4) : 0u,
                         (unsigned)cases[i].bits);
        /* The expectation is the text's: strtof of the digits fp_json_put_double writes. */
        fp_buf_clear(&digits);
        FP_CHECK_INT(fp_json_put_double(&digits, d), 0);
        if (float_bits(strtof(fp_buf_cstr(&digits), NULL)) != cases[i].bits)
            fp_test_fail(__FILE__, __LINE__, "%a: the case's bits are not strtof(\"%s\")", d,
                         fp_buf_cstr(&digits));
        if (d == 0)
            FP_CHECK(f[6].len == 8 && read_be(f[6].p, 8) == 0);
    }
    r.position.alt_m = NAN;
    fp_buf_clear(&out);
    FP_CHECK_INT(rows_append_copy(&out, ROWS_COPY_BINARY, &r, &scratch), 0);
    FP_CHECK_INT(split_tuple(out.data, out.len, f, ROWS_NCOLS), ROWS_NCOLS);
    FP_CHECK(f[8].p == NULL);
    fp_record_free(&r);
    fp_buf_free(&out);
    fp_buf_free(&scratch);
    fp_buf_free(&digits);
}

/* A row of other columns built from a telemetry row: the picked fields as they are, in either
 * format, then the metrics subset as jsonb; a row with too few fields is refused. */
FP_TEST(rows_copy_pick_fields)
{
    static const int col[] = {0, 1, 10, 12};
    static const char *const names[] = {"external_voltage_v"};
    fp_record r;
    fp_buf row = {0}, out = {0}, scratch = {0};
    tuple_field whole[ROWS_NCOLS], f[8];

    full_record(&r);
    FP_CHECK_INT(rows_append_copy(&row, ROWS_COPY_TEXT, &r, &scratch), 0);
    FP_CHECK_INT(rows_copy_row_start(&out, ROWS_COPY_TEXT, 5), 0);
    FP_CHECK_INT(rows_copy_pick(&out, ROWS_COPY_TEXT, row.data, row.len, col, 4), 0);
    FP_CHECK_INT(rows_append_copy_metrics(&out, ROWS_COPY_TEXT, &r, names, 1, &scratch), 0);
    FP_CHECK_INT(rows_copy_row_end(&out, ROWS_COPY_TEXT), 0);
    FP_CHECK_STR(fp_buf_cstr(&out), "dev\\\\1\\t\\n\t2026-03-02T07:45:12.000Z\t12.5\tt\t"
                                    "{\"external_voltage_v\":24.31}\n");
    FP_CHECK_INT(rows_copy_pick(&out, ROWS_COPY_TEXT, row.data, 20, col, 4), -1);

    fp_buf_clear(&row);
    fp_buf_clear(&out);
    FP_CHECK_INT(rows_append_copy(&row, ROWS_COPY_BINARY, &r, &scratch), 0);
    FP_CHECK_INT(split_tuple(row.data, row.len, whole, ROWS_NCOLS), ROWS_NCOLS);
    FP_CHECK_INT(rows_copy_row_start(&out, ROWS_COPY_BINARY, 5), 0);
    FP_CHECK_INT(rows_copy_pick(&out, ROWS_COPY_BINARY, row.data, row.len, col, 4), 0);
    FP_CHECK_INT(rows_append_copy_metrics(&out, ROWS_COPY_BINARY, &r, names, 1, &scratch), 0);
    FP_CHECK_INT(rows_copy_row_end(&out, ROWS_COPY_BINARY), 0);
    FP_CHECK_INT(split_tuple(out.data, out.len, f, 8), 5);
    for (int k = 0; k < 4; k++)
        if (!field_is(&f[k], whole[col[k]].p, whole[col[k]].len))
            fp_test_fail(__FILE__, __LINE__, "picked field %d is not column %d", k, col[k]);
    FP_CHECK(FIELD_IS(&f[4], "\1{\"external_voltage_v\":24.31}"));
    fp_buf_clear(&out);
    FP_CHECK_INT(rows_copy_pick(&out, ROWS_COPY_BINARY, row.data, 40, col, 4), -1);
    FP_CHECK_INT((int)out.len, 0);
    fp_record_free(&r);
    fp_buf_free(&row);
    fp_buf_free(&out);
    fp_buf_free(&scratch);
}

/* A double for a real column: random bits of a float's range, often exactly halfway between two
 * floats (the case a cast gets wrong), sometimes 0 or -0. */
static double random_real(fp_rand *g)
{
    uint32_t w = (uint32_t)fp_rand_next(g) & 0x7f7fffffu; /* finite, |f| <= FLT_MAX */
    float f, next;
    double d;

    memcpy(&f, &w, sizeof(f));
    if (fp_rand_below(g, 2) != 0)
        f = -f;
    switch (fp_rand_below(g, 8)) {
    case 0:
        return fp_rand_below(g, 2) != 0 ? 0.0 : -0.0;
    case 1:
    case 2:
    case 3:
        next = nextafterf(f, f < 0 ? -INFINITY : INFINITY);
        if (isinf(next))
            return f;
        d = ((double)f + (double)next) / 2; /* the midpoint, exact in a double */
        break;
    default:
        d = (double)f * (1 + ((double)fp_rand_below(g, 1000) - 500) * 1e-12);
    }
    return fabs(d) >= FLT_TRUE_MIN && fabs(d) <= FLT_MAX ? d : (double)f;
}

/* Each binary field against the text line of the same record: the binary value is what the
 * server's input function makes of the text (strtod for double precision, strtof for real —
 * float4in and float8in are those —, the timestamp and the integers as parsed). */
FP_TEST(rows_copy_binary_matches_text_random)
{
    fp_rand g;
    fp_record r;
    fp_buf bin = {0}, text = {0}, scratch = {0};
    tuple_field f[ROWS_NCOLS];
    int bad = 0;

    fp_rand_init(&g, 20261207);
    fp_record_init(&r);
    for (int n = 0; n < 20000 && bad < 5; n++) {
        char *line, *field[ROWS_NCOLS] = {0};
        int nf = 0;

        fp_record_reset(&r);
        memcpy(r.device_id, "d", 2);
        r.ts_ms = (int64_t)fp_rand_below(&g, UINT64_C(316224000000000)) - INT64_C(62135596800000);
        r.received_at_ms = fp_rand_below(&g, 4) == 0 ? INT64_MIN : r.ts_ms + 1;
        r.priority = (int)fp_rand_below(&g, 257) - 1;
        r.event_io = (int)fp_rand_below(&g, 65537) - 1;
        r.has_position = fp_rand_below(&g, 8) != 0;
        r.position.lat = ((double)fp_rand_next(&g) / 18446744073709551616.0) * 180 - 90;
        r.position.lon = fp_rand_below(&g, 16) == 0 ? -0.0 : r.position.lat * 2;
        r.position.alt_m = random_real(&g);
        r.position.heading_deg = random_real(&g);
        r.position.speed_kmh = random_real(&g);
        r.position.satellites = (int)fp_rand_below(&g, 257) - 1;
        fp_buf_clear(&bin);
        fp_buf_clear(&text);
        FP_CHECK_INT(rows_append_copy(&bin, ROWS_COPY_BINARY, &r, &scratch), 0);
        FP_CHECK_INT(rows_append_copy(&text, ROWS_COPY_TEXT, &r, &scratch), 0);
        FP_CHECK_INT(split_tuple(bin.data, bin.len, f, ROWS_NCOLS), ROWS_NCOLS);
        line = (char *)fp_buf_cstr(&text);
        line[text.len - 1] = '\0';
        for (char *p = line; nf < ROWS_NCOLS; nf++) {
            char *tab = strchr(p, '\t');

            field[nf] = p;
            if (tab == NULL) {
                nf++;
                break;
            }
            *tab = '\0';
            p = tab + 1;
        }
        FP_CHECK_INT(nf, ROWS_NCOLS);
        for (int i = 1; i < 12; i++) {
            bool null = strcmp(field[i], "\\N") == 0;
            uint64_t want = 0, got;
            size_t len = 0;

            if (null != (f[i].p == NULL)) {
                fp_test_fail(__FILE__, __LINE__, "record %d column %d: NULL in one format only", n,
                             i);
                bad++;
                continue;
            }
            if (null || i == 3)
                continue;
            got = read_be(f[i].p, f[i].len);
            if (i == 1 || i == 2) {
                int64_t ms = 0;

                FP_CHECK_INT(fp_time_parse_ms(field[i], strlen(field[i]), &ms), 0);
                want = (uint64_t)(ms * 1000 - INT64_C(946684800000000));
                len = 8;
            } else if (i == 6 || i == 7) {
                double d = strtod(field[i], NULL);

                memcpy(&want, &d, sizeof(d));
                len = 8;
            } else if (i >= 8 && i <= 10) {
                float v = strtof(field[i], NULL);

                want = float_bits(v);
                len = 4;
            } else {
                want = (uint64_t)strtoll(field[i], NULL, 10);
                len = i == 5 ? 4 : 2;
                want &= len == 4 ? 0xffffffffu : 0xffffu;
            }
            if (f[i].len != len || got != want) {
                fp_test_fail(__FILE__, __LINE__,
                             "record %d column %d: binary %llx, text \"%s\" reads as %llx", n, i,
                             (unsigned long long)got, field[i], (unsigned long long)want);
                bad++;
            }
        }
    }
    fp_record_free(&r);
    fp_buf_free(&bin);
    fp_buf_free(&text);
    fp_buf_free(&scratch);
}
