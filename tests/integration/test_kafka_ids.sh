#!/usr/bin/env bash
# The embedded broker's cluster ids are valid for kafka-storage: 22 characters of URL-safe
# base64, never starting with '-' (which kafka-storage reads as an option; before the fix one
# start in 64 failed with "argument --cluster-id/-t: expected one argument"). 1000 ids make a
# regression all but certain to show: (63/64)^1000 < 2e-7.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
it_init kafka-ids
ids=$(for _ in $(seq 1000); do "$ROOT/deploy/local/kafka.sh" cluster-id; done)
expect_eq "1000 ids" "$(printf '%s\n' "$ids" | wc -l)" 1000
expect_eq "none starts with '-'" "$(printf '%s\n' "$ids" | grep -c '^-')" 0
expect_eq "each is 22 URL-safe base64 characters" \
    "$(printf '%s\n' "$ids" | grep -cvE '^[A-Za-z0-9_-]{22}$')" 0
expect_eq "all differ" "$(printf '%s\n' "$ids" | sort -u | wc -l)" 1000
finish kafka-ids
