"""Evaluates every query manifests/ holds through a live Prometheus's HTTP
API (dashboard panels, alert rules, autoscaler queries) and checks that
every sluice_* name manifests/ reads is on a real /metrics page; prints
one table of results."""

import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .common import (RULES, adapter_query, adapter_rules, dashboard_panels,
                     keda_queries, load_yaml, load_yaml_all, report)

# Panels that read kube-state-metrics (HPA and Deployment state) cannot have
# data without a cluster; their queries are still parsed.
KUBE = re.compile(r"\bkube_[a-z_]+")

# Names manifests/ read that the binaries do not export yet: bugs on the
# Rust side, reported as GAP (failing with LIVE_CHECK_STRICT=1). A name
# listed here that is exported fails the check: then delete it here.
# For example: {"sluice_example_total": "not registered at zero"}.
KNOWN_GAPS = {}
GAP = re.compile(r"\b(%s)\b" % "|".join(KNOWN_GAPS)) if KNOWN_GAPS else None
# Alerts the load must set off: one malformed message was dead-lettered.
EXPECT_ACTIVE = {"SluiceDeadLettersGrowing"}
HPA_FILES = ("manifests/base/gateway.yaml", "manifests/base/worker.yaml")


class Prometheus:
    """Prometheus's HTTP API, every query evaluated at one instant."""

    def __init__(self, base):
        self.base = base
        self.now = time.time()

    def api(self, path, **params):
        url = f"{self.base}/api/v1/{path}?" + urllib.parse.urlencode(params, doseq=True)
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            return json.load(e)

    def evaluate(self, expr, instant=True):
        """(ok, number of series, error)"""
        if instant:
            r = self.api("query", query=expr, time=self.now)
        else:
            r = self.api("query_range", query=expr, start=self.now - 300, end=self.now, step=5)
        if r.get("status") != "success":
            return False, 0, r.get("error", "?")
        return True, len(r["data"]["result"]), ""


class Table:
    """The result rows: (kind, where, name, status, detail)."""

    def __init__(self, strict):
        self.rows = []
        self.failures = []
        self.strict = strict
        self.skipped_panels = []

    def row(self, kind, where, title, status, detail=""):
        self.rows.append((kind, where, title, status, detail))
        if status == "FAIL" or (status == "GAP" and self.strict):
            self.failures.append(f"{kind} {where}: {title}: {detail}")


def panel_target(prom, target):
    """(status, detail) of one panel query."""
    expr = target["expr"]
    ok, n, err = prom.evaluate(expr, instant=target.get("instant", False))
    if not ok:
        return "FAIL", f"does not parse: {err}"
    if KUBE.search(expr):
        return "skip", "kube-state-metrics"
    if n == 0 and GAP and GAP.search(expr):
        return "GAP", f"no data, known gap {GAP.search(expr).group(1)}"
    if n == 0:
        return "FAIL", f"no data: {expr}"
    return "ok", f"{n} series"


def check_panels(prom, table):
    for f, dash, p in dashboard_panels():
        statuses = [panel_target(prom, t) for t in p["targets"]]
        where = Path(f).name
        fails = [d for s, d in statuses if s == "FAIL"]
        gaps = [d for s, d in statuses if s == "GAP"]
        if fails:
            table.row("panel", where, p["title"], "FAIL", "; ".join(fails + gaps))
        elif gaps:
            table.row("panel", where, p["title"], "GAP", "; ".join(gaps))
        elif all(s == "skip" for s, _ in statuses):
            table.skipped_panels.append(f"{dash['title']} / {p['title']}")
            table.row("panel", where, p["title"], "skip", "parses; needs kube-state-metrics")
        else:
            parts = [d for s, d in statuses if s == "ok"]
            n_skip = sum(1 for s, _ in statuses if s == "skip")
            table.row("panel", where, p["title"], "ok",
                      f"{len(parts)}/{len(statuses)} queries with data"
                      + (f", {n_skip} kube-state-metrics query parsed only" if n_skip else ""))


def check_alerts(prom, table):
    """Each expression parses and evaluates, and Prometheus's own evaluation
    of the loaded rules reports no error."""
    loaded = {r["name"]: r for g in prom.api("rules")["data"]["groups"] for r in g["rules"]}
    for g in load_yaml(RULES)["groups"]:
        for r in g["rules"]:
            name = r.get("alert") or r.get("record")
            ok, _, err = prom.evaluate(r["expr"])
            state = loaded.get(name)
            if not ok:
                table.row("alert", g["name"], name, "FAIL", f"does not parse: {err}")
            elif state is None:
                table.row("alert", g["name"], name, "FAIL", "not loaded by Prometheus")
            elif state.get("health") != "ok":
                table.row("alert", g["name"], name, "FAIL", f"evaluation: {state.get('lastError')}")
            elif name in EXPECT_ACTIVE and state.get("state") not in ("pending", "firing"):
                table.row("alert", g["name"], name, "FAIL", "inactive, but the load set it off")
            else:
                table.row("alert", g["name"], name, "ok", f"evaluates; {state.get('state', 'inactive')}")


def hpa_metrics():
    """Metric name -> (HPA metric type, selector labels) for the HPAs in
    manifests/base that read a Pods or External metric."""
    hpas = {}
    for f in HPA_FILES:
        for d in load_yaml_all(f):
            if d["kind"] != "HorizontalPodAutoscaler":
                continue
            for m in d["spec"]["metrics"]:
                if m["type"] in ("Pods", "External"):
                    spec = m[m["type"].lower()]["metric"]
                    hpas[spec["name"]] = (m["type"], spec.get("selector", {}).get("matchLabels", {}))
    return hpas


def check_autoscalers(prom, table):
    """prometheus-adapter rules expanded as the adapter does for the HPAs in
    manifests/base, and the KEDA trigger."""
    hpas = hpa_metrics()
    for kind, r in adapter_rules():
        served = r["name"]["as"]
        res = prom.api("series", **{"match[]": r["seriesQuery"], "start": prom.now - 300, "end": prom.now})
        if res.get("status") != "success" or not res["data"]:
            table.row("adapter", "seriesQuery", served, "FAIL",
                      f"{r['seriesQuery']} matches no series {res.get('error', '')}")
            continue
        if served not in hpas:
            table.row("adapter", kind, served, "FAIL", "no HPA in manifests/base reads it")
            continue
        mtype, selector = hpas[served]
        if mtype == "Pods":
            pods = sorted({s["pod"] for s in res["data"] if "pod" in s})
            matchers, group = 'namespace="sluice",pod=~"%s"' % "|".join(pods), "pod"
        else:
            matchers = ",".join(['namespace="sluice"'] + [f'{k}="{v}"' for k, v in sorted(selector.items())])
            group = "namespace"
        q = adapter_query(r, matchers, group)
        ok, n, err = prom.evaluate(q)
        if not ok:
            table.row("adapter", mtype, served, "FAIL", f"does not parse: {err}")
        elif n == 0:
            table.row("adapter", mtype, served, "FAIL", f"no data: {q}")
        else:
            table.row("adapter", mtype, served, "ok", q)
    for q in keda_queries():
        ok, n, err = prom.evaluate(q)
        table.row("keda", "trigger", q, "ok" if ok and n else "FAIL", err or ("" if n else "no data"))


def exported(page):
    """Metric name -> type on a /metrics page (histogram series by base name)."""
    names = {}
    for line in page.splitlines():
        m = re.match(r"# TYPE (\S+) (\S+)", line)
        if m:
            names[m.group(1)] = m.group(2)
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", line)
        if m:
            base = re.sub(r"_(bucket|sum|count)$", "", m.group(1))
            names.setdefault(base if base in names else m.group(1), "untyped")
    return names


def check_metric_names(table, pages, manifest_names):
    """Everything manifests/ reads is on a real /metrics page; `pages` maps
    gateway and worker to their /metrics text."""
    exports = {who: exported(page) for who, page in pages.items()}
    for name in manifest_names:
        where = [w for w, e in exports.items() if name in e]
        if where and name in KNOWN_GAPS:
            table.row("metric", "/metrics", name, "FAIL",
                      f"exported by {'+'.join(where)} now: delete it from KNOWN_GAPS in live_queries.py")
        elif where:
            types = {exports[w][name] for w in where}
            table.row("metric", "/metrics", name, "ok", f"{'+'.join(where)} ({'/'.join(sorted(types))})")
        elif name in KNOWN_GAPS:
            table.row("metric", "/metrics", name, "GAP", f"on neither /metrics page: {KNOWN_GAPS[name]}")
        else:
            table.row("metric", "/metrics", name, "FAIL", "in manifests/, on neither /metrics page")


def print_table(table):
    rows = table.rows
    width = min(max(len(r[2]) for r in rows), 56)
    print(f"    {'kind':<7} {'where':<17} {'name':<{width}}  result")
    for kind, where, title, status, detail in rows:
        title = title if len(title) <= width else title[:width - 3] + "..."
        print(f"    {kind:<7} {where[:17]:<17} {title:<{width}}  {status:<4} {detail}")
    kinds = ("panel", "alert", "adapter", "keda", "metric")
    count = {k: sum(1 for r in rows if r[0] == k) for k in kinds}
    ok = {k: sum(1 for r in rows if r[0] == k and r[3] == "ok") for k in kinds}
    gap = {k: sum(1 for r in rows if r[0] == k and r[3] == "GAP") for k in kinds}
    skipped = len(table.skipped_panels)
    print()
    print(f"    panels:  {count['panel']} ({ok['panel']} with data, {skipped} skipped, "
          f"{gap['panel']} known gaps, {count['panel'] - ok['panel'] - skipped - gap['panel']} failed)")
    print(f"    alerts:  {count['alert']} ({ok['alert']} parse and evaluate without error)")
    print(f"    adapter: {count['adapter']} ({ok['adapter']} with data); "
          f"keda: {count['keda']} ({ok['keda']} with data)")
    print(f"    metrics: {count['metric']} sluice_* names in manifests/ ({ok['metric']} exported, "
          f"{gap['metric']} known gaps)")
    if table.skipped_panels:
        print("    skipped (need kube-state-metrics, i.e. a cluster; their queries parse):")
        for t in table.skipped_panels:
            print(f"      - {t}")
    if any(r[3] == "GAP" for r in rows):
        print("    KNOWN GAPS (the Rust side must export these; LIVE_CHECK_STRICT=1 fails on them):")
        for name, why in KNOWN_GAPS.items():
            print(f"      - {name}: {why}")


def check(prometheus, pages, manifest_names):
    prom = Prometheus(prometheus)
    table = Table(strict=os.environ.get("LIVE_CHECK_STRICT") == "1")
    check_panels(prom, table)
    check_alerts(prom, table)
    check_autoscalers(prom, table)
    check_metric_names(table, pages, manifest_names)
    print_table(table)
    if table.failures:
        print(file=sys.stderr)
    report(table.failures)
