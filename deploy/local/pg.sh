#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the embedded stack and the tests.
#
#   pg.sh start STATE_DIR          initdb, start on a free port of 127.0.0.1, create database
#                                  fleetpipe, write STATE_DIR/pg.env, print the DSN
#   pg.sh stop STATE_DIR           stop the server, delete its data, remove pg.env (idempotent)
#   pg.sh pause STATE_DIR          stop the server but keep its data (outage tests)
#   pg.sh resume STATE_DIR         start it again on the same port and wait until it is ready
#   pg.sh psql STATE_DIR [ARGS...] run psql against database fleetpipe
#
# The data directory, the socket and the server log live in a folder made by
# `mktemp -d $PG_TMPDIR/fleetpipe-pg.XXXXXX` (PG_TMPDIR: default /tmp; /dev/shm keeps the cluster
# in memory), so that the postgres user can reach them whatever the repository's path;
# STATE_DIR/pg.env records where (PG_DATA, PG_SOCKDIR, PG_PORT, PG_LOG, PG_DSN, PG_PID) and can be
# sourced by other scripts. Started by root, the server runs as the postgres user (initdb and
# postgres refuse to run as root); otherwise as the current user. On stop the server log is kept
# as STATE_DIR/postgres.log. Authentication is `trust` and the server listens on 127.0.0.1 only.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=deploy/local/lib.sh
. "$HERE/lib.sh"

TMP_PREFIX=${PG_TMPDIR:-/tmp}/fleetpipe-pg.

die() {
    echo "pg.sh: $*" >&2
    exit 1
}

usage() {
    echo "usage: pg.sh start|stop|pause|resume STATE_DIR | pg.sh psql STATE_DIR [psql args...]" >&2
    exit 2
}

# as_server_user CMD...: runs CMD as the user the server runs as (see the header), in a folder
# that user can enter (runuser keeps the working directory, which may be /root).
as_server_user() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

# server_options PORT SOCKDIR: the options of every start (start and resume must match).
# fsync and full_page_writes are off: the cluster is thrown away after the run, so crash safety
# buys nothing and costs the tests time. Commit timestamps are kept so that a row's latency can
# be measured to the moment it became visible (pg_xact_commit_timestamp(xmin)), not to its
# insert (stored_at), which precedes the commit by up to a batch's gathering time.
server_options() {
    echo "-p $1 -k $2 -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c track_commit_timestamp=on"
}

# quote VALUE: VALUE in single quotes, safe to source.
quote() {
    local q="'\\''"
    printf "'%s'" "${1//\'/$q}"
}

# write_env STATE_DIR: writes STATE_DIR/pg.env from the PG_* variables, atomically.
write_env() {
    local env=$1/pg.env
    {
        echo "# Written by deploy/local/pg.sh; source it for the addresses of the throwaway cluster."
        echo "PG_DATA=$(quote "$PG_DATA")"
        echo "PG_SOCKDIR=$(quote "$PG_SOCKDIR")"
        echo "PG_PORT=$(quote "$PG_PORT")"
        echo "PG_LOG=$(quote "$PG_LOG")"
        echo "PG_DSN=$(quote "$PG_DSN")"
        echo "PG_PID=$(quote "$PG_PID")"
    } >"$env.tmp" || die "cannot write $env.tmp"
    mv -f "$env.tmp" "$env" || die "cannot write $env"
}

# load_env STATE_DIR: sources STATE_DIR/pg.env; fails (without a message) if there is none.
load_env() {
    [ -f "$1/pg.env" ] || return 1
    PG_DATA="" PG_SOCKDIR="" PG_PORT="" PG_LOG="" PG_DSN="" PG_PID=""
    # shellcheck disable=SC1091
    . "$1/pg.env"
    # The folder is deleted with rm -rf on stop: never trust it unless it is one of ours.
    case "$PG_SOCKDIR" in
    "$TMP_PREFIX"??????) ;;
    *) die "$1/pg.env: PG_SOCKDIR '$PG_SOCKDIR' is not a $TMP_PREFIX* folder" ;;
    esac
}

# postmaster_pid: prints the server's PID from postmaster.pid, or nothing when there is none.
postmaster_pid() {
    local pid=""
    if [ -f "$PG_DATA/postmaster.pid" ]; then
        read -r pid <"$PG_DATA/postmaster.pid" || true
    fi
    echo "$pid"
}

# is_postmaster PID: succeeds when PID is a live (not zombie) process running the postgres
# program. Guards every signal sent to a PID from pg.env or postmaster.pid, which may be stale
# (crash, reboot) and then name an unrelated process.
is_postmaster() {
    local comm=""
    [ -n "$1" ] && _fp_alive "$1" || return 1
    { read -r comm <"/proc/$1/comm"; } 2>/dev/null || return 1
    [ "$comm" = postgres ]
}

# remove_stale_lock LOCKFILE [FILE...]: removes a killed server's lock file (and FILEs) when the
# PID on its first line is not a live postmaster. PostgreSQL ignores a stale lock itself only when
# that PID is gone, and a killed postmaster lingers as a zombie where init reaps slowly.
remove_stale_lock() {
    local pid=""
    [ -f "$1" ] || return 0
    { read -r pid <"$1"; } 2>/dev/null || true
    if ! is_postmaster "$pid"; then
        rm -f "$@"
    fi
}

is_ready() {
    "$BINDIR/pg_isready" -q -t 2 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres
}

# start_server: starts the server described by the PG_* variables and waits until it accepts
# connections; sets PG_PID. Returns 1 after printing the log's tail when it does not come up.
start_server() {
    local opts
    opts=$(server_options "$PG_PORT" "$PG_SOCKDIR")
    remove_stale_lock "$PG_DATA/postmaster.pid"
    remove_stale_lock "$PG_SOCKDIR/.s.PGSQL.$PG_PORT.lock" "$PG_SOCKDIR/.s.PGSQL.$PG_PORT"
    if ! as_server_user "$BINDIR/pg_ctl" start -D "$PG_DATA" -l "$PG_LOG" -o "$opts" \
        -w -t 30 -s; then
        echo "pg.sh: the server did not start; the end of $PG_LOG:" >&2
        tail -n 15 "$PG_LOG" >&2 || true
        return 1
    fi
    fp_wait_for 30 "PostgreSQL on 127.0.0.1:$PG_PORT" is_ready || return 1
    PG_PID=$(postmaster_pid)
}

# stop_server: stops the server (fast shutdown) if it runs; falls back to signalling PG_PID.
stop_server() {
    local pid
    pid=$(postmaster_pid)
    if is_postmaster "$pid"; then
        if ! as_server_user "$BINDIR/pg_ctl" stop -D "$PG_DATA" -m fast -w -t 30 -s; then
            echo "pg.sh: pg_ctl stop failed; signalling the postmaster" >&2
        fi
    fi
    for pid in "$pid" "$PG_PID"; do
        if is_postmaster "$pid"; then
            fp_stop_pid "$pid" 10 || die "cannot stop the postmaster (PID $pid)"
        fi
    done
}

cmd_start() {
    local state=$1 tries
    mkdir -p "$state" || die "cannot create $state"
    if load_env "$state"; then
        if is_postmaster "$PG_PID"; then
            die "already running ($state/pg.env, PID $PG_PID); run pg.sh stop $state first"
        fi
        echo "pg.sh: cleaning up a stale cluster left in $state/pg.env" >&2
        cmd_stop "$state"
    fi

    if [ "$(id -u)" -eq 0 ] && ! id -u postgres >/dev/null 2>&1; then
        die "running as root needs a 'postgres' user to run the server as (initdb refuses root)"
    fi
    PG_SOCKDIR=$(mktemp -d "${TMP_PREFIX}XXXXXX") || die "mktemp -d ${TMP_PREFIX}XXXXXX failed"
    # Until pg.env is written, a failure must not leave the folder or a server behind.
    trap 'start_failed' EXIT
    trap 'exit 130' INT TERM
    PG_DATA=$PG_SOCKDIR/data
    PG_LOG=$PG_SOCKDIR/postgres.log
    PG_PID=""
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$PG_SOCKDIR" || die "cannot chown $PG_SOCKDIR to postgres"
    fi

    if ! as_server_user "$BINDIR/initdb" -D "$PG_DATA" --auth=trust -U postgres -E UTF8 \
        --locale=C --no-sync >"$PG_SOCKDIR/initdb.log" 2>&1; then
        cat "$PG_SOCKDIR/initdb.log" >&2
        die "initdb failed"
    fi

    # A free port can be taken before the server binds it: then try another one.
    for tries in 1 2 3; do
        PG_PORT=$(fp_free_port) || die "no free TCP port on 127.0.0.1"
        if start_server; then
            break
        fi
        if [ "$tries" = 3 ] || ! grep -q 'already in use' "$PG_LOG" 2>/dev/null; then
            die "cannot start PostgreSQL (log: $PG_LOG)"
        fi
        echo "pg.sh: port $PG_PORT was taken; trying another" >&2
    done

    PG_DSN="host=127.0.0.1 port=$PG_PORT dbname=fleetpipe user=postgres"
    "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 \
        -d "host=127.0.0.1 port=$PG_PORT dbname=postgres user=postgres" \
        -c 'CREATE DATABASE fleetpipe' || die "cannot create database fleetpipe"
    write_env "$state"
    trap - EXIT INT TERM
    echo "$PG_DSN"
}

# start_failed: the EXIT trap of a start that did not finish; removes what it made.
start_failed() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "${PG_DATA:-}" ] && [ -d "$PG_DATA" ]; then
        (stop_server) >/dev/null 2>&1 || true
    fi
    case "${PG_SOCKDIR:-}" in "$TMP_PREFIX"??????) rm -rf "$PG_SOCKDIR" ;; esac
    exit "$rc"
}

cmd_stop() {
    local state=$1
    load_env "$state" || return 0
    stop_server
    if [ -f "$PG_LOG" ]; then
        cp -f "$PG_LOG" "$state/postgres.log" 2>/dev/null || true
    fi
    rm -rf "$PG_SOCKDIR" || die "cannot remove $PG_SOCKDIR"
    rm -f "$state/pg.env"
}

cmd_pause() {
    local state=$1
    load_env "$state" || die "not started: no $state/pg.env"
    stop_server
    PG_PID=""
    write_env "$state"
}

cmd_resume() {
    local state=$1
    load_env "$state" || die "not started: no $state/pg.env"
    [ -d "$PG_DATA" ] || die "the data of $state/pg.env is gone ($PG_DATA)"
    if is_postmaster "$PG_PID" && is_ready; then
        return 0
    fi
    start_server || die "cannot restart PostgreSQL on port $PG_PORT (log: $PG_LOG)"
    write_env "$state"
}

cmd_psql() {
    local state=$1
    shift
    load_env "$state" || die "not started: no $state/pg.env"
    exec "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d "$PG_DSN" "$@"
}

[ $# -ge 2 ] || usage
cmd=$1
state=$2
shift 2
[ -n "$state" ] || usage
BINDIR=$(fp_pg_bindir) || exit 1
case "$cmd" in
start | stop | pause | resume)
    [ $# -eq 0 ] || usage
    "cmd_$cmd" "$state"
    ;;
psql) cmd_psql "$state" "$@" ;;
*) usage ;;
esac
