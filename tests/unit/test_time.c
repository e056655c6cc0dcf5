/* Unit tests of common/fp_time.c: RFC 3339 formatting and parsing, civil dates, clocks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fp_test.h"
#include "common/fp_time.h"

/* Parses a C string from an exact-size heap copy, so that AddressSanitizer catches any read
 * past its end; returns fp_time_parse_ms's result and leaves the time in *ms. */
static int parse(const char *s, int64_t *ms)
{
    size_t len = strlen(s);
    char *copy = malloc(len > 0 ? len : 1);
    int rc;

    if (copy == NULL)
        return -2;
    memcpy(copy, s, len);
    rc = fp_time_parse_ms(copy, len, ms);
    free(copy);
    return rc;
}

FP_TEST(time_format_epoch)
{
    char out[32];
    int64_t ms;

    FP_CHECK_INT(fp_time_format_ms(0, out, sizeof(out)), FP_RFC3339_LEN);
    FP_CHECK_STR(out, "1970-01-01T00:00:00.000Z");
    FP_CHECK_INT(parse("1970-01-01T00:00:00.000Z", &ms), 0);
    FP_CHECK_INT(ms, 0);
    FP_CHECK_INT(parse("1970-01-01T00:00:00Z", &ms), 0);
    FP_CHECK_INT(ms, 0);
}

FP_TEST(time_format_known_instants)
{
    static const struct {
        int64_t ms;
        const char *text;
    } cases[] = {
        {1772437512000, "2026-03-02T07:45:12.000Z"},
        {1772437513204, "2026-03-02T07:45:13.204Z"},
        {1709208000500, "2024-02-29T12:00:00.500Z"}, /* leap day */
        {1483228799999, "2016-12-31T23:59:59.999Z"},
        {951782400000, "2000-02-29T00:00:00.000Z"}, /* 2000 is a leap year */
        {-1, "1969-12-31T23:59:59.999Z"},
        {-86400001, "1969-12-30T23:59:59.999Z"},
        {-14182940000, "1969-07-20T20:17:40.000Z"},
        {253402300799999, "9999-12-31T23:59:59.999Z"},
        {-62167219200000, "0000-01-01T00:00:00.000Z"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[FP_RFC3339_LEN + 1];
        int64_t ms;

        FP_CHECK_INT(fp_time_format_ms(cases[i].ms, out, sizeof(out)), FP_RFC3339_LEN);
        FP_CHECK_STR(out, cases[i].text);
        FP_CHECK_INT(parse(cases[i].text, &ms), 0);
        FP_CHECK_INT(ms, cases[i].ms);
    }
}

FP_TEST(time_format_out_of_range)
{
    char out[32] = "garbage";
    char small[FP_RFC3339_LEN] = "garbage";

    FP_CHECK_INT(fp_time_format_ms(253402300800000, out, sizeof(out)), -1);
    FP_CHECK_STR(out, "");
    memcpy(out, "garbage", 8);
    FP_CHECK_INT(fp_time_format_ms(-62167219200001, out, sizeof(out)), -1);
    FP_CHECK_STR(out, "");
    FP_CHECK_INT(fp_time_format_ms(INT64_MAX, out, sizeof(out)), -1);
    FP_CHECK_INT(fp_time_format_ms(INT64_MIN, out, sizeof(out)), -1);
    /* The output needs 25 bytes with the NUL. */
    FP_CHECK_INT(fp_time_format_ms(0, small, sizeof(small)), -1);
    FP_CHECK_STR(small, "");
    FP_CHECK_INT(fp_time_format_ms(0, NULL, 0), -1);
}

FP_TEST(time_parse_offsets)
{
    int64_t ms;

    FP_CHECK_INT(parse("2026-03-02T09:45:12+02:00", &ms), 0);
    FP_CHECK_INT(ms, 1772437512000);
    FP_CHECK_INT(parse("2026-03-02T02:15:12-05:30", &ms), 0);
    FP_CHECK_INT(ms, 1772437512000);
    FP_CHECK_INT(parse("2026-03-02T07:45:12-00:00", &ms), 0);
    FP_CHECK_INT(ms, 1772437512000);
    /* An offset that crosses midnight and the month boundary. */
    FP_CHECK_INT(parse("2026-03-01T23:45:12.204-08:00", &ms), 0);
    FP_CHECK_INT(ms, 1772437512204);
    FP_CHECK_INT(parse("2026-03-02T07:45:12.5+00:00", &ms), 0);
    FP_CHECK_INT(ms, 1772437512500);
}

FP_TEST(time_parse_fractions)
{
    static const struct {
        const char *text;
        int64_t frac_ms;
    } cases[] = {
        {"2026-03-02T07:45:12.1Z", 100},         {"2026-03-02T07:45:12.12Z", 120},
        {"2026-03-02T07:45:12.123Z", 123},       {"2026-03-02T07:45:12.1239Z", 123},
        {"2026-03-02T07:45:12.12345Z", 123},     {"2026-03-02T07:45:12.123456Z", 123},
        {"2026-03-02T07:45:12.1234567Z", 123},   {"2026-03-02T07:45:12.12345678Z", 123},
        {"2026-03-02T07:45:12.999999999Z", 999}, {"2026-03-02T07:45:12.000000001Z", 0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ms;

        FP_CHECK_INT(parse(cases[i].text, &ms), 0);
        FP_CHECK_INT(ms, 1772437512000 + cases[i].frac_ms);
    }
}

FP_TEST(time_parse_variants)
{
    int64_t ms;

    /* Lowercase separators and a space for 'T' are allowed by RFC 3339 section 5.6. */
    FP_CHECK_INT(parse("2026-03-02t07:45:12.000z", &ms), 0);
    FP_CHECK_INT(ms, 1772437512000);
    FP_CHECK_INT(parse("2026-03-02 07:45:12Z", &ms), 0);
    FP_CHECK_INT(ms, 1772437512000);
    /* A leap second becomes the last millisecond of the second before it. */
    FP_CHECK_INT(parse("2016-12-31T23:59:60Z", &ms), 0);
    FP_CHECK_INT(ms, 1483228799999);
    FP_CHECK_INT(parse("2016-12-31T23:59:60.5Z", &ms), 0);
    FP_CHECK_INT(ms, 1483228799999);
    /* The text need not be NUL-terminated: only len bytes are read. */
    FP_CHECK_INT(fp_time_parse_ms("1970-01-01T00:00:01ZXXXX", 20, &ms), 0);
    FP_CHECK_INT(ms, 1000);
}

FP_TEST(time_parse_rejects)
{
    static const char *const bad[] = {
        "",
        "2026",
        "2026-03-02",
        "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-02-29T00:00:00Z", /* 2026 is not a leap year */
        "1900-02-29T00:00:00Z", /* nor is 1900 */
        "2026-04-31T00:00:00Z",
        "2026-03-00T00:00:00Z",
        "2026-03-02T24:00:00Z",
        "2026-03-02T07:60:00Z",
        "2026-03-02T07:45:61Z",
        "2026-03-02T07:45:12",
        "2026-03-02T07:45:12.000",
        "2026-03-02T07:45:12.Z",
        "2026-03-02T07:45:12.000Zjunk",
        "2026-03-02T07:45:12.000Z ",
        "2026-03-02T07:45:12+02",
        "2026-03-02T07:45:12+0200",
        "2026-03-02T07:45:12+24:00",
        "2026-03-02T07:45:12+02:60",
        "2026-03-02T07:45:12+02:00x",
        "2026-03-02X07:45:12Z",
        "2026/03/02T07:45:12Z",
        "26-03-02T07:45:12Z",
        "+2026-03-02T07:45:12Z",
        "2026-3-02T07:45:12Z",
        "2026-03-02T7:45:12Z",
        "2026-03-02T07:45:12 Z",
        /* Offsets that carry the time outside years 0000..9999. */
        "0000-01-01T00:30:00+01:00",
        "9999-12-31T23:30:00-01:00",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms = 42;

        if (parse(bad[i], &ms) != -1)
            fp_test_fail(__FILE__, __LINE__, "accepted \"%s\"", bad[i]);
        FP_CHECK_INT(ms, 42);
    }
    FP_CHECK_INT(fp_time_parse_ms(NULL, 0, NULL), -1);
    /* A valid prefix cut short by len must not be read past len. */
    FP_CHECK_INT(fp_time_parse_ms("2026-03-02T07:45:12.000Z", 23, &(int64_t){0}), -1);
}

FP_TEST(time_civil_round_trip)
{
    int64_t y;
    unsigned m, d;

    FP_CHECK_INT(fp_days_from_civil(1970, 1, 1), 0);
    FP_CHECK_INT(fp_days_from_civil(2000, 3, 1), 11017);
    FP_CHECK_INT(fp_days_from_civil(1969, 12, 31), -1);
    FP_CHECK_INT(fp_days_from_civil(0, 1, 1), -719528);
    fp_civil_from_days(-719528, &y, &m, &d);
    FP_CHECK(y == 0 && m == 1 && d == 1);

    /* Every day of years 0000..9999 maps to a valid date and back, and consecutive days are
     * consecutive dates. */
    int64_t prev_y = -1;
    unsigned prev_m = 12, prev_d = 31;
    for (int64_t days = -719528; days < 2932897; days++) {
        fp_civil_from_days(days, &y, &m, &d);
        if (fp_days_from_civil(y, m, d) != days) {
            fp_test_fail(__FILE__, __LINE__, "day %lld does not round-trip", (long long)days);
            break;
        }
        if (d == 1) {
            if (!(prev_d >= 28 &&
                  (m == prev_m + 1 || (m == 1 && prev_m == 12 && y == prev_y + 1)))) {
                fp_test_fail(__FILE__, __LINE__, "day %lld breaks the sequence", (long long)days);
                break;
            }
        } else if (d != prev_d + 1 || m != prev_m || y != prev_y) {
            fp_test_fail(__FILE__, __LINE__, "day %lld breaks the sequence", (long long)days);
            break;
        }
        prev_y = y;
        prev_m = m;
        prev_d = d;
    }

    /* Absurd inputs are clamped, never undefined. */
    (void)fp_days_from_civil(INT64_MAX, 13, 99);
    (void)fp_days_from_civil(INT64_MIN, 0, 0);
    fp_civil_from_days(INT64_MAX, &y, &m, &d);
    fp_civil_from_days(INT64_MIN, &y, &m, &d);
    FP_CHECK(m >= 1 && m <= 12 && d >= 1 && d <= 31);
}

FP_TEST(time_format_parse_round_trip)
{
    /* A deterministic walk over the whole range with an odd stride hits every field value. */
    uint64_t x = 88172645463325252ULL;

    for (int i = 0; i < 200000; i++) {
        char out[FP_RFC3339_LEN + 1];
        int64_t ms, back;

        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ms = -62167219200000 + (int64_t)(x % (253402300799999ULL + 62167219200000ULL + 1));
        if (fp_time_format_ms(ms, out, sizeof(out)) != FP_RFC3339_LEN ||
            fp_time_parse_ms(out, FP_RFC3339_LEN, &back) != 0 || back != ms) {
            fp_test_fail(__FILE__, __LINE__, "%lld does not round-trip (\"%s\")", (long long)ms,
                         out);
            break;
        }
    }
}

FP_TEST(time_clocks)
{
    int64_t now = fp_now_ms();
    int64_t m1 = fp_mono_ms(), m2;
    double s1 = fp_mono_seconds(), s2;

    FP_CHECK(now > 1700000000000); /* later than November 2023 */
    m2 = fp_mono_ms();
    s2 = fp_mono_seconds();
    FP_CHECK(m2 >= m1);
    FP_CHECK(s2 >= s1);
    FP_CHECK(s1 * 1000 >= (double)m1 - 1);
}

/* fp_time_format_ms remembers the last two dates it wrote; times that take turns between more
 * days than that, and times within a remembered day, must still come out right. */
FP_TEST(time_format_alternating_days)
{
    static const struct {
        int64_t ms;
        const char *text;
    } cases[] = {
        {INT64_C(1772437512000), "2026-03-02T07:45:12.000Z"},
        {INT64_C(1893456000000), "2030-01-01T00:00:00.000Z"},
        {INT64_C(1772437599999), "2026-03-02T07:46:39.999Z"},
        {INT64_C(951782400000), "2000-02-29T00:00:00.000Z"},
        {INT64_C(-1), "1969-12-31T23:59:59.999Z"},
        {INT64_C(1893455999999), "2029-12-31T23:59:59.999Z"},
        {INT64_C(0), "1970-01-01T00:00:00.000Z"},
        {INT64_C(1772409600000), "2026-03-02T00:00:00.000Z"},
        {INT64_C(1772495999999), "2026-03-02T23:59:59.999Z"},
        {INT64_C(1772496000000), "2026-03-03T00:00:00.000Z"},
    };
    char out[32];

    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            size_t j = round == 1 ? sizeof(cases) / sizeof(cases[0]) - 1 - i : i;

            FP_CHECK_INT(fp_time_format_ms(cases[j].ms, out, sizeof(out)), FP_RFC3339_LEN);
            FP_CHECK_STR(out, cases[j].text);
            /* The same day twice in a row, and a failure in between, change nothing. */
            FP_CHECK_INT(fp_time_format_ms(INT64_MAX, out, sizeof(out)), -1);
            FP_CHECK_INT(fp_time_format_ms(cases[j].ms, out, sizeof(out)), FP_RFC3339_LEN);
            FP_CHECK_STR(out, cases[j].text);
        }
    }
}
