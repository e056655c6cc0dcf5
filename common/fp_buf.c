/* fp_buf: a growable byte buffer (see fp_buf.h for the contracts). */
#include "fp_buf.h"

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

/* Writes the decimal digits of v to out (room for 20) and returns how many there are. */
static size_t format_u64(uint64_t v, char *out)
{
    char rev[20];
    size_t n = 0;

    do {
        rev[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        out[i] = rev[n - 1 - i];
    return n;
}

int fp_buf_put_u64(fp_buf *b, uint64_t v)
{
    char text[20];
    size_t n = format_u64(v, text);

    return fp_buf_append(b, text, n);
}

int fp_buf_put_i64(fp_buf *b, int64_t v)
{
    char text[21];
    /* Negating in unsigned arithmetic is defined for INT64_MIN as well. */
    uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    size_t sign = v < 0 ? 1 : 0;

    text[0] = '-';
    return fp_buf_append(b, text, sign + format_u64(mag, text + sign));
}

const char *fp_buf_cstr(fp_buf *b)
{
    if (b->data == NULL)
        return "";
    /* fp_buf_reserve always leaves one byte beyond len. */
    b->data[b->len] = '\0';
    return b->data;
}
