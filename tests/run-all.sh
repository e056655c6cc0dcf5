#!/usr/bin/env bash
# Runs the whole suite: unit tests, then every tests/integration/test_*.sh. Prints each
# part's result and a closing "N passed, N failed" over all of them.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
passed=0
failed=0
status=0

# add_counts OUTPUT_FILE: adds the "N passed, N failed" of the part's last such line.
add_counts() {
    local line p f
    line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$1" | tail -n 1)
    if [ -z "$line" ]; then
        failed=$((failed + 1))
        return
    fi
    p=$(sed -E 's/.* ([0-9]+) passed.*/\1/' <<<"$line")
    f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
    passed=$((passed + p))
    failed=$((failed + f))
}

out=$(mktemp)
trap 'rm -f "$out"' EXIT

# Which broker the integration tests run on (deploy/local/kafka.sh; test_devkafka.sh alone uses
# the mock cluster).
echo "== broker: Apache Kafka $("$HERE/../deploy/local/kafka.sh" version) (single-node KRaft, deploy/local/kafka.sh)," \
    "librdkafka $(pkg-config --modversion rdkafka 2>/dev/null || echo unknown)"

echo "== unit tests"
"$UNIT_TEST" 2>&1 | tee "$out"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
add_counts "$out"

# The same unit tests built with -DFP_BYTE_LOOPS (make BYTE_LOOPS=1): the byte loops that
# machines other than little-endian ones run in place of the eight-byte scans.
if [ -n "${BYTES_UNIT_TEST:-}" ]; then
    echo "== unit tests with the byte loops (-DFP_BYTE_LOOPS)"
    "$BYTES_UNIT_TEST" 2>&1 | tee "$out"
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
    add_counts "$out"
fi

# Each decoder's fuzz harness, briefly (make fuzz runs them for longer).
if [ -n "${FUZZ_TARGETS:-}" ]; then
    echo "== fuzz smoke (${FUZZ_SMOKE_SECONDS:-8} s per decoder)"
    fp=0
    ff=0
    for t in $FUZZ_TARGETS; do
        work=$(mktemp -d)
        if "$FUZZ_BUILD/fuzz-$t" -max_total_time="${FUZZ_SMOKE_SECONDS:-8}" -print_final_stats=1 \
            -max_len=8192 -artifact_prefix="$work/" "$work" "$HERE/fuzz/seeds/$t" >"$out" 2>&1; then
            fp=$((fp + 1))
            echo "ok   fuzz $t: $(sed -n 's/^stat::number_of_executed_units: *//p' "$out") executions"
        else
            ff=$((ff + 1))
            echo "FAIL fuzz $t"
            grep -E 'ERROR|SUMMARY|oracle failed|Test unit written' "$out" | head -n 20
            cp "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$HERE/../build/" 2>/dev/null || true
        fi
        rm -rf "$work"
    done
    echo "fuzz: $fp passed, $ff failed"
    passed=$((passed + fp))
    failed=$((failed + ff))
    [ "$ff" -eq 0 ] || status=1
fi

# The deployment files (deploy/check.sh, also `make lint-deploy`).
echo "== deploy checks"
BIN="$BIN" "$HERE/../deploy/check.sh" 2>&1 | tee "$out"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
add_counts "$out"

# Every integration test, and the walking skeleton once more with Kafka transactions between
# the stages.
for t in "$HERE"/integration/test_*.sh exactly-once; do
    delivery=at-least-once
    if [ "$t" = exactly-once ]; then
        t="$HERE/integration/test_pipeline.sh"
        delivery=exactly-once
    fi
    echo "== $(basename "$t") (DELIVERY=$delivery)"
    start=$(date +%s)
    BIN="$BIN" DELIVERY=$delivery "$t" 2>&1 | tee "$out"
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
    add_counts "$out"
    echo "   ($(($(date +%s) - start)) s)"
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] || status=1
exit "$status"
