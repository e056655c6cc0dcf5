#!/usr/bin/env bash
# make demo: the whole pipeline on the embedded stack. Starts devkafka, PostgreSQL and the
# three services, feeds canonical records (with resends and invalid payloads) for a few
# seconds, shows live progress per stage, then a summary and two example queries. Stops
# everything it started, also when interrupted.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"
BIN=${BIN:-bin}
case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac
export BIN

RECORDS=${DEMO_RECORDS:-20000}
DEVICES=${DEMO_DEVICES:-50}
RESENDS=${DEMO_RESENDS:-1000}
INVALID=${DEMO_INVALID:-200}
RATE=${DEMO_RATE:-4000}

STATE=$(mktemp -d /tmp/fleetpipe-demo.XXXXXX)
cleanup() {
    echo
    echo "stopping the stack"
    "$HERE/stack.sh" stop "$STATE" >/dev/null 2>&1 || true
    [ "${KEEP_LOGS:-0}" = 1 ] && echo "logs kept in $STATE" || rm -rf "$STATE"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== fleetpipe demo: starting devkafka, PostgreSQL and the three services"
"$HERE/stack.sh" start "$STATE"
BROKERS=$(cat "$STATE/bootstrap")
P=$(cat "$STATE/parser.port")
E=$(cat "$STATE/enricher.port")
S=$(cat "$STATE/sink.port")
echo "   kafka $BROKERS   metrics: parser :$P  enricher :$E  sink :$S"
echo
echo "== feeding $RECORDS records of $DEVICES devices, $RESENDS resends and $INVALID invalid payloads at $RATE msg/s"
"$BIN/fp-gen" --brokers "$BROKERS" --devices "$DEVICES" --records "$RECORDS" \
    --duplicates "$RESENDS" --invalid "$INVALID" --rate "$RATE" --seed 42 >"$STATE/gen.json" &
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
    if ! kill -0 "$GEN" 2>/dev/null && [ "$stored" -ge "$RECORDS" ] && [ "$dlq" -ge "$INVALID" ]; then
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
echo
echo "== summary"
echo "   generator:        $(cat "$STATE/gen.json")"
printf '   %-28s %8s\n' "sent (messages)" "$(grep -o '"sent":[0-9]*' "$STATE/gen.json" | cut -d: -f2)"
printf '   %-28s %8s\n' "valid records sent" "$RECORDS"
printf '   %-28s %8s\n' "resent (duplicates)" "$RESENDS"
printf '   %-28s %8s\n' "invalid payloads sent" "$INVALID"
printf '   %-28s %8s\n' "parsed (records out)" "$(fp_metric "$P" fleetpipe_parser_records_total)"
printf '   %-28s %8s\n' "enriched" "$(fp_metric "$E" fleetpipe_enrich_records_total)"
printf '   %-28s %8s\n' "stored (rows in telemetry)" "$stored_db"
printf '   %-28s %8s\n' "duplicates absorbed by sink" "$(fp_metric "$S" fleetpipe_sink_rows_duplicate_total)"
printf '   %-28s %8s\n' "DLQ'd (telemetry.dlq)" "$dlq_msgs"
echo "   DLQ by code:"
kcat -C -b "$BROKERS" -t telemetry.dlq -e -q -f '%h\n' 2>/dev/null | tr ',' '\n' |
    sed -n 's/^fp\.error\.code=//p' | sort | uniq -c | sed 's/^/     /'
if [ "$stored_db" = "$RECORDS" ] && [ "$dlq_msgs" = "$INVALID" ]; then
    echo "   RESULT: stored == valid records sent, DLQ == invalid payloads sent"
else
    echo "   RESULT: MISMATCH (stored $stored_db of $RECORDS, DLQ $dlq_msgs of $INVALID)"
fi

echo
echo "== example query 1: last known position and state of five machines (view telemetry_latest)"
echo "   SELECT device_id, ts, lat, lon, ignition, metrics->>'external_voltage_v' AS volts"
echo "   FROM telemetry_latest ORDER BY device_id LIMIT 5;"
"$HERE/pg.sh" psql "$STATE" -c "SELECT device_id, ts, lat, lon, ignition, metrics->>'external_voltage_v' AS volts FROM telemetry_latest ORDER BY device_id LIMIT 5;"
echo "== example query 2: observations and ignition-on share per 10 minutes, whole fleet"
echo "   SELECT date_bin('10 minutes', ts, 'epoch') AS bucket, count(*) AS rows,"
echo "          round(avg(ignition::int) * 100, 1) AS ignition_on_pct"
echo "   FROM telemetry GROUP BY 1 ORDER BY 1 LIMIT 6;"
"$HERE/pg.sh" psql "$STATE" -c "SELECT date_bin('10 minutes', ts, 'epoch') AS bucket, count(*) AS rows, round(avg(ignition::int) * 100, 1) AS ignition_on_pct FROM telemetry GROUP BY 1 ORDER BY 1 LIMIT 6;"
[ "$stored_db" = "$RECORDS" ] && [ "$dlq_msgs" = "$INVALID" ]
