#!/usr/bin/env bash
# The embedded stack's Apache Kafka: a real single-node KRaft broker+controller on loopback,
# from Apache Kafka's own jars (deploy/local/kafka/pom.xml pins them; Maven fetches them once).
#
#   kafka.sh fetch                 fetch the jars into build/kafka/libs (no network when present)
#   kafka.sh start DIR [TOPIC...]  format DIR (first start only), start the broker, wait until it
#                                  answers, create the topics (default: the pipeline's four),
#                                  write DIR/bootstrap; a second start reuses DIR's ports and logs
#   kafka.sh stop DIR              stop the broker by PID (SIGTERM, then SIGKILL)
#   kafka.sh kill DIR              SIGKILL the broker (a crash; `start DIR` restarts it on the
#                                  same log folder)
#   kafka.sh pause DIR | resume DIR   SIGSTOP / SIGCONT: a broker that hangs
#   kafka.sh tool NAME ARGS...     run one of Kafka's command-line tools: console-consumer,
#                                  console-producer, consumer-groups, transactions, topics,
#                                  producer-perf, get-offsets, configs
#   kafka.sh version               print the pinned Kafka version
#   kafka.sh cluster-id            print a new KRaft cluster id
#
# Environment: BIN (fp-topics, default bin), PARTITIONS (per pipeline topic, default 16),
# KAFKA_HEAP (default 512m), KAFKA_LIBS (a folder of Kafka jars to use instead of fetching, e.g.
# an Apache Kafka distribution's libs/), KAFKA_WAIT_S (start deadline, default 90), KAFKA_JVM_OPTS
# (more options for the broker's JVM, split at spaces), KAFKA_SERVER_PROPS (more lines for
# server.properties, e.g. "num.io.threads=2"; a later line wins).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=deploy/local/lib.sh
. "$HERE/lib.sh"

POM="$HERE/kafka/pom.xml"
CACHE="$ROOT/build/kafka"
LIBS=${KAFKA_LIBS:-$CACHE/libs}
BIN=${BIN:-bin}
case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac
PARTITIONS=${PARTITIONS:-16}
KAFKA_HEAP=${KAFKA_HEAP:-512m}
KAFKA_WAIT_S=${KAFKA_WAIT_S:-90}
read -r -a JVM_OPTS <<<"${KAFKA_JVM_OPTS:-}"
PIPELINE_TOPICS=(telemetry.raw telemetry.parsed telemetry.enriched telemetry.dlq)

die() {
    echo "kafka: $*" >&2
    exit 1
}

# A cluster id is 16 random bytes in URL-safe base64 without padding, what
# `kafka-storage random-uuid` prints (one JVM start fewer). Like Kafka's own Uuid.randomUuid, an id
# starting with '-' is drawn again: kafka-storage would read it as an option (1 start in 64 failed
# to format before).
cluster_id() {
    local id
    while :; do
        id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
        case "$id" in -*) ;; *) break ;; esac
    done
    printf '%s\n' "$id"
}

kafka_version() {
    sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM"
}

# The jars are complete when the stamp names the pom they were fetched for.
cmd_fetch() {
    [ -n "${KAFKA_LIBS:-}" ] && return 0
    local want
    want=$(cksum <"$POM")
    if [ -f "$LIBS/.fetched" ] && [ "$(cat "$LIBS/.fetched")" = "$want" ]; then
        return 0
    fi
    command -v mvn >/dev/null 2>&1 || die "mvn is missing (make deps installs maven)"
    command -v java >/dev/null 2>&1 || die "java is missing (make deps installs openjdk-17-jre-headless)"
    echo "kafka: fetching Apache Kafka $(kafka_version) from Maven Central into $LIBS" >&2
    rm -rf "$LIBS" "$CACHE/target"
    mkdir -p "$CACHE"
    # The build folder is ours, so the source tree gets no target/.
    if ! mvn -q -B -f "$POM" -Dproject.build.directory="$CACHE/target" \
        -Dlibs.dir="$LIBS" package >"$CACHE/mvn.log" 2>&1; then
        tail -n 30 "$CACHE/mvn.log" >&2
        die "mvn could not fetch the Kafka jars (log: $CACHE/mvn.log)"
    fi
    echo "$want" >"$LIBS/.fetched"
}

# java_run LOG4J_CONFIG ARGS...: java with Kafka's class path.
java_run() {
    local log4j=$1
    shift
    exec java -Dlog4j2.configurationFile="$log4j" -cp "$LIBS/*" "$@"
}

tools_log4j() {
    local f="$CACHE/tools-log4j2.properties"
    if [ ! -f "$f" ]; then
        mkdir -p "$CACHE"
        cat >"$f.tmp" <<'EOF'
status = error
appender.err.type = Console
appender.err.name = err
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = %p %m%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = err
EOF
        mv "$f.tmp" "$f"
    fi
    echo "$f"
}

cmd_tool() {
    [ $# -ge 1 ] || die "usage: kafka.sh tool NAME ARGS..."
    local name=$1 class
    shift
    case "$name" in
    console-consumer) class=org.apache.kafka.tools.consumer.ConsoleConsumer ;;
    console-producer) class=org.apache.kafka.tools.ConsoleProducer ;;
    consumer-groups) class=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
    transactions) class=org.apache.kafka.tools.TransactionsCommand ;;
    topics) class=org.apache.kafka.tools.TopicCommand ;;
    producer-perf) class=org.apache.kafka.tools.ProducerPerformance ;;
    get-offsets) class=org.apache.kafka.tools.GetOffsetShell ;;
    configs) class=org.apache.kafka.tools.ConfigCommand ;;
    *) die "unknown tool $name" ;;
    esac
    cmd_fetch
    java_run "$(tools_log4j)" -Xmx256m "$class" "$@"
}

broker_pid() {
    local dir=$1
    [ -f "$dir/kafka.pid" ] && cat "$dir/kafka.pid"
}

broker_answers() {
    kcat -b "$1" -L -m 2 -t telemetry.raw >/dev/null 2>&1 ||
        kcat -b "$1" -L -m 2 >/dev/null 2>&1
}

write_config() {
    local dir=$1 port=$2 cport=$3
    cat >"$dir/server.properties" <<EOF
# Written by deploy/local/kafka.sh: one KRaft node, broker and controller, on loopback.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=$PARTITIONS
auto.create.topics.enable=true
# A single node: every internal topic has one replica.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=8
default.replication.factor=1
min.insync.replicas=1
# A group starts at once instead of waiting 3 s for more members.
group.initial.rebalance.delay.ms=0
# A consumer killed with SIGKILL is noticed after its session timeout: let tests use 6 s.
group.min.session.timeout.ms=3000
# After a crash the restarted node waits until its old registration expires: keep that short.
broker.session.timeout.ms=2000
broker.heartbeat.interval.ms=500
# Small segments keep restarts after a crash quick (log recovery reads the last segment).
log.segment.bytes=67108864
log.retention.hours=168
num.recovery.threads.per.data.dir=2
EOF
    [ -z "${KAFKA_SERVER_PROPS:-}" ] || printf '%s\n' "$KAFKA_SERVER_PROPS" >>"$dir/server.properties"
    cat >"$dir/log4j2.properties" <<EOF
status = error
appender.file.type = File
appender.file.name = file
appender.file.fileName = $dir/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
EOF
}

cmd_start() {
    [ $# -ge 1 ] || die "usage: kafka.sh start DIR [TOPIC...]"
    local dir=$1 port cport pid topics=()
    shift
    [ $# -gt 0 ] && topics=("$@") || topics=("${PIPELINE_TOPICS[@]}")
    command -v java >/dev/null 2>&1 || die "java is missing (make deps installs openjdk-17-jre-headless)"
    [ -x "$BIN/fp-topics" ] || die "$BIN/fp-topics is not built (run make)"
    cmd_fetch
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    pid=$(broker_pid "$dir" || true)
    if [ -n "$pid" ] && _fp_alive "$pid"; then
        die "a broker runs already in $dir (pid $pid)"
    fi
    if [ -f "$dir/ports" ]; then
        # A restart: the same addresses, so that clients and the bootstrap file stay valid.
        read -r port cport <"$dir/ports"
    else
        port=$(fp_free_port) || die "no free port"
        cport=$(fp_free_port) || die "no free port"
        [ "$port" != "$cport" ] || cport=$(fp_free_port) || die "no free port"
        echo "$port $cport" >"$dir/ports"
        write_config "$dir" "$port" "$cport"
    fi
    if [ ! -f "$dir/data/meta.properties" ]; then
        local id
        id=$(cluster_id)
        (java_run "$(tools_log4j)" kafka.tools.StorageTool format -t "$id" \
            -c "$dir/server.properties") >"$dir/format.log" 2>&1 ||
            die "formatting $dir/data failed: $(tail -n 5 "$dir/format.log")"
    fi
    (
        cd "$dir"
        java_run "$dir/log4j2.properties" "-Xmx$KAFKA_HEAP" "-Xms$KAFKA_HEAP" -XX:+UseG1GC \
            -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true -Dkafka.logs.dir="$dir" \
            ${JVM_OPTS[@]+"${JVM_OPTS[@]}"} kafka.Kafka "$dir/server.properties"
    ) >"$dir/stdout.log" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/kafka.pid"
    local addr="127.0.0.1:$port"
    if ! fp_wait_for "$KAFKA_WAIT_S" "Kafka on $addr" broker_up "$pid" "$addr"; then
        tail -n 20 "$dir/server.log" "$dir/stdout.log" >&2 2>/dev/null || true
        fp_stop_pid "$pid" 5 || true
        die "the broker did not answer within ${KAFKA_WAIT_S}s (logs in $dir)"
    fi
    _fp_alive "$pid" || die "the broker exited at start: $(tail -n 20 "$dir/stdout.log")"
    if ! "$BIN/fp-topics" --brokers "$addr" --partitions "$PARTITIONS" \
        --timeout-ms $((KAFKA_WAIT_S * 1000)) "${topics[@]}" 2>>"$dir/topics.log"; then
        tail -n 5 "$dir/topics.log" >&2
        die "topics not created on $addr"
    fi
    echo "$addr" >"$dir/bootstrap.tmp"
    mv "$dir/bootstrap.tmp" "$dir/bootstrap"
}

# broker_up PID ADDR: the broker process is there and answers metadata.
broker_up() {
    _fp_alive "$1" && broker_answers "$2"
}

cmd_stop() {
    local dir=$1 pid
    pid=$(broker_pid "$dir" || true)
    [ -n "$pid" ] || return 0
    kill -CONT "$pid" 2>/dev/null || true # a paused broker cannot exit
    fp_stop_pid "$pid" 30
    rm -f "$dir/kafka.pid"
}

cmd_signal() {
    local dir=$1 sig=$2 pid
    pid=$(broker_pid "$dir" || true)
    [ -n "$pid" ] || die "no broker runs in $dir"
    kill "-$sig" "$pid"
    if [ "$sig" = KILL ]; then
        _fp_gone_within "$pid" 10 || die "the broker survived SIGKILL"
        wait "$pid" 2>/dev/null || true
        rm -f "$dir/kafka.pid"
    fi
}

[ $# -ge 1 ] || die "usage: kafka.sh fetch|start|stop|kill|pause|resume|tool|version|cluster-id ..."
cmd=$1
shift
case "$cmd" in
fetch) cmd_fetch ;;
start) cmd_start "$@" ;;
stop) cmd_stop "${1:?DIR}" ;;
kill) cmd_signal "${1:?DIR}" KILL ;;
pause) cmd_signal "${1:?DIR}" STOP ;;
resume) cmd_signal "${1:?DIR}" CONT ;;
tool) cmd_tool "$@" ;;
version) kafka_version ;;
cluster-id) cluster_id ;;
*) die "unknown command $cmd" ;;
esac
