"""Images and configuration against the binaries they run.

(b) every Dockerfile builds and installs binaries that exist as [[bin]]
targets of the package it names, and its ENTRYPOINT is one of them;
(a) every environment variable a gateway, worker or migration container
gets (env and envFrom ConfigMaps, rendered) is read by the binary the
container runs: a clap `env = "..."` attribute or an env::var call in that
binary's package. Secrets come from Secrets; the dev defaults of URLs and
signing keys can never be what a pod runs with."""

import re
import sys
import tomllib
from pathlib import Path

from .common import CheckFailed, load_yaml_all, object_name, pod_spec

# What each binary reads: clap env attributes, env::var calls, and RUST_LOG
# where tracing-subscriber's EnvFilter reads it.
ENV_ATTR = re.compile(r'\benv\s*=\s*"([A-Z][A-Z0-9_]*)"')
ENV_CALL = re.compile(r'env::var(?:_os)?\(\s*"([A-Z][A-Z0-9_]*)"\s*\)')
# A variable read through a named constant in a shared library crate
# (waitroom's KEYS_FILE_ENV, read for gateway and worker alike; service's
# connection settings and logging).
ENV_CONST = re.compile(r'const\s+[A-Z0-9_]*ENV\s*:\s*&str\s*=\s*"([A-Z][A-Z0-9_]*)"')
SHARED = {"sluice-gateway": ["waitroom", "service"], "sluice-worker": ["waitroom", "service"]}

SECRET = {"DATABASE_URL", "AMQP_URL", "SLUICE_SIGNING_KEYS", "SLUICE_PASS_KEYS"}
# Without these a binary silently runs with a development default (root
# with no password, guest/guest, the published signing key).
REQUIRED = {
    "sluice-gateway": [{"DATABASE_URL"}, {"AMQP_URL"}, {"SLUICE_SIGNING_KEYS"},
                       {"SLUICE_PASS_KEYS", "SLUICE_PASS_KEYS_FILE"}],
    "sluice-worker": [{"DATABASE_URL"}, {"AMQP_URL"},
                      {"SLUICE_PASS_KEYS", "SLUICE_PASS_KEYS_FILE"}],
    "sluice-db": [{"DATABASE_URL"}],
}
# The signing keys can sign sessions: a worker needs only the pass keys, so
# it must neither be given the signing keys nor reference the Secret key or
# Secret that holds them.
FORBIDDEN = {"sluice-worker": {"SLUICE_SIGNING_KEYS", "SLUICE_SIGNING_KEYS_FILE"}}
SIGNING_SECRET_KEY = "signing-keys"
SIGNING_SECRET = "sluice-signing-keys"
# Dashboards, alerts, autoscalers and the RabbitMQ policy name sluice.commands.
PREFIX_VARS = {"SLUICE_QUEUE_PREFIX"}
ADDR_PORT = {"SLUICE_LISTEN": "http", "SLUICE_METRICS_ADDR": "metrics"}


class Problems:
    """The problems found, each reported once with every overlay it shows in
    (the same problem shows in every overlay)."""

    def __init__(self):
        self.found = {}

    def __call__(self, msg, src=""):
        self.found.setdefault(msg, []).append(src)

    def report(self):
        if not self.found:
            return
        for msg, srcs in self.found.items():
            where = f"{', '.join(sorted(set(srcs)))}: " if any(srcs) else ""
            print(f"    FAILED: {where}{msg}", file=sys.stderr)
        raise CheckFailed("")


def workspace_bins():
    """[[bin]] targets of the workspace: binary -> (package, directory), and
    package -> directory."""
    members = tomllib.loads(Path("Cargo.toml").read_text())["workspace"]["members"]
    bins, pkg_dir = {}, {}
    for m in members:
        cargo = tomllib.loads(Path(m, "Cargo.toml").read_text())
        pkg_dir[cargo["package"]["name"]] = Path(m)
        for b in cargo.get("bin", []):
            bins[b["name"]] = (cargo["package"]["name"], Path(m))
    return bins, pkg_dir


def dockerfile_images(bins, pkg_dir, fail):
    """Image name -> (binaries installed, entrypoint binary), from deploy/."""
    images = {}
    for df in sorted(Path("deploy").glob("*.Dockerfile")):
        text = df.read_text()
        tag = re.search(r"docker build -f deploy/%s -t ([a-z0-9._/-]+):" % re.escape(df.name), text)
        if not tag:
            fail(f"{df}: header must show `docker build -f {df} -t <image>:<tag> .`")
            continue
        build = re.search(r"cargo build[^\n]*", text)
        if not build:
            fail(f"{df}: no cargo build")
            continue
        words = build.group(0).split()
        packages = [words[i + 1] for i, w in enumerate(words) if w == "-p"]
        built = [words[i + 1] for i, w in enumerate(words) if w == "--bin"]
        for b in built:
            if b not in bins:
                fail(f"{df}: --bin {b} is not a [[bin]] of the workspace ({', '.join(sorted(bins))})")
            elif bins[b][0] not in packages:
                fail(f"{df}: --bin {b} belongs to package {bins[b][0]}, which the build does not name with -p")
        for p in packages:
            if p not in pkg_dir:
                fail(f"{df}: -p {p} is not a workspace package")
        installed = set(re.findall(r"target/release/([A-Za-z0-9_-]+)", text))
        for b in installed - set(built):
            fail(f"{df}: installs target/release/{b}, which it does not build")
        entry = re.search(r'ENTRYPOINT \["/usr/local/bin/([A-Za-z0-9_-]+)"', text)
        if not entry or entry.group(1) not in installed:
            fail(f"{df}: ENTRYPOINT must be one of the installed binaries {sorted(installed)}")
            continue
        images[tag.group(1)] = (installed, entry.group(1))
        print(f"    ok: {df}: image {tag.group(1)} has {', '.join(sorted(installed))}; "
              f"entrypoint {entry.group(1)}")
    return images


def binary_reads(bins):
    """Binary -> the environment variables its sources read."""
    reads = {}
    for b, (_, d) in bins.items():
        names = set()
        dirs = [d / "src"] + [d.parent / lib / "src" for lib in SHARED.get(b, [])]
        for rs in (f for src in dirs for f in src.rglob("*.rs")):
            text = rs.read_text()
            names |= set(ENV_ATTR.findall(text)) | set(ENV_CALL.findall(text))
            names |= set(ENV_CONST.findall(text))
            if "from_default_env" in text:
                names.add("RUST_LOG")
        reads[b] = names
    return reads


def container_env(c, configmaps, where, fail):
    """Name -> (where it comes from, value) for one container's environment."""
    env = {}
    for e in c.get("env", []):
        frm = e.get("valueFrom", {})
        src = "secret" if "secretKeyRef" in frm else "field" if "fieldRef" in frm else "value"
        env[e["name"]] = (src, e.get("value"))
    for ef in c.get("envFrom", []):
        if "configMapRef" not in ef:
            fail(f"{where}: envFrom {list(ef)}: use env with secretKeyRef so each name is visible and checked")
            continue
        name = ef["configMapRef"]["name"]
        if name not in configmaps:
            fail(f"{where}: envFrom ConfigMap {name} is not in the rendered output")
            continue
        for k, v in configmaps[name].items():
            if k in SECRET:
                fail(f"{where}: {k} is in ConfigMap {re.sub(r'-[a-z0-9]{10}$', '', name)}; "
                     "it belongs in a Secret")
            env.setdefault(k, ("configmap", v))
    return env


def check_values(c, env, secret_volumes, where, fail):
    """Secrets from Secrets, key files inside Secret volumes, the queue
    prefix the dashboards name, addresses on the declared ports."""
    for name, (src, value) in env.items():
        if name in SECRET and src != "secret":
            fail(f"{where}: {name} must come from a Secret (secretKeyRef), not a {src}")
        if name.endswith("_FILE"):
            mounts = [m for m in c.get("volumeMounts", []) if m["name"] in secret_volumes]
            if not any(str(value).startswith(m["mountPath"].rstrip("/") + "/") for m in mounts):
                fail(f"{where}: {name}={value} is not inside a mounted Secret volume")
        if name in PREFIX_VARS and value != "sluice":
            fail(f"{where}: {name}={value}: manifests/ read queue sluice.commands, so the prefix must be sluice")
        if name in ADDR_PORT:
            ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
            port = ports.get(ADDR_PORT[name])
            if port is None or not str(value).endswith(f":{port}"):
                fail(f"{where}: {name}={value} does not match containerPort {ADDR_PORT[name]} ({port})")


def check_signing_keys(binary, c, ps, env, where, fail):
    """A binary that must not sign sessions gets neither the signing keys nor
    a reference to the Secret that holds them."""
    for name in sorted(FORBIDDEN.get(binary, set()) & env.keys()):
        fail(f"{where}: {binary} must not get {name}: it can sign sessions; give it the pass keys")
    if binary not in FORBIDDEN:
        return
    refs = [e["valueFrom"]["secretKeyRef"] for e in c.get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})]
    refs += [{"name": v["secret"].get("secretName"), "key": i.get("key")}
             for v in ps.get("volumes", []) if "secret" in v
             for i in (v["secret"].get("items") or [{"key": None}])]
    for r in refs:
        if r.get("key") == SIGNING_SECRET_KEY or r.get("name") == SIGNING_SECRET:
            fail(f"{where}: {binary} references Secret {r.get('name')} key {r.get('key')}, "
                 "which holds the session-capable signing keys")


def check(work):
    problems = Problems()
    bins, pkg_dir = workspace_bins()
    images = dockerfile_images(bins, pkg_dir, problems)
    reads = binary_reads(bins)
    checked = set()
    for f in sorted((Path(work) / "rendered").glob("*.yaml")):
        docs = load_yaml_all(f)

        def fail(msg, src=f.stem):
            problems(msg, src)

        configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
        for obj in docs:
            ps = pod_spec(obj)
            if ps is None:
                continue
            secret_volumes = {v["name"] for v in ps.get("volumes", []) if "secret" in v}
            for c in ps.get("initContainers", []) + ps["containers"]:
                image = c["image"].rsplit(":", 1)[0]
                where = f"{object_name(obj)} container {c['name']}"
                if image not in images:
                    if image.split("/")[-1].startswith("sluice"):
                        fail(f"{where}: image {c['image']} is built by no deploy/*.Dockerfile")
                    continue
                installed, entry = images[image]
                binary = Path(c["command"][0]).name if c.get("command") else entry
                if binary not in installed:
                    fail(f"{where}: runs {binary}, which image {image} does not contain")
                    continue
                env = container_env(c, configmaps, where, fail)
                unknown = sorted(set(env) - reads[binary])
                if unknown:
                    fail(f"{where}: {binary} does not read {', '.join(unknown)} "
                         f"(it reads: {', '.join(sorted(reads[binary]))})")
                check_values(c, env, secret_volumes, where, fail)
                check_signing_keys(binary, c, ps, env, where, fail)
                for alternatives in REQUIRED.get(binary, []):
                    if not alternatives & env.keys():
                        fail(f"{where}: {binary} needs {' or '.join(sorted(alternatives))}; "
                             "without it the binary runs with its development default")
                checked.add((binary, tuple(sorted(env))))

    for binary in ("sluice-gateway", "sluice-worker", "sluice-db"):
        if binary not in {b for b, _ in checked}:
            problems(f"no container in manifests/ runs {binary}")
    problems.report()
    for binary in sorted({b for b, _ in checked}):
        names = sorted({n for b, ns in checked if b == binary for n in ns})
        print(f"    ok: {binary}: {len(names)} variables, all read by the binary: {' '.join(names)}")
