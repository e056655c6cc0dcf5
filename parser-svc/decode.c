#include "parser-svc/decode.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/fp_record_check.h"
#include "common/fp_time.h"

/* Every decoder, in sniffing order: the first whose sniffer accepts the bytes wins. */
static const decoder *const decoders[] = {
    &decoder_teltonika_tcp, &decoder_teltonika_udp, &decoder_iso15143,
    &decoder_senml,         &decoder_canonical,
};

#define NDECODERS (sizeof(decoders) / sizeof(decoders[0]))

/* Event times before this are a device clock that was never set (2000-01-01). */
#define TS_MIN_MS INT64_C(946684800000)
/* Event times may run ahead of the broker's clock by at most this (device clock drift). */
#define TS_MAX_AHEAD_MS (INT64_C(24) * 3600 * 1000)

fp_record *decode_batch_next(fp_record_batch *b)
{
    if (b->len == b->cap) {
        size_t cap = b->cap != 0 ? b->cap * 2 : 16;
        fp_record *recs = realloc(b->recs, cap * sizeof(*recs));

        if (recs == NULL)
            return NULL;
        for (size_t i = b->cap; i < cap; i++)
            fp_record_init(&recs[i]);
        b->recs = recs;
        b->cap = cap;
    }
    fp_record_reset(&b->recs[b->len]);
    return &b->recs[b->len++];
}

void decode_batch_clear(fp_record_batch *b)
{
    b->len = 0;
    b->failed_len = 0;
    b->failed_code = NULL;
    b->items = 0;
}

void decode_batch_free(fp_record_batch *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->cap; i++)
        fp_record_free(&b->recs[i]);
    free(b->recs);
    free(b->failed);
    b->recs = NULL;
    b->failed = NULL;
    b->len = b->cap = 0;
    b->failed_len = b->failed_cap = 0;
    b->failed_code = NULL;
    b->items = 0;
}

int decode_batch_fail_item(fp_record_batch *b, const char *payload_code, size_t index,
                           const decode_error *why)
{
    decode_item_error *it;

    if (b->failed_len == b->failed_cap) {
        size_t cap = b->failed_cap != 0 ? b->failed_cap * 2 : 8;
        decode_item_error *failed = realloc(b->failed, cap * sizeof(*failed));

        if (failed == NULL)
            return -1;
        b->failed = failed;
        b->failed_cap = cap;
    }
    it = &b->failed[b->failed_len++];
    it->index = index;
    it->code = why->code;
    memcpy(it->message, why->message, sizeof(it->message));
    b->failed_code = payload_code;
    return 0;
}

size_t decode_partial_message(const fp_record_batch *b, char *out, size_t size)
{
    /* Room kept for the longest tail, "; and 18446744073709551615 more". */
    const size_t tail_room = 32;
    size_t len;
    int n;

    if (size == 0)
        return 0;
    n = snprintf(out, size, "%zu of %zu items failed:", b->failed_len, b->items);
    len = n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
    for (size_t i = 0; i < b->failed_len; i++) {
        const decode_item_error *it = &b->failed[i];
        char one[sizeof(it->message) + 64];

        n = snprintf(one, sizeof(one), "%s [%zu] %s: %s", i > 0 ? ";" : "", it->index, it->code,
                     it->message);
        if (n < 0)
            break;
        if (len + (size_t)n + tail_room >= size) {
            n = snprintf(out + len, size - len, "; and %zu more", b->failed_len - i);
            if (n > 0)
                len += (size_t)n < size - len ? (size_t)n : size - len - 1;
            break;
        }
        memcpy(out + len, one, (size_t)n + 1);
        len += (size_t)n;
    }
    return len;
}

int decode_fail(decode_error *err, const char *code, const char *fmt, ...)
{
    va_list ap;

    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return -1;
}

const decoder *decoder_by_name(const char *name)
{
    for (size_t i = 0; i < NDECODERS; i++)
        if (strcmp(decoders[i]->name, name) == 0)
            return decoders[i];
    return NULL;
}

/* True when the content type (up to any ';' parameter) is one of the '|'-separated names. */
static bool content_type_matches(const char *ct, size_t ct_len, const char *names)
{
    const char *p = names;

    for (size_t i = 0; i < ct_len; i++) {
        if (ct[i] == ';') {
            ct_len = i;
            break;
        }
    }
    while (ct_len > 0 && ct[ct_len - 1] == ' ')
        ct_len--;
    while (p != NULL && *p != '\0') {
        const char *bar = strchr(p, '|');
        size_t wlen = bar != NULL ? (size_t)(bar - p) : strlen(p);

        if (wlen == ct_len && strncasecmp(p, ct, ct_len) == 0)
            return true;
        p = bar != NULL ? bar + 1 : NULL;
    }
    return false;
}

const decoder *decoder_detect(const char *content_type, size_t ct_len, const uint8_t *data,
                              size_t len)
{
    if (content_type != NULL) {
        for (size_t i = 0; i < NDECODERS; i++)
            if (content_type_matches(content_type, ct_len, decoders[i]->content_types))
                return decoders[i];
    }
    for (size_t i = 0; i < NDECODERS; i++)
        if (decoders[i]->sniff(data, len))
            return decoders[i];
    return NULL;
}

int decode_check_record(fp_record *r, const decode_input *in, decode_error *err)
{
    char ts[32];
    int rc;

    if (r->device_id[0] == '\0')
        return decode_fail(err, "missing_device_id", "record has no device id");
    if (r->ts_ms < TS_MIN_MS || r->ts_ms > in->received_at_ms + TS_MAX_AHEAD_MS) {
        if (fp_time_format_ms(r->ts_ms, ts, sizeof(ts)) < 0)
            snprintf(ts, sizeof(ts), "%lld ms", (long long)r->ts_ms);
        return decode_fail(err, "ts_out_of_range",
                           "timestamp %s is before 2000 or more than a day after receipt", ts);
    }
    /* The one check of what the database can store, for every decoder's output. */
    rc = fp_record_check(r, err->message, sizeof(err->message));
    if (rc < 0) {
        err->code = fp_record_err_code(rc);
        return -1;
    }
    r->received_at_ms = in->received_at_ms;
    return 0;
}

int decode_payload(const decoder *dec, const char *content_type, size_t ct_len,
                   const decode_input *in, fp_record_batch *out, decode_error *err)
{
    decode_batch_clear(out);
    if (in->len == 0)
        return decode_fail(err, "empty", "empty payload");
    if (dec == NULL)
        dec = decoder_detect(content_type, ct_len, in->data, in->len);
    if (dec == NULL)
        return decode_fail(err, "unknown_format", "payload is in no known format");
    if (dec->decode(in, out, err) < 0) {
        decode_batch_clear(out);
        return -1;
    }
    for (size_t i = 0; i < out->len; i++) {
        if (decode_check_record(&out->recs[i], in, err) < 0) {
            decode_batch_clear(out);
            return -1;
        }
    }
    return 0;
}
