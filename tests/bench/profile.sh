#!/usr/bin/env bash
# Where each service spends its CPU in the running pipeline (not part of the suite).
#
#   tests/bench/profile.sh [RECORDS]      (default 200000)
#
# Starts the embedded stack (16 partitions, the lookup stub), warms it with 20,000 records, then
# samples the three services and PostgreSQL's processes with `perf record` (PERF_FREQ samples a
# second, default 499) while fleet-sim feeds RECORDS records, as fast as the pipeline takes them
# or at PROFILE_RATE records/s, until each distinct one is a row. Prints, for each service and
# for PostgreSQL, its CPU per record over the feed (from /proc) and its costs by symbol (self
# time, as a share of its own samples), into build/bench/profile.txt too; the samples stay in
# build/bench/profile.data for `perf report -i`. PERF_CALLGRAPH=dwarf also records call graphs
# (then `perf report --children` shows what each function costs with its callees; the samples
# take a few hundred MB). Everything it starts it stops on exit. perf comes from Debian's
# linux-perf (installed when missing).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=deploy/local/lib.sh
. "$ROOT/deploy/local/lib.sh"
RECORDS=${1:-200000}
BIN=${BIN:-$ROOT/bin}
FREQ=${PERF_FREQ:-499}
RATE=${PROFILE_RATE:-}
CALLGRAPH=${PERF_CALLGRAPH:-}
export BIN PARTITIONS=16 ENRICH_LOOKUPS=stub FLEET_SEED=7
SERVICES="parser enricher sink"

if ! command -v perf >/dev/null 2>&1; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null
fi
PG_TMPDIR=$(fp_bench_tmpdir 4)
export PG_TMPDIR
S=$(mktemp -d "$PG_TMPDIR/fleetpipe-profile.XXXXXX")
PERF_PID=""
cleanup() {
    [ -z "$PERF_PID" ] || fp_stop_pid "$PERF_PID" 30 >/dev/null 2>&1 || true
    "$ROOT/deploy/local/stack.sh" stop "$S" >/dev/null 2>&1 || true
    rm -rf "$S"
}
trap cleanup EXIT

"$ROOT/deploy/local/stack.sh" start "$S" >/dev/null
# feed NAME SINCE RECORDS [OPTION...]: as tests/bench/latency.sh feeds (seed 7, 1000 machines).
feed() { fp_feed_fleet "$S" "$1" "$2" "$3" 600 "${@:4}"; }

feed warm-up 1970-01-01 20000 --clock wall
declare -A PID T0
pids=""
for s in $SERVICES; do
    PID[$s]=$(cat "$S/$s.pid")
    pids="$pids${pids:+,}${PID[$s]}"
done
# PostgreSQL: the postmaster (its CPU counts its sessions') and every process it runs now.
# shellcheck disable=SC1091
PID[postgres]=$(. "$S/pg.env" && echo "$PG_PID")
for c in ${PID[postgres]} $(pgrep -P "${PID[postgres]}"); do pids="$pids,$c"; done
START=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ) # later than every row of the warm-up
for s in $SERVICES postgres; do T0[$s]=$(fp_cpu_seconds "${PID[$s]}"); done
# shellcheck disable=SC2086 # CALLGRAPH's words are perf's options
perf record -q -F "$FREQ" ${CALLGRAPH:+--call-graph "$CALLGRAPH"} -p "$pids" -o "$S/perf.data" \
    >"$S/perf.log" 2>&1 &
PERF_PID=$!
feed profiled "$START" "$RECORDS" --clock wall ${RATE:+--rate "$RATE"}
kill -INT "$PERF_PID"
fp_wait_for 120 "perf to write its samples" sh -c "! kill -0 $PERF_PID 2>/dev/null"
PERF_PID=""
DISTINCT=$(grep -o '"distinct":[0-9]*' "$S/profiled.json" | cut -d: -f2)

OUT="$ROOT/build/bench/profile.txt"
mkdir -p "$(dirname "$OUT")"
mv "$S/perf.data" "$ROOT/build/bench/profile.data"
{
    echo "$RECORDS records fed (${RATE:-as fast as taken} records/s, $DISTINCT distinct rows), $FREQ samples/s, $(nproc) cores"
    for s in $SERVICES postgres; do
        # A service by its process, PostgreSQL by the name its processes share.
        if [ "$s" = postgres ]; then only=(--comm postgres); else only=(--pid "${PID[$s]}"); fi
        awk -v s="$s" -v a="${T0[$s]}" -v b="$(fp_cpu_seconds "${PID[$s]}")" -v n="$DISTINCT" \
            'BEGIN { printf "\n== %s: %.1f CPU s, %.1f us per record\n", s, b - a, (b - a) * 1e6 / n }'
        echo "-- by symbol (self, % of its samples, >= 1.5 %)"
        perf report -i "$ROOT/build/bench/profile.data" "${only[@]}" --no-children --percentage relative \
            --sort symbol --stdio --percent-limit 1.5 -q -g none 2>/dev/null | sed -e '/^$/d' -e 's/[ -]*$//'
    done
} | tee "$OUT"
