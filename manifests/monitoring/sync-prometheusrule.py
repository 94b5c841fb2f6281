#!/usr/bin/env python3
"""Renders monitoring/prometheusrule.yaml from prometheus/rules/sluice.rules.yml.

    python3 manifests/monitoring/sync-prometheusrule.py          # rewrite
    python3 manifests/monitoring/sync-prometheusrule.py --check  # fail if stale

One source of truth for the alert rules: plain Prometheus loads the rules
file, kube-prometheus-stack the PrometheusRule rendered from it. Needs PyYAML.
"""

import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
RULES = HERE.parent / "prometheus" / "rules" / "sluice.rules.yml"
OUT = HERE / "prometheusrule.yaml"
HEADER = """\
# Rendered from manifests/prometheus/rules/sluice.rules.yml by
# manifests/monitoring/sync-prometheusrule.py: edit the rules file, then run
# the script. The "release" label is what kube-prometheus-stack's default
# ruleSelector looks for.
"""


class Literal(str):
    pass


def literal_representer(dumper, data):
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")


class Dumper(yaml.SafeDumper):
    pass


Dumper.add_representer(Literal, literal_representer)


def multiline_as_literal(node):
    if isinstance(node, dict):
        return {k: multiline_as_literal(v) for k, v in node.items()}
    if isinstance(node, list):
        return [multiline_as_literal(v) for v in node]
    if isinstance(node, str) and "\n" in node:
        return Literal(node)
    return node


def render():
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    doc = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "sluice",
            "namespace": "sluice",
            "labels": {
                "release": "kube-prometheus-stack",
                "app.kubernetes.io/part-of": "sluice",
            },
        },
        "spec": {"groups": multiline_as_literal(groups)},
    }
    return HEADER + yaml.dump(doc, Dumper=Dumper, sort_keys=False,
                              allow_unicode=True, width=1000)


def main():
    text = render()
    if "--check" in sys.argv[1:]:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT.name} is out of date: run {Path(__file__).name}",
                  file=sys.stderr)
            return 1
        print(f"{OUT.name} matches {RULES.name}")
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
