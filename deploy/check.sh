#!/usr/bin/env bash
# Checks everything under deploy/ that can be checked without a container engine or a cluster:
#
#   kustomize      `kubectl kustomize` renders deploy/k8s/base and every overlay (dev, production,
#                  production-keda), and each rendering holds what the Deployments need
#                  (deploy/check_helpers.py k8s-policy: non-root, read-only root, no capabilities,
#                  probes, requests and limits, grace period > SHUTDOWN_TIMEOUT_MS, ports,
#                  ConfigMap references, autoscalers within the topics' partitions)
#   yamllint       every YAML file under deploy/ (deploy/.yamllint, --strict)
#   promtool       `promtool check rules` and `promtool check config`
#   rules          every alert has summary, description and a runbook_url with its RUNBOOK.md
#                  section; the k8s PrometheusRule holds exactly the groups of rules.yml
#   grafana        the dashboards are valid JSON (python3 -m json.tool) and use their datasource
#                  variables
#   compose        every file, volume and service compose.yaml refers to exists
#   metric names   starts the embedded stack (deploy/local/stack.sh), sends 200 records with
#                  damaged frames through it, runs every SQL query of the dashboards against its
#                  database, scrapes the three services' /metrics and fails on any metric the
#                  rules or the dashboards use that no service exports (external ones are
#                  listed with their reason in check_helpers.py)
#
# Usage: deploy/check.sh              (from anywhere; `make lint-deploy`, and `make test` runs it)
# Environment: BIN (the binaries, default bin), KUBECTL, YAMLLINT, PROMTOOL, PYTHON (the tools,
# default from PATH; `make deps` installs them). The last line is "deploy: N passed, N failed";
# the exit status is 1 when any check failed.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
cd "$ROOT" || exit 1
# shellcheck source=deploy/local/lib.sh
. "$ROOT/deploy/local/lib.sh"

BIN=${BIN:-bin}
case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac
export BIN
KUBECTL=${KUBECTL:-kubectl}
YAMLLINT=${YAMLLINT:-yamllint}
PROMTOOL=${PROMTOOL:-promtool}
# The helpers need PyYAML: Debian's python3-yaml (make deps) when the python3 first in PATH (a
# virtualenv, pyenv) lacks it.
if [ -z "${PYTHON:-}" ]; then
    PYTHON=python3
    if ! python3 -c 'import yaml' >/dev/null 2>&1 && [ -x /usr/bin/python3 ]; then
        PYTHON=/usr/bin/python3
    fi
fi
HELPERS=(deploy/check_helpers.py)
K8S_VARIANTS=(base overlays/dev overlays/production overlays/production-keda)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/fleetpipe-deploy-check.XXXXXX") || exit 1
STACK="$WORK/stack"

# The embedded stack is stopped whatever happens: success, a failed check, Ctrl-C.
cleanup() {
    if [ -d "$STACK" ]; then
        deploy/local/stack.sh stop "$STACK" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

passed=0
failed=0

# run_check NAME FUNCTION [ARGS...]: runs FUNCTION with its output captured. On success prints
# "ok" with the output's last line as a summary; on failure prints "FAIL" and the output.
run_check() {
    local name=$1 log="$WORK/check.log" start rc summary secs
    shift
    start=$(_fp_now_ms)
    "$@" >"$log" 2>&1
    rc=$?
    secs=$((($(_fp_now_ms) - start + 500) / 1000))
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        summary=$(grep -v "^[[:space:]]*$" "$log" | tail -n 1 | sed "s/^[[:space:]]*//")
        printf 'ok    %-44s %3ss  %s\n' "$name" "$secs" "$summary"
    else
        failed=$((failed + 1))
        printf 'FAIL  %-44s %3ss\n' "$name" "$secs"
        tail -n 60 "$log" | sed 's/^/      /'
    fi
}

# need TOOL HINT: fails with a hint when TOOL is not installed.
need() {
    if ! command -v "$1" >/dev/null 2>&1; then
        echo "$1 not found: $2"
        return 1
    fi
}

check_kustomize() {
    local variant=$1 out="$WORK/rendered.yaml" err="$WORK/kustomize.err"
    need "$KUBECTL" "install kubectl (make deps: Debian's kubernetes-client)" || return 1
    if ! "$KUBECTL" kustomize "deploy/k8s/$variant" >"$out" 2>"$err"; then
        cat "$err"
        return 1
    fi
    # Newer kustomize warns about the fields kept for v2.0.3 (bases, patchesStrategicMerge).
    grep -v "^# Warning: '[A-Za-z]*' is deprecated" "$err" || true
    "$PYTHON" "${HELPERS[@]}" k8s-policy "$variant" <"$out" || return 1
    echo "$(grep -c '^kind:' "$out") objects"
}

check_yamllint() {
    need "$YAMLLINT" "install yamllint (make deps)" || return 1
    "$YAMLLINT" --strict -c deploy/.yamllint deploy || return 1
    echo "$(find deploy -name '*.yaml' -o -name '*.yml' | wc -l) files"
}

check_promtool_rules() {
    need "$PROMTOOL" "install promtool (make deps: Debian's prometheus)" || return 1
    "$PROMTOOL" check rules deploy/prometheus/rules.yml
}

check_promtool_config() {
    need "$PROMTOOL" "install promtool (make deps: Debian's prometheus)" || return 1
    "$PROMTOOL" check config deploy/prometheus/prometheus.yml
}

check_rules() {
    "$PYTHON" "${HELPERS[@]}" rules-annotations || return 1
    "$PYTHON" "${HELPERS[@]}" prometheusrule-sync
}

check_dashboard() {
    local f
    for f in deploy/grafana/*.json; do
        "$PYTHON" -m json.tool "$f" >/dev/null || return 1
    done
    "$PYTHON" "${HELPERS[@]}" dashboard
}

check_compose() {
    "$PYTHON" "${HELPERS[@]}" compose-refs
}

# positive_metric PORT NAME: succeeds when the metric's samples on a stack service sum above 0.
positive_metric() {
    [ "$(fp_metric "$1" "$2")" -gt 0 ]
}

check_metric_names() {
    local svc port f
    for svc in parser-svc enricher-svc sink-svc fleet-sim devkafka lookup-stub; do
        if [ ! -x "$BIN/$svc" ]; then
            echo "$BIN/$svc is not built (run make)"
            return 1
        fi
    done
    if ! ENRICH_LOOKUPS=stub deploy/local/stack.sh start "$STACK"; then
        echo "the embedded stack did not start"
        tail -n 20 "$STACK"/*.log 2>/dev/null
        return 1
    fi
    # Damaged frames make the parser's DLQ counters exist; the rows make the sink's histograms
    # observe something.
    if ! "$BIN/fleet-sim" --brokers "$(cat "$STACK/bootstrap")" --records 200 --corrupt-rate 0.1 \
        >"$WORK/fleet-sim.out"; then
        echo "fleet-sim failed"
        return 1
    fi
    fp_wait_for 60 "DLQ messages from the parser" \
        positive_metric "$(cat "$STACK/parser.port")" fleetpipe_dlq_messages_total || true
    fp_wait_for 60 "rows in the database" \
        positive_metric "$(cat "$STACK/sink.port")" fleetpipe_sink_rows_inserted_total || true
    # The dashboards' SQL against the schema the sink made (an error is a broken panel).
    "$PYTHON" "${HELPERS[@]}" dashboard-sql "$WORK/sql" || return 1
    for f in "$WORK"/sql/*.sql; do
        if ! deploy/local/pg.sh psql "$STACK" -At -f "$f" >/dev/null; then
            echo "dashboard query failed: $f"
            cat "$f"
            return 1
        fi
    done
    for svc in parser enricher sink; do
        port=$(cat "$STACK/$svc.port")
        if ! curl -fsS -o "$WORK/scrape.$svc" "http://127.0.0.1:$port/metrics"; then
            echo "could not scrape $svc on port $port"
            return 1
        fi
    done
    deploy/local/stack.sh stop "$STACK" >/dev/null 2>&1 || true
    rm -rf "$STACK"
    "$PYTHON" "${HELPERS[@]}" metric-names "$WORK/scrape.parser" "$WORK/scrape.enricher" \
        "$WORK/scrape.sink"
}

started=$(_fp_now_ms)
for variant in "${K8S_VARIANTS[@]}"; do
    run_check "kustomize $variant" check_kustomize "$variant"
done
run_check "yamllint deploy/" check_yamllint
run_check "promtool check rules" check_promtool_rules
run_check "promtool check config" check_promtool_config
run_check "rules: annotations, runbook, PrometheusRule" check_rules
run_check "grafana dashboards JSON" check_dashboard
run_check "compose references" check_compose
run_check "dashboard SQL, metric names in a live stack" check_metric_names

echo "deploy: checks took $((($(_fp_now_ms) - started + 500) / 1000)) s"
echo "deploy: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
