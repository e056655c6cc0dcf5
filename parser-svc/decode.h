/* decode: from one raw device payload to canonical records.
 *
 * Every device format is one decoder: a name, the content types it answers to, a sniffer
 * that recognises its bytes, and a decode function. They are registered in one table
 * (decode.c), so a new protocol is one file and one line. A payload decodes whole or not at
 * all: a frame with one bad record is rejected entire, with a stable error code, and nothing
 * of it is emitted. */
#ifndef DECODE_H
#define DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/fp_record.h"

/* The records decoded from one payload; the records are reused from payload to payload. */
typedef struct fp_record_batch {
    fp_record *recs;
    size_t len, cap;
} fp_record_batch;

/* Returns the next record of the batch, reset, or NULL when memory runs out. */
fp_record *decode_batch_next(fp_record_batch *b);
void decode_batch_clear(fp_record_batch *b);
void decode_batch_free(fp_record_batch *b);

typedef struct decode_input {
    const uint8_t *data;
    size_t len;
    const char *key; /* message key (device id), may be NULL */
    size_t key_len;
    int64_t received_at_ms; /* when the payload reached Kafka */
} decode_input;

typedef struct decode_error {
    const char *code; /* stable short code, e.g. "crc_mismatch" */
    char message[256];
} decode_error;

typedef struct decoder {
    const char *name;          /* "canonical", ... (what --format and content types name) */
    const char *content_types; /* '|'-separated, e.g. "application/json" */
    bool (*sniff)(const uint8_t *data, size_t len);
    /* Appends the payload's records to out (the caller cleared it). Returns 0, or -1 with
     * err filled in. */
    int (*decode)(const decode_input *in, fp_record_batch *out, decode_error *err);
} decoder;

/* Finds a decoder by name (--format); NULL when unknown. */
const decoder *decoder_by_name(const char *name);

/* Chooses the decoder: by content type when one is given and known, else by sniffing the
 * bytes. NULL when nothing recognises the payload. */
const decoder *decoder_detect(const char *content_type, size_t ct_len, const uint8_t *data,
                              size_t len);

/* Decodes a payload with `dec` (or the detected decoder when NULL), then checks every record
 * against what a canonical record must hold (device id, timestamp within range) and sets
 * received_at. Returns 0, or -1 with err filled in (out then holds nothing). */
int decode_payload(const decoder *dec, const char *content_type, size_t ct_len,
                   const decode_input *in, fp_record_batch *out, decode_error *err);

/* Sets err's code and formats its message. Always returns -1. */
int decode_fail(decode_error *err, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The decoders (one file each). */
extern const decoder decoder_canonical;     /* canonical.c */
extern const decoder decoder_teltonika_tcp; /* teltonika.c */
extern const decoder decoder_teltonika_udp; /* teltonika.c */
extern const decoder decoder_senml;         /* senml.c */

#endif
