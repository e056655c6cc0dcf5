/* recent: the keys (device_id, ts) this sink committed lately, so that a batch can be COPYed
 * straight into telemetry.
 *
 * ON CONFLICT DO NOTHING needs a second pass (COPY into a staging table, then INSERT … SELECT);
 * a plain COPY into telemetry is one pass but fails as a whole on the first stored key. Device
 * retransmissions arrive within seconds, so a bounded memory of the keys written lately lets the
 * sink leave out the rows it knows are stored (and the repeats inside a batch) and COPY the rest
 * directly; a key it does not know (written by another replica, or before this process started)
 * makes the COPY fail and the batch takes the staging path, so correctness never depends on this
 * memory, only speed does.
 *
 * A batch is an attempt: recent_begin starts one, recent_check answers for each key and notes
 * the new ones, recent_commit keeps them after the database committed; the next recent_begin
 * without a commit forgets the attempt's keys. While one batch commits, the next is gathered:
 * recent_seal sets the committing attempt's keys aside (known to the next attempt, which must
 * not write them again), and its outcome either keeps them (recent_commit_sealed) or forgets
 * them with the attempt gathered since (recent_forget). The oldest keys go first when the set is
 * full.
 * Device ids longer than RECENT_ID_MAX - 1 bytes are never remembered (their rows always
 * reach the database). Not thread-safe. */
#ifndef RECENT_H
#define RECENT_H

#include <stddef.h>
#include <stdint.h>

#define RECENT_ID_MAX 32

typedef enum recent_answer {
    RECENT_NEW = 0,       /* not known: noted as part of the attempt */
    RECENT_COMMITTED = 1, /* committed by an earlier batch of this process */
    RECENT_IN_BATCH = 2,  /* an earlier row of this attempt has the same key */
    RECENT_SEALED = 3     /* the sealed attempt, which is being committed, has it */
} recent_answer;

typedef struct recent_keys recent_keys;

/* A set of at most `capacity` keys (0: remembers nothing, every key is new). Returns NULL on
 * out of memory. */
recent_keys *recent_new(size_t capacity);
void recent_free(recent_keys *k); /* accepts NULL */

/* Starts an attempt, forgetting the keys of an attempt that was never committed. */
void recent_begin(recent_keys *k);

/* What the set knows of (device_id, ts_ms); a new key is noted in the attempt. */
recent_answer recent_check(recent_keys *k, const char *device_id, int64_t ts_ms);

/* The attempt's keys are committed: they stay until the set needs their room. */
void recent_commit(recent_keys *k);

/* The attempt's keys are being committed: they are set aside as the sealed attempt and a new
 * attempt starts. At most one attempt is sealed at a time. */
void recent_seal(recent_keys *k);

/* The sealed attempt was committed: its keys stay until the set needs their room. */
void recent_commit_sealed(recent_keys *k);

/* The sealed attempt was not committed (or was written otherwise): forgets its keys and the
 * current attempt's, which were checked against them. */
void recent_forget(recent_keys *k);

/* Keys held (committed and in the current attempt). */
size_t recent_len(const recent_keys *k);

#endif
