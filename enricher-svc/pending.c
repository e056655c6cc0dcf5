#include "enricher-svc/pending.h"

#include <stdlib.h>
#include <string.h>

#include "enricher-svc/reorder.h"

#define NO_ITEM UINT32_MAX

struct pending {
    pending_item *items;
    uint32_t nitems, used, free_head;
    reorder_buffer *order;
};

pending *pending_new(void)
{
    pending *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return NULL;
    p->free_head = NO_ITEM;
    p->order = reorder_new();
    if (p->order == NULL) {
        free(p);
        return NULL;
    }
    return p;
}

void pending_free(pending *p)
{
    if (p == NULL)
        return;
    for (uint32_t i = 0; i < p->nitems; i++)
        fp_record_free(&p->items[i].rec);
    free(p->items);
    reorder_free(p->order);
    free(p);
}

/* Doubles the pool; the new items go on the free list. Returns 0 or -1. */
static int grow(pending *p)
{
    uint32_t n = p->nitems != 0 ? p->nitems * 2 : 256;
    pending_item *items = realloc(p->items, n * sizeof(*items));

    if (items == NULL)
        return -1;
    for (uint32_t i = p->nitems; i < n; i++) {
        memset(&items[i], 0, sizeof(items[i]));
        fp_record_init(&items[i].rec);
        items[i].next_free = i + 1 < n ? i + 1 : p->free_head;
    }
    p->free_head = p->nitems;
    p->items = items;
    p->nitems = n;
    return 0;
}

int pending_alloc(pending *p, uint64_t *id)
{
    uint32_t idx;
    pending_item *it;

    if (p->free_head == NO_ITEM && grow(p) < 0)
        return -1;
    idx = p->free_head;
    it = &p->items[idx];
    p->free_head = it->next_free;
    it->used = true;
    it->done = false;
    it->setting_up = true;
    it->asked = it->waiting = it->failed = 0;
    p->used++;
    *id = (uint64_t)it->gen << 32 | idx;
    return 0;
}

pending_item *pending_get(pending *p, uint64_t id)
{
    uint32_t idx = (uint32_t)id;

    if (idx >= p->nitems || !p->items[idx].used || p->items[idx].gen != (uint32_t)(id >> 32))
        return NULL;
    return &p->items[idx];
}

void pending_release(pending *p, uint64_t id)
{
    pending_item *it = pending_get(p, id);

    if (it == NULL)
        return;
    it->used = false;
    it->gen++;
    it->next_free = p->free_head;
    p->free_head = (uint32_t)id;
    p->used--;
}

int pending_enqueue(pending *p, uint64_t id, int32_t partition)
{
    pending_item *it = pending_get(p, id);

    if (it == NULL)
        return -1;
    it->partition = partition;
    return reorder_push(p->order, partition, id);
}

int pending_flush(pending *p, int32_t partition, int (*emit)(pending_item *it, void *ctx),
                  void *ctx)
{
    uint64_t id;
    int n = 0;

    while (reorder_head(p->order, partition, &id) == 0) {
        pending_item *it = pending_get(p, id);

        if (it == NULL) { /* cannot happen: items leave only through here or a drop */
            reorder_pop(p->order, partition);
            continue;
        }
        if (!it->done)
            break;
        if (emit(it, ctx) < 0)
            return -1;
        reorder_pop(p->order, partition);
        pending_release(p, id);
        n++;
    }
    return n;
}

void pending_drop_partition(pending *p, int32_t partition)
{
    uint64_t id;

    while (reorder_head(p->order, partition, &id) == 0) {
        reorder_pop(p->order, partition);
        pending_release(p, id);
    }
}

size_t pending_count(const pending *p)
{
    return p->used;
}
