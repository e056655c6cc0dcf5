/* cache: an LRU cache with time-to-live for lookup answers, bounded in entries and in bytes.
 *
 * Keys are strings (a geocoder grid cell, a device id); values are owned by the cache and freed
 * with the function given at creation when evicted, expired or replaced. A "negative" entry
 * remembers that the service answered "not found", with its own (shorter) time-to-live.
 * Not thread-safe: used from the enricher's main loop only. */
#ifndef CACHE_H
#define CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cache_lru cache_lru;

/* Creates a cache of at most max_entries (0 disables it: every get misses, puts are dropped).
 * Returns NULL on out of memory. */
cache_lru *cache_new(size_t max_entries, int64_t ttl_ms, int64_t negative_ttl_ms,
                     void (*free_value)(void *));

/* Frees the cache and every value; accepts NULL. */
void cache_free(cache_lru *c);

/* Looks key up at time now_ms. Returns true on a fresh hit, with *value (NULL for a negative
 * entry) and *negative set; the entry becomes the most recently used. An expired entry is
 * dropped and misses. */
bool cache_get(cache_lru *c, const char *key, int64_t now_ms, void **value, bool *negative);

/* Stores value under key (replacing any entry), evicting the least recently used entry when
 * full. The cache owns value from now on, also when it fails (value is then freed). Returns 0,
 * or -1 on out of memory. */
int cache_put(cache_lru *c, const char *key, void *value, bool negative, int64_t now_ms);

/* Bounds the cache in bytes too: entries (with their keys and size_of(value)) are evicted,
 * oldest first, to stay within max_bytes; a value larger than the bound alone is not kept.
 * 0 removes the bound. */
void cache_limit_bytes(cache_lru *c, size_t max_bytes, size_t (*size_of)(const void *value));

size_t cache_size(const cache_lru *c);
size_t cache_bytes(const cache_lru *c);
bool cache_enabled(const cache_lru *c);

#endif
