#!/usr/bin/env bash
# telemetry_hourly through the real sink: hand-computed cases of the bucket and neighbour
# arithmetic (a late row that splits an interval across two buckets, a row before a device's
# first row, counter resets, gaps over 10 minutes, resends, a row days late), two writers of one
# device at once, SINK_ROLLUPS=off and the rebuild, and then the property test: random feeds in
# random order with resends and rows hours and days late, the sink killed with SIGKILL mid-feed
# and a second replica joining and leaving; after the drain telemetry_hourly must equal the
# reference query (EXCEPT in both directions empty, floating-point columns within 1e-6
# relative).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
it_init rollups
export PARTITIONS=4 ENRICH_LOOKUPS=off
SEED=${ROLLUP_SEED:-$((RANDOM % 1000 + 1))}
IT_REPLAY="replay with ROLLUP_SEED=$SEED"
echo "feed seed $SEED ($IT_REPLAY)"

PIDS_EXTRA=()
cleanup_extra() {
    local p
    for p in "${PIDS_EXTRA[@]}"; do fp_stop_pid "$p" 5 >/dev/null 2>&1; done
    it_cleanup
}
trap cleanup_extra EXIT

# The reference query exactly as the contract states it (README "Rollups").
REFERENCE="WITH s AS (
  SELECT device_id, ts, speed_kmh,
         (metrics->>'engine_hours_h')::float8 AS eh, (metrics->>'odometer_m')::float8 AS odo,
         lag(ts) OVER w AS prev_ts, lag(ignition) OVER w AS prev_ign,
         lag((metrics->>'engine_hours_h')::float8) OVER w AS prev_eh,
         lag((metrics->>'odometer_m')::float8) OVER w AS prev_odo
  FROM telemetry WINDOW w AS (PARTITION BY device_id ORDER BY ts))
SELECT device_id, date_trunc('hour', ts, 'UTC') AS bucket, count(*) AS samples,
       min(ts) AS first_ts, max(ts) AS last_ts, max(speed_kmh) AS max_speed_kmh,
       coalesce(sum(eh - prev_eh) FILTER (WHERE eh >= prev_eh), 0) AS engine_hours_h,
       coalesce(sum(odo - prev_odo) FILTER (WHERE odo >= prev_odo), 0) / 1000.0 AS distance_km,
       coalesce(sum(extract(epoch FROM ts - prev_ts))
                FILTER (WHERE prev_ign AND ts - prev_ts <= interval '10 minutes'), 0) AS ignition_on_s
FROM s GROUP BY 1, 2"

# rollup_diff LIKE: "A|B": rows of telemetry_hourly without an equal row in the reference, and
# the other way round, for devices matching LIKE. Equal: the same key, samples, first_ts,
# last_ts and max_speed_kmh, and the three sums within 1e-6 relative.
rollup_diff() {
    psql_q "WITH ref AS (SELECT * FROM ($REFERENCE) r WHERE device_id LIKE '$1'),
        h AS (SELECT * FROM telemetry_hourly WHERE device_id LIKE '$1'),
        close AS (SELECT h.device_id, h.bucket FROM h JOIN ref r USING (device_id, bucket)
            WHERE r.samples = h.samples AND r.first_ts = h.first_ts AND r.last_ts = h.last_ts
              AND r.max_speed_kmh IS NOT DISTINCT FROM h.max_speed_kmh
              AND abs(r.engine_hours_h - h.engine_hours_h)
                  <= 1e-6 * greatest(abs(r.engine_hours_h), abs(h.engine_hours_h))
              AND abs(r.distance_km - h.distance_km)
                  <= 1e-6 * greatest(abs(r.distance_km), abs(h.distance_km))
              AND abs(r.ignition_on_s - h.ignition_on_s::numeric)
                  <= 1e-6 * greatest(abs(r.ignition_on_s), abs(h.ignition_on_s::numeric)))
        SELECT (SELECT count(*) FROM (SELECT device_id, bucket FROM h EXCEPT SELECT * FROM close) a)
               || '|' ||
               (SELECT count(*) FROM (SELECT device_id, bucket FROM ref EXCEPT SELECT * FROM close) b)"
}

# hourly DEVICE: the device's rollups, one bucket a line: "HH samples first last eh km ign".
hourly() {
    psql_q "SELECT to_char(bucket AT TIME ZONE 'UTC', 'HH24'), samples,
                   to_char(first_ts AT TIME ZONE 'UTC', 'HH24:MI'), to_char(last_ts AT TIME ZONE 'UTC', 'HH24:MI'),
                   round(engine_hours_h::numeric, 6), round(distance_km::numeric, 6),
                   round(ignition_on_s::numeric, 3)
            FROM telemetry_hourly WHERE device_id = '$1' ORDER BY bucket" | tr '|' ' ' | tr '\n' ';'
}

# rec DEVICE TS IGNITION ENGINE_HOURS ODOMETER [SPEED]: one canonical record as "key|json".
rec() {
    local pos=""
    [ -n "${6:-}" ] && pos=",\"position\":{\"lat\":55.6,\"lon\":12.5,\"speed_kmh\":$6}"
    echo "$1|{\"schema\":1,\"device_id\":\"$1\",\"ts\":\"$2\"$pos,\"metrics\":{\"ignition\":$3,\"engine_hours_h\":$4,\"odometer_m\":$5}}"
}
produce() { kcat -P -b "$BROKERS" -t telemetry.enriched -K '|'; }
rows_of_are() { [ "$(psql_q "SELECT count(*) FROM telemetry WHERE device_id LIKE '$1'")" = "$2" ]; }
SINK_PORT() { cat "$STATE/sink.port"; }
late_metric() { fp_metric "$(SINK_PORT)" fleetpipe_sink_late_rows_total; }
late_metric_is() { [ "$(late_metric)" = "$1" ]; }
dup_metric() { fp_metric "$(SINK_PORT)" fleetpipe_sink_rows_duplicate_total; }
dup_metric_is() { [ "$(dup_metric)" = "$1" ]; }
# expect_late NAME N: the late-rows counter reaches N (it moves just after the COMMIT that made
# the rows visible) and stays there.
expect_late() {
    fp_wait_for 10 "$2 late rows" late_metric_is "$2"
    expect_eq "$1" "$(late_metric)" "$2"
}

it_start_stack

# ---- 1. The arithmetic, case by case (values worked out by hand) ----------------------------

# A late row that splits an interval across two buckets: 10:05 -> 11:02 becomes 10:05 -> 10:58
# (53 min: no ignition time) and 10:58 -> 11:02 (4 min after a row with ignition on).
{
    rec split 2026-01-01T10:00:00.000Z true 100 1000 10
    rec split 2026-01-01T10:05:00.000Z true 100.1 2000 20
    rec split 2026-01-01T11:02:00.000Z false 100.5 3000 5
} | produce
fp_wait_for 30 "3 rows" rows_of_are split 3
expect_eq "in order: each interval in the bucket of its later row" "$(hourly split)" \
    "10 2 10:00 10:05 0.100000 1.000000 300.000;11 1 11:02 11:02 0.400000 1.000000 0.000;"
late0=$(late_metric)
rec split 2026-01-01T10:58:00.000Z true 100.4 2500 30 | produce
fp_wait_for 30 "4 rows" rows_of_are split 4
expect_eq "a late row splits an interval across two buckets" "$(hourly split)" \
    "10 3 10:00 10:58 0.400000 1.500000 300.000;11 1 11:02 11:02 0.100000 0.500000 240.000;"
expect_late "the late row is counted late" "$((late0 + 1))"

# A row before the device's first row: the old first row gains a previous row.
{
    rec first 2026-01-01T07:03:00.000Z true 50 700
    rec first 2026-01-01T07:30:00.000Z true 50.2 900
} | produce
fp_wait_for 30 "2 rows" rows_of_are first 2
rec first 2026-01-01T06:59:00.000Z true 49.9 650 | produce
fp_wait_for 30 "3 rows" rows_of_are first 3
expect_eq "a row before the first row: its own bucket and the next row's" "$(hourly first)" \
    "06 1 06:59 06:59 0.000000 0.000000 0.000;07 2 07:03 07:30 0.300000 0.250000 240.000;"

# Counter resets add nothing; a previous row without the metric gives no increment either.
{
    rec reset 2026-01-01T12:00:00.000Z false 100 5000
    rec reset 2026-01-01T12:01:00.000Z false 101 6000
    rec reset 2026-01-01T12:02:00.000Z false 5 0
    rec reset 2026-01-01T12:03:00.000Z false 6 400
    echo 'reset|{"schema":1,"device_id":"reset","ts":"2026-01-01T12:04:00.000Z","metrics":{"ignition":false}}'
    rec reset 2026-01-01T12:05:00.000Z false 7 900
} | produce
fp_wait_for 30 "6 rows" rows_of_are reset 6
expect_eq "counter resets and missing values add nothing" "$(hourly reset)" \
    "12 6 12:00 12:05 2.000000 1.400000 0.000;"

# Gaps: exactly 10 minutes after a row with ignition on counts, 10 min + 1 ms does not, and
# neither does time after a row with ignition off.
{
    rec gaps 2026-01-01T00:00:00.000Z true 1 0
    rec gaps 2026-01-01T00:10:00.000Z true 1 0
    rec gaps 2026-01-01T00:20:00.001Z false 1 0
    rec gaps 2026-01-01T00:21:00.000Z true 1 0
} | produce
fp_wait_for 30 "4 rows" rows_of_are gaps 4
expect_eq "gaps over 10 minutes and ignition off count no ignition time" "$(hourly gaps)" \
    "00 4 00:00 00:21 0.000000 0.000000 600.000;"

# Metrics sent as numeric strings are read as the database reads them (the sink leaves such a
# device to the per-row step), and a later numeric row continues from them.
{
    rec texts 2026-01-01T10:00:00.000Z true '"100"' '"1000"'
    rec texts 2026-01-01T10:05:00.000Z true '"100.1"' '"2000"'
} | produce
fp_wait_for 30 "2 rows" rows_of_are texts 2
rec texts 2026-01-01T10:07:00.000Z true 100.3 2500 | produce
fp_wait_for 30 "3 rows" rows_of_are texts 3
expect_eq "metrics as numeric strings count like numbers" "$(hourly texts)" \
    "10 3 10:00 10:07 0.300000 1.500000 420.000;"

# A resend changes nothing and is not late; a row three days late lands where it belongs.
late0=$(late_metric)
dup0=$(dup_metric)
rec split 2026-01-01T10:05:00.000Z true 100.1 2000 20 | produce
fp_wait_for 30 "the resend written as a duplicate" dup_metric_is "$((dup0 + 1))"
expect_eq "a resend changes nothing" "$(hourly split)" \
    "10 3 10:00 10:58 0.400000 1.500000 300.000;11 1 11:02 11:02 0.100000 0.500000 240.000;"
rec gaps 2025-12-29T00:05:00.000Z true 0.5 0 | produce
fp_wait_for 30 "the days-late row" rows_of_are gaps 5
expect_eq "a row three days late: its bucket, and the gap to the next row is no ignition time" \
    "$(hourly gaps)" "00 1 00:05 00:05 0.000000 0.000000 0.000;00 4 00:00 00:21 0.500000 0.000000 600.000;"
expect_late "the days-late row counted late, the resend not" "$((late0 + 1))"
expect_eq "the cases equal the reference query (both EXCEPT directions)" "$(rollup_diff '%')" "0|0"
expect_eq "telemetry_hourly_reference is the reference query" \
    "$(psql_q "SELECT count(*) FROM ((SELECT * FROM telemetry_hourly_reference EXCEPT ($REFERENCE))
                                    UNION ALL (($REFERENCE) EXCEPT SELECT * FROM telemetry_hourly_reference)) d")" 0
expect_eq "telemetry_daily sums the hours of a UTC day" \
    "$(psql_q "SELECT samples || ' ' || round(engine_hours_h::numeric, 6) || ' ' || round(ignition_on_s::numeric, 3)
               FROM telemetry_daily WHERE device_id = 'split'")" "4 0.500000 540.000"

# The check can fail: a row stored behind the rollups' back is seen in both directions.
psql_q "INSERT INTO telemetry (device_id, ts, ignition, metrics) VALUES ('split', '2026-01-01T10:30:00Z', true, '{}')" >/dev/null
expect_eq "a row the rollups did not see is a difference" "$(rollup_diff 'split')" "1|1"
psql_q "DELETE FROM telemetry WHERE device_id = 'split' AND ts = '2026-01-01T10:30:00Z'" >/dev/null
expect_eq "and without it none" "$(rollup_diff 'split')" "0|0"

# ---- 2. Two writers of one device at once (a rebalance) --------------------------------------
# Session A inserts and applies and keeps its transaction open; session B, writing rows of the
# same device in between A's, must wait for A's COMMIT and then see A's rows.
session_sql() { # session_sql ROWS...: a write transaction as the sink does it, left open
    echo "SELECT telemetry_rollup_session();"
    echo "BEGIN;"
    echo "WITH fp_inserted AS (INSERT INTO telemetry (device_id, ts, ignition, metrics) VALUES $1"
    echo "  ON CONFLICT (device_id, ts) DO NOTHING RETURNING device_id, ts)"
    echo "  INSERT INTO telemetry_rollup_keys (device_id, ts) SELECT device_id, ts FROM fp_inserted;"
    echo "SELECT * FROM telemetry_rollup_apply();"
}
session_state() { psql_q "SELECT coalesce(max(state || ':' || coalesce(wait_event_type, '-')), 'none') FROM pg_stat_activity WHERE application_name = '$1'"; }
state_is() { [ "$(session_state "$1")" = "$2" ]; }
# open_session NAME: a psql session named NAME (application_name) reading commands from a FIFO;
# sets SESSION_FD (write commands there) and SESSION_PID.
open_session() {
    rm -f "$STATE/$1.fifo"
    mkfifo "$STATE/$1.fifo"
    PGAPPNAME=$1 "$ROOT/deploy/local/pg.sh" psql "$STATE" -At <"$STATE/$1.fifo" >>"$STATE/$1.out" 2>&1 &
    SESSION_PID=$!
    PIDS_EXTRA+=("$SESSION_PID")
    exec {SESSION_FD}>"$STATE/$1.fifo"
}
# close_session FD PID
close_session() {
    local fd=$1
    exec {fd}>&-
    fp_stop_pid "$2" 10 >/dev/null
}
# two_writers NAME ROWS_A ROWS_B: A writes and applies, B writes and must wait for A's COMMIT.
two_writers() {
    local fa pa fb pb
    open_session rollup-a
    fa=$SESSION_FD pa=$SESSION_PID
    open_session rollup-b
    fb=$SESSION_FD pb=$SESSION_PID
    session_sql "$2" >&"$fa"
    fp_wait_for 20 "session A idle in its transaction" state_is rollup-a "idle in transaction:Client"
    session_sql "$3" >&"$fb"
    if fp_wait_for 20 "session B waiting for A" state_is rollup-b "active:Lock"; then
        pass "$1: the second writer of the device waits for the first"
    else
        fail "$1: the second writer of the device waits for the first" "B: $(session_state rollup-b)"
    fi
    echo "COMMIT;" >&"$fa"
    fp_wait_for 20 "session B idle in its transaction" state_is rollup-b "idle in transaction:Client"
    echo "COMMIT;" >&"$fb"
    close_session "$fa" "$pa"
    close_session "$fb" "$pb"
}
# A device seen for the first time (B waits on A's new device row) ...
two_writers "a new device" \
    "('twin', '2026-01-02T12:00:00Z', true, '{\"engine_hours_h\": 10}'),
     ('twin', '2026-01-02T12:20:00Z', true, '{\"engine_hours_h\": 11}')" \
    "('twin', '2026-01-02T12:10:00Z', true, '{\"engine_hours_h\": 10.5}'),
     ('twin', '2026-01-02T12:25:00Z', true, '{\"engine_hours_h\": 11.2}')"
expect_eq "two writers of a new device: exact (B saw A's rows)" "$(hourly twin)" \
    "12 4 12:00 12:25 1.200000 0.000000 1500.000;"
# ... and a known one (B waits on the row lock A holds).
two_writers "a known device" \
    "('twin', '2026-01-02T12:40:00Z', true, '{\"engine_hours_h\": 11.5}'),
     ('twin', '2026-01-02T12:50:00Z', true, '{\"engine_hours_h\": 11.9}')" \
    "('twin', '2026-01-02T12:30:00Z', true, '{\"engine_hours_h\": 11.3}'),
     ('twin', '2026-01-02T12:45:00Z', true, '{\"engine_hours_h\": 11.7}')"
expect_eq "two writers of a known device: exact" "$(hourly twin)" \
    "12 8 12:00 12:50 1.900000 0.000000 3000.000;"
# ... and both arriving while a third session holds the device's row: each must wait at its
# lock, before it reads anything. Were B to read while A is still at work, it would count
# 12:50 -> 12:52 beside A's 12:50 -> 12:55 (an ON CONFLICT DO NOTHING instead of the lock fails
# here).
open_session rollup-c
fc=$SESSION_FD pc=$SESSION_PID
echo "BEGIN; SELECT 1 FROM telemetry_rollup_devices WHERE device_id = 'twin' FOR UPDATE;" >&"$fc"
fp_wait_for 20 "session C holding the device's row" state_is rollup-c "idle in transaction:Client"
open_session rollup-a
fa=$SESSION_FD pa=$SESSION_PID
open_session rollup-b
fb=$SESSION_FD pb=$SESSION_PID
session_sql "('twin', '2026-01-02T12:55:00Z', true, '{\"engine_hours_h\": 12.2}')" >&"$fa"
fp_wait_for 20 "session A waiting for C" state_is rollup-a "active:Lock"
session_sql "('twin', '2026-01-02T12:52:00Z', true, '{\"engine_hours_h\": 12.0}')" >&"$fb"
fp_wait_for 20 "session B waiting" state_is rollup-b "active:Lock"
echo "COMMIT;" >&"$fc"
fp_wait_for 20 "session A done" state_is rollup-a "idle in transaction:Client"
echo "COMMIT;" >&"$fa"
fp_wait_for 20 "session B done" state_is rollup-b "idle in transaction:Client"
echo "COMMIT;" >&"$fb"
close_session "$fc" "$pc"
close_session "$fa" "$pa"
close_session "$fb" "$pb"
expect_eq "two writers queued behind a third lock holder: exact" \
    "$(hourly twin)" "12 10 12:00 12:55 2.200000 0.000000 3300.000;"
expect_eq "two writers: equal to the reference" "$(rollup_diff 'twin')" "0|0"

# ---- 3. SINK_ROLLUPS=off, then on again: the rollups are rebuilt ------------------------------
"$STACK" stop-svc "$STATE" sink
SINK_ROLLUPS=off "$STACK" start-svc "$STATE" sink || fail "sink starts with SINK_ROLLUPS=off"
{
    rec offdev 2026-01-03T08:00:00.000Z true 1 0
    rec offdev 2026-01-03T08:05:00.000Z true 2 100
} | produce
fp_wait_for 30 "2 rows written without rollups" rows_of_are offdev 2
expect_eq "with rollups off nothing is rolled up" "$(hourly offdev)" ""
expect_eq "and the rollups are marked incomplete" "$(psql_q "SELECT valid FROM telemetry_rollup_state")" f
"$STACK" stop-svc "$STATE" sink
"$STACK" start-svc "$STATE" sink || fail "sink starts with rollups on"
expect_eq "a sink with rollups on rebuilds them when it connects" "$(hourly offdev)" \
    "08 2 08:00 08:05 1.000000 0.100000 300.000;"
expect_eq "complete again" "$(psql_q "SELECT valid FROM telemetry_rollup_state")" t
grep -q '"msg":"telemetry_hourly rebuilt"' "$STATE/sink.log" && pass "the rebuild is logged" ||
    fail "the rebuild is logged"
expect_eq "after the rebuild: equal to the reference" "$(rollup_diff '%')" "0|0"

# ---- 4. The property test ---------------------------------------------------------------------
# gen_feed SEED DEVICES RECORDS: "key|json" lines in the order they are sent. Per device a
# history with gaps from 1 s to 2 days (10 min and 10 min + 1 ms among them), ignition switching,
# counters rising with resets, values missing now and then, no position (no speed) at times;
# sent mostly in order, some rows a few places late, some hours late, some days late (after
# the device's whole history), and 5 % sent twice.
gen_feed() {
    awk -v seed="$1" -v ndev="$2" -v nrec="$3" '
    function civil(days,   z, era, doe, yoe, doy, mp, d, m, y) {
        z = days + 719468; era = int(z / 146097); doe = z - era * 146097
        yoe = int((doe - int(doe / 1460) + int(doe / 36524) - int(doe / 146096)) / 365)
        y = yoe + era * 400; doy = doe - (365 * yoe + int(yoe / 4) - int(yoe / 100)); mp = int((5 * doy + 2) / 153)
        d = doy - int((153 * mp + 2) / 5) + 1; m = mp < 10 ? mp + 3 : mp - 9
        return sprintf("%04d-%02d-%02d", y + (m <= 2), m, d)
    }
    function rfc(ms,   s, days) {
        s = int(ms / 1000); days = int(s / 86400); s -= days * 86400
        return sprintf("%sT%02d:%02d:%02d.%03dZ", civil(days), int(s / 3600), int(s % 3600 / 60), s % 60, ms % 1000)
    }
    BEGIN {
        srand(seed)
        split("1000 7000 30000 59000 120000 599999 600000 600001 1500000 3600000 10800000 172800000", gap, " ")
        split("20 15 15 10 10 5 5 5 5 5 3 2", w, " ")
        for (i = 1; i <= 12; i++) wsum += w[i]
        n = 0
        for (d = 1; d <= ndev; d++) {
            dev = sprintf("prop-%d-%03d", seed, d)
            t = 1767225600000 + int(rand() * 86400000); eh = rand() * 5000; odo = rand() * 1e8; ign = rand() < 0.5
            for (i = 0; i < nrec; i++) {
                r = rand() * wsum; for (g = 1; g < 12 && r >= w[g]; g++) r -= w[g]
                t += gap[g] + (g == 6 || g == 7 || g == 8 ? 0 : int(rand() * 1000))
                if (ign) { eh += gap[g] / 3600000 * (0.5 + rand()); odo += int(rand() * 20000) / 10 }
                if (rand() < 0.2) ign = !ign
                if (rand() < 0.02) eh = int(rand() * 10)
                if (rand() < 0.02) odo = 0
                m = "\"ignition\":" (ign ? "true" : "false")
                if (rand() < 0.95) m = m sprintf(",\"engine_hours_h\":%.6f", eh)
                if (rand() < 0.95) m = m sprintf(",\"odometer_m\":%.1f", odo)
                pos = rand() < 0.9 ? sprintf(",\"position\":{\"lat\":55.6,\"lon\":12.5,\"speed_kmh\":%.1f}", rand() * 60) : ""
                line = dev "|{\"schema\":1,\"device_id\":\"" dev "\",\"ts\":\"" rfc(t) "\"" pos ",\"metrics\":{" m "}}"
                r = rand()
                if (r < 0.80) at = i; else if (r < 0.90) at = i + rand() * 5
                else if (r < 0.97) at = i + 20 + rand() * 100; else at = nrec + rand() * 50
                n++; order[n] = sprintf("%012.4f %d", at, n); text[n] = line
                if (rand() < 0.05) { n++; order[n] = sprintf("%012.4f %d", at + rand() * 40, n); text[n] = line }
            }
        }
        for (i = 1; i <= n; i++) print order[i] "\t" text[i]
    }' | sort -k1,1 | cut -f2-
}
PROP_DEVICES=30
PROP_RECORDS=300
gen_feed "$SEED" "$PROP_DEVICES" "$PROP_RECORDS" >"$STATE/feed"
DISTINCT=$(cut -d'|' -f2- "$STATE/feed" | sort -u | wc -l)
TOTAL=$(wc -l <"$STATE/feed")
echo "property feed: $TOTAL messages, $DISTINCT distinct rows of $PROP_DEVICES devices"
prop_rows() { psql_q "SELECT count(*) FROM telemetry WHERE device_id LIKE 'prop-$SEED-%'" 2>/dev/null || echo -1; }
prop_rows_above() { [ "$(prop_rows)" -gt "$1" ]; }
prop_rows_are() { [ "$(prop_rows)" = "$1" ]; }
split -n l/4 -d "$STATE/feed" "$STATE/chunk-"

# Chunk 1, and the sink killed as soon as rows arrive, then restarted.
produce <"$STATE/chunk-00"
fp_wait_for 60 "rows of chunk 1" prop_rows_above 0
"$STACK" stop-svc "$STATE" sink --kill
pass "sink killed with SIGKILL mid-feed at $(prop_rows) rows"
"$STACK" start-svc "$STATE" sink || fail "sink restarts after SIGKILL"
# Chunk 2 with a second replica joining (the partitions move while rows flow).
produce <"$STATE/chunk-01"
"$STACK" start-svc "$STATE" sink 2 || fail "a second sink replica joins"
# Chunk 3, and the first replica killed while it writes.
before=$(prop_rows)
produce <"$STATE/chunk-02"
fp_wait_for 60 "rows of chunk 3" prop_rows_above "$before"
"$STACK" stop-svc "$STATE" sink --kill
pass "sink killed with SIGKILL mid-feed at $(prop_rows) rows"
"$STACK" start-svc "$STATE" sink || fail "sink restarts after the second SIGKILL"
# Chunk 4, and the second replica leaves.
produce <"$STATE/chunk-03"
"$STACK" stop-svc "$STATE" sink 2
if fp_wait_for 120 "$DISTINCT rows" prop_rows_are "$DISTINCT"; then
    pass "the feed is stored: $DISTINCT rows"
else
    fail "the feed is stored: $DISTINCT rows" "rows: $(prop_rows)"
fi
expect_eq "property: telemetry_hourly equals the reference query (both EXCEPT directions)" \
    "$(rollup_diff "prop-$SEED-%")" "0|0"
expect_eq "property: every row counted once" \
    "$(psql_q "SELECT sum(samples) FROM telemetry_hourly WHERE device_id LIKE 'prop-$SEED-%'")" "$DISTINCT"
expect_eq "property: each device's newest row is known" \
    "$(psql_q "SELECT count(*) FROM telemetry_rollup_devices d JOIN (SELECT device_id, max(ts) AS m FROM telemetry
               WHERE device_id LIKE 'prop-$SEED-%' GROUP BY 1) t USING (device_id) WHERE d.last_ts = t.m")" "$PROP_DEVICES"
late=$(psql_q "SELECT sum(late_rows) FROM telemetry_rollup_devices WHERE device_id LIKE 'prop-$SEED-%'")
[ "${late:-0}" -gt 0 ] && pass "property: the feed had late rows ($late)" || fail "property: the feed had late rows" "late: $late"
expect_eq "everything equals the reference query" "$(rollup_diff '%')" "0|0"

finish rollups
