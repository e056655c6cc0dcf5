/* Tests of sink-svc/recent.c: committed keys are known, an attempt's own repeats are told
 * apart, an uncommitted attempt is forgotten, the oldest keys go first. */
#include <stdio.h>

#include "fp_test.h"
#include "sink-svc/recent.h"

FP_TEST(recent_committed_and_in_batch)
{
    recent_keys *k = recent_new(8);

    FP_CHECK(k != NULL);
    recent_begin(k);
    FP_CHECK_INT(recent_check(k, "356307042441013", 1000), RECENT_NEW);
    FP_CHECK_INT(recent_check(k, "356307042441013", 2000), RECENT_NEW);
    FP_CHECK_INT(recent_check(k, "356307042441013", 1000), RECENT_IN_BATCH);
    FP_CHECK_INT(recent_check(k, "356307042441014", 1000), RECENT_NEW); /* another device */
    recent_commit(k);
    recent_begin(k);
    FP_CHECK_INT(recent_check(k, "356307042441013", 1000), RECENT_COMMITTED);
    FP_CHECK_INT(recent_check(k, "356307042441014", 1000), RECENT_COMMITTED);
    FP_CHECK_INT(recent_check(k, "356307042441013", 3000), RECENT_NEW);
    FP_CHECK_INT(recent_len(k), 4);
    recent_free(k);
}

FP_TEST(recent_forgets_an_uncommitted_attempt)
{
    recent_keys *k = recent_new(4);

    recent_begin(k);
    FP_CHECK_INT(recent_check(k, "a", 1), RECENT_NEW);
    FP_CHECK_INT(recent_check(k, "a", 2), RECENT_NEW);
    recent_commit(k);
    recent_begin(k);
    FP_CHECK_INT(recent_check(k, "b", 1), RECENT_NEW);
    FP_CHECK_INT(recent_check(k, "b", 2), RECENT_NEW);
    FP_CHECK_INT(recent_check(k, "b", 3), RECENT_NEW); /* evicts a/1 */
    FP_CHECK_INT(recent_len(k), 4);
    /* The database did not commit: b's keys must not count as stored. */
    recent_begin(k);
    FP_CHECK_INT(recent_len(k), 1);
    FP_CHECK_INT(recent_check(k, "a", 2), RECENT_COMMITTED);
    FP_CHECK_INT(recent_check(k, "b", 1), RECENT_NEW);
    FP_CHECK_INT(recent_check(k, "a", 1), RECENT_NEW); /* its room went to b/3 */
    recent_free(k);
}

FP_TEST(recent_oldest_go_first)
{
    recent_keys *k = recent_new(100);
    char id[16];

    for (int i = 0; i < 250; i++) {
        recent_begin(k);
        snprintf(id, sizeof(id), "dev%d", i);
        FP_CHECK_INT(recent_check(k, id, i), RECENT_NEW);
        recent_commit(k);
    }
    FP_CHECK_INT(recent_len(k), 100);
    recent_begin(k);
    FP_CHECK_INT(recent_check(k, "dev249", 249), RECENT_COMMITTED);
    FP_CHECK_INT(recent_check(k, "dev150", 150), RECENT_COMMITTED);
    FP_CHECK_INT(recent_check(k, "dev149", 149), RECENT_NEW);
    recent_free(k);
}

FP_TEST(recent_attempt_larger_than_the_set)
{
    recent_keys *k = recent_new(2);

    recent_begin(k);
    FP_CHECK_INT(recent_check(k, "a", 1), RECENT_NEW);
    FP_CHECK_INT(recent_check(k, "a", 2), RECENT_NEW);
    FP_CHECK_INT(recent_check(k, "a", 3), RECENT_NEW); /* not noted: no room */
    FP_CHECK_INT(recent_check(k, "a", 1), RECENT_IN_BATCH);
    FP_CHECK_INT(recent_check(k, "a", 3), RECENT_NEW);
    recent_commit(k);
    FP_CHECK_INT(recent_len(k), 2);
    recent_free(k);
}

FP_TEST(recent_long_ids_and_zero_capacity)
{
    recent_keys *k = recent_new(8), *none = recent_new(0);
    char id[RECENT_ID_MAX + 1];

    memset(id, 'x', RECENT_ID_MAX);
    id[RECENT_ID_MAX] = '\0';
    recent_begin(k);
    FP_CHECK_INT(recent_check(k, id, 1), RECENT_NEW);
    FP_CHECK_INT(recent_check(k, id, 1), RECENT_NEW); /* never remembered */
    FP_CHECK_INT(recent_len(k), 0);
    recent_begin(none);
    FP_CHECK_INT(recent_check(none, "a", 1), RECENT_NEW);
    FP_CHECK_INT(recent_check(none, "a", 1), RECENT_NEW);
    recent_commit(none);
    recent_free(k);
    recent_free(none);
    recent_free(NULL);
}

/* While a batch commits the next one is gathered: the committing batch's keys are known to it
 * (its rows must not be written twice), kept when the commit lands and forgotten, with the
 * keys gathered since, when it does not. */
FP_TEST(recent_sealed_attempt)
{
    recent_keys *k = recent_new(8);

    recent_begin(k);
    FP_CHECK_INT(recent_check(k, "a", 1), RECENT_NEW);
    recent_commit(k);
    recent_begin(k);
    FP_CHECK_INT(recent_check(k, "b", 1), RECENT_NEW);
    FP_CHECK_INT(recent_check(k, "b", 2), RECENT_NEW);
    recent_seal(k);
    FP_CHECK_INT(recent_check(k, "b", 1), RECENT_SEALED);
    FP_CHECK_INT(recent_check(k, "a", 1), RECENT_COMMITTED);
    FP_CHECK_INT(recent_check(k, "c", 1), RECENT_NEW);
    FP_CHECK_INT(recent_check(k, "c", 1), RECENT_IN_BATCH);
    /* A new attempt forgets only its own keys, not the sealed ones. */
    recent_begin(k);
    FP_CHECK_INT(recent_len(k), 3);
    FP_CHECK_INT(recent_check(k, "b", 2), RECENT_SEALED);
    FP_CHECK_INT(recent_check(k, "c", 1), RECENT_NEW);
    recent_commit_sealed(k);
    FP_CHECK_INT(recent_check(k, "b", 2), RECENT_COMMITTED);
    recent_commit(k);
    FP_CHECK_INT(recent_len(k), 4);

    /* The sealed attempt fails: its keys go, and so do those checked against them since. */
    recent_begin(k);
    FP_CHECK_INT(recent_check(k, "d", 1), RECENT_NEW);
    recent_seal(k);
    FP_CHECK_INT(recent_check(k, "e", 1), RECENT_NEW);
    recent_forget(k);
    FP_CHECK_INT(recent_len(k), 4);
    FP_CHECK_INT(recent_check(k, "d", 1), RECENT_NEW);
    FP_CHECK_INT(recent_check(k, "e", 1), RECENT_NEW);
    FP_CHECK_INT(recent_check(k, "c", 1), RECENT_COMMITTED);
    recent_free(k);
}

/* The sealed and the current attempt together never take more room than the set has. */
FP_TEST(recent_sealed_and_current_fill_the_set)
{
    recent_keys *k = recent_new(3);

    recent_begin(k);
    FP_CHECK_INT(recent_check(k, "a", 1), RECENT_NEW);
    FP_CHECK_INT(recent_check(k, "a", 2), RECENT_NEW);
    recent_seal(k);
    FP_CHECK_INT(recent_check(k, "b", 1), RECENT_NEW);
    FP_CHECK_INT(recent_check(k, "b", 2), RECENT_NEW); /* not noted: the set is full */
    FP_CHECK_INT(recent_check(k, "a", 1), RECENT_SEALED);
    FP_CHECK_INT(recent_check(k, "b", 2), RECENT_NEW);
    recent_forget(k);
    FP_CHECK_INT(recent_len(k), 0);
    recent_free(k);
}
