#!/usr/bin/env bash
# The embedded single-machine stack: a real Apache Kafka broker (kafka.sh: single-node KRaft),
# a throwaway PostgreSQL cluster, the lookup stub and the three services, all on loopback, all
# state under one folder.
#
#   stack.sh start STATE_DIR       start everything, wait until every service is ready
#   stack.sh stop STATE_DIR        stop everything this stack started (by PID), remove the PG data
#   stack.sh start-svc STATE_DIR SVC [N]   start service SVC (parser|enricher|sink), replica N
#   stack.sh stop-svc STATE_DIR SVC [N] [--kill]   SIGTERM (or SIGKILL) one service replica
#   stack.sh kafka STATE_DIR CMD           a broker fault: kill (SIGKILL), restart (on the same
#                                          log folder and ports), pause (SIGSTOP), resume (SIGCONT);
#                                          with FP_KAFKA=devkafka: devkafka's commands (down 1, up 1)
#   stack.sh env STATE_DIR         print the stack's addresses as shell assignments
#
# Environment: BIN (where the binaries are, default bin), PARTITIONS (per topic, default 16),
# FP_KAFKA (kafka, the default: Apache Kafka from deploy/local/kafka.sh; devkafka: librdkafka's
# mock cluster, the fallback for a machine without Java),
# ENRICH_LOOKUPS (stub: start lookup-stub and point the enricher's geocoder, asset registry and
# geofences at it and at fleet-sim's sites, the default; off: no lookups), FLEET_SEED and
# FLEET_SITES (the fleet-sim world whose sites become the geofences, default 42 and 8), and any
# service variable (it is passed through).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=deploy/local/lib.sh
. "$HERE/lib.sh"

BIN=${BIN:-bin}
case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac
PARTITIONS=${PARTITIONS:-16}
ENRICH_LOOKUPS=${ENRICH_LOOKUPS:-stub}
FLEET_SEED=${FLEET_SEED:-42}
FLEET_SITES=${FLEET_SITES:-8}
FP_KAFKA=${FP_KAFKA:-kafka}
case "$FP_KAFKA" in kafka | devkafka) ;; *) echo "stack: FP_KAFKA must be kafka or devkafka" >&2 && exit 2 ;; esac

die() {
    echo "stack: $*" >&2
    exit 1
}

# Client settings for the local stack: a consumer killed with SIGKILL loses its partitions after
# 6 s instead of librdkafka's default 45 s, so that kill tests finish. devkafka also needs
# fetches that never wait long (the mock does not wake a waiting fetch).
kafka_client_env() {
    if [ "$FP_KAFKA" = devkafka ]; then
        export RDKAFKA_CONSUMER_FETCH_WAIT_MAX_MS=${RDKAFKA_CONSUMER_FETCH_WAIT_MAX_MS:-10}
    fi
    export RDKAFKA_CONSUMER_SESSION_TIMEOUT_MS=${RDKAFKA_CONSUMER_SESSION_TIMEOUT_MS:-6000}
    export RDKAFKA_CONSUMER_HEARTBEAT_INTERVAL_MS=${RDKAFKA_CONSUMER_HEARTBEAT_INTERVAL_MS:-500}
    export RDKAFKA_CONSUMER_MAX_POLL_INTERVAL_MS=${RDKAFKA_CONSUMER_MAX_POLL_INTERVAL_MS:-30000}
}

start_kafka() {
    local state=$1
    if [ "$FP_KAFKA" = kafka ]; then
        BIN="$BIN" PARTITIONS="$PARTITIONS" "$HERE/kafka.sh" start "$state/kafka"
        cp "$state/kafka/bootstrap" "$state/bootstrap"
        return 0
    fi
    "$BIN/devkafka" --partitions "$PARTITIONS" --bootstrap-file "$state/bootstrap" \
        --control "$state/kafka.ctl" >"$state/devkafka.out" 2>"$state/devkafka.log" &
    echo $! >"$state/devkafka.pid"
    fp_wait_for 30 "devkafka bootstrap address" test -s "$state/bootstrap"
}

start_stub() {
    local state=$1
    "$BIN/lookup-stub" --bind 127.0.0.1 --port 0 --port-file "$state/stub.port" \
        >"$state/stub.out" 2>"$state/stub.log" &
    echo $! >"$state/stub.pid"
    fp_wait_for 30 "lookup-stub port" test -s "$state/stub.port"
    # The sites fleet-sim drives to, as the enricher's geofences.
    "$BIN/fleet-sim" --output /dev/null --records 0 --seed "$FLEET_SEED" --sites "$FLEET_SITES" \
        --geofences "$state/geofences.json" >/dev/null
}

svc_ready() {
    curl -fsS -o /dev/null "http://127.0.0.1:$1/readyz"
}

# ready_or_dead PORT PID: the service answers /readyz 200, or its process is gone.
ready_or_dead() {
    svc_ready "$1" || ! kill -0 "$2" 2>/dev/null
}

start_svc() {
    local state=$1 svc=$2 n=${3:-1} port pid try
    local name="$svc"
    [ "$n" = 1 ] || name="$svc-$n"
    [ -x "$BIN/$svc-svc" ] || die "$BIN/$svc-svc is not built (run make)"
    # A port found free can be taken before the service binds it: then the service exits and
    # is started again on another port.
    for try in 1 2 3; do
        port=$(fp_free_port) || die "no free port"
        (
            kafka_client_env
            export KAFKA_BROKERS
            KAFKA_BROKERS=$(cat "$state/bootstrap")
            export HTTP_BIND=127.0.0.1 HTTP_PORT=$port
            # Each replica its own stable transactional.id (DELIVERY=exactly-once).
            export TRANSACTIONAL_ID=${TRANSACTIONAL_ID:-fleetpipe-$name}
            if [ "$svc" = enricher ] && [ -f "$state/stub.port" ]; then
                export GEOCODER_URL=${GEOCODER_URL:-http://127.0.0.1:$(cat "$state/stub.port")}
                export ASSETS_URL=${ASSETS_URL:-http://127.0.0.1:$(cat "$state/stub.port")/assets/\{device_id\}}
                export GEOFENCES_FILE=${GEOFENCES_FILE:-$state/geofences.json}
            fi
            if [ "$svc" = sink ]; then
                # shellcheck disable=SC1091
                . "$state/pg.env"
                export PG_DSN
            fi
            exec "$BIN/$svc-svc" 2>>"$state/$name.log"
        ) &
        pid=$!
        echo "$pid" >"$state/$name.pid"
        echo "$port" >"$state/$name.port"
        if fp_wait_for 60 "$name ready on port $port" ready_or_dead "$port" "$pid" &&
            kill -0 "$pid" 2>/dev/null; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null && break # alive but never ready: do not start a second one
        echo "stack: $name exited at start (attempt $try)" >&2
    done
    tail -n 20 "$state/$name.log" >&2
    return 1
}

stop_svc() {
    local state=$1 svc=$2 n=1 how="" name pid a
    shift 2
    for a in "$@"; do
        case "$a" in --kill) how=--kill ;; *) n=$a ;; esac
    done
    name="$svc"
    [ "$n" = 1 ] || name="$svc-$n"
    [ -f "$state/$name.pid" ] || return 0
    pid=$(cat "$state/$name.pid")
    if [ "$how" = --kill ]; then
        kill -9 "$pid" 2>/dev/null || true
        _fp_gone_within "$pid" 10 || echo "stack: $name survived SIGKILL" >&2
    else
        fp_stop_pid "$pid" 20
    fi
    rm -f "$state/$name.pid"
}

cmd_start() {
    local state=$1
    mkdir -p "$state"
    state=$(cd "$state" && pwd)
    echo "$FP_KAFKA" >"$state/broker"
    start_kafka "$state"
    [ "$ENRICH_LOOKUPS" = stub ] && start_stub "$state"
    "$HERE/pg.sh" start "$state" >/dev/null
    for svc in sink enricher parser; do
        start_svc "$state" "$svc"
    done
}

cmd_stop() {
    local state=$1 f
    [ -d "$state" ] || return 0
    for f in "$state"/*.pid; do
        [ -e "$f" ] || continue
        case "$f" in */devkafka.pid | */kafka.pid) continue ;; esac
        fp_stop_pid "$(cat "$f")" 20 || true
        rm -f "$f"
    done
    "$HERE/kafka.sh" stop "$state/kafka" || true
    if [ -f "$state/devkafka.pid" ]; then
        fp_stop_pid "$(cat "$state/devkafka.pid")" 10 || true
        rm -f "$state/devkafka.pid"
    fi
    "$HERE/pg.sh" stop "$state" || true
}

# kafka_fault STATE CMD...: a fault on the stack's broker.
kafka_fault() {
    local state=$1
    shift
    if [ "$FP_KAFKA" = devkafka ]; then
        echo "$*" >"$state/kafka.ctl"
        return 0
    fi
    case "${1:-}" in
    kill | pause | resume) "$HERE/kafka.sh" "$1" "$state/kafka" ;;
    restart) BIN="$BIN" PARTITIONS="$PARTITIONS" "$HERE/kafka.sh" start "$state/kafka" ;;
    *) die "kafka faults: kill, restart, pause, resume (got '$*')" ;;
    esac
}

cmd_env() {
    local state=$1 f
    echo "KAFKA_BROKERS=$(cat "$state/bootstrap")"
    cat "$state/pg.env"
    for f in "$state"/*.port; do
        [ -e "$f" ] || continue
        local n
        n=$(basename "$f" .port)
        echo "${n//-/_}_PORT=$(cat "$f")" | tr '[:lower:]' '[:upper:]'
    done
}

[ $# -ge 2 ] || die "usage: stack.sh start|stop|start-svc|stop-svc|kafka|env STATE_DIR ..."
cmd=$1
state=$2
shift 2
# The broker kind a stack was started with holds for every later command on it.
[ "$cmd" = start ] || [ ! -f "$state/broker" ] || FP_KAFKA=$(cat "$state/broker")
case "$cmd" in
start) cmd_start "$state" ;;
stop) cmd_stop "$state" ;;
start-svc) start_svc "$(cd "$state" && pwd)" "$@" ;;
stop-svc) stop_svc "$state" "$@" ;;
kafka) kafka_fault "$state" "$@" ;;
env) cmd_env "$state" ;;
*) die "unknown command $cmd" ;;
esac
