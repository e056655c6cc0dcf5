#!/usr/bin/env bash
# Where a record's latency goes, stage by stage, on the embedded stack (not part of the suite).
#
#   tests/bench/latency.sh [RATE] [SECONDS]     (default 10000 records/s for 20 s)
#
# Starts the stack (16 partitions, the lookup stub), warms it with 100,000 records of the same
# fleet as make bench's latency run (1000 machines, seed 7) and, as make bench does, with a first
# feed of RATE records/s for WARM_SECONDS (default 20; 0 skips it: the broker's JIT compiler is then
# still busy), then feeds RATE records/s stamped with the wall clock for SECONDS, and prints for the
# rows of that feed the p50 and p99 of each segment:
#   produce      device time (ts) -> telemetry.raw (received_at, the raw message's timestamp)
#   upstream     telemetry.raw -> telemetry.enriched (the enriched message's timestamp: parser,
#                enricher, their producers and consumers)
#   sink_insert  telemetry.enriched -> the row inserted (stored_at, clock_timestamp() in COPY)
#   commit       inserted -> committed (pg_xact_commit_timestamp)
#   total        device time -> committed (make bench's figure)
# then the p99 of total, upstream and sink_insert and the batches committed for each second of the
# feed, and the sink's batch write times (due -> COMMIT). Everything it starts it stops on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=deploy/local/lib.sh
. "$ROOT/deploy/local/lib.sh"
RATE=${1:-10000}
SECONDS_FED=${2:-20}
BIN=${BIN:-$ROOT/bin}
export BIN PARTITIONS=16 ENRICH_LOOKUPS=stub FLEET_SEED=7
# In memory when /dev/shm has room, as in make bench (BENCH_TMPDIR=/tmp: on disk).
PG_TMPDIR=$(fp_bench_tmpdir 4)
export PG_TMPDIR
S=$(mktemp -d "$PG_TMPDIR/fleetpipe-latency.XXXXXX")
trap '"$ROOT/deploy/local/stack.sh" stop "$S" >/dev/null 2>&1; rm -rf "$S"' EXIT

"$ROOT/deploy/local/stack.sh" start "$S" >/dev/null
B=$(cat "$S/bootstrap")
q() { "$ROOT/deploy/local/pg.sh" psql "$S" -At -F ' ' -c "$1"; }
# feed NAME SINCE RECORDS [OPTION...]: RECORDS records of the fleet (seed 7, 1000 machines) with
# fleet-sim's OPTIONs, then waits until each distinct one is a row with ts >= SINCE.
feed() { fp_feed_fleet "$S" "$1" "$2" "$3" 120 "${@:4}"; }

feed warm-up 1970-01-01 100000
WARM_SECONDS=${WARM_SECONDS:-20}
if [ "$WARM_SECONDS" -gt 0 ]; then
    feed first-feed "$(date -u +%Y-%m-%dT%H:%M:%SZ)" $((RATE * WARM_SECONDS)) --rate "$RATE" \
        --clock wall
fi
START=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ) # later than every row of the first feed
# The CPU each process of the stack uses during the feed, in cores.
# shellcheck disable=SC1091
PG_PID=$(. "$S/pg.env" && echo "$PG_PID")
PROCS="broker:$(cat "$S/kafka/kafka.pid") postgres:$PG_PID parser:$(cat "$S/parser.pid")"
PROCS="$PROCS enricher:$(cat "$S/enricher.pid") sink:$(cat "$S/sink.pid")"
cpu_all() { for p in $PROCS; do fp_cpu_seconds "${p#*:}"; echo; done; }
CPU0=$(cpu_all)
ST0=$(fp_steal_seconds)
T0=$(date +%s.%N)
feed fed "$START" $((RATE * SECONDS_FED)) --rate "$RATE" --clock wall
CPU1=$(cpu_all)
ST1=$(fp_steal_seconds)
T1=$(date +%s.%N)

# Each enriched message's timestamp, by its record's key (the first copy of a resent record).
kcat -C -b "$B" -t telemetry.enriched -o beginning -e -q -f '%T\t%s\n' 2>/dev/null |
    awk -F'\t' '{ match($2, /"device_id":"[^"]*"/); d = substr($2, RSTART + 13, RLENGTH - 14)
                  match($2, /"ts":"[^"]*"/); t = substr($2, RSTART + 6, RLENGTH - 7)
                  print d "\t" t "\t" $1 }' >"$S/enriched.tsv"
"$ROOT/deploy/local/pg.sh" psql "$S" -q -c "CREATE TABLE latency_enriched (device_id text, ts timestamptz, kafka_ms bigint)" \
    -c "\\copy latency_enriched FROM '$S/enriched.tsv'"
q "CREATE TABLE latency AS
   SELECT date_trunc('second', t.ts) AS second, t.xmin::text AS txn,
          extract(epoch FROM t.received_at - t.ts) * 1000 AS produce,
          extract(epoch FROM to_timestamp(e.kafka_ms / 1000.0) - t.received_at) * 1000 AS upstream,
          extract(epoch FROM t.stored_at - to_timestamp(e.kafka_ms / 1000.0)) * 1000 AS sink_insert,
          extract(epoch FROM pg_xact_commit_timestamp(t.xmin) - t.stored_at) * 1000 AS commit,
          extract(epoch FROM pg_xact_commit_timestamp(t.xmin) - t.ts) * 1000 AS total
   FROM telemetry t
   JOIN (SELECT device_id, ts, min(kafka_ms) AS kafka_ms FROM latency_enriched GROUP BY 1, 2) e
     USING (device_id, ts)
   WHERE t.ts >= '$START'" >/dev/null
pct() { echo "round(percentile_cont($1) WITHIN GROUP (ORDER BY $2)::numeric, 1)"; }
echo "$RATE records/s for $SECONDS_FED s, $(q "SELECT count(*) FROM latency") rows; ms:"
echo "     produce upstream sink_insert commit total"
for p in 0.5 0.99; do
    q "SELECT '$p', $(pct "$p" produce), $(pct "$p" upstream), $(pct "$p" sink_insert), $(pct "$p" commit), $(pct "$p" total) FROM latency"
done
echo "by second: rows, p99 total, p99 upstream, p99 sink_insert, batches"
q "SELECT to_char(second, 'HH24:MI:SS'), count(*), $(pct 0.99 total), $(pct 0.99 upstream),
          $(pct 0.99 sink_insert), count(DISTINCT txn) FROM latency GROUP BY 1 ORDER BY 1"
curl -fsS "http://127.0.0.1:$(cat "$S/sink.port")/metrics" |
    awk '$1 ~ /^fleetpipe_sink_batch_(duration_seconds|rows)_(sum|count)$/ { v[$1] = $2 }
         END { n = v["fleetpipe_sink_batch_rows_count"]
               printf "sink: %d batches (the warm-up too), %.0f rows and %.1f ms from due to COMMIT on average\n",
                   n, v["fleetpipe_sink_batch_rows_sum"] / n,
                   v["fleetpipe_sink_batch_duration_seconds_sum"] / n * 1000 }'
echo "cores used during the feed (until its last row committed):"
paste <(echo "$PROCS" | tr ' ' '\n' | cut -d: -f1) <(echo "$CPU0") <(echo "$CPU1") |
    awk -v t="$(awk -v a="$T0" -v b="$T1" 'BEGIN { print b - a }')" \
        -v st="$(awk -v a="$ST0" -v b="$ST1" 'BEGIN { print b - a }')" \
        '{ printf "  %-9s %.2f\n", $1, ($3 - $2) / t; s += $3 - $2 }
         END { printf "  %-9s %.2f of %d\n  %-9s %.2f (taken by the host: steal time)\n", "together", s / t, '"$(nproc)"', "steal", st / t }'
for svc in parser enricher sink; do
    echo "$svc: fetcher wake-ups $(fp_metric "$(cat "$S/$svc.port")" fleetpipe_consumer_fetch_wakeups_total)"
done
