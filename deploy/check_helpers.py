#!/usr/bin/env python3
"""Checks of deploy/ that need a YAML or JSON parser; deploy/check.sh runs them.

Usage (from the repository root):
  check_helpers.py k8s-policy VARIANT < rendered.yaml
      the rendered manifests of one kustomization hold what every fleetpipe Deployment needs
  check_helpers.py rules-annotations
      every rule in deploy/prometheus/rules.yml has summary, description and a runbook_url
      whose section exists in deploy/prometheus/RUNBOOK.md
  check_helpers.py prometheusrule
      print deploy/k8s/base/prometheusrule.yaml as generated from deploy/prometheus/rules.yml
  check_helpers.py prometheusrule-sync
      deploy/k8s/base/prometheusrule.yaml holds exactly the groups of rules.yml
  check_helpers.py dashboard
      deploy/grafana/fleetpipe.json and fleetpipe-rollups.json are dashboards whose panels use
      a datasource variable, each target a query of its datasource's kind
  check_helpers.py dashboard-sql OUTDIR
      writes every SQL query of the dashboards into OUTDIR/NN.sql, Grafana's macros expanded
      for the last 7 days, for deploy/check.sh to run against the embedded stack's database
  check_helpers.py compose-refs
      every file, service and volume that deploy/compose/compose.yaml refers to exists
  check_helpers.py metric-names SCRAPE_FILE...
      every metric named by the rules and the dashboard is in one of the scrapes (or is one of
      EXTERNAL_METRICS, or is recorded by a rule)

Each prints what is wrong and exits 1, or exits 0 (printing a short summary at most). Needs
PyYAML (Debian: python3-yaml, which yamllint depends on).
"""

import json
import os
import re
import sys

try:
    import yaml
except ImportError:  # pragma: no cover - depends on the machine
    sys.stderr.write("check_helpers: PyYAML is missing (apt-get install python3-yaml)\n")
    sys.exit(1)

DEPLOY = os.path.dirname(os.path.abspath(__file__))
RULES = os.path.join(DEPLOY, "prometheus", "rules.yml")
RUNBOOK = os.path.join(DEPLOY, "prometheus", "RUNBOOK.md")
PROMETHEUSRULE = os.path.join(DEPLOY, "k8s", "base", "prometheusrule.yaml")
DASHBOARD = os.path.join(DEPLOY, "grafana", "fleetpipe.json")
DASHBOARDS = [DASHBOARD, os.path.join(DEPLOY, "grafana", "fleetpipe-rollups.json")]
COMPOSE = os.path.join(DEPLOY, "compose", "compose.yaml")

# Metrics the rules and the dashboard use that fleetpipe's services do not export, each with
# the reason. Anything else must appear in a live scrape of the three services.
EXTERNAL_METRICS = {
    "up": "written by Prometheus itself for every scrape target",
    "kafka_consumergroup_lag": "exported by kafka_exporter (compose runs it; Strimzi's Kafka Exporter on Kubernetes)",
}

PROMQL_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "inf", "nan", "atan2", "start", "end",
}


class Problems:
    """Collects problems; report() prints them and gives the exit code."""

    def __init__(self):
        self.items = []

    def add(self, text):
        self.items.append(text)

    def report(self, ok_text=None):
        for p in self.items:
            print(p)
        if not self.items and ok_text:
            print(ok_text)
        return 1 if self.items else 0


def load_yaml(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


# --- Kubernetes ------------------------------------------------------------------------------


def _env_value(container, name, configmaps):
    """The value NAME gets in CONTAINER: an explicit env entry wins over envFrom ConfigMaps."""
    for e in container.get("env") or []:
        if e.get("name") == name and "value" in e:
            return e["value"]
    value = None
    for src in container.get("envFrom") or []:
        ref = (src.get("configMapRef") or {}).get("name")
        if ref in configmaps and name in configmaps[ref]:
            value = configmaps[ref][name]
    return value


def k8s_policy(variant):
    """Checks the rendered manifests of one kustomization (read from stdin)."""
    problems = Problems()
    docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d.get("kind"), []).append(d)
    configmaps = {c["metadata"]["name"]: c.get("data") or {} for c in by_kind.get("ConfigMap", [])}
    secrets = {s["metadata"]["name"] for s in by_kind.get("Secret", [])}
    services = {s["metadata"]["name"]: s for s in by_kind.get("Service", [])}
    pdbs = {p["spec"]["selector"]["matchLabels"].get("app.kubernetes.io/name")
            for p in by_kind.get("PodDisruptionBudget", [])}
    deployments = by_kind.get("Deployment", [])
    if len(deployments) != 3:
        problems.add(f"{variant}: {len(deployments)} Deployments, expected 3")

    for dep in deployments:
        name = dep["metadata"]["name"]
        where = f"{variant}: Deployment {name}"
        pod = dep["spec"]["template"]["spec"]
        psc = pod.get("securityContext") or {}
        if psc.get("runAsNonRoot") is not True:
            problems.add(f"{where}: pod securityContext.runAsNonRoot is not true")
        if (psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            problems.add(f"{where}: pod seccompProfile is not RuntimeDefault")
        grace = pod.get("terminationGracePeriodSeconds", 30)
        if name not in pdbs:
            problems.add(f"{where}: no PodDisruptionBudget selects it")
        for vol in pod.get("volumes") or []:
            cm = (vol.get("configMap") or {}).get("name")
            if cm and cm not in configmaps:
                problems.add(f"{where}: volume {vol['name']} names ConfigMap {cm}, not rendered")
        for c in pod["containers"]:
            cwhere = f"{where} container {c['name']}"
            csc = c.get("securityContext") or {}
            if csc.get("allowPrivilegeEscalation") is not False:
                problems.add(f"{cwhere}: allowPrivilegeEscalation is not false")
            if csc.get("readOnlyRootFilesystem") is not True:
                problems.add(f"{cwhere}: readOnlyRootFilesystem is not true")
            if "ALL" not in ((csc.get("capabilities") or {}).get("drop") or []):
                problems.add(f"{cwhere}: capabilities do not drop ALL")
            res = c.get("resources") or {}
            for kind in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in (res.get(kind) or {}):
                        problems.add(f"{cwhere}: no {kind}.{r}")
            for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
                got = ((c.get(probe) or {}).get("httpGet") or {}).get("path")
                if got != path:
                    problems.add(f"{cwhere}: {probe} path is {got}, expected {path}")
            for src in c.get("envFrom") or []:
                ref = (src.get("configMapRef") or {}).get("name")
                if ref and ref not in configmaps:
                    problems.add(f"{cwhere}: envFrom ConfigMap {ref} is not rendered")
            for e in c.get("env") or []:
                ref = ((e.get("valueFrom") or {}).get("secretKeyRef") or {})
                # Only the dev overlay ships its Secret; production's is created out of band.
                if ref and not ref.get("optional") and ref.get("name") not in secrets \
                        and variant == "overlays/dev":
                    problems.add(f"{cwhere}: env {e['name']} needs Secret {ref.get('name')}, not rendered")
            shutdown = _env_value(c, "SHUTDOWN_TIMEOUT_MS", configmaps) or "10000"
            if int(grace) * 1000 <= int(shutdown):
                problems.add(f"{cwhere}: terminationGracePeriodSeconds {grace} s is not longer than "
                             f"SHUTDOWN_TIMEOUT_MS {shutdown} ms")
            http_port = _env_value(c, "HTTP_PORT", configmaps)
            ports = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
            if http_port is None or int(http_port) != ports.get("http-metrics"):
                problems.add(f"{cwhere}: HTTP_PORT {http_port} differs from containerPort "
                             f"http-metrics {ports.get('http-metrics')}")
            annotated = (dep["spec"]["template"]["metadata"].get("annotations") or {}).get("prometheus.io/port")
            if annotated is not None and str(annotated) != str(http_port):
                problems.add(f"{cwhere}: prometheus.io/port {annotated} differs from HTTP_PORT {http_port}")
            svc = services.get(name)
            if svc is None:
                problems.add(f"{where}: no Service of the same name for the metrics port")
            else:
                sports = [p.get("port") for p in svc["spec"].get("ports") or []]
                if http_port is None or int(http_port) not in sports:
                    problems.add(f"{variant}: Service {name} ports {sports} lack HTTP_PORT {http_port}")

    scaled = {}
    for kind, max_field in (("HorizontalPodAutoscaler", "maxReplicas"), ("ScaledObject", "maxReplicaCount")):
        for obj in by_kind.get(kind, []):
            oname = obj["metadata"]["name"]
            target = obj["spec"]["scaleTargetRef"]["name"]
            if kind == "HorizontalPodAutoscaler" and obj.get("apiVersion") != "autoscaling/v2":
                problems.add(f"{variant}: HPA {oname} is {obj.get('apiVersion')}, expected autoscaling/v2")
            if target in scaled:
                problems.add(f"{variant}: {kind} {oname} and {scaled[target]} both scale {target}")
            scaled[target] = f"{kind} {oname}"
            partitions = (obj["metadata"].get("annotations") or {}).get("fleetpipe.io/topic-partitions")
            most = obj["spec"].get(max_field)
            if partitions is None:
                problems.add(f"{variant}: {kind} {oname} lacks the fleetpipe.io/topic-partitions annotation")
            elif most is None or int(most) > int(partitions):
                problems.add(f"{variant}: {kind} {oname} {max_field} {most} exceeds its topic's "
                             f"{partitions} partitions")
    for dep in deployments:
        # The base leaves autoscaling to deploy/k8s/autoscaling; every overlay must pick one.
        if variant != "base" and dep["metadata"]["name"] not in scaled:
            problems.add(f"{variant}: nothing autoscales Deployment {dep['metadata']['name']}")
    return problems.report()


# --- Prometheus rules ------------------------------------------------------------------------


def _slug(heading):
    """GitHub's anchor for a Markdown heading."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def rules_annotations():
    problems = Problems()
    rules = load_yaml(RULES)
    with open(RUNBOOK, encoding="utf-8") as f:
        anchors = {_slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", f.read(), re.M)}
    count = 0
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            count += 1
            ann = rule.get("annotations") or {}
            for key in ("summary", "description", "runbook_url"):
                if not ann.get(key):
                    problems.add(f"{rule['alert']}: no {key} annotation")
            url = ann.get("runbook_url", "")
            if "#" not in url or not url.split("#", 1)[0].endswith("RUNBOOK.md"):
                problems.add(f"{rule['alert']}: runbook_url {url!r} does not point into RUNBOOK.md")
            elif url.split("#", 1)[1] not in anchors:
                problems.add(f"{rule['alert']}: RUNBOOK.md has no section #{url.split('#', 1)[1]}")
            if (rule.get("labels") or {}).get("severity") not in ("critical", "warning", "info"):
                problems.add(f"{rule['alert']}: severity label missing or unknown")
    return problems.report(f"{count} alerts, each with summary, description and a runbook section")


class _BlockDumper(yaml.SafeDumper):
    """Dumps multi-line strings as literal blocks and indents sequences (yamllint's default)."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


def _str_representer(dumper, data):
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_BlockDumper.add_representer(str, _str_representer)


def prometheusrule_text():
    rules = load_yaml(RULES)
    obj = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "fleetpipe", "labels": {"app.kubernetes.io/part-of": "fleetpipe"}},
        "spec": {"groups": rules["groups"]},
    }
    header = (
        "# GENERATED from deploy/prometheus/rules.yml -- do not edit; regenerate with\n"
        "#   python3 deploy/check_helpers.py prometheusrule > deploy/k8s/base/prometheusrule.yaml\n"
        "# (deploy/check.sh fails while the two differ). A Prometheus selects PrometheusRules by\n"
        "# label (kube-prometheus-stack: `release: <its release name>`); add it in your overlay.\n"
    )
    return header + yaml.dump(obj, Dumper=_BlockDumper, sort_keys=False, width=100,
                              default_flow_style=False, allow_unicode=True)


def prometheusrule_sync():
    problems = Problems()
    want = load_yaml(RULES)["groups"]
    got = (load_yaml(PROMETHEUSRULE).get("spec") or {}).get("groups")
    if got != want:
        problems.add("deploy/k8s/base/prometheusrule.yaml differs from deploy/prometheus/rules.yml; run\n"
                     "  python3 deploy/check_helpers.py prometheusrule > deploy/k8s/base/prometheusrule.yaml")
    return problems.report("PrometheusRule holds the groups of rules.yml")


# --- Grafana ---------------------------------------------------------------------------------


def _panels(dashboard):
    for p in dashboard.get("panels", []):
        yield p
        for q in p.get("panels", []):  # collapsed rows
            yield q


def _one_dashboard(path, problems):
    name = os.path.basename(path)
    with open(path, encoding="utf-8") as f:
        d = json.load(f)
    if not isinstance(d.get("schemaVersion"), int):
        problems.add(f"{name}: no schemaVersion")
    if not d.get("uid") or not d.get("title"):
        problems.add(f"{name}: uid and title are required for provisioning")
    ds_vars = {v.get("name"): v.get("query") for v in d.get("templating", {}).get("list", [])
               if v.get("type") == "datasource"}
    if "datasource" not in ds_vars:
        problems.add(f"{name}: no datasource variable named 'datasource'")
    ids = set()
    count = 0
    for p in _panels(d):
        count += 1
        if p.get("id") in ids:
            problems.add(f"{name}: panel id {p.get('id')} used twice")
        ids.add(p.get("id"))
        if p.get("type") in ("row", "text"):
            continue
        uid = (p.get("datasource") or {}).get("uid", "")
        if uid not in {"${" + v + "}" for v in ds_vars}:
            problems.add(f"{name}: panel {p.get('title')!r} does not use a datasource variable")
        for t in p.get("targets", []):
            tuid = (t.get("datasource") or p.get("datasource") or {}).get("uid", "")
            kind = ds_vars.get(tuid[2:-1]) if tuid.startswith("${") else None
            if kind == "prometheus" and not t.get("expr"):
                problems.add(f"{name}: panel {p.get('title')!r} has a Prometheus target without expr")
            elif kind not in (None, "prometheus") and not t.get("rawSql"):
                problems.add(f"{name}: panel {p.get('title')!r} has an SQL target without rawSql")
            elif kind is None:
                problems.add(f"{name}: panel {p.get('title')!r} has a target without a datasource variable")
    return count


def dashboard():
    problems = Problems()
    count = sum(_one_dashboard(path, problems) for path in DASHBOARDS)
    return problems.report(f"{len(DASHBOARDS)} dashboards, {count} panels, datasources as variables")


def _sql_targets(node):
    if isinstance(node, dict):
        if isinstance(node.get("rawSql"), str):
            yield node["rawSql"]
        for v in node.values():
            yield from _sql_targets(v)
    elif isinstance(node, list):
        for v in node:
            yield from _sql_targets(v)


def dashboard_sql(outdir):
    """Grafana's PostgreSQL macros as Grafana expands them, for a range of the last 7 days."""
    frm, to = "now() - interval '7 days'", "now()"
    n = 0
    os.makedirs(outdir, exist_ok=True)
    for path in DASHBOARDS:
        with open(path, encoding="utf-8") as f:
            board = json.load(f)
        for q in _sql_targets(board):
            q = re.sub(r"\$__timeFilter\(([^)]*)\)", lambda m: f"{m.group(1)} BETWEEN {frm} AND {to}", q)
            q = q.replace("$__timeFrom()", f"({frm})").replace("$__timeTo()", f"({to})")
            if "$" in re.sub(r"\$\$", "", q):
                sys.stderr.write(f"{os.path.basename(path)}: a macro or variable this check cannot expand: {q}\n")
                return 1
            n += 1
            with open(os.path.join(outdir, f"{n:02d}.sql"), "w", encoding="utf-8") as out:
                out.write(f"-- {os.path.basename(path)}\n{q};\n")
    print(f"{n} dashboard SQL queries written")
    return 0


# --- compose ---------------------------------------------------------------------------------


def compose_refs():
    problems = Problems()
    base = os.path.dirname(COMPOSE)
    c = load_yaml(COMPOSE)
    services = c.get("services") or {}
    volumes = set((c.get("volumes") or {}).keys())
    for name, s in services.items():
        build = s.get("build")
        if build:
            ctx = os.path.normpath(os.path.join(base, build.get("context", ".")))
            if not os.path.isdir(ctx):
                problems.add(f"compose {name}: build context {ctx} does not exist")
            dockerfile = os.path.join(ctx, build.get("dockerfile", "Dockerfile"))
            if not os.path.isfile(dockerfile):
                problems.add(f"compose {name}: Dockerfile {dockerfile} does not exist")
        if not build and not s.get("image"):
            problems.add(f"compose {name}: neither image nor build")
        for v in s.get("volumes") or []:
            src = v.split(":", 1)[0] if isinstance(v, str) else v.get("source", "")
            if src.startswith((".", "/")):
                if not os.path.exists(os.path.normpath(os.path.join(base, src))):
                    problems.add(f"compose {name}: bind mount source {src} does not exist")
            elif src and src not in volumes:
                problems.add(f"compose {name}: volume {src} is not declared")
        deps = s.get("depends_on") or {}
        for dep in (deps if isinstance(deps, (list, dict)) else []):
            if dep not in services:
                problems.add(f"compose {name}: depends_on {dep}, no such service")
        mode = s.get("network_mode", "")
        if mode.startswith("service:") and mode.split(":", 1)[1] not in services:
            problems.add(f"compose {name}: network_mode {mode}, no such service")
    return problems.report(f"{len(services)} services, every reference resolves")


# --- metric names ----------------------------------------------------------------------------


def promql_metric_names(expr):
    """The metric names an expression selects: identifiers that are not functions, keywords,
    label names (inside {...} or by/without/on/ignoring/group_x (...)) or duration units."""
    s = re.sub(r"\$\{?\w+(:\w+)?\}?", " ", expr)  # Grafana variables: $__rate_interval, ${x}
    s = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', '""', s)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", s):
        tok = m.group(0)
        before = s[m.start() - 1] if m.start() > 0 else " "
        if before.isdigit() or before == ".":
            continue  # 5m, 1e3
        if re.match(r"\s*\(", s[m.end():]):
            continue  # function or aggregation
        if tok.lower() in PROMQL_KEYWORDS:
            continue
        names.add(tok)
    return names


def _dashboard_exprs(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "expr" and isinstance(v, str):
                yield v
            else:
                yield from _dashboard_exprs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _dashboard_exprs(v)


def _scraped_names(paths):
    """Sample names and # TYPE families of Prometheus text-format scrapes."""
    names = set()
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith("# TYPE "):
                    parts = line.split()
                    names.add(parts[2])
                    if len(parts) > 3 and parts[3] in ("histogram", "summary"):
                        for suffix in ("_bucket", "_sum", "_count"):
                            names.add(parts[2] + suffix)
                elif line.strip() and not line.startswith("#"):
                    names.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return names


def _base_name(name, scraped):
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in scraped:
            return name[: -len(suffix)]
    return name


def metric_names(scrapes):
    problems = Problems()
    scraped = _scraped_names(scrapes)
    used = {}
    recorded = set()
    for group in load_yaml(RULES)["groups"]:
        for rule in group["rules"]:
            if "record" in rule:
                recorded.add(rule["record"])
            for n in promql_metric_names(str(rule["expr"])):
                used.setdefault(n, set()).add("rules.yml")
    for path in DASHBOARDS:
        name = os.path.basename(path)
        with open(path, encoding="utf-8") as f:
            board = json.load(f)
        for expr in _dashboard_exprs(board):
            for n in promql_metric_names(expr):
                used.setdefault(n, set()).add(name)
        for var in board.get("templating", {}).get("list", []):
            if var.get("type") != "query":
                continue
            query = var.get("query")
            query = query.get("query", "") if isinstance(query, dict) else str(query or "")
            m = re.match(r"\s*label_values\(\s*(.*?)\s*,\s*\w+\s*\)\s*$", query)
            m = m or re.match(r"\s*query_result\((.*)\)\s*$", query)
            for n in promql_metric_names(m.group(1) if m else query):
                used.setdefault(n, set()).add(name + " variable " + var.get("name", "?"))
    checked = set()
    for name in sorted(used):
        if name in EXTERNAL_METRICS or name in recorded:
            continue
        base = _base_name(name, scraped)
        checked.add(base)
        if name not in scraped:
            shown = re.sub(r"_(bucket|sum|count)$", "", name)
            shown = shown if shown == name else f"{shown} (as {name})"
            problems.add(f"missing from the live scrape: {shown}, used in {', '.join(sorted(used[name]))}")
    for name in sorted(set(used) & set(EXTERNAL_METRICS)):
        print(f"external, not checked: {name} ({EXTERNAL_METRICS[name]})")
    return problems.report(f"{len(checked)} fleetpipe metric names used, all in the live scrape")


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    cmd, args = argv[1], argv[2:]
    if cmd == "k8s-policy" and len(args) == 1:
        return k8s_policy(args[0])
    if cmd == "rules-annotations":
        return rules_annotations()
    if cmd == "prometheusrule":
        sys.stdout.write(prometheusrule_text())
        return 0
    if cmd == "prometheusrule-sync":
        return prometheusrule_sync()
    if cmd == "dashboard":
        return dashboard()
    if cmd == "dashboard-sql" and len(args) == 1:
        return dashboard_sql(args[0])
    if cmd == "compose-refs":
        return compose_refs()
    if cmd == "metric-names" and args:
        return metric_names(args)
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
