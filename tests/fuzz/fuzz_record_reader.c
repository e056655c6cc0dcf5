/* libFuzzer harness: the canonical-record reader (fp_record_decode_json, fp_record_read.c)
 * against the reference decoder built on cJSON (fp_record_decode_json_cjson,
 * fp_record_decode.c), on the same bytes.
 *
 * Oracle, beyond "no crash, no sanitizer report, no hang": both accept or both refuse, with the
 * same error code and a message each; a refusal leaves an empty record; when both accept, the
 * two records encode to identical bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fp_buf.h"
#include "common/fp_record.h"
#include "common/fp_record_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static fp_record direct, reference;
static fp_buf first, second;

/* Aborts with the reason, so libFuzzer saves the input as a crash. */
static void oracle_failed(const char *what, const char *a, size_t alen, const char *b, size_t blen)
{
    fprintf(stderr, "oracle failed: %s\n  reader:    %.*s\n  reference: %.*s\n", what, (int)alen, a,
            (int)blen, b);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly `size` bytes, so that AddressSanitizer sees any read past the end. */
    char *copy = malloc(size > 0 ? size : 1);
    char why_direct[256], why_reference[256];
    int rc_direct, rc_reference;

    if (copy == NULL)
        return 0;
    if (size > 0)
        memcpy(copy, data, size);
    rc_direct = fp_record_decode_json(&direct, copy, size, why_direct, sizeof(why_direct));
    rc_reference =
        fp_record_decode_json_cjson(&reference, copy, size, why_reference, sizeof(why_reference));
    if (rc_direct != rc_reference) {
        char codes[96];

        snprintf(codes, sizeof(codes), "codes differ: %s against %s", fp_record_err_code(rc_direct),
                 fp_record_err_code(rc_reference));
        oracle_failed(codes, why_direct, strlen(why_direct), why_reference, strlen(why_reference));
    }
    if (rc_direct < 0) {
        if (why_direct[0] == '\0' || why_reference[0] == '\0')
            oracle_failed("a refusal without a message", why_direct, strlen(why_direct),
                          why_reference, strlen(why_reference));
        if (direct.io_len + direct.metrics_len != 0 || direct.device_id[0] != '\0')
            oracle_failed("a refusal left a record behind", "", 0, "", 0);
    } else {
        fp_buf_clear(&first);
        fp_buf_clear(&second);
        if (fp_record_encode_json(&direct, &first) < 0 ||
            fp_record_encode_json(&reference, &second) < 0)
            oracle_failed("an accepted record does not encode", "", 0, "", 0);
        if (first.len != second.len || memcmp(first.data, second.data, first.len) != 0)
            oracle_failed("the records differ", first.data, first.len, second.data, second.len);
    }
    free(copy);
    return 0;
}
