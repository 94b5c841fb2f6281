"""What the live check starts and must take down again: a throw-away MySQL
database and RabbitMQ vhost, the worker, the gateway and Prometheus as
child processes. `Stack.teardown` undoes all of it, on every exit path."""

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from .common import CheckFailed, dump_yaml, load_yaml, note

LOCAL_PROMETHEUS = Path("manifests/prometheus/local.yml")
RULES = Path("manifests/prometheus/rules/sluice.rules.yml")


def wait_until(timeout, what, ready):
    """Calls `ready` once a second until it returns true; gives up after
    `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ready():
                return
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise CheckFailed(f"{what} did not come up within {timeout}s")
        time.sleep(1)


def fetch(url):
    with urllib.request.urlopen(url, timeout=2) as r:
        return r.read().decode()


def http_ok(url):
    """A readiness test: the URL answers 2xx."""
    return lambda: fetch(url) is not None


def free_ports(n):
    """n distinct ports free on 127.0.0.1 right now."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def manifest_env(path):
    """The KEY=VALUE lines of a kustomize env file."""
    env = {}
    for line in Path(path).read_text().splitlines():
        if re.match(r"[A-Z_][A-Z0-9_]*=", line):
            key, value = line.split("=", 1)
            env[key] = value
    return env


class Stack:
    """One run's database, vhost and processes; names carry the run id so
    runs on a shared broker and server never meet."""

    def __init__(self, work, run_id):
        self.work = work
        self.vhost = f"sluice-live-{run_id}"
        self.database = f"sluice_live_{run_id}"
        self.database_url = f"mysql://root@127.0.0.1:3306/{self.database}"
        self.amqp_url = f"amqp://guest:guest@127.0.0.1:5672/{self.vhost}"
        self.processes = []
        self.made_db = False
        self.made_vhost = False

    # --- the database and the vhost ---------------------------------------

    def sql(self, query):
        """Runs one statement on the throw-away database; its rows as text."""
        return subprocess.run(
            ["mysql", "-h127.0.0.1", "-uroot", "--batch", "--skip-column-names", self.database,
             "-e", query], check=True, capture_output=True, text=True).stdout.strip()

    def create_database(self, sluice_db):
        self.made_db = True
        env = {**os.environ, "DATABASE_URL": self.database_url}
        with open(self.work / "sluice-db.log", "w") as log:
            for args in (["migrate"], ["seed", "--students", "300", "--sections", "40", "--demo"]):
                if subprocess.run([sluice_db, *args], env=env, stdout=log, stderr=subprocess.STDOUT).returncode:
                    raise CheckFailed(f"sluice-db {args[0]} failed")

    def create_vhost(self):
        subprocess.run(["rabbitmqctl", "-q", "add_vhost", self.vhost], check=True, stdout=subprocess.DEVNULL)
        self.made_vhost = True
        subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*"],
                       check=True, stdout=subprocess.DEVNULL)

    def publish_not_a_command(self):
        """One message that is not a command, published to sluice.commands
        through the default exchange."""
        erl = (f'rabbit_basic:publish(rabbit_misc:r(<<"{self.vhost}">>, exchange, <<>>), '
               '<<"sluice.commands">>, [{delivery_mode, 2}], <<"live-metrics-check: not a command">>).')
        subprocess.run(["rabbitmqctl", "-q", "eval", erl], check=True, stdout=subprocess.DEVNULL)

    def dead_lettered(self):
        out = subprocess.run(["rabbitmqctl", "-q", "list_queues", "-p", self.vhost, "name", "messages"],
                             capture_output=True, text=True).stdout
        counts = dict(line.split()[:2] for line in out.splitlines() if len(line.split()) >= 2)
        return int(counts.get("sluice.commands.dead", "0")) >= 1

    # --- processes --------------------------------------------------------

    def start(self, name, log, cmd, env=None):
        """Runs cmd in the background, its output in `log`, remembered for
        teardown."""
        with open(log, "w") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        self.processes.append((name, proc))
        note(f"started {name} (pid {proc.pid})")

    def prometheus_config(self, gateway_ops_port, worker_port, rabbitmq):
        """The scrape configuration: manifests/prometheus/local.yml aimed at
        this run's processes, its vhost and the alert rules."""
        cfg = load_yaml(LOCAL_PROMETHEUS)
        # Fast scrapes so a few intervals fit in the time budget.
        cfg["global"] = {"scrape_interval": "2s", "evaluation_interval": "2s"}
        cfg["rule_files"] = [str(RULES.resolve())]
        targets = {"sluice-gateway": f"127.0.0.1:{gateway_ops_port}",
                   "sluice-worker": f"127.0.0.1:{worker_port}",
                   "rabbitmq": rabbitmq, "rabbitmq-detailed": rabbitmq}
        # The labels the in-cluster relabelling adds (prometheus.yml,
        # ServiceMonitors), so the adapter's namespace/pod matchers have series.
        pods = {"sluice-gateway": "gateway-live", "sluice-worker": "worker-live",
                "rabbitmq": "rabbitmq-0", "rabbitmq-detailed": "rabbitmq-0"}
        jobs = {j["job_name"] for j in cfg["scrape_configs"]}
        if jobs != set(targets):
            raise CheckFailed(f"local.yml jobs changed: {sorted(jobs)}")
        for job in cfg["scrape_configs"]:
            name = job["job_name"]
            job["static_configs"] = [{"targets": [targets[name]],
                                      "labels": {"namespace": "sluice", "pod": pods[name]}}]
            if name == "rabbitmq-detailed":
                # Only this run's vhost: the shared broker's other queues stay out.
                job["params"]["vhost"] = [self.vhost]
        path = self.work / "prometheus.yml"
        dump_yaml(cfg, path)
        return path

    # --- teardown ---------------------------------------------------------

    def teardown(self, keep):
        print("==> teardown", flush=True)
        for name, proc in reversed(self.processes):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    note(f"{name} (pid {proc.pid}) ignored SIGTERM for 10 s; killing it")
                    proc.kill()
                    proc.wait()
            note(f"stopped {name}")
        if self.made_vhost:
            if subprocess.run(["rabbitmqctl", "-q", "delete_vhost", self.vhost],
                              stdout=subprocess.DEVNULL).returncode == 0:
                note(f"deleted RabbitMQ vhost {self.vhost}")
        if self.made_db:
            drop = subprocess.run(["mysql", "-h127.0.0.1", "-uroot", "-e",
                                   f"DROP DATABASE IF EXISTS `{self.database}`"])
            if drop.returncode == 0:
                note(f"dropped database {self.database}")
        if keep:
            note(f"kept {self.work}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)
