/* fp_buf: a growable byte buffer (see fp_buf.h for the contracts). */
#include "common/fp_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The first allocation is small enough for a log line and large enough that a typical
 * canonical record needs at most one more doubling. */
#define FP_BUF_MIN_CAP 256

void fp_buf_init(fp_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void fp_buf_free(fp_buf *b)
{
    if (b == NULL)
        return;
    free(b->data);
    fp_buf_init(b);
}

int fp_buf_reserve(fp_buf *b, size_t extra)
{
    size_t need, cap;
    char *p;

    /* The spare byte for the NUL of fp_buf_cstr is part of every reservation. */
    if (extra > SIZE_MAX - 1 - b->len)
        return -1;
    need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;

    /* Doubling keeps appends amortised O(1); a request larger than the doubled size is
     * served exactly. */
    cap = b->cap < FP_BUF_MIN_CAP ? FP_BUF_MIN_CAP : b->cap;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    p = realloc(b->data, cap);
    if (p == NULL)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int fp_buf_append(fp_buf *b, const void *data, size_t len)
{
    if (len == 0)
        return 0;
    if (fp_buf_reserve(b, len) != 0)
        return -1;
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

int fp_buf_puts(fp_buf *b, const char *s)
{
    return fp_buf_append(b, s, strlen(s));
}

int fp_buf_putc(fp_buf *b, char c)
{
    if (fp_buf_reserve(b, 1) != 0)
        return -1;
    b->data[b->len++] = c;
    return 0;
}

int fp_buf_printf(fp_buf *b, const char *fmt, ...)
{
    va_list ap;
    size_t room;
    int n;

    /* Try to format into the free space first; most calls fit and need one pass. */
    room = b->cap > b->len ? b->cap - b->len : 0;
    va_start(ap, fmt);
    n = vsnprintf(room > 0 ? b->data + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n < room) {
        b->len += (size_t)n;
        return 0;
    }

    if (fp_buf_reserve(b, (size_t)n) != 0)
        return -1;
    va_start(ap, fmt);
    n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    b->len += (size_t)n;
    return 0;
}

const char fp_buf_digit_pairs[200] = "00010203040506070809"
                                     "10111213141516171819"
                                     "20212223242526272829"
                                     "30313233343536373839"
                                     "40414243444546474849"
                                     "50515253545556575859"
                                     "60616263646566676869"
                                     "70717273747576777879"
                                     "80818283848586878889"
                                     "90919293949596979899";

/* pow10_u64[t] is 10^t, except that entry 0 is 0 so that fp_buf_dec_len counts one digit for
 * 0 as well. */
static const uint64_t pow10_u64[20] = {0,
                                       10u,
                                       100u,
                                       1000u,
                                       10000u,
                                       100000u,
                                       1000000u,
                                       10000000u,
                                       100000000u,
                                       1000000000u,
                                       10000000000u,
                                       100000000000u,
                                       1000000000000u,
                                       10000000000000u,
                                       100000000000000u,
                                       1000000000000000u,
                                       10000000000000000u,
                                       100000000000000000u,
                                       1000000000000000000u,
                                       10000000000000000000u};

size_t fp_buf_dec_len(uint64_t v)
{
    /* v lies in [2^(bits-1), 2^bits), so it has t or t + 1 digits for t = floor(bits * log10 2)
     * (1233 / 4096 is close enough to log10 2 for bits <= 64); the comparison with 10^t settles
     * which. */
    unsigned bits = 64 - (unsigned)__builtin_clzll(v | 1);
    unsigned t = (bits * 1233) >> 12;

    return t + 1 - (v < pow10_u64[t]);
}

size_t fp_buf_format_u64_wide(char *out, uint64_t v)
{
    size_t n = fp_buf_dec_len(v);
    char *p = out + n;

    /* Two low digits a step until 32 bits are left: those are exactly the leading n - (out + n
     * - p) digits, which the 32-bit arithmetic writes. */
    while (v > UINT32_MAX) {
        p -= 2;
        memcpy(p, fp_buf_digit_pairs + 2 * (v % 100), 2);
        v /= 100;
    }
    fp_buf_format_u64(out, v);
    return n;
}

void fp_buf_format_u64_width(char *out, uint64_t v, size_t width)
{
    char *p = out + width;

    while (p - out >= 2) {
        p -= 2;
        memcpy(p, fp_buf_digit_pairs + 2 * (v % 100), 2);
        v /= 100;
    }
    if (p > out)
        *--p = (char)('0' + v % 10);
}

int fp_buf_put_u64(fp_buf *b, uint64_t v)
{
    /* With room for the longest number the digits go straight into the buffer; otherwise the
     * reservation is exactly what this number needs, as for any append. */
    if (b->cap - b->len <= 20 && fp_buf_reserve(b, fp_buf_dec_len(v)) != 0)
        return -1;
    b->len += fp_buf_format_u64(b->data + b->len, v);
    return 0;
}

int fp_buf_put_i64(fp_buf *b, int64_t v)
{
    /* Negating in unsigned arithmetic is defined for INT64_MIN as well. */
    uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    size_t sign = v < 0 ? 1 : 0;

    if (b->cap - b->len <= 21 && fp_buf_reserve(b, sign + fp_buf_dec_len(mag)) != 0)
        return -1;
    if (sign != 0)
        b->data[b->len++] = '-';
    b->len += fp_buf_format_u64(b->data + b->len, mag);
    return 0;
}

const char *fp_buf_cstr(fp_buf *b)
{
    if (b->data == NULL)
        return "";
    /* fp_buf_reserve always leaves one byte beyond len. */
    b->data[b->len] = '\0';
    return b->data;
}

size_t fp_buf_find(const fp_buf *b, size_t from, const char *s, size_t n)
{
    if (n == 0 || b->data == NULL || from > b->len || b->len - from < n)
        return SIZE_MAX;
    for (const char *p = b->data + from; (size_t)(p - b->data) <= b->len - n; p++) {
        p = memchr(p, s[0], b->len - n + 1 - (size_t)(p - b->data));
        if (p == NULL)
            return SIZE_MAX;
        if (memcmp(p, s, n) == 0)
            return (size_t)(p - b->data);
    }
    return SIZE_MAX;
}
