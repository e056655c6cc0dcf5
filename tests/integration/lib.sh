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
