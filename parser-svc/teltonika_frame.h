/* teltonika_frame: building Teltonika AVL packets (Codec 8, 8 Extended, 16) in TCP and UDP
 * framing, byte for byte as the units send them (PROTOCOLS.md). Used by
 * fleet-sim, the unit tests and the fuzz seeds; the decoder lives in teltonika.c. */
#ifndef TELTONIKA_FRAME_H
#define TELTONIKA_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "common/fp_buf.h"

#define TK_CODEC8  0x08
#define TK_CODEC8E 0x8E
#define TK_CODEC16 0x10

/* One IO element. size is the value width in bytes (1, 2, 4 or 8), or 0 for a variable-length
 * (NX, Codec 8E only) element whose bytes are nx[0..nx_len). */
typedef struct tk_io {
    uint16_t id;
    uint8_t size;
    uint64_t value;
    const uint8_t *nx;
    uint16_t nx_len;
} tk_io;

/* One AVL record as it goes on the wire. */
typedef struct tk_avl_record {
    int64_t ts_ms;
    uint8_t priority;
    int32_t lon_e7; /* degrees × 10^7 */
    int32_t lat_e7;
    int16_t alt_m;
    uint16_t angle;
    uint8_t satellites;
    uint16_t speed_kmh;
    uint16_t event_io;       /* 1 byte on the wire in Codec 8 */
    uint8_t generation_type; /* Codec 16 only */
    const tk_io *io;
    size_t io_len;
} tk_avl_record;

/* CRC-16/ARC (reflected poly 0xA001, init 0, no final xor), as Teltonika TCP frames carry. */
uint16_t tk_crc16(const uint8_t *data, size_t len);

/* Appends a TCP-framed AVL packet (preamble, data length, codec, count, records, count, CRC)
 * to out. IO elements are grouped by size in the order given. Returns 0, or -1 when an element
 * does not fit the codec (an id above 255 in Codec 8, NX outside 8E, more than 255 records or
 * elements per group where the codec counts in one byte) or memory runs out. */
int tk_frame_tcp(fp_buf *out, uint8_t codec, const tk_avl_record *recs, size_t n);

/* Appends a UDP-framed AVL packet (length, packet id, 0x01, AVL packet id, IMEI length, IMEI,
 * codec, count, records, count). Same failures as tk_frame_tcp. */
int tk_frame_udp(fp_buf *out, uint8_t codec, uint16_t packet_id, uint8_t avl_packet_id,
                 const char *imei, const tk_avl_record *recs, size_t n);

#endif
