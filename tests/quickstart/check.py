#!/usr/bin/env python3
"""The README's quick start, run as a new user would run it.

Starts `scripts/demo` with no settings, waits for the URLs it prints, then
acts as a student (signs in, joins the demo round, is admitted, enrolls
through the JSON API and reads the outcome) and as the registrar (signs in,
opens the admin page). Finally it presses Ctrl-C (SIGINT to the demo's
process group, as a terminal does) and checks for a clean exit with nothing
left listening. Any step that fails ends the check with a message and a
non-zero status, so a broken quick start fails CI.

Only the standard library: this runs on a fresh machine before anything
else is installed.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# How long the demo may take to build and start (a cold build is minutes).
START_TIMEOUT_S = 1500
STEP_TIMEOUT_S = 60
STOP_TIMEOUT_S = 60


def fail(message: str) -> None:
    print(f"quickstart: FAILED: {message}", flush=True)
    raise SystemExit(1)


class Demo:
    """`scripts/demo` in its own process group, its output echoed and kept."""

    def __init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        self.proc = subprocess.Popen(
            [str(ROOT / "scripts" / "demo")],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            print(f"  demo| {line}", flush=True)
            self.lines.append(line)
            if "Ctrl-C stops" in line:
                self.ready.set()
        self.ready.set()

    def wait_ready(self) -> None:
        if not self.ready.wait(START_TIMEOUT_S) or self.proc.poll() is not None:
            fail(f"scripts/demo did not print its URLs (exit status {self.proc.poll()})")

    def url(self, label: str) -> str:
        for line in self.lines:
            m = re.match(rf"\s*{re.escape(label)}:\s+(\S+)", line)
            if m:
                return m.group(1)
        fail(f"scripts/demo printed no '{label}:' line")
        return ""

    def ctrl_c(self) -> int:
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            return self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            fail(f"scripts/demo did not stop within {STOP_TIMEOUT_S}s of Ctrl-C")
            return -1

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class Client:
    """One browser-like user: a cookie jar and JSON requests."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def request(self, method: str, path: str, body=None, headers=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("content-type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with self.opener.open(req, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except (urllib.error.URLError, OSError) as e:
            fail(f"{method} {path}: {getattr(e, 'reason', e)} (is the gateway still running?)")
            raise

    def json(self, method: str, path: str, body=None, headers=None, want=(200,)):
        status, text = self.request(method, path, body, headers)
        if status not in want:
            fail(f"{method} {path} answered {status}: {text[:300]}")
        return json.loads(text) if text else {}


def until(what: str, probe, timeout=STEP_TIMEOUT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.5)
    fail(f"{what} within {timeout}s")


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def student_flow(demo: Demo) -> None:
    queue_url = demo.url("students")
    m = re.match(r"(http://[^/]+)/rounds/(\d+)$", queue_url)
    if not m:
        fail(f"unexpected queue page URL {queue_url}")
    base, round_id = m.group(1), m.group(2)
    number = None
    for line in demo.lines:
        found = re.search(r"for example (\S+) / sluice-demo", line)
        if found:
            number = found.group(1)
    if not number:
        fail("scripts/demo printed no example student")

    page = Client(base)
    status, html = page.request("GET", f"/rounds/{round_id}")
    if status != 200 or "<html" not in html.lower():
        fail(f"the queue page answered {status}")

    s = Client(base)
    s.json("POST", "/api/session", {"student_number": number, "password": "sluice-demo"})
    print(f"quickstart: student {number} signed in", flush=True)
    joined = s.json("POST", f"/api/rounds/{round_id}/join", {})
    print(f"quickstart: joined round {round_id}: {joined['state']}", flush=True)

    def admitted():
        st = s.json("GET", "/api/queue/status")
        if st["state"] in ("skipped", "left", "expired", "closed"):
            fail(f"the student's place ended: {st['state']}")
        return st if st["state"] == "admitted" else None

    st = until("the student was not admitted", admitted)
    pass_token = st["pass"]
    print("quickstart: admitted", flush=True)

    status, html = s.request("GET", "/courses")
    if status != 200:
        fail(f"/courses answered {status}")
    sections = re.findall(r'name="section" value="(\d+)"', html)
    if not sections:
        fail("/courses listed no section to enroll in")
    accepted = s.json(
        "POST",
        "/api/enroll",
        {"sections": [int(sections[0])]},
        headers={"x-pass": pass_token},
        want=(202,),
    )
    command = accepted["command_id"]
    print(f"quickstart: enroll accepted as command {command}", flush=True)

    def decided():
        out = s.json("GET", f"/api/commands/{command}", headers={"x-pass": pass_token})
        return out if out["state"] == "decided" else None

    out = until("the command was not decided", decided)
    items = ", ".join(f"{i['section']}: {i['outcome']} {i['reason'] or ''}".strip() for i in out["items"])
    print(f"quickstart: outcome {items}", flush=True)


def registrar_flow(demo: Demo) -> None:
    admin_url = demo.url("admin")
    base = admin_url.rsplit("/admin", 1)[0]
    r = Client(base)
    r.json("POST", "/api/session", {"username": "registrar", "password": "registrar-demo"})
    status, html = r.request("GET", "/admin")
    if status != 200 or "Demo round" not in html:
        fail(f"the registrar page answered {status} without the demo round")
    print("quickstart: the registrar page lists the demo round", flush=True)


def main() -> None:
    demo = Demo()
    try:
        demo.wait_ready()
        ports = sorted(
            {int(p) for line in demo.lines for p in re.findall(r"http://[0-9.]+:(\d+)", line)}
        )
        student_flow(demo)
        registrar_flow(demo)
        code = demo.ctrl_c()
        if code != 0:
            fail(f"scripts/demo exited with status {code} after Ctrl-C")
        left = [p for p in ports if listening(p)]
        if left:
            fail(f"still listening after Ctrl-C: ports {left}")
        leftover = subprocess.run(
            ["pgrep", "-f", "target/.*/sluice-(gateway|worker)"], capture_output=True, text=True
        ).stdout.split()
        if leftover:
            fail(f"processes left running after Ctrl-C: {leftover}")
        print(f"quickstart: Ctrl-C stopped everything (ports {ports} closed)", flush=True)
        print("quickstart: 1 passed, 0 failed", flush=True)
    finally:
        demo.kill()


if __name__ == "__main__":
    sys.exit(main())
