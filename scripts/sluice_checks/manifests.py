"""Validates everything under manifests/ without a cluster, once
scripts/validate-manifests has installed the tools: lint, generated files,
rendering, schemas, deployment policy, configuration against the binaries,
PromQL, Alertmanager, metric documentation and the MySQL backup scripts.

Run with the tools' venv Python (it has PyYAML and the validators)."""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from . import manifest_binaries, manifest_policy, mysql_backup
from .common import (CheckFailed, adapter_query, adapter_rules, dashboard_panels, dump_yaml,
                     keda_queries, load_yaml, ok, run, step)

K8S_VERSION = "1.32.0"
OVERLAYS = ("lab", "production", "keda", "external-mysql", "rehearsal")
# The validators pip installed next to this Python (the tools' venv).
VENV_BIN = Path(sys.executable).parent
# Schemas vendored in manifests/schemas/ for each CRD kind the overlays use.
SCHEMA_FOR = {
    "ScaledObject": "keda.sh-v1alpha1-scaledobject.json",
    "ServiceMonitor": "monitoring.coreos.com-v1-servicemonitor.json",
    "AlertmanagerConfig": "monitoring.coreos.com-v1alpha1-alertmanagerconfig.json",
    "PrometheusRule": "monitoring.coreos.com-v1-prometheusrule.json",
}


def count_objects(path):
    return sum(1 for line in path.read_text().splitlines() if line.startswith("kind:"))


def render(work):
    rendered = work / "rendered"
    rendered.mkdir()
    for o in OVERLAYS:
        out = rendered / f"overlay-{o}.yaml"
        with open(out, "w") as f:
            run("kubectl", "kustomize", f"manifests/overlays/{o}", stdout=f)
        ok(f"manifests/overlays/{o} ({count_objects(out)} objects)")
    for k in ("base", "monitoring", "grafana"):
        out = rendered / f"{k}.yaml"
        with open(out, "w") as f:
            run("kubectl", "kustomize", f"manifests/{k}", stdout=f)
        ok(f"manifests/{k} ({count_objects(out)} objects)")
    shutil.copy("manifests/restore/restore-job.yaml", rendered / "restore-job.yaml")


def kubernetes_validate(work):
    for f in sorted((work / "native").glob("*.yaml")):
        try:
            run(VENV_BIN / "kubernetes-validate", "--strict", "--kubernetes-version", K8S_VERSION,
                "--quiet", f)
        except CheckFailed:
            raise CheckFailed(f"kubernetes-validate {f.name}")
        ok(f.name)


def check_jsonschema(work):
    crds = sorted((work / "crd").glob("*.yaml"))
    for f in crds:
        kind = f.stem.rsplit("-", 1)[1]
        if kind not in SCHEMA_FOR:
            raise CheckFailed(f"no vendored schema for {kind} ({f.name})")
    for kind, schema in SCHEMA_FOR.items():
        files = [f for f in crds if f.stem.endswith(f"-{kind}")]
        if not files:
            raise CheckFailed(f"expected at least one {kind} in the rendered output")
        try:
            run(VENV_BIN / "check-jsonschema", "--schemafile", f"manifests/schemas/{schema}", *files,
                out=work / "cj.log")
        except CheckFailed:
            raise CheckFailed(f"check-jsonschema {kind}")
        ok(f"{kind}: {len(files)} object(s) against {schema}")


def stub_kubernetes_sd(out):
    """prometheus.yml with its kubernetes_sd_configs blocks, after checking
    their shape, swapped for a static target."""
    cfg = load_yaml("manifests/prometheus/prometheus.yml")
    roles = {"node", "pod", "service", "endpoints", "endpointslice", "ingress"}
    allowed = {"role", "namespaces", "selectors", "api_server", "attach_metadata",
               "kubeconfig_file", "follow_redirects", "enable_http2"}
    for job in cfg["scrape_configs"]:
        for sd in job.pop("kubernetes_sd_configs", []):
            name = job["job_name"]
            if sd.get("role") not in roles:
                raise CheckFailed(f"{name}: bad role {sd.get('role')}")
            if not set(sd) <= allowed:
                raise CheckFailed(f"{name}: unknown keys {set(sd) - allowed}")
            if not all(isinstance(n, str) for n in sd.get("namespaces", {}).get("names", [])):
                raise CheckFailed(f"{name}: namespaces.names must be strings")
            job["static_configs"] = [{"targets": ["k8s-sd.invalid:80"]}]
    dump_yaml(cfg, out)


def promtool(work):
    run("promtool", "check", "config", "manifests/prometheus/local.yml")
    # Debian's Prometheus is built without Kubernetes service discovery, so
    # its promtool rejects kubernetes_sd_configs. Then check prometheus.yml
    # with those blocks swapped for a static target (everything else,
    # relabelling included, is still checked), and check the swapped
    # blocks' shape here.
    prom = work / "prom"
    prom.mkdir()
    (prom / "rules").symlink_to(Path("manifests/prometheus/rules").resolve())
    probe = prom / "k8s-probe.yml"
    probe.write_text("scrape_configs:\n  - job_name: t\n    kubernetes_sd_configs:\n      - role: pod\n")
    if subprocess.run(["promtool", "check", "config", probe], capture_output=True).returncode == 0:
        run("promtool", "check", "config", "manifests/prometheus/prometheus.yml")
    else:
        stub_kubernetes_sd(prom / "prometheus.yml")
        print("    (this promtool has no kubernetes_sd: checking prometheus.yml with its SD blocks stubbed)",
              flush=True)
        run("promtool", "check", "config", prom / "prometheus.yml")
    run("promtool", "check", "rules", "manifests/prometheus/rules/sluice.rules.yml")
    run("promtool", "test", "rules", *sorted(Path("manifests/prometheus/rules/tests").glob("*.yml")))


def queries_parse(work):
    """Every dashboard, adapter and KEDA query, as recording rules promtool
    parses."""
    queries = [t["expr"] for _, _, p in dashboard_panels() for t in p["targets"]]
    queries += [adapter_query(r, 'namespace="sluice"', "namespace") for _, r in adapter_rules()]
    queries += keda_queries()
    rules = [{"record": f"sluice_query_check:{i}", "expr": q} for i, q in enumerate(queries)]
    dump_yaml({"groups": [{"name": "query-check", "rules": rules}]}, work / "queries.rules.yml")
    print(f"    {len(queries)} queries", flush=True)
    try:
        run("promtool", "check", "rules", work / "queries.rules.yml", out=work / "queries.log")
    except CheckFailed:
        raise CheckFailed("a dashboard, adapter or KEDA query does not parse")
    ok("all queries parse")


def amtool(work):
    am = work / "am"
    am.mkdir()
    config = Path("manifests/monitoring/alertmanager/alertmanager.yml").read_text()
    config = config.replace("/etc/alertmanager/secrets/alertmanager-chat-webhook/url", str(am / "url"))
    (am / "alertmanager.yml").write_text(config)
    (am / "url").write_text("https://chat.invalid/hooks/validation-only\n")
    run("amtool", "check-config", am / "alertmanager.yml")


def metric_names_documented():
    names = []
    for args in ([], ["--derived"]):
        out = subprocess.run(["scripts/metric-names-in-manifests", *args], check=True,
                             capture_output=True, text=True).stdout
        names += out.split()
    docs = Path("docs/metrics.md").read_text()
    missing = [n for n in names if f"`{n}`" not in docs]
    for n in missing:
        print(f"    not in docs/metrics.md: {n}", file=sys.stderr)
    if missing:
        raise CheckFailed("document these names in docs/metrics.md")
    ok(f"{len(names)} names")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        step("yamllint manifests/")
        run(VENV_BIN / "yamllint", "--strict", "manifests", ".yamllint")
        ok("yamllint")

        step("generated files are current")
        run("python3", "manifests/grafana/dashboards.py", "--check")
        run(sys.executable, "manifests/monitoring/sync-prometheusrule.py", "--check")

        step("render with kubectl kustomize")
        render(work)

        step("split built-in and CRD objects; deployment policy checks")
        manifest_policy.check(work)

        step("images and configuration match the binaries")
        manifest_binaries.check(work)

        step(f"kubernetes-validate --strict (Kubernetes {K8S_VERSION})")
        kubernetes_validate(work)

        step("check-jsonschema for CRD objects (manifests/schemas/)")
        check_jsonschema(work)

        step("promtool")
        promtool(work)

        step("every dashboard, adapter and KEDA query parses as PromQL")
        queries_parse(work)

        step("amtool check-config (plain Alertmanager route)")
        amtool(work)

        step("sluice_* metric names used in manifests/ are documented in docs/metrics.md")
        metric_names_documented()

        step("MySQL backup and restore scripts round-trip a database")
        mysql_backup.round_trip(work)


if __name__ == "__main__":
    try:
        main()
    except CheckFailed as e:
        if str(e):
            print(f"    FAILED: {e}", file=sys.stderr)
        sys.exit(1)
