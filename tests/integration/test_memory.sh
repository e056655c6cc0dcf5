#!/usr/bin/env bash
# Memory is bounded in bytes, not only in messages (edge 4). With the database away, the sink
# keeps taking records until its batch (SINK_BATCH_BYTES) and its unfinished input
# (MAX_INFLIGHT_BYTES) are full, then pauses: a stream of large records cannot grow it further,
# however many rows SINK_BATCH_MAX and MAX_INFLIGHT would still allow. 400 records of 100 kB
# (40 MB) are sent while PostgreSQL is stopped; the sink's resident memory may grow by less than
# 40 MiB (without byte bounds it holds all 400 payloads and their decoded records: about
# 80 MB), and it takes no more records than MAX_INFLIGHT_BYTES holds before pausing. Once the database is back every record is stored.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
it_init memory
export PARTITIONS=1 ENRICH_LOOKUPS=off
export SINK_BATCH_BYTES=4194304 MAX_INFLIGHT_BYTES=8388608
# librdkafka's own prefetch is bounded too (the manifests use 4 MiB).
export RDKAFKA_CONSUMER_QUEUED_MAX_MESSAGES_KBYTES=2048
N=400
it_start_stack
S=$(cat "$STATE/sink.port")
rss() { fp_metric "$S" process_resident_memory_bytes; }
ready() { status_is "$S" /readyz 200; }
fp_wait_for 30 "sink ready" ready || fail "sink ready before the test"
before=$(rss)

"$ROOT/deploy/local/pg.sh" pause "$STATE" || fail "PostgreSQL stops (pg.sh pause)"
pad=$(head -c 100000 /dev/zero | tr '\0' 'a')
for i in $(seq 1 "$N"); do
    printf 'mem%d\t{"schema":1,"device_id":"mem%d","ts":"2026-05-01T00:00:00.000Z","io":{"256":"%s"}}\n' \
        "$i" "$i" "$pad"
done | kcat -P -b "$BROKERS" -t telemetry.enriched -p 0 -K '\t' -X message.max.bytes=1000000

paused() { [ "$(fp_metric "$S" fleetpipe_consumer_paused)" = 1 ] &&
    [ "$(fp_metric "$S" fleetpipe_sink_batch_retries_total)" -gt 0 ]; }
if fp_wait_for 60 "the sink to pause on a full batch" paused; then
    pass "the sink pauses while the database is away"
else
    fail "the sink pauses while the database is away" "$(tail -n 5 "$STATE/sink.log")"
fi
inflight=$(fp_metric "$S" fleetpipe_inflight_bytes)
[ "$inflight" -le $((8388608 + 200000)) ] &&
    pass "unfinished input stays within MAX_INFLIGHT_BYTES ($inflight bytes)" ||
    fail "unfinished input stays within MAX_INFLIGHT_BYTES" "fleetpipe_inflight_bytes: $inflight"
taken=$(fp_metric "$S" fleetpipe_messages_consumed_total)
# MAX_INFLIGHT_BYTES (8 MiB) holds 83 records of 100 kB: the sink pauses before it takes more.
[ "$taken" -gt 0 ] && [ "$taken" -le 90 ] &&
    pass "the sink stopped taking records at its byte bounds ($taken of $N taken)" ||
    fail "the sink stopped taking records at its byte bounds" \
        "fleetpipe_messages_consumed_total: $taken of $N (SINK_BATCH_MAX and MAX_INFLIGHT alone allow all)"
rows=$(fp_metric "$S" fleetpipe_sink_batch_pending_rows)
[ "$rows" -gt 0 ] && [ "$rows" -lt "$N" ] &&
    pass "the batch holds part of the stream ($rows of $N rows)" ||
    fail "the batch holds part of the stream" "rows in the batch: $rows"
after=$(rss)
growth=$((after - before))
growth_max=$((40 * 1024 * 1024))
# AddressSanitizer (SANITIZE=1) keeps freed memory in quarantine: 4 times the bound then.
case "$BIN" in */san) growth_max=$((4 * growth_max)) ;; esac
[ "$growth" -lt "$growth_max" ] &&
    pass "resident memory grew by $((growth / 1024 / 1024)) MiB for 40 MB sent" ||
    fail "resident memory bounded" "grew by $growth bytes (before $before, after $after)"

"$ROOT/deploy/local/pg.sh" resume "$STATE" || fail "PostgreSQL resumes (pg.sh resume)"
stored() { rows_are "$N"; }
if fp_wait_for 120 "all $N rows" stored; then
    pass "every record is stored once the database is back"
else
    fail "every record is stored once the database is back" "rows: $(row_count)"
fi
finish memory
