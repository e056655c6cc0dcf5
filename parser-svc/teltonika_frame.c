/* teltonika_frame: building Teltonika AVL packets byte for byte (see teltonika_frame.h). */
#include "teltonika_frame.h"

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

/* CRC-16/ARC, one byte at a time: crc = (crc >> 8) ^ table[(crc ^ byte) & 0xff]. */
static const uint16_t crc16_table[256] = {
    0x0000, 0xC0C1, 0xC181, 0x0140, 0xC301, 0x03C0, 0x0280, 0xC241,
    0xC601, 0x06C0, 0x0780, 0xC741, 0x0500, 0xC5C1, 0xC481, 0x0440,
    0xCC01, 0x0CC0, 0x0D80, 0xCD41, 0x0F00, 0xCFC1, 0xCE81, 0x0E40,
    0x0A00, 0xCAC1, 0xCB81, 0x0B40, 0xC901, 0x09C0, 0x0880, 0xC841,
    0xD801, 0x18C0, 0x1980, 0xD941, 0x1B00, 0xDBC1, 0xDA81, 0x1A40,
    0x1E00, 0xDEC1, 0xDF81, 0x1F40, 0xDD01, 0x1DC0, 0x1C80, 0xDC41,
    0x1400, 0xD4C1, 0xD581, 0x1540, 0xD701, 0x17C0, 0x1680, 0xD641,
    0xD201, 0x12C0, 0x1380, 0xD341, 0x1100, 0xD1C1, 0xD081, 0x1040,
    0xF001, 0x30C0, 0x3180, 0xF141, 0x3300, 0xF3C1, 0xF281, 0x3240,
    0x3600, 0xF6C1, 0xF781, 0x3740, 0xF501, 0x35C0, 0x3480, 0xF441,
    0x3C00, 0xFCC1, 0xFD81, 0x3D40, 0xFF01, 0x3FC0, 0x3E80, 0xFE41,
    0xFA01, 0x3AC0, 0x3B80, 0xFB41, 0x3900, 0xF9C1, 0xF881, 0x3840,
    0x2800, 0xE8C1, 0xE981, 0x2940, 0xEB01, 0x2BC0, 0x2A80, 0xEA41,
    0xEE01, 0x2EC0, 0x2F80, 0xEF41, 0x2D00, 0xEDC1, 0xEC81, 0x2C40,
    0xE401, 0x24C0, 0x2580, 0xE541, 0x2700, 0xE7C1, 0xE681, 0x2640,
    0x2200, 0xE2C1, 0xE381, 0x2340, 0xE101, 0x21C0, 0x2080, 0xE041,
    0xA001, 0x60C0, 0x6180, 0xA141, 0x6300, 0xA3C1, 0xA281, 0x6240,
    0x6600, 0xA6C1, 0xA781, 0x6740, 0xA501, 0x65C0, 0x6480, 0xA441,
    0x6C00, 0xACC1, 0xAD81, 0x6D40, 0xAF01, 0x6FC0, 0x6E80, 0xAE41,
    0xAA01, 0x6AC0, 0x6B80, 0xAB41, 0x6900, 0xA9C1, 0xA881, 0x6840,
    0x7800, 0xB8C1, 0xB981, 0x7940, 0xBB01, 0x7BC0, 0x7A80, 0xBA41,
    0xBE01, 0x7EC0, 0x7F80, 0xBF41, 0x7D00, 0xBDC1, 0xBC81, 0x7C40,
    0xB401, 0x74C0, 0x7580, 0xB541, 0x7700, 0xB7C1, 0xB681, 0x7640,
    0x7200, 0xB2C1, 0xB381, 0x7340, 0xB101, 0x71C0, 0x7080, 0xB041,
    0x5000, 0x90C1, 0x9181, 0x5140, 0x9301, 0x53C0, 0x5280, 0x9241,
    0x9601, 0x56C0, 0x5780, 0x9741, 0x5500, 0x95C1, 0x9481, 0x5440,
    0x9C01, 0x5CC0, 0x5D80, 0x9D41, 0x5F00, 0x9FC1, 0x9E81, 0x5E40,
    0x5A00, 0x9AC1, 0x9B81, 0x5B40, 0x9901, 0x59C0, 0x5880, 0x9841,
    0x8801, 0x48C0, 0x4980, 0x8941, 0x4B00, 0x8BC1, 0x8A81, 0x4A40,
    0x4E00, 0x8EC1, 0x8F81, 0x4F40, 0x8D01, 0x4DC0, 0x4C80, 0x8C41,
    0x4400, 0x84C1, 0x8581, 0x4540, 0x8701, 0x47C0, 0x4680, 0x8641,
    0x8201, 0x42C0, 0x4380, 0x8341, 0x4100, 0x81C1, 0x8081, 0x4040,
};

uint16_t tk_crc16(const uint8_t *data, size_t len)
{
    uint16_t crc = 0;

    for (size_t i = 0; i < len; i++)
        crc = (uint16_t)((crc >> 8) ^ crc16_table[(crc ^ data[i]) & 0xff]);
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
static int put_avl_data(fp_buf *b, uint8_t codec, const struct layout *l,
                        const tk_avl_record *recs, size_t n)
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
