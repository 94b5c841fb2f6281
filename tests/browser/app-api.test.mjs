// The JSON API driven as an app would: sign in, search, fill the cart,
// join the demo round, poll until admitted, enroll, read the outcome,
// results, enrollments and timetable. Uses STUDENTS[13..15] only.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BASE, PASSWORD, STUDENTS } from "./lib.mjs";

const MINE = STUDENTS.slice(13, 16);

// A minimal app client: keeps the session cookie and the CSRF value.
class App {
  constructor() {
    this.cookie = "";
    this.csrf = "";
  }

  async call(method, path, { body, headers = {} } = {}) {
    const h = { ...headers };
    if (this.cookie) h.cookie = this.cookie;
    if (body !== undefined) h["content-type"] = "application/json";
    const r = await fetch(`${BASE}${path}`, {
      method,
      headers: h,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const session = r.headers.getSetCookie().find((c) => c.startsWith("sluice_session="));
    if (session) this.cookie = session.split(";")[0];
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : null };
  }

  async signIn(number) {
    const r = await this.call("POST", "/api/session", {
      body: { student_number: number, password: PASSWORD },
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    this.csrf = r.body.csrf;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function openRound(app) {
  for (let id = 1; id <= 20; id++) {
    const r = await app.call("GET", `/api/rounds/${id}`);
    if (r.status === 200 && r.body.state === "open") return id;
  }
  throw new Error("no open round");
}

test("an app signs in, fills its cart, waits its turn, enrolls and reads the outcome", async () => {
  assert.ok(MINE.length >= 1, "the runner hands out at least 14 students");
  const app = new App();
  await app.signIn(MINE[0]);

  const search = await app.call("GET", "/api/catalog?open=1&per_page=100");
  assert.equal(search.status, 200);
  assert.ok(search.body.sections.length > 0, "open sections to pick from");
  const bad = await app.call("GET", "/api/catalog?from=25:99");
  assert.equal(bad.status, 400);
  assert.match(bad.body.message, /^from:/);

  // Nothing in this file's cart yet; add a section with free seats.
  const section = search.body.sections.find((s) => s.seats_left > 5) ?? search.body.sections[0];
  const noCsrf = await app.call("POST", "/api/cart", { body: { section: section.id } });
  assert.equal(noCsrf.status, 403);
  const added = await app.call("POST", "/api/cart", {
    body: { section: section.id },
    headers: { "x-csrf-token": app.csrf },
  });
  assert.ok([200, 201].includes(added.status), JSON.stringify(added.body));
  assert.ok(added.body.sections.some((s) => s.id === section.id));

  const round = await openRound(app);
  let status = await app.call("POST", `/api/rounds/${round}/join`, { body: {} });
  assert.equal(status.status, 200, JSON.stringify(status.body));
  let token = status.body.token;
  const deadline = Date.now() + 60_000;
  while (status.body.state !== "admitted") {
    assert.ok(Date.now() < deadline, `not admitted: ${JSON.stringify(status.body)}`);
    await sleep(Math.min(status.body.poll_after_ms || 500, 1000));
    status = await app.call("GET", "/api/queue/status", { headers: { "x-queue-token": token } });
    assert.equal(status.status, 200);
    token = status.body.token ?? token;
  }
  const pass = status.body.pass;

  const cart = await app.call("GET", "/api/cart");
  const sections = cart.body.sections.map((s) => s.id);
  const sent = await app.call("POST", "/api/enroll", {
    body: { sections },
    headers: { "x-pass": pass, "idempotency-key": `app-api-${MINE[0]}-${Date.now()}` },
  });
  assert.equal(sent.status, 202, JSON.stringify(sent.body));

  let outcome;
  for (;;) {
    outcome = await app.call("GET", sent.body.status_url, { headers: { "x-pass": pass } });
    assert.equal(outcome.status, 200);
    if (outcome.body.state === "decided") break;
    assert.ok(Date.now() < deadline + 30_000, "the command was not decided");
    await sleep(outcome.body.poll_after_ms ?? 500);
  }
  const mine = outcome.body.items.find((i) => i.section === section.id);
  assert.ok(mine, JSON.stringify(outcome.body));

  const results = await app.call("GET", "/api/results");
  assert.ok(results.body.items.some((i) => i.command_id === sent.body.command_id));
  const held = await app.call("GET", "/api/enrollments");
  const timetable = await app.call("GET", "/api/timetable");
  if (mine.outcome === "enrolled") {
    assert.ok(held.body.sections.some((s) => s.id === section.id));
    const inWeek =
      timetable.body.slots.some((s) => s.section_id === section.id) ||
      timetable.body.unscheduled.includes(section.id);
    assert.ok(inWeek, JSON.stringify(timetable.body));
  } else {
    assert.ok(!held.body.sections.some((s) => s.id === section.id));
  }

  // Another student sees none of it.
  if (MINE.length > 1) {
    const other = new App();
    await other.signIn(MINE[1]);
    const theirs = await other.call("GET", "/api/results");
    assert.ok(!theirs.body.items.some((i) => i.command_id === sent.body.command_id));
  }
});
