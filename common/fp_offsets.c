#include "common/fp_offsets.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define SEQ_BITS 40
#define SEQ_MASK ((UINT64_C(1) << SEQ_BITS) - 1)

typedef struct entry {
    int64_t offset;
    uint32_t holds;
    uint32_t bytes;
} entry;

/* One partition's held messages: sequences head..tail-1 live at ring[seq & (cap - 1)]. */
typedef struct partition_ring {
    entry *ring;
    size_t cap; /* power of two, or 0 */
    uint64_t head, tail;
    uint32_t generation; /* bumped by forget, so stale tokens are recognised */
    int64_t committable; /* -1 when nothing finished yet */
    bool dirty;
} partition_ring;

struct fp_offsets {
    partition_ring *parts;
    size_t nparts;
    size_t inflight;
    size_t inflight_bytes;
};

fp_offsets *fp_offsets_new(void)
{
    return calloc(1, sizeof(fp_offsets));
}

void fp_offsets_free(fp_offsets *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nparts; i++)
        free(t->parts[i].ring);
    free(t->parts);
    free(t);
}

/* Returns the partition's ring, growing the table as needed; NULL on out of memory. */
static partition_ring *get_part(fp_offsets *t, int32_t partition)
{
    if ((size_t)partition >= t->nparts) {
        size_t n = (size_t)partition + 1;
        partition_ring *p = realloc(t->parts, n * sizeof(*p));

        if (p == NULL)
            return NULL;
        memset(p + t->nparts, 0, (n - t->nparts) * sizeof(*p));
        for (size_t i = t->nparts; i < n; i++)
            p[i].committable = -1;
        t->parts = p;
        t->nparts = n;
    }
    return &t->parts[partition];
}

/* Doubles a ring, keeping every live sequence at its slot. Returns 0 or -1. */
static int grow(partition_ring *p)
{
    size_t cap = p->cap != 0 ? p->cap * 2 : 64;
    entry *ring = malloc(cap * sizeof(*ring));

    if (ring == NULL)
        return -1;
    for (uint64_t s = p->head; s < p->tail; s++)
        ring[s & (cap - 1)] = p->ring[s & (p->cap - 1)];
    free(p->ring);
    p->ring = ring;
    p->cap = cap;
    return 0;
}

int fp_offsets_track(fp_offsets *t, int32_t partition, int64_t offset, size_t bytes,
                     uint64_t *token)
{
    partition_ring *p;
    entry *e;

    if (partition < 0 || partition > FP_OFFSETS_MAX_PARTITION)
        return -1;
    p = get_part(t, partition);
    if (p == NULL)
        return -1;
    if (p->tail - p->head == p->cap && grow(p) < 0)
        return -1;
    e = &p->ring[p->tail & (p->cap - 1)];
    e->offset = offset;
    e->holds = 1;
    e->bytes = bytes < UINT32_MAX ? (uint32_t)bytes : UINT32_MAX;
    /* The generation's low bits ride in the token's top bits beside the partition. */
    *token = ((uint64_t)(p->generation & 0xff) << 56) | ((uint64_t)partition << SEQ_BITS) |
             (p->tail & SEQ_MASK);
    p->tail++;
    t->inflight++;
    t->inflight_bytes += e->bytes;
    return 0;
}

/* Finds the entry of a token; NULL when its partition was forgotten since. */
static entry *find(fp_offsets *t, uint64_t token, partition_ring **part)
{
    size_t partition = (size_t)((token >> SEQ_BITS) & 0xffff);
    uint32_t generation = (uint32_t)(token >> 56);
    partition_ring *p;
    uint64_t seq;

    if (partition >= t->nparts)
        return NULL;
    p = &t->parts[partition];
    if ((p->generation & 0xff) != generation)
        return NULL;
    /* Rebuild the full sequence from its low bits relative to head. */
    seq = (p->head & ~SEQ_MASK) | (token & SEQ_MASK);
    if (seq < p->head)
        seq += SEQ_MASK + 1;
    if (seq >= p->tail)
        return NULL;
    *part = p;
    return &p->ring[seq & (p->cap - 1)];
}

void fp_offsets_hold(fp_offsets *t, uint64_t token)
{
    partition_ring *p;
    entry *e = find(t, token, &p);

    if (e != NULL)
        e->holds++;
}

void fp_offsets_release(fp_offsets *t, uint64_t token)
{
    partition_ring *p;
    entry *e = find(t, token, &p);

    if (e == NULL || e->holds == 0)
        return;
    if (--e->holds != 0)
        return;
    /* Pass over the finished prefix. */
    while (p->head < p->tail) {
        entry *h = &p->ring[p->head & (p->cap - 1)];

        if (h->holds != 0)
            break;
        p->committable = h->offset + 1;
        p->dirty = true;
        p->head++;
        t->inflight--;
        t->inflight_bytes -= h->bytes;
    }
}

size_t fp_offsets_inflight(const fp_offsets *t)
{
    return t->inflight;
}

size_t fp_offsets_inflight_bytes(const fp_offsets *t)
{
    return t->inflight_bytes;
}

int fp_offsets_source(fp_offsets *t, uint64_t token, int32_t *partition, int64_t *offset)
{
    partition_ring *p;
    entry *e = find(t, token, &p);

    if (e == NULL)
        return -1;
    *partition = (int32_t)(p - t->parts);
    *offset = e->offset;
    return 0;
}

void fp_offsets_collect(fp_offsets *t, void (*fn)(int32_t partition, int64_t offset, void *arg),
                        void *arg)
{
    for (size_t i = 0; i < t->nparts; i++) {
        if (t->parts[i].dirty) {
            t->parts[i].dirty = false;
            fn((int32_t)i, t->parts[i].committable, arg);
        }
    }
}

void fp_offsets_each_read(const fp_offsets *t,
                          void (*fn)(int32_t partition, int64_t offset, void *arg), void *arg)
{
    for (size_t i = 0; i < t->nparts; i++) {
        const partition_ring *p = &t->parts[i];
        /* Held messages end at the last one tracked; with none held, all finished. */
        int64_t next =
            p->tail > p->head ? p->ring[(p->tail - 1) & (p->cap - 1)].offset + 1 : p->committable;

        if (next >= 0)
            fn((int32_t)i, next, arg);
    }
}

void fp_offsets_forget(fp_offsets *t, int32_t partition)
{
    partition_ring *p;

    if (partition < 0 || (size_t)partition >= t->nparts)
        return;
    p = &t->parts[partition];
    t->inflight -= (size_t)(p->tail - p->head);
    for (uint64_t s = p->head; s < p->tail; s++)
        t->inflight_bytes -= p->ring[s & (p->cap - 1)].bytes;
    p->head = p->tail = 0;
    p->committable = -1;
    p->dirty = false;
    p->generation++;
}
