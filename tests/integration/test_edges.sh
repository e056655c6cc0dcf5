#!/usr/bin/env bash
# Nothing lost or stuck at the edges, on the real broker:
#  1. Oversized output is data: a raw message whose canonical record exceeds the producer's
#     message.max.bytes (set to 100 kB here) goes to the DLQ with code too_large as a claim
#     check (first bytes, fp.claim.sha256, fp.claim.length), and so does an undecodable raw
#     message too large for the DLQ with its headers; the parser keeps running and the good
#     record behind them in the same partition is stored.
#  2. The sink never commits an offset whose dead letter is not confirmed: while the DLQ topic
#     refuses the sink's dead letter (its max.message.bytes set below it), nothing of that batch
#     is committed, and once the topic takes it again the dead letter is sent again, then the
#     batch commits: both good rows stored, the dead letter in the DLQ exactly once.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
it_init edges
export PARTITIONS=1 ENRICH_LOOKUPS=off
export RDKAFKA_PRODUCER_MESSAGE_MAX_BYTES=100000
KAFKA="$ROOT/deploy/local/kafka.sh"
it_start_stack
PARSER_PID=$(cat "$STATE/parser.pid")
S=$(cat "$STATE/sink.port")

# DLQ messages with a given code, as "key-length value-length claim-length claim-sha" lines.
dlq_of() {
    kcat -C -b "$BROKERS" -t telemetry.dlq -e -q -X fetch.message.max.bytes=2000000 \
        -f '%h\t%S\n' 2>/dev/null | awk -F'\t' -v code="$1" 'index($1, "fp.error.code=" code ",") ||
        index($1, "fp.error.code=" code "\t") || $1 ~ ("fp.error.code=" code "$") { print }'
}
dlq_has() { [ "$(dlq_of "$1" | wc -l)" -ge "${2:-1}" ]; }
header_of() { tr ',' '\n' | awk -F= -v h="$1" '$1 == h { print $2; exit }'; }

# --- 1. oversized output -------------------------------------------------------------------
big=$(head -c 150000 /dev/zero | tr '\0' 'a')
junk=$(head -c 120000 /dev/zero | tr '\0' 'z')
printf '%s' "$junk" >"$STATE/junk"
{
    printf 'big1\t{"schema":1,"device_id":"big1","ts":"2026-05-01T00:00:01.000Z","io":{"256":"%s"}}\n' "$big"
    printf 'junk\t%s\n' "$junk"
    printf 'good1\t{"schema":1,"device_id":"good1","ts":"2026-05-01T00:00:02.000Z"}\n'
} | kcat -P -b "$BROKERS" -t telemetry.raw -p 0 -K '\t' -X message.max.bytes=1000000

stored() { [ "$(psql_q "SELECT count(*) FROM telemetry WHERE device_id = '$1'")" = 1 ]; }
if fp_wait_for 60 "the good record behind the oversized ones" stored good1; then
    pass "the record behind an oversized one is stored (the partition is not stuck)"
else
    fail "the record behind an oversized one is stored" "$(tail -n 5 "$STATE/parser.log")"
fi
if kill -0 "$PARSER_PID" 2>/dev/null; then pass "parser-svc still runs"; else fail "parser-svc still runs"; fi
if fp_wait_for 30 "a too_large dead letter" dlq_has too_large; then
    line=$(dlq_of too_large | head -n 1)
    hdrs=${line%%$'\t'*}
    value_len=${line##*$'\t'}
    claim_len=$(printf '%s' "$hdrs" | header_of fp.claim.length)
    [ "${claim_len:-0}" -gt 150000 ] && [ "$value_len" -lt 100000 ] &&
        pass "too_large: a claim check of the ${claim_len}-byte record (${value_len} bytes kept)" ||
        fail "too_large: a claim check" "headers: ${hdrs:0:300}" "value bytes: $value_len"
    expect_eq "too_large: its source offset" "$(printf '%s' "$hdrs" | header_of fp.error.offset)" 0
else
    fail "a too_large dead letter" "$(dlq_of '' | cut -c1-200)"
fi
want_sha=$(sha256sum <"$STATE/junk" | cut -d' ' -f1)
line=$(kcat -C -b "$BROKERS" -t telemetry.dlq -e -q -X fetch.message.max.bytes=2000000 \
    -f '%k\t%h\t%S\n' 2>/dev/null | awk -F'\t' '$1 == "junk"' | head -n 1)
hdrs=$(printf '%s' "$line" | cut -f2)
if [ -n "$line" ] && [ "$(printf '%s' "$hdrs" | header_of fp.claim.sha256)" = "$want_sha" ]; then
    pass "an undecodable raw message too large for the DLQ arrives as a claim check (sha256 matches)"
else
    fail "undecodable oversized raw message as a claim check" "line: ${line:0:300}"
fi

# --- 2. the sink's dead letter must be confirmed before its batch commits --------------------
before_retries=$(fp_metric "$S" fleetpipe_sink_batch_retries_total)
"$KAFKA" tool configs --bootstrap-server "$BROKERS" --alter --entity-type topics \
    --entity-name telemetry.dlq --add-config max.message.bytes=200 >/dev/null 2>&1 ||
    fail "the DLQ topic's limit is lowered"
{
    printf 'sinkgood1\t{"schema":1,"device_id":"sinkgood1","ts":"2026-05-01T00:01:00.000Z"}\n'
    printf 'sinkbad\tthis is not a canonical record and its dead letter is larger than two hundred bytes: %s\n' "$(head -c 300 /dev/zero | tr '\0' 'x')"
    printf 'sinkgood2\t{"schema":1,"device_id":"sinkgood2","ts":"2026-05-01T00:01:01.000Z"}\n'
} | kcat -P -b "$BROKERS" -t telemetry.enriched -p 0 -K '\t'
refused() { [ "$(fp_metric "$S" fleetpipe_delivery_errors_total)" -gt 0 ] &&
    [ "$(fp_metric "$S" fleetpipe_sink_batch_retries_total)" -gt "$before_retries" ]; }
if fp_wait_for 60 "the broker refusing the sink's dead letter, and a retry" refused; then
    pass "the refused dead letter is retried"
    # Once more: the retry after the failed dead letter must not have committed the batch.
    retries=$(fp_metric "$S" fleetpipe_sink_batch_retries_total)
    fp_wait_for 30 "another retry" eval '[ "$(fp_metric "$S" fleetpipe_sink_batch_retries_total)" -gt "$retries" ]' ||
        fail "the sink keeps retrying"
    expect_eq "nothing of the batch is committed while its dead letter is refused" \
        "$(psql_q "SELECT count(*) FROM telemetry WHERE device_id LIKE 'sinkgood%'")" 0
else
    fail "the broker refuses the sink's dead letter" "$(tail -n 5 "$STATE/sink.log")"
fi
"$KAFKA" tool configs --bootstrap-server "$BROKERS" --alter --entity-type topics \
    --entity-name telemetry.dlq --delete-config max.message.bytes >/dev/null 2>&1 ||
    fail "the DLQ topic's limit is restored"
both() { [ "$(psql_q "SELECT count(*) FROM telemetry WHERE device_id LIKE 'sinkgood%'")" = 2 ]; }
if fp_wait_for 60 "both good rows once the DLQ takes the dead letter" both; then
    pass "the batch commits once its dead letter is confirmed"
else
    fail "the batch commits once its dead letter is confirmed" "$(tail -n 5 "$STATE/sink.log")"
fi
sink_dl=$(kcat -C -b "$BROKERS" -t telemetry.dlq -e -q -f '%k\t%h\n' 2>/dev/null |
    awk -F'\t' '$1 == "sinkbad" && index($2, "fp.error.stage=sink")' | wc -l)
expect_eq "the sink's dead letter is in the DLQ exactly once" "$sink_dl" 1
finish edges
