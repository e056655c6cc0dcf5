/* SenML JSON packs (RFC 8428) from sensor gateways; PROTOCOLS.md, "SenML JSON packs".
 *
 * A pack is decoded in one pass over its records, carrying the base fields (bn, bt, bu, bv,
 * bs) forward as RFC 8428 resolves them. Every resolved measurement joins the canonical record
 * of its (device, time) group, created at the group's first appearance, so the output keeps
 * the pack's order. Position measurements (lat, lon, ...) are held per group and applied once
 * the whole pack is read, because latitude and longitude may come in either order.
 *
 * Work and memory are bounded by the pack: at most SENML_RECORDS_MAX records, and the groups
 * and metric names are found through hash tables sized from the record count, so no input
 * costs quadratic time.
 *
 * The pack's JSON is first read whole into a flat list of records and their members, by one of
 * two readers with the same result. A strict reader takes the JSON that SenML producers write
 * (an array of objects whose members are strings without escapes, numbers, true or false)
 * without an allocation per value; it declines anything else, and cJSON then reads the pack,
 * so that every other input, syntax errors included, is judged exactly as cJSON judges it. */
#include <cJSON.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parser-svc/decode.h"
#include "common/fp_json.h"
#include "common/fp_time.h"

#define SENML_RECORDS_MAX 10000
#define SENML_VERSION_MAX 10             /* the highest bver this reader supports */
#define SENML_ABS_TIME    268435456.0    /* 2^28: resolved times from here on are absolute */
#define SENML_NAME_MAX    256            /* bytes of a resolved name, without NUL */
#define SENML_UNIT_MAX    32             /* bytes of a unit, without NUL */
#define SENML_SUFFIX_MAX  SENML_UNIT_MAX /* a sanitised unit is never longer than the unit */
/* A metric name: the name's stem, "_sum" and "_" plus the unit's suffix. */
#define SENML_METRIC_MAX (SENML_NAME_MAX + 4 + 1 + SENML_SUFFIX_MAX)
/* Resolved times beyond this many ms from the epoch are clamped; decode.c then rejects them
 * as out of range, and the clamp keeps the arithmetic free of overflow. */
#define SENML_MS_LIMIT 4.0e18

/* The labels this reader knows. */
enum senml_label {
    L_BN,
    L_BT,
    L_BU,
    L_BV,
    L_BS,
    L_BVER,
    L_N,
    L_U,
    L_V,
    L_VS,
    L_VB,
    L_VD,
    L_S,
    L_T,
    L_UT,
    L_COUNT
};

enum senml_type { T_STRING, T_NUMBER, T_BOOL };

static const struct senml_label_def {
    const char *name;
    enum senml_type type;
    bool is_value; /* a wrong type is "senml_value" rather than "senml_bad_field" */
} label_defs[L_COUNT] = {
    [L_BN] = {"bn", T_STRING, false}, [L_BT] = {"bt", T_NUMBER, false},
    [L_BU] = {"bu", T_STRING, false}, [L_BV] = {"bv", T_NUMBER, false},
    [L_BS] = {"bs", T_NUMBER, false}, [L_BVER] = {"bver", T_NUMBER, false},
    [L_N] = {"n", T_STRING, false},   [L_U] = {"u", T_STRING, false},
    [L_V] = {"v", T_NUMBER, true},    [L_VS] = {"vs", T_STRING, true},
    [L_VB] = {"vb", T_BOOL, true},    [L_VD] = {"vd", T_STRING, true},
    [L_S] = {"s", T_NUMBER, true},    [L_T] = {"t", T_NUMBER, false},
    [L_UT] = {"ut", T_NUMBER, false},
};

/* SenML units with a conventional metric suffix (README.md, canonical record: `_v`, `_m`, `_pct`,
 * ...). An empty suffix means the unit is implied by the name. Other units are sanitised. */
static const struct senml_unit {
    const char *unit;
    const char *suffix;
} unit_suffixes[] = {
    {"V", "v"},      {"A", "a"},     {"W", "w"},   {"m", "m"},    {"s", "s"},     {"h", "h"},
    {"%", "pct"},    {"%RH", "pct"}, {"Cel", "c"}, {"degC", "c"}, {"l", "l"},     {"L", "l"},
    {"km/h", "kmh"}, {"m/s", "mps"}, {"lat", ""},  {"lon", ""},   {"deg", "deg"},
};

/* Measurements that fill the record's position instead of a metric. */
enum senml_pos { P_LAT, P_LON, P_ALT, P_SPEED, P_HEADING, P_SATELLITES, P_COUNT };

static const struct senml_pos_def {
    const char *name; /* sanitised measurement name */
    enum senml_pos field;
} pos_names[] = {
    {"lat", P_LAT}, {"latitude", P_LAT}, {"lon", P_LON},         {"longitude", P_LON},
    {"alt", P_ALT}, {"speed", P_SPEED},  {"heading", P_HEADING}, {"satellites", P_SATELLITES},
};

/* The metric names position fields take in a record without latitude and longitude. */
static const char *const pos_metric_names[P_COUNT] = {
    [P_LAT] = "lat",
    [P_LON] = "lon",
    [P_ALT] = "alt_m",
    [P_SPEED] = "speed_kmh",
    [P_HEADING] = "heading_deg",
    [P_SATELLITES] = "satellites",
};

/* One canonical record in the making: the measurements of one device at one time. */
struct senml_group {
    size_t rec;        /* index in the batch; the batch may move its records as it grows */
    unsigned pos_seen; /* bit (1u << enum senml_pos) per position field measured */
    double pos[P_COUNT];
};

/* An open-addressing hash table slot: a group (metric < 0), or a group's metric. */
struct senml_slot {
    uint32_t hash;
    int32_t group; /* -1 when the slot is empty */
    int32_t metric;
};

struct senml_table {
    struct senml_slot *slots;
    size_t mask;
};

/* The JSON type of a member's value, as far as the labels care. */
enum senml_json { J_STRING, J_NUMBER, J_TRUE, J_FALSE, J_OTHER };

/* One member of a SenML record: its label and value. The strings are NUL-terminated, as cJSON
 * keeps them (a string with an escaped NUL ends there), and their lengths are kept beside them
 * (the strlen of each), measured once by the reader rather than again by every use. */
struct senml_member {
    const char *key;
    size_t key_len;
    enum senml_json type;
    const char *str; /* J_STRING */
    size_t str_len;  /* J_STRING */
    double num;      /* J_NUMBER */
};

/* One element of the pack: an object with members [first, first + count) of the member list, or
 * some other value. */
struct senml_entry {
    bool is_object;
    size_t first, count;
};

/* The pack as read: its elements, their members, and what the strings point into (the strict
 * reader's copy of them, or cJSON's tree). */
struct senml_pack {
    struct senml_entry *entries;
    size_t nentries, entries_cap;
    struct senml_member *members;
    size_t nmembers, members_cap;
    char *text;
    cJSON *root;
};

/* The base fields in effect; strings point into the pack's strings. */
struct senml_base {
    const char *bn; /* NULL when no (or an empty) base name is in effect */
    size_t bn_len;
    bool bn_ok; /* name_ok(bn, bn_len), checked once per base name rather than per record */
    const char *bu;
    size_t bu_len;
    double bt, bv, bs;
};

struct senml_ctx {
    const decode_input *in;
    fp_record_batch *out;
    decode_error *err;
    struct senml_base base;
    struct senml_group *groups;
    size_t ngroups;
    struct senml_table group_table, metric_table;
};

/* One resolved SenML record, as far as the grouping and naming need it. */
struct senml_resolved {
    size_t idx; /* position in the pack, for error messages */
    char device[FP_DEVICE_ID_MAX];
    int64_t ts_ms;
    char stem[SENML_NAME_MAX + 1]; /* sanitised measurement name */
    size_t stem_len;
    size_t device_len;
    char suffix[SENML_SUFFIX_MAX + 1]; /* unit suffix without '_', "" when none */
    size_t suffix_len;
    const char *unit; /* as given, NULL when none */
    size_t unit_len;  /* 0 when none */
};

static bool is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* What a byte is in a SenML name: CH_ALNUM for ASCII letters and digits, CH_SEP for the other
 * bytes a name may hold (':', '/', '.', '_', '-'), 0 for the rest. One table lookup per byte is
 * cheaper than the comparisons, and every record's whole name is checked and sanitised. */
enum { CH_ALNUM = 1, CH_SEP = 2 };

/* clang-format off */
static const uint8_t name_class[256] = {
    ['-'] = CH_SEP, ['.'] = CH_SEP, ['/'] = CH_SEP, [':'] = CH_SEP, ['_'] = CH_SEP,
    ['0'] = CH_ALNUM, ['1'] = CH_ALNUM, ['2'] = CH_ALNUM, ['3'] = CH_ALNUM, ['4'] = CH_ALNUM,
    ['5'] = CH_ALNUM, ['6'] = CH_ALNUM, ['7'] = CH_ALNUM, ['8'] = CH_ALNUM, ['9'] = CH_ALNUM,
    ['A'] = CH_ALNUM, ['B'] = CH_ALNUM, ['C'] = CH_ALNUM, ['D'] = CH_ALNUM, ['E'] = CH_ALNUM,
    ['F'] = CH_ALNUM, ['G'] = CH_ALNUM, ['H'] = CH_ALNUM, ['I'] = CH_ALNUM, ['J'] = CH_ALNUM,
    ['K'] = CH_ALNUM, ['L'] = CH_ALNUM, ['M'] = CH_ALNUM, ['N'] = CH_ALNUM, ['O'] = CH_ALNUM,
    ['P'] = CH_ALNUM, ['Q'] = CH_ALNUM, ['R'] = CH_ALNUM, ['S'] = CH_ALNUM, ['T'] = CH_ALNUM,
    ['U'] = CH_ALNUM, ['V'] = CH_ALNUM, ['W'] = CH_ALNUM, ['X'] = CH_ALNUM, ['Y'] = CH_ALNUM,
    ['Z'] = CH_ALNUM,
    ['a'] = CH_ALNUM, ['b'] = CH_ALNUM, ['c'] = CH_ALNUM, ['d'] = CH_ALNUM, ['e'] = CH_ALNUM,
    ['f'] = CH_ALNUM, ['g'] = CH_ALNUM, ['h'] = CH_ALNUM, ['i'] = CH_ALNUM, ['j'] = CH_ALNUM,
    ['k'] = CH_ALNUM, ['l'] = CH_ALNUM, ['m'] = CH_ALNUM, ['n'] = CH_ALNUM, ['o'] = CH_ALNUM,
    ['p'] = CH_ALNUM, ['q'] = CH_ALNUM, ['r'] = CH_ALNUM, ['s'] = CH_ALNUM, ['t'] = CH_ALNUM,
    ['u'] = CH_ALNUM, ['v'] = CH_ALNUM, ['w'] = CH_ALNUM, ['x'] = CH_ALNUM, ['y'] = CH_ALNUM,
    ['z'] = CH_ALNUM,
};
/* clang-format on */

static inline bool is_alnum(char c)
{
    return name_class[(unsigned char)c] == CH_ALNUM;
}

static inline bool is_separator(char c)
{
    return name_class[(unsigned char)c] == CH_SEP;
}

/* True when the NUL-terminated strings a and b are equal. Inline, for the short names of this
 * reader's tables, where a call to strcmp would cost more than the comparison. */
static inline bool str_eq(const char *a, const char *b)
{
    size_t i = 0;

    while (a[i] != '\0' && a[i] == b[i])
        i++;
    return a[i] == b[i];
}

/* A JSON array, possibly after whitespace. */
static bool senml_sniff(const uint8_t *data, size_t len)
{
    size_t i = 0;

    while (i < len && is_space(data[i]))
        i++;
    return i < len && data[i] == '[';
}

#define HASH_SEED 2166136261u

/* A hash of bytes, continuing from h: eight bytes per multiplication rather than one, as the
 * tables hash every record's device and metric name. Only the tables' probing depends on it,
 * never the output. The last 1..7 bytes are read as one word together with their count, so
 * that "a" and "a\0" differ. */
static uint32_t hash_bytes(uint32_t h, const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t x = h;

    for (; len >= 8; p += 8, len -= 8) {
        uint64_t w;

        memcpy(&w, p, sizeof(w));
        x = (x ^ w) * UINT64_C(0x9e3779b97f4a7c15);
        x ^= x >> 29;
    }
    if (len > 0) {
        uint64_t w = 0;

        memcpy(&w, p, len);
        x = (x ^ w ^ (uint64_t)len << 56) * UINT64_C(0x9e3779b97f4a7c15);
        x ^= x >> 29;
    }
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    return (uint32_t)(x >> 32);
}

/* Allocates a table for up to `entries` entries at a load of at most one half. Returns 0, or
 * -1 when memory runs out. */
static int table_init(struct senml_table *t, size_t entries)
{
    size_t n = 16;

    while (n < entries * 2)
        n *= 2;
    t->slots = malloc(n * sizeof(*t->slots));
    if (t->slots == NULL)
        return -1;
    /* All bits set is group -1 (empty) in two's complement; one memset beats a loop of
     * strided stores. */
    memset(t->slots, 0xff, n * sizeof(*t->slots));
    t->mask = n - 1;
    return 0;
}

static void table_free(struct senml_table *t)
{
    free(t->slots);
    t->slots = NULL;
}

/* Writes a sanitised copy of s into out, NUL-terminated, and returns its length: ASCII
 * letters and digits lowercased, every run of other bytes one '_', none at either end. The
 * copy is never longer than s, so out needs len + 1 bytes. */
static size_t sanitize(const char *s, size_t len, char *out)
{
    size_t n = 0;
    bool gap = false;

    for (size_t i = 0; i < len; i++) {
        char c = s[i];

        if (!is_alnum(c)) {
            gap = n > 0;
            continue;
        }
        if (gap)
            out[n++] = '_';
        gap = false;
        out[n++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    out[n] = '\0';
    return n;
}

/* True when every byte of s is one of [A-Za-z0-9:./_-]. */
static bool name_bytes_ok(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (name_class[(unsigned char)s[i]] == 0)
            return false;
    return true;
}

/* True when a resolved name matches [A-Za-z0-9][A-Za-z0-9:./_-]*. */
static bool name_ok(const char *s, size_t len)
{
    return len > 0 && is_alnum(s[0]) && name_bytes_ok(s + 1, len - 1);
}

static bool type_ok(const struct senml_member *item, enum senml_type type)
{
    switch (type) {
    case T_STRING:
        return item->type == J_STRING;
    case T_NUMBER:
        return item->type == J_NUMBER && isfinite(item->num);
    case T_BOOL:
    default:
        return item->type == J_TRUE || item->type == J_FALSE;
    }
}

static const char *type_name(enum senml_type type)
{
    return type == T_STRING ? "string" : type == T_NUMBER ? "finite number" : "boolean";
}

/* The label a key of len bytes names, L_COUNT for none. Every label is one to four bytes, so
 * the key's length and bytes pick it with a switch; the key is exactly its bytes (the readers
 * keep no NUL inside a key), so this is the same as comparing it with every label's name. */
static enum senml_label label_of(const char *key, size_t len)
{
    switch (len) {
    case 1:
        switch (key[0]) {
        case 'n':
            return L_N;
        case 'u':
            return L_U;
        case 'v':
            return L_V;
        case 's':
            return L_S;
        case 't':
            return L_T;
        default:
            return L_COUNT;
        }
    case 2:
        if (key[0] == 'b') {
            switch (key[1]) {
            case 'n':
                return L_BN;
            case 't':
                return L_BT;
            case 'u':
                return L_BU;
            case 'v':
                return L_BV;
            case 's':
                return L_BS;
            default:
                return L_COUNT;
            }
        }
        if (key[0] == 'v') {
            switch (key[1]) {
            case 's':
                return L_VS;
            case 'b':
                return L_VB;
            case 'd':
                return L_VD;
            default:
                return L_COUNT;
            }
        }
        return key[0] == 'u' && key[1] == 't' ? L_UT : L_COUNT;
    case 4:
        return memcmp(key, "bver", 4) == 0 ? L_BVER : L_COUNT;
    default:
        return L_COUNT;
    }
}

/* Finds the labels of one SenML record. Fails on an unknown label ending in '_', a label
 * given twice or a value of the wrong type. Returns 0 or -1 with the error filled in. */
static int collect_labels(struct senml_ctx *c, size_t idx, const struct senml_member *members,
                          size_t count, const struct senml_member *lab[L_COUNT])
{
    /* A constant size lets the compiler store the pointers inline instead of a rep stos. */
    memset(lab, 0, L_COUNT * sizeof(lab[0]));
    for (size_t i = 0; i < count; i++) {
        const struct senml_member *el = &members[i];
        const char *key = el->key;
        enum senml_label k = label_of(key, el->key_len);
        const char *code;

        if (k == L_COUNT) {
            size_t klen = el->key_len;

            if (klen > 0 && key[klen - 1] == '_')
                return decode_fail(c->err, "senml_unknown_mandatory",
                                   "pack[%zu]: unknown mandatory label \"%.32s\"", idx, key);
            continue;
        }
        code = label_defs[k].is_value ? "senml_value" : "senml_bad_field";
        if (lab[k] != NULL)
            return decode_fail(c->err, code, "pack[%zu]: label \"%s\" given twice", idx, key);
        if (!type_ok(el, label_defs[k].type))
            return decode_fail(c->err, code, "pack[%zu]: %s: expected a %s", idx, key,
                               type_name(label_defs[k].type));
        lab[k] = el;
    }
    return 0;
}

/* Fails on a member given twice in one SenML record. Labels given twice were refused with their
 * own codes by collect_labels; any other member twice is "duplicate_key". Returns 0 or -1 with
 * the error filled in. */
static int check_unique_members(struct senml_ctx *c, size_t idx, const struct senml_member *members,
                                size_t count)
{
    fp_json_key local[16], *keys = local, repeated;
    bool found;

    if (count < 2)
        return 0;
    if (count > sizeof(local) / sizeof(local[0])) {
        keys = malloc(count * sizeof(*keys));
        if (keys == NULL)
            return decode_fail(c->err, "no_memory", "out of memory");
    }
    for (size_t i = 0; i < count; i++)
        keys[i] = (fp_json_key){members[i].key, members[i].key_len};
    found = fp_json_find_repeated_key(keys, count, &repeated);
    if (keys != local)
        free(keys);
    if (found)
        return decode_fail(c->err, "duplicate_key", "pack[%zu]: member \"%.32s\" given twice", idx,
                           repeated.s);
    return 0;
}

/* Applies the record's base fields to the base in effect. Fails on a bver above what this
 * reader supports. */
static int update_base(struct senml_ctx *c, size_t idx, const struct senml_member *lab[L_COUNT])
{
    struct senml_base *b = &c->base;

    if (lab[L_BVER] != NULL && lab[L_BVER]->num > SENML_VERSION_MAX)
        return decode_fail(c->err, "senml_version", "pack[%zu]: bver %g is above the supported %d",
                           idx, lab[L_BVER]->num, SENML_VERSION_MAX);
    if (lab[L_BN] != NULL) {
        b->bn_len = lab[L_BN]->str_len;
        b->bn = b->bn_len > 0 ? lab[L_BN]->str : NULL;
        b->bn_ok = b->bn_len > 0 && name_ok(b->bn, b->bn_len);
    }
    if (lab[L_BU] != NULL) {
        b->bu = lab[L_BU]->str;
        b->bu_len = lab[L_BU]->str_len;
    }
    if (lab[L_BT] != NULL)
        b->bt = lab[L_BT]->num;
    if (lab[L_BV] != NULL)
        b->bv = lab[L_BV]->num;
    if (lab[L_BS] != NULL)
        b->bs = lab[L_BS]->num;
    return 0;
}

/* Event time in ms of a resolved SenML time: absolute Unix seconds from 2^28 on, otherwise
 * seconds relative to now_ms. Times out of range saturate (see SENML_MS_LIMIT). */
static int64_t resolve_time_ms(double t, int64_t now_ms)
{
    double ms = t * 1000.0;
    int64_t rel;

    if (t >= SENML_ABS_TIME)
        return ms > SENML_MS_LIMIT ? INT64_MAX : llround(ms);
    if (ms < -SENML_MS_LIMIT)
        return INT64_MIN;
    rel = llround(ms);
    if (rel < 0 && now_ms < INT64_MIN - rel)
        return INT64_MIN;
    if (rel > 0 && now_ms > INT64_MAX - rel)
        return INT64_MAX;
    return now_ms + rel;
}

/* Resolves the record's name, time, unit and device (bases already applied). Returns 0 or -1
 * with the error filled in. */
static int resolve(struct senml_ctx *c, const struct senml_member *lab[L_COUNT],
                   struct senml_resolved *res)
{
    const struct senml_base *b = &c->base;
    const char *n = lab[L_N] != NULL ? lab[L_N]->str : "";
    size_t n_len = lab[L_N] != NULL ? lab[L_N]->str_len : 0, bn_len = b->bn != NULL ? b->bn_len : 0;
    char name[SENML_NAME_MAX + 1];
    const char *last;
    size_t last_len;

    /* Name = bn + n, then the measurement's own part of it. */
    if (bn_len + n_len == 0)
        return decode_fail(c->err, "senml_bad_name", "pack[%zu]: empty name", res->idx);
    if (bn_len > SENML_NAME_MAX || n_len > SENML_NAME_MAX - bn_len)
        return decode_fail(c->err, "senml_bad_name", "pack[%zu]: name longer than %d bytes",
                           res->idx, SENML_NAME_MAX);
    if (bn_len > 0)
        memcpy(name, b->bn, bn_len);
    memcpy(name + bn_len, n, n_len);
    name[bn_len + n_len] = '\0';
    /* name_ok of bn + n is name_ok of bn (known) and every byte of n a name byte. */
    if (bn_len > 0 ? !b->bn_ok || !name_bytes_ok(n, n_len) : !name_ok(n, n_len))
        return decode_fail(c->err, "senml_bad_name", "pack[%zu]: bad name \"%.64s\"", res->idx,
                           name);
    if (bn_len > 0 && n_len > 0) {
        last = n;
        last_len = n_len;
    } else {
        size_t i = bn_len + n_len;

        while (i > 0 && name[i - 1] != ':' && name[i - 1] != '/')
            i--;
        last = name + i;
        last_len = bn_len + n_len - i;
    }
    res->stem_len = sanitize(last, last_len, res->stem);
    if (res->stem_len == 0)
        return decode_fail(c->err, "senml_bad_name",
                           "pack[%zu]: name \"%.64s\" names no measurement", res->idx, name);

    /* Unit = u, else bu; known units take their conventional suffix. */
    res->unit = lab[L_U] != NULL ? lab[L_U]->str : b->bu;
    res->unit_len = lab[L_U] != NULL ? lab[L_U]->str_len : b->bu != NULL ? b->bu_len : 0;
    res->suffix[0] = '\0';
    res->suffix_len = 0;
    if (res->unit != NULL) {
        size_t i = 0, unit_len = res->unit_len;

        if (unit_len > SENML_UNIT_MAX)
            return decode_fail(c->err, "senml_bad_field", "pack[%zu]: unit longer than %d bytes",
                               res->idx, SENML_UNIT_MAX);
        while (i < sizeof(unit_suffixes) / sizeof(unit_suffixes[0]) &&
               !str_eq(unit_suffixes[i].unit, res->unit))
            i++;
        if (i < sizeof(unit_suffixes) / sizeof(unit_suffixes[0])) {
            size_t slen = strlen(unit_suffixes[i].suffix);

            memcpy(res->suffix, unit_suffixes[i].suffix, slen + 1);
            res->suffix_len = slen;
        } else {
            res->suffix_len = sanitize(res->unit, unit_len, res->suffix);
        }
    }

    /* Time = bt + t. */
    {
        double t = b->bt + (lab[L_T] != NULL ? lab[L_T]->num : 0.0);

        if (!isfinite(t))
            return decode_fail(c->err, "senml_bad_field", "pack[%zu]: time out of range", res->idx);
        res->ts_ms = resolve_time_ms(t, c->in->received_at_ms);
    }

    /* Device: the message key, else the base name without its trailing separator. */
    if (c->in->key != NULL && c->in->key_len > 0) {
        /* Invalid UTF-8 would be re-encoded as U+FFFD and could then no longer fit. */
        if (c->in->key_len >= FP_DEVICE_ID_MAX || memchr(c->in->key, '\0', c->in->key_len) ||
            !fp_json_utf8_valid(c->in->key, c->in->key_len, NULL))
            return decode_fail(c->err, "bad_device_id",
                               "message key is not a UTF-8 device id of at most %d bytes",
                               FP_DEVICE_ID_MAX - 1);
        memcpy(res->device, c->in->key, c->in->key_len);
        res->device[c->in->key_len] = '\0';
        res->device_len = c->in->key_len;
    } else {
        size_t dlen = bn_len;

        if (dlen > 0 && is_separator(b->bn[dlen - 1]))
            dlen--;
        if (dlen == 0)
            return decode_fail(c->err, "missing_device_id",
                               "pack[%zu]: no message key and no base name to name the device",
                               res->idx);
        if (dlen >= FP_DEVICE_ID_MAX)
            return decode_fail(c->err, "bad_device_id",
                               "pack[%zu]: device id from the base name is longer than %d bytes",
                               res->idx, FP_DEVICE_ID_MAX - 1);
        memcpy(res->device, b->bn, dlen);
        res->device[dlen] = '\0';
        res->device_len = dlen;
    }
    return 0;
}

/* The group of the record's device and time, created (with its canonical record) at its first
 * appearance. Returns its index, or -1 when memory runs out. */
static int32_t find_group(struct senml_ctx *c, const struct senml_resolved *res)
{
    size_t dlen = res->device_len;
    uint32_t h =
        hash_bytes(hash_bytes(HASH_SEED, res->device, dlen), &res->ts_ms, sizeof(res->ts_ms));
    struct senml_table *t = &c->group_table;
    size_t i = h & t->mask;
    struct senml_group *g;
    fp_record *r;

    for (; t->slots[i].group >= 0; i = (i + 1) & t->mask) {
        if (t->slots[i].hash == h) {
            const fp_record *o = &c->out->recs[c->groups[t->slots[i].group].rec];

            if (o->ts_ms == res->ts_ms && strcmp(o->device_id, res->device) == 0)
                return t->slots[i].group;
        }
    }
    r = decode_batch_next(c->out);
    if (r == NULL)
        return -1;
    memcpy(r->device_id, res->device, dlen + 1);
    r->ts_ms = res->ts_ms;
    memcpy(r->format, "senml", sizeof("senml"));
    g = &c->groups[c->ngroups];
    g->rec = c->out->len - 1;
    g->pos_seen = 0;
    memset(g->pos, 0, sizeof(g->pos));
    t->slots[i].hash = h;
    t->slots[i].group = (int32_t)c->ngroups;
    t->slots[i].metric = -1;
    return (int32_t)c->ngroups++;
}

/* Sets the metric `name` (nlen bytes) of group g to the value, adding it or replacing an earlier
 * measurement of the same name in the same record (the last one wins, as a JSON object reader
 * would have it). A string value is str, slen bytes. Returns 0, or -1 when memory runs out. */
static int put_metric(struct senml_ctx *c, int32_t g, const char *name, size_t nlen,
                      fp_metric_kind kind, double num, bool bval, const char *str, size_t slen)
{
    fp_record *r = &c->out->recs[c->groups[g].rec];
    uint32_t h = hash_bytes(hash_bytes(HASH_SEED, &g, sizeof(g)), name, nlen);
    struct senml_table *t = &c->metric_table;
    size_t i = h & t->mask;
    fp_metric *m;

    for (; t->slots[i].group >= 0; i = (i + 1) & t->mask) {
        if (t->slots[i].hash != h || t->slots[i].group != g)
            continue;
        m = &r->metrics[t->slots[i].metric];
        if (m->name.len == nlen && memcmp(fp_record_str(r, m->name), name, nlen) == 0) {
            if (kind == FP_METRIC_STRING) {
                bool ok;
                fp_str s = fp_record_put_str(r, str, slen, &ok);

                if (!ok)
                    return -1;
                m->str = s;
            }
            m->kind = kind;
            m->num = num;
            m->b = bval;
            return 0;
        }
    }
    /* What fp_record_add_metric_* do, with the name's length already known: a string value
     * goes into the arena first, so that a failure leaves no half-made metric. */
    {
        fp_str sv = {0, 0};
        bool ok = true;

        if (kind == FP_METRIC_STRING)
            sv = fp_record_put_str(r, str, slen, &ok);
        m = ok ? fp_record_push_metric(r, name, nlen, kind) : NULL;
        if (m == NULL)
            return -1;
        /* Every name is a sanitised stem (ASCII letters, digits, '_'), "_sum" and a suffix that
         * is sanitised or from unit_suffixes, or one of pos_metric_names: all plain. */
        m->name_plain = true;
        m->num = kind == FP_METRIC_NUMBER ? num : 0;
        m->b = kind == FP_METRIC_BOOL ? bval : false;
        m->str = sv;
    }
    t->slots[i].hash = h;
    t->slots[i].group = g;
    t->slots[i].metric = (int32_t)(r->metrics_len - 1);
    return 0;
}

/* Writes the metric name of a measurement into out (SENML_METRIC_MAX + 1 bytes): the stem,
 * "_sum" for a sum, and "_<suffix>" for a unit. A stem already ending in the unit's suffix
 * keeps it only once, so that "voltage_v" in V stays "voltage_v" (and its sum is
 * "voltage_sum_v"). */
static size_t metric_name(const struct senml_resolved *res, bool sum, char *out)
{
    size_t slen = res->suffix_len, n = res->stem_len;

    if (slen > 0 && n > slen + 1 && res->stem[n - slen - 1] == '_' &&
        memcmp(res->stem + n - slen, res->suffix, slen) == 0)
        n -= slen + 1;
    memcpy(out, res->stem, n);
    if (sum) {
        memcpy(out + n, "_sum", 4);
        n += 4;
    }
    if (slen > 0) {
        out[n++] = '_';
        memcpy(out + n, res->suffix, slen);
        n += slen;
    }
    out[n] = '\0';
    return n;
}

/* True when the unit (ulen bytes, NULL for none) is one of the '|'-separated names; "" stands
 * for none. */
static bool unit_is(const char *unit, size_t ulen, const char *names)
{
    const char *p = names;

    for (;;) {
        const char *bar = strchr(p, '|');
        size_t wlen = bar != NULL ? (size_t)(bar - p) : strlen(p);

        if (wlen == ulen && (ulen == 0 || memcmp(p, unit, ulen) == 0))
            return true;
        if (bar == NULL)
            return false;
        p = bar + 1;
    }
}

/* Records a position measurement in its group, converted to the canonical unit. Returns 0 or
 * -1 with the error filled in. */
static int put_position(struct senml_ctx *c, int32_t g, enum senml_pos field,
                        const struct senml_resolved *res, double v)
{
    static const char *const units[P_COUNT] = {
        [P_LAT] = "|lat|deg",    [P_LON] = "|lon|deg", [P_ALT] = "|m",
        [P_SPEED] = "|km/h|m/s", [P_HEADING] = "|deg", [P_SATELLITES] = NULL,
    };
    struct senml_group *grp = &c->groups[g];

    if (units[field] != NULL && !unit_is(res->unit, res->unit_len, units[field]))
        return decode_fail(c->err, "senml_position", "pack[%zu]: %s: unit \"%.32s\" not supported",
                           res->idx, res->stem, res->unit != NULL ? res->unit : "");
    if (field == P_SPEED && res->unit != NULL && strcmp(res->unit, "m/s") == 0)
        v *= 3.6;
    if (!isfinite(v))
        return decode_fail(c->err, "senml_position", "pack[%zu]: %s out of range", res->idx,
                           res->stem);
    if (field == P_LAT && !(v >= -90 && v <= 90))
        return decode_fail(c->err, "senml_position",
                           "pack[%zu]: latitude %g out of range [-90, 90]", res->idx, v);
    if (field == P_LON && !(v >= -180 && v <= 180))
        return decode_fail(c->err, "senml_position",
                           "pack[%zu]: longitude %g out of range [-180, 180]", res->idx, v);
    if (field == P_SATELLITES && !(v >= 0 && v <= 255 && v == trunc(v)))
        return decode_fail(c->err, "senml_position",
                           "pack[%zu]: satellites %g is not an integer 0..255", res->idx, v);
    grp->pos[field] = v;
    grp->pos_seen |= 1u << field;
    return 0;
}

/* Decodes one SenML record into its group. Returns 0 or -1 with the error filled in. */
static int decode_one(struct senml_ctx *c, size_t idx, const struct senml_pack *pack)
{
    const struct senml_entry *entry = &pack->entries[idx];
    /* An empty object may come before any member was stored, when the list is still NULL. */
    const struct senml_member *members = entry->count > 0 ? pack->members + entry->first : NULL;
    const struct senml_member *lab[L_COUNT];
    struct senml_resolved res;
    char name[SENML_METRIC_MAX + 1];
    size_t nvalues = 0;
    int32_t g;
    size_t p = 0;

    if (!entry->is_object)
        return decode_fail(c->err, "senml_not_array", "pack[%zu]: expected an object", idx);
    if (collect_labels(c, idx, members, entry->count, lab) < 0 ||
        check_unique_members(c, idx, members, entry->count) < 0 || update_base(c, idx, lab) < 0)
        return -1;
    nvalues = (lab[L_V] != NULL) + (lab[L_VS] != NULL) + (lab[L_VB] != NULL) + (lab[L_VD] != NULL);
    if (nvalues > 1 || (nvalues == 0 && lab[L_S] == NULL))
        return decode_fail(c->err, "senml_value",
                           "pack[%zu]: expected exactly one of v, vs, vb, vd (or a sum s)", idx);
    res.idx = idx;
    if (resolve(c, lab, &res) < 0)
        return -1;
    g = find_group(c, &res);
    if (g < 0)
        return decode_fail(c->err, "no_memory", "out of memory");

    while (p < sizeof(pos_names) / sizeof(pos_names[0]) && !str_eq(pos_names[p].name, res.stem))
        p++;
    if (nvalues > 0 && p < sizeof(pos_names) / sizeof(pos_names[0])) {
        if (lab[L_V] == NULL)
            return decode_fail(c->err, "senml_position",
                               "pack[%zu]: %s: expected a number value (v)", idx, res.stem);
        if (!isfinite(c->base.bv + lab[L_V]->num))
            return decode_fail(c->err, "senml_value", "pack[%zu]: value out of range", idx);
        if (put_position(c, g, pos_names[p].field, &res, c->base.bv + lab[L_V]->num) < 0)
            return -1;
    } else if (nvalues > 0) {
        size_t nlen = metric_name(&res, false, name);
        int rc;

        if (lab[L_V] != NULL) {
            double v = c->base.bv + lab[L_V]->num;

            if (!isfinite(v))
                return decode_fail(c->err, "senml_value", "pack[%zu]: value out of range", idx);
            rc = put_metric(c, g, name, nlen, FP_METRIC_NUMBER, v, false, NULL, 0);
        } else if (lab[L_VB] != NULL) {
            rc =
                put_metric(c, g, name, nlen, FP_METRIC_BOOL, 0, lab[L_VB]->type == J_TRUE, NULL, 0);
        } else {
            const struct senml_member *s = lab[L_VS] != NULL ? lab[L_VS] : lab[L_VD];

            rc = put_metric(c, g, name, nlen, FP_METRIC_STRING, 0, false, s->str, s->str_len);
        }
        if (rc < 0)
            return decode_fail(c->err, "no_memory", "out of memory");
    }
    if (lab[L_S] != NULL) {
        double s = c->base.bs + lab[L_S]->num;
        size_t nlen;

        if (!isfinite(s))
            return decode_fail(c->err, "senml_value", "pack[%zu]: sum out of range", idx);
        nlen = metric_name(&res, true, name);
        if (put_metric(c, g, name, nlen, FP_METRIC_NUMBER, s, false, NULL, 0) < 0)
            return decode_fail(c->err, "no_memory", "out of memory");
    }
    return 0;
}

/* Applies the position measurements of every group: a position needs both latitude and
 * longitude; without either, the other position fields stay metrics. Returns 0 or -1 with the
 * error filled in. */
static int finish_positions(struct senml_ctx *c)
{
    const unsigned latlon = 1u << P_LAT | 1u << P_LON;

    for (size_t i = 0; i < c->ngroups; i++) {
        struct senml_group *g = &c->groups[i];
        fp_record *r = &c->out->recs[g->rec];

        if ((g->pos_seen & latlon) == latlon) {
            r->has_position = true;
            r->position.lat = g->pos[P_LAT];
            r->position.lon = g->pos[P_LON];
            /* What the pack did not report stays unreported, never 0. */
            fp_position_unknown(&r->position);
            if (g->pos_seen & 1u << P_ALT)
                r->position.alt_m = g->pos[P_ALT];
            if (g->pos_seen & 1u << P_SPEED)
                r->position.speed_kmh = g->pos[P_SPEED];
            if (g->pos_seen & 1u << P_HEADING)
                r->position.heading_deg = g->pos[P_HEADING];
            if (g->pos_seen & 1u << P_SATELLITES)
                r->position.satellites = (int)g->pos[P_SATELLITES];
            continue;
        }
        if ((g->pos_seen & latlon) != 0) {
            char ts[FP_RFC3339_LEN + 1];

            if (fp_time_format_ms(r->ts_ms, ts, sizeof(ts)) < 0)
                memcpy(ts, "(time out of range)", sizeof("(time out of range)"));
            return decode_fail(c->err, "senml_position", "%s at %s: %s", r->device_id, ts,
                               (g->pos_seen & 1u << P_LAT) != 0 ? "latitude without longitude"
                                                                : "longitude without latitude");
        }
        for (int f = P_ALT; f < P_COUNT; f++) {
            if ((g->pos_seen & 1u << f) != 0 &&
                put_metric(c, (int32_t)i, pos_metric_names[f], strlen(pos_metric_names[f]),
                           FP_METRIC_NUMBER, g->pos[f], false, NULL, 0) < 0)
                return decode_fail(c->err, "no_memory", "out of memory");
        }
    }
    return 0;
}

/* ---- Reading the pack ------------------------------------------------------------------ */

static void pack_free(struct senml_pack *pk)
{
    free(pk->entries);
    free(pk->members);
    free(pk->text);
    cJSON_Delete(pk->root);
    memset(pk, 0, sizeof(*pk));
}

/* Appends an entry to the pack's list. Returns it, or NULL when memory runs out. */
static struct senml_entry *push_entry(struct senml_pack *pk)
{
    if (pk->nentries == pk->entries_cap) {
        size_t cap = pk->entries_cap != 0 ? pk->entries_cap * 2 : 16;
        struct senml_entry *p = realloc(pk->entries, cap * sizeof(*p));

        if (p == NULL)
            return NULL;
        pk->entries = p;
        pk->entries_cap = cap;
    }
    return &pk->entries[pk->nentries++];
}

/* Appends a member to the pack's list. Returns it, or NULL when memory runs out. */
static struct senml_member *push_member(struct senml_pack *pk)
{
    if (pk->nmembers == pk->members_cap) {
        size_t cap = pk->members_cap != 0 ? pk->members_cap * 2 : 64;
        struct senml_member *p = realloc(pk->members, cap * sizeof(*p));

        if (p == NULL)
            return NULL;
        pk->members = p;
        pk->members_cap = cap;
    }
    return &pk->members[pk->nmembers++];
}

/* The strict reader's position in the JSON text, and where it copies the next string to. */
struct strict_reader {
    const char *p, *end;
    char *text;
};

/* Powers of ten that are exact in a double. */
static const double exact_pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static void strict_skip_space(struct strict_reader *r)
{
    while (r->p < r->end && is_space((uint8_t)*r->p))
        r->p++;
}

/* Reads the string whose opening quote is at r->p into a NUL-terminated copy. Returns the
 * copy, or NULL to decline: an escape or a control character (which cJSON would keep, and which
 * may be a NUL), or no closing quote. The copy takes one byte less than the quoted text, so a
 * text area as long as the JSON holds every string. */
static const char *strict_string(struct strict_reader *r, size_t *len)
{
    const char *start = r->p + 1, *q = start;
    char *copy = r->text;
    size_t n;

    while (q < r->end && *q != '"') {
        if (*q == '\\' || (uint8_t)*q < 0x20)
            return NULL;
        q++;
    }
    if (q == r->end)
        return NULL;
    n = (size_t)(q - start);
    memcpy(copy, start, n);
    copy[n] = '\0';
    r->text += n + 1;
    r->p = q + 1;
    *len = n;
    return copy;
}

/* Reads a number of the JSON grammar at r->p into *v. cJSON hands the number's text to strtod,
 * so *v must be what strtod makes of it ("C" locale, as everywhere in fleetpipe): the correctly
 * rounded double. Up to 19 significant digits times a power of ten up to 10^22 that is done
 * exactly here (Clinger's fast path: both factors are exact doubles and one multiplication or
 * division rounds correctly); other numbers go to strtod. Returns false to decline: not the
 * JSON grammar, or longer than 63 bytes (left to cJSON, whose reading of such numbers differs
 * between its versions). */
static bool strict_number(struct strict_reader *r, double *v)
{
    const char *start = r->p, *q = r->p;
    bool neg = false, fast = FLT_EVAL_METHOD == 0;
    uint64_t m = 0;
    int sig = 0, exp10 = 0;

    if (*q == '-') {
        neg = true;
        q++;
    }
    if (q == r->end || !is_digit(*q))
        return false;
    /* Digits beyond the 19th would overflow m; such numbers take strtod. Leading zeros are not
     * significant. */
    if (*q == '0') {
        q++;
    } else {
        for (; q < r->end && is_digit(*q); q++) {
            if (sig < 19) {
                m = m * 10 + (uint64_t)(*q - '0');
                sig++;
            } else {
                fast = false;
            }
        }
    }
    if (q < r->end && *q == '.') {
        q++;
        if (q == r->end || !is_digit(*q))
            return false;
        for (; q < r->end && is_digit(*q); q++) {
            if (m == 0 && *q == '0') {
                exp10--;
            } else if (sig < 19) {
                m = m * 10 + (uint64_t)(*q - '0');
                sig++;
                exp10--;
            } else {
                fast = false;
            }
        }
    }
    if (q < r->end && (*q == 'e' || *q == 'E')) {
        int sign = 1, e = 0;

        q++;
        if (q < r->end && (*q == '+' || *q == '-')) {
            sign = *q == '-' ? -1 : 1;
            q++;
        }
        if (q == r->end || !is_digit(*q))
            return false;
        for (; q < r->end && is_digit(*q); q++)
            if (e < 100000) /* beyond any double; only keeps e from overflowing */
                e = e * 10 + (*q - '0');
        exp10 += sign * e;
    }
    if (q - start > 63)
        return false;

    if (fast && m == 0) {
        *v = neg ? -0.0 : 0.0;
    } else if (fast && m <= (UINT64_C(1) << 53) && exp10 >= -22 && exp10 <= 22) {
        double d = (double)m;

        d = exp10 < 0 ? d / exact_pow10[-exp10] : d * exact_pow10[exp10];
        *v = neg ? -d : d;
    } else {
        char text[64];

        memcpy(text, start, (size_t)(q - start));
        text[q - start] = '\0';
        *v = strtod(text, NULL);
    }
    r->p = q;
    return true;
}

/* Reads the value at r->p into m. Returns false to decline: anything but a string, a number,
 * true or false. */
static bool strict_value(struct strict_reader *r, struct senml_member *m)
{
    size_t left = (size_t)(r->end - r->p);

    m->str = NULL;
    m->str_len = 0;
    m->num = 0;
    if (left == 0)
        return false;
    if (*r->p == '"') {
        m->type = J_STRING;
        m->str = strict_string(r, &m->str_len);
        return m->str != NULL;
    }
    if (*r->p == '-' || is_digit(*r->p)) {
        m->type = J_NUMBER;
        return strict_number(r, &m->num);
    }
    if (left >= 4 && memcmp(r->p, "true", 4) == 0) {
        m->type = J_TRUE;
        r->p += 4;
        return true;
    }
    if (left >= 5 && memcmp(r->p, "false", 5) == 0) {
        m->type = J_FALSE;
        r->p += 5;
        return true;
    }
    return false;
}

/* Reads the object whose '{' is at r->p into entry e. Returns false to decline. */
static bool strict_object(struct strict_reader *r, struct senml_pack *pk, struct senml_entry *e)
{
    e->is_object = true;
    e->first = pk->nmembers;
    e->count = 0;
    r->p++;
    strict_skip_space(r);
    if (r->p < r->end && *r->p == '}') {
        r->p++;
        return true;
    }
    for (;;) {
        struct senml_member *m;

        if (r->p == r->end || *r->p != '"')
            return false;
        m = push_member(pk);
        if (m == NULL)
            return false;
        m->key = strict_string(r, &m->key_len);
        if (m->key == NULL)
            return false;
        strict_skip_space(r);
        if (r->p == r->end || *r->p != ':')
            return false;
        r->p++;
        strict_skip_space(r);
        if (!strict_value(r, m))
            return false;
        e->count++;
        strict_skip_space(r);
        if (r->p == r->end)
            return false;
        if (*r->p == '}') {
            r->p++;
            return true;
        }
        if (*r->p != ',')
            return false;
        r->p++;
        strict_skip_space(r);
    }
}

/* The strict reader: fills pk from a pack of 1 to SENML_RECORDS_MAX objects of plain members
 * with nothing but JSON whitespace around it. Returns false to decline (pk then holds partial
 * lists, to be freed), whatever the reason: another form of JSON, a syntax error, an empty or
 * oversized pack, or no memory. cJSON then reads the pack and reports what is wrong. */
static bool strict_read(struct senml_pack *pk, const char *json, size_t len)
{
    struct strict_reader r = {json, json + len, NULL};

    strict_skip_space(&r);
    if (r.p == r.end || *r.p != '[')
        return false;
    r.p++;
    strict_skip_space(&r);
    if (r.p == r.end || *r.p == ']')
        return false;
    pk->text = malloc(len);
    if (pk->text == NULL)
        return false;
    r.text = pk->text;
    for (;;) {
        struct senml_entry *e;

        if (*r.p != '{' || pk->nentries >= SENML_RECORDS_MAX)
            return false;
        e = push_entry(pk);
        if (e == NULL || !strict_object(&r, pk, e))
            return false;
        strict_skip_space(&r);
        if (r.p == r.end)
            return false;
        if (*r.p == ']')
            break;
        if (*r.p != ',')
            return false;
        r.p++;
        strict_skip_space(&r);
        if (r.p == r.end)
            return false;
    }
    r.p++;
    strict_skip_space(&r);
    return r.p == r.end;
}

/* The member for one cJSON object member, with the types the labels distinguish. */
static void cjson_member(const cJSON *el, struct senml_member *m)
{
    m->key = el->string != NULL ? el->string : "";
    m->key_len = strlen(m->key);
    m->str = NULL;
    m->str_len = 0;
    m->num = 0;
    if (cJSON_IsString(el) && el->valuestring != NULL) {
        m->type = J_STRING;
        m->str = el->valuestring;
        m->str_len = strlen(m->str);
    } else if (cJSON_IsNumber(el)) {
        m->type = J_NUMBER;
        m->num = el->valuedouble;
    } else if (cJSON_IsTrue(el)) {
        m->type = J_TRUE;
    } else if (cJSON_IsFalse(el)) {
        m->type = J_FALSE;
    } else {
        m->type = J_OTHER;
    }
}

/* Reads the pack with cJSON into pk: any JSON it parses, with its errors. Fails on what does not
 * parse, on trailing data, and on anything but an array of 1 to SENML_RECORDS_MAX elements.
 * Returns 0, or -1 with err filled in. */
static int cjson_read(struct senml_pack *pk, const char *json, size_t len, decode_error *err)
{
    const char *end = NULL;
    const cJSON *el;
    size_t n = 0, nmembers = 0;

    pk->root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (pk->root == NULL) {
        size_t at = end != NULL && end >= json && end <= json + len ? (size_t)(end - json) : 0;

        return decode_fail(err, "json_syntax", "json: syntax error at byte %zu", at);
    }
    /* cJSON stops after the first value; anything but whitespace after it is not one JSON
     * document. */
    for (const char *p = end; p != NULL && p < json + len; p++)
        if (!is_space((uint8_t)*p))
            return decode_fail(err, "json_syntax", "json: trailing data at byte %zu",
                               (size_t)(p - json));
    /* cJSON cuts a string at U+0000 (the strict reader declines any escape, so only this reader
     * can meet one); PostgreSQL could not store it either. */
    {
        size_t at = 0;

        if (fp_json_find_nul(json, len, &at))
            return decode_fail(err, "nul_character", "json: U+0000 in a string at byte %zu", at);
    }
    if (!cJSON_IsArray(pk->root))
        return decode_fail(err, "senml_not_array", "a SenML pack is a JSON array of records");
    cJSON_ArrayForEach(el, pk->root)
    {
        const cJSON *member;

        if (++n > SENML_RECORDS_MAX)
            return decode_fail(err, "senml_too_large", "more than %d records in the pack",
                               SENML_RECORDS_MAX);
        if (cJSON_IsObject(el))
            cJSON_ArrayForEach(member, el) nmembers++;
    }
    if (n == 0)
        return decode_fail(err, "senml_empty", "empty SenML pack");

    pk->entries = malloc(n * sizeof(*pk->entries));
    pk->members = malloc((nmembers > 0 ? nmembers : 1) * sizeof(*pk->members));
    if (pk->entries == NULL || pk->members == NULL)
        return decode_fail(err, "no_memory", "out of memory");
    pk->entries_cap = n;
    pk->members_cap = nmembers;
    cJSON_ArrayForEach(el, pk->root)
    {
        struct senml_entry *e = &pk->entries[pk->nentries++];
        const cJSON *member;

        e->is_object = cJSON_IsObject(el);
        e->first = pk->nmembers;
        e->count = 0;
        if (!e->is_object)
            continue;
        cJSON_ArrayForEach(member, el)
        {
            cjson_member(member, &pk->members[pk->nmembers++]);
            e->count++;
        }
    }
    return 0;
}

/* ---- Decoding ---------------------------------------------------------------------------- */

/* Decodes a whole pack into out (which the caller cleared): one record per device and time.
 * Returns 0, or -1 with err filled in and nothing left in out. */
static int senml_decode(const decode_input *in, fp_record_batch *out, decode_error *err)
{
    struct senml_ctx c = {in, out, err};
    struct senml_pack pack = {0};
    const char *json = (const char *)in->data;
    size_t n;
    int rc = -1;

    /* JSON text is UTF-8 (RFC 8259); strings taken from anything else would not survive the
     * canonical record's JSON unchanged. */
    {
        size_t bad = 0;

        if (!fp_json_utf8_valid(json, in->len, &bad))
            return decode_fail(err, "json_syntax", "json: invalid UTF-8 at byte %zu", bad);
    }
    if (!strict_read(&pack, json, in->len)) {
        pack_free(&pack);
        if (cjson_read(&pack, json, in->len, err) < 0)
            goto done;
    }
    n = pack.nentries;
    /* Each record adds at most one group, two metrics, and four position metrics per group. */
    c.groups = malloc(n * sizeof(*c.groups));
    if (c.groups == NULL || table_init(&c.group_table, n) < 0 ||
        table_init(&c.metric_table, 6 * n) < 0) {
        decode_fail(err, "no_memory", "out of memory");
        goto done;
    }
    for (size_t idx = 0; idx < n; idx++)
        if (decode_one(&c, idx, &pack) < 0)
            goto done;
    rc = finish_positions(&c);
done:
    if (rc < 0)
        out->len = 0;
    table_free(&c.metric_table);
    table_free(&c.group_table);
    free(c.groups);
    pack_free(&pack);
    return rc;
}

const decoder decoder_senml = {
    .name = "senml",
    .content_types = "application/senml+json",
    .sniff = senml_sniff,
    .decode = senml_decode,
};
