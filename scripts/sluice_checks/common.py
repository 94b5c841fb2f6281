"""What the manifest check and the live check read the same way: the
manifest paths, YAML, every PromQL query manifests/ holds, pod specs, and
how a step prints and runs a tool."""

import glob
import json
import subprocess
import sys
from pathlib import Path

import yaml

DASHBOARDS = "manifests/grafana/dashboards/*.json"
RULES = Path("manifests/prometheus/rules/sluice.rules.yml")
ADAPTER = Path("manifests/monitoring/prometheus-adapter/config.yaml")
KEDA = Path("manifests/components/keda/scaledobject.yaml")

# kustomize writes the YAML 1.2 string "=" unquoted; PyYAML (YAML 1.1)
# would read it as the "value" tag.
yaml.SafeLoader.add_constructor("tag:yaml.org,2002:value",
                                lambda loader, node: loader.construct_scalar(node))


class CheckFailed(Exception):
    """A check found a problem. Its message, if any, is printed as
    `FAILED: ...`; an empty one means the problems were printed already."""


def step(what):
    print(f"\n==> {what}", flush=True)


def ok(what):
    print(f"    ok: {what}", flush=True)


def note(what):
    print(f"    {what}", flush=True)


def load_yaml(path):
    with open(path) as f:
        return yaml.safe_load(f)


def load_yaml_all(path):
    """The non-empty documents of a multi-document YAML file."""
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def dump_yaml(data, path):
    with open(path, "w") as f:
        yaml.safe_dump(data, f, sort_keys=False)


def dashboard_panels():
    """(dashboard file, dashboard, panel) for every Grafana panel, by file."""
    for f in sorted(glob.glob(DASHBOARDS)):
        with open(f) as fh:
            dash = json.load(fh)
        for panel in dash["panels"]:
            yield f, dash, panel


def adapter_rules():
    """(kind, rule) for every prometheus-adapter rule, external ones last."""
    adapter = load_yaml(ADAPTER)
    for kind in ("rules", "externalRules"):
        for rule in adapter.get(kind, []):
            yield kind, rule


def adapter_series(rule):
    """The series name an adapter rule serves from (its `matches`)."""
    return rule["name"]["matches"].strip("^$")


def adapter_query(rule, matchers, group_by):
    """The rule's metricsQuery expanded as prometheus-adapter does."""
    return (rule["metricsQuery"].replace("<<.Series>>", adapter_series(rule))
            .replace("<<.LabelMatchers>>", matchers).replace("<<.GroupBy>>", group_by))


def keda_queries():
    return [t["metadata"]["query"] for t in load_yaml(KEDA)["spec"]["triggers"]]


def pod_spec(obj):
    """The pod template of a workload object, or None for other kinds."""
    spec = obj.get("spec", {})
    if obj["kind"] in ("Deployment", "StatefulSet", "Job", "DaemonSet"):
        return spec["template"]["spec"]
    if obj["kind"] == "CronJob":
        return spec["jobTemplate"]["spec"]["template"]["spec"]
    return None


def object_name(obj):
    meta = obj["metadata"]
    return f"{obj['kind']}/{meta.get('name') or meta.get('generateName')}"


def run(*cmd, out=None, **kwargs):
    """Runs a tool, its output shown as it comes, or written to `out` (a
    path) and shown only when the tool fails. Raises CheckFailed on failure."""
    if out is None:
        if subprocess.run(cmd, **kwargs).returncode != 0:
            raise CheckFailed(" ".join(str(c) for c in cmd))
        return
    with open(out, "w") as f:
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, **kwargs).returncode
    if rc != 0:
        sys.stderr.write(Path(out).read_text())
        raise CheckFailed(" ".join(str(c) for c in cmd))


def report(errors):
    """Prints the errors found, if any, and raises CheckFailed."""
    if errors:
        print("\n".join(f"    FAILED: {e}" for e in errors), file=sys.stderr)
        raise CheckFailed("")
