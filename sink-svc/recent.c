#include "sink-svc/recent.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/fp_hash.h"

#define NONE UINT32_MAX

/* One key in the ring; `next` chains the entries of one hash bucket. */
typedef struct entry {
    uint64_t hash;
    int64_t ts_ms;
    uint32_t next;
    bool used;
    char id[RECENT_ID_MAX];
} entry;

/* The keys live in a ring in the order they were noted (the oldest is overwritten first); a
 * chained hash index over the ring finds them. The current attempt's keys are the `pending`
 * entries before `head`. */
struct recent_keys {
    entry *ring;
    size_t cap, head, len, pending;
    size_t sealed; /* the sealed attempt's keys, just older than the current attempt's */
    uint32_t *buckets;
    size_t mask;
};

recent_keys *recent_new(size_t capacity)
{
    recent_keys *k = calloc(1, sizeof(*k));
    size_t nb = 1;

    if (k == NULL)
        return NULL;
    k->cap = capacity;
    if (capacity == 0)
        return k;
    while (nb < capacity * 2)
        nb *= 2;
    k->ring = calloc(capacity, sizeof(*k->ring));
    k->buckets = malloc(nb * sizeof(*k->buckets));
    if (k->ring == NULL || k->buckets == NULL) {
        recent_free(k);
        return NULL;
    }
    memset(k->buckets, 0xff, nb * sizeof(*k->buckets));
    k->mask = nb - 1;
    return k;
}

void recent_free(recent_keys *k)
{
    if (k == NULL)
        return;
    free(k->ring);
    free(k->buckets);
    free(k);
}

static uint64_t key_hash(const char *id, size_t len, int64_t ts_ms)
{
    uint64_t h = fp_hash_bytes(id, len);

    h ^= (uint64_t)ts_ms;
    h *= UINT64_C(0x9e3779b97f4a7c15);
    return h ^ (h >> 29);
}

/* Takes entry i out of its bucket's chain and marks it free. */
static void unlink_entry(recent_keys *k, size_t i)
{
    entry *e = &k->ring[i];
    uint32_t *at = &k->buckets[e->hash & k->mask];

    while (*at != (uint32_t)i)
        at = &k->ring[*at].next;
    *at = e->next;
    e->used = false;
    k->len--;
}

/* Forgets the newest n keys noted, newest first, so that head ends where they started. */
static void drop_newest(recent_keys *k, size_t n)
{
    for (; n > 0; n--) {
        k->head = (k->head + k->cap - 1) % k->cap;
        if (k->ring[k->head].used)
            unlink_entry(k, k->head);
    }
}

void recent_begin(recent_keys *k)
{
    drop_newest(k, k->pending);
    k->pending = 0;
}

void recent_seal(recent_keys *k)
{
    k->sealed = k->pending;
    k->pending = 0;
}

void recent_commit_sealed(recent_keys *k)
{
    k->sealed = 0;
}

void recent_forget(recent_keys *k)
{
    drop_newest(k, k->pending + k->sealed);
    k->pending = 0;
    k->sealed = 0;
}

recent_answer recent_check(recent_keys *k, const char *device_id, int64_t ts_ms)
{
    size_t len = strlen(device_id);
    uint64_t h;
    entry *e;

    if (k->cap == 0 || len >= RECENT_ID_MAX)
        return RECENT_NEW;
    h = key_hash(device_id, len, ts_ms);
    for (uint32_t i = k->buckets[h & k->mask]; i != NONE; i = k->ring[i].next) {
        e = &k->ring[i];
        if (e->hash == h && e->ts_ms == ts_ms && strcmp(e->id, device_id) == 0) {
            /* Where the entry sits tells whether the attempt noted it. */
            size_t age = (k->head + k->cap - i - 1) % k->cap;

            if (age < k->pending)
                return RECENT_IN_BATCH;
            return age < k->pending + k->sealed ? RECENT_SEALED : RECENT_COMMITTED;
        }
    }
    if (k->pending + k->sealed == k->cap)
        return RECENT_NEW; /* the attempts fill the ring: keep what they noted */
    e = &k->ring[k->head];
    if (e->used)
        unlink_entry(k, k->head);
    e->hash = h;
    e->ts_ms = ts_ms;
    memcpy(e->id, device_id, len + 1);
    e->used = true;
    e->next = k->buckets[h & k->mask];
    k->buckets[h & k->mask] = (uint32_t)k->head;
    k->head = (k->head + 1) % k->cap;
    k->len++;
    k->pending++;
    return RECENT_NEW;
}

void recent_commit(recent_keys *k)
{
    k->pending = 0;
}

size_t recent_len(const recent_keys *k)
{
    return k->len;
}
