#!/usr/bin/env python3
"""Regenerates the vendored JSON schemas for the CRD objects in manifests/.

The schemas come from the CRDs' own openAPIV3Schema, as packaged in the
cloudcoil model packages on PyPI (generated from the upstream CRDs), made
stricter: every object that lists its properties rejects unknown ones
(additionalProperties: false), as kubeconform's strict mode does. The API
server would silently prune an unknown field; here a typo fails validation.

    python3 -m venv /tmp/schemas-venv
    /tmp/schemas-venv/bin/pip install \
        cloudcoil-models-keda==2.16.1.0 \
        cloudcoil-models-prometheus-operator==0.80.1.0
    /tmp/schemas-venv/bin/python manifests/schemas/generate.py

Not run by validation; the JSON files are committed.
"""

import json
from pathlib import Path

from cloudcoil.models.keda import v1alpha1 as keda
from cloudcoil.models.prometheus_operator import v1 as monitoring
from cloudcoil.models.prometheus_operator import v1alpha1 as monitoring_alpha

OUT = Path(__file__).resolve().parent

KINDS = {
    "keda.sh-v1alpha1-scaledobject.json": (keda.ScaledObject, "keda.sh/v1alpha1", "ScaledObject"),
    "monitoring.coreos.com-v1-servicemonitor.json": (monitoring.ServiceMonitor, "monitoring.coreos.com/v1", "ServiceMonitor"),
    "monitoring.coreos.com-v1-prometheusrule.json": (monitoring.PrometheusRule, "monitoring.coreos.com/v1", "PrometheusRule"),
    "monitoring.coreos.com-v1alpha1-alertmanagerconfig.json": (monitoring_alpha.AlertmanagerConfig, "monitoring.coreos.com/v1alpha1", "AlertmanagerConfig"),
}

NULL = {"type": "null"}


def tighten(node):
    if isinstance(node, list):
        return [tighten(n) for n in node]
    if not isinstance(node, dict):
        return node
    # "title" and "default" are pydantic's annotations; under "properties"
    # the keys are field names (a Slack config has a field called title).
    node = {
        k: ({name: tighten(s) for name, s in v.items()} if k in ("properties", "$defs") else tighten(v))
        for k, v in node.items()
        if k not in ("title", "default")
    }
    # Optional fields are Optional[...] in the models: X | null. YAML
    # manifests never need an explicit null, so keep X alone.
    any_of = node.get("anyOf")
    if isinstance(any_of, list) and NULL in any_of:
        rest = [s for s in any_of if s != NULL]
        node.pop("anyOf")
        if len(rest) == 1:
            node.update(rest[0])
        else:
            node["anyOf"] = rest
    # Go's inline flags ((?i)...) are neither ECMAScript nor Python regex
    # syntax; such a pattern cannot be checked here, so it is left out.
    if "(?i)" in str(node.get("pattern", "")):
        node.pop("pattern")
    if node.get("type") == "object" and "properties" in node:
        node.setdefault("additionalProperties", False)
    return node


def main():
    for name, (model, api_version, kind) in KINDS.items():
        schema = tighten(model.model_json_schema(by_alias=True, mode="validation"))
        schema["properties"]["apiVersion"] = {"const": api_version}
        schema["properties"]["kind"] = {"const": kind}
        schema["required"] = sorted({"apiVersion", "kind", "metadata", *schema.get("required", [])})
        schema["additionalProperties"] = False
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$comment": f"{kind} ({api_version}), from {model.__module__}; regenerate with generate.py",
            **schema,
        }
        (OUT / name).write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print("wrote", name)


if __name__ == "__main__":
    main()
