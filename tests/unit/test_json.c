/* Unit tests of common/fp_buf.c and common/fp_json.c. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "common/fp_buf.h"
#include "common/fp_json.h"
#include "fp_test.h"

/* Encodes len bytes of s with fp_json_put_string from an exact-size heap copy (so that
 * AddressSanitizer sees any over-read) and returns the JSON text in b. */
static const char *json_string(fp_buf *b, const char *s, size_t len)
{
    char *copy = malloc(len > 0 ? len : 1);

    fp_buf_clear(b);
    if (copy == NULL)
        return "(no memory)";
    memcpy(copy, s, len);
    if (fp_json_put_string(b, copy, len) != 0)
        fp_buf_puts(b, "(failed)");
    free(copy);
    return fp_buf_cstr(b);
}

/* Returns fp_json_put_double's text for v in b. */
static const char *json_double(fp_buf *b, double v)
{
    fp_buf_clear(b);
    if (fp_json_put_double(b, v) != 0)
        return "(failed)";
    return fp_buf_cstr(b);
}

/* A small deterministic generator (xorshift64) so that failures reproduce. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

FP_TEST(buf_append_and_grow)
{
    fp_buf b;
    char big[1000];

    fp_buf_init(&b);
    FP_CHECK_STR(fp_buf_cstr(&b), "");
    FP_CHECK_INT(fp_buf_append(&b, "abc", 3), 0);
    FP_CHECK_INT(fp_buf_putc(&b, '-'), 0);
    FP_CHECK_INT(fp_buf_puts(&b, "def"), 0);
    FP_CHECK_INT(fp_buf_append(&b, NULL, 0), 0);
    FP_CHECK_INT(b.len, 7);
    FP_CHECK_STR(fp_buf_cstr(&b), "abc-def");
    FP_CHECK(b.cap > b.len);

    memset(big, 'x', sizeof(big));
    for (int i = 0; i < 100; i++)
        FP_CHECK_INT(fp_buf_append(&b, big, sizeof(big)), 0);
    FP_CHECK_INT(b.len, 7 + 100 * sizeof(big));
    FP_CHECK(b.cap > b.len);
    FP_CHECK(memcmp(b.data, "abc-defxxx", 10) == 0);
    FP_CHECK_INT(strlen(fp_buf_cstr(&b)), b.len);

    fp_buf_clear(&b);
    FP_CHECK_INT(b.len, 0);
    FP_CHECK_STR(fp_buf_cstr(&b), "");

    /* reserve keeps the spare byte for the NUL. */
    FP_CHECK_INT(fp_buf_reserve(&b, b.cap), 0);
    FP_CHECK(b.cap >= b.len + 1);
    FP_CHECK_INT(fp_buf_reserve(&b, SIZE_MAX), -1);
    FP_CHECK_INT(b.len, 0);

    fp_buf_free(&b);
    FP_CHECK(b.data == NULL && b.len == 0 && b.cap == 0);
    fp_buf_free(&b);
    fp_buf_free(NULL);

    /* A zeroed buffer is valid. */
    fp_buf z = {0};
    FP_CHECK_INT(fp_buf_putc(&z, 'q'), 0);
    FP_CHECK_STR(fp_buf_cstr(&z), "q");
    fp_buf_free(&z);
}

FP_TEST(buf_printf)
{
    fp_buf b;
    char expect[600];

    fp_buf_init(&b);
    FP_CHECK_INT(fp_buf_printf(&b, "%s=%d", "n", 42), 0);
    FP_CHECK_STR(fp_buf_cstr(&b), "n=42");
    /* Longer than the free space: formatted a second time after growing. */
    memset(expect, 'y', 500);
    expect[500] = '\0';
    FP_CHECK_INT(fp_buf_printf(&b, ";%s", expect), 0);
    FP_CHECK_INT(b.len, 4 + 1 + 500);
    FP_CHECK(memcmp(b.data, "n=42;yyy", 8) == 0);
    FP_CHECK_INT(fp_buf_printf(&b, "%s", ""), 0);
    FP_CHECK_INT(b.len, 505);
    fp_buf_free(&b);
}

FP_TEST(buf_integers)
{
    fp_buf b;

    fp_buf_init(&b);
    FP_CHECK_INT(fp_buf_put_i64(&b, 0), 0);
    FP_CHECK_INT(fp_buf_putc(&b, ' '), 0);
    FP_CHECK_INT(fp_buf_put_i64(&b, -7), 0);
    FP_CHECK_INT(fp_buf_putc(&b, ' '), 0);
    FP_CHECK_INT(fp_buf_put_i64(&b, INT64_MIN), 0);
    FP_CHECK_INT(fp_buf_putc(&b, ' '), 0);
    FP_CHECK_INT(fp_buf_put_i64(&b, INT64_MAX), 0);
    FP_CHECK_INT(fp_buf_putc(&b, ' '), 0);
    FP_CHECK_INT(fp_buf_put_u64(&b, UINT64_MAX), 0);
    FP_CHECK_INT(fp_buf_putc(&b, ' '), 0);
    FP_CHECK_INT(fp_buf_put_u64(&b, 1532006), 0);
    FP_CHECK_STR(fp_buf_cstr(&b), "0 -7 -9223372036854775808 9223372036854775807 "
                                  "18446744073709551615 1532006");
    fp_buf_free(&b);
}

FP_TEST(json_string_escapes)
{
    fp_buf b;

    fp_buf_init(&b);
    FP_CHECK_STR(json_string(&b, "", 0), "\"\"");
    FP_CHECK_STR(json_string(&b, "plain text", 10), "\"plain text\"");
    FP_CHECK_STR(json_string(&b, "a\"b\\c", 5), "\"a\\\"b\\\\c\"");
    FP_CHECK_STR(json_string(&b, "\b\f\n\r\t", 5), "\"\\b\\f\\n\\r\\t\"");
    FP_CHECK_STR(json_string(&b, "\x01\x1f\x7f/", 4), "\"\\u0001\\u001f\x7f/\"");
    FP_CHECK_STR(json_string(&b, "nul\0byte", 8), "\"nul\\u0000byte\"");
    /* Escapes at both ends and many in a row exercise the growth inside the string. */
    FP_CHECK_STR(json_string(&b, "\x02\x02\x02\x02\x02\x02\x02\x02", 8),
                 "\"\\u0002\\u0002\\u0002\\u0002\\u0002\\u0002\\u0002\\u0002\"");
    fp_buf_free(&b);

    /* Appending keeps what was there. */
    fp_buf_init(&b);
    fp_buf_puts(&b, "[");
    FP_CHECK_INT(fp_json_put_string(&b, "x\n", 2), 0);
    FP_CHECK_STR(fp_buf_cstr(&b), "[\"x\\n\"");
    fp_buf_free(&b);
}

/* fp_json_is_plain is true exactly for the strings fp_json_put_string copies unchanged: every
 * byte alone, and each byte in the middle of a longer plain string. */
FP_TEST(json_is_plain_agrees_with_put_string)
{
    fp_buf b;

    fp_buf_init(&b);
    FP_CHECK(fp_json_is_plain("", 0));
    for (int c = 0; c < 256; c++) {
        char one[1] = {(char)c};
        char quoted[3] = {'"', (char)c, '"'};
        bool unchanged;

        unchanged = strlen(json_string(&b, one, 1)) == 3 && memcmp(b.data, quoted, 3) == 0;
        if (fp_json_is_plain(one, 1) != unchanged)
            fp_test_fail(__FILE__, __LINE__, "byte 0x%02x: plain %d, copied unchanged %d", c,
                         fp_json_is_plain(one, 1), unchanged);
        /* The byte at every position of every length up to 20: word and byte paths alike. */
        for (size_t len = 1; len <= 20; len++)
            for (size_t at = 0; at < len; at++) {
                char text[20];

                memset(text, 'a', sizeof(text));
                text[at] = (char)c;
                if (fp_json_is_plain(text, len) != unchanged)
                    fp_test_fail(__FILE__, __LINE__, "byte 0x%02x at %zu of %zu: plain %d", c, at,
                                 len, fp_json_is_plain(text, len));
            }
    }
    FP_CHECK(fp_json_is_plain("abcdefghijklmnopq", 17));
    fp_buf_free(&b);
}

FP_TEST(json_string_utf8_valid)
{
    static const char *const valid[] = {
        "\xc3\x98",                 /* Ø */
        "\xe6\x9d\xb1\xe4\xba\xac", /* 東京 */
        "\xf0\x9f\x9a\x9c",         /* U+1F69C tractor */
        "\xc2\x80",                 /* U+0080, smallest two-byte */
        "\xe0\xa0\x80",             /* U+0800, smallest three-byte */
        "\xed\x9f\xbf",             /* U+D7FF, just below the surrogates */
        "\xee\x80\x80",             /* U+E000, just above them */
        "\xef\xbf\xbf",             /* U+FFFF */
        "\xf0\x90\x80\x80",         /* U+10000, smallest four-byte */
        "\xf4\x8f\xbf\xbf",         /* U+10FFFF, the largest code point */
        "K\303\270benhavn \xe6\x9d\xb1\xe4\xba\xac \xf0\x9f\x98\x80!",
    };
    fp_buf b;
    char expect[128];

    fp_buf_init(&b);
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        snprintf(expect, sizeof(expect), "\"%s\"", valid[i]);
        FP_CHECK_STR(json_string(&b, valid[i], strlen(valid[i])), expect);
    }
    fp_buf_free(&b);
}

FP_TEST(json_string_utf8_invalid)
{
#define FFFD "\xef\xbf\xbd"
    static const struct {
        const char *in;
        size_t len;
        const char *out;
    } cases[] = {
        {"\x80", 1, "\"" FFFD "\""}, /* lone continuation */
        {"a\xbf"
         "b",
         3, "\"a" FFFD "b\""},                                  /* lone continuation */
        {"\xc0\xaf", 2, "\"" FFFD FFFD "\""},                   /* overlong '/' */
        {"\xc1\xbf", 2, "\"" FFFD FFFD "\""},                   /* overlong */
        {"\xe0\x80\xaf", 3, "\"" FFFD FFFD FFFD "\""},          /* overlong three-byte */
        {"\xf0\x80\x80\xaf", 4, "\"" FFFD FFFD FFFD FFFD "\""}, /* overlong four-byte */
        {"\xed\xa0\x80", 3, "\"" FFFD FFFD FFFD "\""},          /* surrogate U+D800 */
        {"\xed\xbf\xbf", 3, "\"" FFFD FFFD FFFD "\""},          /* surrogate U+DFFF */
        {"\xf4\x90\x80\x80", 4, "\"" FFFD FFFD FFFD FFFD "\""}, /* above U+10FFFF */
        {"\xf5\x80\x80\x80", 4, "\"" FFFD FFFD FFFD FFFD "\""}, /* invalid lead */
        {"\xff", 1, "\"" FFFD "\""},
        {"\xfe\xfe", 2, "\"" FFFD FFFD "\""},
        {"\xe6\x9d", 2, "\"" FFFD "\""},       /* truncated at the end */
        {"\xf0\x9f\x9a", 3, "\"" FFFD "\""},   /* truncated at the end */
        {"\xe6\x9dx", 3, "\"" FFFD "x\""},     /* cut short by ASCII */
        {"\xe6\x9d\"", 3, "\"" FFFD "\\\"\""}, /* cut short by a quote */
        {"\xc3"
         "\xc3\x98",
         3, "\"" FFFD "\xc3\x98\""},              /* cut short by a new lead */
        {"\xf0\x9f\x9a\n", 4, "\"" FFFD "\\n\""}, /* cut short by a control char */
        {"ok\xe6\x9d\xb1\xe4\xba", 7, "\"ok\xe6\x9d\xb1" FFFD "\""},
    };
#undef FFFD
    fp_buf b;

    fp_buf_init(&b);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        FP_CHECK_STR(json_string(&b, cases[i].in, cases[i].len), cases[i].out);
    fp_buf_free(&b);
}

FP_TEST(json_string_fuzz)
{
    /* Whatever the input bytes, the output is one valid JSON string (cJSON reads it back) and
     * is valid UTF-8: writing the decoded text again reproduces the same JSON exactly. */
    uint64_t state = 0x9e3779b97f4a7c15ULL;
    fp_buf b, again;

    fp_buf_init(&b);
    fp_buf_init(&again);
    for (int iter = 0; iter < 20000; iter++) {
        char in[48];
        size_t len = next_random(&state) % sizeof(in);
        cJSON *parsed;

        for (size_t i = 0; i < len; i++) {
            uint64_t r = next_random(&state);
            /* Mostly high bytes, to make multi-byte sequences likely; no NUL, which cJSON
             * would cut the decoded string at. */
            in[i] = (char)(r % 4 == 0 ? 1 + (r >> 8) % 127 : 0x80 | ((r >> 8) & 0x7f));
            if (r % 16 == 1)
                in[i] = (char)(0xc2 + (r >> 16) % 0x33);
        }
        json_string(&b, in, len);
        parsed = cJSON_ParseWithLength(b.data, b.len);
        if (!cJSON_IsString(parsed)) {
            fp_test_fail(__FILE__, __LINE__, "iteration %d: not a JSON string: %s", iter,
                         fp_buf_cstr(&b));
            cJSON_Delete(parsed);
            break;
        }
        fp_buf_clear(&again);
        FP_CHECK_INT(fp_json_put_string(&again, parsed->valuestring, strlen(parsed->valuestring)),
                     0);
        if (again.len != b.len || memcmp(again.data, b.data, b.len) != 0) {
            fp_test_fail(__FILE__, __LINE__, "iteration %d: output is not a fixed point", iter);
            cJSON_Delete(parsed);
            break;
        }
        cJSON_Delete(parsed);
    }
    fp_buf_free(&b);
    fp_buf_free(&again);
}

/* The inline path of fp_json_put_double (integral values, a buffer with room) writes what the
 * general path writes, for the edges of its test and for random values of every magnitude. */
FP_TEST(json_double_inline_path_agrees_with_general)
{
    static const double edges[] = {0.0,
                                   -0.0,
                                   1.0,
                                   -1.0,
                                   9007199254740991.0,
                                   -9007199254740991.0,
                                   9007199254740992.0,
                                   -9007199254740992.0,
                                   9007199254740994.0,
                                   -9223372036854775808.0,
                                   9223372036854775808.0,
                                   1e300,
                                   -1e300,
                                   0.5,
                                   -7.25,
                                   1e-5,
                                   4503599627370495.5,
                                   123456789.0};
    uint64_t state = 0x9e3779b97f4a7c15u;
    fp_buf room, fresh;

    fp_buf_init(&room);
    fp_buf_init(&fresh);
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]) + 200000; i++) {
        double v;

        if (i < sizeof(edges) / sizeof(edges[0])) {
            v = edges[i];
        } else {
            uint64_t bits = next_random(&state);

            switch (i % 4) {
            case 0: /* any bit pattern, NaN and infinities included */
                memcpy(&v, &bits, sizeof(v));
                break;
            case 1: /* integers of every width up to 2^63, both signs */
                v = (double)(int64_t)(bits >> (bits % 64));
                break;
            case 2:
                v = -(double)(bits >> 11 >> (bits % 53));
                break;
            default: /* a decimal like the devices' */
                v = (double)(int64_t)(bits % 2000000001) / 1000.0 - 1000000.0;
                break;
            }
        }
        fp_buf_clear(&room);
        FP_CHECK_INT(fp_buf_reserve(&room, 64), 0);
        FP_CHECK_INT(fp_json_put_double(&room, v), 0);
        fp_buf_free(&fresh);
        fp_buf_init(&fresh);
        FP_CHECK_INT(fp_json_put_double_any(&fresh, v), 0);
        if (strcmp(fp_buf_cstr(&room), fp_buf_cstr(&fresh)) != 0) {
            fp_test_fail(__FILE__, __LINE__, "%.17g: inline \"%s\", general \"%s\"", v,
                         fp_buf_cstr(&room), fp_buf_cstr(&fresh));
            break;
        }
    }
    fp_buf_free(&room);
    fp_buf_free(&fresh);
}

FP_TEST(json_double_text)
{
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {0.0, "0"},
        {-0.0, "0"},
        {1.0, "1"},
        {-1.0, "-1"},
        {24310.0, "24310"},
        {1532006.0, "1532006"},
        {9007199254740991.0, "9007199254740991"}, /* 2^53 - 1 */
        {-9007199254740991.0, "-9007199254740991"},
        {24.31, "24.31"},
        {55.6761234, "55.6761234"},
        {12.5683371, "12.5683371"},
        {-33.8688197, "-33.8688197"},
        {-0.5, "-0.5"},
        {0.1, "0.1"},
        {0.3, "0.3"},
        {0.0001234, "0.0001234"},
        {0.0000001, "1e-07"}, /* shorter than 0.0000001 */
        {0.00001, "1e-05"},
        {123456789.1234567, "123456789.1234567"},
        {999999999.9999999, "999999999.9999999"},
        {1.0 / 3.0, "0.3333333333333333"},
        {0.1 + 0.2, "0.30000000000000004"},
        {2.0 / 3.0 * 1e9, "666666666.6666666"},
        {1e-8, "1e-08"},
        {1.5e-10, "1.5e-10"},
        {1e20, "1e+20"},
        {9007199254740992.0, "9007199254740992"}, /* 2^53 itself: exponent-free via %g */
        {1e300, "1e+300"},
        {-2.5e15 - 0.5, "-2500000000000000.5"},
    };
    fp_buf b;

    fp_buf_init(&b);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        FP_CHECK_STR(json_double(&b, cases[i].v), cases[i].text);
    }
    FP_CHECK_STR(json_double(&b, NAN), "null");
    FP_CHECK_STR(json_double(&b, INFINITY), "null");
    FP_CHECK_STR(json_double(&b, -INFINITY), "null");
    fp_buf_free(&b);
}

/* True when text is a JSON number (RFC 8259 section 6). */
static bool is_json_number(const char *p)
{
    if (*p == '-')
        p++;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (*p >= '0' && *p <= '9')
            p++;
    } else {
        return false;
    }
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9'))
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return *p == '\0';
}

/* Length of the shortest of %.15g/%.16g/%.17g that round-trips (the general path). */
static size_t general_len(double v)
{
    char tmp[40];
    int n = 0;

    for (int p = 15; p <= 17; p++) {
        n = snprintf(tmp, sizeof(tmp), "%.*g", p, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    return (size_t)n;
}

FP_TEST(json_double_round_trip)
{
    uint64_t state = 0x2545f4914f6cdd1dULL;
    fp_buf b;

    fp_buf_init(&b);
    for (int iter = 0; iter < 300000; iter++) {
        uint64_t r = next_random(&state);
        double v;
        const char *text;

        switch (iter % 4) {
        case 0: /* any bit pattern */
            memcpy(&v, &r, sizeof(v));
            break;
        case 1: /* a coordinate with 7 decimals, the common case */
            v = (double)(int64_t)(r % 3600000001ULL - 1800000000LL) / 1e7;
            break;
        case 2: /* a sensor value with a few decimals */
            v = (double)(int64_t)(r % 20000001ULL - 10000000LL) / (double)(1 + r % 1000);
            break;
        default: /* a value near the fast path's limit */
            v = (double)(r >> 11) / 9007199254740992.0 * 2e9 - 1e9;
            break;
        }
        text = json_double(&b, v);
        if (!isfinite(v)) {
            FP_CHECK_STR(text, "null");
            continue;
        }
        if (!is_json_number(text) || strtod(text, NULL) != v) {
            fp_test_fail(__FILE__, __LINE__, "%.17g written as \"%s\"", v, text);
            break;
        }
        /* The fast path must never be longer than the general one. */
        if (v != trunc(v) && b.len > general_len(v)) {
            fp_test_fail(__FILE__, __LINE__, "%.17g written as \"%s\", longer than %%g", v, text);
            break;
        }
    }
    fp_buf_free(&b);
}

FP_TEST(json_key)
{
    fp_buf b;

    fp_buf_init(&b);
    FP_CHECK_INT(fp_json_put_key(&b, "lat"), 0);
    FP_CHECK_INT(fp_json_put_double(&b, 55.5), 0);
    FP_CHECK_INT(fp_buf_putc(&b, ','), 0);
    FP_CHECK_INT(fp_json_put_key(&b, ""), 0);
    FP_CHECK_INT(fp_buf_putc(&b, '1'), 0);
    FP_CHECK_STR(fp_buf_cstr(&b), "\"lat\":55.5,\"\":1");
    fp_buf_free(&b);
}

/* The digit writer at every length boundary, and put_u64/put_i64 both with room to spare and
 * with a buffer that must grow by exactly the digits. */
FP_TEST(buf_digits_at_boundaries)
{
    uint64_t values[200];
    size_t n = 0;
    fp_buf b;

    for (uint64_t p = 1;; p *= 10) {
        values[n++] = p - 1;
        values[n++] = p;
        values[n++] = p + 1;
        if (p > UINT64_MAX / 10)
            break;
    }
    for (int bit = 0; bit < 64; bit++) {
        values[n++] = (uint64_t)1 << bit;
        values[n++] = ((uint64_t)1 << bit) - 1;
    }
    values[n++] = UINT64_MAX;
    values[n++] = (uint64_t)INT64_MIN;

    fp_buf_init(&b);
    for (size_t i = 0; i < n; i++) {
        char want[32], got[24];
        size_t len;

        snprintf(want, sizeof(want), "%llu", (unsigned long long)values[i]);
        memset(got, '#', sizeof(got));
        len = fp_buf_format_u64(got, values[i]);
        FP_CHECK_INT(len, strlen(want));
        FP_CHECK_INT(fp_buf_dec_len(values[i]), strlen(want));
        FP_CHECK_MEM(got, len, want);
        FP_CHECK(got[len] == '#'); /* nothing written beyond the digits */

        /* A fresh buffer has no room, so the slow path reserves exactly the digits. */
        fp_buf_free(&b);
        FP_CHECK_INT(fp_buf_put_u64(&b, values[i]), 0);
        FP_CHECK_STR(fp_buf_cstr(&b), want);
        fp_buf_clear(&b);
        FP_CHECK_INT(fp_buf_put_i64(&b, (int64_t)values[i]), 0);
        snprintf(want, sizeof(want), "%lld", (long long)(int64_t)values[i]);
        FP_CHECK_STR(fp_buf_cstr(&b), want);
    }
    fp_buf_free(&b);
}

/* Writes the JSON escape of byte c the simple way, for the test below. */
static void escape_simply(fp_buf *b, unsigned char c)
{
    switch (c) {
    case '"':
        fp_buf_puts(b, "\\\"");
        break;
    case '\\':
        fp_buf_puts(b, "\\\\");
        break;
    case '\n':
        fp_buf_puts(b, "\\n");
        break;
    case '\t':
        fp_buf_puts(b, "\\t");
        break;
    case 0xff:
        fp_buf_puts(b, "\xef\xbf\xbd"); /* not UTF-8: U+FFFD */
        break;
    default:
        if (c < 0x20)
            fp_buf_printf(b, "\\u%04x", c);
        else
            fp_buf_putc(b, (char)c);
        break;
    }
}

/* The word-at-a-time fast path of fp_json_put_string and fp_json_utf8_valid must notice a
 * byte that needs attention at any position of a word, and at the end of the string. */
FP_TEST(json_string_special_byte_at_every_position)
{
    static const unsigned char specials[] = {'"', '\\', '\n', '\t', 0x01, 0x1f, 0x7f, 0xff, 0x80};
    char s[48];
    fp_buf b, want;

    fp_buf_init(&b);
    fp_buf_init(&want);
    for (size_t len = 1; len <= 40; len++) {
        for (size_t at = 0; at < len; at++) {
            for (size_t k = 0; k < sizeof(specials); k++) {
                size_t bad = 0;
                bool valid;

                for (size_t i = 0; i < len; i++)
                    s[i] = (char)('a' + i % 26);
                s[at] = (char)specials[k];
                fp_buf_clear(&want);
                fp_buf_putc(&want, '"');
                fp_buf_append(&want, s, at);
                escape_simply(&want, specials[k] == 0x80 ? 0xff : specials[k]);
                fp_buf_append(&want, s + at + 1, len - at - 1);
                fp_buf_putc(&want, '"');
                FP_CHECK_STR(json_string(&b, s, len), fp_buf_cstr(&want));

                valid = fp_json_utf8_valid(s, len, &bad);
                FP_CHECK(valid == (specials[k] < 0x80));
                if (!valid)
                    FP_CHECK_INT(bad, at);
            }
        }
        /* And the plain string of this length, which takes the fast path alone. */
        for (size_t i = 0; i < len; i++)
            s[i] = (char)('A' + i % 26);
        fp_buf_clear(&want);
        fp_buf_putc(&want, '"');
        fp_buf_append(&want, s, len);
        fp_buf_putc(&want, '"');
        FP_CHECK_STR(json_string(&b, s, len), fp_buf_cstr(&want));
    }
    fp_buf_free(&want);
    fp_buf_free(&b);
}

/* The fixed-point text by the general rule: the fewest fraction digits k (1..7) whose candidate
 * v * 10^k, rounded half up, reads back as v. Returns the text length, 0 when no k does. */
static size_t fixed_by_trying_every_k(double v, char *out, size_t size)
{
    static const double pow10[8] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7};
    double mag = fabs(v);

    for (int k = 1; k <= 7; k++) {
        uint64_t n = (uint64_t)(mag * pow10[k] + 0.5);
        uint64_t scale = (uint64_t)pow10[k];
        int len;

        if ((double)n / pow10[k] != mag)
            continue;
        len = snprintf(out, size, "%s%llu.%0*llu", v < 0 ? "-" : "",
                       (unsigned long long)(n / scale), k, (unsigned long long)(n % scale));
        return len > 0 && (size_t)len < size ? (size_t)len : 0;
    }
    return 0;
}

/* Below 2^20 fp_json_put_double decides the fraction digits from one candidate instead of
 * trying every k; the text must be exactly what trying every k gives, on both sides of 2^20. */
FP_TEST(json_double_one_candidate_below_2_pow_20)
{
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {1048575.5, "1048575.5"},
        {1048576.5, "1048576.5"},
        {1048575.1234567, "1048575.1234567"},
        {1048576.1234567, "1048576.1234567"},
        {0.0001, "0.0001"},
        {-0.0001234, "-0.0001234"},
        {0.1000001, "0.1000001"},
        {24.484, "24.484"},
        {-12.3, "-12.3"},
        {4364.17, "4364.17"},
    };
    static const double pow10[8] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7};
    uint64_t state = 0x9e3779b97f4a7c15ULL;
    fp_buf b;

    fp_buf_init(&b);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        FP_CHECK_STR(json_double(&b, cases[i].v), cases[i].text);
    for (int iter = 0; iter < 300000; iter++) {
        uint64_t r = next_random(&state);
        int k = 1 + (int)(r % 7);
        char want[64];
        double v;
        size_t n;

        switch (iter % 3) {
        case 0: /* a decimal with k digits below 2^21 */
            v = (double)((r >> 8) % (uint64_t)(2097152.0 * pow10[k])) / pow10[k];
            break;
        case 1: /* its neighbour, which usually needs the general path */
            v = (double)((r >> 8) % (uint64_t)(2097152.0 * pow10[k])) / pow10[k];
            v = nextafter(v, (r & 1) != 0 ? HUGE_VAL : 0);
            break;
        default: /* any value below 2^21 */
            v = (double)(r >> 11) / 9007199254740992.0 * 2097152.0;
            break;
        }
        if ((r & 2) != 0)
            v = -v;
        if (v == trunc(v) || fabs(v) < 1e-4)
            continue;
        n = fixed_by_trying_every_k(v, want, sizeof(want));
        /* Without a fixed-point text the general one is expected. */
        for (int p = 15; n == 0 && p <= 17; p++) {
            snprintf(want, sizeof(want), "%.*g", p, v);
            if (strtod(want, NULL) == v)
                break;
        }
        if (strcmp(json_double(&b, v), want) != 0) {
            fp_test_fail(__FILE__, __LINE__, "%.17g written as \"%s\", expected \"%s\"", v,
                         fp_buf_cstr(&b), want);
            break;
        }
    }
    fp_buf_free(&b);
}

FP_TEST(buf_format_u64_width)
{
    static const struct {
        uint64_t v;
        size_t width;
        const char *text;
    } cases[] = {
        {0, 1, "0"},
        {7, 3, "007"},
        {1234567, 7, "1234567"},
        {1234567, 4, "4567"}, /* only the last `width` digits */
        {5, 7, "0000005"},
        {10, 2, "10"},
        {UINT64_MAX, 20, "18446744073709551615"},
        {(uint64_t)INT64_MAX, 19, "9223372036854775807"},
        {(uint64_t)INT64_MIN, 20, "09223372036854775808"},
    };
    uint64_t state = 0x6a09e667f3bcc908ULL;
    char got[32];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(got, '#', sizeof(got));
        fp_buf_format_u64_width(got, cases[i].v, cases[i].width);
        FP_CHECK_MEM(got, cases[i].width, cases[i].text);
        FP_CHECK(got[cases[i].width] == '#'); /* nothing written beyond the digits */
    }
    /* Width 0 writes nothing at all. */
    memset(got, '#', sizeof(got));
    fp_buf_format_u64_width(got, 42, 0);
    FP_CHECK(got[0] == '#');
    for (int iter = 0; iter < 100000; iter++) {
        uint64_t v = next_random(&state);
        size_t width = 1 + (size_t)(v % 19);
        uint64_t mod = 1;
        char want[32];

        for (size_t k = 0; k < width; k++)
            mod *= 10;
        v >>= (v >> 58) & 63; /* values of every magnitude */
        snprintf(want, sizeof(want), "%0*llu", (int)width, (unsigned long long)(v % mod));
        memset(got, '#', sizeof(got));
        fp_buf_format_u64_width(got, v, width);
        if (memcmp(got, want, width) != 0 || got[width] != '#') {
            fp_test_fail(__FILE__, __LINE__, "%llu width %zu: \"%.*s\", expected \"%s\"",
                         (unsigned long long)v, width, (int)width, got, want);
            break;
        }
    }
}

/* fp_json_put_double's text by its documented rule, written the simple way: null for NaN and
 * infinities; an integer below 2^53 as one; the fewest fraction digits (up to 7) that read back
 * for 1e-4 <= |v| < 1e9; otherwise the shortest of %.15g, %.16g, %.17g that reads back. */
static const char *double_by_the_rule(double v, char *out, size_t size)
{
    if (!isfinite(v)) {
        snprintf(out, size, "null");
    } else if (fabs(v) < 9007199254740992.0 && v == trunc(v)) {
        snprintf(out, size, "%lld", (long long)v);
    } else if (!(fabs(v) >= 1e-4 && fabs(v) < 1e9) || fixed_by_trying_every_k(v, out, size) == 0) {
        for (int p = 15; p <= 17; p++) {
            snprintf(out, size, "%.*g", p, v);
            if (strtod(out, NULL) == v)
                break;
        }
    }
    return out;
}

/* The whole double formatter against the rule above, at edge values and at random. */
FP_TEST(json_double_matches_the_rule)
{
    static const double edges[] = {
        0.0,
        -0.0,
        1.0,
        -1.0,
        9007199254740991.0,
        9007199254740992.0,
        -9007199254740993.0,
        9223372036854775807.0, /* INT64_MAX rounds to 2^63 */
        -9223372036854775808.0,
        18446744073709551615.0, /* UINT64_MAX rounds to 2^64 */
        DBL_MAX,
        -DBL_MAX,
        DBL_MIN,
        DBL_TRUE_MIN, /* the smallest subnormal */
        -DBL_TRUE_MIN,
        2.2250738585072009e-308, /* the largest subnormal */
        1e-4,
        0.99999999e-4,
        999999999.9999999,
        1e9,
        1e9 + 0.5,
        1e21,
        1.5e-7,
        6.02214076e23,
        -1.602176634e-19,
        0.1,
        1048576.0000001,
        55.5754196,
        24.484,
        NAN,
        INFINITY,
        -INFINITY,
    };
    uint64_t state = 0xbb67ae8584caa73bULL;
    char want[64];
    fp_buf b;

    fp_buf_init(&b);
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
        FP_CHECK_STR(json_double(&b, edges[i]), double_by_the_rule(edges[i], want, sizeof(want)));
    for (int iter = 0; iter < 200000; iter++) {
        uint64_t r = next_random(&state);
        double v;

        switch (iter % 3) {
        case 0: /* any bit pattern, subnormals, NaNs and infinities included */
            memcpy(&v, &r, sizeof(v));
            break;
        case 1: /* a decimal with up to 7 fraction digits, as devices report */
            v = (double)(int64_t)(r % 20000000001ULL - 10000000000LL) / (double)(1u << (r >> 61)) /
                1e3;
            break;
        default: /* a scaled sensor value */
            v = (double)(r % 100000000ULL) / (double)(1 + (r >> 40) % 1000);
            break;
        }
        if (strcmp(json_double(&b, v), double_by_the_rule(v, want, sizeof(want))) != 0) {
            fp_test_fail(__FILE__, __LINE__, "%.17g written as \"%s\", expected \"%s\"", v,
                         fp_buf_cstr(&b), want);
            break;
        }
    }
    fp_buf_free(&b);
}

/* Multi-byte UTF-8 passes through unchanged wherever it sits, in particular in the last word of
 * a string, which fp_json_put_string tests as one overlapping word; an ill-formed sequence there
 * is still replaced. */
FP_TEST(json_string_utf8_in_the_last_word)
{
    static const char *const seqs[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x9a\x9c"};
    char s[48];
    fp_buf b, want;

    fp_buf_init(&b);
    fp_buf_init(&want);
    for (size_t len = 8; len <= 24; len++) {
        for (size_t k = 0; k < sizeof(seqs) / sizeof(seqs[0]); k++) {
            size_t n = strlen(seqs[k]);

            for (size_t at = 0; at + n <= len; at++) {
                for (size_t i = 0; i < len; i++)
                    s[i] = (char)('a' + i % 26);
                memcpy(s + at, seqs[k], n);
                fp_buf_clear(&want);
                fp_buf_putc(&want, '"');
                fp_buf_append(&want, s, len);
                fp_buf_putc(&want, '"');
                FP_CHECK_STR(json_string(&b, s, len), fp_buf_cstr(&want));
            }
            /* The sequence cut short by the end of the string: one U+FFFD for what is there. */
            for (size_t i = 0; i < len; i++)
                s[i] = (char)('a' + i % 26);
            memcpy(s + len - (n - 1), seqs[k], n - 1);
            fp_buf_clear(&want);
            fp_buf_putc(&want, '"');
            fp_buf_append(&want, s, len - (n - 1));
            fp_buf_puts(&want, "\xef\xbf\xbd\"");
            FP_CHECK_STR(json_string(&b, s, len), fp_buf_cstr(&want));
        }
    }
    fp_buf_free(&want);
    fp_buf_free(&b);
}
