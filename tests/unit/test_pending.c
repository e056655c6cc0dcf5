/* Tests of enricher-svc/pending.c: records leave in partition order, whatever order their
 * lookups finish in; dropped partitions' items and stale ids are gone. */
#include "fp_test.h"
#include "enricher-svc/pending.h"

typedef struct emitted {
    uint64_t tokens[16];
    int n;
} emitted;

static int collect(pending_item *it, void *ctx)
{
    emitted *e = ctx;

    e->tokens[e->n++] = it->token;
    return 0;
}

FP_TEST(pending_leaves_in_partition_order)
{
    pending *p = pending_new();
    uint64_t id[4];
    emitted out = {0};

    for (int i = 0; i < 4; i++) {
        FP_CHECK_INT(pending_alloc(p, &id[i]), 0);
        pending_get(p, id[i])->token = 100 + (uint64_t)i;
        FP_CHECK_INT(pending_enqueue(p, id[i], i == 3 ? 1 : 0), 0);
    }
    FP_CHECK_INT(pending_count(p), 4);
    pending_get(p, id[1])->done = true; /* finished before the first of its partition */
    FP_CHECK_INT(pending_flush(p, 0, collect, &out), 0);
    pending_get(p, id[0])->done = true;
    FP_CHECK_INT(pending_flush(p, 0, collect, &out), 2);
    FP_CHECK_INT(out.n, 2);
    FP_CHECK_INT(out.tokens[0], 100);
    FP_CHECK_INT(out.tokens[1], 101);
    FP_CHECK(pending_get(p, id[0]) == NULL); /* left: its id is stale now */
    pending_get(p, id[3])->done = true;      /* another partition is independent */
    FP_CHECK_INT(pending_flush(p, 1, collect, &out), 1);
    FP_CHECK_INT(out.tokens[2], 103);
    FP_CHECK_INT(pending_count(p), 1);
    pending_free(p);
}

FP_TEST(pending_drop_partition_and_growth)
{
    pending *p = pending_new();
    uint64_t id, first = 0;
    emitted out = {0};

    for (int i = 0; i < 1000; i++) {
        FP_CHECK_INT(pending_alloc(p, &id), 0);
        if (i == 0)
            first = id;
        FP_CHECK_INT(pending_enqueue(p, id, 2), 0);
    }
    FP_CHECK_INT(pending_count(p), 1000);
    pending_drop_partition(p, 2);
    FP_CHECK_INT(pending_count(p), 0);
    FP_CHECK(pending_get(p, first) == NULL);
    FP_CHECK_INT(pending_flush(p, 2, collect, &out), 0);
    FP_CHECK_INT(out.n, 0);
    /* A reused slot gets a new generation: the old id still finds nothing. */
    FP_CHECK_INT(pending_alloc(p, &id), 0);
    FP_CHECK(id != first);
    FP_CHECK(pending_get(p, first) == NULL);
    pending_free(p);
}
