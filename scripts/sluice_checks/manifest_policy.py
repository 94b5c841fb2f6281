"""The deployment policy every rendered manifest must follow (security
context, probes, resources, rollouts, no Secret objects) and the MySQL
connection budget at the autoscalers' peak; also splits the rendered
objects into built-in and CRD files for the schema validators."""

import configparser
import math
from pathlib import Path

import yaml

from .common import load_yaml_all, object_name, pod_spec, report

CRD_GROUPS = {"keda.sh", "monitoring.coreos.com"}
# Connections kept free for the migration job, the backup job and admins.
RESERVED = 10
# After SIGTERM the gateway finishes in-flight requests (each bounded by
# SLUICE_REQUEST_TIMEOUT_MS, 10 s by default) and then waits up to 10 s for
# its background tasks (DRAIN_TIMEOUT in gateway/src/lib.rs).
GATEWAY_DRAIN = 20


def check_pod(src, obj, ps, fail):
    name = f"{src}: {object_name(obj)}"
    psc = ps.get("securityContext", {})
    if psc.get("runAsNonRoot") is not True:
        fail(f"{name}: pod securityContext.runAsNonRoot must be true")
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        fail(f"{name}: pod seccompProfile must be RuntimeDefault")
    if ps.get("automountServiceAccountToken") is not False:
        fail(f"{name}: automountServiceAccountToken must be false")
    for c in ps.get("initContainers", []) + ps.get("containers", []):
        cname = f"{name} container {c['name']}"
        sc = c.get("securityContext", {})
        if sc.get("allowPrivilegeEscalation") is not False:
            fail(f"{cname}: allowPrivilegeEscalation must be false")
        if sc.get("readOnlyRootFilesystem") is not True:
            fail(f"{cname}: readOnlyRootFilesystem must be true")
        if sc.get("capabilities", {}).get("drop") != ["ALL"]:
            fail(f"{cname}: capabilities must drop ALL")
        res = c.get("resources", {})
        for kind in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in res.get(kind, {}):
                    fail(f"{cname}: resources.{kind}.{r} missing")
        if ":" not in c["image"] or c["image"].endswith(":latest"):
            fail(f"{cname}: image {c['image']} must carry a pinned tag")
    if obj["kind"] in ("Deployment", "StatefulSet"):
        for c in ps["containers"]:
            for probe in ("livenessProbe", "readinessProbe"):
                if probe not in c:
                    fail(f"{name} container {c['name']}: {probe} missing")


def check_deployment(src, obj, fail):
    """Rollouts that never drop capacity, replicas left to the autoscaler,
    and grace periods long enough to drain."""
    name = obj["metadata"]["name"]
    ru = obj["spec"].get("strategy", {}).get("rollingUpdate", {})
    if ru.get("maxUnavailable") != 0:
        fail(f"{src}: Deployment/{name} needs maxUnavailable: 0")
    if "replicas" in obj["spec"]:
        fail(f"{src}: Deployment/{name} sets replicas; the autoscaler owns them")
    pod = obj["spec"]["template"]["spec"]
    if name == "gateway":
        pre = pod["containers"][0].get("lifecycle", {}).get("preStop", {})
        if "sleep" not in pre:
            fail(f"{src}: gateway needs a preStop sleep")
        elif pod.get("terminationGracePeriodSeconds", 30) <= pre["sleep"]["seconds"] + GATEWAY_DRAIN:
            fail(f"{src}: gateway grace period must exceed preStop + drain ({GATEWAY_DRAIN} s)")
    if name == "worker" and pod.get("terminationGracePeriodSeconds", 30) < 60:
        fail(f"{src}: worker grace period must cover a batch (>= 60 s)")
    return str(ru.get("maxSurge", "25%"))


def max_connections():
    cnf = configparser.ConfigParser(allow_no_value=True, strict=False)
    cnf.read("manifests/base/mysql/10-sluice.cnf")
    return int(cnf["mysqld"]["max_connections"])


def pool_sizes(docs, fail):
    """MySQL connections per gateway and per worker pod, from the rendered
    ConfigMaps (so overlays that change SLUICE_DB_POOL are counted)."""
    pools = {}
    for d in docs:
        if d["kind"] != "ConfigMap":
            continue
        for comp in ("gateway", "worker"):
            if d["metadata"]["name"].startswith(f"{comp}-config"):
                if "SLUICE_DB_POOL" not in d.get("data", {}):
                    fail(f"{comp}-config must set SLUICE_DB_POOL (the connection budget counts it)")
                    continue
                pools[comp] = int(d["data"]["SLUICE_DB_POOL"])
    if "gateway" in pools:
        # The admission-leader lock (GET_LOCK) lives on a dedicated
        # connection outside the pool (gateway/src/leader.rs).
        pools["gateway"] += 1
    return pools


def check_connection_budget(src, docs, maxima, surge, pools, max_conn, fail):
    """Every gateway and worker the autoscalers may run, plus a rollout's
    surge, must fit in MySQL's max_connections."""
    if not ({"gateway", "worker"} <= maxima.keys() and {"gateway", "worker"} <= pools.keys()):
        return

    def peak(name):
        s = surge.get(name, "25%")
        extra = math.ceil(maxima[name] * int(s[:-1]) / 100) if s.endswith("%") else int(s)
        return maxima[name] + extra

    gw_pool, worker_pool = pools["gateway"], pools["worker"]
    need = peak("gateway") * gw_pool + peak("worker") * worker_pool + RESERVED
    line = (f"{src}: MySQL connections at peak: ({peak('gateway')} gateways x {gw_pool}) + "
            f"({peak('worker')} workers x {worker_pool}) + {RESERVED} reserved = {need}")
    has_mysql = any(d["kind"] == "StatefulSet" and d["metadata"]["name"] == "mysql" for d in docs)
    if need > max_conn:
        fail(f"{line} > max_connections {max_conn}")
    elif has_mysql:
        print(f"    ok: {line} <= max_connections {max_conn}")
    else:
        print(f"    ok: {line}; the external MySQL must allow at least that many")


def check(work):
    """Checks every file in work/rendered and writes its built-in objects to
    work/native/<file> and each CRD object to work/crd/<file>-<n>-<kind>.yaml."""
    work = Path(work)
    native, crd = work / "native", work / "crd"
    native.mkdir()
    crd.mkdir()
    errors = []
    fail = errors.append
    max_conn = max_connections()
    counts = {"native": 0, "crd": 0}
    for f in sorted((work / "rendered").glob("*.yaml")):
        src = f.stem
        docs = load_yaml_all(f)
        natives = []
        maxima, surge = {}, {}
        pools = pool_sizes(docs, fail)
        for i, obj in enumerate(docs):
            api = obj["apiVersion"]
            group = api.split("/")[0] if "/" in api else ""
            if obj["kind"] == "Secret":
                fail(f"{src}: Secret {obj['metadata']['name']} must not be committed; "
                     "create it with kubectl (docs/operations.md)")
            if group in CRD_GROUPS:
                out = crd / f"{src}-{i:03d}-{obj['kind']}.yaml"
                out.write_text(yaml.safe_dump(obj, sort_keys=False))
                counts["crd"] += 1
            else:
                natives.append(obj)
                counts["native"] += 1
            ps = pod_spec(obj)
            if ps is not None:
                check_pod(src, obj, ps, fail)
            if obj["kind"] == "Deployment":
                surge[obj["metadata"]["name"]] = check_deployment(src, obj, fail)
            if obj["kind"] == "HorizontalPodAutoscaler":
                maxima[obj["spec"]["scaleTargetRef"]["name"]] = obj["spec"]["maxReplicas"]
            if obj["kind"] == "ScaledObject":
                maxima[obj["spec"]["scaleTargetRef"]["name"]] = obj["spec"]["maxReplicaCount"]
        (native / f"{src}.yaml").write_text(yaml.safe_dump_all(natives, sort_keys=False))
        check_connection_budget(src, docs, maxima, surge, pools, max_conn, fail)
    report(errors)
    print(f"    ok: {counts['native']} built-in and {counts['crd']} CRD objects checked for policy")
