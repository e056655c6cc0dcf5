/* reorder: per-partition order for results that finish out of order.
 *
 * Lookups finish in any order, but a partition's records must leave in the order they came
 * (per-device order holds end to end). Each partition keeps a queue of item ids in arrival
 * order; only the finished prefix may leave. Not thread-safe. */
#ifndef REORDER_H
#define REORDER_H

#include <stddef.h>
#include <stdint.h>

typedef struct reorder_buffer reorder_buffer;

reorder_buffer *reorder_new(void);
void reorder_free(reorder_buffer *q); /* accepts NULL */

/* Appends an item id to a partition's queue. Returns 0, or -1 on out of memory or a partition
 * outside 0..65535. */
int reorder_push(reorder_buffer *q, int32_t partition, uint64_t id);

/* The oldest id of a partition's queue; returns 0 and sets *id, or -1 when it is empty. */
int reorder_head(const reorder_buffer *q, int32_t partition, uint64_t *id);

/* Removes the oldest id of a partition's queue (which must not be empty). */
void reorder_pop(reorder_buffer *q, int32_t partition);

/* Number of ids queued in a partition. */
size_t reorder_len(const reorder_buffer *q, int32_t partition);

#endif
