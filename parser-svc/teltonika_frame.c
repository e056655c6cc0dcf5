/* teltonika_frame: building Teltonika AVL packets byte for byte (see teltonika_frame.h). */
#include "parser-svc/teltonika_frame.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

/* Where Codec 8, 8 Extended and 16 differ on the wire: field widths in bytes. teltonika.c
 * keeps its own copy for decoding; the unit tests hold the two to the example frames. */
struct layout {
    uint8_t event_w; /* event IO id */
    bool generation; /* a generation type byte follows the event IO id (Codec 16) */
    uint8_t total_w; /* total IO count */
    uint8_t count_w; /* count of each group */
    uint8_t id_w;    /* IO id */
    bool nx;         /* an NX group follows the 8-byte group (Codec 8E) */
};

static const struct layout codec8 = {1, false, 1, 1, 1, false};
static const struct layout codec8e = {2, false, 2, 2, 2, true};
static const struct layout codec16 = {2, true, 1, 1, 2, false};

/* The fixed value widths, in the order their groups appear. */
static const uint8_t group_sizes[4] = {1, 2, 4, 8};

/* CRC-16/ARC, eight bytes at a time ("slicing by 8"): crc_tables[0] is the classic table
 * (crc = (crc >> 8) ^ T0[(crc ^ byte) & 0xff] for one byte), and crc_tables[k][i] is the
 * CRC of byte i followed by k zero bytes, so that eight table lookups, independent of each
 * other, replace eight dependent ones. The decoder checks every TCP frame's CRC, and a
 * byte-wise loop was a quarter of the parser's time per record. */
static uint16_t crc_tables[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void build_crc_tables(void)
{
    for (unsigned i = 0; i < 256; i++) {
        uint16_t c = (uint16_t)i;

        for (int bit = 0; bit < 8; bit++)
            c = (uint16_t)(c & 1 ? (c >> 1) ^ 0xA001 : c >> 1);
        crc_tables[0][i] = c;
    }
    for (unsigned k = 1; k < 8; k++)
        for (unsigned i = 0; i < 256; i++)
            crc_tables[k][i] = (uint16_t)((crc_tables[k - 1][i] >> 8) ^
                                          crc_tables[0][crc_tables[k - 1][i] & 0xff]);
}

uint16_t tk_crc16(const uint8_t *data, size_t len)
{
    const uint16_t(*t)[256] = crc_tables;
    uint16_t crc = 0;
    size_t i = 0;

    pthread_once(&crc_once, build_crc_tables);
    for (; len - i >= 8; i += 8) {
        const uint8_t *p = data + i;
        unsigned lo = (crc ^ p[0]) & 0xff, hi = ((crc >> 8) ^ p[1]) & 0xff;

        crc = (uint16_t)(t[7][lo] ^ t[6][hi] ^ t[5][p[2]] ^ t[4][p[3]] ^ t[3][p[4]] ^ t[2][p[5]] ^
                         t[1][p[6]] ^ t[0][p[7]]);
    }
    for (; i < len; i++)
        crc = (uint16_t)((crc >> 8) ^ t[0][(crc ^ data[i]) & 0xff]);
    return crc;
}

static const struct layout *layout_of(uint8_t codec)
{
    switch (codec) {
    case TK_CODEC8:
        return &codec8;
    case TK_CODEC8E:
        return &codec8e;
    case TK_CODEC16:
        return &codec16;
    default:
        return NULL;
    }
}

/* Largest value an unsigned field of `width` bytes (1 or 2) holds. */
static uint32_t max_of(uint8_t width)
{
    return width == 1 ? 0xffu : 0xffffu;
}

/* True when the record can be written in the codec: ids, counts and sizes fit. */
static bool record_fits(const struct layout *l, const tk_avl_record *r)
{
    size_t counts[5] = {0}; /* 1-, 2-, 4-, 8-byte and NX groups */
    size_t total = 0;

    if (r->event_io > max_of(l->event_w) || (r->io_len > 0 && r->io == NULL))
        return false;
    for (size_t i = 0; i < r->io_len; i++) {
        const tk_io *io = &r->io[i];
        size_t g;

        if (io->id > max_of(l->id_w))
            return false;
        if (io->size == 0) {
            if (!l->nx || (io->nx_len > 0 && io->nx == NULL))
                return false;
            g = 4;
        } else {
            for (g = 0; g < 4 && group_sizes[g] != io->size; g++)
                ;
            if (g == 4)
                return false;
        }
        counts[g]++;
        total++;
    }
    for (size_t g = 0; g < 5; g++)
        if (counts[g] > max_of(l->count_w))
            return false;
    return total <= max_of(l->total_w);
}

/* Appends v as `width` big-endian bytes. Returns 0 or -1. */
static int put_be(fp_buf *b, uint64_t v, unsigned width)
{
    uint8_t bytes[8];

    for (unsigned i = 0; i < width; i++)
        bytes[i] = (uint8_t)(v >> (8 * (width - 1 - i)));
    return fp_buf_append(b, bytes, width);
}

/* Overwrites `width` bytes at `off` (already in the buffer) with v, big-endian. */
static void patch_be(fp_buf *b, size_t off, uint64_t v, unsigned width)
{
    for (unsigned i = 0; i < width; i++)
        b->data[off + i] = (char)(uint8_t)(v >> (8 * (width - 1 - i)));
}

/* Appends one AVL record. Returns 0 or -1 (memory). */
static int put_record(fp_buf *b, const struct layout *l, const tk_avl_record *r)
{
    int rc = 0;
    size_t n = 0;

    rc |= put_be(b, (uint64_t)r->ts_ms, 8);
    rc |= put_be(b, r->priority, 1);
    rc |= put_be(b, (uint32_t)r->lon_e7, 4);
    rc |= put_be(b, (uint32_t)r->lat_e7, 4);
    rc |= put_be(b, (uint16_t)r->alt_m, 2);
    rc |= put_be(b, r->angle, 2);
    rc |= put_be(b, r->satellites, 1);
    rc |= put_be(b, r->speed_kmh, 2);
    rc |= put_be(b, r->event_io, l->event_w);
    if (l->generation)
        rc |= put_be(b, r->generation_type, 1);
    rc |= put_be(b, r->io_len, l->total_w);
    for (size_t g = 0; g < 4; g++) {
        n = 0;
        for (size_t i = 0; i < r->io_len; i++)
            n += r->io[i].size == group_sizes[g];
        rc |= put_be(b, n, l->count_w);
        for (size_t i = 0; i < r->io_len; i++) {
            if (r->io[i].size != group_sizes[g])
                continue;
            rc |= put_be(b, r->io[i].id, l->id_w);
            rc |= put_be(b, r->io[i].value, group_sizes[g]);
        }
    }
    if (l->nx) {
        n = 0;
        for (size_t i = 0; i < r->io_len; i++)
            n += r->io[i].size == 0;
        rc |= put_be(b, n, 2);
        for (size_t i = 0; i < r->io_len; i++) {
            if (r->io[i].size != 0)
                continue;
            rc |= put_be(b, r->io[i].id, 2);
            rc |= put_be(b, r->io[i].nx_len, 2);
            if (r->io[i].nx_len > 0)
                rc |= fp_buf_append(b, r->io[i].nx, r->io[i].nx_len);
        }
    }
    return rc != 0 ? -1 : 0;
}

/* Checks the records against the codec. Returns its layout, or NULL when they do not fit. */
static const struct layout *check_records(uint8_t codec, const tk_avl_record *recs, size_t n)
{
    const struct layout *l = layout_of(codec);

    if (l == NULL || n > 255 || (n > 0 && recs == NULL))
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!record_fits(l, &recs[i]))
            return NULL;
    return l;
}

/* Appends codec id, record count, records, record count. Returns 0 or -1 (memory). */
static int put_avl_data(fp_buf *b, uint8_t codec, const struct layout *l, const tk_avl_record *recs,
                        size_t n)
{
    int rc = put_be(b, codec, 1) | put_be(b, n, 1);

    for (size_t i = 0; i < n && rc == 0; i++)
        rc = put_record(b, l, &recs[i]);
    rc |= put_be(b, n, 1);
    return rc != 0 ? -1 : 0;
}

int tk_frame_tcp(fp_buf *out, uint8_t codec, const tk_avl_record *recs, size_t n)
{
    const struct layout *l = check_records(codec, recs, n);
    size_t start = out->len, data;
    uint64_t dlen;

    if (l == NULL)
        return -1;
    if (put_be(out, 0, 4) < 0 || put_be(out, 0, 4) < 0)
        goto err;
    data = out->len;
    if (put_avl_data(out, codec, l, recs, n) < 0)
        goto err;
    dlen = out->len - data;
    if (dlen > UINT32_MAX)
        goto err;
    patch_be(out, start + 4, dlen, 4);
    if (put_be(out, tk_crc16((const uint8_t *)out->data + data, (size_t)dlen), 4) < 0)
        goto err;
    return 0;
err:
    out->len = start;
    return -1;
}

int tk_frame_udp(fp_buf *out, uint8_t codec, uint16_t packet_id, uint8_t avl_packet_id,
                 const char *imei, const tk_avl_record *recs, size_t n)
{
    const struct layout *l = check_records(codec, recs, n);
    size_t start = out->len, imei_len;

    if (l == NULL || imei == NULL)
        return -1;
    imei_len = strlen(imei);
    if (imei_len > 0xffff)
        return -1;
    if (put_be(out, 0, 2) < 0 || put_be(out, packet_id, 2) < 0 || put_be(out, 1, 1) < 0 ||
        put_be(out, avl_packet_id, 1) < 0 || put_be(out, imei_len, 2) < 0 ||
        fp_buf_append(out, imei, imei_len) < 0 || put_avl_data(out, codec, l, recs, n) < 0)
        goto err;
    /* The length counts everything after itself. */
    if (out->len - start - 2 > 0xffff)
        goto err;
    patch_be(out, start, out->len - start - 2, 2);
    return 0;
err:
    out->len = start;
    return -1;
}
