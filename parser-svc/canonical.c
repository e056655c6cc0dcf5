/* Canonical JSON records on telemetry.raw, from gateways that normalise themselves. */
#include <string.h>

#include "parser-svc/decode.h"

/* A JSON object, possibly after whitespace. */
static bool canonical_sniff(const uint8_t *data, size_t len)
{
    size_t i = 0;

    while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r'))
        i++;
    return i < len && data[i] == '{';
}

static int canonical_decode(const decode_input *in, fp_record_batch *out, decode_error *err)
{
    fp_record *r = decode_batch_next(out);
    int rc;

    if (r == NULL)
        return decode_fail(err, "no_memory", "out of memory");
    rc = fp_record_decode_json(r, (const char *)in->data, in->len, err->message,
                               sizeof(err->message));
    if (rc < 0) {
        out->len = 0;
        err->code = fp_record_err_code(rc);
        return -1;
    }
    if (r->format[0] == '\0')
        memcpy(r->format, "canonical", sizeof("canonical"));
    return 0;
}

const decoder decoder_canonical = {
    .name = "canonical",
    .content_types = "application/json|application/vnd.fleetpipe.record+json",
    .sniff = canonical_sniff,
    .decode = canonical_decode,
};
