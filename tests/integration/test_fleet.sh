#!/usr/bin/env bash
# fleet-sim through the whole pipeline: real Teltonika (Codec 8E/8 over TCP, Codec 8 over UDP)
# and SenML frames, with retransmissions and corrupt frames. PostgreSQL must hold exactly the
# distinct valid observations fleet-sim reports, with their positions, and the DLQ exactly the
# corrupt frames with their codes.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
it_init fleet
export PARTITIONS=8
it_start_stack

SEED=${FLEET_SEED:-$((RANDOM % 1000 + 1))}
echo "fleet-sim seed $SEED (replay with FLEET_SEED=$SEED)"
"$BIN/fleet-sim" --brokers "$BROKERS" --devices 40 --records 4000 --seed "$SEED" \
    --retransmit-rate 0.05 --corrupt-rate 0.05 --manifest "$STATE/manifest" >"$STATE/sim.json"
cat "$STATE/sim.json"
expect_eq "fleet-sim delivered everything" "$(grep -o '"undelivered":[0-9]*' "$STATE/sim.json")" '"undelivered":0'
DISTINCT=$(grep -c '^valid ' "$STATE/manifest")
CORRUPT=$(grep -c '^corrupt ' "$STATE/manifest")
expect_eq "manifest agrees with the summary" "$DISTINCT" "$(grep -o '"distinct":[0-9]*' "$STATE/sim.json" | cut -d: -f2)"
[ "$CORRUPT" -gt 0 ] && pass "the run has corrupt frames ($CORRUPT)" || fail "the run has corrupt frames"

if fp_wait_for 90 "$DISTINCT rows and $CORRUPT DLQ messages" counts_are "$DISTINCT" "$CORRUPT"; then
    pass "$DISTINCT rows and $CORRUPT DLQ messages arrive"
else
    fail "$DISTINCT rows and $CORRUPT DLQ messages arrive" "rows: $(row_count)" "dlq: $(dlq_count)"
fi

awk '$1 == "valid" {print $2, $3, $4, $5}' "$STATE/manifest" | sort >"$STATE/expected_rows"
psql_q "SELECT device_id, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
               coalesce(to_char(lat, 'FM990.0000000'), '-'), coalesce(to_char(lon, 'FM9990.0000000'), '-')
        FROM telemetry" | tr '|' ' ' | sort >"$STATE/actual_rows"
expect_files_eq "rows are exactly fleet-sim's distinct valid observations" "$STATE/actual_rows" "$STATE/expected_rows"

awk '$1 == "corrupt" {print $2}' "$STATE/manifest" | sort >"$STATE/expected_codes"
kcat -C -b "$BROKERS" -t telemetry.dlq -e -q -f '%h\n' 2>/dev/null |
    tr ',' '\n' | sed -n 's/^fp\.error\.code=//p' | sort >"$STATE/actual_codes"
expect_files_eq "DLQ holds exactly the corrupt frames, with their codes" "$STATE/actual_codes" "$STATE/expected_codes"

expect_eq "every format arrived" \
    "$(psql_q "SELECT string_agg(DISTINCT format, ',' ORDER BY format) FROM telemetry")" \
    "senml,teltonika.codec8,teltonika.codec8e"
expect_eq "Teltonika metrics are named" \
    "$(psql_q "SELECT count(*) > 0 FROM telemetry WHERE metrics ? 'external_voltage_v' AND metrics ? 'ignition' AND io ? '239'")" t
expect_eq "negative coordinates stored" "$(psql_q "SELECT count(*) > 0 FROM telemetry WHERE lat < 0 AND lon < 0")" t

# A fatal error of fleet-sim's idempotent producer mid-run (as after a broker SIGKILL that lost
# acknowledged sequence state): fleet-sim takes back what was queued and in flight, replaces the
# producer and sends it again, so every observation still reaches the table. This run's event
# time starts after the first run's last timestamp (at most ~2 h of simulated time), so its rows
# are those from START2 on; it has no damaged frames, so the DLQ must not grow.
START2=$((1767225600000 + 30 * 86400000))
DLQ_BEFORE=$(dlq_count)
"$BIN/fleet-sim" --brokers "$BROKERS" --devices 40 --records 4000 --seed "$((SEED + 1))" \
    --rate 2000 --start-ms "$START2" --retransmit-rate 0.05 --inject-fatal-after 1200 \
    --manifest "$STATE/manifest2" >"$STATE/sim2.json" 2>"$STATE/sim2.err"
RC2=$?
cat "$STATE/sim2.json"
expect_eq "after a fatal producer error fleet-sim still delivers everything" \
    "rc $RC2 $(grep -o '"undelivered":[0-9]*,"producers_renewed":[0-9]*' "$STATE/sim2.json")" \
    'rc 0 "undelivered":0,"producers_renewed":1'
sent_keys "$STATE/manifest2" >"$STATE/sent_keys2"
N2=$(wc -l <"$STATE/sent_keys2")
rows_from_start2() { [ "$(psql_q "SELECT count(*) FROM telemetry WHERE ts >= to_timestamp($START2 / 1000.0)")" = "$N2" ]; }
if fp_wait_for 90 "$N2 rows of the second run" rows_from_start2; then
    pass "$N2 rows of the second run arrive"
else
    fail "$N2 rows of the second run arrive" "$(cat "$STATE/sim2.err")"
fi
expect_keys_stored "every observation sent across the producer's replacement stored once" \
    "$STATE/sent_keys2" "ts >= to_timestamp($START2 / 1000.0)"
expect_eq "the DLQ did not grow" "$(dlq_count)" "$DLQ_BEFORE"

finish fleet
