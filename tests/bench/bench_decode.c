/* bench_decode: in-process parser throughput on a fleet-sim corpus (fleet-sim --output).
 *
 * For each corpus message: detect the format, decode the payload whole, encode every record
 * as canonical JSON — what parser-svc does per message, minus Kafka. Also measures the encode
 * step alone on the decoded records, so the report shows where the time goes. Runs each pass
 * for at least --seconds and reports the median of --repeat passes as one JSON object.
 *
 * Two more modes serve optimisation work rather than the report:
 * - --dump FILE writes the canonical JSON of every record of the corpus to FILE, one per line
 *   (a failed payload as a line "! <code>"), so that two builds' outputs can be compared byte
 *   for byte;
 * - --count runs exactly one pass of each kind (decode, decode + encode, encode alone) in
 *   functions of their own and times nothing, for `valgrind --tool=callgrind`: each function's
 *   inclusive instructions divided by the records it prints is the cost per record.
 *
 * Usage: bench_decode CORPUS [--seconds S] [--repeat N] [--dump FILE | --count] */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parser-svc/decode.h"
#include "common/fp_buf.h"
#include "common/fp_record.h"
#include "common/fp_time.h"

typedef struct message {
    const char *key;
    size_t key_len;
    const uint8_t *value;
    size_t len;
} message;

static int load_corpus(const char *path, fp_buf *raw, message **msgs, size_t *n)
{
    FILE *f = fopen(path, "rb");
    char chunk[65536];
    size_t got, cap = 0, off = 0;

    if (f == NULL) {
        fprintf(stderr, "bench_decode: %s: %s\n", path, strerror(errno));
        return -1;
    }
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (fp_buf_append(raw, chunk, got) < 0)
            return -1;
    fclose(f);
    *n = 0;
    while (off + 2 <= raw->len) {
        const uint8_t *p = (const uint8_t *)raw->data + off;
        size_t klen = (size_t)p[0] << 8 | p[1], vlen;

        if (off + 2 + klen + 4 > raw->len)
            break;
        p += 2 + klen;
        vlen = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
        if (off + 2 + klen + 4 + vlen > raw->len)
            break;
        if (*n == cap) {
            cap = cap != 0 ? cap * 2 : 4096;
            *msgs = realloc(*msgs, cap * sizeof(**msgs));
            if (*msgs == NULL)
                return -1;
        }
        (*msgs)[*n].key = raw->data + off + 2;
        (*msgs)[*n].key_len = klen;
        (*msgs)[*n].value = p + 4;
        (*msgs)[*n].len = vlen;
        (*n)++;
        off += 2 + klen + 4 + vlen;
    }
    return off == raw->len ? 0 : -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* One pass over the corpus; returns records decoded, and adds failed payloads to *bad. */
static size_t decode_pass(const message *msgs, size_t n, fp_record_batch *batch, fp_buf *out,
                          bool encode, size_t *bad)
{
    size_t records = 0;

    for (size_t i = 0; i < n; i++) {
        decode_input in = {msgs[i].value, msgs[i].len, msgs[i].key, msgs[i].key_len,
                           INT64_C(1893456000000)};
        decode_error err;

        if (decode_payload(NULL, NULL, 0, &in, batch, &err) < 0) {
            (*bad)++;
            continue;
        }
        for (size_t j = 0; encode && j < batch->len; j++) {
            fp_buf_clear(out);
            fp_record_encode_json(&batch->recs[j], out);
        }
        records += batch->len;
    }
    return records;
}

/* Runs passes for at least `seconds`; returns records per second. */
static double measure(const message *msgs, size_t n, double seconds, bool encode)
{
    size_t bad = 0;

    fp_record_batch batch = {0};
    fp_buf out = {0};
    double start = fp_mono_seconds(), elapsed;
    size_t records = 0;

    do {
        records += decode_pass(msgs, n, &batch, &out, encode, &bad);
        elapsed = fp_mono_seconds() - start;
    } while (elapsed < seconds);
    decode_batch_free(&batch);
    fp_buf_free(&out);
    return (double)records / elapsed;
}

/* Decodes the whole corpus into `all`, one record after another (each a deep copy, made by a
 * JSON round trip, of what `one` held for its message). */
static void decode_all(const message *msgs, size_t n, fp_record_batch *all, fp_record_batch *one,
                       fp_buf *out)
{
    for (size_t i = 0; i < n; i++) {
        decode_input in = {msgs[i].value, msgs[i].len, msgs[i].key, msgs[i].key_len,
                           INT64_C(1893456000000)};
        decode_error err;

        if (decode_payload(NULL, NULL, 0, &in, one, &err) < 0)
            continue;
        for (size_t j = 0; j < one->len; j++) {
            fp_record *r = decode_batch_next(all);

            fp_buf_clear(out);
            fp_record_encode_json(&one->recs[j], out);
            fp_record_decode_json(r, out->data, out->len, NULL, 0);
        }
    }
}

/* Encode alone: the records of the whole corpus decoded once, then only encoded. */
static double measure_encode(const message *msgs, size_t n, double seconds)
{
    fp_record_batch all = {0}, one = {0};
    fp_buf out = {0};
    double start, elapsed;
    size_t records = 0;

    decode_all(msgs, n, &all, &one, &out);
    start = fp_mono_seconds();
    do {
        for (size_t j = 0; j < all.len; j++) {
            fp_buf_clear(&out);
            fp_record_encode_json(&all.recs[j], &out);
        }
        records += all.len;
        elapsed = fp_mono_seconds() - start;
    } while (elapsed < seconds);
    decode_batch_free(&all);
    decode_batch_free(&one);
    fp_buf_free(&out);
    return (double)records / elapsed;
}

/* Writes every record's canonical JSON to path, one per line. Returns 0 or -1. */
static int dump_corpus(const message *msgs, size_t n, const char *path)
{
    fp_record_batch batch = {0};
    fp_buf out = {0};
    FILE *f = fopen(path, "wb");
    int rc = 0;

    if (f == NULL) {
        fprintf(stderr, "bench_decode: %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        decode_input in = {msgs[i].value, msgs[i].len, msgs[i].key, msgs[i].key_len,
                           INT64_C(1893456000000)};
        decode_error err;

        if (decode_payload(NULL, NULL, 0, &in, &batch, &err) < 0) {
            fprintf(f, "! %s\n", err.code);
            continue;
        }
        for (size_t j = 0; j < batch.len && rc == 0; j++) {
            fp_buf_clear(&out);
            if (fp_record_encode_json(&batch.recs[j], &out) < 0 || fp_buf_putc(&out, '\n') < 0 ||
                fwrite(out.data, 1, out.len, f) != out.len)
                rc = -1;
        }
    }
    if (fclose(f) != 0)
        rc = -1;
    decode_batch_free(&batch);
    fp_buf_free(&out);
    return rc;
}

/* The three passes of --count, kept out of line so that callgrind reports each apart. */
static __attribute__((noinline)) size_t
count_decode(const message *msgs, size_t n, fp_record_batch *batch, fp_buf *out, size_t *bad)
{
    return decode_pass(msgs, n, batch, out, false, bad);
}

static __attribute__((noinline)) size_t
count_decode_encode(const message *msgs, size_t n, fp_record_batch *batch, fp_buf *out, size_t *bad)
{
    return decode_pass(msgs, n, batch, out, true, bad);
}

static __attribute__((noinline)) size_t count_encode(const fp_record_batch *all, fp_buf *out)
{
    for (size_t j = 0; j < all->len; j++) {
        fp_buf_clear(out);
        fp_record_encode_json(&all->recs[j], out);
    }
    return all->len;
}

/* --count: one pass of each kind; prints the records each pass handled. */
static void count_passes(const message *msgs, size_t n)
{
    fp_record_batch batch = {0}, all = {0};
    fp_buf out = {0};
    size_t bad = 0, dec, both, enc;

    /* A first pass grows every buffer, as the timed passes find them. */
    decode_pass(msgs, n, &batch, &out, true, &bad);
    dec = count_decode(msgs, n, &batch, &out, &bad);
    both = count_decode_encode(msgs, n, &batch, &out, &bad);
    decode_all(msgs, n, &all, &batch, &out);
    enc = count_encode(&all, &out);
    printf("{\"count_decode\":%zu,\"count_decode_encode\":%zu,\"count_encode\":%zu}\n", dec, both,
           enc);
    decode_batch_free(&batch);
    decode_batch_free(&all);
    fp_buf_free(&out);
}

int main(int argc, char **argv)
{
    const char *dump = NULL;
    bool count = false;
    fp_buf raw = {0};
    message *msgs = NULL;
    size_t n = 0, bad = 0;
    double seconds = 2, full[15], dec[15], enc[15];
    int repeat = 3;

    if (argc < 2) {
        fprintf(stderr,
                "usage: bench_decode CORPUS [--seconds S] [--repeat N] [--dump FILE | --count]\n");
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--count") == 0)
            count = true;
        else if (i + 1 == argc)
            break;
        else if (strcmp(argv[i], "--dump") == 0)
            dump = argv[++i];
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = strtod(argv[++i], NULL);
        else if (strcmp(argv[i], "--repeat") == 0)
            repeat = (int)strtol(argv[++i], NULL, 10);
    }
    if (repeat < 1 || repeat > 15 || seconds <= 0) {
        fprintf(stderr, "bench_decode: --repeat 1..15, --seconds > 0\n");
        return 2;
    }
    if (load_corpus(argv[1], &raw, &msgs, &n) < 0 || n == 0) {
        fprintf(stderr, "bench_decode: %s is not a fleet-sim corpus\n", argv[1]);
        return 1;
    }
    if (dump != NULL) {
        int rc = dump_corpus(msgs, n, dump);

        free(msgs);
        fp_buf_free(&raw);
        return rc == 0 ? 0 : 1;
    }
    if (count) {
        count_passes(msgs, n);
        free(msgs);
        fp_buf_free(&raw);
        return 0;
    }
    {
        fp_record_batch batch = {0};
        fp_buf out = {0};

        decode_pass(msgs, n, &batch, &out, false, &bad);
        decode_batch_free(&batch);
        fp_buf_free(&out);
    }
    for (int r = 0; r < repeat; r++) {
        full[r] = measure(msgs, n, seconds, true);
        dec[r] = measure(msgs, n, seconds, false);
        enc[r] = measure_encode(msgs, n, seconds);
    }
    qsort(full, (size_t)repeat, sizeof(double), cmp_double);
    qsort(dec, (size_t)repeat, sizeof(double), cmp_double);
    qsort(enc, (size_t)repeat, sizeof(double), cmp_double);
    printf("{\"messages\":%zu,\"failed_payloads_per_pass\":%zu,"
           "\"decode_encode_records_per_s\":%.0f,\"decode_only_records_per_s\":%.0f,"
           "\"encode_only_records_per_s\":%.0f,\"repeat\":%d,\"seconds_per_pass\":%g}\n",
           n, bad, full[repeat / 2], dec[repeat / 2], enc[repeat / 2], repeat, seconds);
    free(msgs);
    fp_buf_free(&raw);
    return 0;
}
