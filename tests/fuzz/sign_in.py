"""Credentials for the API fuzzer, printed as shell assignments.

Signs a demo student in (the session cookie and its CSRF value), joins the
demo round with that session and polls until admitted (the queue token and
the admission pass), so that the fuzzer reaches the handlers behind each
kind of credential, not only their refusals.

Usage: sign_in.py BASE_URL DATABASE STUDENT_NUMBER
"""

import http.cookiejar
import json
import shlex
import subprocess
import sys
import time
import urllib.request


def main() -> None:
    base, database, number = sys.argv[1:4]
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def call(method, path, body=None, headers=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        with opener.open(req, timeout=20) as r:
            return json.load(r)

    session = call("POST", "/api/session", {"student_number": number, "password": "sluice-demo"})
    cookie = next(c.value for c in jar if c.name == "sluice_session")
    round_id = subprocess.run(
        ["mysql", "-uroot", "-h127.0.0.1", "-N", "-B", database, "-e",
         "SELECT id FROM rounds WHERE state = 'open' ORDER BY id LIMIT 1"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    status = call("POST", f"/api/rounds/{round_id}/join", {})
    token = status.get("token", "")
    deadline = time.monotonic() + 60
    while status["state"] != "admitted":
        if time.monotonic() > deadline:
            sys.exit(f"not admitted within a minute: {status}")
        time.sleep(0.5)
        status = call("GET", "/api/queue/status", headers={"X-Queue-Token": token})
        token = status.get("token", token)
    values = {
        "SESSION": cookie,
        "CSRF": session["csrf"],
        "QUEUE_TOKEN": token,
        "PASS": status["pass"],
    }
    for name, value in values.items():
        print(f"{name}={shlex.quote(value)}")


if __name__ == "__main__":
    main()
