#!/usr/bin/env bash
# sink-svc under fire: kill -9 in the middle of a run, PostgreSQL stopped for 10 s under load,
# a row the database refuses among good ones, two replicas in one group, keys another writer
# stored, both replicas sending batches whole (SINK_STREAM_COPY=off), then with
# SINK_COMMIT_OVERLAP=on a commit held by a lock (the sink reads on), stored keys and an outage.
# PostgreSQL must end with exactly fleet-sim's distinct valid observations, the DLQ with only the
# refused row.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
it_init sink
export PARTITIONS=8 ENRICH_LOOKUPS=off
SEED=${FLEET_SEED:-$((RANDOM % 1000 + 1))}
IT_REPLAY="replay with FLEET_SEED=$SEED"
echo "fleet-sim seed $SEED ($IT_REPLAY)"

rows_above() { [ "$(row_count)" -gt "$1" ]; }
gen_done() { ! kill -0 "$GEN" 2>/dev/null; }
gen_running() { [ -n "$GEN" ] && kill -0 "$GEN" 2>/dev/null; }
sink_dlq() { kcat -C -b "$BROKERS" -t telemetry.dlq -e -q -f '%h\n' 2>/dev/null | grep -c 'fp.error.stage=sink'; }

# feed_bg SEED RECORDS RATE: fleet-sim in the background (resends on, damage off).
feed_bg() {
    "$BIN/fleet-sim" --brokers "$BROKERS" --devices 40 --records "$2" --rate "$3" --seed "$1" \
        --retransmit-rate 0.03 --manifest "$STATE/manifest-$1" >"$STATE/sim-$1.json" &
    GEN=$!
}

it_start_stack

# wait_gen: waits (60 s) for the fleet-sim in GEN to finish and reaps it; on the deadline records a
# failure and stops it, so that the checks after it still run (and fail) instead of hanging.
wait_gen() {
    if fp_wait_for 60 "fleet-sim" gen_done; then
        wait "$GEN"
    else
        fail "fleet-sim finishes within 60 s" "$(cat "$STATE/sim-"*.json 2>/dev/null)"
        fp_stop_pid "$GEN" 5
    fi
    GEN=""
}

# 1. kill -9 of sink-svc in the middle of a run, then a restart. "In the middle" is a checked
# precondition: the sink has written rows, it is killed while alive, and the rows it had written
# when it died are fewer than fleet-sim's distinct observations of that run.
feed_bg "$SEED" 20000 5000
SINK_PID=$(cat "$STATE/sink.pid")
if fp_wait_for 60 "rows to arrive" rows_above 3000; then
    if _fp_alive "$SINK_PID"; then
        "$STACK" stop-svc "$STATE" sink --kill
        if _fp_alive "$SINK_PID"; then fail "sink (pid $SINK_PID) dies on SIGKILL"; fi
        K1=$(row_count) # the sink is dead: nothing writes now
    else
        fail "sink alive when it is to be killed" "pid $SINK_PID is gone; rows: $(row_count)"
        K1=-1
    fi
else
    fail "rows arrive before the kill -9 (more than 3000 within 60 s)" "rows: $(row_count)"
    "$STACK" stop-svc "$STATE" sink --kill
    K1=-1
fi
if "$STACK" start-svc "$STATE" sink; then pass "sink restarts"; else fail "sink restarts"; fi
wait_gen
N1=$(grep -c '^valid ' "$STATE/manifest-$SEED")
if [ "$K1" -gt 0 ] && [ "$K1" -lt "$N1" ]; then
    pass "sink killed with SIGKILL mid-run, at $K1 of $N1 rows"
else
    fail "sink killed with SIGKILL mid-run" "rows at the kill: $K1 (must be above 0 and below $N1)"
fi
if fp_wait_for 60 "$N1 rows" rows_are "$N1"; then pass "after kill -9: $N1 rows"; else fail "after kill -9: $N1 rows" "rows: $(row_count)"; fi

# 2. PostgreSQL stopped for 10 s under load. "Under load" is a checked precondition: rows of
# this run are arriving and fleet-sim is still sending when the database stops.
S=$(cat "$STATE/sink.port")
feed_bg "$((SEED + 1))" 10000 1000
if fp_wait_for 30 "rows to arrive" rows_above "$N1"; then
    if gen_running; then
        pass "database stopped under load (fleet-sim sending, rows arriving: $(($(row_count) - N1)))"
    else
        fail "database stopped under load" "fleet-sim had finished before the outage began"
    fi
else
    fail "database stopped under load" "no row of this run within 30 s; rows: $(row_count) (before: $N1)"
fi
"$ROOT/deploy/local/pg.sh" pause "$STATE" || fail "PostgreSQL stops (pg.sh pause)"
if fp_wait_for 15 "sink not ready" status_is "$S" /readyz 503; then pass "database down: sink /readyz 503"; else fail "database down: sink /readyz 503"; fi
sleep 10 # the outage lasts 10 s while fleet-sim keeps sending
expect_eq "database down: sink still alive (/healthz)" "$(http_status "$S" /healthz)" 200
"$ROOT/deploy/local/pg.sh" resume "$STATE" || fail "PostgreSQL starts again (pg.sh resume)"
if fp_wait_for 30 "sink ready" status_is "$S" /readyz 200; then pass "database back: sink /readyz 200"; else fail "database back: sink /readyz 200"; fi
wait_gen
N2=$(grep -c '^valid ' "$STATE/manifest-$((SEED + 1))")
if fp_wait_for 60 "$((N1 + N2)) rows" rows_are "$((N1 + N2))"; then pass "after the outage: $((N1 + N2)) rows"; else fail "after the outage: rows" "rows: $(row_count)"; fi
[ "$(fp_metric "$S" fleetpipe_sink_batch_retries_total)" -gt 0 ] && pass "the outage was retried, not dropped" ||
    fail "the outage was retried" "retries: $(fp_metric "$S" fleetpipe_sink_batch_retries_total)"
expect_eq "the outage sent nothing to the DLQ" "$(sink_dlq)" 0

# 3. A row no column can hold (altitude beyond a real's range) among good ones: the sink's
# record check refuses it before the database would (code out_of_range).
ts=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)
{
    for i in 1 2 3 4; do
        echo "poison-test-$i|{\"schema\":1,\"device_id\":\"poison-test-$i\",\"ts\":\"$ts\",\"position\":{\"lat\":1,\"lon\":2,\"alt_m\":5}}"
    done
    echo "poison-test-5|{\"schema\":1,\"device_id\":\"poison-test-5\",\"ts\":\"$ts\",\"position\":{\"lat\":1,\"lon\":2,\"alt_m\":1e39}}"
} | kcat -P -b "$BROKERS" -t telemetry.enriched -K '|'
for i in 1 2 3 4; do echo "poison-test-$i $ts"; done >"$STATE/sent-good-beside-refused"
if fp_wait_for 30 "4 more rows" rows_are "$((N1 + N2 + 4))"; then pass "good rows beside a refused one are stored"; else fail "good rows beside a refused one are stored" "rows: $(row_count)"; fi
dlq_has_poison() { [ "$(sink_dlq)" = 1 ]; }
fp_wait_for 30 "the refused row in the DLQ" dlq_has_poison ||
    fail "the refused row reaches the DLQ within 30 s" "sink DLQ messages: $(sink_dlq)"
kcat -C -b "$BROKERS" -t telemetry.dlq -e -q -f '%k %h\n' 2>/dev/null | grep 'fp.error.stage=sink' >"$STATE/poison"
expect_eq "only the refused row is in the DLQ" "$(cut -d' ' -f1 "$STATE/poison")" "poison-test-5"
grep -q 'fp.error.code=out_of_range' "$STATE/poison" && grep -q 'fp.error.message=position.alt_m: .*outside the range' "$STATE/poison" &&
    pass "with code out_of_range and the field named" || fail "with code out_of_range and the field named" "$(cat "$STATE/poison")"

# 4. Two sink replicas in one group.
if "$STACK" start-svc "$STATE" sink 2; then pass "a second sink replica joins"; else fail "a second sink replica joins"; fi
feed_bg "$((SEED + 2))" 6000 2000
wait_gen
N3=$(grep -c '^valid ' "$STATE/manifest-$((SEED + 2))")
TOTAL=$((N1 + N2 + 4 + N3))
if fp_wait_for 60 "$TOTAL rows" rows_are "$TOTAL"; then pass "two replicas: $TOTAL rows"; else fail "two replicas: rows" "rows: $(row_count)"; fi
both_wrote() { [ "$(fp_metric "$(cat "$STATE/sink-2.port")" fleetpipe_sink_rows_inserted_total)" -gt 0 ]; }
both_wrote && pass "the second replica wrote rows" || fail "the second replica wrote rows"

# 5. Keys stored by someone else (another sink, an earlier run, a hand-written row): the batch's
# direct COPY into telemetry meets them and the batch goes again through the staging table; the
# rows already stored keep their values, the others are added, nothing goes to the DLQ.
ts=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)
psql_q "INSERT INTO telemetry (device_id, ts, format, alt_m) VALUES
        ('stored-test-1', '$ts', 'hand', 1), ('stored-test-2', '$ts', 'hand', 2)" >/dev/null
staged() { echo $(($(fp_metric "$S" fleetpipe_sink_staged_batches_total) + $(fp_metric "$(cat "$STATE/sink-2.port")" fleetpipe_sink_staged_batches_total))); }
STAGED0=$(staged)
for i in 1 2 3 4; do
    echo "stored-test-$i|{\"schema\":1,\"device_id\":\"stored-test-$i\",\"ts\":\"$ts\",\"position\":{\"lat\":1,\"lon\":2,\"alt_m\":9}}"
done | kcat -P -b "$BROKERS" -t telemetry.enriched -K '|'
for i in 1 2 3 4; do echo "stored-test-$i $ts"; done >"$STATE/sent-beside-stored"
TOTAL=$((TOTAL + 4))
if fp_wait_for 30 "$TOTAL rows" rows_are "$TOTAL"; then pass "rows beside keys stored by another writer are added"; else fail "rows beside keys stored by another writer are added" "rows: $(row_count) of $TOTAL"; fi
expect_eq "the stored rows keep their values, the new ones are written" \
    "$(psql_q "SELECT string_agg(device_id || ':' || coalesce(format, '-') || ':' || alt_m, ' ' ORDER BY device_id) FROM telemetry WHERE device_id LIKE 'stored-test-%'")" \
    "stored-test-1:hand:1 stored-test-2:hand:2 stored-test-3:-:9 stored-test-4:-:9"
[ "$(staged)" -gt "$STAGED0" ] && pass "that batch went through the staging table" ||
    fail "that batch went through the staging table" "fleetpipe_sink_staged_batches_total: $STAGED0 -> $(staged)"
expect_eq "keys stored by another writer send nothing to the DLQ" "$(sink_dlq)" 1

# 6. SINK_STREAM_COPY=off: both replicas again, now sending each batch whole when it is due
# (the path every streamed batch falls back to). A precondition that can fail: the replicas
# restarted with the setting, and each wrote rows of this feed.
"$STACK" stop-svc "$STATE" sink 2
"$STACK" stop-svc "$STATE" sink
if SINK_STREAM_COPY=off "$STACK" start-svc "$STATE" sink && SINK_STREAM_COPY=off "$STACK" start-svc "$STATE" sink 2; then
    pass "both replicas restart with SINK_STREAM_COPY=off"
else
    fail "both replicas restart with SINK_STREAM_COPY=off"
fi
S=$(cat "$STATE/sink.port")
tr '\0' '\n' <"/proc/$(cat "$STATE/sink.pid")/environ" 2>/dev/null | grep -qx 'SINK_STREAM_COPY=off' &&
    pass "the replica runs with SINK_STREAM_COPY=off" || fail "the replica runs with SINK_STREAM_COPY=off"
feed_bg "$((SEED + 3))" 6000 2000
wait_gen
N4=$(grep -c '^valid ' "$STATE/manifest-$((SEED + 3))")
TOTAL=$((TOTAL + N4))
if fp_wait_for 60 "$TOTAL rows" rows_are "$TOTAL"; then pass "COPY sent whole: $TOTAL rows"; else fail "COPY sent whole: rows" "rows: $(row_count) of $TOTAL"; fi
written() { fp_metric "$(cat "$STATE/$1.port")" fleetpipe_sink_rows_inserted_total; }
[ "$(written sink)" -gt 0 ] && [ "$(written sink-2)" -gt 0 ] && pass "both replicas wrote rows sent whole" ||
    fail "both replicas wrote rows sent whole" "inserted: $(written sink), $(written sink-2)"

# 7. With SINK_COMMIT_OVERLAP=on a commit that waits for the database does not stop the sink
# reading: a session holds a lock on fleetpipe_offsets, so the first batch's commit waits
# at its offsets; the sink must still read the rows after it, and commit nothing meanwhile
# (precondition: the lock really holds the batch). With overlap off the sink would read nothing
# more. Once the lock goes, every row is stored exactly once.
"$STACK" stop-svc "$STATE" sink 2
"$STACK" stop-svc "$STATE" sink
SINK_COMMIT_OVERLAP=${SINK_COMMIT_OVERLAP:-on} SINK_BATCH_MAX=500 "$STACK" start-svc "$STATE" sink ||
    fail "the sink restarts with SINK_COMMIT_OVERLAP=on SINK_BATCH_MAX=500"
S=$(cat "$STATE/sink.port")
PGAPPNAME=fp-lock-holder "$ROOT/deploy/local/pg.sh" psql "$STATE" -At \
    -c "BEGIN" -c "LOCK TABLE fleetpipe_offsets IN SHARE MODE" -c "SELECT pg_sleep(120)" >/dev/null 2>&1 &
LOCKER=$!
IT_PIDS="$LOCKER"
locked() { [ "$(psql_q "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'fp-lock-holder' AND l.relation = 'fleetpipe_offsets'::regclass AND l.granted")" = 1 ]; }
fp_wait_for 30 "the lock on fleetpipe_offsets" locked || fail "a session locks fleetpipe_offsets"
consumed() { fp_metric "$S" fleetpipe_messages_consumed_total; }
C0=$(consumed)
I0=$(fp_metric "$S" fleetpipe_sink_rows_inserted_total)
ts0=$(date +%s)
lock_rows() { # FROM TO: records of device lock-test, FROM .. TO seconds before now
    awk -v a="$1" -v b="$2" -v t="$ts0" 'BEGIN { for (i = a; i <= b; i++) printf "lock-test|{\"schema\":1,\"device_id\":\"lock-test\",\"ts\":\"%s\",\"position\":{\"lat\":1,\"lon\":2}}\n", strftime("%Y-%m-%dT%H:%M:%S.000Z", t - i, 1) }'
}
read_one() { [ "$(consumed)" -ge "$((C0 + 1))" ]; }
lock_rows 1 1 | kcat -P -b "$BROKERS" -t telemetry.enriched -K '|'
fp_wait_for 30 "the first row read" read_one || fail "the sink reads the first row" "consumed: $C0 -> $(consumed)"
lock_rows 2 1200 | kcat -P -b "$BROKERS" -t telemetry.enriched -K '|'
read_on() { [ "$(consumed)" -ge "$((C0 + 2))" ]; }
if fp_wait_for 30 "more rows read while the commit waits" read_on; then
    I1=$(fp_metric "$S" fleetpipe_sink_rows_inserted_total)
    expect_eq "while a commit waits for a lock the sink reads on (read $(($(consumed) - C0))), committing nothing" "$I1" "$I0"
else
    fail "while a commit waits for a lock the sink reads on" "consumed: $C0 -> $(consumed)"
fi
psql_q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'fp-lock-holder'" >/dev/null
fp_stop_pid "$LOCKER" 10 >/dev/null 2>&1
IT_PIDS=""
lock_rows 1 1200 | cut -d'|' -f2 | sed 's/.*"ts":"\([^"]*\)".*/lock-test \1/' >"$STATE/sent-during-lock"
TOTAL=$((TOTAL + 1200))
if fp_wait_for 60 "$TOTAL rows" rows_are "$TOTAL"; then pass "after the lock: $TOTAL rows"; else fail "after the lock: rows" "rows: $(row_count) of $TOTAL"; fi

# 8. Still with SINK_COMMIT_OVERLAP=on, the paths a committing batch can leave its fast path by:
# keys another writer stored (its COPY meets them after the sink moved on to the next batch: it
# goes again through the staging table), and a database outage under load (a commit may be
# outstanding when the database goes). Rows exact afterwards.
ts=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)
psql_q "INSERT INTO telemetry (device_id, ts, format, alt_m) VALUES ('overlap-stored-1', '$ts', 'hand', 1)" >/dev/null
STAGED0=$(fp_metric "$S" fleetpipe_sink_staged_batches_total)
for i in 1 2; do
    echo "overlap-stored-$i|{\"schema\":1,\"device_id\":\"overlap-stored-$i\",\"ts\":\"$ts\",\"position\":{\"lat\":1,\"lon\":2,\"alt_m\":9}}"
done | kcat -P -b "$BROKERS" -t telemetry.enriched -K '|'
for i in 1 2; do echo "overlap-stored-$i $ts"; done >"$STATE/sent-overlap-stored"
TOTAL=$((TOTAL + 2))
if fp_wait_for 30 "$TOTAL rows" rows_are "$TOTAL"; then pass "overlap on: rows beside a stored key are added"; else fail "overlap on: rows beside a stored key are added" "rows: $(row_count) of $TOTAL"; fi
expect_eq "overlap on: the stored row keeps its values, the new one is written" \
    "$(psql_q "SELECT string_agg(device_id || ':' || coalesce(format, '-') || ':' || alt_m, ' ' ORDER BY device_id) FROM telemetry WHERE device_id LIKE 'overlap-stored-%'")" \
    "overlap-stored-1:hand:1 overlap-stored-2:-:9"
[ "$(fp_metric "$S" fleetpipe_sink_staged_batches_total)" -gt "$STAGED0" ] && pass "overlap on: that batch went through the staging table" ||
    fail "overlap on: that batch went through the staging table" "fleetpipe_sink_staged_batches_total: $STAGED0 -> $(fp_metric "$S" fleetpipe_sink_staged_batches_total)"
feed_bg "$((SEED + 4))" 8000 2000
fp_wait_for 30 "rows to arrive" rows_above "$TOTAL" || fail "overlap on: rows arrive before the outage" "rows: $(row_count)"
"$ROOT/deploy/local/pg.sh" pause "$STATE" || fail "PostgreSQL stops (pg.sh pause)"
fp_wait_for 15 "sink not ready" status_is "$S" /readyz 503 || fail "overlap on: database down: sink /readyz 503"
"$ROOT/deploy/local/pg.sh" resume "$STATE" || fail "PostgreSQL starts again (pg.sh resume)"
wait_gen
N5=$(grep -c '^valid ' "$STATE/manifest-$((SEED + 4))")
TOTAL=$((TOTAL + N5))
if fp_wait_for 60 "$TOTAL rows" rows_are "$TOTAL"; then pass "overlap on: after an outage under load, $TOTAL rows"; else fail "overlap on: after an outage under load" "rows: $(row_count) of $TOTAL"; fi
expect_eq "overlap on: nothing more in the DLQ" "$(sink_dlq)" 1

# Exactly the distinct valid observations, each once.
cat "$STATE"/manifest-* | awk '$1 == "valid" {print $2, $3}' | sort >"$STATE/expected"
psql_q "SELECT device_id, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM telemetry
        WHERE device_id NOT LIKE 'poison-test-%' AND device_id NOT LIKE 'stored-test-%' AND device_id <> 'lock-test' AND device_id NOT LIKE 'overlap-stored-%'" | tr '|' ' ' | sort >"$STATE/actual"
expect_files_eq "the table holds exactly fleet-sim's distinct observations" "$STATE/actual" "$STATE/expected"
# The whole table against every key sent (fleet-sim's four runs and the four good rows beside
# the refused one, the four beside stored keys): as many rows as distinct keys sent, none missing, none extra.
{ sent_keys "$STATE"/manifest-*; cat "$STATE/sent-good-beside-refused" "$STATE/sent-beside-stored" "$STATE/sent-during-lock" "$STATE/sent-overlap-stored"; } | sort -u >"$STATE/sent_keys"
expect_keys_stored "the table holds exactly the distinct keys sent, none missing, none extra" "$STATE/sent_keys"

finish sink
