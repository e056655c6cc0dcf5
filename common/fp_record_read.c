/* fp_record_read: canonical JSON → fp_record in one pass over the text, without a cJSON tree
 * (fp_record_decode_json in fp_record.h). This is the decoder every service runs.
 *
 * Contract: exactly the reference decoder's (fp_record_decode.c, built on cJSON): the same texts
 * accepted, into records that encode to the same bytes, and the same texts refused with the
 * same error code and an equivalent message. The differential fuzzer
 * (tests/fuzz/fuzz_record_reader.c) holds the two together. What that takes:
 *
 * - The JSON grammar is cJSON's: every byte up to 0x20 is whitespace between tokens (only
 *   space, tab, CR and LF after the document), a UTF-8 byte order mark may open a text of five
 *   bytes or more, strings may hold raw control characters, numbers are what strtod reads from
 *   a leading '-' or digit ("01", "1.", "-.5" included), containers nest 1000 deep at most.
 * - Refusals are ranked as the reference finds them: invalid UTF-8, then a syntax error
 *   anywhere, then U+0000 anywhere, then a member named twice anywhere, then the schema's
 *   checks in the reference's order of fields (which need not be the text's), then
 *   fp_record_check. So the pass never stops at a schema error: it notes the best-ranked one
 *   and reads on, to find what would outrank it.
 * - Numbers are converted as strtod converts them (a short decimal exactly, as the correctly
 *   rounded quotient of two exact doubles; anything else through strtod itself), and IO values
 *   written as plain digits are read exactly as 64-bit integers.
 *
 * The record is reset first and is empty again after any failure. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fp_buf.h"
#include "common/fp_hash.h"
#include "common/fp_json.h"
#include "common/fp_record.h"
#include "common/fp_record_check.h"
#include "common/fp_record_internal.h"
#include "common/fp_time.h"

/* cJSON's CJSON_NESTING_LIMIT: a container deeper than this is a syntax error. */
#define NESTING_MAX 1000
/* 2^64 as a double, the first value beyond uint64_t. */
#define TWO_POW_64 18446744073709551616.0
/* Objects with up to this many members are checked for a repeated name pair by pair. */
#define PAIRWISE_MAX 8
/* Key references kept without allocating (members of all open objects together). */
#define LOCAL_KEYS 64

/* The order in which the reference checks the fields: of two schema errors the lower rank is
 * the one reported. Errors of one rank are reported in text order (IO elements, metrics). */
enum rank {
    RANK_ROOT = 0,
    RANK_SCHEMA = 10,
    RANK_DEVICE_ID = 20,
    RANK_TS = 30,
    RANK_RECEIVED_AT = 40,
    RANK_FORMAT = 50,
    RANK_PRIORITY = 60,
    RANK_EVENT_IO = 70,
    RANK_POSITION = 80, /* + 1 + the member's index in position_members */
    RANK_IO = 90,
    RANK_METRICS = 100,
    RANK_ENRICHMENT = 110, /* status 111, then each group and its members (group_rank) */
    RANK_NONE = 1000
};

/* The top-level members the schema knows, as bits of reader.seen. */
enum root_member {
    M_SCHEMA,
    M_DEVICE_ID,
    M_TS,
    M_RECEIVED_AT,
    M_FORMAT,
    M_PRIORITY,
    M_EVENT_IO,
    M_POSITION,
    M_IO,
    M_METRICS,
    M_ENRICHMENT,
    M_UNKNOWN
};

static const char *const root_names[M_UNKNOWN] = {"schema", "device_id", "ts",        "received_at",
                                                  "format", "priority",  "event_io",  "position",
                                                  "io",     "metrics",   "enrichment"};

static const char *const position_members[6] = {"lat",         "lon",       "alt_m",
                                                "heading_deg", "speed_kmh", "satellites"};
/* Where the five numbers among them live (satellites is an int). */
static const size_t position_offsets[5] = {
    offsetof(fp_position, lat), offsetof(fp_position, lon), offsetof(fp_position, alt_m),
    offsetof(fp_position, heading_deg), offsetof(fp_position, speed_kmh)};

typedef enum vtype { V_NULL, V_FALSE, V_TRUE, V_NUMBER, V_STRING, V_OBJECT, V_ARRAY } vtype;

/* A value as read: its type, and for a scalar what it holds. */
typedef struct value {
    vtype type;
    double num;      /* V_NUMBER */
    bool digits;     /* V_NUMBER written as plain digits that fit in uint64_t: then u holds it */
    uint64_t u;      /* see digits */
    const char *str; /* V_STRING: the decoded bytes (in the text or in reader.sbuf) */
    size_t len;
} value;

/* An object member's name: its decoded bytes, at `off` in the text or, when it held escapes, in
 * reader.kbuf (which may move as it grows, hence an offset). */
typedef struct key_ref {
    uint32_t off, len;
    bool in_kbuf;
} key_ref;

typedef struct reader {
    const char *text, *p, *end;
    fp_record *r;
    int depth;
    bool syntax; /* the text is not JSON: nothing else counts */
    size_t syntax_at;
    bool nul; /* U+0000 somewhere (first at nul_at) */
    size_t nul_at;
    bool dup; /* a member named twice (the message is in dup_msg) */
    char dup_msg[128];
    int rank; /* the best-ranked schema error so far (RANK_NONE: none), its code in msg */
    int code;
    char *msg;
    size_t msg_size;
    bool nomem;
    fp_buf sbuf; /* the last string value that held escapes, decoded */
    fp_buf kbuf; /* names with escapes of the open objects' members, decoded */
    key_ref local_keys[LOCAL_KEYS], *keys;
    size_t nkeys, cap_keys;
    unsigned seen;     /* root members met (bits of enum root_member) */
    unsigned pos_seen; /* position members met with a value (bits) */
    bool status_seen;  /* enrichment.status met as a string */
    int enrich_group;  /* the group being read: its index in enrich_groups */
} reader;

/* Notes a syntax error at p (the first one ends the pass). Returns -1. */
static int syntax_error(reader *rd, const char *p)
{
    if (!rd->syntax) {
        rd->syntax = true;
        rd->syntax_at = (size_t)(p - rd->text);
    }
    return -1;
}

static void note_nul(reader *rd, const char *p)
{
    if (!rd->nul) {
        rd->nul = true;
        rd->nul_at = (size_t)(p - rd->text);
    }
}

/* Notes a schema error of the given rank: it replaces the one noted unless that one ranks
 * before it (or equal: the earlier in the text wins). Never fails. */
static void schema_error(reader *rd, int rank, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void schema_error(reader *rd, int rank, int code, const char *fmt, ...)
{
    va_list ap;

    if (rank >= rd->rank)
        return;
    rd->rank = rank;
    rd->code = code;
    if (rd->msg != NULL && rd->msg_size > 0) {
        va_start(ap, fmt);
        if (vsnprintf(rd->msg, rd->msg_size, fmt, ap) < 0)
            rd->msg[0] = '\0';
        va_end(ap);
    }
}

static const char *key_bytes(const reader *rd, key_ref k)
{
    return (k.in_kbuf ? rd->kbuf.data : rd->text) + k.off;
}

/* Skips cJSON's whitespace (every byte up to 0x20), noting a NUL byte among it. */
static inline void skip_ws(reader *rd)
{
    const char *p = rd->p;

    /* Canonical text has no whitespace: most calls end at the first byte. */
    if (p < rd->end && (unsigned char)*p > 0x20)
        return;
    while (p < rd->end && (unsigned char)*p <= 0x20) {
        if (*p == '\0')
            note_nul(rd, p);
        p++;
    }
    rd->p = p;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads the four hex digits at p (p + 4 <= end checked by the caller). Returns the code unit,
 * or -1 when one is not a hex digit. */
static long hex4(const char *p)
{
    long v = 0;

    for (int i = 0; i < 4; i++) {
        int h = hex_value(p[i]);

        if (h < 0)
            return -1;
        v = v << 4 | h;
    }
    return v;
}

/* Appends code point cp as UTF-8. Returns 0 or -1 (out of memory). */
static int put_utf8(fp_buf *b, unsigned long cp)
{
    char u[4];
    size_t n;

    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return fp_buf_append(b, u, n);
}

/* Reads one escape at p (a backslash) into out (NULL: only checks it) and returns the byte
 * after it, or NULL on a syntax error. The escapes are cJSON's: \b \f \n \r \t \" \\ \/ and
 * \uXXXX, a high surrogate only with a low one after it. */
static const char *read_escape(reader *rd, const char *p, fp_buf *out)
{
    static const char plain[] = "bfnrt\"\\/";
    static const char decoded[] = "\b\f\n\r\t\"\\/";
    const char *e = rd->end, *hit;
    long cu, lo;

    if (e - p < 2) {
        syntax_error(rd, p);
        return NULL;
    }
    hit = p[1] != '\0' ? strchr(plain, p[1]) : NULL;
    if (hit != NULL) {
        if (out != NULL && fp_buf_putc(out, decoded[hit - plain]) < 0)
            rd->nomem = true;
        return p + 2;
    }
    if (p[1] != 'u' || e - p < 6 || (cu = hex4(p + 2)) < 0) {
        syntax_error(rd, p);
        return NULL;
    }
    if (cu >= 0xdc00 && cu <= 0xdfff) {
        syntax_error(rd, p);
        return NULL;
    }
    if (cu >= 0xd800 && cu <= 0xdbff) {
        if (e - p < 12 || p[6] != '\\' || p[7] != 'u' || (lo = hex4(p + 8)) < 0xdc00 ||
            lo > 0xdfff) {
            syntax_error(rd, p);
            return NULL;
        }
        cu = 0x10000 + ((cu - 0xd800) << 10) + (lo - 0xdc00);
        if (out != NULL && put_utf8(out, (unsigned long)cu) < 0)
            rd->nomem = true;
        return p + 12;
    }
    if (cu == 0)
        note_nul(rd, p);
    if (out != NULL && put_utf8(out, (unsigned long)cu) < 0)
        rd->nomem = true;
    return p + 6;
}

/* The bytes of w that are a quote, a backslash or NUL (those that end a string's plain run),
 * as their high bits. Each test ((x - 1) & ~x, bytewise) marks a zero byte exactly up to the
 * first one: the subtraction borrows into a byte's high bit only from a zero byte below it, and
 * ~x clears the high bit of every byte from 0x80 up. So the lowest mark is the first such byte. */
static inline uint64_t run_end_bytes(uint64_t w)
{
    const uint64_t ones = UINT64_C(0x0101010101010101), high = UINT64_C(0x8080808080808080);
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');

    return (((q - ones) & ~q) | ((b - ones) & ~b) | ((w - ones) & ~w)) & high;
}

/* Returns the first quote, backslash or NUL in [p, e), or e. */
static inline const char *plain_run_end(const char *p, const char *e)
{
#if FP_WORDS_LITTLE_ENDIAN
    /* Eight bytes at a time (all within the text): on a little-endian machine the lowest
     * marked byte is the first in memory. */
    while (e - p >= 8) {
        uint64_t w, m;

        memcpy(&w, p, sizeof(w));
        m = run_end_bytes(w);
        if (m != 0)
            return p + (__builtin_ctzll(m) >> 3);
        p += 8;
    }
#endif
    while (p < e && *p != '"' && *p != '\\' && *p != '\0')
        p++;
    return p;
}

/* read_string for a string that holds an escape or NUL, or is not closed: p is the first such
 * byte (or the end). */
static int read_string_slow(reader *rd, const char *p, fp_buf *out, const char **s, size_t *len)
{
    const char *start = rd->p + 1, *e = rd->end, *run;
    size_t base = out != NULL ? out->len : 0;

    run = start;
    while (p < e && *p != '"') {
        if (*p == '\0') {
            note_nul(rd, p);
            p++;
            continue;
        }
        if (*p != '\\') {
            p++;
            continue;
        }
        if (out != NULL && fp_buf_append(out, run, (size_t)(p - run)) < 0)
            rd->nomem = true;
        p = read_escape(rd, p, out);
        if (p == NULL)
            return -1;
        run = p;
    }
    if (p >= e)
        return syntax_error(rd, p);
    if (out != NULL && fp_buf_append(out, run, (size_t)(p - run)) < 0)
        rd->nomem = true;
    *s = NULL;
    *len = out != NULL ? out->len - base : 0;
    rd->p = p + 1;
    return 0;
}

/* Reads the string at rd->p (its opening quote). Without escapes *s points into the text;
 * with escapes the decoded bytes are appended to out (NULL: only checked) and *s is NULL, with
 * *len counting the bytes appended. Returns 0, or -1 on a syntax error. Always inline (GCC
 * would not, for its two callers): nearly every string is plain, and it is read without a call. */
static inline __attribute__((always_inline)) int read_string(reader *rd, fp_buf *out,
                                                             const char **s, size_t *len)
{
    const char *start = rd->p + 1, *e = rd->end, *p = plain_run_end(start, e);

    if (p < e && *p == '"') {
        *s = start;
        *len = (size_t)(p - start);
        rd->p = p + 1;
        return 0;
    }
    return read_string_slow(rd, p, out, s, len);
}

/* Reads a string value into v (decoded into rd->sbuf when it holds escapes). */
static int read_string_value(reader *rd, value *v)
{
    const char *s;
    size_t len;

    fp_buf_clear(&rd->sbuf);
    if (read_string(rd, &rd->sbuf, &s, &len) < 0)
        return -1;
    v->type = V_STRING;
    v->str = s != NULL ? s : rd->sbuf.data;
    v->len = len;
    if (v->str == NULL)
        v->str = ""; /* an empty buffer never allocated */
    return 0;
}

/* Exact powers of ten as doubles. */
static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Reads the number at rd->p into v: the text strtod reads from there ('-'? digits ['.'
 * digits] [exponent], with a digit on one side of the point at least). When want is false
 * only its form is checked. Returns 0 or -1 (syntax). */
static int read_number(reader *rd, value *v, bool want)
{
    const char *start = rd->p, *p = start, *e = rd->end, *digits0;
    uint64_t m = 0;
    int ndigits = 0, nfrac = 0;
    bool neg = false, overflow = false, exponent = false;

    if (*p == '-') {
        neg = true;
        p++;
    }
    digits0 = p;
    /* Nineteen digits are below 10^19 < 2^64: only from the twentieth on can m overflow, so
     * only then is it checked. */
    for (; p < e && (unsigned)(*p - '0') < 10; p++) {
        unsigned d = (unsigned)(*p - '0');

        if (ndigits >= 19 && m > (UINT64_MAX - d) / 10)
            overflow = true;
        m = m * 10 + d;
        ndigits++;
    }
    if (p < e && *p == '.') {
        p++;
        for (; p < e && (unsigned)(*p - '0') < 10; p++) {
            unsigned d = (unsigned)(*p - '0');

            if (ndigits + nfrac >= 19 && m > (UINT64_MAX - d) / 10)
                overflow = true;
            m = m * 10 + d;
            nfrac++;
        }
    }
    if (ndigits + nfrac == 0)
        return syntax_error(rd, start);
    if (p < e && (*p == 'e' || *p == 'E')) {
        const char *q = p + 1;

        if (q < e && (*q == '+' || *q == '-'))
            q++;
        /* strtod leaves an incomplete exponent unread, and what follows a number can never be
         * 'e': either way a syntax error. */
        if (q >= e || *q < '0' || *q > '9')
            return syntax_error(rd, p);
        while (q < e && *q >= '0' && *q <= '9')
            q++;
        p = q;
        exponent = true;
    }
    rd->p = p;
    v->type = V_NUMBER;
    v->digits = !neg && nfrac == 0 && !exponent && p - digits0 == ndigits && !overflow;
    v->u = m;
    if (!want)
        return 0;
    /* Both m <= 2^53 and 10^nfrac are exact doubles, so their quotient is correctly rounded:
     * the very double strtod returns for the same text. */
    if (!exponent && !overflow && m <= (UINT64_C(1) << 53) && nfrac <= 22) {
        double x = (double)m / pow10_exact[nfrac];

        v->num = neg ? -x : x;
        return 0;
    }
    {
        size_t n = (size_t)(p - start);
        char local[64], *buf = n < sizeof(local) ? local : malloc(n + 1);

        if (buf == NULL) {
            rd->nomem = true;
            v->num = 0;
            return 0;
        }
        memcpy(buf, start, n);
        buf[n] = '\0';
        v->num = strtod(buf, NULL);
        if (buf != local)
            free(buf);
    }
    return 0;
}

static int skip_object(reader *rd);
static int skip_array(reader *rd);

/* Reads any value at rd->p (after whitespace) into v; containers are only checked (their type
 * is set). want: convert numbers. Returns 0 or -1 (syntax). */
static int read_value(reader *rd, value *v, bool want)
{
    const char *p = rd->p;
    size_t left = (size_t)(rd->end - p);

    if (left == 0)
        return syntax_error(rd, p);
    switch (*p) {
    case '"':
        return read_string_value(rd, v);
    case '{':
        v->type = V_OBJECT;
        return skip_object(rd);
    case '[':
        v->type = V_ARRAY;
        return skip_array(rd);
    case 'n':
        if (left >= 4 && memcmp(p, "null", 4) == 0) {
            v->type = V_NULL;
            rd->p += 4;
            return 0;
        }
        break;
    case 't':
        if (left >= 4 && memcmp(p, "true", 4) == 0) {
            v->type = V_TRUE;
            rd->p += 4;
            return 0;
        }
        break;
    case 'f':
        if (left >= 5 && memcmp(p, "false", 5) == 0) {
            v->type = V_FALSE;
            rd->p += 5;
            return 0;
        }
        break;
    default:
        if (*p == '-' || (*p >= '0' && *p <= '9'))
            return read_number(rd, v, want);
        break;
    }
    return syntax_error(rd, p);
}

/* Reads a value that is only checked (an unknown member, an array element). */
static int skip_value(reader *rd)
{
    value v;

    return read_value(rd, &v, false);
}

static int skip_array(reader *rd)
{
    if (rd->depth >= NESTING_MAX)
        return syntax_error(rd, rd->p);
    rd->depth++;
    rd->p++;
    skip_ws(rd);
    if (rd->p < rd->end && *rd->p == ']') {
        rd->p++;
        rd->depth--;
        return 0;
    }
    for (;;) {
        skip_ws(rd);
        if (skip_value(rd) < 0)
            return -1;
        skip_ws(rd);
        if (rd->p < rd->end && *rd->p == ',') {
            rd->p++;
            continue;
        }
        if (rd->p < rd->end && *rd->p == ']') {
            rd->p++;
            rd->depth--;
            return 0;
        }
        return syntax_error(rd, rd->p);
    }
}

static bool key_equal(const reader *rd, key_ref a, key_ref b)
{
    const char *x, *y;

    if (a.len != b.len)
        return false;
    if (a.len == 0)
        return true;
    /* Names of one length mostly differ in their first or last byte ("66" and "67" among IO
     * ids): those are compared before memcmp is called. */
    x = key_bytes(rd, a);
    y = key_bytes(rd, b);
    return x[0] == y[0] && x[a.len - 1] == y[a.len - 1] && memcmp(x, y, a.len) == 0;
}

/* Notes the first member of keys[0..n) whose name an earlier one has (all members of one
 * object), as the reference names it. */
static void find_repeated(reader *rd, const key_ref *keys, size_t n)
{
    uint32_t local[4 * LOCAL_KEYS], *slots = local;
    size_t nslots = 16, found = SIZE_MAX;

    if (n <= PAIRWISE_MAX) {
        /* A name is compared with the earlier ones only when its signature (a bit chosen by its
         * length and its first and last bytes) is among theirs: equal names have equal
         * signatures, so a name whose bit is new equals none of them. */
        uint64_t signatures = 0;

        for (size_t i = 0; i < n && found == SIZE_MAX; i++) {
            const unsigned char *b = (const unsigned char *)key_bytes(rd, keys[i]);
            uint32_t len = keys[i].len;
            unsigned mix = len == 0 ? 0 : len * 31u + b[0] * 7u + b[len - 1];
            uint64_t bit = UINT64_C(1) << (mix & 63);

            if ((signatures & bit) != 0)
                for (size_t j = 0; j < i; j++)
                    if (key_equal(rd, keys[i], keys[j])) {
                        found = i;
                        break;
                    }
            signatures |= bit;
        }
    } else {
        /* Open addressing on the names' hashes, at most half full: linear time for any input
         * (the reference sorts; the name reported may differ, the code never does). */
        while (nslots < 2 * n)
            nslots *= 2;
        if (nslots > sizeof(local) / sizeof(local[0])) {
            slots = malloc(nslots * sizeof(*slots));
            if (slots == NULL) {
                rd->nomem = true;
                return;
            }
        }
        memset(slots, 0xff, nslots * sizeof(*slots));
        for (size_t i = 0; i < n && found == SIZE_MAX; i++) {
            size_t h = (size_t)fp_hash_bytes(key_bytes(rd, keys[i]), keys[i].len);

            for (size_t s = h & (nslots - 1);; s = (s + 1) & (nslots - 1)) {
                if (slots[s] == UINT32_MAX) {
                    slots[s] = (uint32_t)i;
                    break;
                }
                if (key_equal(rd, keys[slots[s]], keys[i])) {
                    found = i;
                    break;
                }
            }
        }
        if (slots != local)
            free(slots);
    }
    if (found != SIZE_MAX) {
        rd->dup = true;
        snprintf(rd->dup_msg, sizeof(rd->dup_msg),
                 "record: member \"%.*s\" given twice in one object",
                 (int)(keys[found].len < 64 ? keys[found].len : 64), key_bytes(rd, keys[found]));
    }
}

/* Remembers a member's name until its object closes. Returns 0 or -1 (out of memory). */
static int push_key(reader *rd, key_ref k)
{
    if (rd->nkeys == rd->cap_keys) {
        size_t cap = rd->cap_keys * 2;
        key_ref *keys = rd->keys == rd->local_keys ? malloc(cap * sizeof(*keys))
                                                   : realloc(rd->keys, cap * sizeof(*keys));

        if (keys == NULL) {
            rd->nomem = true;
            return -1;
        }
        if (rd->keys == rd->local_keys)
            memcpy(keys, rd->local_keys, sizeof(rd->local_keys));
        rd->keys = keys;
        rd->cap_keys = cap;
    }
    rd->keys[rd->nkeys++] = k;
    return 0;
}

/* Handles one member of an object: reads its value at rd->p. Returns -1 (syntax), 0 when the
 * object's schema does not know the member's name, or 1 + the name's index among those it knows
 * (below 32). The index must follow from the name's bytes alone: read_object relies on it to
 * tell that no two members share a name. */
typedef int (*member_fn)(reader *rd, key_ref key);

/* Reads the object at rd->p (its '{'), handing each member to fn, and checks that no two of
 * its members share a name. Returns 0 or -1 (syntax, or out of memory). */
static int read_object(reader *rd, member_fn fn)
{
    size_t key_base = rd->nkeys, kbuf_base = rd->kbuf.len, others = 0;
    uint32_t known = 0;
    bool again = false;
    int rc;

    if (rd->depth >= NESTING_MAX)
        return syntax_error(rd, rd->p);
    rd->depth++;
    rd->p++;
    skip_ws(rd);
    if (rd->p < rd->end && *rd->p == '}') {
        rd->p++;
        rd->depth--;
        return 0;
    }
    for (;;) {
        key_ref k;
        const char *s;
        size_t len, before = rd->kbuf.len;

        skip_ws(rd);
        if (rd->p >= rd->end || *rd->p != '"')
            return syntax_error(rd, rd->p);
        if (read_string(rd, &rd->kbuf, &s, &len) < 0)
            return -1;
        k.len = (uint32_t)len;
        k.in_kbuf = s == NULL;
        k.off = (uint32_t)(s != NULL ? (size_t)(s - rd->text) : before);
        if (push_key(rd, k) < 0)
            return -1;
        skip_ws(rd);
        if (rd->p >= rd->end || *rd->p != ':')
            return syntax_error(rd, rd->p);
        rd->p++;
        skip_ws(rd);
        rc = fn(rd, k);
        if (rc < 0)
            return -1;
        if (rc == 0)
            others++;
        else if ((known & (UINT32_C(1) << (rc - 1))) != 0)
            again = true;
        else
            known |= UINT32_C(1) << (rc - 1);
        skip_ws(rd);
        if (rd->p < rd->end && *rd->p == ',') {
            rd->p++;
            continue;
        }
        if (rd->p < rd->end && *rd->p == '}')
            break;
        return syntax_error(rd, rd->p);
    }
    rd->p++;
    rd->depth--;
    /* Two members can share a name only when a known name came twice (equal names have equal
     * indices, and a known name never equals an unknown one) or two names are unknown. Only
     * then are the names compared, all of them, so that the one reported is the same. */
    if (!rd->dup && !rd->nul && (again || others >= 2))
        find_repeated(rd, rd->keys + key_base, rd->nkeys - key_base);
    rd->nkeys = key_base;
    rd->kbuf.len = kbuf_base;
    return 0;
}

static int skip_member(reader *rd, key_ref key)
{
    (void)key;
    return skip_value(rd);
}

static int skip_object(reader *rd)
{
    return read_object(rd, skip_member);
}

/* True when b[0..len) are the NUL-terminated name. Compared byte by byte rather than with
 * strlen and memcmp: the names are short and nearly every mismatch is at the first byte. */
static inline bool bytes_are(const char *b, size_t len, const char *name)
{
    for (size_t i = 0; i < len; i++)
        if (name[i] == '\0' || name[i] != b[i])
            return false;
    return name[len] == '\0';
}

/* True when the key's bytes are the NUL-terminated name. */
static bool key_is(const reader *rd, key_ref k, const char *name)
{
    return bytes_are(key_bytes(rd, k), k.len, name);
}

/* Reads the value of a member that must be an object (handled by fn) or null (absent). Returns
 * 1 when it was an object, 0 when null or another type (then *v says which), -1 on syntax. */
static int read_object_or(reader *rd, member_fn fn, value *v)
{
    if (rd->p < rd->end && *rd->p == '{')
        return read_object(rd, fn) < 0 ? -1 : 1;
    return read_value(rd, v, false);
}

/* ---- position ---- */

/* Reads position member i (its index in position_members). Returns 0 or -1 (syntax). */
static int position_value(reader *rd, int i)
{
    static const double lo[6] = {-90, -180, -HUGE_VAL, -HUGE_VAL, -HUGE_VAL, 0};
    static const double hi[6] = {90, 180, HUGE_VAL, HUGE_VAL, HUGE_VAL, 255};
    fp_position *p = &rd->r->position;
    int rank;
    value v;

    if ((rd->pos_seen & (1u << i)) != 0)
        return skip_value(rd);
    if (read_value(rd, &v, true) < 0)
        return -1;
    if (v.type == V_NULL)
        return 0;
    rd->pos_seen |= 1u << i;
    rank = RANK_POSITION + 1 + i;
    if (i == 5) {
        if (v.type != V_NUMBER || !(v.num >= 0 && v.num <= 255) || v.num != trunc(v.num))
            schema_error(rd, rank, FP_REC_ERR_SCHEMA,
                         "position.satellites: expected an integer 0..255");
        else
            p->satellites = (int)v.num;
        return 0;
    }
    if (v.type != V_NUMBER)
        schema_error(rd, rank, FP_REC_ERR_SCHEMA, "position.%s: expected a number",
                     position_members[i]);
    else if (!isfinite(v.num))
        schema_error(rd, rank, FP_REC_ERR_SCHEMA, "position.%s: expected a finite number",
                     position_members[i]);
    else if (!(v.num >= lo[i] && v.num <= hi[i]))
        schema_error(rd, rank, FP_REC_ERR_SCHEMA, "position.%s: out of range [%g, %g]",
                     position_members[i], lo[i], hi[i]);
    else
        *(double *)(void *)((char *)p + position_offsets[i]) = v.num;
    return 0;
}

static int position_member(reader *rd, key_ref key)
{
    const char *b = key_bytes(rd, key);
    int i = 6;

    /* As root_member_of, by length first; the indices are position_members'. */
    if (key.len == 3 && memcmp(b, "lat", 3) == 0)
        i = 0;
    else if (key.len == 3 && memcmp(b, "lon", 3) == 0)
        i = 1;
    else if (key.len == 5 && memcmp(b, "alt_m", 5) == 0)
        i = 2;
    else if (key.len == 11 && memcmp(b, "heading_deg", 11) == 0)
        i = 3;
    else if (key.len == 9 && memcmp(b, "speed_kmh", 9) == 0)
        i = 4;
    else if (key.len == 10 && memcmp(b, "satellites", 10) == 0)
        i = 5;
    if (i == 6)
        return skip_value(rd);
    return position_value(rd, i) < 0 ? -1 : 1 + i;
}

static int read_position(reader *rd)
{
    value v;
    int rc;

    fp_position_unknown(&rd->r->position);
    rd->r->has_position = true;
    rc = read_object_or(rd, position_member, &v);
    if (rc < 0)
        return -1;
    if (rc == 0) {
        rd->r->has_position = false;
        if (v.type != V_NULL)
            schema_error(rd, RANK_POSITION, FP_REC_ERR_SCHEMA, "position: expected an object");
        return 0;
    }
    for (int i = 0; i < 2; i++)
        if ((rd->pos_seen & (1u << i)) == 0)
            schema_error(rd, RANK_POSITION + 1 + i, FP_REC_ERR_SCHEMA, "position.%s: missing",
                         position_members[i]);
    return 0;
}

/* ---- io ---- */

static void add_io_hex(reader *rd, uint32_t id, const value *v)
{
    fp_record *r = rd->r;
    fp_io *slot;
    fp_str s;
    bool ok;

    s = fp_record_put_str(r, v->str, v->len, &ok);
    slot = ok ? fp_record_push_io(r, id) : NULL;
    if (slot == NULL) {
        rd->nomem = true;
        return;
    }
    /* Stored lowercase, as the encoder and every producer write it. */
    for (size_t i = 0; i < v->len; i++) {
        char *c = &r->arena[s.off + i];

        if (*c >= 'A' && *c <= 'F')
            *c = (char)(*c - 'A' + 'a');
    }
    slot->kind = FP_IO_HEX;
    slot->hex = s;
}

static int io_member(reader *rd, key_ref key)
{
    const char *name = key_bytes(rd, key);
    int nlen = (int)key.len;
    uint32_t id = 0;
    value v;

    if (!fp_record_io_id(name, key.len, &id)) {
        schema_error(rd, RANK_IO, FP_REC_ERR_SCHEMA, "io: key \"%.*s\" is not an id 0..65535",
                     nlen < 32 ? nlen : 32, name);
        return skip_value(rd);
    }
    if (rd->r->io_len >= FP_ITEMS_MAX) {
        schema_error(rd, RANK_IO, FP_REC_ERR_SCHEMA, "io: more than %d elements", FP_ITEMS_MAX);
        return skip_value(rd);
    }
    if (read_value(rd, &v, true) < 0)
        return -1;
    name = key_bytes(rd, key); /* a nested value may have moved kbuf */
    if (v.type == V_NUMBER) {
        /* Plain digits are read exactly; any other form as the reference reads cJSON's
         * double, where 18446744073709551615 (UINT64_MAX) and what rounds to 2^64 saturate. */
        uint64_t u = v.u;

        if (!v.digits) {
            if (!(v.num >= 0 && v.num <= TWO_POW_64) || v.num != trunc(v.num)) {
                schema_error(rd, RANK_IO, FP_REC_ERR_SCHEMA,
                             "io.%.*s: expected an unsigned integer", nlen, name);
                return 0;
            }
            u = v.num >= TWO_POW_64 ? UINT64_MAX : (uint64_t)v.num;
        }
        if (fp_record_add_io_uint(rd->r, id, u) != 0)
            rd->nomem = true;
    } else if (v.type == V_STRING) {
        if (!fp_record_is_hex_text(v.str, v.len))
            schema_error(rd, RANK_IO, FP_REC_ERR_SCHEMA, "io.%.*s: expected a hex string", nlen,
                         name);
        else
            add_io_hex(rd, id, &v);
    } else {
        schema_error(rd, RANK_IO, FP_REC_ERR_SCHEMA,
                     "io.%.*s: expected an unsigned integer or a hex string", nlen, name);
    }
    return 0;
}

/* ---- metrics ---- */

static int metrics_member(reader *rd, key_ref key)
{
    fp_record *r = rd->r;
    const char *name;
    int nlen = (int)(key.len < 64 ? key.len : 64);
    fp_metric *m = NULL;
    value v;

    if (r->metrics_len >= FP_ITEMS_MAX) {
        schema_error(rd, RANK_METRICS, FP_REC_ERR_SCHEMA, "metrics: more than %d elements",
                     FP_ITEMS_MAX);
        return skip_value(rd);
    }
    if (read_value(rd, &v, true) < 0)
        return -1;
    name = key_bytes(rd, key);
    switch (v.type) {
    case V_NUMBER:
        if (!isfinite(v.num)) {
            schema_error(rd, RANK_METRICS, FP_REC_ERR_SCHEMA, "metrics.%.*s: number out of range",
                         nlen, name);
            return 0;
        }
        m = fp_record_push_metric(r, name, key.len, FP_METRIC_NUMBER);
        if (m != NULL)
            m->num = v.num;
        break;
    case V_TRUE:
    case V_FALSE:
        m = fp_record_push_metric(r, name, key.len, FP_METRIC_BOOL);
        if (m != NULL)
            m->b = v.type == V_TRUE;
        break;
    case V_STRING: {
        bool ok;
        /* The value goes in first: the name's bytes may move with the arena, the value's
         * (in the text or in sbuf) do not. */
        fp_str s = fp_record_put_str(r, v.str, v.len, &ok);

        m = ok ? fp_record_push_metric(r, name, key.len, FP_METRIC_STRING) : NULL;
        if (m != NULL)
            m->str = s;
        break;
    }
    default:
        schema_error(rd, RANK_METRICS, FP_REC_ERR_SCHEMA,
                     "metrics.%.*s: expected a number, boolean or string", nlen, name);
        return 0;
    }
    if (m == NULL)
        rd->nomem = true;
    else /* read once here, so that the encoder copies the name instead of scanning it */
        m->name_plain = fp_json_is_plain(fp_record_str(r, m->name), m->name.len);
    return 0;
}

/* ---- enrichment ---- */

typedef struct enrich_group {
    const char *name;
    const struct enrich_field *fields;
    size_t nfields;
    size_t has_off; /* where its has_ flag lives in fp_enrichment */
    int rank;       /* of "expected an object"; its members follow */
} enrich_group;

static const enrich_group enrich_groups[3] = {
    {"site", fp_record_site_fields, COUNT(fp_record_site_fields), offsetof(fp_enrichment, has_site),
     RANK_ENRICHMENT + 2},
    {"address", fp_record_address_fields, COUNT(fp_record_address_fields),
     offsetof(fp_enrichment, has_address), RANK_ENRICHMENT + 2 + 1 + 2},
    {"asset", fp_record_asset_fields, COUNT(fp_record_asset_fields),
     offsetof(fp_enrichment, has_asset), RANK_ENRICHMENT + 2 + 1 + 2 + 1 + 6},
};

/* Reads member i (its index in the group's fields) of the group being read. Returns 0 or -1
 * (syntax). */
static int group_value(reader *rd, size_t i)
{
    const enrich_group *g = &enrich_groups[rd->enrich_group];
    fp_enrichment *e = &rd->r->enrichment;
    value v;

    if (read_value(rd, &v, false) < 0)
        return -1;
    if (v.type == V_NULL)
        return 0;
    if (v.type != V_STRING) {
        schema_error(rd, g->rank + 1 + (int)i, FP_REC_ERR_SCHEMA,
                     "enrichment.%s.%s: expected a string", g->name, g->fields[i].name);
        return 0;
    }
    if (fp_record_set_enrich_str(rd->r, (fp_str *)((char *)e + g->fields[i].off), v.str, v.len) !=
        0)
        rd->nomem = true;
    return 0;
}

static int group_member(reader *rd, key_ref key)
{
    const enrich_group *g = &enrich_groups[rd->enrich_group];
    const char *b = key_bytes(rd, key);
    size_t i = g->nfields;

    /* No field's name is empty, so an empty key is none of them; the first bytes are compared
     * before the rest. */
    if (key.len > 0)
        for (i = 0; i < g->nfields; i++)
            if (g->fields[i].name[0] == b[0] && bytes_are(b, key.len, g->fields[i].name))
                break;
    if (i == g->nfields)
        return skip_value(rd);
    return group_value(rd, i) < 0 ? -1 : 1 + (int)i;
}

/* Reads enrichment.status. Returns 0 or -1 (syntax). */
static int enrichment_status(reader *rd)
{
    fp_enrichment *e = &rd->r->enrichment;
    value v;

    if (rd->status_seen)
        return skip_value(rd);
    if (read_value(rd, &v, false) < 0)
        return -1;
    if (v.type != V_STRING)
        return 0; /* reported as missing when the object closes */
    rd->status_seen = true;
    if (v.len == 4 && memcmp(v.str, "none", 4) == 0)
        e->status = FP_ENRICH_NONE; /* not enriched yet: hints from the decoder */
    else if (v.len == 2 && memcmp(v.str, "ok", 2) == 0)
        e->status = FP_ENRICH_OK;
    else if (v.len == 7 && memcmp(v.str, "partial", 7) == 0)
        e->status = FP_ENRICH_PARTIAL;
    else if (v.len == 11 && memcmp(v.str, "unavailable", 11) == 0)
        e->status = FP_ENRICH_UNAVAILABLE;
    else
        schema_error(rd, RANK_ENRICHMENT + 1, FP_REC_ERR_SCHEMA,
                     "enrichment.status: unknown value \"%.*s\"", (int)(v.len < 32 ? v.len : 32),
                     v.str);
    return 0;
}

/* Reads enrichment group g (its index in enrich_groups). Returns 0 or -1 (syntax). */
static int enrichment_group(reader *rd, int g)
{
    bool *has = (bool *)((char *)&rd->r->enrichment + enrich_groups[g].has_off);
    value v;
    int rc;

    if (*has)
        return skip_value(rd);
    rd->enrich_group = g;
    rc = read_object_or(rd, group_member, &v);
    if (rc < 0)
        return -1;
    if (rc == 1)
        *has = true;
    else if (v.type != V_NULL)
        schema_error(rd, enrich_groups[g].rank, FP_REC_ERR_SCHEMA,
                     "enrichment.%s: expected an object", enrich_groups[g].name);
    return 0;
}

/* The names enrichment knows: status (index 0), then the groups (1 + g). */
static int enrichment_member(reader *rd, key_ref key)
{
    if (key_is(rd, key, "status"))
        return enrichment_status(rd) < 0 ? -1 : 1;
    for (int g = 0; g < 3; g++)
        if (key_is(rd, key, enrich_groups[g].name))
            return enrichment_group(rd, g) < 0 ? -1 : 2 + g;
    return skip_value(rd);
}

static int read_enrichment(reader *rd)
{
    value v;
    int rc = read_object_or(rd, enrichment_member, &v);

    if (rc < 0)
        return -1;
    if (rc == 0) {
        if (v.type != V_NULL)
            schema_error(rd, RANK_ENRICHMENT, FP_REC_ERR_SCHEMA, "enrichment: expected an object");
        return 0;
    }
    if (!rd->status_seen) {
        schema_error(rd, RANK_ENRICHMENT + 1, FP_REC_ERR_SCHEMA,
                     "enrichment.status: expected a string");
        return 0;
    }
    /* "none" exists only to carry hints; without one it is not what any encoder writes. The
     * reference checks this after every group, so it ranks after the last group's members. */
    const fp_enrichment *e = &rd->r->enrichment;
    if (e->status == FP_ENRICH_NONE && !e->has_site && !e->has_address && !e->has_asset)
        schema_error(rd, enrich_groups[2].rank + 1 + (int)enrich_groups[2].nfields,
                     FP_REC_ERR_SCHEMA,
                     "enrichment.status: \"none\" without site, address or asset");
    return 0;
}

/* ---- the root ---- */

/* The root member a name is (M_UNKNOWN: none): by its length, then its bytes, each memcmp of
 * a constant length compiled to a few word compares. Must name what root_names does. */
static enum root_member root_member_of(const reader *rd, key_ref key)
{
    const char *b = key_bytes(rd, key);

    switch (key.len) {
    case 2:
        if (memcmp(b, "ts", 2) == 0)
            return M_TS;
        if (memcmp(b, "io", 2) == 0)
            return M_IO;
        break;
    case 6:
        if (memcmp(b, "schema", 6) == 0)
            return M_SCHEMA;
        if (memcmp(b, "format", 6) == 0)
            return M_FORMAT;
        break;
    case 7:
        if (memcmp(b, "metrics", 7) == 0)
            return M_METRICS;
        break;
    case 8:
        if (memcmp(b, "position", 8) == 0)
            return M_POSITION;
        if (memcmp(b, "priority", 8) == 0)
            return M_PRIORITY;
        if (memcmp(b, "event_io", 8) == 0)
            return M_EVENT_IO;
        break;
    case 9:
        if (memcmp(b, "device_id", 9) == 0)
            return M_DEVICE_ID;
        break;
    case 10:
        if (memcmp(b, "enrichment", 10) == 0)
            return M_ENRICHMENT;
        break;
    case 11:
        if (memcmp(b, "received_at", 11) == 0)
            return M_RECEIVED_AT;
        break;
    default:
        break;
    }
    return M_UNKNOWN;
}

/* Reads an optional integer member within [0, max] into *out; null leaves it. */
static void optional_uint(reader *rd, const value *v, int rank, const char *key, double max,
                          int *out)
{
    if (v->type == V_NULL)
        return;
    if (v->type != V_NUMBER || !(v->num >= 0 && v->num <= max) || v->num != trunc(v->num)) {
        schema_error(rd, rank, FP_REC_ERR_SCHEMA, "%s: expected an integer 0..%.0f", key, max);
        return;
    }
    *out = (int)v->num;
}

/* Reads a timestamp member: ts (required) or received_at. */
static void timestamp(reader *rd, const value *v, bool required, int64_t *ms)
{
    const char *key = required ? "ts" : "received_at";
    int rank = required ? RANK_TS : RANK_RECEIVED_AT;

    if (v->type == V_NULL) {
        if (required)
            schema_error(rd, rank, FP_REC_ERR_TS, "ts: missing");
        return;
    }
    if (v->type != V_STRING) {
        if (required)
            schema_error(rd, rank, FP_REC_ERR_TS, "ts: expected an RFC 3339 string");
        else
            schema_error(rd, rank, FP_REC_ERR_SCHEMA, "received_at: expected a string");
        return;
    }
    if (fp_time_parse_ms(v->str, strnlen(v->str, v->len), ms) != 0)
        schema_error(rd, rank, FP_REC_ERR_TS, "%s: not an RFC 3339 timestamp: \"%.*s\"", key,
                     (int)(v->len < 40 ? v->len : 40), v->str);
}

static void device_id(reader *rd, const value *v)
{
    int rank = RANK_DEVICE_ID;

    if (v->type == V_NULL)
        schema_error(rd, rank, FP_REC_ERR_DEVICE_ID, "device_id: missing");
    else if (v->type != V_STRING)
        schema_error(rd, rank, FP_REC_ERR_DEVICE_ID, "device_id: expected a string");
    else if (v->len == 0)
        schema_error(rd, rank, FP_REC_ERR_DEVICE_ID, "device_id: empty");
    else if (v->len >= FP_DEVICE_ID_MAX)
        schema_error(rd, rank, FP_REC_ERR_DEVICE_ID, "device_id: longer than %d bytes",
                     FP_DEVICE_ID_MAX - 1);
    else
        memcpy(rd->r->device_id, v->str, v->len);
}

/* Reads root member m. Returns 0 or -1 (syntax). */
static int root_value(reader *rd, enum root_member m)
{
    fp_record *r = rd->r;
    value v;
    int rc;

    if ((rd->seen & (1u << m)) != 0)
        return skip_value(rd); /* a second one is refused as a repeated member */
    rd->seen |= 1u << m;
    switch (m) {
    case M_POSITION:
        return read_position(rd);
    case M_IO:
    case M_METRICS:
        rc = read_object_or(rd, m == M_IO ? io_member : metrics_member, &v);
        if (rc == 0 && v.type != V_NULL)
            schema_error(rd, m == M_IO ? RANK_IO : RANK_METRICS, FP_REC_ERR_SCHEMA,
                         "%s: expected an object", root_names[m]);
        return rc < 0 ? -1 : 0;
    case M_ENRICHMENT:
        return read_enrichment(rd);
    default:
        break;
    }
    if (read_value(rd, &v, true) < 0)
        return -1;
    switch (m) {
    case M_SCHEMA:
        if (v.type != V_NUMBER)
            schema_error(rd, RANK_SCHEMA, FP_REC_ERR_SCHEMA, "schema: expected a number");
        else if (v.num != FP_RECORD_SCHEMA)
            schema_error(rd, RANK_SCHEMA, FP_REC_ERR_SCHEMA, "schema: unsupported version %g",
                         v.num);
        break;
    case M_DEVICE_ID:
        device_id(rd, &v);
        break;
    case M_TS:
        timestamp(rd, &v, true, &r->ts_ms);
        break;
    case M_RECEIVED_AT:
        timestamp(rd, &v, false, &r->received_at_ms);
        break;
    case M_FORMAT:
        if (v.type == V_NULL)
            break;
        if (v.type != V_STRING)
            schema_error(rd, RANK_FORMAT, FP_REC_ERR_SCHEMA, "format: expected a string");
        else if (v.len >= FP_FORMAT_MAX)
            schema_error(rd, RANK_FORMAT, FP_REC_ERR_SCHEMA, "format: longer than %d bytes",
                         FP_FORMAT_MAX - 1);
        else
            memcpy(r->format, v.str, v.len);
        break;
    case M_PRIORITY:
        optional_uint(rd, &v, RANK_PRIORITY, "priority", 255, &r->priority);
        break;
    case M_EVENT_IO:
        optional_uint(rd, &v, RANK_EVENT_IO, "event_io", 65535, &r->event_io);
        break;
    default:
        break;
    }
    return 0;
}

static int root_member(reader *rd, key_ref key)
{
    enum root_member m = root_member_of(rd, key);

    if (m == M_UNKNOWN)
        return skip_value(rd);
    return root_value(rd, m) < 0 ? -1 : 1 + (int)m;
}

/* Reads the document: the root object, or any other value (refused, but read through so that
 * a syntax error, U+0000 or a repeated member inside it outranks that). */
static void read_document(reader *rd)
{
    if (rd->p < rd->end && *rd->p == '{') {
        if (read_object(rd, root_member) < 0)
            return;
        if ((rd->seen & (1u << M_SCHEMA)) == 0)
            schema_error(rd, RANK_SCHEMA, FP_REC_ERR_SCHEMA, "schema: missing");
        if ((rd->seen & (1u << M_DEVICE_ID)) == 0)
            schema_error(rd, RANK_DEVICE_ID, FP_REC_ERR_DEVICE_ID, "device_id: missing");
        if ((rd->seen & (1u << M_TS)) == 0)
            schema_error(rd, RANK_TS, FP_REC_ERR_TS, "ts: missing");
        return;
    }
    if (skip_value(rd) == 0)
        schema_error(rd, RANK_ROOT, FP_REC_ERR_SCHEMA, "record: expected a JSON object");
}

/* Returns how many bytes s[0..len) opens with that are all ASCII, in whole blocks of 32 (the
 * rest is left to fp_json_utf8_valid). Four words are tested at once: a canonical text is
 * mostly, often wholly, ASCII. */
static size_t ascii_prefix(const char *s, size_t len)
{
    const uint64_t high = UINT64_C(0x8080808080808080);
    size_t i = 0;

    while (len - i >= 32) {
        uint64_t w[4];

        memcpy(w, s + i, sizeof(w));
        if (((w[0] | w[1] | w[2] | w[3]) & high) != 0)
            break;
        i += 32;
    }
    return i;
}

/* What the pass found, in the reference's order of checks. */
static int verdict(reader *rd, char *errmsg, size_t errmsg_size)
{
    size_t len = (size_t)(rd->end - rd->text);

    /* Like cJSON, an error at the end of the text is placed at its last byte. */
    if (rd->syntax)
        return fp_record_refuse(errmsg, errmsg_size, FP_REC_ERR_JSON,
                                "json: syntax error at byte %zu",
                                rd->syntax_at < len ? rd->syntax_at : len - 1);
    /* Only space, tab, CR and LF may follow the document. */
    for (const char *p = rd->p; p < rd->end; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            return fp_record_refuse(errmsg, errmsg_size, FP_REC_ERR_JSON,
                                    "json: trailing data at byte %zu", (size_t)(p - rd->text));
    if (rd->nul)
        return fp_record_refuse(errmsg, errmsg_size, FP_REC_ERR_NUL,
                                "json: U+0000 in a string at byte %zu", rd->nul_at);
    if (rd->nomem)
        return fp_record_refuse(errmsg, errmsg_size, FP_REC_ERR_NOMEM, "record: out of memory");
    if (rd->dup)
        return fp_record_refuse(errmsg, errmsg_size, FP_REC_ERR_DUPLICATE, "%s", rd->dup_msg);
    if (rd->rank != RANK_NONE)
        return rd->code; /* its message is in errmsg already */
    return fp_record_check(rd->r, errmsg, errmsg_size);
}

int fp_record_decode_json(fp_record *r, const char *json, size_t len, char *errmsg,
                          size_t errmsg_size)
{
    reader rd;
    size_t bad = 0, ascii;
    int rc;

    fp_record_reset(r);
    if (errmsg != NULL && errmsg_size > 0)
        errmsg[0] = '\0';
    if (json == NULL || len == 0)
        return fp_record_refuse(errmsg, errmsg_size, FP_REC_ERR_JSON, "json: empty input");
    /* Every string in the arena is at most as long as its JSON text, so a message within the
     * arena's cap can only fail to fit when memory itself runs out. */
    if (len > FP_ARENA_MAX)
        return fp_record_refuse(errmsg, errmsg_size, FP_REC_ERR_SCHEMA,
                                "record: larger than %zu bytes", FP_ARENA_MAX);
    /* JSON text is UTF-8 (RFC 8259): refusing anything else keeps every stored string valid,
     * so that what is decoded encodes back to the same bytes. An ASCII prefix is valid as it
     * stands and ends between characters, so only the rest needs the full check, and an
     * invalid byte's offset in the rest is its offset in the text less the prefix. */
    ascii = ascii_prefix(json, len);
    if (ascii < len && !fp_json_utf8_valid(json + ascii, len - ascii, &bad))
        return fp_record_refuse(errmsg, errmsg_size, FP_REC_ERR_JSON,
                                "json: invalid UTF-8 at byte %zu", ascii + bad);

    memset(&rd, 0, offsetof(reader, local_keys));
    rd.text = json;
    rd.p = json;
    rd.end = json + len;
    rd.r = r;
    rd.rank = RANK_NONE;
    rd.msg = errmsg;
    rd.msg_size = errmsg_size;
    rd.keys = rd.local_keys;
    rd.cap_keys = LOCAL_KEYS;
    rd.nkeys = 0;
    rd.seen = rd.pos_seen = 0;
    rd.status_seen = false;
    rd.enrich_group = 0;
    /* Like cJSON: a byte order mark opens a text of five bytes or more. */
    if (len >= 5 && memcmp(json, "\xef\xbb\xbf", 3) == 0)
        rd.p += 3;
    skip_ws(&rd);
    read_document(&rd);
    rc = verdict(&rd, errmsg, errmsg_size);
    fp_buf_free(&rd.sbuf);
    fp_buf_free(&rd.kbuf);
    if (rd.keys != rd.local_keys)
        free(rd.keys);
    /* A failed decode leaves an empty record rather than a half-filled one. */
    if (rc != 0)
        fp_record_reset(r);
    return rc;
}
