/* fp_offsets: which input offsets may be committed.
 *
 * A consumed message is "held" until every effect it causes downstream is durable (each
 * output's delivery report, or a database COMMIT). Effects finish out of order, but a
 * partition's committable offset only moves over a contiguous prefix of finished messages:
 * committing past an unfinished message would lose it on a crash.
 *
 * Each tracked message gets a token: (partition << 40) | sequence. A partition's messages live
 * in a ring that grows as needed; the total number held is what backpressure watches.
 * Not thread-safe: used from the main loop only (delivery reports are served there). */
#ifndef FP_OFFSETS_H
#define FP_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

typedef struct fp_offsets fp_offsets;

#define FP_OFFSETS_MAX_PARTITION 65535

fp_offsets *fp_offsets_new(void);
void fp_offsets_free(fp_offsets *t); /* accepts NULL */

/* Starts tracking a consumed message of `bytes` bytes with one hold (released by the caller
 * once it has created every effect). Offsets within a partition must be given in increasing
 * order. Returns 0 and the token, or -1 when the partition is out of range or memory ran out. */
int fp_offsets_track(fp_offsets *t, int32_t partition, int64_t offset, size_t bytes,
                     uint64_t *token);

/* Adds one hold (one more effect to wait for). */
void fp_offsets_hold(fp_offsets *t, uint64_t token);

/* Removes one hold; when the message has no holds left it is finished. Tokens of partitions
 * that were forgotten since are ignored. */
void fp_offsets_release(fp_offsets *t, uint64_t token);

/* Number of messages tracked and not yet finished-and-passed, over all partitions. */
size_t fp_offsets_inflight(const fp_offsets *t);

/* Bytes of those messages (as given to fp_offsets_track): backpressure's memory bound. */
size_t fp_offsets_inflight_bytes(const fp_offsets *t);

/* The partition and offset of a tracked message. Returns 0, or -1 when the token is stale. */
int fp_offsets_source(fp_offsets *t, uint64_t token, int32_t *partition, int64_t *offset);

/* For each partition whose committable offset (last contiguous finished offset + 1) moved since
 * the last call, calls fn(partition, offset, arg). */
void fp_offsets_collect(fp_offsets *t, void (*fn)(int32_t partition, int64_t offset, void *arg),
                        void *arg);

/* For each partition with a message tracked since it was last forgotten, calls fn(partition,
 * the offset after the last message tracked, arg): how far its input has been read, finished
 * or not. */
void fp_offsets_each_read(const fp_offsets *t,
                          void (*fn)(int32_t partition, int64_t offset, void *arg), void *arg);

/* Forgets everything about a partition (after it was revoked). */
void fp_offsets_forget(fp_offsets *t, int32_t partition);

#endif
