#!/usr/bin/env bash
# make bench: each figure beside the baseline that bounds it, measured in the same run on the
# same machine (the machines are shared and noisy: compare ratios, never absolute figures across
# runs). Prints a table and writes build/bench/results.json.
#
#   parser in process    decode + canonical JSON encode of a fleet-sim corpus, records/s on one
#                        core (target >= 1,000,000), beside decode alone and encode alone
#   enricher in process  what enricher-svc does per record at a cache hit (decode, geofence, two
#                        LRU hits, encode), records/s on one core (target >= 500,000), and the
#                        sink's decode alone, each beside the same pass on the cJSON reference
#                        decoder
#   parser via Kafka     parser-svc draining N pre-filled raw messages, as a ratio to a plain
#                        consume->produce pass-through of the same messages (target >= 0.8)
#   sink via Kafka       sink-svc draining the enriched records into PostgreSQL, as a ratio
#                        to a plain client-side COPY of the same rows into an identical fresh
#                        table on the same server (target >= 0.9); rows per batch, batch latency;
#                        with SINK_ROLLUPS=on (the default) and off, runs alternating, as a ratio
#                        (rollups cost <= 20 % of the sink's rate: ratio >= 0.8), through Kafka and
#                        for the batches' database time alone
#   whole pipeline       fleet-sim -> Kafka -> parser -> enricher (lookup-stub) -> sink ->
#                        PostgreSQL: sustained rows/s as a ratio to the sink alone (target >=
#                        0.8), then device time -> row committed (visible) latency p50/p99 at half that rate
#                        (target p99 <= 250 ms), and each service's resident memory (<= 50 MB)
#   enricher via Kafka   enricher-svc draining the parsed records with lookup-stub at 0 ms
#                        (mostly cache hits) and at 20 ms, as a ratio; geocoder calls per record
#                        with the cache (target <= 0.10) and without it
#
#   Kafka's producer-perf  Apache Kafka's own ProducerPerformance tool against the same broker:
#                        a reference line for what the broker takes on this machine
#
# Every Kafka-bound figure runs on the embedded stack's real broker (deploy/local/kafka.sh,
# single-node KRaft, its heap in results.json).
#
# Environment: BENCH_RECORDS (records in the Kafka runs, default 100000), BENCH_REPEAT (3),
# BENCH_ONLY=sink (only the sink figures: its input is still made by one parser and one enricher
# run; prints the sink lines and writes build/bench/results-sink.json instead), BENCH_TMPDIR
# (where the broker's log and the PostgreSQL clusters go; default /dev/shm when it has 8 GiB free,
# else /tmp).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$ROOT/deploy/local/lib.sh"
BIN=${BIN:-bin}
BUILD=${BUILD:-build/rel}
case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
RECORDS=${BENCH_RECORDS:-100000}
REPEAT=${BENCH_REPEAT:-3}
ONLY=${BENCH_ONLY:-}
case "$ONLY" in "" | sink) ;; *) echo "BENCH_ONLY must be empty or sink" >&2; exit 2 ;; esac
OUT="$ROOT/build/bench"
mkdir -p "$OUT"
# The broker's log and the PostgreSQL clusters live in memory when /dev/shm has room: on the
# shared disk of the machines this runs on, writeback stalls of 1-3 s held PostgreSQL's commits
# (README "Benchmarks"). BENCH_TMPDIR=/tmp measures on disk.
STORE=$(fp_bench_tmpdir 8)
export PG_TMPDIR=$STORE
W=$(mktemp -d "$STORE/fleetpipe-bench.XXXXXX")
case "$(stat -f -c %T "$STORE")" in tmpfs | ramfs) STORE_KIND=memory ;; *) STORE_KIND=disk ;; esac
echo "== data of the broker and the databases in $STORE ($STORE_KIND)"
PIDS=()

cleanup() {
    local p
    for p in "${PIDS[@]}"; do fp_stop_pid "$p" 10 >/dev/null 2>&1 || true; done
    rm -rf "$W"
}
trap cleanup EXIT

json_field() { # json_field FILE NAME -> the number after "NAME":
    grep -o "\"$2\":[0-9.]*" "$1" | head -n 1 | cut -d: -f2
}

median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# cpu_of PORT: the service's CPU seconds so far (process_cpu_seconds_total, from /proc).
cpu_of() {
    curl -fsS "http://127.0.0.1:$1/metrics" 2>/dev/null |
        awk '$1 == "process_cpu_seconds_total" { print $2; found = 1 } END { if (!found) print 0 }'
}

# per_record SECONDS N: microseconds of CPU per record.
per_record() { awk -v c="$1" -v n="$2" 'BEGIN { if (n > 0) printf "%.2f", c * 1e6 / n; else print 0 }'; }

if [ -z "$ONLY" ]; then
    echo "== parser in process (fleet-sim corpus, $REPEAT passes, median)"
    "$BIN/fleet-sim" --output "$W/corpus.bin" --records 200000 --seed 1 >"$W/corpus.json"
    taskset -c 0 "$BUILD/bench_decode" "$W/corpus.bin" --repeat "$REPEAT" --seconds 2 >"$W/decode.json"
    cat "$W/decode.json"
    echo "== enricher and sink decode in process (cache hit, $REPEAT passes, median)"
    "$BIN/fleet-sim" --output /dev/null --records 0 --seed 1 --geofences "$W/geofences-1.json" >/dev/null
    taskset -c 0 "$BUILD/bench_enrich" "$W/corpus.bin" "$W/geofences-1.json" --repeat "$REPEAT" \
        --seconds 2 >"$W/enrich.json"
    cat "$W/enrich.json"
fi

echo "== parser through Kafka vs pass-through ($RECORDS records, $REPEAT runs each)"
KAFKA_VERSION=$("$ROOT/deploy/local/kafka.sh" version)
KAFKA_HEAP=${KAFKA_HEAP:-512m}
BIN="$BIN" PARTITIONS=16 KAFKA_HEAP=$KAFKA_HEAP "$ROOT/deploy/local/kafka.sh" start "$W/kafka" \
    telemetry.raw telemetry.parsed telemetry.enriched telemetry.dlq bench.passthrough \
    bench.enriched bench.parsed-eos bench.parsed-more bench.perf
PIDS+=("$(cat "$W/kafka/kafka.pid")")
BROKERS=$(cat "$W/kafka/bootstrap")
echo "   Apache Kafka $KAFKA_VERSION on $BROKERS (heap $KAFKA_HEAP), librdkafka $(pkg-config --modversion rdkafka)"
# No resends: every message of the feed is a distinct record, so counts are exact.
"$BIN/fleet-sim" --brokers "$BROKERS" --records "$RECORDS" --seed 2 --retransmit-rate 0 \
    >"$W/feed.json"
MESSAGES=$(json_field "$W/feed.json" frames)
echo "   pre-filled telemetry.raw with $MESSAGES messages ($RECORDS records)"

# run_parser N: one parser-svc in a fresh group drains the topic; prints messages/s measured
# from its first consumed message to its last delivered record, and its CPU microseconds per
# record.
run_parser() {
    local port pid first="" now consumed produced cpu
    port=$(fp_free_port)
    DELIVERY=${2:-at-least-once} TRANSACTIONAL_ID="bench-parser-$1-$$" OUT_TOPIC=${3:-telemetry.parsed} \
    KAFKA_BROKERS=$BROKERS KAFKA_GROUP_ID="bench-parser-$1-$$" HTTP_BIND=127.0.0.1 HTTP_PORT=$port \
        LOG_LEVEL=warn RDKAFKA_CONSUMER_SESSION_TIMEOUT_MS=6000 \
        RDKAFKA_CONSUMER_HEARTBEAT_INTERVAL_MS=500 "$BIN/parser-svc" 2>>"$W/parser.log" &
    pid=$!
    PIDS+=("$pid")
    local deadline=$(($(date +%s) + 120))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        consumed=$(fp_metric "$port" fleetpipe_messages_consumed_total)
        produced=$(fp_metric "$port" fleetpipe_records_produced_total)
        now=$(date +%s.%N)
        if [ -z "$first" ] && [ "${consumed:-0}" -gt 0 ]; then first=$now; fi
        if [ "${consumed:-0}" -ge "$MESSAGES" ] && [ "${produced:-0}" -ge "$RECORDS" ]; then break; fi
        sleep 0.02 # sampling interval of the progress counters
    done
    cpu=$(cpu_of "$port")
    rss=$(fp_metric "$port" process_resident_memory_bytes)
    fp_stop_pid "$pid" 10 >/dev/null
    awk -v n="$MESSAGES" -v a="$first" -v b="$now" -v c="$(per_record "$cpu" "$RECORDS")" \
        'BEGIN { printf "%.0f %s\n", n / (b - a), c }'
}

if [ -n "$ONLY" ]; then
    # The sink's input only: telemetry.parsed once, for the enricher run below.
    run_parser 1 at-least-once telemetry.parsed >/dev/null
fi
for i in $(seq "$REPEAT"); do
    [ -z "$ONLY" ] || break
    "$BUILD/passthrough" --brokers "$BROKERS" --in telemetry.raw --out bench.passthrough \
        --group "bench-pt-$i-$$" --count "$MESSAGES" >"$W/pt-$i.json"
    json_field "$W/pt-$i.json" messages_per_s >>"$W/pt.txt"
    # Only the first run fills telemetry.parsed: one copy of every record is what the enricher
    # runs read.
    if [ "$i" = 1 ]; then out=telemetry.parsed; else out=bench.parsed-more; fi
    run_parser "$i" at-least-once "$out" >>"$W/parser.txt"
    # Into a topic of its own: telemetry.parsed must hold what the enricher runs expect.
    run_parser "eos-$i" exactly-once bench.parsed-eos >>"$W/parser-eos.txt"
done
[ -n "$ONLY" ] || PARSER_EOS=$(cut -d' ' -f1 "$W/parser-eos.txt" | median)
# run_enricher NAME CACHE_SIZE [COUNT] [OUT_TOPIC]: one enricher-svc in a fresh group takes
# COUNT records (default: all) of telemetry.parsed; prints "records/s geocoder_calls_per_record
# cpu_us_per_record".
run_enricher() {
    local port pid first="" now consumed produced calls cpu target=${3:-$PARSED}
    local out=${4:-telemetry.enriched}
    port=$(fp_free_port)
    KAFKA_BROKERS=$BROKERS KAFKA_GROUP_ID="bench-enricher-$1-$$" HTTP_BIND=127.0.0.1 \
        HTTP_PORT=$port LOG_LEVEL=warn OUT_TOPIC=$out ENRICH_CACHE_SIZE=$2 \
        GEOCODER_URL="http://127.0.0.1:$STUB_PORT" \
        ASSETS_URL="http://127.0.0.1:$STUB_PORT/assets/{device_id}" \
        GEOFENCES_FILE="$W/geofences.json" \
        RDKAFKA_CONSUMER_SESSION_TIMEOUT_MS=6000 RDKAFKA_CONSUMER_HEARTBEAT_INTERVAL_MS=500 \
        "$BIN/enricher-svc" 2>>"$W/enricher.log" &
    pid=$!
    PIDS+=("$pid")
    local deadline=$(($(date +%s) + 300))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        consumed=$(fp_metric "$port" fleetpipe_messages_consumed_total)
        produced=$(fp_metric "$port" fleetpipe_records_produced_total)
        now=$(date +%s.%N)
        if [ -z "$first" ] && [ "${consumed:-0}" -gt 0 ]; then first=$now; fi
        if [ "${consumed:-0}" -ge "$target" ] && [ "${produced:-0}" -ge "$target" ]; then break; fi
        sleep 0.02 # sampling interval of the progress counters
    done
    [ "${consumed:-0}" -ge "$target" ] ||
        echo "   warning: enricher run $1 stopped at the deadline ($consumed of $target consumed, $produced produced)" >&2
    calls=$(fp_metric "$port" fleetpipe_enrich_remote_calls_total 'lookup="geocoder"')
    cpu=$(cpu_of "$port")
    rss=$(fp_metric "$port" process_resident_memory_bytes)
    fp_stop_pid "$pid" 10 >/dev/null
    awk -v n="$produced" -v a="$first" -v b="$now" -v c="$calls" -v u="$(per_record "$cpu" "$produced")" \
        'BEGIN { printf "%.0f %.4f %s\n", n / (b - a), c / n, u }'
}

echo "== enricher through Kafka with lookup-stub"
"$BIN/lookup-stub" --bind 127.0.0.1 --port 0 --port-file "$W/stub.port" >/dev/null 2>"$W/stub.log" &
PIDS+=($!)
fp_wait_for 30 "lookup-stub" test -s "$W/stub.port"
STUB_PORT=$(cat "$W/stub.port")
"$BIN/fleet-sim" --output /dev/null --records 0 --seed 2 --geofences "$W/geofences.json" >/dev/null
PARSED=$RECORDS
if [ -n "$ONLY" ]; then
    run_enricher hit-1 100000 "$PARSED" bench.enriched >/dev/null
fi
for i in $(seq "$REPEAT"); do
    [ -z "$ONLY" ] || break
    curl -fsS -X POST "http://127.0.0.1:$STUB_PORT/control?latency_ms=0" >/dev/null
    # The first run's output is the sink benchmark's input.
    if [ "$i" = 1 ]; then out=bench.enriched; else out=telemetry.enriched; fi
    run_enricher "hit-$i" 100000 "$PARSED" "$out" >>"$W/enrich-hit.txt"
    curl -fsS -X POST "http://127.0.0.1:$STUB_PORT/control?latency_ms=20" >/dev/null
    run_enricher "slow-$i" 100000 >>"$W/enrich-slow.txt"
done
if [ -z "$ONLY" ]; then
    curl -fsS -X POST "http://127.0.0.1:$STUB_PORT/control?latency_ms=0" >/dev/null
    # Without the cache every record calls: a sample is enough.
    run_enricher nocache 0 20000 >"$W/enrich-nocache.txt"
    EN_HIT=$(cut -d' ' -f1 "$W/enrich-hit.txt" | median)
    EN_SLOW=$(cut -d' ' -f1 "$W/enrich-slow.txt" | median)
    EN_RATIO=$(awk -v a="$EN_SLOW" -v b="$EN_HIT" 'BEGIN { printf "%.2f", a / b }')
    CALLS_CACHE=$(cut -d' ' -f2 "$W/enrich-hit.txt" | median)
    CALLS_NOCACHE=$(cut -d' ' -f2 "$W/enrich-nocache.txt")
    EN_NOCACHE=$(cut -d' ' -f1 "$W/enrich-nocache.txt")
fi

echo "== sink through Kafka vs a plain COPY, rollups on and off ($PARSED rows, $REPEAT runs each)"
"$ROOT/deploy/local/pg.sh" start "$W/pg" >/dev/null
. "$W/pg/pg.env"
PIDS+=("$PG_PID")
bench_psql() { "$ROOT/deploy/local/pg.sh" psql "$W/pg" "$@"; }
# run_sink N on|off [on|off [binary|text [on|off]]]: a fresh sink-svc with SINK_ROLLUPS=on|off (and
# SINK_STREAM_COPY, on unless given, SINK_COPY_FORMAT, binary unless given, and
# SINK_COMMIT_OVERLAP, off unless given) drains bench.enriched into empty tables; prints rows/s, then a plain \copy
# of the very same rows into a fresh identical table;
# prints "sink_rps copy_rps rows_per_batch batch_ms database_rps cpu_us_per_row
# db_cpu_us_per_row copy_db_cpu_us_per_row rss_mib" (db_cpu and copy_db_cpu: PostgreSQL's CPU for
# the sink's run and for the \copy; rss_mib: the sink's resident memory when it had drained).
run_sink() {
    local port pid first="" now inserted consumed batches rows_sum secs_sum copy_ms cpu staged rss
    local db0 db1 cp0 cp1
    bench_psql -c "DROP TABLE IF EXISTS telemetry_copy" >/dev/null 2>&1 || true
    bench_psql -c "TRUNCATE telemetry; DELETE FROM fleetpipe_offsets" >/dev/null 2>&1 || true
    # Empty, complete rollups: the "on" run must not rebuild after an "off" run.
    bench_psql -c "TRUNCATE telemetry_hourly, telemetry_rollup_devices;
        UPDATE telemetry_rollup_state SET valid = true" >/dev/null 2>&1 || true
    port=$(fp_free_port)
    db0=$(db_cpu)
    KAFKA_BROKERS=$BROKERS KAFKA_GROUP_ID="bench-sink-$1-$$" HTTP_BIND=127.0.0.1 HTTP_PORT=$port \
        LOG_LEVEL=warn IN_TOPIC=bench.enriched PG_DSN="$PG_DSN" SINK_ROLLUPS=$2 \
        SINK_STREAM_COPY="${3:-on}" SINK_COPY_FORMAT="${4:-binary}" SINK_COMMIT_OVERLAP="${5:-off}" \
        RDKAFKA_CONSUMER_SESSION_TIMEOUT_MS=6000 \
        RDKAFKA_CONSUMER_HEARTBEAT_INTERVAL_MS=500 "$BIN/sink-svc" 2>>"$W/sink.log" &
    pid=$!
    PIDS+=("$pid")
    local deadline=$(($(date +%s) + 300)) last=-1 still=0
    while [ "$(date +%s)" -lt "$deadline" ]; do
        inserted=$(fp_metric "$port" fleetpipe_sink_rows_inserted_total)
        consumed=$(fp_metric "$port" fleetpipe_messages_consumed_total)
        now=$(date +%s.%N)
        if [ -z "$first" ] && [ "${consumed:-0}" -gt 0 ]; then first=$now; fi
        [ "${inserted:-0}" -ge "$B_SINK_ROWS" ] && break
        # A run that cannot finish (a bug) must not hang the bench: stop when nothing moves for 10 s.
        if [ "$consumed" = "$last" ] && [ "$consumed" -gt 0 ]; then
            still=$((still + 1))
            if [ "$still" -ge 500 ]; then
                echo "   warning: sink run $1 stalled at $inserted of $B_SINK_ROWS rows" >&2
                break
            fi
        else
            still=0
            last=$consumed
        fi
        sleep 0.02 # sampling interval of the progress counters
    done
    batches=$(fp_metric "$port" fleetpipe_sink_batches_total)
    rows_sum=$(curl -fsS "http://127.0.0.1:$port/metrics" | awk '$1 == "fleetpipe_sink_batch_rows_sum" { print $2 }')
    secs_sum=$(curl -fsS "http://127.0.0.1:$port/metrics" | awk '$1 == "fleetpipe_sink_batch_duration_seconds_sum" { print $2 }')
    cpu=$(cpu_of "$port")
    rss=$(fp_metric "$port" process_resident_memory_bytes)
    staged=$(fp_metric "$port" fleetpipe_sink_staged_batches_total)
    [ "$staged" = 0 ] || echo "   note: sink run $1: $staged of $batches batches took the staging path" >&2
    fp_stop_pid "$pid" 10 >/dev/null
    fp_wait_for 10 "the sink's session to end" no_sessions || true
    db1=$(db_cpu)
    if [ "$2" = on ] && [ "$(bench_psql -At -c "SELECT coalesce(sum(samples), 0) FROM telemetry_hourly")" != "$B_SINK_ROWS" ]; then
        echo "   warning: sink run $1: telemetry_hourly does not count every row" >&2
    fi
    bench_psql -c "\copy (SELECT $COLUMNS FROM telemetry) TO '$W/rows.copy'" >/dev/null
    bench_psql -c "CREATE TABLE telemetry_copy (LIKE telemetry INCLUDING ALL)" >/dev/null
    cp0=$(db_cpu)
    copy_ms=$(bench_psql -c "\timing on" -c "\copy telemetry_copy ($COLUMNS) FROM '$W/rows.copy'" |
        sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -n 1)
    fp_wait_for 10 "the \\copy's session to end" no_sessions || true
    cp1=$(db_cpu)
    awk -v n="$consumed" -v r="$B_SINK_ROWS" -v a="$first" -v b="$now" -v c="$copy_ms" \
        -v bt="$batches" -v rs="$rows_sum" -v ss="$secs_sum" -v u="$(per_record "$cpu" "$consumed")" \
        -v du="$(per_record "$(awk -v a="$db0" -v b="$db1" 'BEGIN { print b - a }')" "$B_SINK_ROWS")" \
        -v cu="$(per_record "$(awk -v a="$cp0" -v b="$cp1" 'BEGIN { print b - a }')" "$B_SINK_ROWS")" \
        -v m="${rss:-0}" \
        'BEGIN { printf "%.0f %.0f %.0f %.1f %.0f %s %s %s %.0f\n", n / (b - a), r / (c / 1000), rs / bt, ss / bt * 1000, rs / ss, u, du, cu, m / 1048576 }'
}
# db_cpu: CPU seconds the PostgreSQL cluster has used so far: the postmaster with the children it
# reaped (sessions that ended) and its live processes.
db_cpu() { fp_cpu_seconds "$PG_PID"; }
# no_sessions: no client session but the asking one is connected to the bench's PostgreSQL.
no_sessions() {
    [ "$(bench_psql -At -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")" = 0 ]
}
COLUMNS="device_id,ts,received_at,format,priority,event_io,lat,lon,alt_m,heading_deg,speed_kmh,satellites,ignition,enrichment_status,site_id,site_name,address,road,city,postcode,country,country_code,asset_customer,asset_oem,asset_model,asset_serial_number,asset_machine_type,metrics,io"
# The distinct observations of bench.enriched: the rows every sink run must end with.
B_SINK_ROWS=$(grep -o '"distinct":[0-9]*' "$W/feed.json" | cut -d: -f2)
run_sink warmup on >/dev/null # applies the migrations, warms the server's caches
# Off and on alternate, so that the machine's drift during the section hits both alike.
for i in $(seq "$REPEAT"); do
    # The Kafka-bound baseline: a plain consumer reading the sink's input, nothing else.
    "$BUILD/passthrough" --brokers "$BROKERS" --in bench.enriched --out - \
        --group "bench-read-$i-$$" --count "$PARSED" >"$W/read-$i.json"
    json_field "$W/read-$i.json" messages_per_s >>"$W/read.txt"
    run_sink "off-$i" off >>"$W/sink-off.txt"
    run_sink "on-$i" on >>"$W/sink.txt"
    # Without streaming a batch's whole database time is its flush: the database-alone figure.
    run_sink "whole-$i" on off >>"$W/sink-whole.txt"
    # The text COPY format, for the binary format's gain.
    run_sink "text-$i" on on text >>"$W/sink-text.txt"
    # Reading the next batch while one commits (SINK_COMMIT_OVERLAP=on): what it gains and costs.
    run_sink "overlap-$i" on on binary on >>"$W/sink-overlap.txt"
    # Each pair as it comes: the spread between pairs shows how noisy the machine is.
    paste -d' ' <(tail -n 1 "$W/sink.txt") <(tail -n 1 "$W/sink-off.txt") |
        awk -v i="$i" '{ printf "   run %d: rollups off %d rows/s, on %d: %.2f\n", i, $10, $1, $1 / $10 }'
done
B_SINK_RPS=$(cut -d' ' -f1 "$W/sink.txt" | median)
B_READ_RPS=$(median <"$W/read.txt")
COPY_RPS=$(cut -d' ' -f2 "$W/sink.txt" | median)
B_SINK_RATIO=$(awk '{ print $1 / $2 }' "$W/sink.txt" | median)
B_BATCH=$(cut -d' ' -f3 "$W/sink.txt" | median)
B_BATCH_MS=$(cut -d' ' -f4 "$W/sink.txt" | median)
B_WRITE_RPS=$(cut -d' ' -f5 "$W/sink-whole.txt" | median)
B_WRITE_RATIO=$(awk '{ print $5 / $2 }' "$W/sink-whole.txt" | median)
B_WHOLE_RPS=$(cut -d' ' -f1 "$W/sink-whole.txt" | median)
B_WHOLE_BATCH_MS=$(cut -d' ' -f4 "$W/sink-whole.txt" | median)
# Streaming against the run right after it.
B_STREAM_RATIO=$(paste -d' ' "$W/sink.txt" "$W/sink-whole.txt" | awk '{ print $1 / $10 }' | median)
B_OFF_RPS=$(cut -d' ' -f1 "$W/sink-off.txt" | median)
B_TEXT_RPS=$(cut -d' ' -f1 "$W/sink-text.txt" | median)
B_OVERLAP_RPS=$(cut -d' ' -f1 "$W/sink-overlap.txt" | median)
B_SINK_RSS=$(cut -d' ' -f9 "$W/sink.txt" | median)
B_OVERLAP_RSS=$(cut -d' ' -f9 "$W/sink-overlap.txt" | median)
B_OVERLAP_COPY_RATIO=$(awk '{ print $1 / $2 }' "$W/sink-overlap.txt" | median)
B_OVERLAP_RATIO=$(paste -d' ' "$W/sink-overlap.txt" "$W/sink.txt" | awk '{ print $1 / $10 }' | median)
B_BINARY_RATIO=$(paste -d' ' "$W/sink.txt" "$W/sink-text.txt" | awk '{ print $1 / $10 }' | median)
B_SINK_CPU=$(cut -d' ' -f6 "$W/sink.txt" | median)
B_TEXT_CPU=$(cut -d' ' -f6 "$W/sink-text.txt" | median)
B_DB_CPU=$(cut -d' ' -f7 "$W/sink.txt" | median)
B_DB_TEXT_CPU=$(cut -d' ' -f7 "$W/sink-text.txt" | median)
B_DB_COPY_CPU=$(cut -d' ' -f8 "$W/sink.txt" | median)
B_OFF_BATCH_MS=$(cut -d' ' -f4 "$W/sink-off.txt" | median)
# Each on run against the off run just before it.
B_ROLLUP_RATIO=$(paste -d' ' "$W/sink.txt" "$W/sink-off.txt" | awk '{ print $1 / $10 }' | median)
"$ROOT/deploy/local/pg.sh" stop "$W/pg" >/dev/null

sink_lines() {
    printf '%-44s %14s %14s %8s %8s\n' "sink-svc vs plain COPY, rows/s" "$B_SINK_RPS" "$COPY_RPS" "$(printf '%.2f' "$B_SINK_RATIO")" ">=0.9"
    printf '%-44s %14s %14s %8s %8s\n' "  sink database writes alone vs COPY, rows/s" "$B_WRITE_RPS" "$COPY_RPS" "$(printf '%.2f' "$B_WRITE_RATIO")" ">=0.9"
    printf '%-44s %14s %14s %8s %8s\n' "  sink-svc COPY streamed vs sent whole, rows/s" "$B_SINK_RPS" "$B_WHOLE_RPS" "$(printf '%.2f' "$B_STREAM_RATIO")" ""
    printf '%-44s %14s %14s %8s %8s\n' "  sink-svc COPY binary vs text, rows/s" "$B_SINK_RPS" "$B_TEXT_RPS" "$(printf '%.2f' "$B_BINARY_RATIO")" ""
    printf '%-44s %14s %14s %8s %8s\n' "  sink-svc commit overlap on vs off, rows/s" "$B_OVERLAP_RPS" "$B_SINK_RPS" "$(printf '%.2f' "$B_OVERLAP_RATIO")" ""
    printf '%-44s %14s %14s %8s %8s\n' "  sink-svc RSS, commit overlap on vs off, MiB" "$B_OVERLAP_RSS" "$B_SINK_RSS" "" ""
    printf '%-44s %14s %14s %8s %8s\n' "  sink-svc CPU per row, binary vs text, us" "$B_SINK_CPU" "$B_TEXT_CPU" "" ""
    printf '%-44s %14s %14s %8s %8s\n' "  PostgreSQL CPU per row, sink vs \\copy, us" "$B_DB_CPU" "$B_DB_COPY_CPU" \
        "$(awk -v a="$B_DB_CPU" -v b="$B_DB_COPY_CPU" 'BEGIN { if (b > 0) printf "%.2f", a / b }')" ""
    printf '%-44s %14s %14s %8s %8s\n' "  PostgreSQL CPU per row, binary vs text, us" "$B_DB_CPU" "$B_DB_TEXT_CPU" "" ""
    printf '%-44s %14s %14s %8s %8s\n' "  sink-svc vs a plain consumer of its input" "$B_SINK_RPS" "$B_READ_RPS" \
        "$(awk -v a="$B_SINK_RPS" -v b="$B_READ_RPS" 'BEGIN { printf "%.2f", a / b }')" ""
    printf '%-44s %14s %14s %8s %8s\n' "sink-svc rollups on vs off, rows/s" "$B_SINK_RPS" "$B_OFF_RPS" "$(printf '%.2f' "$B_ROLLUP_RATIO")" ">=0.8"
    echo "   (sink: $B_BATCH rows per batch; a batch sent whole takes $B_WHOLE_BATCH_MS ms to write"
    echo "    and commit, median; streamed, what is left when it is due takes $B_BATCH_MS ms with"
    echo "    rollups, $B_OFF_BATCH_MS ms without. The first line includes taking the rows from the"
    echo "    broker; the second only the batches' database time, measured with"
    echo "    SINK_STREAM_COPY=off (a streamed COPY overlaps reading): COPY (straight into"
    echo "    telemetry, or through staging + INSERT ... ON CONFLICT after a conflict), rollups,"
    echo "    offsets, COMMIT; the fourth the sink beside a consumer that only reads the same"
    echo "    messages; the sink runs with its defaults (SINK_ROLLUPS=on, SINK_STREAM_COPY=on,"
    echo "    SINK_COMMIT_OVERLAP=off) unless the line says otherwise)"
}
SINK_JSON="{\"rows\": $B_SINK_ROWS, \"plain_consumer_rows_per_s\": $B_READ_RPS, \"sink_rows_per_s\": $B_SINK_RPS, \"copy_rows_per_s\": $COPY_RPS, \"ratio\": $B_SINK_RATIO, \"rows_per_batch\": $B_BATCH, \"batch_ms\": $B_BATCH_MS, \"database_rows_per_s\": $B_WRITE_RPS, \"database_ratio\": $B_WRITE_RATIO, \"rollups_off\": {\"sink_rows_per_s\": $B_OFF_RPS, \"batch_ms\": $B_OFF_BATCH_MS}, \"rollups_on_vs_off\": $B_ROLLUP_RATIO, \"copy_sent_whole\": {\"sink_rows_per_s\": $B_WHOLE_RPS, \"batch_ms\": $B_WHOLE_BATCH_MS}, \"streamed_vs_whole\": $B_STREAM_RATIO, \"copy_text\": {\"sink_rows_per_s\": $B_TEXT_RPS, \"cpu_us_per_row\": $B_TEXT_CPU}, \"cpu_us_per_row\": $B_SINK_CPU, \"binary_vs_text\": $B_BINARY_RATIO, \"commit_overlap\": {\"sink_rows_per_s\": $B_OVERLAP_RPS, \"ratio\": $B_OVERLAP_COPY_RATIO, \"rss_mib\": $B_OVERLAP_RSS}, \"rss_mib\": $B_SINK_RSS, \"overlap_on_vs_off\": $B_OVERLAP_RATIO, \"database_cpu_us_per_row\": {\"sink\": $B_DB_CPU, \"sink_text\": $B_DB_TEXT_CPU, \"copy\": $B_DB_COPY_CPU}}"
if [ -n "$ONLY" ]; then
    echo
    printf '%-44s %14s %14s %8s %8s\n' figure value baseline ratio target
    sink_lines
    cat >"$OUT/results-sink.json" <<JSON
{
  "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "machine": {"cpus": $(nproc), "model": "$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)", "kernel": "$(uname -r)"},
  "settings": {"records": $RECORDS, "repeat": $REPEAT},
  "broker": {"version": "$KAFKA_VERSION", "heap": "$KAFKA_HEAP"},
  "sink_via_kafka": $SINK_JSON
}
JSON
    echo "   written to build/bench/results-sink.json"
    exit 0
fi

echo "== Kafka's own producer-perf against the same broker"
"$ROOT/deploy/local/kafka.sh" tool producer-perf --topic bench.perf --num-records "$RECORDS" \
    --record-size 300 --throughput -1 \
    --producer-props "bootstrap.servers=$BROKERS" acks=all linger.ms=5 batch.size=262144 \
    2>"$W/perf.log" | tail -n 1 | tee "$W/perf.txt"
KPERF=$(sed -n 's/.* \([0-9.]*\) records\/sec.*/\1/p' "$W/perf.txt" | cut -d. -f1)
KPERF=${KPERF:-0}
"$ROOT/deploy/local/kafka.sh" stop "$W/kafka"

echo "== whole pipeline on the embedded stack"
PARTITIONS=16 ENRICH_LOOKUPS=stub FLEET_SEED=7 "$ROOT/deploy/local/stack.sh" start "$W/stack" >/dev/null
for f in "$W"/stack/*.pid; do PIDS+=("$(cat "$f")"); done
stack_psql() { "$ROOT/deploy/local/pg.sh" psql "$W/stack" -At -c "$1"; }
stack_rows() { stack_psql "SELECT count(*) FROM telemetry" 2>/dev/null || echo 0; }
# 1000 machines spread the keys over the partitions.
"$BIN/fleet-sim" --brokers "$(cat "$W/stack/bootstrap")" --records "$RECORDS" --seed 7 \
    --devices 1000 >"$W/pipe-feed.json" &
PIPE_GEN=$!
PIPE_DISTINCT=""
first=""
deadline=$(($(date +%s) + 600))
while [ "$(date +%s)" -lt "$deadline" ]; do
    rows=$(stack_rows)
    now=$(date +%s.%N)
    [ -z "$first" ] && [ "$rows" -gt 0 ] && first=$now
    if [ -z "$PIPE_DISTINCT" ] && ! kill -0 "$PIPE_GEN" 2>/dev/null; then
        PIPE_DISTINCT=$(grep -o '"distinct":[0-9]*' "$W/pipe-feed.json" | cut -d: -f2)
    fi
    [ -n "$PIPE_DISTINCT" ] && [ "$rows" -ge "$PIPE_DISTINCT" ] && break
    sleep 0.1 # sampling interval of the row count
done
PIPE_RPS=$(awk -v n="$rows" -v a="$first" -v b="$now" 'BEGIN { printf "%.0f", n / (b - a) }')
# CPU per record in the whole pipeline: each service's CPU seconds over the rows stored.
CPU_PIPE_P=$(per_record "$(cpu_of "$(cat "$W/stack/parser.port")")" "$rows")
CPU_PIPE_E=$(per_record "$(cpu_of "$(cat "$W/stack/enricher.port")")" "$rows")
CPU_PIPE_S=$(per_record "$(cpu_of "$(cat "$W/stack/sink.port")")" "$rows")
HALF=$((PIPE_RPS / 2))
[ "$HALF" -gt 0 ] || HALF=100
LAT_SECS=20
BROKER_PID=$(cat "$W/stack/kafka/kafka.pid")
# shellcheck disable=SC1091
STACK_PG_PID=$(. "$W/stack/pg.env" && echo "$PG_PID")
# io_stalled_s: seconds so far in which some task waited for I/O (/proc/pressure/io, 0 without PSI).
io_stalled_s() { awk '$1 == "some" { sub("total=", "", $5); printf "%.3f", $5 / 1e6; f = 1 } END { if (!f) print 0 }' /proc/pressure/io 2>/dev/null || echo 0; }
# per_second A B T0 T1 DIGITS: (B - A) / (T1 - T0), seconds of CPU or stall per second of wall time.
per_second() { awk -v a="$1" -v b="$2" -v s="$3" -v e="$4" -v d="$5" 'BEGIN { printf "%.*f", d, (b - a) / (e - s) }'; }
rows_since_at_least() { [ "$(stack_psql "SELECT count(*) FROM telemetry WHERE ts >= '$1'")" -ge "$2" ]; }
# latency_feed NAME: LAT_SECS s of the same fleet (seed 7: the machines and routes of the run
# above, so the enricher's caches are as warm as in steady state; a fleet of new machines costs
# what "enricher-svc without cache" shows) at HALF records/s stamped with the wall clock; waits
# for its rows. Sets FEED_START (when it starts), FEED_CORES and FEED_PG (the broker's and
# PostgreSQL's CPU meanwhile, cores), FEED_STEAL (the CPU the host took from this machine, cores)
# and FEED_IO (the share of the feed's time in which some task waited for I/O).
latency_feed() {
    local c0 t0 c1 t1 io0 io1 p0 p1 s0 s1
    # To the millisecond: the feed before this one ended well within the same second.
    FEED_START=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
    c0=$(fp_cpu_seconds "$BROKER_PID")
    p0=$(fp_cpu_seconds "$STACK_PG_PID")
    s0=$(fp_steal_seconds)
    io0=$(io_stalled_s)
    t0=$(date +%s.%N)
    "$BIN/fleet-sim" --brokers "$(cat "$W/stack/bootstrap")" --records $((HALF * LAT_SECS)) \
        --rate "$HALF" --clock wall --seed 7 --devices 1000 >"$W/lat-$1.json"
    c1=$(fp_cpu_seconds "$BROKER_PID")
    p1=$(fp_cpu_seconds "$STACK_PG_PID")
    s1=$(fp_steal_seconds)
    io1=$(io_stalled_s)
    t1=$(date +%s.%N)
    FEED_CORES=$(per_second "$c0" "$c1" "$t0" "$t1" 2)
    FEED_PG=$(per_second "$p0" "$p1" "$t0" "$t1" 2)
    FEED_STEAL=$(per_second "$s0" "$s1" "$t0" "$t1" 2)
    FEED_IO=$(per_second "$io0" "$io1" "$t0" "$t1" 3)
    fp_wait_for 120 "the $1 latency feed's rows" rows_since_at_least "$FEED_START" \
        "$(grep -o '"distinct":[0-9]*' "$W/lat-$1.json" | cut -d: -f2)" || true
}
# latency_of FROM [TO]: p50 and p99 (ms), device time to commit, of the rows with FROM <= ts < TO.
latency_of() {
    stack_psql "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1),
        round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1)
        FROM (SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin) - ts) * 1000 AS ms
              FROM telemetry WHERE ts >= '$1' AND ts < '${2:-infinity}') l" | tr '|' ' '
}
# The first feed meets a broker whose JVM is still young (JIT compilation: it took 1.2-1.6 of
# the two cores in its first ~20 s of feeding, 0.6-1.0 later); the second is the steady state.
latency_feed cold
COLD_START=$FEED_START
BROKER_CORES_1=$FEED_CORES
PG_CORES_1=$FEED_PG
STEAL_1=$FEED_STEAL
IO_1=$FEED_IO
latency_feed warm
BROKER_CORES_2=$FEED_CORES
PG_CORES_2=$FEED_PG
STEAL_2=$FEED_STEAL
IO_2=$FEED_IO
read -r LAT2_P50 LAT2_P99 < <(latency_of "$COLD_START" "$FEED_START")
read -r LAT_P50 LAT_P99 < <(latency_of "$FEED_START")
RSS_P=$(fp_metric "$(cat "$W/stack/parser.port")" process_resident_memory_bytes)
RSS_E=$(fp_metric "$(cat "$W/stack/enricher.port")" process_resident_memory_bytes)
RSS_S=$(fp_metric "$(cat "$W/stack/sink.port")" process_resident_memory_bytes)
"$ROOT/deploy/local/stack.sh" stop "$W/stack" >/dev/null 2>&1

echo "== whole pipeline, two replicas of each service"
PARTITIONS=16 ENRICH_LOOKUPS=stub FLEET_SEED=9 "$ROOT/deploy/local/stack.sh" start "$W/stack2" >/dev/null
for svc in parser enricher sink; do "$ROOT/deploy/local/stack.sh" start-svc "$W/stack2" "$svc" 2 >/dev/null; done
for f in "$W"/stack2/*.pid; do PIDS+=("$(cat "$f")"); done
stack2_psql() { "$ROOT/deploy/local/pg.sh" psql "$W/stack2" -At -c "$1"; }
# Both replicas of each service must hold partitions before the feed starts.
two_assigned() {
    local svc n
    for svc in parser enricher sink; do
        for n in "" -2; do
            grep -q '"msg":"assigned [1-9]' "$W/stack2/$svc$n.log" || return 1
        done
    done
}
fp_wait_for 60 "both replicas assigned" two_assigned || echo "   warning: not every replica holds partitions" >&2
"$BIN/fleet-sim" --brokers "$(cat "$W/stack2/bootstrap")" --records "$RECORDS" --seed 9 \
    --devices 1000 --manifest "$W/rep-manifest" >"$W/rep-feed.json" &
REP_GEN=$!
REP_DISTINCT=""
first=""
deadline=$(($(date +%s) + 600))
while [ "$(date +%s)" -lt "$deadline" ]; do
    rows=$(stack2_psql "SELECT count(*) FROM telemetry" 2>/dev/null || echo 0)
    now=$(date +%s.%N)
    [ -z "$first" ] && [ "$rows" -gt 0 ] && first=$now
    if [ -z "$REP_DISTINCT" ] && ! kill -0 "$REP_GEN" 2>/dev/null; then
        REP_DISTINCT=$(grep -o '"distinct":[0-9]*' "$W/rep-feed.json" | cut -d: -f2)
    fi
    [ -n "$REP_DISTINCT" ] && [ "$rows" -ge "$REP_DISTINCT" ] && break
    sleep 0.1 # sampling interval of the row count
done
REP_RPS=$(awk -v n="$rows" -v a="$first" -v b="$now" 'BEGIN { printf "%.0f", n / (b - a) }')
# Exact rows: the stored keys against fleet-sim's distinct observations, both ways.
awk '$1 == "valid" {print $2 " " $3}' "$W/rep-manifest" | sort -u >"$W/rep-sent"
stack2_psql "SELECT device_id || ' ' || to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM telemetry" |
    sort >"$W/rep-stored"
REP_MISSING=$(comm -23 "$W/rep-sent" "$W/rep-stored" | wc -l)
REP_EXTRA=$(comm -13 "$W/rep-sent" "$W/rep-stored" | wc -l)
REP_ROWS=$(wc -l <"$W/rep-stored")
REP_SENT=$(wc -l <"$W/rep-sent")
"$ROOT/deploy/local/stack.sh" stop "$W/stack2" >/dev/null 2>&1

PT=$(median <"$W/pt.txt")
PARSER=$(cut -d' ' -f1 "$W/parser.txt" | median)
CPU_PARSER=$(cut -d' ' -f2 "$W/parser.txt" | median)
CPU_ENRICHER=$(cut -d' ' -f3 "$W/enrich-hit.txt" | median)
CPU_SINK=$(cut -d' ' -f6 "$W/sink.txt" | median)
RATIO=$(awk -v a="$PARSER" -v b="$PT" 'BEGIN { printf "%.2f", a / b }')
REC_PER_MSG=$(awk -v r="$RECORDS" -v m="$MESSAGES" 'BEGIN { printf "%.2f", r / m }')

FULL=$(json_field "$W/decode.json" decode_encode_records_per_s)
DEC=$(json_field "$W/decode.json" decode_only_records_per_s)
ENC=$(json_field "$W/decode.json" encode_only_records_per_s)

echo
printf '%-44s %14s %14s %8s %8s\n' figure value baseline ratio target
printf '%-44s %14s %14s %8s %8s\n' "parser decode+encode, records/s (1 core)" "$FULL" "-" "-" ">=2e6"
printf '%-44s %14s %14s %8s %8s\n' "  decode only, records/s" "$DEC" "-" "-" ""
printf '%-44s %14s %14s %8s %8s\n' "  encode only, records/s" "$ENC" "-" "-" ""
if [ -s "$W/enrich.json" ]; then
    EIP=$(json_field "$W/enrich.json" enrich_records_per_s)
    EIP_CJ=$(json_field "$W/enrich.json" enrich_cjson_records_per_s)
    SDEC=$(json_field "$W/enrich.json" sink_decode_records_per_s)
    SDEC_CJ=$(json_field "$W/enrich.json" sink_decode_cjson_records_per_s)
    printf '%-44s %14s %14s %8s %8s\n' "enricher at cache hit, records/s (1 core)" "$EIP" "$EIP_CJ" \
        "$(awk -v a="$EIP" -v b="$EIP_CJ" 'BEGIN { printf "%.2f", a / b }')" ">=5e5"
    printf '%-44s %14s %14s %8s %8s\n' "  sink decode alone, records/s" "$SDEC" "$SDEC_CJ" \
        "$(awk -v a="$SDEC" -v b="$SDEC_CJ" 'BEGIN { printf "%.2f", a / b }')" ""
    echo "   (baseline = the same pass on the cJSON reference decoder)"
fi
printf '%-44s %14s %14s %8s %8s\n' "parser-svc via Kafka, messages/s" "$PARSER" "$PT" "$RATIO" ">=0.8"
echo "   (pass-through = plain consume->produce of the same messages; $REC_PER_MSG records per message)"
printf '%-44s %14s %14s %8s %8s\n' "parser-svc exactly-once vs at-least-once" "$PARSER_EOS" "$PARSER" \
    "$(awk -v a="$PARSER_EOS" -v b="$PARSER" 'BEGIN { printf "%.2f", a / b }')" ""
sink_lines
printf '%-44s %14s %14s %8s %8s\n' "whole pipeline vs sink alone, rows/s" "$PIPE_RPS" "$B_SINK_RPS" \
    "$(awk -v a="$PIPE_RPS" -v b="$B_SINK_RPS" 'BEGIN { printf "%.2f", a / b }')" ">=0.8"
printf '%-44s %14s %14s %8s %8s\n' "whole pipeline, 2 replicas vs 1, rows/s" "$REP_RPS" "$PIPE_RPS" \
    "$(awk -v a="$REP_RPS" -v b="$PIPE_RPS" 'BEGIN { printf "%.2f", a / b }')" ""
echo "   (2 replicas: $REP_ROWS rows stored of $REP_SENT distinct sent, $REP_MISSING missing, $REP_EXTRA extra)"
printf '%-44s %14s %14s %8s %8s\n' "device time -> row committed, p50 / p99 ms" "$LAT_P50" "$LAT_P99" "-" "p99<=250"
printf '%-44s %14s %14s %8s %8s\n' "  the feed before it (broker's JVM young)" "$LAT2_P50" "$LAT2_P99" "-" ""
echo "   (two $LAT_SECS s feeds at $HALF records/s, half the sustained rate, one after the other;"
echo "    the broker's CPU, cores: $BROKER_CORES_1 during the first, $BROKER_CORES_2 during the second;"
echo "    PostgreSQL's: $PG_CORES_1 and $PG_CORES_2; taken by the host (steal): $STEAL_1 and $STEAL_2;"
echo "    share of the time some task waited for I/O: $IO_1 and $IO_2; data in $STORE_KIND)"
printf '%-44s %14s %14s %14s %8s\n' "resident memory MiB: parser / enricher / sink" "$((RSS_P / 1048576))" "$((RSS_E / 1048576))" "$((RSS_S / 1048576))" "<=50"
printf '%-44s %14s %14s %14s %8s\n' "CPU us/record alone: parser / enricher / sink" "$CPU_PARSER" "$CPU_ENRICHER" "$CPU_SINK" ""
printf '%-44s %14s %14s %14s %8s\n' "CPU us/record in the pipeline: p / e / s" "$CPU_PIPE_P" "$CPU_PIPE_E" "$CPU_PIPE_S" ""
printf '%-44s %14s %14s %8s %8s\n' "enricher-svc, stub 20 ms vs 0 ms, records/s" "$EN_SLOW" "$EN_HIT" "$EN_RATIO" ""
printf '%-44s %14s %14s %8s %8s\n' "geocoder calls per record, cache on / off" "$CALLS_CACHE" "$CALLS_NOCACHE" "-" "<=0.10"
printf '%-44s %14s %14s %8s %8s\n' "enricher-svc without cache, records/s" "$EN_NOCACHE" "$EN_HIT" \
    "$(awk -v a="$EN_NOCACHE" -v b="$EN_HIT" 'BEGIN { printf "%.2f", a / b }')" ""
printf '%-44s %14s %14s %8s %8s\n' "pass-through vs Kafka's producer-perf, msg/s" "$PT" "$KPERF" \
    "$(awk -v a="$PT" -v b="$KPERF" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')" ""
echo "   (Apache Kafka $KAFKA_VERSION, single-node KRaft, heap $KAFKA_HEAP; producer-perf: 300-byte records, acks=all)"

cat >"$OUT/results.json" <<JSON
{
  "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "machine": {"cpus": $(nproc), "model": "$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)", "kernel": "$(uname -r)"},
  "versions": {"fleetpipe": "$("$BIN/parser-svc" --version | cut -d' ' -f2)", "librdkafka": "$(pkg-config --modversion rdkafka)", "kafka": "$KAFKA_VERSION"},
  "broker": {"kind": "Apache Kafka, single-node KRaft (deploy/local/kafka.sh)", "version": "$KAFKA_VERSION", "heap": "$KAFKA_HEAP"},
  "kafka_producer_perf": {"records_per_s": $KPERF, "record_bytes": 300, "acks": "all"},
  "settings": {"records": $RECORDS, "messages": $MESSAGES, "repeat": $REPEAT, "partitions": 16, "data_dir": "$STORE", "data_in": "$STORE_KIND"},
  "parser_in_process": $(cat "$W/decode.json"),
  "enricher_in_process": $(cat "$W/enrich.json"),
  "parser_via_kafka": {"parser_messages_per_s": $PARSER, "passthrough_messages_per_s": $PT, "ratio": $RATIO, "records_per_message": $REC_PER_MSG, "exactly_once_messages_per_s": $PARSER_EOS},
  "sink_via_kafka": $SINK_JSON,
  "cpu_us_per_record": {"alone": {"parser": $CPU_PARSER, "enricher": $CPU_ENRICHER, "sink": $CPU_SINK}, "pipeline": {"parser": $CPU_PIPE_P, "enricher": $CPU_PIPE_E, "sink": $CPU_PIPE_S}},
  "two_replicas": {"rows_per_s": $REP_RPS, "one_replica_rows_per_s": $PIPE_RPS, "rows_stored": $REP_ROWS, "distinct_sent": $REP_SENT, "missing": $REP_MISSING, "extra": $REP_EXTRA},
  "pipeline": {"rows_per_s": $PIPE_RPS, "sink_alone_rows_per_s": $B_SINK_RPS, "latency_rate": $HALF, "latency_p50_ms": $LAT_P50, "latency_p99_ms": $LAT_P99, "latency_seconds": $LAT_SECS, "latency_first_feed": {"p50_ms": $LAT2_P50, "p99_ms": $LAT2_P99}, "broker_cores": {"first_feed": $BROKER_CORES_1, "measured_feed": $BROKER_CORES_2}, "postgres_cores": {"first_feed": $PG_CORES_1, "measured_feed": $PG_CORES_2}, "steal_cores": {"first_feed": $STEAL_1, "measured_feed": $STEAL_2}, "io_stalled_share": {"first_feed": $IO_1, "measured_feed": $IO_2}, "rss_bytes": {"parser": $RSS_P, "enricher": $RSS_E, "sink": $RSS_S}},
  "enricher_via_kafka": {"records_per_s_stub_0ms": $EN_HIT, "records_per_s_stub_20ms": $EN_SLOW, "ratio": $EN_RATIO, "records_per_s_no_cache": $EN_NOCACHE, "geocoder_calls_per_record": $CALLS_CACHE, "geocoder_calls_per_record_no_cache": $CALLS_NOCACHE}
}
JSON
echo "   written to build/bench/results.json"
