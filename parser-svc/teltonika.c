/* Teltonika AVL packets (Codec 8, 8 Extended, 16; PROTOCOLS.md): one
 * canonical record per AVL record.
 *
 * Two decoders, one per framing:
 * - "teltonika-tcp", content type "application/vnd.teltonika.avl": the packet as a unit sends
 *   it over TCP (preamble, data field length, CRC). The IMEI is not in the packet; the gateway
 *   puts it in the Kafka key.
 * - "teltonika-udp", content type "application/vnd.teltonika.avl+udp": the UDP datagram
 *   (length, packet id, 0x01, AVL packet id, IMEI, no CRC). The IMEI comes from the datagram.
 * Neither content type is registered anywhere; they are the names fleetpipe's gateways and
 * fleet-sim put in the `content-type` header.
 *
 * A packet decodes whole or not at all. The decoder walks the bytes once with every read
 * bounds-checked against the end of the region the lengths declare, allocates nothing it has
 * not first checked the bytes for, and reports the first fault with a stable code and the byte
 * offset where it found it. Codec 16's generation type and the UDP packet ids are read and
 * checked for presence but have no place in the canonical record. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fp_json.h"
#include "parser-svc/decode.h"
#include "parser-svc/teltonika_frame.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- Codecs ---------------------------------------------------------------------------- */

/* Where the codecs differ on the wire: field widths in bytes. */
struct codec {
    uint8_t id;
    const char *format; /* the canonical record's "format" */
    uint8_t event_w;    /* event IO id */
    bool generation;    /* a generation type byte follows the event IO id (Codec 16) */
    uint8_t total_w;    /* total IO count */
    uint8_t count_w;    /* count of each group */
    uint8_t id_w;       /* IO id */
    bool nx;            /* an NX group (count, then id, length, bytes) ends the IO element */
};

static const struct codec codecs[] = {
    {TK_CODEC8, "teltonika.codec8", 1, false, 1, 1, 1, false},
    {TK_CODEC8E, "teltonika.codec8e", 2, false, 2, 2, 2, true},
    {TK_CODEC16, "teltonika.codec16", 2, true, 1, 1, 2, false},
};

/* The fixed value widths, in the order their groups appear. */
static const uint8_t group_sizes[4] = {1, 2, 4, 8};

/* Size of a record's fixed part: timestamp 8, priority 1, GPS element 15. */
#define RECORD_HEAD 24

/* ---- Named IO elements ----------------------------------------------------------------- */

enum named_kind {
    NAMED_BOOL, /* 0 is false, anything else true */
    NAMED_UINT, /* the unsigned value ÷ divisor */
    NAMED_SINT, /* the value as two's complement of its width ÷ divisor */
    NAMED_TEXT  /* NX bytes as ASCII text */
};

/* One IO id that also becomes a metric. Scaled values are value ÷ divisor rounded to
 * `decimals` places: dividing the exact integer by an exact power of ten gives the double
 * nearest the decimal, so 24079 ÷ 1000 prints as 24.079 (24079 × 0.001 would not), and the
 * rounding keeps divisions such as minutes ÷ 60 to a sensible number of digits. When two ids
 * fill the same metric in one record, the one listed first here wins (the CAN bus's own value
 * over the adapter's counted one). An id given twice in one record is refused by the record
 * check (decode.c: "duplicate_key"), as io and the metric would disagree. */
struct named_io {
    uint16_t id;
    const char *name;
    enum named_kind kind;
    uint16_t divisor;
    uint8_t decimals;
};

static const struct named_io named_ios[] = {
    {239, "ignition", NAMED_BOOL, 1, 0},
    {240, "movement", NAMED_BOOL, 1, 0},
    {21, "gsm_signal", NAMED_UINT, 1, 0},
    {66, "external_voltage_v", NAMED_UINT, 1000, 3},
    {67, "battery_voltage_v", NAMED_UINT, 1000, 3},
    {16, "odometer_m", NAMED_UINT, 1, 0},
    {199, "trip_odometer_m", NAMED_UINT, 1, 0},
    {181, "pdop", NAMED_UINT, 10, 1},
    {182, "hdop", NAMED_UINT, 10, 1},
    {84, "fuel_level_l", NAMED_UINT, 10, 1},
    {89, "fuel_level_pct", NAMED_UINT, 1, 0},
    {83, "fuel_used_l", NAMED_UINT, 10, 1},
    {107, "fuel_used_l", NAMED_UINT, 10, 1},
    {102, "engine_hours_h", NAMED_UINT, 60, 2},
    {103, "engine_hours_h", NAMED_UINT, 60, 2},
    {115, "coolant_temp_c", NAMED_SINT, 10, 1},
    {256, "vin", NAMED_TEXT, 1, 0},
    {281, "dtc", NAMED_TEXT, 1, 0},
};

#define NNAMED COUNT(named_ios)
/* Named ids must be below this; the lookup is then one array index. */
#define NAMED_ID_LIMIT 1024

/* named_index[id] is 1 + the table index of id, or 0. named_slot[i] is the table index of the
 * first entry with entry i's metric name, and named_len[i] the length of that name, so that
 * adding a metric neither measures nor looks up its name again. All three are built once from
 * named_ios. */
static uint8_t named_index[NAMED_ID_LIMIT];
static uint8_t named_slot[NNAMED];
static uint8_t named_len[NNAMED];
static pthread_once_t named_once = PTHREAD_ONCE_INIT;

/* A table that breaks these rules is a bug in this file, caught by the first decode. */
static void build_named_index(void)
{
    if (NNAMED >= 255) {
        fprintf(stderr, "teltonika: named_ios has more than 254 entries\n");
        abort();
    }
    for (size_t i = 0; i < NNAMED; i++) {
        const struct named_io *n = &named_ios[i];
        size_t len = strlen(n->name);

        if (n->id >= NAMED_ID_LIMIT || named_index[n->id] != 0 || n->divisor == 0) {
            fprintf(stderr, "teltonika: named_ios entry for id %u is invalid or repeated\n", n->id);
            abort();
        }
        if (len > UINT8_MAX) {
            fprintf(stderr, "teltonika: metric name %.32s... is too long\n", n->name);
            abort();
        }
        /* add_named marks every name plain (fp_metric.name_plain). */
        if (!fp_json_is_plain(n->name, len)) {
            fprintf(stderr, "teltonika: metric name %s needs JSON escaping\n", n->name);
            abort();
        }
        named_index[n->id] = (uint8_t)(i + 1);
        named_slot[i] = (uint8_t)i;
        named_len[i] = (uint8_t)len;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(named_ios[j].name, n->name) == 0) {
                if (named_ios[j].kind != n->kind) {
                    fprintf(stderr, "teltonika: metric %s has two kinds\n", n->name);
                    abort();
                }
                named_slot[i] = (uint8_t)j;
                break;
            }
        }
    }
}

/* Which metric of the record each slot filled, and from which table entry. */
struct metric_slots {
    uint8_t metric[NNAMED]; /* index into r->metrics, SLOT_EMPTY when not yet set */
    uint8_t entry[NNAMED];  /* named_ios index that set it */
};

#define SLOT_EMPTY 0xff

static double scaled(const struct named_io *n, double v)
{
    static const double pow10[] = {1, 10, 100, 1000, 10000, 100000, 1000000};
    double q, p;

    if (n->divisor == 1)
        return v;
    q = v / n->divisor;
    p = pow10[n->decimals < COUNT(pow10) ? n->decimals : COUNT(pow10) - 1];
    /* An integer divided by 10^decimals is already the double nearest the decimal. */
    if (n->divisor == p)
        return q;
    /* Beyond 2^53 the scaled value has no fraction digits left to round. */
    if (fabs(q * p) < 9007199254740992.0)
        q = round(q * p) / p;
    return q;
}

/* The value of a `width`-byte field read as two's complement. */
static int64_t sign_extend(uint64_t v, unsigned width)
{
    if (width >= 8)
        return (int64_t)v;
    if (v & ((uint64_t)1 << (8 * width - 1)))
        return (int64_t)v - ((int64_t)1 << (8 * width));
    return (int64_t)v;
}

/* Adds (or, for a better-ranked entry, replaces) the metric of named_ios[entry] for an IO
 * element: a fixed-size value (width 1..8) or NX bytes (width 0). An element whose kind does
 * not suit the metric (text in a fixed-size group, bytes that are not ASCII) stays in io only.
 * Returns 0, or -1 when memory runs out. */
static int add_named(fp_record *r, struct metric_slots *s, size_t entry, unsigned width,
                     uint64_t value, const uint8_t *bytes, size_t len)
{
    const struct named_io *n = &named_ios[entry];
    size_t slot = named_slot[entry];
    fp_metric *m;
    size_t at;

    if ((n->kind == NAMED_TEXT) != (width == 0))
        return 0;
    if (s->metric[slot] != SLOT_EMPTY && s->entry[slot] <= entry)
        return 0;
    if (n->kind == NAMED_TEXT) {
        /* Units pad fixed-size text fields with NULs. */
        while (len > 0 && bytes[len - 1] == 0)
            len--;
        if (len == 0)
            return 0;
        for (size_t i = 0; i < len; i++)
            if (bytes[i] < 0x20 || bytes[i] > 0x7e)
                return 0;
    }
    if (s->metric[slot] == SLOT_EMPTY) {
        at = r->metrics_len;
        /* What fp_record_add_metric_* would do, but with the name's length known: the text's
         * value goes into the arena first, so that a failure leaves no half-made metric. */
        if (n->kind == NAMED_TEXT) {
            bool ok;
            fp_str str = fp_record_put_str(r, (const char *)bytes, len, &ok);

            if (!ok ||
                (m = fp_record_push_metric(r, n->name, named_len[entry], FP_METRIC_STRING)) == NULL)
                return -1;
            m->str = str;
        } else if (n->kind == NAMED_BOOL) {
            m = fp_record_push_metric(r, n->name, named_len[entry], FP_METRIC_BOOL);
            if (m == NULL)
                return -1;
            m->b = value != 0;
        } else {
            m = fp_record_push_metric(r, n->name, named_len[entry], FP_METRIC_NUMBER);
            if (m == NULL)
                return -1;
            m->num = n->kind == NAMED_SINT ? scaled(n, (double)sign_extend(value, width))
                                           : scaled(n, (double)value);
        }
        m->name_plain = true; /* build_named_index checked the table's names */
        s->metric[slot] = (uint8_t)at;
        s->entry[slot] = (uint8_t)entry;
        return 0;
    }
    /* A better-ranked id for a metric already set: overwrite its value in place. */
    m = &r->metrics[s->metric[slot]];
    s->entry[slot] = (uint8_t)entry;
    switch (n->kind) {
    case NAMED_BOOL:
        m->b = value != 0;
        break;
    case NAMED_UINT:
        m->num = scaled(n, (double)value);
        break;
    case NAMED_SINT:
        m->num = scaled(n, (double)sign_extend(value, width));
        break;
    default: {
        bool ok;
        fp_str str = fp_record_put_str(r, (const char *)bytes, len, &ok);

        if (!ok)
            return -1;
        /* put_str may have moved the arena, not the metrics array. */
        r->metrics[s->metric[slot]].str = str;
        break;
    }
    }
    return 0;
}

/* ---- Reading ---------------------------------------------------------------------------- */

static inline uint16_t be16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t be64(const uint8_t *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/* An unsigned big-endian field of 1, 2, 4 or 8 bytes. */
static inline uint64_t be_uint(const uint8_t *p, unsigned width)
{
    switch (width) {
    case 1:
        return p[0];
    case 2:
        return be16(p);
    case 4:
        return be32(p);
    default:
        return be64(p);
    }
}

/* A cursor over the payload. `end` is one past the last byte the lengths declare for the
 * region being read (the TCP data field, the UDP datagram). */
struct walk {
    const uint8_t *data;
    size_t pos;
    size_t end;
    const char *region; /* what ends at `end`, for messages */
    unsigned rec;       /* 1-based number of the record being read, 0 outside records */
    decode_error *err;
};

static int fail_truncated(const struct walk *w, size_t n, const char *what)
{
    if (w->rec > 0)
        return decode_fail(w->err, "truncated",
                           "record %u: %s needs %zu bytes at offset %zu, but the %s ends at "
                           "offset %zu",
                           w->rec, what, n, w->pos, w->region, w->end);
    return decode_fail(w->err, "truncated",
                       "%s needs %zu bytes at offset %zu, but the %s ends at offset %zu", what, n,
                       w->pos, w->region, w->end);
}

/* Fails with "truncated" unless n more bytes are left in the region. */
static inline int need(const struct walk *w, size_t n, const char *what)
{
    if (w->end - w->pos >= n)
        return 0;
    return fail_truncated(w, n, what);
}

/* Reads one group of fixed-size IO elements (count, then id and value pairs) into r. *left
 * is how many elements the total IO count still allows; it is reduced by the group's count. */
static int read_group(struct walk *w, const struct codec *c, unsigned size, uint32_t *left,
                      fp_record *r, struct metric_slots *s)
{
    size_t count_at = w->pos, entry = (size_t)c->id_w + size;
    uint32_t n;
    const uint8_t *p;

    if (need(w, c->count_w, "IO group count") < 0)
        return -1;
    n = (uint32_t)be_uint(w->data + w->pos, c->count_w);
    w->pos += c->count_w;
    if (n > *left)
        return decode_fail(w->err, "io_count_mismatch",
                           "record %u: the %u-byte IO group at offset %zu counts %u elements, "
                           "more than the %u the total IO count leaves",
                           w->rec, size, count_at, n, *left);
    /* n * entry cannot overflow (n < 2^16, entry <= 10), and the product spares the 64-bit
     * division that (end - pos) / entry < n, the same test, would cost for every group. */
    if (w->end - w->pos < (size_t)n * entry) {
        char what[64];

        snprintf(what, sizeof(what), "%u IO elements of %u-byte values", n, size);
        return fail_truncated(w, n * entry, what);
    }
    *left -= n;
    p = w->data + w->pos;
    for (uint32_t i = 0; i < n; i++, p += entry) {
        uint32_t id = (uint32_t)be_uint(p, c->id_w);
        uint64_t v = be_uint(p + c->id_w, size);

        if (fp_record_add_io_uint(r, id, v) < 0)
            return decode_fail(w->err, "no_memory", "out of memory");
        if (id < NAMED_ID_LIMIT && named_index[id] != 0 &&
            add_named(r, s, named_index[id] - 1u, size, v, NULL, 0) < 0)
            return decode_fail(w->err, "no_memory", "out of memory");
    }
    w->pos += n * entry;
    return 0;
}

/* Reads Codec 8E's NX group (count, then id, length and bytes per element) into r. */
static int read_nx_group(struct walk *w, uint32_t *left, fp_record *r, struct metric_slots *s)
{
    size_t count_at = w->pos;
    uint32_t n;

    if (need(w, 2, "NX group count") < 0)
        return -1;
    n = be16(w->data + w->pos);
    w->pos += 2;
    if (n > *left)
        return decode_fail(w->err, "io_count_mismatch",
                           "record %u: the NX IO group at offset %zu counts %u elements, more "
                           "than the %u the total IO count leaves",
                           w->rec, count_at, n, *left);
    *left -= n;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *p;
        uint16_t id, len;

        if (need(w, 4, "NX IO element id and length") < 0)
            return -1;
        p = w->data + w->pos;
        id = be16(p);
        len = be16(p + 2);
        if (len > w->end - w->pos - 4)
            return decode_fail(w->err, "bad_io",
                               "record %u: NX IO element %u at offset %zu declares %u bytes, "
                               "but the %s has %zu left",
                               w->rec, id, w->pos, len, w->region, w->end - w->pos - 4);
        if (fp_record_add_io_hex(r, id, p + 4, len) < 0)
            return decode_fail(w->err, "no_memory", "out of memory");
        if (id < NAMED_ID_LIMIT && named_index[id] != 0 &&
            add_named(r, s, named_index[id] - 1u, 0, 0, p + 4, len) < 0)
            return decode_fail(w->err, "no_memory", "out of memory");
        w->pos += 4 + (size_t)len;
    }
    return 0;
}

/* Reads one AVL record into r (already reset). */
static int read_record(struct walk *w, const struct codec *c, fp_record *r)
{
    struct metric_slots slots;
    const uint8_t *p;
    int32_t lon_e7, lat_e7;
    uint32_t total, left;
    size_t total_at;

    if (need(w, RECORD_HEAD, "timestamp, priority and GPS element") < 0)
        return -1;
    p = w->data + w->pos;
    r->ts_ms = (int64_t)be64(p);
    r->priority = p[8];
    lon_e7 = (int32_t)be32(p + 9);
    lat_e7 = (int32_t)be32(p + 13);
    /* int32 degrees × 10^7 reach ±214.7°: a value past the poles or the antimeridian is a
     * broken unit or frame, not a place, and no canonical record can hold it. */
    if (lat_e7 < -900000000 || lat_e7 > 900000000 || lon_e7 < -1800000000 || lon_e7 > 1800000000)
        return decode_fail(w->err, "bad_position",
                           "record %u: latitude %d or longitude %d (degrees x 10^7) at offset "
                           "%zu is outside [-90, 90] / [-180, 180]",
                           w->rec, lat_e7, lon_e7, w->pos + 9);
    /* Exactly zero in both is how a unit without a fix reports its position. */
    if (lat_e7 != 0 || lon_e7 != 0) {
        r->has_position = true;
        r->position.lat = lat_e7 / 1e7;
        r->position.lon = lon_e7 / 1e7;
        r->position.alt_m = (int16_t)be16(p + 17);
        r->position.heading_deg = be16(p + 19);
        r->position.satellites = p[21];
        r->position.speed_kmh = be16(p + 22);
    }
    w->pos += RECORD_HEAD;

    if (need(w, (size_t)c->event_w + c->generation + c->total_w,
             c->generation ? "event IO id, generation type and total IO count"
                           : "event IO id and total IO count") < 0)
        return -1;
    p = w->data + w->pos;
    r->event_io = (int)be_uint(p, c->event_w);
    /* Codec 16's generation type (p[event_w]) says why the record was made; the canonical
     * record has no field for it. */
    total_at = w->pos + c->event_w + c->generation;
    total = (uint32_t)be_uint(w->data + total_at, c->total_w);
    w->pos = total_at + c->total_w;

    left = total;
    memset(slots.metric, SLOT_EMPTY, sizeof(slots.metric));
    for (size_t g = 0; g < COUNT(group_sizes); g++)
        if (read_group(w, c, group_sizes[g], &left, r, &slots) < 0)
            return -1;
    if (c->nx && read_nx_group(w, &left, r, &slots) < 0)
        return -1;
    if (left != 0)
        return decode_fail(w->err, "io_count_mismatch",
                           "record %u: total IO count at offset %zu is %u, but the groups hold "
                           "%u elements",
                           w->rec, total_at, total, total - left);
    memcpy(r->format, c->format, strlen(c->format) + 1);
    return 0;
}

/* Reads codec id, record count 1, the records and record count 2, which must end exactly at
 * w->end, appending the records to out. */
static int read_avl_data(struct walk *w, fp_record_batch *out)
{
    const struct codec *c = NULL;
    unsigned count1, count2;
    size_t count1_at;
    uint8_t id;

    if (need(w, 1, "codec id") < 0)
        return -1;
    id = w->data[w->pos];
    for (size_t i = 0; i < COUNT(codecs); i++)
        if (codecs[i].id == id)
            c = &codecs[i];
    if (c == NULL) {
        if (id >= 0x0C && id <= 0x0E)
            return decode_fail(w->err, "unknown_codec",
                               "codec 0x%02X at offset %zu carries commands, not records", id,
                               w->pos);
        return decode_fail(w->err, "unknown_codec",
                           "codec 0x%02X at offset %zu: expected 0x08 (Codec 8), 0x8E "
                           "(Codec 8 Extended) or 0x10 (Codec 16)",
                           id, w->pos);
    }
    w->pos++;
    if (need(w, 1, "record count 1") < 0)
        return -1;
    count1_at = w->pos;
    count1 = w->data[w->pos++];
    if (count1 == 0)
        return decode_fail(w->err, "no_records",
                           "record count 1 at offset %zu is 0: the packet holds no records",
                           count1_at);
    /* count1 <= 255 bounds the batch. */
    for (unsigned i = 1; i <= count1; i++) {
        fp_record *r = decode_batch_next(out);

        if (r == NULL)
            return decode_fail(w->err, "no_memory", "out of memory");
        w->rec = i;
        if (read_record(w, c, r) < 0)
            return -1;
    }
    w->rec = 0;
    if (need(w, 1, "record count 2") < 0)
        return -1;
    count2 = w->data[w->pos];
    if (count2 != count1)
        return decode_fail(w->err, "count_mismatch",
                           "record count 2 at offset %zu is %u, but record count 1 at offset "
                           "%zu is %u",
                           w->pos, count2, count1_at, count1);
    w->pos++;
    if (w->pos != w->end)
        return decode_fail(w->err, "length_mismatch",
                           "%zu bytes follow record count 2 (offset %zu) up to the end of the "
                           "%s at offset %zu",
                           w->end - w->pos, w->pos - 1, w->region, w->end);
    return 0;
}

/* Copies the device id into every record from `first` on. */
static void set_device_id(fp_record_batch *out, size_t first, const char *id, size_t len)
{
    for (size_t i = first; i < out->len; i++) {
        memcpy(out->recs[i].device_id, id, len);
        out->recs[i].device_id[len] = '\0';
    }
}

/* ---- TCP framing ------------------------------------------------------------------------ */

/* At least preamble, length and CRC, with the preamble zero: cheap, and never JSON. */
static bool tcp_sniff(const uint8_t *data, size_t len)
{
    return len >= 12 && data[0] == 0 && data[1] == 0 && data[2] == 0 && data[3] == 0;
}

static int tcp_decode(const decode_input *in, fp_record_batch *out, decode_error *err)
{
    const uint8_t *d = in->data;
    size_t first = out->len;
    struct walk w = {d, 0, in->len, "frame", 0, err};
    uint64_t frame_len;
    uint32_t dlen, crc_field;
    uint16_t crc;

    pthread_once(&named_once, build_named_index);
    if (need(&w, 4, "preamble") < 0)
        return -1;
    if (be32(d) != 0)
        return decode_fail(err, "bad_preamble",
                           "expected preamble 00000000 at offset 0, found %08X", be32(d));
    w.pos = 4;
    if (need(&w, 4, "data field length") < 0)
        return -1;
    dlen = be32(d + 4);
    frame_len = (uint64_t)dlen + 12;
    if (in->len < frame_len)
        return decode_fail(err, "truncated",
                           "data field length %u at offset 4 makes a %llu-byte frame, but "
                           "only %zu bytes are present",
                           dlen, (unsigned long long)frame_len, in->len);
    if (in->len > frame_len)
        return decode_fail(err, "length_mismatch",
                           "data field length %u at offset 4 makes a %llu-byte frame, but "
                           "%zu bytes are present",
                           dlen, (unsigned long long)frame_len, in->len);
    crc_field = be32(d + 8 + dlen);
    crc = tk_crc16(d + 8, dlen);
    if (crc_field != crc)
        return decode_fail(err, "crc_mismatch",
                           "CRC field at offset %u is 0x%08X, but the data field's CRC-16 is "
                           "0x%04X",
                           8 + dlen, crc_field, crc);

    w.pos = 8;
    w.end = 8 + (size_t)dlen;
    w.region = "data field";
    if (read_avl_data(&w, out) < 0)
        goto err;
    /* The frame is sound; the IMEI is the gateway's key. */
    if (in->key == NULL || in->key_len == 0) {
        decode_fail(err, "missing_device_id",
                    "a TCP-framed packet carries no IMEI, and the message key that should "
                    "hold it is empty");
        goto err;
    }
    if (in->key_len >= FP_DEVICE_ID_MAX) {
        decode_fail(err, "bad_device_id", "device id (message key) is %zu bytes; at most %d fit",
                    in->key_len, FP_DEVICE_ID_MAX - 1);
        goto err;
    }
    for (size_t i = 0; i < in->key_len; i++) {
        unsigned char ch = (unsigned char)in->key[i];

        if (ch <= 0x20 || ch >= 0x7f) {
            decode_fail(err, "bad_device_id",
                        "device id (message key) has byte 0x%02X at position %zu; expected "
                        "printable ASCII without spaces",
                        ch, i);
            goto err;
        }
    }
    set_device_id(out, first, in->key, in->key_len);
    return 0;
err:
    out->len = first;
    return -1;
}

/* ---- UDP framing ------------------------------------------------------------------------ */

/* The length field matches the datagram, the fixed 0x01 is in place and the IMEI fits:
 * cheap, and JSON ('{' or '[') is never claimed even when its first bytes happen to match. */
static bool udp_sniff(const uint8_t *data, size_t len)
{
    size_t imei_len;

    if (len < 8 || data[0] == '{' || data[0] == '[')
        return false;
    if (be16(data) != len - 2 || data[4] != 0x01)
        return false;
    imei_len = be16(data + 6);
    return imei_len > 0 && imei_len <= len - 8;
}

static int udp_decode(const decode_input *in, fp_record_batch *out, decode_error *err)
{
    const uint8_t *d = in->data;
    size_t first = out->len, declared, imei_len;
    struct walk w = {d, 0, in->len, "datagram", 0, err};
    const uint8_t *imei;

    pthread_once(&named_once, build_named_index);
    if (need(&w, 2, "length field") < 0)
        return -1;
    declared = be16(d);
    if (in->len - 2 < declared)
        return decode_fail(err, "truncated",
                           "length field at offset 0 declares %zu bytes after it, but only "
                           "%zu follow",
                           declared, in->len - 2);
    if (in->len - 2 > declared)
        return decode_fail(err, "length_mismatch",
                           "length field at offset 0 declares %zu bytes after it, but %zu "
                           "follow",
                           declared, in->len - 2);
    w.pos = 2;
    if (need(&w, 6, "packet id, 0x01, AVL packet id and IMEI length") < 0)
        return -1;
    if (d[4] != 0x01)
        return decode_fail(err, "bad_preamble",
                           "expected 0x01 at offset 4 (after the packet id), found 0x%02X", d[4]);
    imei_len = be16(d + 6);
    w.pos = 8;
    if (need(&w, imei_len, "IMEI") < 0)
        return -1;
    imei = d + 8;
    if (imei_len == 0 || imei_len >= FP_DEVICE_ID_MAX)
        return decode_fail(err, "bad_device_id",
                           "IMEI length at offset 6 is %zu; expected 1 to %d digits", imei_len,
                           FP_DEVICE_ID_MAX - 1);
    for (size_t i = 0; i < imei_len; i++)
        if (imei[i] < '0' || imei[i] > '9')
            return decode_fail(err, "bad_device_id",
                               "IMEI byte at offset %zu is 0x%02X; expected a decimal digit", 8 + i,
                               imei[i]);
    w.pos += imei_len;
    if (read_avl_data(&w, out) < 0) {
        out->len = first;
        return -1;
    }
    /* The datagram names its sender. A Kafka key, if the gateway set one, is not consulted:
     * when the two differ, the IMEI in the datagram wins. */
    set_device_id(out, first, (const char *)imei, imei_len);
    return 0;
}

const decoder decoder_teltonika_tcp = {
    .name = "teltonika-tcp",
    .content_types = "application/vnd.teltonika.avl",
    .sniff = tcp_sniff,
    .decode = tcp_decode,
};

const decoder decoder_teltonika_udp = {
    .name = "teltonika-udp",
    .content_types = "application/vnd.teltonika.avl+udp",
    .sniff = udp_sniff,
    .decode = udp_decode,
};
