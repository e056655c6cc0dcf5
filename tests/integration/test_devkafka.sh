#!/usr/bin/env bash
# The fallback broker for a machine without Java: the whole pipeline on devkafka (librdkafka's
# mock cluster, FP_KAFKA=devkafka) stores exactly fleet-sim's distinct valid observations and
# sends exactly its damaged frames to the DLQ. One smoke test; every other test runs on Apache
# Kafka.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
it_init devkafka
export FP_KAFKA=devkafka PARTITIONS=4 ENRICH_LOOKUPS=off
SEED=${FLEET_SEED:-$((RANDOM % 1000 + 1))}
IT_REPLAY="replay with FLEET_SEED=$SEED"
echo "fleet-sim seed $SEED ($IT_REPLAY)"

it_start_stack
if [ -f "$STATE/devkafka.pid" ] && [ ! -d "$STATE/kafka" ]; then
    pass "the stack runs on devkafka"
else
    fail "the stack runs on devkafka" "no devkafka.pid in $STATE"
fi
if "$BIN/fleet-sim" --brokers "$BROKERS" --devices 20 --records 2000 --seed "$SEED" \
    --retransmit-rate 0.05 --corrupt-rate 0.05 --manifest "$STATE/manifest" >"$STATE/sim.json"; then
    pass "fleet-sim delivered everything"
else
    fail "fleet-sim delivered everything"
fi
N=$(grep -c '^valid ' "$STATE/manifest")
D=$(grep -c '^corrupt ' "$STATE/manifest")
if fp_wait_for 60 "$N rows and $D dead letters" counts_are "$N" "$D"; then
    pass "$N rows and $D DLQ messages"
else
    fail "$N rows and $D DLQ messages" "rows $(row_count), DLQ $(dlq_count)"
fi
finish devkafka
