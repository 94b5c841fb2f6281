"""The live dashboard check, once scripts/live-metrics-check has the
services, Prometheus and the binaries ready: proves that what manifests/
reads is what the running system exports.

In order: a throw-away database and vhost; a real worker and gateway
configured from manifests/base/*.env; a real Prometheus configured from
manifests/prometheus/local.yml; a small load through the public API and
one dead-lettered message; then every query through Prometheus and every
metric name against the real /metrics pages. Everything started is stopped
and everything created is deleted on every exit path (teardown)."""

import argparse
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from . import live_load, live_queries
from .common import CheckFailed, note, run
from .live_stack import Stack, fetch, free_ports, http_ok, manifest_env, wait_until

RABBITMQ_METRICS = "127.0.0.1:15692"
STUDENTS = 16
# Rates need two samples inside their window, the fill-rate subquery two
# 15 s steps after the seat gauges appear, RabbitMQ refreshes its queue
# statistics every 5 s.
SCRAPE_WAIT = 30


class Phases:
    """Prints each phase with the time since the script started, and
    remembers which one is running for the failure message."""

    def __init__(self, started):
        self.started = started
        self.current = ""

    def elapsed(self):
        return f"{int(time.time() - self.started)}s"

    def __call__(self, name):
        self.current = name
        print(f"==> {name} [{self.elapsed()}]", flush=True)


def seed(stack, sluice_db):
    """The demo round, and one section with no prerequisite and 3 seats:
    the load fills it, so seats are taken, students are turned away and
    waitlisted, and a drop frees one."""
    stack.create_database(sluice_db)
    note(f"database {stack.database}: migrated and seeded (300 students, 40 sections, demo round)")
    round_id = stack.sql("SELECT id FROM rounds WHERE name = 'Demo round' ORDER BY id DESC LIMIT 1")
    if not round_id:
        raise CheckFailed("the seed made no demo round")
    hot = stack.sql("""SELECT s.id FROM sections s JOIN courses c ON c.id = s.course_id
        WHERE NOT s.closed AND NOT EXISTS (SELECT 1 FROM course_prerequisites p WHERE p.course_id = c.id)
        ORDER BY s.id LIMIT 1""")
    if not hot:
        raise CheckFailed("no section without prerequisites in the seed")
    stack.sql(f"UPDATE sections SET capacity = 3 WHERE id = {hot}")
    students = stack.sql(f"SELECT number FROM students ORDER BY id LIMIT {STUDENTS}").split()
    note(f"demo round {round_id}; section {hot} set to 3 seats; {STUDENTS} students")
    # A second round, not yet open, for the registrar to give 4th years the
    # first turn (the per-class panels read it).
    priority_round = stack.sql(
        "INSERT INTO rounds (term_id, name, eligible_years_mask, prequeue_at, opens_at, closes_at, "
        "state, admission_per_min) SELECT term_id, 'Seniors first', eligible_years_mask, "
        "NOW() + INTERVAL 1 DAY, NOW() + INTERVAL 1 DAY, closes_at + INTERVAL 1 DAY, 'scheduled', "
        f"admission_per_min FROM rounds WHERE id = {round_id}; SELECT LAST_INSERT_ID()")
    note(f"round {priority_round} scheduled for the priority load")
    stack.create_vhost()
    note(f"vhost {stack.vhost} (queues keep the default prefix: sluice.commands, sluice.commands.dead)")
    return int(round_id), int(hot), students, int(priority_round)


def start_services(stack, bin_dir, ports):
    """The worker and the gateway, configured from manifests/base/*.env with
    only addresses, secrets and the per-IP limit overridden."""
    gateway_port, gateway_ops_port, worker_port = ports
    # A fresh key for this run, at least 32 bytes; never printed.
    keys_file = stack.work / "signing-keys"
    signing_keys = f"live:{secrets.token_hex(32)}"
    fd = os.open(keys_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(signing_keys)
    path = {"PATH": os.environ["PATH"]}

    worker_env = {**path, **manifest_env("manifests/base/worker.env"),
                  "SLUICE_METRICS_ADDR": f"127.0.0.1:{worker_port}",
                  "DATABASE_URL": stack.database_url,
                  "AMQP_URL": stack.amqp_url,
                  "SLUICE_SIGNING_KEYS_FILE": str(keys_file),
                  "SLUICE_WORKER_NAME": "live-check-worker"}
    note("worker: manifests/base/worker.env, overriding SLUICE_METRICS_ADDR, DATABASE_URL, AMQP_URL, "
         "SLUICE_SIGNING_KEYS_FILE, SLUICE_WORKER_NAME")
    stack.start("sluice-worker", stack.work / "worker.log", [bin_dir / "sluice-worker"], env=worker_env)

    gateway_env = {**path, **manifest_env("manifests/base/gateway.env"),
                   "SLUICE_LISTEN": f"127.0.0.1:{gateway_port}",
                   "SLUICE_METRICS_ADDR": f"127.0.0.1:{gateway_ops_port}",
                   "DATABASE_URL": stack.database_url,
                   "AMQP_URL": stack.amqp_url,
                   "SLUICE_SIGNING_KEYS": signing_keys,
                   # Plain HTTP and no proxy in front, as in the lab overlay.
                   "SLUICE_SECURE_COOKIES": "false",
                   "SLUICE_TRUST_FORWARDED": "false",
                   # Every simulated student comes from 127.0.0.1.
                   "SLUICE_IP_RATE": "1000",
                   "SLUICE_IP_BURST": "1000"}
    note("gateway: manifests/base/gateway.env, overriding SLUICE_LISTEN, SLUICE_METRICS_ADDR, DATABASE_URL, "
         "AMQP_URL, SLUICE_SIGNING_KEYS,")
    note("         SLUICE_SECURE_COOKIES=false, SLUICE_TRUST_FORWARDED=false (plain HTTP, no proxy),")
    note("         SLUICE_IP_RATE/SLUICE_IP_BURST=1000 (all students share one client IP)")
    stack.start("sluice-gateway", stack.work / "gateway.log", [bin_dir / "sluice-gateway"], env=gateway_env)

    gateway = f"http://127.0.0.1:{gateway_port}"
    gateway_ops = f"http://127.0.0.1:{gateway_ops_port}"
    worker = f"http://127.0.0.1:{worker_port}"
    wait_until(60, "the worker (/readyz)", http_ok(f"{worker}/readyz"))
    note(f"worker ready on {worker}")
    wait_until(60, "the gateway (/readyz)", http_ok(f"{gateway}/readyz"))
    leader = re.compile(r"^sluice_waitroom_leader(\{\})? 1$", re.M)
    wait_until(30, "admission leadership", lambda: leader.search(fetch(f"{gateway_ops}/metrics")))
    note(f"gateway ready on {gateway} and holds admission leadership")
    try:
        public = urllib.request.urlopen(f"{gateway}/metrics", timeout=10).status
    except urllib.error.HTTPError as e:
        public = e.code
    if public != 404:
        raise CheckFailed(f"the public port answers /metrics with {public}; "
                          "gateway.env's SLUICE_METRICS_ADDR should move it")
    note(f"metrics on the operations port {gateway_ops} only (public /metrics: 404)")
    return gateway, gateway_ops, worker


def start_prometheus(stack, gateway_ops_port, worker_port, port):
    config = stack.prometheus_config(gateway_ops_port, worker_port, RABBITMQ_METRICS)
    try:
        run("promtool", "check", "config", config, out=stack.work / "promtool.log")
    except CheckFailed:
        raise CheckFailed("generated Prometheus configuration is invalid")
    stack.start("prometheus", stack.work / "prometheus.log",
                ["prometheus", f"--config.file={config}",
                 f"--storage.tsdb.path={stack.work / 'prometheus-data'}",
                 f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"])
    prom = f"http://127.0.0.1:{port}"
    wait_until(30, "Prometheus", http_ok(f"{prom}/-/ready"))

    def targets_up():
        targets = json.loads(fetch(f"{prom}/api/v1/targets"))["data"]["activeTargets"]
        return len(targets) == 4 and all(t["health"] == "up" for t in targets)

    wait_until(30, "all four scrape targets up", targets_up)
    note(f"Prometheus on {prom}: sluice-gateway, sluice-worker, rabbitmq, rabbitmq-detailed up; rules loaded")
    return prom


def check(stack, phase, bin_dir):
    phase("throw-away database and RabbitMQ vhost")
    round_id, hot, students, priority_round = seed(stack, bin_dir / "sluice-db")

    phase("worker and gateway, configured from manifests/base/*.env")
    gateway_port, gateway_ops_port, worker_port, prometheus_port = free_ports(4)
    gateway, gateway_ops, worker = start_services(stack, bin_dir, (gateway_port, gateway_ops_port, worker_port))

    phase("Prometheus")
    prom = start_prometheus(stack, gateway_ops_port, worker_port, prometheus_port)

    phase("load through the public API")
    live_load.run(gateway, round_id, hot, students)
    live_load.priority(gateway, priority_round, students)
    # The worker must dead-letter a message that is not a command.
    stack.publish_not_a_command()
    wait_until(30, "the malformed message on sluice.commands.dead", stack.dead_lettered)
    note("1 malformed message published to sluice.commands; the worker moved it to sluice.commands.dead")

    phase("waiting for scrapes")
    time.sleep(SCRAPE_WAIT)
    note(f"{SCRAPE_WAIT} s: fifteen scrape intervals, two 15 s subquery steps")

    phase("every query through Prometheus's HTTP API")
    pages = {"gateway": fetch(f"{gateway_ops}/metrics"), "worker": fetch(f"{worker}/metrics")}
    names = subprocess.run(["scripts/metric-names-in-manifests"], check=True, capture_output=True,
                           text=True).stdout.split()
    live_queries.check(prom, pages, names)


def show_logs(work):
    for f in sorted(work.glob("*.log")):
        print(f"\n--- last lines of {f.name} ---", file=sys.stderr)
        print("\n".join(f.read_text(errors="replace").splitlines()[-25:]), file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", type=Path, required=True, help="directory of the built binaries")
    parser.add_argument("--started", type=float, default=time.time(), help="when the check started (epoch)")
    args = parser.parse_args()

    # A signal ends the check through the same teardown as a failure.
    def interrupted(signum, _frame):
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)

    phase = Phases(args.started)
    work = Path(tempfile.mkdtemp())
    stack = Stack(work, f"{int(time.time())}{os.getpid()}")
    rc = 1
    try:
        check(stack, phase, args.bin)
        rc = 0
    except CheckFailed as e:
        if str(e):
            print(f"error: {e}", file=sys.stderr)
    except subprocess.CalledProcessError as e:
        print(f"error: {e}", file=sys.stderr)
    except SystemExit as e:
        rc = e.code
    finally:
        if rc == 0:
            print(f"\nlive-metrics-check: all checks passed in {phase.elapsed()}", flush=True)
        else:
            print(f'\nlive-metrics-check: FAILED in "{phase.current}" after {phase.elapsed()}', file=sys.stderr)
            show_logs(work)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.teardown(keep=os.environ.get("LIVE_CHECK_KEEP") == "1")
    return rc


if __name__ == "__main__":
    sys.exit(main())
