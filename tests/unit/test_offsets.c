/* Tests of common/fp_offsets.c: offsets move only over a contiguous finished prefix. */
#include "common/fp_offsets.h"
#include "fp_test.h"

typedef struct seen {
    int n;
    int32_t partition[8];
    int64_t offset[8];
} seen;

static void record(int32_t partition, int64_t offset, void *arg)
{
    seen *s = arg;

    if (s->n < 8) {
        s->partition[s->n] = partition;
        s->offset[s->n] = offset;
    }
    s->n++;
}

FP_TEST(offsets_contiguous_prefix)
{
    fp_offsets *t = fp_offsets_new();
    uint64_t tok[4];
    seen s = {0};

    for (int i = 0; i < 4; i++)
        FP_CHECK_INT(fp_offsets_track(t, 3, 100 + i, 10, &tok[i]), 0);
    FP_CHECK_INT(fp_offsets_inflight(t), 4);
    fp_offsets_hold(t, tok[1]);
    fp_offsets_release(t, tok[1]); /* still held once */
    fp_offsets_release(t, tok[2]);
    fp_offsets_collect(t, record, &s);
    FP_CHECK_INT(s.n, 0); /* 100 not finished: nothing committable */
    fp_offsets_release(t, tok[0]);
    fp_offsets_collect(t, record, &s);
    FP_CHECK_INT(s.n, 1);
    FP_CHECK_INT(s.partition[0], 3);
    FP_CHECK_INT(s.offset[0], 101); /* 101 still held */
    fp_offsets_release(t, tok[1]);
    fp_offsets_release(t, tok[3]);
    s.n = 0;
    fp_offsets_collect(t, record, &s);
    FP_CHECK_INT(s.n, 1);
    FP_CHECK_INT(s.offset[0], 104);
    FP_CHECK_INT(fp_offsets_inflight(t), 0);
    s.n = 0;
    fp_offsets_collect(t, record, &s);
    FP_CHECK_INT(s.n, 0); /* reported once */
    fp_offsets_free(t);
}

FP_TEST(offsets_partitions_independent_and_growth)
{
    fp_offsets *t = fp_offsets_new();
    uint64_t first = 0, tok = 0;
    seen s = {0};

    /* Far more than the initial ring, with the head held: the ring must grow intact. */
    FP_CHECK_INT(fp_offsets_track(t, 0, 0, 10, &first), 0);
    for (int i = 1; i < 1000; i++) {
        FP_CHECK_INT(fp_offsets_track(t, 0, i, 10, &tok), 0);
        fp_offsets_release(t, tok);
    }
    FP_CHECK_INT(fp_offsets_track(t, 7, 42, 10, &tok), 0);
    fp_offsets_release(t, tok);
    fp_offsets_collect(t, record, &s);
    FP_CHECK_INT(s.n, 1);
    FP_CHECK_INT(s.partition[0], 7);
    FP_CHECK_INT(s.offset[0], 43);
    fp_offsets_release(t, first);
    s.n = 0;
    fp_offsets_collect(t, record, &s);
    FP_CHECK_INT(s.n, 1);
    FP_CHECK_INT(s.offset[0], 1000);
    FP_CHECK_INT(fp_offsets_track(t, -1, 0, 10, &tok), -1);
    FP_CHECK_INT(fp_offsets_track(t, FP_OFFSETS_MAX_PARTITION + 1, 0, 10, &tok), -1);
    fp_offsets_free(t);
}

FP_TEST(offsets_forget_ignores_stale_tokens)
{
    fp_offsets *t = fp_offsets_new();
    uint64_t old, fresh;
    seen s = {0};

    FP_CHECK_INT(fp_offsets_track(t, 1, 10, 10, &old), 0);
    fp_offsets_forget(t, 1);
    FP_CHECK_INT(fp_offsets_inflight(t), 0);
    FP_CHECK_INT(fp_offsets_track(t, 1, 50, 10, &fresh), 0);
    fp_offsets_release(t, old); /* a late delivery report of the old assignment */
    fp_offsets_collect(t, record, &s);
    FP_CHECK_INT(s.n, 0);
    fp_offsets_release(t, fresh);
    fp_offsets_collect(t, record, &s);
    FP_CHECK_INT(s.n, 1);
    FP_CHECK_INT(s.offset[0], 51);
    fp_offsets_free(t);
}

FP_TEST(offsets_bytes_and_source)
{
    fp_offsets *t = fp_offsets_new();
    uint64_t a, b;
    int32_t partition = -1;
    int64_t offset = -1;

    FP_CHECK_INT(fp_offsets_track(t, 2, 7, 1000, &a), 0);
    FP_CHECK_INT(fp_offsets_track(t, 2, 8, 500, &b), 0);
    FP_CHECK_INT(fp_offsets_inflight_bytes(t), 1500);
    FP_CHECK_INT(fp_offsets_source(t, b, &partition, &offset), 0);
    FP_CHECK_INT(partition, 2);
    FP_CHECK_INT(offset, 8);
    fp_offsets_release(t, b); /* finished, but behind an unfinished message: still counted */
    FP_CHECK_INT(fp_offsets_inflight_bytes(t), 1500);
    fp_offsets_release(t, a);
    FP_CHECK_INT(fp_offsets_inflight_bytes(t), 0);
    FP_CHECK_INT(fp_offsets_track(t, 3, 1, 300, &a), 0);
    fp_offsets_forget(t, 3);
    FP_CHECK_INT(fp_offsets_inflight_bytes(t), 0);
    FP_CHECK_INT(fp_offsets_source(t, a, &partition, &offset), -1);
    fp_offsets_free(t);
}

/* How far each partition was read: the offset after the last message tracked, finished or
 * not, and nothing for a partition forgotten since. */
FP_TEST(offsets_each_read)
{
    fp_offsets *t = fp_offsets_new();
    uint64_t tok[3];
    seen s = {0};

    FP_CHECK_INT(fp_offsets_track(t, 0, 7, 1, &tok[0]), 0);
    FP_CHECK_INT(fp_offsets_track(t, 0, 8, 1, &tok[1]), 0);
    FP_CHECK_INT(fp_offsets_track(t, 2, 40, 1, &tok[2]), 0);
    fp_offsets_each_read(t, record, &s);
    FP_CHECK_INT(s.n, 2);
    FP_CHECK_INT(s.partition[0], 0);
    FP_CHECK_INT(s.offset[0], 9); /* both held */
    FP_CHECK_INT(s.partition[1], 2);
    FP_CHECK_INT(s.offset[1], 41);
    fp_offsets_release(t, tok[0]);
    fp_offsets_release(t, tok[1]);
    fp_offsets_forget(t, 2);
    s.n = 0;
    fp_offsets_each_read(t, record, &s);
    FP_CHECK_INT(s.n, 1);
    FP_CHECK_INT(s.offset[0], 9); /* all finished */
    fp_offsets_free(t);
}
