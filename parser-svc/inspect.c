/* inspect: `parser-svc decode`, the parser's decoders for a person — one payload from stdin,
 * its canonical records as JSON lines on stdout, or the error code and reason on stderr. */
#include "parser-svc/inspect.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/fp_buf.h"
#include "common/fp_time.h"
#include "parser-svc/decode.h"

/* Decodes hex text (whitespace ignored) in place. Returns the byte count, or -1. */
static long unhex(char *s, size_t len)
{
    size_t n = 0;
    int hi = -1;

    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int v;

        if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
            continue;
        if (c >= '0' && c <= '9')
            v = c - '0';
        else if (c >= 'a' && c <= 'f')
            v = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v = c - 'A' + 10;
        else
            return -1;
        if (hi < 0) {
            hi = v;
        } else {
            s[n++] = (char)(hi << 4 | v);
            hi = -1;
        }
    }
    return hi < 0 ? (long)n : -1;
}

const char inspect_usage[] =
    "       parser-svc decode [--hex] [--format F] [--device-id ID] < payload\n"
    "           decode one raw payload from stdin and print its canonical records as JSON\n"
    "           lines; on bad input print the error code and reason on stderr, exit 1\n"
    "           (a fleet snapshot page with failed machines prints the other machines'\n"
    "           records, the failures on stderr, and exits 1)\n";

/* `parser-svc decode`: one payload from stdin to JSON lines on stdout. */
int inspect_command(int argc, char **argv)
{
    const decoder *dec = NULL;
    const char *device_id = NULL;
    bool hex = false;
    fp_buf input = {0}, out = {0};
    fp_record_batch batch = {0};
    decode_error err = {0};
    char chunk[65536];
    size_t n;
    int rc = 1;

    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--hex") == 0) {
            hex = true;
        } else if (strcmp(argv[i], "--format") == 0 && i + 1 < argc) {
            dec = decoder_by_name(argv[++i]);
            if (dec == NULL) {
                fprintf(stderr, "parser-svc decode: unknown format \"%s\"\n", argv[i]);
                return 2;
            }
        } else if (strcmp(argv[i], "--device-id") == 0 && i + 1 < argc) {
            device_id = argv[++i];
        } else {
            fprintf(stderr, "Usage:\n%s", inspect_usage);
            return 2;
        }
    }
    while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0) {
        if (fp_buf_append(&input, chunk, n) < 0) {
            fprintf(stderr, "parser-svc decode: out of memory\n");
            goto done;
        }
    }
    if (hex) {
        long len = unhex(input.data, input.len);

        if (len < 0) {
            fprintf(stderr, "bad_hex: input is not hexadecimal text\n");
            goto done;
        }
        input.len = (size_t)len;
    }
    {
        decode_input in = {(const uint8_t *)input.data, input.len, device_id,
                           device_id != NULL ? strlen(device_id) : 0, fp_now_ms()};

        if (decode_payload(dec, NULL, 0, &in, &batch, &err) < 0) {
            fprintf(stderr, "%s: %s\n", err.code, err.message);
            goto done;
        }
    }
    for (size_t i = 0; i < batch.len; i++) {
        fp_buf_clear(&out);
        if (fp_record_encode_json(&batch.recs[i], &out) < 0 || fp_buf_putc(&out, '\n') < 0) {
            fprintf(stderr, "parser-svc decode: out of memory\n");
            goto done;
        }
        fwrite(out.data, 1, out.len, stdout);
    }
    rc = 0;
    /* Some items failed while the others decoded: the records above, the failures here. */
    if (batch.failed_len > 0) {
        char why[1024];

        decode_partial_message(&batch, why, sizeof(why));
        fprintf(stderr, "%s: %s\n", batch.failed_code, why);
        rc = 1;
    }
done:
    fp_buf_free(&input);
    fp_buf_free(&out);
    decode_batch_free(&batch);
    return rc;
}
