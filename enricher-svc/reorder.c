#include "enricher-svc/reorder.h"

#include <stdlib.h>
#include <string.h>

#define MAX_PARTITION 65535

/* A ring of ids: head .. head+len-1 at ring[i & (cap - 1)]. */
typedef struct queue {
    uint64_t *ring;
    size_t cap, head, len;
} queue;

struct reorder_buffer {
    queue *parts;
    size_t nparts;
};

reorder_buffer *reorder_new(void)
{
    return calloc(1, sizeof(reorder_buffer));
}

void reorder_free(reorder_buffer *q)
{
    if (q == NULL)
        return;
    for (size_t i = 0; i < q->nparts; i++)
        free(q->parts[i].ring);
    free(q->parts);
    free(q);
}

int reorder_push(reorder_buffer *q, int32_t partition, uint64_t id)
{
    queue *p;

    if (partition < 0 || partition > MAX_PARTITION)
        return -1;
    if ((size_t)partition >= q->nparts) {
        size_t n = (size_t)partition + 1;
        queue *parts = realloc(q->parts, n * sizeof(*parts));

        if (parts == NULL)
            return -1;
        memset(parts + q->nparts, 0, (n - q->nparts) * sizeof(*parts));
        q->parts = parts;
        q->nparts = n;
    }
    p = &q->parts[partition];
    if (p->len == p->cap) {
        size_t cap = p->cap != 0 ? p->cap * 2 : 64;
        uint64_t *ring = malloc(cap * sizeof(*ring));

        if (ring == NULL)
            return -1;
        for (size_t i = 0; i < p->len; i++)
            ring[i] = p->ring[(p->head + i) & (p->cap - 1)];
        free(p->ring);
        p->ring = ring;
        p->cap = cap;
        p->head = 0;
    }
    p->ring[(p->head + p->len) & (p->cap - 1)] = id;
    p->len++;
    return 0;
}

int reorder_head(const reorder_buffer *q, int32_t partition, uint64_t *id)
{
    const queue *p;

    if (partition < 0 || (size_t)partition >= q->nparts)
        return -1;
    p = &q->parts[partition];
    if (p->len == 0)
        return -1;
    *id = p->ring[p->head & (p->cap - 1)];
    return 0;
}

void reorder_pop(reorder_buffer *q, int32_t partition)
{
    queue *p = &q->parts[partition];

    p->head = (p->head + 1) & (p->cap - 1);
    p->len--;
}

size_t reorder_len(const reorder_buffer *q, int32_t partition)
{
    if (partition < 0 || (size_t)partition >= q->nparts)
        return 0;
    return q->parts[partition].len;
}
