#include "enricher-svc/cache.h"

#include <stdlib.h>
#include <string.h>
#include "common/fp_hash.h"

typedef struct entry {
    char *key;
    uint64_t hash;
    void *value;
    bool negative;
    int64_t expires_ms;
    size_t bytes;
    struct entry *chain;         /* next in the hash bucket */
    struct entry *newer, *older; /* LRU list */
} entry;

struct cache_lru {
    size_t max, count;
    size_t max_bytes, bytes; /* 0: no byte bound */
    size_t (*size_of)(const void *value);
    int64_t ttl_ms, negative_ttl_ms;
    void (*free_value)(void *);
    entry **buckets;
    size_t nbuckets; /* power of two, about twice max */
    entry *newest, *oldest;
};

cache_lru *cache_new(size_t max_entries, int64_t ttl_ms, int64_t negative_ttl_ms,
                     void (*free_value)(void *))
{
    cache_lru *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->max = max_entries;
    c->ttl_ms = ttl_ms;
    c->negative_ttl_ms = negative_ttl_ms;
    c->free_value = free_value;
    if (max_entries > 0) {
        c->nbuckets = 16;
        while (c->nbuckets < max_entries * 2 && c->nbuckets < (SIZE_MAX >> 2))
            c->nbuckets <<= 1;
        c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
        if (c->buckets == NULL) {
            free(c);
            return NULL;
        }
    }
    return c;
}

static void lru_unlink(cache_lru *c, entry *e)
{
    if (e->newer != NULL)
        e->newer->older = e->older;
    else
        c->newest = e->older;
    if (e->older != NULL)
        e->older->newer = e->newer;
    else
        c->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void lru_push_newest(cache_lru *c, entry *e)
{
    e->older = c->newest;
    e->newer = NULL;
    if (c->newest != NULL)
        c->newest->newer = e;
    c->newest = e;
    if (c->oldest == NULL)
        c->oldest = e;
}

/* Finds the entry and, when prev is not NULL, the link that points at it. */
static entry *find(cache_lru *c, const char *key, uint64_t h, entry ***link)
{
    entry **p = &c->buckets[h & (c->nbuckets - 1)];

    for (; *p != NULL; p = &(*p)->chain) {
        if ((*p)->hash == h && strcmp((*p)->key, key) == 0) {
            if (link != NULL)
                *link = p;
            return *p;
        }
    }
    return NULL;
}

/* Unlinks and frees an entry (its link in the bucket is given). */
static void drop(cache_lru *c, entry *e, entry **link)
{
    *link = e->chain;
    lru_unlink(c, e);
    if (e->value != NULL && c->free_value != NULL)
        c->free_value(e->value);
    c->bytes -= e->bytes;
    free(e->key);
    free(e);
    c->count--;
}

void cache_limit_bytes(cache_lru *c, size_t max_bytes, size_t (*size_of)(const void *value))
{
    c->max_bytes = max_bytes;
    c->size_of = size_of;
}

size_t cache_bytes(const cache_lru *c)
{
    return c->bytes;
}

void cache_free(cache_lru *c)
{
    if (c == NULL)
        return;
    while (c->oldest != NULL) {
        entry **link = NULL;
        entry *e = find(c, c->oldest->key, c->oldest->hash, &link);

        drop(c, e, link);
    }
    free(c->buckets);
    free(c);
}

bool cache_get(cache_lru *c, const char *key, int64_t now_ms, void **value, bool *negative)
{
    uint64_t h;
    entry **link = NULL;
    entry *e;

    if (c->max == 0)
        return false;
    h = fp_hash_str(key);
    e = find(c, key, h, &link);
    if (e == NULL)
        return false;
    if (now_ms >= e->expires_ms) {
        drop(c, e, link);
        return false;
    }
    lru_unlink(c, e);
    lru_push_newest(c, e);
    *value = e->value;
    *negative = e->negative;
    return true;
}

int cache_put(cache_lru *c, const char *key, void *value, bool negative, int64_t now_ms)
{
    size_t bytes;
    uint64_t h;
    entry **link = NULL;
    entry *e;

    if (c->max == 0) {
        if (value != NULL && c->free_value != NULL)
            c->free_value(value);
        return 0;
    }
    h = fp_hash_str(key);
    e = find(c, key, h, &link);
    if (e != NULL)
        drop(c, e, link);
    bytes = sizeof(*e) + strlen(key) + 1 +
            (value != NULL && c->size_of != NULL ? c->size_of(value) : 0);
    if (c->max_bytes != 0 && bytes > c->max_bytes) {
        /* Larger than the whole cache may be: not kept. */
        if (value != NULL && c->free_value != NULL)
            c->free_value(value);
        return 0;
    }
    while (c->count >= c->max || (c->max_bytes != 0 && c->bytes + bytes > c->max_bytes)) {
        entry *old = c->oldest;

        find(c, old->key, old->hash, &link);
        drop(c, old, link);
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL || (e->key = strdup(key)) == NULL) {
        free(e);
        if (value != NULL && c->free_value != NULL)
            c->free_value(value);
        return -1;
    }
    e->hash = h;
    e->value = value;
    e->negative = negative;
    e->expires_ms = now_ms + (negative ? c->negative_ttl_ms : c->ttl_ms);
    e->chain = c->buckets[h & (c->nbuckets - 1)];
    c->buckets[h & (c->nbuckets - 1)] = e;
    lru_push_newest(c, e);
    c->count++;
    e->bytes = bytes;
    c->bytes += bytes;
    return 0;
}

size_t cache_size(const cache_lru *c)
{
    return c->count;
}

bool cache_enabled(const cache_lru *c)
{
    return c->max > 0;
}
