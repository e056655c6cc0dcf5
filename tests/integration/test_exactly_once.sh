#!/usr/bin/env bash
# DELIVERY=exactly-once on the real broker, checked from outside with Kafka's own console
# consumer in read_committed mode:
#   1. while fleet-sim feeds, parser-svc and enricher-svc are killed with SIGKILL (three times
#      each, mid-transaction); afterwards telemetry.parsed and telemetry.enriched hold every
#      observation exactly once, and the database holds each once;
#   2. the killed services left aborted transactions behind (a read_uncommitted consumer sees
#      more records than a read_committed one), and read_committed never shows them;
#   3. a second parser replica started with the first one's TRANSACTIONAL_ID fences the first,
#      which stops; nothing is written twice.
# fleet-sim sends no resends here, so every (device_id, ts) is one input message's record.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
it_init eos
export PARTITIONS=8 ENRICH_LOOKUPS=off DELIVERY=exactly-once
# Transactions stay open for up to a second (a stage commits earlier when its input runs dry).
export TXN_INTERVAL_MS=1000
SEED=${FLEET_SEED:-$((RANDOM % 1000 + 1))}
IT_REPLAY="replay with FLEET_SEED=$SEED"
echo "fleet-sim seed $SEED ($IT_REPLAY)"
KAFKA="$ROOT/deploy/local/kafka.sh"

gen_done() { ! kill -0 "$GEN" 2>/dev/null; }
rows_above() { [ "$(row_count)" -gt "$1" ]; }
svc_gone() { ! kill -0 "$1" 2>/dev/null; }

# feed_bg SEED RECORDS RATE: fleet-sim in the background, no resends, no damage.
feed_bg() {
    "$BIN/fleet-sim" --brokers "$BROKERS" --devices 60 --records "$2" --rate "$3" --seed "$1" \
        --retransmit-rate 0 --corrupt-rate 0 --manifest "$STATE/manifest-$1" >"$STATE/sim-$1.json" &
    GEN=$!
}

# read_topic TOPIC ISOLATION OUT: every message of TOPIC as one line "device_id ts", read by
# Kafka's console consumer until no message came for 8 s.
read_topic() {
    "$KAFKA" tool console-consumer --bootstrap-server "$BROKERS" --topic "$1" --from-beginning \
        --isolation-level "$2" --timeout-ms 8000 2>"$STATE/consumer-$1-$2.log" |
        sed -n 's/.*"device_id":"\([^"]*\)","ts":"\([^"]*\)".*/\1 \2/p' >"$3"
}

# check_exactly_once NAME FILE EXPECTED_KEYS: FILE (one key per line) holds each expected key
# exactly once.
check_exactly_once() {
    local dups
    dups=$(sort "$2" | uniq -d | wc -l)
    expect_eq "$1: no record twice" "$dups" 0
    expect_files_eq "$1: exactly the observations sent" <(sort -u "$2") "$3"
}

it_start_stack
P=$(cat "$STATE/parser.port")

# 1. Kills mid-feed.
# stopped_in_txn SVC: SIGSTOP SVC's replica and ask Kafka's transaction coordinator about its
# transaction; true, leaving it stopped, when that transaction is open and holds output
# partitions (records were sent into it); otherwise SIGCONT and false. A kill that follows
# cuts a transaction for certain, where a kill timed by the metrics may land between two.
stopped_in_txn() {
    local pid
    pid=$(cat "$STATE/$1.pid")
    kill -STOP "$pid" || return 1
    if "$KAFKA" tool transactions --bootstrap-server "$BROKERS" describe \
        --transactional-id "fleetpipe-$1" 2>>"$STATE/transactions-$1.log" |
        tee -a "$STATE/transactions-$1.out" |
        awk '$5 == "Ongoing" && $9 ~ /telemetry\./ { open = 1 } END { exit !open }'; then
        return 0
    fi
    kill -CONT "$pid"
    return 1
}
# produced SVC: the running replica of SVC has had records delivered (inside a transaction).
produced() { [ "$(fp_metric "$(cat "$STATE/$1.port")" fleetpipe_records_produced_total)" -gt 0 ]; }
# kill_mid_txn SVC ROUND: SIGKILL while SVC's transaction is open with records in it, restart.
kill_mid_txn() {
    fp_wait_for 60 "$1 producing" produced "$1" || fail "$1 produces before kill $2"
    fp_wait_for 90 "$1 inside an open transaction" stopped_in_txn "$1" ||
        fail "$1 is found inside an open transaction before kill $2"
    "$STACK" stop-svc "$STATE" "$1" --kill
    "$STACK" start-svc "$STATE" "$1" || fail "$1 restarts after kill -9 ($2)"
}
feed_bg "$SEED" 150000 2000
fp_wait_for 60 "rows to arrive" rows_above 500
for round in 1 2 3; do
    kill_mid_txn parser "$round"
    kill_mid_txn enricher "$round"
done
if gen_done; then
    fail "the kills happened while fleet-sim was feeding" "fleet-sim finished before the last kill"
else
    pass "three kills each of parser and enricher while fleet-sim was feeding"
fi
fp_wait_for 120 "fleet-sim" gen_done
wait "$GEN"
GEN=""
sed -n 's/^valid \([^ ]*\) \([^ ]*\).*/\1 \2/p' "$STATE/manifest-$SEED" | sort -u >"$STATE/expected"
N=$(wc -l <"$STATE/expected")
if fp_wait_for 90 "$N rows" rows_are "$N"; then pass "database: $N rows"; else fail "database: $N rows" "rows: $(row_count)"; fi
psql_q "SELECT device_id || ' ' || to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM telemetry" |
    sort >"$STATE/db"
expect_files_eq "database: exactly the observations sent" "$STATE/db" "$STATE/expected"

read_topic telemetry.parsed read_committed "$STATE/parsed"
read_topic telemetry.enriched read_committed "$STATE/enriched"
check_exactly_once "telemetry.parsed (read_committed)" "$STATE/parsed" "$STATE/expected"
check_exactly_once "telemetry.enriched (read_committed)" "$STATE/enriched" "$STATE/expected"

# 2. The aborted transactions' records exist in the log but stay invisible.
read_topic telemetry.parsed read_uncommitted "$STATE/parsed-all"
read_topic telemetry.enriched read_uncommitted "$STATE/enriched-all"
ALL=$(($(wc -l <"$STATE/parsed-all") + $(wc -l <"$STATE/enriched-all")))
COMMITTED=$(($(wc -l <"$STATE/parsed") + $(wc -l <"$STATE/enriched")))
if [ "$ALL" -gt "$COMMITTED" ]; then
    pass "kills left aborted records ($((ALL - COMMITTED))) that read_committed does not show"
else
    fail "kills left aborted records that read_committed does not show" \
        "read_uncommitted $ALL, read_committed $COMMITTED: no transaction was cut by a kill"
fi

# 3. A zombie: a second parser with the first one's transactional.id fences the first.
OLD=$(cat "$STATE/parser.pid")
feed_bg "$((SEED + 1))" 6000 1500
fp_wait_for 30 "rows to arrive" rows_above "$N"
if TRANSACTIONAL_ID=fleetpipe-parser "$STACK" start-svc "$STATE" parser 2; then
    pass "a second parser with the same TRANSACTIONAL_ID starts"
else
    fail "a second parser with the same TRANSACTIONAL_ID starts"
fi
if fp_wait_for 60 "the fenced parser to stop" svc_gone "$OLD"; then
    pass "the first parser, fenced, stops"
else
    fail "the first parser, fenced, stops" "pid $OLD still runs"
fi
if grep -qi 'fenc' "$STATE/parser.log"; then pass "its log says it was fenced"; else fail "its log says it was fenced" "$(tail -n 5 "$STATE/parser.log")"; fi
rm -f "$STATE/parser.pid"
fp_wait_for 120 "fleet-sim" gen_done
wait "$GEN"
GEN=""
sed -n 's/^valid \([^ ]*\) \([^ ]*\).*/\1 \2/p' "$STATE/manifest-$SEED" "$STATE/manifest-$((SEED + 1))" |
    sort -u >"$STATE/expected2"
N2=$(wc -l <"$STATE/expected2")
if fp_wait_for 90 "$N2 rows" rows_are "$N2"; then pass "after the zombie: $N2 rows"; else fail "after the zombie: $N2 rows" "rows: $(row_count)"; fi
read_topic telemetry.parsed read_committed "$STATE/parsed2"
check_exactly_once "after the zombie: telemetry.parsed (read_committed)" "$STATE/parsed2" "$STATE/expected2"
[ -f "$STATE/parser-2.pid" ] && fp_stop_pid "$(cat "$STATE/parser-2.pid")" 20 && rm -f "$STATE/parser-2.pid"
expect_eq "parser 1 readiness port released" "$(http_status "$P" /readyz)" 000

finish exactly-once
