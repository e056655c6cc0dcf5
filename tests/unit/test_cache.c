/* Tests of enricher-svc/cache.c (LRU with TTL) and enricher-svc/reorder.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enricher-svc/cache.h"
#include "fp_test.h"
#include "enricher-svc/reorder.h"

static int freed;

static void count_free(void *p)
{
    freed++;
    free(p);
}

static char *dup_text(const char *s)
{
    char *d = malloc(strlen(s) + 1);

    memcpy(d, s, strlen(s) + 1);
    return d;
}

FP_TEST(cache_hit_miss_and_lru_eviction)
{
    cache_lru *c = cache_new(2, 1000, 100, count_free);
    void *v = NULL;
    bool neg = true;

    freed = 0;
    FP_CHECK(!cache_get(c, "a", 0, &v, &neg));
    FP_CHECK_INT(cache_put(c, "a", dup_text("A"), false, 0), 0);
    FP_CHECK_INT(cache_put(c, "b", dup_text("B"), false, 0), 0);
    FP_CHECK(cache_get(c, "a", 1, &v, &neg)); /* a is now the most recent */
    FP_CHECK_STR(v, "A");
    FP_CHECK(!neg);
    FP_CHECK_INT(cache_put(c, "c", dup_text("C"), false, 2), 0); /* evicts b */
    FP_CHECK_INT(cache_size(c), 2);
    FP_CHECK_INT(freed, 1);
    FP_CHECK(!cache_get(c, "b", 3, &v, &neg));
    FP_CHECK(cache_get(c, "a", 3, &v, &neg));
    FP_CHECK(cache_get(c, "c", 3, &v, &neg));
    FP_CHECK_INT(cache_put(c, "c", dup_text("C2"), false, 4), 0); /* replaces */
    FP_CHECK(cache_get(c, "c", 5, &v, &neg));
    FP_CHECK_STR(v, "C2");
    FP_CHECK_INT(freed, 2);
    cache_free(c);
    FP_CHECK_INT(freed, 4);
}

FP_TEST(cache_ttl_and_negative_entries)
{
    cache_lru *c = cache_new(10, 1000, 100, count_free);
    void *v = NULL;
    bool neg = false;

    freed = 0;
    cache_put(c, "pos", dup_text("P"), false, 0);
    cache_put(c, "neg", NULL, true, 0);
    FP_CHECK(cache_get(c, "neg", 99, &v, &neg));
    FP_CHECK(neg && v == NULL);
    FP_CHECK(!cache_get(c, "neg", 100, &v, &neg)); /* negative TTL over */
    FP_CHECK(cache_get(c, "pos", 999, &v, &neg));
    FP_CHECK(!cache_get(c, "pos", 1000, &v, &neg)); /* expired and dropped */
    FP_CHECK_INT(cache_size(c), 0);
    FP_CHECK_INT(freed, 1);
    cache_free(c);
}

FP_TEST(cache_disabled)
{
    cache_lru *c = cache_new(0, 1000, 100, count_free);
    void *v;
    bool neg;

    freed = 0;
    FP_CHECK(!cache_enabled(c));
    FP_CHECK_INT(cache_put(c, "a", dup_text("A"), false, 0), 0);
    FP_CHECK_INT(freed, 1); /* dropped at once */
    FP_CHECK(!cache_get(c, "a", 0, &v, &neg));
    cache_free(c);
}

FP_TEST(reorder_queues_per_partition)
{
    reorder_buffer *q = reorder_new();
    uint64_t id = 0;

    for (uint64_t i = 0; i < 200; i++) /* beyond the first ring, wrapping */
        FP_CHECK_INT(reorder_push(q, 3, i), 0);
    FP_CHECK_INT(reorder_push(q, 0, 1000), 0);
    FP_CHECK_INT(reorder_len(q, 3), 200);
    for (uint64_t i = 0; i < 150; i++) {
        FP_CHECK_INT(reorder_head(q, 3, &id), 0);
        FP_CHECK_INT(id, i);
        reorder_pop(q, 3);
    }
    for (uint64_t i = 200; i < 300; i++)
        FP_CHECK_INT(reorder_push(q, 3, i), 0);
    for (uint64_t i = 150; i < 300; i++) {
        FP_CHECK_INT(reorder_head(q, 3, &id), 0);
        FP_CHECK_INT(id, i);
        reorder_pop(q, 3);
    }
    FP_CHECK_INT(reorder_head(q, 3, &id), -1);
    FP_CHECK_INT(reorder_head(q, 0, &id), 0);
    FP_CHECK_INT(id, 1000);
    FP_CHECK_INT(reorder_head(q, 7, &id), -1);
    FP_CHECK_INT(reorder_push(q, -1, 1), -1);
    reorder_free(q);
}

static size_t text_size(const void *p)
{
    return strlen(p) + 1;
}

/* Edge: answers of any size cannot grow the cache past its byte bound. */
FP_TEST(cache_bounded_in_bytes)
{
    cache_lru *c = cache_new(1000, 60000, 60000, count_free);
    char *big = malloc(5000);
    void *v = NULL;
    bool neg = false;

    cache_limit_bytes(c, 4000, text_size);
    freed = 0;
    for (int i = 0; i < 100; i++) {
        char key[16];

        snprintf(key, sizeof(key), "k%d", i);
        FP_CHECK_INT(
            cache_put(c, key, dup_text("0123456789012345678901234567890123456789"), false, 0), 0);
        FP_CHECK(cache_bytes(c) <= 4000);
    }
    FP_CHECK(cache_size(c) < 100); /* the byte bound evicted, not the entry bound */
    FP_CHECK(cache_get(c, "k99", 1, &v, &neg));
    FP_CHECK(!cache_get(c, "k0", 1, &v, &neg));
    memset(big, 'b', 4999);
    big[4999] = '\0';
    FP_CHECK_INT(cache_put(c, "big", big, false, 0), 0); /* larger than the cache: not kept */
    FP_CHECK(!cache_get(c, "big", 1, &v, &neg));
    FP_CHECK(cache_get(c, "k99", 1, &v, &neg)); /* and it evicted nothing */
    cache_free(c);
}
