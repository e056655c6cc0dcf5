/* decode: from one raw device payload to canonical records.
 *
 * Every device format is one decoder: a name, the content types it answers to, a sniffer
 * that recognises its bytes, and a decode function. They are registered in one table
 * (decode.c), so a new protocol is one file and one line. A payload decodes whole or not at
 * all: a frame with one bad record is rejected entire, with a stable error code, and nothing
 * of it is emitted. The one exception is a payload of independent items (the machines of an
 * ISO 15143-3 fleet snapshot page): there a decoder may drop the items that fail, list them in
 * the batch (decode_batch_fail_item) and keep the records of the others; the service then emits
 * those records and sends the payload once to the DLQ with the list (decode_partial_message). */
#ifndef DECODE_H
#define DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/fp_record.h"

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

/* One item of a payload that failed while the other items decoded. */
typedef struct decode_item_error {
    size_t index;     /* the item's position in the payload, from 0 */
    const char *code; /* stable short code of the item's fault */
    char message[sizeof(((decode_error *)0)->message)];
} decode_item_error;

/* The records decoded from one payload; the records are reused from payload to payload.
 * `failed` lists the items the decoder dropped (see above), `failed_code` is the DLQ code of
 * the payload when there are any (e.g. "iso15143_equipment"), `items` how many items the
 * payload held (set by decoders with items). */
typedef struct fp_record_batch {
    fp_record *recs;
    size_t len, cap;
    decode_item_error *failed;
    size_t failed_len, failed_cap;
    const char *failed_code;
    size_t items;
} fp_record_batch;

/* Returns the next record of the batch, reset, or NULL when memory runs out. */
fp_record *decode_batch_next(fp_record_batch *b);
void decode_batch_clear(fp_record_batch *b);
void decode_batch_free(fp_record_batch *b);

typedef struct decoder {
    const char *name;          /* "canonical", ... (what --format and content types name) */
    const char *content_types; /* '|'-separated, e.g. "application/json" */
    bool (*sniff)(const uint8_t *data, size_t len);
    /* Appends the payload's records to out (the caller cleared it). Returns 0, or -1 with
     * err filled in. A decoder of independent items may return 0 having dropped some
     * (decode_batch_fail_item). */
    int (*decode)(const decode_input *in, fp_record_batch *out, decode_error *err);
} decoder;

/* Finds a decoder by name (--format); NULL when unknown. */
const decoder *decoder_by_name(const char *name);

/* Chooses the decoder: by content type when one is given and known, else by sniffing the
 * bytes. NULL when nothing recognises the payload. */
const decoder *decoder_detect(const char *content_type, size_t ct_len, const uint8_t *data,
                              size_t len);

/* Decodes a payload with `dec` (or the detected decoder when NULL), then checks every record
 * against what a canonical record must hold (decode_check_record). Returns 0, or -1 with err
 * filled in (out then holds nothing, and no failed item). On 0, out->failed_len > 0 says that
 * some items were dropped (their records are not in out). */
int decode_payload(const decoder *dec, const char *content_type, size_t ct_len,
                   const decode_input *in, fp_record_batch *out, decode_error *err);

/* Records that item `index` of the payload failed for `why`, and that the payload's DLQ code is
 * `payload_code`. Returns 0, or -1 when memory runs out. */
int decode_batch_fail_item(fp_record_batch *b, const char *payload_code, size_t index,
                           const decode_error *why);

/* Writes the DLQ message for a batch with failed items into out (always NUL-terminated, cut at
 * size): "2 of 5 items failed: [1] code: message; [3] code: message", as many items as fit
 * and then "; and N more". Returns the length written. */
size_t decode_partial_message(const fp_record_batch *b, char *out, size_t size);

/* Checks what every canonical record must hold (device id, timestamp within range, what the
 * database can store) and sets received_at. decode_payload runs it on every record; a decoder
 * with independent items runs it per item first, so that one bad item does not fail the
 * payload. Returns 0, or -1 with err filled in. */
int decode_check_record(fp_record *r, const decode_input *in, decode_error *err);

/* Sets err's code and formats its message. Always returns -1. */
int decode_fail(decode_error *err, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The decoders (one file each). */
extern const decoder decoder_canonical;     /* canonical.c */
extern const decoder decoder_teltonika_tcp; /* teltonika.c */
extern const decoder decoder_teltonika_udp; /* teltonika.c */
extern const decoder decoder_senml;         /* senml.c */
extern const decoder decoder_iso15143;      /* iso15143.c */

#endif
