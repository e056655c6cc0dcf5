/* fp_json: fast JSON writing primitives (see fp_json.h for the contracts). */
#include "common/fp_json.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What fp_json_put_string must do with a byte: 0 copy it, 1 escape it (quote, backslash,
 * control characters), 2 start of a multi-byte sequence (or a stray byte) to validate. */
/* clang-format off */
static const unsigned char byte_class[256] = {
    /* 0x00..0x1f: control characters. */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x20..0x3f: '"' is 0x22. */
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x40..0x5f: '\\' is 0x5c. */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    /* 0x60..0x7f */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x80..0xff */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};
/* clang-format on */

static const char replacement_char[3] = {'\xef', '\xbf', '\xbd'}; /* U+FFFD */

#define ONE_BYTES 0x0101010101010101u
#define HIGH_BITS 0x8080808080808080u

/* Eight bytes as one word, in whatever byte order: the tests below look at every byte alike. */
static inline uint64_t load_word(const unsigned char *p)
{
    uint64_t w;

    memcpy(&w, p, sizeof(w));
    return w;
}

/* Nonzero when one of the eight bytes of w is not copied as it is by fp_json_put_string (its
 * byte_class is not 0): a control character, '"', '\\' or a byte >= 0x80. (x - ONE_BYTES * n) &
 * ~x & HIGH_BITS is nonzero exactly when some byte of x is below n (for n <= 0x80): a borrow
 * only starts at such a byte. */
static inline uint64_t special_bytes(uint64_t w)
{
    uint64_t quote = w ^ (ONE_BYTES * '"'), backslash = w ^ (ONE_BYTES * '\\');

    return (((w - ONE_BYTES * 0x20) & ~w) | ((quote - ONE_BYTES) & ~quote) |
            ((backslash - ONE_BYTES) & ~backslash) | w) &
           HIGH_BITS;
}

/* Returns the length of the well-formed UTF-8 sequence at s (at most `avail` bytes), or 0
 * when it is ill-formed; then *skip is the length of its maximal subpart (at least 1), which
 * is replaced by one U+FFFD as the Unicode standard recommends (Table 3-7). */
static size_t utf8_sequence(const unsigned char *s, size_t avail, size_t *skip)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    size_t need, i;

    if (c >= 0xc2 && c <= 0xdf) {
        need = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong below U+0800 */
        else if (c == 0xed)
            hi = 0x9f; /* surrogates U+D800..U+DFFF */
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong below U+10000 */
        else if (c == 0xf4)
            hi = 0x8f; /* beyond U+10FFFF */
    } else {
        /* Continuation bytes without a lead, 0xc0/0xc1 (always overlong) and 0xf5..0xff. */
        *skip = 1;
        return 0;
    }

    for (i = 1; i < need; i++) {
        unsigned char min = i == 1 ? lo : 0x80, max = i == 1 ? hi : 0xbf;

        if (i >= avail || s[i] < min || s[i] > max) {
            *skip = i;
            return 0;
        }
    }
    return need;
}

/* Appends the JSON escape of a byte that byte_class marks as 1. The caller reserved 6 bytes. */
static void put_escape(fp_buf *b, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    char *p = b->data + b->len;

    p[0] = '\\';
    switch (c) {
    case '"':
        p[1] = '"';
        b->len += 2;
        return;
    case '\\':
        p[1] = '\\';
        b->len += 2;
        return;
    case '\b':
        p[1] = 'b';
        b->len += 2;
        return;
    case '\f':
        p[1] = 'f';
        b->len += 2;
        return;
    case '\n':
        p[1] = 'n';
        b->len += 2;
        return;
    case '\r':
        p[1] = 'r';
        b->len += 2;
        return;
    case '\t':
        p[1] = 't';
        b->len += 2;
        return;
    default:
        p[1] = 'u';
        p[2] = '0';
        p[3] = '0';
        p[4] = hex[c >> 4];
        p[5] = hex[c & 0x0f];
        b->len += 6;
        return;
    }
}

bool fp_json_utf8_valid(const char *s, size_t len, size_t *bad_at)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        size_t seq, skip = 0;

        /* ASCII, nearly all of any JSON text, is checked a word at a time. */
        while (len - i >= 8 && (load_word(u + i) & HIGH_BITS) == 0)
            i += 8;
        if (i == len)
            break;
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        seq = utf8_sequence(u + i, len - i, &skip);
        if (seq == 0) {
            if (bad_at != NULL)
                *bad_at = i;
            return false;
        }
        i += seq;
    }
    return true;
}

/* The rest of fp_json_put_string once the fast path met a byte to escape or validate at s[i]:
 * the quote and s[0..i) are in the buffer already, which began at start_len. Kept out of line
 * so that the fast path, which nearly every string takes, needs few registers to save. */
static __attribute__((noinline)) int put_string_slow(fp_buf *b, const char *s, size_t len, size_t i,
                                                     size_t start_len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t run = i;

    while (i < len) {
        unsigned char cls = byte_class[u[i]];
        size_t seq, skip = 1;

        if (cls == 0) {
            i++;
            continue;
        }
        if (cls == 2) {
            seq = utf8_sequence(u + i, len - i, &skip);
            if (seq != 0) {
                i += seq;
                continue;
            }
        }
        /* Flush the plain bytes before this one, then write its escape or replacement. The
         * reserve covers the worst case of the rest, so the closing quote still fits. */
        if (i > run) {
            memcpy(b->data + b->len, s + run, i - run);
            b->len += i - run;
        }
        if (fp_buf_reserve(b, 6 + (len - i) + 1) != 0) {
            b->len = start_len;
            return -1;
        }
        if (cls == 1) {
            put_escape(b, u[i]);
            i++;
        } else {
            memcpy(b->data + b->len, replacement_char, sizeof(replacement_char));
            b->len += sizeof(replacement_char);
            i += skip;
        }
        run = i;
    }
    if (i > run) {
        memcpy(b->data + b->len, s + run, i - run);
        b->len += i - run;
    }
    b->data[b->len++] = '"';
    return 0;
}

int fp_json_put_string(fp_buf *b, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t start_len = b->len;
    size_t i = 0;

    /* Most strings need no escaping: reserve for the plain copy plus quotes up front and
     * grow only when an escape or a replacement makes the output longer than the input. */
    if (len > SIZE_MAX - 2 || (b->cap - b->len <= len + 2 && fp_buf_reserve(b, len + 2) != 0))
        return -1;
    b->data[b->len++] = '"';

    /* Fast path: copy the leading plain bytes a word at a time, and finish right away when
     * that is the whole string, as it is for nearly every name and identifier. */
    {
        char *dst = b->data + b->len;
        uint64_t w;

        while (len - i >= 8 && special_bytes(w = load_word(u + i)) == 0) {
            memcpy(dst + i, &w, sizeof(w));
            i += 8;
        }
        /* The last 1..7 bytes of a string of at least 8 are tested as the word that ends the
         * string (overlapping bytes already copied) rather than byte by byte. */
        if (i < len && len - i < 8 && len >= 8 && special_bytes(w = load_word(u + len - 8)) == 0) {
            memcpy(dst + len - 8, &w, sizeof(w));
            i = len;
        }
        while (i < len && byte_class[u[i]] == 0) {
            dst[i] = s[i];
            i++;
        }
        b->len += i;
        if (i == len) {
            b->data[b->len++] = '"';
            return 0;
        }
    }
    return put_string_slow(b, s, len, i, start_len);
}

bool fp_json_is_plain(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;

    /* A word at a time, the last one ending at the string's end (overlapping), as in
     * fp_json_put_string's fast path. */
    for (; len - i >= 8; i += 8)
        if (special_bytes(load_word(u + i)) != 0)
            return false;
    if (i < len && len >= 8)
        return special_bytes(load_word(u + len - 8)) == 0;
    for (; i < len; i++)
        if (byte_class[u[i]] != 0)
            return false;
    return true;
}

/* Writes the seven digits of v < 10^7, with leading zeros, and returns how many of them are
 * left once the trailing zeros are dropped (at least 1: v is not 0). out has room for 8 bytes
 * (the eighth is scratch). */
static inline size_t format_fraction7(char *out, uint32_t v)
{
    memcpy(out, fp_buf_digit_pairs + 2 * (v / 100000), 2);
    memcpy(out + 2, fp_buf_digit_pairs + 2 * (v / 1000 % 100), 2);
    memcpy(out + 4, fp_buf_digit_pairs + 2 * (v / 10 % 100), 2);
    out[6] = (char)('0' + v % 10);
#if FP_WORDS_LITTLE_ENDIAN
    {
        /* The digits as one word, '0' bytes made zero: the highest nonzero byte is the last
         * digit kept. The loop below would take a branch per trailing zero, which the varying
         * count makes hard to predict. */
        uint64_t w;

        out[7] = '0'; /* scratch, so that the word holds no byte left unwritten */
        memcpy(&w, out, sizeof(w));
        w ^= ONE_BYTES * '0';
        return (size_t)(63 - __builtin_clzll(w)) / 8 + 1;
    }
#else
    {
        size_t n = 7;

        while (out[n - 1] == '0')
            n--;
        return n;
    }
#endif
}

/* Powers of ten that are exact in a double. */
static const double pow10_exact[8] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7};
static const uint64_t pow10_int[8] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000};

/* 2^20: below it format_fixed needs only one candidate (see there). */
#define FIXED_ONE_CANDIDATE 1048576.0

/* Writes a non-integral v with k fraction digits when the decimal n / 10^k (n = v * 10^k
 * rounded) reads back as exactly v, for the smallest such k in 1..7. With the fewest fraction
 * digits the text is also the shortest that round-trips. Returns the text length, or 0 when no
 * such k exists (the caller then takes the general path). out holds at least 32 bytes. */
static size_t format_fixed(double v, char *out)
{
    double mag = fabs(v);
    int64_t n = 0;
    uint64_t ip;
    uint32_t fp;
    size_t len = 0;
    int k;

    /* |v| < 1e9 keeps n = v * 10^7 below 2^53, where every integer is exact. Below 1e-4 the
     * exponent form of %g is shorter ("1e-05" against "0.00001"), so the general path takes
     * those. */
    if (!(mag < 1e9 && mag >= 1e-4))
        return 0;
#if FLT_EVAL_METHOD != 0
    /* The proof below needs each operation rounded to double, which x87-style excess
     * precision does not give. */
    return 0;
#endif
    if (mag < FIXED_ONE_CANDIDATE) {
        /* Below 2^20 the candidate for k = 7 alone decides, and gives the same digits as the
         * loop below would. Doubles there lie at most 2^-33 apart, so no two multiples of
         * 10^-7 read back as the same v; and v * 10^k + 0.5 is computed within 0.003 of the
         * exact value, so each k's candidate lands on the decimal that reads back as v, if
         * there is one. Hence the loop's first success is that decimal without its trailing
         * zeros (dropped below), and when k = 7 fails every k fails. */
        k = 7;
        n = (int64_t)(mag * pow10_exact[k] + 0.5);
        if ((double)n / pow10_exact[k] != mag)
            return 0;
    } else {
        for (k = 1; k <= 7; k++) {
            /* A candidate only: rounding half up is cheaper than nearbyint, and the check
             * below rejects any candidate that does not reproduce v exactly. n < 2^63, so the
             * signed conversion (one instruction) gives the same integer as an unsigned one. */
            n = (int64_t)(mag * pow10_exact[k] + 0.5);
            /* Division of two exact doubles is correctly rounded, exactly like strtod's
             * reading of the decimal text, so this comparison proves the round trip. */
            if ((double)n / pow10_exact[k] == mag)
                break;
        }
        if (k > 7)
            return 0;
    }

    /* k is nearly always 7 here, and a constant divisor spares the division instruction. */
    ip = k == 7 ? (uint64_t)n / 10000000u : (uint64_t)n / pow10_int[k];
    fp = (uint32_t)((uint64_t)n - ip * pow10_int[k]);
    if (v < 0)
        out[len++] = '-';
    len += fp_buf_format_u64(out + len, ip);
    out[len++] = '.';
    /* The fraction is written as seven digits (k digits scaled by 10^(7 - k)), and the trailing
     * zeros go: the loop's k leaves none (a smaller k would have matched), the single
     * candidate's may. fp == 0 cannot happen for a non-integral v, so a digit stays. */
    return len + format_fraction7(out + len, fp * (uint32_t)pow10_int[7 - k]);
}

/* Writes the shortest of %.15g, %.16g and %.17g that reads back as v (%.17g always does).
 * Returns the text length; out holds at least 32 bytes. Like all of fleetpipe it assumes the
 * "C" locale (nobody calls setlocale), so that the decimal separator is '.'. */
static size_t format_general(double v, char *out)
{
    int n = 0;

    for (int precision = 15; precision <= 17; precision++) {
        n = snprintf(out, 32, "%.*g", precision, v);
        if (n > 0 && n < 32 && strtod(out, NULL) == v)
            break;
    }
    return n > 0 && n < 32 ? (size_t)n : 0;
}

/* Writes the text of fp_json_put_double into out (at least 32 bytes, possibly all used as
 * scratch space) and returns its length. */
static size_t format_double(double v, char *out)
{
    size_t n;

    if (!isfinite(v)) {
        memcpy(out, "null", 4);
        return 4;
    }
    /* 2^53: beyond it not every integer is a double, so integer text could mislead. Below it
     * the conversion to int64_t is exact for integral v, which makes it the integer test (and
     * cheaper than trunc); -0.0 is written as 0. */
    if (fabs(v) < 9007199254740992.0 && (double)(int64_t)v == v) {
        int64_t i = (int64_t)v;

        if (i < 0) {
            out[0] = '-';
            return 1 + fp_buf_format_u64(out + 1, 0 - (uint64_t)i);
        }
        return fp_buf_format_u64(out, (uint64_t)i);
    }
    n = format_fixed(v, out);
    if (n == 0)
        n = format_general(v, out);
    if (n == 0) {
        memcpy(out, "null", 4); /* unreachable: %.17g of a finite double fits */
        return 4;
    }
    return n;
}

int fp_json_put_double_any(fp_buf *b, double v)
{
    char text[32];
    size_t n;

    /* With room for 32 bytes the text is written straight into the buffer. Otherwise it goes
     * through a scratch copy, so that the buffer grows by exactly what the text needs. */
    if (b->cap - b->len > sizeof(text)) {
        b->len += format_double(v, b->data + b->len);
        return 0;
    }
    n = format_double(v, text);
    return fp_buf_append(b, text, n);
}

int fp_json_put_key(fp_buf *b, const char *key)
{
    size_t len = strlen(key);

    if (fp_buf_reserve(b, len + 3) != 0)
        return -1;
    b->data[b->len++] = '"';
    memcpy(b->data + b->len, key, len);
    b->len += len;
    b->data[b->len++] = '"';
    b->data[b->len++] = ':';
    return 0;
}

bool fp_json_find_nul(const char *s, size_t len, size_t *at)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\0' || (s[i] == '\\' && i + 5 < len && memcmp(s + i + 1, "u0000", 5) == 0)) {
            if (at != NULL)
                *at = i;
            return true;
        }
        /* The escaped character is skipped, so "\\\\u0000" stays a backslash and text. */
        if (s[i] == '\\')
            i++;
    }
    return false;
}

static int key_cmp(const void *a, const void *b)
{
    const fp_json_key *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = n > 0 ? memcmp(x->s, y->s, n) : 0;

    if (c != 0)
        return c;
    return x->len < y->len ? -1 : x->len > y->len ? 1 : 0;
}

static inline bool keys_equal(const fp_json_key *x, const fp_json_key *y)
{
    return x->len == y->len &&
           (x->len == 0 || (x->s[0] == y->s[0] && memcmp(x->s, y->s, x->len) == 0));
}

/* Up to this many keys are compared pair by pair: for the few members of a typical object that
 * is faster than sorting. */
#define PAIRWISE_MAX 16

bool fp_json_find_repeated_key(fp_json_key *keys, size_t n, fp_json_key *repeated)
{
    size_t found = SIZE_MAX;

    if (n <= PAIRWISE_MAX) {
        /* Equal keys have equal lengths and first bytes: comparing those first spares nearly
         * every call of memcmp. */
        for (size_t i = 1; i < n && found == SIZE_MAX; i++)
            for (size_t j = 0; j < i; j++)
                if (keys_equal(&keys[i], &keys[j])) {
                    found = i;
                    break;
                }
    } else {
        qsort(keys, n, sizeof(*keys), key_cmp);
        for (size_t i = 1; i < n && found == SIZE_MAX; i++)
            if (key_cmp(&keys[i], &keys[i - 1]) == 0)
                found = i;
    }
    if (found == SIZE_MAX)
        return false;
    if (repeated != NULL)
        *repeated = keys[found];
    return true;
}
