# Helpers for the integration tests (sourced). Each test script counts its checks and ends
# with "NAME: N passed, N failed"; a failed check prints what was expected and what was seen.

TESTS_PASSED=0
TESTS_FAILED=0

pass() {
    TESTS_PASSED=$((TESTS_PASSED + 1))
    echo "ok   $1"
}

fail() {
    TESTS_FAILED=$((TESTS_FAILED + 1))
    echo "FAIL $1" >&2
    shift
    [ $# -gt 0 ] && printf '     %s\n' "$@" >&2
    return 0
}

# expect_eq NAME ACTUAL EXPECTED
expect_eq() {
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "expected: $3" "actual:   $2"; fi
}

# expect_files_eq NAME ACTUAL_FILE EXPECTED_FILE: shows the first differing lines on failure.
expect_files_eq() {
    if diff -q "$2" "$3" >/dev/null; then
        pass "$1"
    else
        fail "$1" "$(diff "$3" "$2" | head -n 20)"
    fi
}

# http_status PORT PATH: prints the HTTP status code of a GET on loopback.
http_status() {
    curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1$2" || true
}

finish() {
    echo "$1: $TESTS_PASSED passed, $TESTS_FAILED failed"
    [ "$TESTS_FAILED" -eq 0 ]
}

# it_init NAME: what every integration test starts with. Sets ROOT, BIN (absolute), STACK and a
# fresh STATE folder, sources deploy/local/lib.sh, and installs the cleanup: stop whatever the
# stack started (and a generator in GEN), keep the logs when a check failed or KEEP_LOGS=1.
it_init() {
    IT_NAME=$1
    ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    # shellcheck source=deploy/local/lib.sh
    . "$ROOT/deploy/local/lib.sh"
    BIN=${BIN:-bin}
    case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac
    export BIN
    STACK="$ROOT/deploy/local/stack.sh"
    STATE=$(mktemp -d "/tmp/fleetpipe-$1.XXXXXX")
    GEN=""
    trap it_cleanup EXIT
}

it_cleanup() {
    [ -n "${GEN:-}" ] && fp_stop_pid "$GEN" 5 >/dev/null 2>&1
    # Other background processes a test started (IT_PIDS: their PIDs, space-separated).
    for p in ${IT_PIDS:-}; do fp_stop_pid "$p" 5 >/dev/null 2>&1; done
    "$STACK" stop "$STATE" >/dev/null 2>&1
    if [ "$TESTS_FAILED" -ne 0 ] || [ "${KEEP_LOGS:-0}" = 1 ]; then
        echo "logs kept in $STATE${IT_REPLAY:+ ($IT_REPLAY)}" >&2
    else
        rm -rf "$STATE"
    fi
}

# it_start_stack: starts the embedded stack or ends the test; sets BROKERS.
it_start_stack() {
    if ! "$STACK" start "$STATE"; then
        fail "stack starts" "$(tail -n 30 "$STATE"/*.log 2>/dev/null)"
        finish "$IT_NAME"
        exit 1
    fi
    pass "stack starts"
    BROKERS=$(cat "$STATE/bootstrap")
}

psql_q() { "$ROOT/deploy/local/pg.sh" psql "$STATE" -At -c "$1"; }
row_count() { psql_q "SELECT count(*) FROM telemetry" 2>/dev/null || echo -1; }
rows_are() { [ "$(row_count)" = "$1" ]; }
dlq_count() { kcat -C -b "$BROKERS" -t telemetry.dlq -e -q -f 'x\n' 2>/dev/null | wc -l; }
counts_are() { [ "$(row_count)" = "$1" ] && [ "$(dlq_count)" = "$2" ]; }
status_is() { [ "$(http_status "$1" "$2")" = "$3" ]; }

# sent_keys MANIFEST...: prints the distinct (device_id, ts) keys that fp-gen's or fleet-sim's
# manifests list as valid observations, one "DEVICE_ID TS" line each, sorted and without repeats.
# Those are the keys the generators sent; the database is never asked.
sent_keys() { awk '$1 == "valid" {print $2, $3}' "$@" | sort -u; }

# expect_keys_stored NAME KEYS_FILE [WHERE]: checks that the rows of telemetry (those matching the
# SQL condition WHERE, when given) are exactly the keys in KEYS_FILE ("DEVICE_ID TS" lines, no
# repeats, as sent_keys prints them): as many rows as distinct keys sent, no key sent missing from
# the table, no row whose key was not sent. It loads the keys into a temporary table with psql's
# \copy and counts both anti-joins in the database; on a failure it names up to 5 keys of each.
expect_keys_stored() {
    local name=$1 keys=$2 where=${3:-true} sent got
    sent=$(wc -l <"$keys")
    local load="CREATE TEMP TABLE sent_keys (device_id text NOT NULL, ts timestamptz NOT NULL)"
    local copy="\\copy sent_keys FROM pstdin WITH (FORMAT text, DELIMITER ' ')"
    local missing="SELECT s.device_id, s.ts FROM sent_keys s WHERE NOT EXISTS
        (SELECT 1 FROM telemetry t WHERE t.device_id = s.device_id AND t.ts = s.ts)"
    local unexpected="SELECT t.device_id, t.ts FROM telemetry t WHERE ($where) AND NOT EXISTS
        (SELECT 1 FROM sent_keys s WHERE s.device_id = t.device_id AND s.ts = t.ts)"
    got=$("$ROOT/deploy/local/pg.sh" psql "$STATE" -At -F ' ' -c "$load" -c "$copy" \
        -c "SELECT 'rows=' || (SELECT count(*) FROM telemetry WHERE ($where)),
                   'sent=' || (SELECT count(DISTINCT (device_id, ts)) FROM sent_keys),
                   'missing=' || (SELECT count(*) FROM ($missing) m),
                   'unexpected=' || (SELECT count(*) FROM ($unexpected) u)" \
        -c "SELECT 'missing:', * FROM ($missing ORDER BY 1, 2 LIMIT 5) m" \
        -c "SELECT 'unexpected:', * FROM ($unexpected ORDER BY 1, 2 LIMIT 5) u" <"$keys" 2>&1)
    local lines
    mapfile -t lines <<<"$got"
    if [ "${lines[0]}" = "rows=$sent sent=$sent missing=0 unexpected=0" ]; then
        pass "$name"
    else
        fail "$name" "expected: rows=$sent sent=$sent missing=0 unexpected=0 ($keys)" \
            "actual:   ${lines[0]}" "${lines[@]:1}"
    fi
}
