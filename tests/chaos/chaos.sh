#!/usr/bin/env bash
# make chaos: the fault-injection suite. While fleet-sim feeds known content (resends and 5 %
# damaged frames) through the embedded stack, it kills services with SIGKILL at random moments
# (at least 10 kills, each followed by a restart), kills the broker with SIGKILL and restarts
# it on its log folder after 10 s, hangs it with SIGSTOP for 10 s, stops
# PostgreSQL for 10 s, makes the lookup stub fail every request for 10 s and then answer in 2 s
# for 10 s, scales the enricher to two replicas and back, and stops every service once with
# SIGTERM. Then it checks: the database holds exactly fleet-sim's distinct valid observations,
# once each, with their positions; the DLQ holds exactly the damaged frames (each at least once:
# at-least-once between stages may repeat one after a kill) with their codes; every service is
# running and ready; memory stayed bounded. It prints what it injected and what it checked;
# CHAOS_SEED replays a run.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/../integration/lib.sh"
it_init chaos
SEED=${CHAOS_SEED:-$((RANDOM % 100000 + 1))}
RECORDS=${CHAOS_RECORDS:-50000}
RATE=${CHAOS_RATE:-700}
export PARTITIONS=16 ENRICH_LOOKUPS=stub FLEET_SEED=$SEED FLEET_SITES=8
export DELIVERY=${DELIVERY:-at-least-once}
export SHUTDOWN_TIMEOUT_MS=5000 ENRICH_TIMEOUT_MS=3000 ENRICH_RETRIES=1 ENRICH_CB_OPEN_MS=2000
RANDOM=$SEED # the injection schedule follows the seed too
IT_REPLAY="replay with CHAOS_SEED=$SEED"
INJECTED=()
KILLS=0
KILL_TRIES=0   # kill9 calls, counted or not: the closing loop ends on these
LOADED_KILLS=0 # kills under load (see under_load)

log() { printf '[%4ss] %s\n' "$(($(date +%s) - START))" "$*"; }
inject() {
    INJECTED+=("$*")
    log "inject: $*"
}

gen_running() { kill -0 "$GEN" 2>/dev/null; }
# under_load: fleet-sim is still sending, or (finished) the table still lacks some of the distinct
# observations its summary counts, so the pipeline still has a backlog to write.
under_load() {
    gen_running && return 0
    local distinct
    distinct=$(grep -o '"distinct":[0-9]*' "$STATE/sim.json" 2>/dev/null | cut -d: -f2)
    [ -n "$distinct" ] && [ "$(row_count)" -lt "$distinct" ]
}
stub() { curl -fsS -X POST "http://127.0.0.1:$(cat "$STATE/stub.port")$1" >/dev/null; }
ready() { [ "$(http_status "$(cat "$STATE/$1.port")" /readyz)" = 200 ]; }

# kill9 SVC: SIGKILL then restart. A kill counts only when the service was alive before it and
# gone after it (a failure is recorded otherwise); LOADED_KILLS counts those made under load.
kill9() {
    local pid
    pid=$(cat "$STATE/$1.pid" 2>/dev/null) || pid=""
    inject "kill -9 $1"
    KILL_TRIES=$((KILL_TRIES + 1))
    if [ -z "$pid" ] || ! _fp_alive "$pid"; then
        fail "$1 alive when it is to be killed" "pid file: '${pid}'"
    else
        local loaded=0
        under_load && loaded=1
        "$STACK" stop-svc "$STATE" "$1" --kill
        if _fp_alive "$pid"; then
            fail "$1 (pid $pid) dies on SIGKILL"
        else
            KILLS=$((KILLS + 1))
            LOADED_KILLS=$((LOADED_KILLS + loaded))
        fi
    fi
    "$STACK" start-svc "$STATE" "$1" || fail "$1 restarts after kill -9"
}

# pause_for SECONDS: the length of an injected fault (pacing the fault, not synchronising).
pause_for() { sleep "$1"; }

echo "chaos seed $SEED, $RECORDS records at $RATE/s, DELIVERY=$DELIVERY (replay with CHAOS_SEED=$SEED)"
START=$(date +%s)
it_start_stack

"$BIN/fleet-sim" --brokers "$BROKERS" --devices 100 --records "$RECORDS" --rate "$RATE" \
    --seed "$SEED" --retransmit-rate 0.03 --corrupt-rate 0.05 --manifest "$STATE/manifest" \
    >"$STATE/sim.json" 2>"$STATE/sim.log" &
GEN=$!
log "fleet-sim started"

SVCS=(parser enricher sink)
random_kill() { kill9 "${SVCS[$((RANDOM % 3))]}"; pause_for $((RANDOM % 3 + 1)); }

pause_for 3
for s in parser enricher sink; do kill9 "$s"; pause_for 2; done
inject "broker killed with SIGKILL, down for 10 s, restarted on its log folder"
"$STACK" kafka "$STATE" kill || fail "the broker is killed with SIGKILL"
pause_for 10
"$STACK" kafka "$STATE" restart || fail "the broker restarts after kill -9"
log "broker back"
random_kill
inject "broker hangs (SIGSTOP) for 10 s"
"$STACK" kafka "$STATE" pause || fail "the broker hangs (SIGSTOP)"
pause_for 10
"$STACK" kafka "$STATE" resume || fail "the broker resumes (SIGCONT)"
log "broker resumed (SIGCONT)"
random_kill
random_kill
inject "PostgreSQL stopped for 10 s"
# The outage is to hit the sink under load: fleet-sim still sending, or rows still to write.
if under_load; then
    pass "PostgreSQL stopped under load ($(row_count) rows so far, fleet-sim $(gen_running && echo sending || echo done))"
else
    fail "PostgreSQL stopped under load" "nothing left to write: $(row_count) rows, fleet-sim: $(cat "$STATE/sim.json")"
fi
"$ROOT/deploy/local/pg.sh" pause "$STATE" || fail "PostgreSQL stops (pg.sh pause)"
pause_for 10
"$ROOT/deploy/local/pg.sh" resume "$STATE" || fail "PostgreSQL starts again (pg.sh resume)"
log "PostgreSQL back"
random_kill
inject "lookup stub fails every request for 10 s"
stub "/control?error_rate=1" || fail "the lookup stub takes error_rate=1"
pause_for 10
inject "lookup stub answers in 2 s for 10 s"
stub "/control?error_rate=0&latency_ms=2000" || fail "the lookup stub takes latency_ms=2000"
pause_for 10
stub "/control?latency_ms=0" || fail "the lookup stub takes latency_ms=0"
log "lookup stub healthy"
inject "enricher scaled to 2 replicas"
"$STACK" start-svc "$STATE" enricher 2 || fail "second enricher replica starts"
random_kill
random_kill
inject "enricher scaled back to 1 replica (SIGTERM)"
"$STACK" stop-svc "$STATE" enricher 2
for s in parser enricher sink; do
    inject "SIGTERM $s, restart"
    "$STACK" stop-svc "$STATE" "$s"
    "$STACK" start-svc "$STATE" "$s" || fail "$s restarts after SIGTERM"
done
while [ "$KILL_TRIES" -lt 10 ] || gen_running; do
    if [ "$KILL_TRIES" -lt 12 ]; then random_kill; else pause_for 1; fi
done
wait "$GEN"
GEN=""
log "fleet-sim done: $(cat "$STATE/sim.json")"
[ "$KILLS" -ge 10 ] && pass "$KILLS services killed with SIGKILL and restarted" || fail "at least 10 kills" "$KILLS"
# The first round (parser, enricher, sink, 3 s after fleet-sim starts) at least is mid-run.
[ "$LOADED_KILLS" -ge 3 ] && pass "$LOADED_KILLS of the kills under load (mid-run)" ||
    fail "at least 3 kills under load (mid-run)" "$LOADED_KILLS of $KILLS"

DISTINCT=$(grep -c '^valid ' "$STATE/manifest")
CORRUPT=$(grep -c '^corrupt ' "$STATE/manifest")
if fp_wait_for 240 "$DISTINCT rows" rows_are "$DISTINCT"; then
    pass "all $DISTINCT distinct valid observations stored"
else
    fail "all $DISTINCT distinct valid observations stored" "rows: $(row_count)"
fi

awk '$1 == "valid" {print $2, $3, $4, $5}' "$STATE/manifest" | sort >"$STATE/expected_rows"
psql_q "SELECT device_id, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
               coalesce(to_char(lat, 'FM990.0000000'), '-'), coalesce(to_char(lon, 'FM9990.0000000'), '-')
        FROM telemetry" | tr '|' ' ' | sort >"$STATE/actual_rows"
if diff -q "$STATE/actual_rows" "$STATE/expected_rows" >/dev/null; then
    pass "the database holds exactly the distinct valid observations, with their positions"
else
    fail "the database holds exactly the distinct valid observations" \
        "missing: $(comm -13 "$STATE/actual_rows" "$STATE/expected_rows" | head -n 5 | tr '\n' ';')" \
        "unexpected: $(comm -23 "$STATE/actual_rows" "$STATE/expected_rows" | head -n 5 | tr '\n' ';')"
fi
# Each once, by key: as many rows as distinct keys fleet-sim sent, none missing, none extra.
sent_keys "$STATE/manifest" >"$STATE/sent_keys"
expect_keys_stored "each distinct key sent stored once, none missing, none extra" "$STATE/sent_keys"

# The DLQ: every damaged frame, with its code, and nothing else. fleet-sim's manifest names each
# damaged frame by the digest of its bytes and its key. A frame may reach the DLQ more than once
# (read again after a kill; written twice after a broker fault) — from the same or
# from another raw offset — and two damaged frames can be byte-identical; so per (digest, key)
# the DLQ must hold at least as many distinct raw offsets as the manifest has frames.
awk '$1 == "corrupt" {print $3, $4, $2}' "$STATE/manifest" | sort | uniq -c |
    awk '{print $2, $3, $4, $1}' >"$STATE/expected_dlq"
dlq_complete() {
    "$BIN/fp-dlq" --brokers "$BROKERS" >"$STATE/dlq.txt" 2>/dev/null || return 1
    awk '{print $1, $5, $2, $4}' "$STATE/dlq.txt" | sort -u | awk '{print $1, $2, $3}' | uniq -c |
        awk '{print $2, $3, $4, $1}' >"$STATE/actual_dlq"
    # Every expected frame present at least as often, with its code...
    join -a1 -e 0 -o 1.1,1.2,1.3,1.4,2.4 <(awk '{print $1"/"$2"/"$3, $1, $3, $4}' "$STATE/expected_dlq" | sort) \
        <(awk '{print $1"/"$2"/"$3, $1, $3, $4}' "$STATE/actual_dlq" | sort) |
        awk '$5 < $4 { bad++ } END { exit bad > 0 }'
}
if fp_wait_for 90 "every damaged frame in the DLQ" dlq_complete; then
    pass "the DLQ holds every damaged frame, with its code"
else
    fail "the DLQ holds every damaged frame, with its code" \
        "missing: $(join -v1 <(awk '{print $1"/"$2"/"$3}' "$STATE/expected_dlq" | sort) <(awk '{print $1"/"$2"/"$3}' "$STATE/actual_dlq" | sort) | head -n 5 | tr '\n' ' ')"
fi
# ...and nothing that is not one of them.
expect_eq "nothing in the DLQ that was not a damaged frame" \
    "$(join -v2 <(awk '{print $1"/"$2"/"$3}' "$STATE/expected_dlq" | sort) <(awk '{print $1"/"$2"/"$3}' "$STATE/actual_dlq" | sort) | wc -l)" 0
expect_eq "nothing but parser rejects in the DLQ (no good data spilled)" \
    "$(cut -d' ' -f3 "$STATE/dlq.txt" | sort -u | tr '\n' ' ')" "parser "
echo "   DLQ: $(wc -l <"$STATE/dlq.txt") messages from $(cut -d' ' -f4 "$STATE/dlq.txt" | sort -u | wc -l) raw offsets, $CORRUPT damaged frames sent"

for s in parser enricher sink; do
    if fp_wait_for 30 "$s ready" ready "$s"; then pass "$s running and ready"; else fail "$s running and ready"; fi
    rss=$(fp_metric "$(cat "$STATE/$s.port")" process_resident_memory_bytes)
    [ "$rss" -lt $((100 * 1024 * 1024)) ] && pass "$s memory bounded ($((rss / 1024 / 1024)) MiB)" ||
        fail "$s memory bounded" "rss $rss"
done

echo
echo "== chaos report (seed $SEED)"
printf '   injected: %s\n' "${INJECTED[@]}"
echo "   fleet-sim: $(cat "$STATE/sim.json")"
echo "   rows: $(row_count) of $DISTINCT distinct valid; DLQ: $(wc -l <"$STATE/dlq.txt") messages for $CORRUPT damaged frames"
echo "   duration: $(($(date +%s) - START)) s"
finish chaos
