#!/usr/bin/env bash
# Secrets never reach a log: each service starts with one secret of every kind it can be given
# (libpq's password and sslpassword in a key=value DSN, in a URI's user-info and query, a password
# with a space, the rest of an unquoted one; URL user-info and query values in GEOCODER_URL and
# ASSETS_URL; librdkafka's sasl.password, ssl.key.password, sasl.oauthbearer.config and
# ssl.keystore.password), against a broker and a database that are not there, so that it logs its
# effective configuration and its connection errors. No line of any log may hold a secret.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
it_init secrets

# Ports on which nothing listens: every connection fails (and is logged).
KPORT=$(fp_free_port)
PGPORT=$(fp_free_port)
PIDS=()
stop_all() {
    for p in "${PIDS[@]}"; do fp_stop_pid "$p" 10 >/dev/null 2>&1; done
    PIDS=()
}
trap 'stop_all; it_cleanup' EXIT

# The secrets, each unique so that a grep finds exactly it.
S_KAFKA=S3cr3t-kafka-sasl-pw
S_SSLKEY=S3cr3t-ssl-key-pw
S_OAUTH=S3cr3t-oauth-ext
S_CLIENT=S3cr3t-keystore-pw
S_GEO_PW=S3cr3t-geo-user-pw
S_API=S3cr3t-asset-api-key
S_KV="S3cr3t kv spaced pw"
S_SSLPW=S3cr3t-kv-sslpassword
S_URI_PW=S3cr3t-uri-userinfo-pw
S_URI_Q=S3cr3t-uri-query-pw
S_URI_SSL=S3cr3t-uri-sslpassword
S_HALF=S3cr3t-half
S_REST=rest-of-S3cr3t
SECRETS=("$S_KAFKA" "$S_SSLKEY" "$S_OAUTH" "$S_CLIENT" "$S_GEO_PW" "$S_API" "$S_KV" "S3cr3t kv"
    "$S_SSLPW" "$S_URI_PW" "$S_URI_Q" "$S_URI_SSL" "$S_HALF" "$S_REST")

# The librdkafka secrets every service gets (SASL over plaintext, so that they are used).
export RDKAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT RDKAFKA_SASL_MECHANISMS=PLAIN
export RDKAFKA_SASL_USERNAME=fleetpipe RDKAFKA_SASL_PASSWORD=$S_KAFKA
export RDKAFKA_SSL_KEY_PASSWORD=$S_SSLKEY
export RDKAFKA_SASL_OAUTHBEARER_CONFIG="principal=fleetpipe extension_traceid=$S_OAUTH"
export RDKAFKA_CONSUMER_SSL_KEYSTORE_PASSWORD=$S_CLIENT
export KAFKA_BROKERS=127.0.0.1:$KPORT HTTP_PORT=0 LOG_LEVEL=debug

# start NAME BINARY [VAR=VALUE...]: starts a service with its log in $STATE/NAME.log.
start() {
    local name=$1 bin=$2
    shift 2
    env "$@" "$BIN/$bin" >"$STATE/$name.log" 2>&1 &
    PIDS+=($!)
}
logged() { grep -q "$2" "$STATE/$1.log"; }

start parser parser-svc
start enricher enricher-svc \
    "GEOCODER_URL=http://geo:$S_GEO_PW@127.0.0.1:$KPORT/nominatim" \
    "ASSETS_URL=http://127.0.0.1:$KPORT/assets/{device_id}?api_key=$S_API&format=json"
start sink-kv sink-svc \
    "PG_DSN=host=127.0.0.1 port=$PGPORT dbname=x user=fp password='$S_KV' sslpassword=$S_SSLPW connect_timeout=2"
start sink-uri sink-svc \
    "PG_DSN=postgresql://fp:$S_URI_PW@127.0.0.1:$PGPORT/x?sslpassword=$S_URI_SSL&connect_timeout=2"
start sink-query sink-svc \
    "PG_DSN=postgresql://fp@127.0.0.1:$PGPORT/x?password=$S_URI_Q&connect_timeout=2"
# A password with a space and no quotes: libpq cannot parse it, the sink refuses to start.
start sink-bad sink-svc "PG_DSN=host=127.0.0.1 port=$PGPORT password=$S_HALF $S_REST dbname=x"

# Each service got as far as logging its configuration and a connection error.
for s in parser enricher; do
    if fp_wait_for 20 "$s config and kafka error" eval "logged $s 'effective configuration' && logged $s 'Connection refused'"; then
        pass "$s logged its configuration and a broker error"
    else
        fail "$s logged its configuration and a broker error" "$(tail -n 5 "$STATE/$s.log")"
    fi
done
for s in sink-kv sink-uri sink-query; do
    if fp_wait_for 20 "$s database error" eval "logged $s 'effective configuration' && logged $s 'database unavailable'"; then
        pass "$s logged its configuration and why the database is unavailable"
    else
        fail "$s logged its configuration and why the database is unavailable" "$(tail -n 5 "$STATE/$s.log")"
    fi
done
bad_pid=${PIDS[5]}
if fp_wait_for 10 "sink-bad to exit" eval "! _fp_alive $bad_pid"; then
    wait "$bad_pid"
    expect_eq "a DSN libpq cannot parse: exit code 2" "$?" 2
else
    fail "a DSN libpq cannot parse: the sink exits"
fi
logged sink-bad 'not a libpq connection string' && pass "the refusal says why" ||
    fail "the refusal says why" "$(cat "$STATE/sink-bad.log")"
stop_all

# No line of any log holds any secret.
leaks=0
for s in "${SECRETS[@]}"; do
    if grep -F -l -- "$s" "$STATE"/*.log >/dev/null; then
        leaks=$((leaks + 1))
        fail "secret \"$s\" is in no log" "$(grep -F -- "$s" "$STATE"/*.log | cut -c1-300 | head -n 3)"
    fi
done
[ "$leaks" -eq 0 ] && pass "none of ${#SECRETS[@]} secrets in $(cat "$STATE"/*.log | wc -l) log lines"
# The configuration still shows what is not secret.
logged sink-kv 'host=127.0.0.1' && logged enricher '{device_id}' && pass "what is not secret still shows" ||
    fail "what is not secret still shows"

finish secrets
