#!/usr/bin/env bash
# The walking skeleton end to end: canonical records (with duplicates and invalid payloads)
# go through devkafka → parser → enricher → sink → PostgreSQL. Checks the exact rows and the
# exact DLQ codes; restarts every service and checks nothing is re-inserted or lost; checks
# /readyz follows the database and /metrics passes promtool.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
it_init it
export PARTITIONS=8
export ENRICH_LOOKUPS=off # this test checks the path with no lookup configured

# wait_counts ROWS DLQ: until the table and the DLQ hold exactly that many (60 s).
wait_counts() {
    fp_wait_for 60 "$1 rows and $2 DLQ messages" counts_are "$1" "$2"
}

echo "starting the embedded stack in $STATE"
it_start_stack

# 1. A known set: 300 valid records of 10 devices, 30 exact resends, 12 invalid payloads.
"$BIN/fp-gen" --brokers "$BROKERS" --devices 10 --records 300 --duplicates 30 --invalid 12 \
    --seed 7 --manifest "$STATE/manifest1" >"$STATE/gen1.json"
expect_eq "generator delivered everything" "$(grep -o '"undelivered":[0-9]*' "$STATE/gen1.json")" '"undelivered":0'
if wait_counts 300 12; then pass "300 rows and 12 DLQ messages arrive"; else fail "300 rows and 12 DLQ messages arrive" "rows: $(row_count)" "dlq: $(dlq_count)"; fi

awk '$1 == "valid" {print $2, $3, $4, $5}' "$STATE/manifest1" | sort >"$STATE/expected_rows"
psql_q "SELECT device_id, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
               to_char(lat, 'FM990.0000000'), to_char(lon, 'FM990.0000000') FROM telemetry" |
    tr '|' ' ' | sort >"$STATE/actual_rows"
expect_files_eq "rows are exactly the distinct valid records" "$STATE/actual_rows" "$STATE/expected_rows"

expect_eq "every row enriched with status unavailable" \
    "$(psql_q "SELECT count(*) FROM telemetry WHERE enrichment_status = 'unavailable' AND format = 'canonical' AND received_at IS NOT NULL AND metrics ? 'ignition' AND io ? '239'")" 300

awk '$1 == "invalid" {print $2}' "$STATE/manifest1" | sort >"$STATE/expected_codes"
kcat -C -b "$BROKERS" -t telemetry.dlq -e -q -f '%h\n' 2>/dev/null |
    tr ',' '\n' | sed -n 's/^fp\.error\.code=//p' | sort >"$STATE/actual_codes"
expect_files_eq "DLQ holds exactly the invalid payloads, with their codes" "$STATE/actual_codes" "$STATE/expected_codes"
expect_eq "DLQ messages name the parser stage and the raw topic" \
    "$(kcat -C -b "$BROKERS" -t telemetry.dlq -e -q -f '%h\n' 2>/dev/null | grep -c 'fp.error.stage=parser.*fp.error.topic=telemetry.raw')" 12

# 2. Restart every service (graceful), then send the same records again and new ones.
for svc in parser enricher sink; do
    "$STACK" stop-svc "$STATE" "$svc"
    if "$STACK" start-svc "$STATE" "$svc"; then pass "$svc restarts and is ready"; else fail "$svc restarts"; fi
done
"$BIN/fp-gen" --brokers "$BROKERS" --devices 10 --records 300 --seed 7 \
    --manifest "$STATE/manifest1-resent" >/dev/null
"$BIN/fp-gen" --brokers "$BROKERS" --devices 5 --first-device 100 --records 100 --seed 8 \
    --manifest "$STATE/manifest2" >/dev/null
if wait_counts 400 12; then pass "after restarts: 400 rows, nothing re-inserted or lost"; else fail "after restarts: 400 rows" "rows: $(row_count)" "dlq: $(dlq_count)"; fi
# A graceful restart commits everything first, so the restarted services read only what was
# sent after it: the parser takes exactly the 400 new messages, the sink sees exactly the 300
# resends as duplicates.
expect_eq "restarted parser read only new messages" "$(fp_metric "$(cat "$STATE/parser.port")" fleetpipe_messages_consumed_total)" 400
expect_eq "restarted sink saw only the resends as duplicates" "$(fp_metric "$(cat "$STATE/sink.port")" fleetpipe_sink_rows_duplicate_total)" 300
# What the three runs sent, by their manifests: the table holds each distinct key once, none
# missing, nothing else.
sent_keys "$STATE/manifest1" "$STATE/manifest1-resent" "$STATE/manifest2" >"$STATE/sent_keys"
expect_keys_stored "the table holds exactly the distinct keys sent, none missing, none extra" "$STATE/sent_keys"
expect_eq "sink offsets stored per partition" "$(psql_q "SELECT count(*) > 0 FROM fleetpipe_offsets WHERE consumer_group = 'fleetpipe-sink'")" t

# 3. /readyz follows the database.
SINK_PORT=$(cat "$STATE/sink.port")
expect_eq "sink ready with the database up" "$(http_status "$SINK_PORT" /readyz)" 200
"$ROOT/deploy/local/pg.sh" pause "$STATE"
if fp_wait_for 20 "sink /readyz 503" status_is "$SINK_PORT" /readyz 503; then
    pass "sink /readyz 503 while the database is stopped"
else
    fail "sink /readyz 503 while the database is stopped"
fi
expect_eq "sink /healthz stays 200 meanwhile" "$(http_status "$SINK_PORT" /healthz)" 200
"$ROOT/deploy/local/pg.sh" resume "$STATE"
if fp_wait_for 30 "sink /readyz 200" status_is "$SINK_PORT" /readyz 200; then
    pass "sink /readyz 200 again after the database is back"
else
    fail "sink /readyz 200 again after the database is back"
fi

# 4. Every /metrics passes promtool, and the counters agree with what happened.
for svc in parser enricher sink; do
    port=$(cat "$STATE/$svc.port")
    curl -fsS "http://127.0.0.1:$port/metrics" >"$STATE/$svc.metrics"
    if out=$(promtool check metrics <"$STATE/$svc.metrics" 2>&1); then
        pass "promtool check metrics: $svc"
    else
        fail "promtool check metrics: $svc" "$out"
    fi
done
expect_eq "sink build_info exposed" "$(grep -c '^fleetpipe_build_info{service="sink-svc",version=' "$STATE/sink.metrics")" 1

# 5. Every service stops cleanly on SIGTERM, and (in SANITIZE=1 builds) without a sanitizer
#    report in its log.
for svc in parser enricher sink; do
    pid=$(cat "$STATE/$svc.pid")
    kill -TERM "$pid"
    if fp_wait_for 30 "$svc to exit" bash -c "! kill -0 $pid 2>/dev/null || grep -q zombie /proc/$pid/status 2>/dev/null"; then
        pass "$svc exits on SIGTERM"
    else
        fail "$svc exits on SIGTERM"
    fi
    rm -f "$STATE/$svc.pid"
done
reports=$(grep -lE 'ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:' "$STATE"/*.log 2>/dev/null)
expect_eq "no sanitizer report in any service log" "$reports" ""

finish integration
