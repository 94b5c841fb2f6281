"""The live check's small load through the public API, as the browser
does it: students sign in, join the demo round, poll until admitted,
enroll with the pass, read the outcome; one drops; a few requests are
refused. Every answer is checked, so the load also proves the API works."""

import base64
import http.cookiejar
import json
import time
import urllib.error
import urllib.request

from .common import CheckFailed, note

PASSWORD = "sluice-demo"  # the published demo password of every seeded student
# The published demo registrar (HTTP Basic on the admin API).
REGISTRAR = "Basic " + base64.b64encode(b"registrar:registrar-demo").decode()
# Outcome reads count against the per-student limit (3/s).
POLL_EVERY = 0.5


class Api:
    """The gateway's JSON API, one call at a time."""

    def __init__(self, base):
        self.base = base

    def call(self, method, path, body=None, headers=None, opener=None, expect=(200,)):
        """(status, JSON body or None); any status outside `expect` fails."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"content-type": "application/json", **(headers or {})})
        try:
            resp = (opener or urllib.request.build_opener()).open(req, timeout=10)
            status, text = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read()
        if status not in expect:
            raise CheckFailed(f"{method} {path}: HTTP {status} (expected {expect}): {text[:200]!r}")
        return status, (json.loads(text) if text and text[:1] in b"[{" else None)


def sign_in_and_join(api, round_id, numbers):
    """Queue token and (if admitted at once) pass of each student."""
    tokens, passes = {}, {}
    t0 = time.monotonic()
    for n in numbers:
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        api.call("POST", "/api/session", {"student_number": n, "password": PASSWORD}, opener=opener)
        _, st = api.call("POST", f"/api/rounds/{round_id}/join", {}, opener=opener)
        tokens[n] = st["token"]
        if st.get("pass"):
            passes[n] = st["pass"]
    note(f"{len(numbers)} students signed in and joined round {round_id} in {time.monotonic() - t0:.1f}s")
    return tokens, passes


def wait_for_admission(api, numbers, tokens, passes):
    deadline = time.monotonic() + 60
    polls = 0
    while len(passes) < len(numbers):
        if time.monotonic() > deadline:
            raise CheckFailed(f"only {len(passes)} of {len(numbers)} admitted within 60 s")
        for n in numbers:
            if n in passes:
                continue
            _, st = api.call("GET", "/api/queue/status", headers={"x-queue-token": tokens[n]})
            polls += 1
            tokens[n] = st.get("token") or tokens[n]
            if st["state"] == "admitted":
                passes[n] = st["pass"]
            elif st["state"] not in ("waiting", "prequeue"):
                raise CheckFailed(f"student {n}: unexpected state {st['state']}")
        time.sleep(POLL_EVERY)
    note(f"all {len(passes)} admitted after {polls} status polls")


def outcomes(api, commands, passes):
    """Command id -> its decided outcome, for commands {id: student}."""
    done, deadline = {}, time.monotonic() + 60
    while len(done) < len(commands):
        if time.monotonic() > deadline:
            raise CheckFailed(f"only {len(done)} of {len(commands)} commands decided within 60 s")
        for cid, n in commands.items():
            if cid in done:
                continue
            status, out = api.call("GET", f"/api/commands/{cid}", headers={"x-pass": passes[n]},
                                   expect=(200, 202, 404))
            if status == 200 and out and out.get("items") and out.get("state", "decided") == "decided":
                done[cid] = out
        time.sleep(POLL_EVERY)
    return done


def run(gateway, round_id, hot, numbers):
    """Fills section `hot` (3 seats) from `numbers`: seats are taken,
    students are turned away and waitlisted, and a drop frees one."""
    api = Api(gateway)
    tokens, passes = sign_in_and_join(api, round_id, numbers)
    wait_for_admission(api, numbers, tokens, passes)

    commands = {}
    for i, n in enumerate(numbers):
        body = {"sections": [hot], "waitlist": i % 3 == 2}
        _, acc = api.call("POST", "/api/enroll", body, headers={"x-pass": passes[n]}, expect=(202,))
        commands[acc["command_id"]] = n
    decided = outcomes(api, commands, passes)
    kinds = {}
    for out in decided.values():
        for item in out["items"]:
            key = item.get("outcome", "?") + (f"/{item['reason']}" if item.get("reason") else "")
            kinds[key] = kinds.get(key, 0) + 1
    note(f"{len(commands)} enroll commands accepted (202) and decided: "
         + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
    enrolled = [commands[c] for c, o in decided.items()
                if any(it.get("outcome") == "enrolled" for it in o["items"])]
    if not enrolled:
        raise CheckFailed("nobody was enrolled")

    _, acc = api.call("POST", "/api/drop", {"section": hot}, headers={"x-pass": passes[enrolled[0]]},
                      expect=(202,))
    out = outcomes(api, {acc["command_id"]: enrolled[0]}, passes)
    note("1 drop accepted and decided: "
         + ", ".join(it.get("outcome", "?") for o in out.values() for it in o["items"]))

    # Refusals the Gateway RED dashboard shows: no token, bad token, no pass.
    api.call("GET", "/api/queue/status", expect=(400, 401, 403))
    api.call("GET", "/api/queue/status", headers={"x-queue-token": "not-a-token"}, expect=(400, 401, 403))
    api.call("POST", "/api/enroll", {"sections": [hot]}, expect=(400, 401, 403))
    api.call("GET", f"/api/rounds/{round_id}")
    api.call("GET", "/", expect=(200, 303))
    note("3 refused requests (no token, bad token, no pass), round info, start page")


def priority(gateway, round_id, numbers):
    """The registrar gives 4th years the first turn in a scheduled round
    and opens it; students join and poll. The per-class gauges then hold
    each line's waiting count."""
    api = Api(gateway)
    admin = {"authorization": REGISTRAR}
    body = {"priority": {"mode": "strict", "groups": [{"years": [4]}, {"years": [1, 2, 3]}]}}
    api.call("POST", f"/api/admin/rounds/{round_id}", body, headers=admin)
    api.call("POST", f"/api/admin/rounds/{round_id}", {"action": "open"}, headers=admin)
    _, shown = api.call("GET", f"/api/admin/rounds/{round_id}", headers=admin)
    if (shown.get("priority") or {}).get("spec") != "strict:4/1-3":
        raise CheckFailed(f"round {round_id}: the priority set is not shown: {shown.get('priority')}")
    # The admin view reads MySQL; joins read the gateway's snapshot of the
    # rooms, refreshed each second: wait until that has the round open.
    deadline = time.monotonic() + 15
    while (api.call("GET", f"/api/rounds/{round_id}", expect=(200, 404))[1] or {}).get("state") != "open":
        if time.monotonic() > deadline:
            raise CheckFailed(f"round {round_id}: not open in the gateway's snapshot within 15 s")
        time.sleep(0.5)
    tokens, _ = sign_in_and_join(api, round_id, numbers[:4])
    for n, token in tokens.items():
        _, st = api.call("GET", "/api/queue/status", headers={"x-queue-token": token})
        if st["state"] not in ("waiting", "admitted"):
            raise CheckFailed(f"student {n} in round {round_id}: unexpected state {st['state']}")
    note(f"round {round_id}: 4th years first (strict), opened; 4 students joined and polled")
