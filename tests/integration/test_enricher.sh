#!/usr/bin/env bash
# enricher-svc against the lookup stub: records are enriched (site from fleet-sim's geofences,
# address from the geocoder, asset from the registry) and leave in partition order under random
# lookup latency; the cache and single-flight keep remote calls rare; a slow service is bounded
# by the in-flight window; garbage answers and a dead service never lose a record nor send one
# to the DLQ.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
it_init enricher
export PARTITIONS=8 ENRICH_LOOKUPS=stub
export FLEET_SEED=${FLEET_SEED:-$((RANDOM % 1000 + 1))}
export ENRICH_MAX_INFLIGHT=8 ENRICH_TIMEOUT_MS=1000 ENRICH_RETRIES=1 ENRICH_CB_OPEN_MS=2000
IT_REPLAY="replay with FLEET_SEED=$FLEET_SEED"
echo "fleet-sim seed $FLEET_SEED ($IT_REPLAY)"

stub() { curl -fsS -X "$1" "http://127.0.0.1:$(cat "$STATE/stub.port")$2"; }
stat_of() { stub GET /stats | grep -o "\"$1\":[0-9]*" | cut -d: -f2; }

# feed SEED RECORDS: fleet-sim without resends or damage; prints the distinct count.
feed() {
    "$BIN/fleet-sim" --brokers "$BROKERS" --devices 30 --records "$2" --seed "$1" \
        --retransmit-rate 0 --corrupt-rate 0 >"$STATE/sim-$1.json" || return 1
    grep -o '"distinct":[0-9]*' "$STATE/sim-$1.json" | cut -d: -f2
}

it_start_stack
E=$(cat "$STATE/enricher.port")

# 1. Random lookup latency (5..30 ms): everything enriched, order kept.
stub POST "/control?latency_ms=5&jitter_ms=25" >/dev/null
N1=$(feed "$FLEET_SEED" 3000)
if fp_wait_for 90 "$N1 rows" rows_are "$N1"; then pass "$N1 records stored"; else fail "$N1 records stored" "rows: $(row_count)"; fi
expect_eq "every record enriched ok" "$(psql_q "SELECT count(*) FROM telemetry WHERE enrichment_status = 'ok'")" "$N1"
expect_eq "every positioned record has an address" \
    "$(psql_q "SELECT count(*) FROM telemetry WHERE lat IS NOT NULL AND (address IS NULL OR country_code IS NULL)")" 0
expect_eq "parked machines are at a known site" \
    "$(psql_q "SELECT count(*) > 0 FROM telemetry WHERE site_id LIKE 'site-%' AND site_name IS NOT NULL")" t
expect_eq "most machines are known assets" \
    "$(psql_q "SELECT count(DISTINCT device_id) * 10 >= (SELECT count(DISTINCT device_id) FROM telemetry) * 8 FROM telemetry WHERE asset_oem IS NOT NULL")" t
kcat -C -b "$BROKERS" -t telemetry.enriched -e -q -f '%p %o %k %s\n' 2>/dev/null |
    sed -E 's/^([0-9]+) ([0-9]+) ([^ ]+) .*"ts":"([^"]+)".*/\1 \2 \3 \4/' | sort -k1,1n -k2,2n |
    awk '{ if (last[$3] != "" && $4 <= last[$3]) bad++; last[$3] = $4 } END { print bad + 0 }' >"$STATE/order"
expect_eq "per-device order kept through out-of-order lookups" "$(cat "$STATE/order")" 0
calls=$(fp_metric "$E" fleetpipe_enrich_remote_calls_total 'lookup="geocoder"')
expect_eq "remote calls counted by the enricher reached the stub" "$calls" "$(stat_of reverse)"
echo "   geocoder calls per record: $(awk -v c="$calls" -v n="$N1" 'BEGIN { printf "%.3f", c / n }')"
# One call per key at most: a site's id for records inside a site, else the ~100 m grid cell
# (the same snapping as lookup.c, in SQL). Cache and single-flight make it exactly one per key;
# a point on a cell boundary may snap differently in SQL, hence a little slack.
keys=$(psql_q "SELECT count(DISTINCT CASE WHEN site_id IS NOT NULL THEN 'site:' || site_id ELSE
    floor((lat + 90) / (100 / 111320.0))::text || ':' || floor((lon + 180) / (100 / (111320.0 *
    greatest(cos(radians(-90 + (floor((lat + 90) / (100 / 111320.0)) + 0.5) * (100 / 111320.0))), 0.01))))::text END)
    FROM telemetry WHERE lat IS NOT NULL")
[ "$calls" -ge 1 ] && [ "$calls" -le $((keys + keys / 100 + 2)) ] &&
    pass "the cache and single-flight make one geocoder call per key ($calls calls, $keys keys, $N1 records)" ||
    fail "one geocoder call per key" "$calls calls for $keys keys ($N1 records)"
[ "$(fp_metric "$E" fleetpipe_enrich_coalesced_total)" -gt 0 ] && pass "single-flight: waits joined requests in flight" ||
    fail "single-flight: waits joined requests in flight" "coalesced: $(fp_metric "$E" fleetpipe_enrich_coalesced_total)"

# 1b. SIGHUP reloads the geofences without stopping; a broken file keeps the sites in use.
sites_are() { [ "$(fp_metric "$E" fleetpipe_enrich_geofence_sites)" = "$1" ]; }
sed 's/]}$/,{"type":"Feature","properties":{"id":"extra","name":"Extra"},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1],[0,0]]]}}]}/' \
    "$STATE/geofences.json" >"$STATE/geofences.new" && mv "$STATE/geofences.new" "$STATE/geofences.json"
kill -HUP "$(cat "$STATE/enricher.pid")"
if fp_wait_for 10 "9 sites" sites_are 9; then pass "SIGHUP reloads the geofences (9 sites)"; else fail "SIGHUP reloads the geofences" "sites: $(fp_metric "$E" fleetpipe_enrich_geofence_sites)"; fi
echo '{"type":"FeatureCollection","features":[' >"$STATE/geofences.json"
kill -HUP "$(cat "$STATE/enricher.pid")"
loads_failed() { [ "$(fp_metric "$E" fleetpipe_enrich_geofence_loads_total 'result="failed"')" = 1 ]; }
if fp_wait_for 10 "a failed reload" loads_failed && sites_are 9; then pass "a broken geofence file keeps the sites in use"; else fail "a broken geofence file keeps the sites in use"; fi
expect_eq "enricher ready after the reloads" "$(http_status "$E" /readyz)" 200

# 2. A slow service (200 ms): requests in flight never exceed ENRICH_MAX_INFLIGHT.
stub POST "/control?latency_ms=200&jitter_ms=0" >/dev/null
stub POST /stats/reset >/dev/null
N2=$(feed "$((FLEET_SEED + 1))" 600)
if fp_wait_for 120 "$((N1 + N2)) rows" rows_are "$((N1 + N2))"; then pass "slow service: all $N2 records stored"; else fail "slow service: all records stored" "rows: $(row_count)"; fi
max=$(stat_of max_in_flight)
[ "$max" -le 8 ] && [ "$max" -ge 1 ] && pass "slow service: at most 8 requests in flight ($max)" ||
    fail "slow service: at most 8 requests in flight" "max_in_flight: $max"
rss=$(fp_metric "$E" process_resident_memory_bytes)
# AddressSanitizer (make test SANITIZE=1) keeps freed memory in quarantine and adds shadow
# memory: the bound is then 4 times the plain one.
rss_max=$((64 * 1024 * 1024))
case "$BIN" in */san) rss_max=$((4 * rss_max)) ;; esac
[ "$rss" -lt "$rss_max" ] && pass "enricher memory bounded ($((rss / 1024 / 1024)) MiB)" || fail "enricher memory bounded" "rss: $rss"

# 3. Garbage answers: a lookup failure, not a crash; records flow on, none to the DLQ.
stub POST "/control?latency_ms=0&garbage_rate=1" >/dev/null
N3=$(feed "$((FLEET_SEED + 2))" 300)
if fp_wait_for 60 "$((N1 + N2 + N3)) rows" rows_are "$((N1 + N2 + N3))"; then pass "garbage answers: all $N3 records stored"; else fail "garbage answers: all records stored" "rows: $(row_count)"; fi
[ "$(fp_metric "$E" fleetpipe_enrich_lookup_errors_total 'class="malformed"')" -gt 0 ] && pass "garbage counted as malformed" || fail "garbage counted as malformed"

# 4. The service dies: records keep flowing, degraded, none lost, none in the DLQ.
fp_stop_pid "$(cat "$STATE/stub.pid")" 10
rm -f "$STATE/stub.pid"
N4=$(feed "$((FLEET_SEED + 3))" 300)
TOTAL=$((N1 + N2 + N3 + N4))
if fp_wait_for 60 "$TOTAL rows" rows_are "$TOTAL"; then pass "service down: all $N4 records stored"; else fail "service down: all records stored" "rows: $(row_count)"; fi
expect_eq "service down: degraded records say so" \
    "$(psql_q "SELECT count(*) FROM telemetry WHERE enrichment_status IN ('partial', 'unavailable')")" "$((N3 + N4))"
expect_eq "nothing went to the DLQ" "$(dlq_count)" 0
expect_eq "enricher still ready while degraded" "$(http_status "$E" /readyz)" 200
expect_eq "the circuit is open" "$(fp_metric "$E" fleetpipe_enrich_circuit_state 'lookup="assets"')" 1

finish enricher
