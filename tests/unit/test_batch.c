/* Tests of sink-svc/batch.c's rows: a dead letter is owed until confirmed, a failed one is sent
 * again on every retry, and the batch is due by rows, bytes or age. */
#include "sink-svc/batch.h"
#include "fp_test.h"

static const char good[] = "{\"schema\":1,\"device_id\":\"d1\",\"ts\":\"2026-01-01T00:00:00Z\"}";

static batch *new_batch(int64_t rows, int64_t bytes)
{
    batch_settings set = {.max_rows = rows,
                          .max_bytes = bytes,
                          .max_ms = 600000,
                          .group = "g",
                          .topic = "t",
                          .dlq_timeout_ms = 10};

    return batch_new(NULL, &set);
}

FP_TEST(batch_dead_letter_pending_until_confirmed)
{
    batch *b = new_batch(100, 1 << 20);
    size_t i = 0;

    FP_CHECK_INT(batch_push(b, NULL, 11, 0, 5, good, sizeof(good) - 1), 0);
    FP_CHECK_INT(batch_push(b, NULL, 12, 0, 6, "not json", 8), 1); /* owes a dead letter */
    FP_CHECK_INT(batch_push(b, NULL, 13, 0, 7, good, sizeof(good) - 1), 2);
    FP_CHECK(!batch_dead_letters_confirmed(b));
    FP_CHECK(batch_next_to_send(b, &i));
    FP_CHECK_INT(i, 1);
    FP_CHECK_STR(batch_row_at(b, 1)->dl_code, "json_syntax");
    batch_row_at(b, 1)->dl = BATCH_DL_INFLIGHT;
    i = 0;
    FP_CHECK(!batch_next_to_send(b, &i)); /* in flight: not sent twice */
    batch_dead_letter_done(b, 12, false);
    FP_CHECK_INT(batch_row_at(b, 1)->dl, BATCH_DL_FAILED);
    FP_CHECK(!batch_dead_letters_confirmed(b)); /* the batch must not commit */
    i = 0;
    FP_CHECK(batch_next_to_send(b, &i)); /* the retry sends it again */
    FP_CHECK_INT(i, 1);
    batch_row_at(b, 1)->dl = BATCH_DL_INFLIGHT;
    batch_dead_letter_done(b, 12, true);
    FP_CHECK(batch_dead_letters_confirmed(b));
    /* A row the database refuses later owes one too. */
    batch_owe_dead_letter(b, 2, "db_rejected", "22003");
    FP_CHECK(!batch_dead_letters_confirmed(b));
    i = 0;
    FP_CHECK(batch_next_to_send(b, &i));
    FP_CHECK_INT(i, 2);
    batch_free(b);
}

FP_TEST(batch_due_by_rows_bytes_and_idle)
{
    batch *b = new_batch(3, 200);
    int64_t now = 0;

    FP_CHECK(!batch_is_due(b, now, false));
    FP_CHECK(!batch_is_due(b, now, true)); /* idle and empty: nothing to write */
    batch_push(b, NULL, 1, 0, 0, good, sizeof(good) - 1);
    FP_CHECK(!batch_is_due(b, now + 1, false));
    FP_CHECK(batch_is_due(b, now + 1, true)); /* the input is drained: write what is there */
    batch_push(b, NULL, 2, 0, 1, good, sizeof(good) - 1);
    FP_CHECK(!batch_is_due(b, now + 1, false));
    batch_push(b, NULL, 3, 0, 2, good, sizeof(good) - 1); /* 3 rows */
    FP_CHECK(batch_is_due(b, now + 1, false));
    batch_free(b);
    b = new_batch(1000, 200);
    for (int i = 0; i < 3; i++)
        batch_push(b, NULL, (uint64_t)i, 0, i, good, sizeof(good) - 1);
    FP_CHECK_INT(batch_bytes(b), 3 * (sizeof(good) - 1));
    FP_CHECK(!batch_is_due(b, 1, false));
    batch_push(b, NULL, 9, 0, 9, good, sizeof(good) - 1); /* over 200 bytes */
    FP_CHECK(batch_is_due(b, 1, false));
    batch_free(b);
}
