/* fp_json: the primitives of fast JSON writing into an fp_buf (no cJSON tree is built; these
 * return 0, or -1 when memory runs out), and the checks of JSON text that cJSON does not make:
 * UTF-8, U+0000 in strings and member names given twice. */
#ifndef FP_JSON_H
#define FP_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/fp_buf.h"

/* Appends `s` (len bytes of UTF-8) as a quoted JSON string. Escapes '"', '\\' and control
 * characters (\b \f \n \r \t, others as \u00XX). Bytes that are not valid UTF-8 are replaced by
 * U+FFFD so that the output is always valid JSON and valid UTF-8. */
int fp_json_put_string(fp_buf *b, const char *s, size_t len);

/* Returns true when fp_json_put_string writes s[0..len) unchanged between its quotes: every
 * byte is ASCII from 0x20 up, other than '"' and '\\'. */
bool fp_json_is_plain(const char *s, size_t len);

/* Returns true when s[0..len) is well-formed UTF-8 (JSON text must be). Otherwise returns
 * false and, when bad_at is not NULL, sets it to the offset of the first ill-formed byte. */
bool fp_json_utf8_valid(const char *s, size_t len, size_t *bad_at);

/* Returns true when the JSON text s[0..len) holds U+0000: a raw NUL byte or the escape \u0000
 * (PostgreSQL's text and jsonb refuse it, and cJSON silently cuts a string there). Then *at,
 * when not NULL, is the offset of the first one. An escaped backslash followed by "u0000" is
 * text, not U+0000. */
bool fp_json_find_nul(const char *s, size_t len, size_t *at);

/* A member name (or any key) as bytes. */
typedef struct fp_json_key {
    const char *s;
    size_t len;
} fp_json_key;

/* Returns true when two of the n keys are equal, and then sets *repeated (when not NULL) to one
 * of them. May reorder the keys (it sorts them when there are many, so the time is O(n log n)
 * whatever the input). Never fails. */
bool fp_json_find_repeated_key(fp_json_key *keys, size_t n, fp_json_key *repeated);

/* fp_json_put_double for any value (the inline function below calls it for all but the
 * integral values it writes itself). */
int fp_json_put_double_any(fp_buf *b, double v);

/* Appends a double: integral values with |v| < 2^53 as integers ("24310"; -0.0 as "0"), others
 * in the shortest form that reads back to the same double ("24.31", "55.6761234"). NaN and
 * infinities (not representable in JSON) are written as null. About half of what the encoders
 * write is integral; those are done inline, without the calls of the general path. */
static inline int fp_json_put_double(fp_buf *b, double v)
{
    /* Below 2^53 the conversion to int64_t is exact for an integral v, which makes it the
     * integer test; NaN fails the first comparison. A sign and 20 digits fit in the room. */
    if (b->cap - b->len > 22 && __builtin_fabs(v) < 9007199254740992.0 && (double)(int64_t)v == v) {
        int64_t i = (int64_t)v;
        char *p = b->data + b->len;

        if (i < 0) {
            *p++ = '-';
            b->len++;
        }
        b->len += fp_buf_format_u64(p, i < 0 ? 0 - (uint64_t)i : (uint64_t)i);
        return 0;
    }
    return fp_json_put_double_any(b, v);
}

/* Appends "key": with the key quoted (the key must not need escaping). */
int fp_json_put_key(fp_buf *b, const char *key);

#endif
