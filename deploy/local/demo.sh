#!/usr/bin/env bash
# make demo: the whole pipeline on the embedded stack. Starts Apache Kafka (or devkafka with
# FP_KAFKA=devkafka), PostgreSQL, the lookup stub and the three services, runs fleet-sim (real
# Teltonika and SenML frames, with resends and damaged frames) for a few seconds, shows live
# progress per stage, then a summary and example queries, the last one machine utilization from
# the hourly rollups. Stops everything it started, also when interrupted.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"
BIN=${BIN:-bin}
case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac
export BIN

RECORDS=${DEMO_RECORDS:-30000}
DEVICES=${DEMO_DEVICES:-200}
RATE=${DEMO_RATE:-6000}
RETRANSMIT=${DEMO_RETRANSMIT:-0.02}
CORRUPT=${DEMO_CORRUPT:-0.01}

STATE=$(mktemp -d /tmp/fleetpipe-demo.XXXXXX)
cleanup() {
    echo
    echo "stopping the stack"
    "$HERE/stack.sh" stop "$STATE" >/dev/null 2>&1 || true
    [ "${KEEP_LOGS:-0}" = 1 ] && echo "logs kept in $STATE" || rm -rf "$STATE"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "${FP_KAFKA:-kafka}" = devkafka ]; then
    BROKER_NAME="devkafka (librdkafka's mock cluster)"
else
    BROKER_NAME="Apache Kafka $("$HERE/kafka.sh" version) (single-node KRaft)"
fi
echo "== fleetpipe demo: starting $BROKER_NAME, PostgreSQL, the lookup stub and the three services"
"$HERE/stack.sh" start "$STATE"
BROKERS=$(cat "$STATE/bootstrap")
P=$(cat "$STATE/parser.port")
E=$(cat "$STATE/enricher.port")
S=$(cat "$STATE/sink.port")
echo "   kafka $BROKERS   metrics: parser :$P  enricher :$E  sink :$S"
echo
echo "== fleet-sim: $DEVICES machines, $RECORDS observations at $RATE records/s (Teltonika Codec 8E/8"
echo "   over TCP and UDP, SenML), $RETRANSMIT of frames resent, $CORRUPT damaged on the line"
"$BIN/fleet-sim" --brokers "$BROKERS" --devices "$DEVICES" --records "$RECORDS" --rate "$RATE" \
    --retransmit-rate "$RETRANSMIT" --corrupt-rate "$CORRUPT" --seed 42 \
    --manifest "$STATE/manifest" >"$STATE/gen.json" &
GEN=$!

psql_q() { "$HERE/pg.sh" psql "$STATE" -At -c "$1"; }

printf '%6s  %10s %10s %10s %10s %8s\n' time raw-in parsed enriched stored dlq
start=$(date +%s)
deadline=$((start + 180))
while :; do
    raw=$(fp_metric "$P" fleetpipe_messages_consumed_total)
    parsed=$(fp_metric "$P" fleetpipe_parser_records_total)
    enriched=$(fp_metric "$E" fleetpipe_enrich_records_total)
    stored=$(fp_metric "$S" fleetpipe_sink_rows_inserted_total)
    dlq=$(fp_metric "$P" fleetpipe_dlq_messages_total)
    printf '%5ss  %10s %10s %10s %10s %8s\n' "$(($(date +%s) - start))" "$raw" "$parsed" "$enriched" "$stored" "$dlq"
    if ! kill -0 "$GEN" 2>/dev/null && [ "$stored" -ge "$RECORDS" ] &&
        [ "$dlq" -ge "$(grep -c '^corrupt ' "$STATE/manifest")" ]; then
        break
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "demo: the pipeline did not finish within 180 s" >&2
        break
    fi
    sleep 1 # progress display interval
done
wait "$GEN" || true

stored_db=$(psql_q "SELECT count(*) FROM telemetry")
dlq_msgs=$(kcat -C -b "$BROKERS" -t telemetry.dlq -e -q -f 'x\n' 2>/dev/null | wc -l)
DISTINCT=$(grep -c '^valid ' "$STATE/manifest")
INVALID=$(grep -c '^corrupt ' "$STATE/manifest")
gen_field() { grep -o "\"$1\":[0-9]*" "$STATE/gen.json" | head -n 1 | cut -d: -f2; }
echo
echo "== summary"
echo "   fleet-sim: $(cat "$STATE/gen.json")"
printf '   %-36s %8s\n' "sent (Kafka messages)" "$(gen_field frames)"
printf '   %-36s %8s\n' "  of which resent frames" "$(gen_field retransmitted)"
printf '   %-36s %8s\n' "  of which damaged frames" "$INVALID"
printf '   %-36s %8s\n' "valid observations (distinct)" "$DISTINCT"
printf '   %-36s %8s\n' "parsed (records out of parser-svc)" "$(fp_metric "$P" fleetpipe_parser_records_total)"
printf '   %-36s %8s\n' "enriched" "$(fp_metric "$E" fleetpipe_enrich_records_total)"
printf '   %-36s %8s\n' "stored (rows in telemetry)" "$stored_db"
printf '   %-36s %8s\n' "duplicates absorbed by the sink" "$(fp_metric "$S" fleetpipe_sink_rows_duplicate_total)"
printf '   %-36s %8s\n' "DLQ'd (telemetry.dlq)" "$dlq_msgs"
echo "   enrichment: $(psql_q "SELECT string_agg(enrichment_status || ' ' || n, ', ') FROM (SELECT enrichment_status, count(*) AS n FROM telemetry GROUP BY 1 ORDER BY 1) s"); geocoder calls $(fp_metric "$E" fleetpipe_enrich_remote_calls_total 'lookup="geocoder"'), asset calls $(fp_metric "$E" fleetpipe_enrich_remote_calls_total 'lookup="assets"')"
echo "   DLQ by code:"
kcat -C -b "$BROKERS" -t telemetry.dlq -e -q -f '%h\n' 2>/dev/null | tr ',' '\n' |
    sed -n 's/^fp\.error\.code=//p' | sort | uniq -c | sed 's/^/     /'
if [ "$stored_db" = "$DISTINCT" ] && [ "$dlq_msgs" = "$INVALID" ]; then
    echo "   RESULT: stored == valid observations sent, DLQ == damaged frames sent"
else
    echo "   RESULT: MISMATCH (stored $stored_db of $DISTINCT, DLQ $dlq_msgs of $INVALID)"
fi

echo
Q1="SELECT device_id, ts, site_name, city, asset_oem || ' ' || asset_model AS machine, ignition, metrics->>'engine_hours_h' AS engine_h, metrics->>'fuel_level_l' AS fuel_l FROM telemetry_latest WHERE format <> 'senml' ORDER BY device_id LIMIT 5;"
Q2="SELECT format, count(*) AS rows, count(DISTINCT device_id) AS machines, round(avg(speed_kmh)::numeric, 1) AS avg_speed_kmh, round(100.0 * avg(ignition::int), 1) AS ignition_on_pct FROM telemetry GROUP BY format ORDER BY rows DESC;"
echo "== example query 1: last known position and state of five machines (view telemetry_latest)"
echo "   $Q1"
"$HERE/pg.sh" psql "$STATE" -c "$Q1"
echo "== example query 2: the fleet by device protocol"
echo "   $Q2"
"$HERE/pg.sh" psql "$STATE" -c "$Q2"
Q3="SELECT coalesce(d.last_site_name, '(between sites)') AS site, count(DISTINCT h.device_id) AS machines, count(*) AS machine_hours, round(sum(h.engine_hours_h)::numeric, 1) AS engine_h, round(sum(h.distance_km)::numeric, 1) AS km, round(sum(h.ignition_on_s)::numeric / 3600, 1) AS ignition_h, round(100 * sum(h.ignition_on_s)::numeric / (3600 * count(*)), 1) AS utilization_pct FROM telemetry_hourly h JOIN telemetry_rollup_devices d USING (device_id) GROUP BY 1 ORDER BY utilization_pct DESC;"
echo "== example query 3: utilization by site from the event-time hourly rollups (telemetry_hourly;"
echo "   utilization = ignition-on time / machine-hours reported, a machine at its current site)"
echo "   $Q3"
"$HERE/pg.sh" psql "$STATE" -c "$Q3"
[ "$stored_db" = "$DISTINCT" ] && [ "$dlq_msgs" = "$INVALID" ]
