/* libFuzzer harness for one payload decoder, chosen at build time with
 * -DFUZZ_DECODER=fp_decoder_<name> (make fuzz builds one binary per decoder).
 *
 * Oracle, beyond "no crash, no sanitizer report, no hang": a payload either decodes or fails
 * with a stable error code and a message; a failure emits no record and lists no failed item;
 * every failed item of a payload that decoded (a snapshot page's machines) has a code and a
 * message, an index below the payload's item count, and comes after the one before it; every
 * record that decodes encodes to JSON that decodes back to a record encoding to the same
 * bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parser-svc/decode.h"
#include "common/fp_buf.h"
#include "common/fp_record.h"

#ifndef FUZZ_DECODER
#error "build with -DFUZZ_DECODER=fp_decoder_<name>"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static fp_record_batch batch;
static fp_record again;
static fp_buf first, second;

/* Aborts with the reason, so libFuzzer saves the input as a crash. */
static void oracle_failed(const char *what, const fp_buf *a, const fp_buf *b)
{
    fprintf(stderr, "oracle failed: %s\n  first:  %.*s\n  second: %.*s\n", what,
            (int)(a != NULL ? a->len : 0), a != NULL ? a->data : "", (int)(b != NULL ? b->len : 0),
            b != NULL ? b->data : "");
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char key[] = "356307042441013";
    /* A copy of exactly `size` bytes, so that AddressSanitizer sees any read past the end. */
    uint8_t *copy = malloc(size > 0 ? size : 1);
    decode_input in = {copy, size, key, sizeof(key) - 1, INT64_C(1772437513204)};
    decode_error err = {0};
    int rc;

    if (copy == NULL)
        return 0;
    if (size > 0)
        memcpy(copy, data, size);
    rc = decode_payload(&FUZZ_DECODER, NULL, 0, &in, &batch, &err);
    if (rc < 0) {
        if (err.code == NULL || err.code[0] == '\0' || err.message[0] == '\0')
            oracle_failed("a failure without a code or a message", NULL, NULL);
        if (batch.len != 0 || batch.failed_len != 0)
            oracle_failed("a failed payload left records or failed items behind", NULL, NULL);
    }
    for (size_t i = 0; rc == 0 && i < batch.failed_len; i++) {
        const decode_item_error *it = &batch.failed[i];

        if (it->code == NULL || it->code[0] == '\0' || it->message[0] == '\0' ||
            batch.failed_code == NULL)
            oracle_failed("a failed item without a code or a message", NULL, NULL);
        if (it->index >= batch.items || (i > 0 && it->index <= batch.failed[i - 1].index))
            oracle_failed("failed items out of order or beyond the item count", NULL, NULL);
    }
    for (size_t i = 0; rc == 0 && i < batch.len; i++) {
        char why[256];

        fp_buf_clear(&first);
        fp_buf_clear(&second);
        if (fp_record_encode_json(&batch.recs[i], &first) < 0)
            oracle_failed("a decoded record does not encode", NULL, NULL);
        if (fp_record_decode_json(&again, first.data, first.len, why, sizeof(why)) < 0)
            oracle_failed(why, &first, NULL);
        if (fp_record_encode_json(&again, &second) < 0 || second.len != first.len ||
            memcmp(first.data, second.data, first.len) != 0)
            oracle_failed("JSON round trip changed the record", &first, &second);
    }
    free(copy);
    return 0;
}
