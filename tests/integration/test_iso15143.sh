#!/usr/bin/env bash
# ISO 15143-3 (AEMP 2.0) fleet snapshots end to end: OEM-style pages go to telemetry.raw with kcat
# (one sniffed, one with the content-type header and a broken machine among good ones, one that
# is not a snapshot), travel parser → enricher → sink into PostgreSQL, and come out again as
# aemp_fleet() pages that decode (parser-svc decode) to the same values.
#
# Checks: the stored rows are exactly the records `parser-svc decode` makes of the pages sent,
# with the same values; the broken machine gives one DLQ message (iso15143_equipment) naming its
# index, the non-snapshot one (iso15143_not_snapshot); the asset hints reach the table; the
# aemp_fleet pages link to the next page and hold each machine's latest value of every element.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
it_init iso15143
export PARTITIONS=4
export ENRICH_LOOKUPS=off # the header's asset hints must reach the table unchanged
CT=application/iso15143-snapshot+json

echo "starting the embedded stack in $STATE"
it_start_stack

# Times a few hours back, so that the parser's range check (at most a day ahead) holds.
t_old=$(date -u -d '-3 hours' +%Y-%m-%dT%H:00:00Z)
t_mid=$(date -u -d '-2 hours' +%Y-%m-%dT%H:00:00Z)
t_new=$(date -u -d '-1 hours' +%Y-%m-%dT%H:00:00Z)

# Page 1 (sniffed, no header): three OEMs' spellings. CAT names its machine by PIN, Komatsu
# (lower-case member names, numbers as strings) by OEMName:SerialNumber, Volvo by EquipmentID
# only, in miles, US gallons and feet. Distance and fuel of the CAT are older than its location.
cat >"$STATE/page1.json" <<EOF
{"Links": [{"rel": "self", "href": "https://oem.example/fleet/1"},
           {"rel": "next", "href": "https://oem.example/fleet/2"}],
 "SnapshotTime": "$t_old",
 "Equipment": [
  {"EquipmentHeader": {"OEMName": "CAT", "Model": "320", "EquipmentID": "EX-07",
                       "SerialNumber": "ZAP01234", "PIN": "CAT0320GZAP01234"},
   "Location": {"datetime": "$t_old", "Latitude": 55.6761, "Longitude": 12.5683,
                "AltitudeUnits": "metre", "Altitude": 12.5},
   "CumulativeOperatingHours": {"datetime": "$t_old", "Hour": 1234.5},
   "CumulativeIdleHours": {"datetime": "$t_old", "Hour": 210.25},
   "Distance": {"datetime": "$t_old", "OdometerUnits": "kilometre", "Odometer": 5210.5},
   "FuelUsed": {"datetime": "$t_old", "FuelUnits": "litre", "FuelConsumed": 8000},
   "FuelRemaining": {"datetime": "$t_old", "Percent": 62},
   "DEFRemaining": {"datetime": "$t_old", "Percent": 80},
   "EngineStatus": {"datetime": "$t_old", "Running": true}},
  {"equipmentHeader": {"oemName": "Komatsu", "model": "PC210", "serialNumber": "K50123"},
   "location": {"Datetime": "$t_old", "latitude": "55.70", "longitude": "12.50"},
   "cumulativeOperatingHours": {"Datetime": "$t_old", "hour": "88"},
   "engineStatus": {"Datetime": "$t_old", "running": "false"}},
  {"EquipmentHeader": {"OEMName": "Volvo", "Model": "EC220E", "EquipmentID": "VOLVO-17"},
   "Location": {"datetime": "$t_old", "Latitude": 55.71, "Longitude": 12.49,
                "AltitudeUnits": "feet", "Altitude": 1000},
   "Distance": {"datetime": "$t_old", "OdometerUnits": "mile", "Odometer": 100},
   "FuelUsed": {"datetime": "$t_old", "FuelUnits": "gallon", "FuelConsumed": 10}}
 ]}
EOF
# Page 2 (with the content-type header): newer values for the CAT and the Komatsu, elements
# at two datetimes, and a machine in furlongs in the middle.
cat >"$STATE/page2.json" <<EOF
{"Fleet": {"SnapshotTime": "$t_new",
 "Equipment": [
  {"EquipmentHeader": {"OEMName": "CAT", "Model": "320", "EquipmentID": "EX-07",
                       "SerialNumber": "ZAP01234", "PIN": "CAT0320GZAP01234"},
   "Location": {"datetime": "$t_new", "Latitude": 55.68, "Longitude": 12.57,
                "AltitudeUnits": "metre", "Altitude": 13},
   "CumulativeOperatingHours": {"datetime": "$t_new", "Hour": 1236},
   "FuelRemaining": {"datetime": "$t_mid", "Percent": 55},
   "EngineStatus": {"datetime": "$t_new", "Running": false}},
  {"EquipmentHeader": {"OEMName": "Liebherr", "SerialNumber": "L1"},
   "Distance": {"datetime": "$t_new", "OdometerUnits": "furlong", "Odometer": 3}},
  {"equipmentHeader": {"oemName": "Komatsu", "model": "PC210", "serialNumber": "K50123"},
   "cumulativeOperatingHours": {"Datetime": "$t_mid", "hour": 89.5}}
 ]}}
EOF
printf '{"Equipment": "none", "Links": []}' >"$STATE/page3.json"

# What the decoder makes of the pages: the rows expected in the table.
"$BIN/parser-svc" decode <"$STATE/page1.json" >"$STATE/decoded1" 2>"$STATE/decode1.err"
expect_eq "page 1 decodes whole" "$?:$(cat "$STATE/decode1.err")" "0:"
"$BIN/parser-svc" decode <"$STATE/page2.json" >"$STATE/decoded2" 2>"$STATE/decode2.err"
expect_eq "page 2: the furlong machine fails, the others decode" "$?:$(cut -d: -f1 "$STATE/decode2.err")" "1:iso15143_equipment"
# One record per machine and datetime: 3 of page 1, 2 (CAT) + 1 (Komatsu) of page 2.
expect_eq "records decoded: 3 of page 1, 3 of page 2" "$(cat "$STATE/decoded1" "$STATE/decoded2" | wc -l)" 6

# kcat sends each file as one message.
kcat -P -b "$BROKERS" -t telemetry.raw -k page1 "$STATE/page1.json"
kcat -P -b "$BROKERS" -t telemetry.raw -k page2 -H "content-type=$CT" "$STATE/page2.json"
kcat -P -b "$BROKERS" -t telemetry.raw -k page3 -H "content-type=$CT" "$STATE/page3.json"
if fp_wait_for 60 "6 rows and 2 DLQ messages" counts_are 6 2; then
    pass "6 rows and 2 DLQ messages arrive"
else
    fail "6 rows and 2 DLQ messages arrive" "rows: $(row_count)" "dlq: $(dlq_count)"
fi

# The DLQ: one message for page 2 naming the failed machine, one for page 3.
kcat -C -b "$BROKERS" -t telemetry.dlq -e -q -f '%k %h\n' 2>/dev/null >"$STATE/dlq"
expect_eq "page 2's dead letter: code iso15143_equipment, machine [1], unit" \
    "$(grep -c '^page2 .*fp.error.code=iso15143_equipment.*1 of 3 items failed: \[1\] iso15143_unit' "$STATE/dlq")" 1
expect_eq "page 3's dead letter: code iso15143_not_snapshot" \
    "$(grep -c '^page3 .*fp.error.code=iso15143_not_snapshot' "$STATE/dlq")" 1

# flatten: canonical records (JSON lines) → "DEVICE TS KEY VALUE" lines, sorted: each metric
# (but equipment_id, a header field), and the position as one value.
flatten() {
    jq -r '. as $r
        | ([.metrics // {} | to_entries[] | select(.key != "equipment_id") | [.key, (.value | tostring)]]
           + (if .position then [["Location", "\(.position.lat) \(.position.lon) \(.position.alt_m)"]] else [] end))[]
        | "\($r.device_id) \($r.ts) \(.[0]) \(.[1])"' |
        # Numbers to 10 significant digits: a value in kilometres times 1000 may differ from the
        # stored metres in the last bit.
        awk '{ for (i = 4; i <= NF; i++) if ($i ~ /^-?[0-9.]+(e[-+]?[0-9]+)?$/) $i = sprintf("%.10g", $i); print }' |
        sort
}
# header: records → "DEVICE oem model serial equipment_id" lines, distinct.
header() {
    jq -r '"\(.device_id) \(.enrichment.asset.oem) \(.enrichment.asset.model) \(.enrichment.asset.serial_number) \(.metrics.equipment_id)"' | sort -u
}
stored_records() {
    psql_q "SELECT json_build_object('device_id', device_id, 'ts', aemp_time(ts), 'metrics', metrics,
                'position', CASE WHEN lat IS NOT NULL THEN json_build_object('lat', lat, 'lon', lon, 'alt_m', alt_m) END,
                'enrichment', json_build_object('asset', json_build_object('oem', asset_oem,
                    'model', asset_model, 'serial_number', asset_serial_number)))
            FROM telemetry"
}
cat "$STATE/decoded1" "$STATE/decoded2" | flatten >"$STATE/expected_values"
stored_records | flatten >"$STATE/stored_values"
expect_files_eq "stored rows hold exactly the decoded values" "$STATE/stored_values" "$STATE/expected_values"
cat "$STATE/decoded1" "$STATE/decoded2" | header >"$STATE/expected_headers"
stored_records | header >"$STATE/stored_headers"
expect_files_eq "asset hints from the headers are stored" "$STATE/stored_headers" "$STATE/expected_headers"
expect_eq "rows say format iso15143 and went through the enricher" \
    "$(psql_q "SELECT count(*) FROM telemetry WHERE format = 'iso15143' AND enrichment_status = 'unavailable'")" 6
expect_eq "EngineStatus.Running fills the ignition column" \
    "$(psql_q "SELECT string_agg(ignition::text, ',' ORDER BY ts) FROM telemetry WHERE device_id = 'CAT0320GZAP01234' AND ignition IS NOT NULL")" "true,false"

# The way out: aemp_fleet pages of 2 machines, the first linking to the second.
psql_q "SELECT aemp_fleet(1, 2)" >"$STATE/out1.json"
psql_q "SELECT aemp_fleet(2, 2)" >"$STATE/out2.json"
expect_eq "page 1 of aemp_fleet: 2 machines and a next link" \
    "$(jq -c '[(.Fleet.Equipment | length), [.Fleet.Links[] | select(.rel == "next") | .href]]' "$STATE/out1.json")" \
    '[2,["?page=2&page_size=2"]]'
expect_eq "page 2 of aemp_fleet: the last machine, no next link" \
    "$(jq -c '[(.Fleet.Equipment | length), [.Fleet.Links[] | select(.rel == "next")]]' "$STATE/out2.json")" '[1,[]]'

# The round trip: what the pages decode to is each machine's latest value of each element,
# with that value's time, and the same header.
cat "$STATE/out1.json" "$STATE/out2.json" | while read -r page; do
    printf '%s' "$page" | "$BIN/parser-svc" decode || echo "decode failed" >&2
done >"$STATE/roundtrip" 2>"$STATE/roundtrip.err"
expect_eq "aemp_fleet pages decode without error" "$(cat "$STATE/roundtrip.err")" ""
awk '{print $1, $3, $2, $4, $5, $6}' "$STATE/expected_values" | sort -k1,1 -k2,2 -k3,3r |
    awk '!seen[$1 " " $2]++ {print $1, $3, $2, $4, $5, $6}' | sed 's/ *$//' | sort >"$STATE/expected_latest"
flatten <"$STATE/roundtrip" >"$STATE/roundtrip_values"
expect_files_eq "aemp_fleet round trip: each machine's latest values, with their datetimes" \
    "$STATE/roundtrip_values" "$STATE/expected_latest"
header <"$STATE/roundtrip" >"$STATE/roundtrip_headers"
expect_files_eq "aemp_fleet round trip: the same headers" "$STATE/roundtrip_headers" "$STATE/expected_headers"

finish iso15143
