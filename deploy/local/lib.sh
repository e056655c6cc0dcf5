# shellcheck shell=bash
# Helpers for the embedded stack's scripts (stack.sh, pg.sh, demo.sh, the integration tests).
# Source it; it only defines functions (all prefixed fp_ or _fp_) and changes no shell option,
# so it behaves the same under `set -euo pipefail` and without it.

# fp_free_port: prints a TCP port in 20000-59999 on which nothing listens on 127.0.0.1.
# It tries up to 50 random ports, each by connecting with bash's /dev/tcp (a refused connect
# means free). Returns 1, printing nothing, when all 50 were taken. The port is only free at the
# moment of the check: whoever uses it must still handle "address in use".
fp_free_port() {
    local try port low=32768 high
    # Below the kernel's ephemeral range: a port there may be the local end of some client's
    # connection, which a connect test does not see but bind() does.
    read -r low high </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
    [ "$low" -gt 11024 ] || low=32768
    for ((try = 0; try < 50; try++)); do
        port=$((((RANDOM << 15) | RANDOM) % (low - 11024) + 10000))
        # The subshell closes the descriptor again if the connect succeeded.
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

# _fp_now_ms: prints the wall-clock time in milliseconds since the epoch.
_fp_now_ms() {
    if [ -n "${EPOCHREALTIME:-}" ]; then
        local t=${EPOCHREALTIME/[^0-9]/}
        echo $((10#${t:0:-3}))
    else
        echo $(($(date +%s%N) / 1000000))
    fi
}

# fp_wait_for DEADLINE_SECONDS DESCRIPTION CMD...: runs CMD every 0.1 s until it succeeds
# (returns 0) or DEADLINE_SECONDS (an integer, or a decimal like 2.5) have passed; CMD runs at
# least once. CMD may be a shell function; its output is discarded. On timeout prints
# "timeout after Ns waiting for DESCRIPTION" to stderr and returns 1; returns 2 on bad arguments.
fp_wait_for() {
    if [ $# -lt 3 ] || ! [[ $1 =~ ^([0-9]+)(\.([0-9]{1,3}))?$ ]]; then
        echo "fp_wait_for: usage: fp_wait_for DEADLINE_SECONDS DESCRIPTION CMD..." >&2
        return 2
    fi
    local deadline=$1 desc=$2 frac=${BASH_REMATCH[3]}
    shift 2
    frac=$frac"000"
    local end=$(($(_fp_now_ms) + 10#${BASH_REMATCH[1]} * 1000 + 10#${frac:0:3}))
    while :; do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        if [ "$(_fp_now_ms)" -ge "$end" ]; then
            echo "timeout after ${deadline}s waiting for $desc" >&2
            return 1
        fi
        sleep 0.1
    done
}

# _fp_alive PID: succeeds while the process exists and is not a zombie (kill -0 succeeds on a
# zombie that its parent has not reaped yet, but that process is gone for our purposes).
_fp_alive() {
    kill -0 "$1" 2>/dev/null || return 1
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    # The state follows the command name, which is in parentheses and may contain spaces.
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}

# _fp_gone_within PID SECONDS: waits (polling every 0.1 s) until PID is gone; fails on timeout.
_fp_gone_within() {
    local pid=$1 end
    end=$(($(_fp_now_ms) + $2 * 1000))
    while _fp_alive "$pid"; do
        [ "$(_fp_now_ms)" -lt "$end" ] || return 1
        sleep 0.1
    done
}

# fp_stop_pid PID [TIMEOUT_SECONDS]: stops a process: SIGTERM, up to TIMEOUT_SECONDS (default
# 10, an integer) for it to exit, then SIGKILL and up to 5 s more. Works for any process this
# user may signal, child of this shell or not; a child is reaped. Returns 0 when the process is
# gone (also when it was gone already), 1 when it survived, 2 on bad arguments.
fp_stop_pid() {
    local pid=${1:-} timeout=${2:-10}
    if ! [[ $pid =~ ^[0-9]+$ ]] || [ "$pid" -le 1 ] || ! [[ $timeout =~ ^[0-9]+$ ]]; then
        echo "fp_stop_pid: usage: fp_stop_pid PID [TIMEOUT_SECONDS] (got '$pid' '$timeout')" >&2
        return 2
    fi
    if _fp_alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        if ! _fp_gone_within "$pid" "$timeout"; then
            echo "fp_stop_pid: $pid did not exit ${timeout}s after SIGTERM; sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
            if ! _fp_gone_within "$pid" 5; then
                echo "fp_stop_pid: $pid survived SIGKILL" >&2
                return 1
            fi
        fi
    fi
    # Reap it if it is this shell's child; for any other process `wait` just fails.
    wait "$pid" 2>/dev/null || true
    return 0
}

# fp_pg_bindir: prints the directory holding PostgreSQL's server programs (initdb, pg_ctl):
# `pg_config --bindir` when that has them, else the newest /usr/lib/postgresql/*/bin. Returns 1
# with a message on stderr when there is none.
fp_pg_bindir() {
    local dir best="" ver bestver=-1
    if command -v pg_config >/dev/null 2>&1; then
        dir=$(pg_config --bindir 2>/dev/null) || dir=""
        if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            echo "$dir"
            return 0
        fi
    fi
    for dir in /usr/lib/postgresql/*/bin; do
        if ! [ -x "$dir/initdb" ] || ! [ -x "$dir/pg_ctl" ]; then
            continue
        fi
        ver=${dir#/usr/lib/postgresql/}
        ver=${ver%%/*}
        ver=${ver%%.*}
        [[ $ver =~ ^[0-9]+$ ]] || continue
        if [ "$ver" -gt "$bestver" ]; then
            bestver=$ver
            best=$dir
        fi
    done
    if [ -z "$best" ]; then
        echo "fp_pg_bindir: no PostgreSQL server programs (initdb, pg_ctl) found; install the" \
            "postgresql package (make deps)" >&2
        return 1
    fi
    echo "$best"
}

# fp_feed_fleet STATE NAME SINCE RECORDS TIMEOUT [OPTION...]: fleet-sim (BIN) sends RECORDS records
# of a fleet of 1000 machines (seed 7, fleet-sim's OPTIONs) to the embedded stack in STATE, its
# summary in STATE/NAME.json, then waits up to TIMEOUT s until each distinct record is a row of
# telemetry with ts >= SINCE. Returns 1 when they are not all there in time.
fp_feed_fleet() {
    local state=$1 name=$2 since=$3 records=$4 timeout=$5 lib_dir
    shift 5
    lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    "$BIN/fleet-sim" --brokers "$(cat "$state/bootstrap")" --records "$records" --seed 7 \
        --devices 1000 "$@" >"$state/$name.json" || return 1
    fp_wait_for "$timeout" "the $name rows" _fp_rows_at_least "$lib_dir" "$state" "$since" \
        "$(grep -o '"distinct":[0-9]*' "$state/$name.json" | cut -d: -f2)"
}

# _fp_rows_at_least LIB_DIR STATE SINCE N: the stack's telemetry holds N rows with ts >= SINCE.
_fp_rows_at_least() {
    [ "$("$1/pg.sh" psql "$2" -At -c "SELECT count(*) FROM telemetry WHERE ts >= '$3'")" -ge "$4" ]
}

# fp_steal_seconds: CPU seconds the hypervisor has taken from this machine's cores so far (the
# steal column of /proc/stat; 0 on bare metal): a busy host shows here, not in any process.
fp_steal_seconds() {
    awk -v t="$(getconf CLK_TCK)" '$1 == "cpu" { printf "%.2f", $9 / t; f = 1 } END { if (!f) print 0 }' /proc/stat
}

# fp_cpu_seconds PID: the CPU seconds (user + system) PID has used so far with its children: those
# it reaped and those alive (a PostgreSQL postmaster and its sessions). 0 when PID is gone.
fp_cpu_seconds() {
    local c
    {
        awk '{ print $14 + $15 + $16 + $17 }' "/proc/$1/stat" 2>/dev/null || true
        for c in $(pgrep -P "$1" || true); do awk '{ print $14 + $15 }' "/proc/$c/stat" 2>/dev/null || true; done
    } | awk -v t="$(getconf CLK_TCK)" '{ s += $1 } END { printf "%.3f", s / t }'
}

# fp_metric PORT NAME [LABEL_FILTER]: prints the sum of a metric's samples on the service whose
# HTTP endpoints are on 127.0.0.1:PORT (0 when absent), optionally only samples whose labels
# contain LABEL_FILTER.
fp_metric() {
    curl -fsS "http://127.0.0.1:$1/metrics" 2>/dev/null |
        awk -v n="$2" -v f="${3:-}" \
            '($1 == n || index($1, n "{") == 1) && index($1, f) { s += $2 } END { printf "%d", s }'
    return 0 # a service not answering yet reads as 0, also under set -e and pipefail
}

# fp_bench_tmpdir GIB: where a benchmark keeps its broker's and databases' data: BENCH_TMPDIR
# when set, else /dev/shm when it is a writable tmpfs with GIB GiB free (memory: the shared disk's
# writeback stalls would otherwise be measured, see README "Benchmarks"), else /tmp.
fp_bench_tmpdir() {
    local free_kib
    if [ -n "${BENCH_TMPDIR:-}" ]; then
        echo "$BENCH_TMPDIR"
        return
    fi
    if [ -d /dev/shm ] && [ -w /dev/shm ] && [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ]; then
        free_kib=$(df -Pk /dev/shm | awk 'NR == 2 { print $4 }')
        if [ "${free_kib:-0}" -ge $(($1 * 1048576)) ]; then
            echo /dev/shm
            return
        fi
    fi
    echo /tmp
}
