/* fp_buf: a growable byte buffer. Used for JSON encoding, COPY rows and HTTP bodies.
 *
 * The buffer always keeps one spare byte so that fp_buf_cstr can NUL-terminate without
 * growing. A buffer whose allocation failed keeps its old contents and reports -1. */
#ifndef FP_BUF_H
#define FP_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct fp_buf {
    char *data;
    size_t len;
    size_t cap;
} fp_buf;

/* A zeroed fp_buf is a valid empty buffer. */
void fp_buf_init(fp_buf *b);
void fp_buf_free(fp_buf *b); /* accepts NULL */

/* The offset of the first occurrence of s[0..n) in b's bytes at or after `from`, or SIZE_MAX
 * when there is none (or n is 0). */
size_t fp_buf_find(const fp_buf *b, size_t from, const char *s, size_t n);
static inline void fp_buf_clear(fp_buf *b)
{
    b->len = 0;
}

/* Makes room for `extra` more bytes (plus the spare byte). Returns 0 or -1 on out of memory. */
int fp_buf_reserve(fp_buf *b, size_t extra);

/* Appends bytes. Return 0 or -1 on out of memory (the buffer is then unchanged). */
int fp_buf_append(fp_buf *b, const void *data, size_t len);
int fp_buf_puts(fp_buf *b, const char *s);
int fp_buf_putc(fp_buf *b, char c);
int fp_buf_printf(fp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends a signed/unsigned decimal integer. */
int fp_buf_put_i64(fp_buf *b, int64_t v);
int fp_buf_put_u64(fp_buf *b, uint64_t v);

/* The number of decimal digits of v (1 for 0). This function can't fail. */
size_t fp_buf_dec_len(uint64_t v);

/* 1 where a word-at-a-time scan may take a word's lowest byte as its first in memory (a
 * little-endian machine), else 0: the scans then run their byte loops instead. -DFP_BYTE_LOOPS
 * forces 0; the suite builds the unit tests and the record reader's fuzz harness that way too
 * (make BYTE_LOOPS=1), so the loops a big-endian machine runs are tested on this one. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && !defined(FP_BYTE_LOOPS)
#define FP_WORDS_LITTLE_ENDIAN 1
#else
#define FP_WORDS_LITTLE_ENDIAN 0
#endif

/* "00" to "99": writing two digits per step halves the divisions of decimal formatting. */
extern const char fp_buf_digit_pairs[200];

/* fp_buf_format_u64 for v > UINT32_MAX (call that one). */
size_t fp_buf_format_u64_wide(char *out, uint64_t v);

/* Writes the decimal digits of v to out, which must have room for 20 bytes, and returns how
 * many it wrote (fp_buf_dec_len(v)); nothing beyond them is touched and no NUL is added. For
 * writers that reserved the space themselves. This function can't fail. Numbers of 32 bits,
 * nearly all of what the encoders write, are done inline: a call per number cost more than the
 * digits of most of them. */
static inline size_t fp_buf_format_u64(char *out, uint64_t v)
{
    uint32_t x;
    size_t n;
    char *p;

    /* One and two digits, the commonest (flags, counts, IO ids), need no arithmetic. */
    if (v < 10) {
        out[0] = (char)('0' + v);
        return 1;
    }
    if (v < 100) {
        memcpy(out, fp_buf_digit_pairs + 2 * v, 2);
        return 2;
    }
    if (v > UINT32_MAX)
        return fp_buf_format_u64_wide(out, v);
    x = (uint32_t)v;
    /* Each comparison adds the digit that x has from that power of ten on. */
    n = 3 + (size_t)(x >= 1000) + (size_t)(x >= 10000) + (size_t)(x >= 100000) +
        (size_t)(x >= 1000000) + (size_t)(x >= 10000000) + (size_t)(x >= 100000000) +
        (size_t)(x >= 1000000000);
    p = out + n;
    while (x >= 100) {
        p -= 2;
        memcpy(p, fp_buf_digit_pairs + 2 * (x % 100), 2);
        x /= 100;
    }
    if (x >= 10)
        memcpy(p - 2, fp_buf_digit_pairs + 2 * x, 2);
    else
        p[-1] = (char)('0' + x);
    return n;
}

/* Writes the last `width` decimal digits of v to out (exactly width bytes, with leading zeros:
 * 7 of width 3 is "007"), for fraction digits. width 0 writes nothing. This function can't
 * fail. */
void fp_buf_format_u64_width(char *out, uint64_t v, size_t width);

/* NUL-terminates the contents (not counted in len) and returns them. Never fails: there is
 * always a spare byte, or a static empty string when nothing was ever allocated. */
const char *fp_buf_cstr(fp_buf *b);

#endif
