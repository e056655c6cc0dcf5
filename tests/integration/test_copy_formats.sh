#!/usr/bin/env bash
# sink-svc's two COPY formats store the same rows. The same records, with values at the edges of
# every column type (reals exactly halfway between two floats, -0, the first and last
# representable times, the largest and smallest reals, texts that COPY text escapes, Unicode),
# and rows that arrive late so that the rollups list them through their session table, are
# written once by a sink in the binary format (the default) and once, after the tables are
# emptied, by a sink with SINK_COPY_FORMAT=text: telemetry and telemetry_hourly must be equal
# value for value. Then a column given another type by an operator, under a running sink and
# before a start: the sink falls back to text by itself and says so.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
it_init copyfmt
export PARTITIONS=4 ENRICH_LOOKUPS=off
SEED=${COPY_SEED:-$((RANDOM % 1000 + 1))}
IT_REPLAY="replay with COPY_SEED=$SEED"
echo "seed $SEED ($IT_REPLAY)"

it_start_stack

# The edge cases, one record each ("key|json" lines for kcat).
edge_records() {
    local h='"schema":1,"format":"canonical"'
    cat <<EOF
edge-1|{$h,"device_id":"edge-1","ts":"0001-01-01T00:00:00.000Z","position":{"lat":1,"lon":2,"alt_m":1.0000000596046448,"heading_deg":1.0000001788139343,"speed_kmh":3.4028234663852886e38}}
edge-2|{$h,"device_id":"edge-2","ts":"1969-12-31T23:59:59.999Z","priority":255,"event_io":65535,"position":{"lat":-0.0,"lon":-0.0,"alt_m":-0.0,"speed_kmh":1.401298464324817e-45,"satellites":255}}
edge-3|{$h,"device_id":"edge-3","ts":"9999-12-31T23:59:59.999Z","received_at":"2026-03-02T07:45:13.204Z","metrics":{"note":"x\ny\t\\\\z\"","tiny":1e-300,"zero":-0.0,"huge":1.7976931348623157e308,"ignition":false},"io":{"66":4294967295,"256":"00ff"},"enrichment":{"status":"ok","site":{"id":"S\\\\1","name":"Zürich – 東京 🚜"},"address":{"display_name":"a\\\\b\tc\"d","road":"\\\\N","city":"\\\\.","postcode":"\u00e9","country":"x\ry","country_code":"ch"},"asset":{"customer":"c","oem":"o","model":"m","serial_number":"s","machine_type":"t"}}}
edge-4|{$h,"device_id":"edge 4 \\\\ ü","ts":"2026-03-02T07:45:12.345Z","position":{"lat":89.99999999999999,"lon":-179.99999999999997,"alt_m":0.1,"heading_deg":359.99999999999994,"speed_kmh":16777217}}
EOF
}

# fleet_records PHASE: 20 devices x 40 records with random decimals; phase 1 sends the even
# records, phase 2 the odd ones, each older than a row stored in phase 1 (late rows). Engine
# hours and odometer are multiples of 0.25, so that the rollups' sums are exact in any order.
fleet_records() {
    awk -v seed="$SEED" -v phase="$1" 'BEGIN {
        srand(seed)
        for (d = 1; d <= 20; d++)
            for (i = 0; i < 40; i++) {
                lat = rand() * 180 - 90; lon = rand() * 360 - 180
                alt = rand() * 3000 - 500; hd = rand() * 360; sp = rand() * 80
                ign = rand() < 0.5 ? "true" : "false"
                if (i % 2 != phase - 1) continue
                s = 1772437500 + i * 97 + d
                ts = strftime("%Y-%m-%dT%H:%M:%S", s, 1) sprintf(".%03dZ", (d * 37 + i) % 1000)
                printf "fleet-%d|{\"schema\":1,\"device_id\":\"fleet-%d\",\"ts\":\"%s\",", d, d, ts
                printf "\"position\":{\"lat\":%.17g,\"lon\":%.17g,\"alt_m\":%.9g,", lat, lon, alt
                printf "\"heading_deg\":%.17g,\"speed_kmh\":%.6g,\"satellites\":%d},", hd, sp, i % 13
                printf "\"metrics\":{\"ignition\":%s,\"engine_hours_h\":%.2f,", ign, 1000 + i * 0.25
                printf "\"odometer_m\":%.2f},", 50000 + i * 12.25
                printf "\"enrichment\":{\"status\":\"ok\",\"site\":{\"id\":\"s%d\",\"name\":\"Site %d\"}}}\n", d % 3, d % 3
            }
    }'
}

COLUMNS="device_id, ts, received_at, format, priority, event_io, lat, lon, alt_m, heading_deg,
    speed_kmh, satellites, ignition, enrichment_status, site_id, site_name, address, road, city,
    postcode, country, country_code, asset_customer, asset_oem, asset_model, asset_serial_number,
    asset_machine_type, metrics, io"
EDGES=4
FLEET=800
ALL=$((EDGES + FLEET))

# run_feed NAME: sends the edge records and fleet phase 1, waits for their rows, then phase 2,
# waits for every row, and dumps the tables (dump_tables NAME).
run_feed() {
    local first=$((EDGES + FLEET / 2))
    { edge_records; fleet_records 1; } | kcat -P -b "$BROKERS" -t telemetry.enriched -K '|'
    fp_wait_for 60 "$first rows" rows_are "$first" ||
        fail "$1: $first rows arrive" "rows: $(row_count)"
    fleet_records 2 | kcat -P -b "$BROKERS" -t telemetry.enriched -K '|'
    if fp_wait_for 60 "$ALL rows" rows_are "$ALL"; then pass "$1: $ALL rows"; else fail "$1: $ALL rows" "rows: $(row_count)"; fi
    dump_tables "$1"
}

# dump_tables NAME: telemetry into $STATE/NAME.rows and telemetry_hourly into $STATE/NAME.hourly.
# The hourly sums are rounded to 9 decimals: they add increments in the order the batches
# brought them, and the two runs batch differently.
dump_tables() {
    psql_q "\\copy (SELECT $COLUMNS FROM telemetry ORDER BY device_id, ts) TO '$STATE/$1.rows'"
    psql_q "\\copy (SELECT device_id, bucket, samples, first_ts, last_ts, max_speed_kmh,
        round(engine_hours_h::numeric, 9), round(distance_km::numeric, 9),
        round(ignition_on_s::numeric, 9) FROM telemetry_hourly ORDER BY 1, 2)
        TO '$STATE/$1.hourly'"
}

copy_binary() { fp_metric "$(cat "$STATE/sink.port")" fleetpipe_sink_copy_binary; }

# 1. The binary format, the default.
expect_eq "the sink COPYs in the binary format by default" "$(copy_binary)" 1
run_feed binary
late=$(psql_q "SELECT sum(late_rows) FROM telemetry_rollup_devices")
if [ "${late:-0}" -ge $((FLEET / 2 - 20)) ]; then pass "late rows went through the rollups ($late)"; else fail "late rows went through the rollups" "late_rows: $late"; fi
expect_eq "no record went to the DLQ" "$(dlq_count)" 0

# 2. The same records in the text format, on emptied tables, read again by a new group.
"$STACK" stop-svc "$STATE" sink
psql_q "TRUNCATE telemetry, telemetry_hourly, telemetry_rollup_devices, fleetpipe_offsets" >/dev/null
if SINK_COPY_FORMAT=text KAFKA_GROUP_ID=fleetpipe-sink-text "$STACK" start-svc "$STATE" sink; then
    pass "a sink with SINK_COPY_FORMAT=text starts"
else
    fail "a sink with SINK_COPY_FORMAT=text starts"
fi
expect_eq "it COPYs in the text format" "$(copy_binary)" 0
# The topic now holds every record once: both phases arrive together, so the text run sends
# nothing more and waits for all rows.
if fp_wait_for 60 "$ALL rows" rows_are "$ALL"; then pass "text: $ALL rows"; else fail "text: $ALL rows" "rows: $(row_count)"; fi
dump_tables text
expect_files_eq "telemetry: the binary and the text format store the same values" "$STATE/binary.rows" "$STATE/text.rows"
expect_files_eq "telemetry_hourly: the same in both formats" "$STATE/binary.hourly" "$STATE/text.hourly"
expect_eq "the rows are not trivially equal (edge rows present)" \
    "$(grep -c '^edge' "$STATE/binary.rows")" 4

# 3. A column given another type under a running binary sink: its next COPY fails, it connects
# again and writes text by itself. Then a restart beside that column: text from the start.
"$STACK" stop-svc "$STATE" sink
if "$STACK" start-svc "$STATE" sink; then pass "a binary sink starts again"; else fail "a binary sink starts again"; fi
expect_eq "it COPYs in the binary format" "$(copy_binary)" 1
psql_q "BEGIN; DROP VIEW telemetry_latest;
    ALTER TABLE telemetry ALTER COLUMN alt_m TYPE double precision;
    CREATE VIEW telemetry_latest AS SELECT DISTINCT ON (device_id) * FROM telemetry
        ORDER BY device_id, ts DESC; COMMIT" >/dev/null ||
    fail "alt_m becomes double precision"
# send_row DEVICE: one record with alt_m 12.3.
send_row() {
    echo "$1|{\"schema\":1,\"device_id\":\"$1\",\"ts\":\"2026-03-02T07:45:12.000Z\",\"position\":{\"lat\":1,\"lon\":2,\"alt_m\":12.3}}" |
        kcat -P -b "$BROKERS" -t telemetry.enriched -K '|'
}
send_row late-1
if fp_wait_for 30 "the row" rows_are $((ALL + 1)); then pass "a row after the change is written"; else fail "a row after the change is written" "rows: $(row_count)"; fi
expect_eq "with the value the text format gives" "$(psql_q "SELECT alt_m FROM telemetry WHERE device_id = 'late-1'")" 12.3
expect_eq "the running sink now COPYs in the text format" "$(copy_binary)" 0
expect_eq "nothing went to the DLQ for it" "$(dlq_count)" 0
"$STACK" stop-svc "$STATE" sink
if "$STACK" start-svc "$STATE" sink; then pass "the sink starts beside a column of another type"; else fail "the sink starts beside a column of another type"; fi
expect_eq "it COPYs in the text format from the start" "$(copy_binary)" 0
grep -q '"msg":"a column of telemetry has another type: writing COPY text".*"column":"alt_m"' "$STATE/sink.log" &&
    pass "and logs which column" || fail "and logs which column" "$(grep -c 'another type' "$STATE/sink.log") lines"
send_row late-2
if fp_wait_for 30 "the row" rows_are $((ALL + 2)); then pass "its rows are written"; else fail "its rows are written" "rows: $(row_count)"; fi

finish copy_formats
