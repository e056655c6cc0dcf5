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
