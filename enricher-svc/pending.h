/* pending: the enricher's records between their arrival and their departure.
 *
 * Each record waits in an item of a growing pool while its lookups run; items are named by
 * ids (generation << 32 | index) so that a late answer for an item that has left, or whose
 * partition was revoked, finds nothing instead of another record. A partition's items leave in
 * arrival order (reorder.h): only the finished prefix of a partition may leave. Not
 * thread-safe. */
#ifndef PENDING_H
#define PENDING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/fp_record.h"

typedef struct pending_item {
    uint32_t gen;
    bool used;
    bool setting_up; /* the handler is still asking: answers must not finish it yet */
    bool done;
    uint8_t asked, waiting, failed; /* bits per lookup kind */
    uint64_t token;                 /* the stage's hold on the input message */
    int32_t partition;
    uint32_t next_free;
    fp_record rec;
} pending_item;

typedef struct pending pending;

pending *pending_new(void);
void pending_free(pending *p); /* accepts NULL */

/* Takes a free item (growing the pool), cleared and marked setting_up. Returns its id, or -1
 * on out of memory. */
int pending_alloc(pending *p, uint64_t *id);

/* The item of an id, or NULL when it has left (or its partition was dropped) since. */
pending_item *pending_get(pending *p, uint64_t id);

/* Gives an item back before it was queued (its record was refused). */
void pending_release(pending *p, uint64_t id);

/* Queues an item at the end of its partition's order. Returns 0, or -1 on out of memory. */
int pending_enqueue(pending *p, uint64_t id, int32_t partition);

/* Hands the finished prefix of a partition, in order, to emit (which must not touch the pool);
 * each emitted item leaves. Stops at the first unfinished item, or when emit returns < 0
 * (returned then). Returns the number emitted. */
int pending_flush(pending *p, int32_t partition, int (*emit)(pending_item *it, void *ctx),
                  void *ctx);

/* Drops every item of a partition without emitting. */
void pending_drop_partition(pending *p, int32_t partition);

/* Items in use. */
size_t pending_count(const pending *p);

#endif
