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

echo "== unit tests"
"$UNIT_TEST" 2>&1 | tee "$out"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
add_counts "$out"

for t in "$HERE"/integration/test_*.sh; do
    echo "== $(basename "$t")"
    start=$(date +%s)
    BIN="$BIN" "$t" 2>&1 | tee "$out"
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
    add_counts "$out"
    echo "   ($(($(date +%s) - start)) s)"
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] || status=1
exit "$status"
