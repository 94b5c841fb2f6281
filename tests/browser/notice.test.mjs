// The queue page's message follows the poll's notice in place: it appears,
// and changes to another notice's words, without the page reloading (a
// reload per change would flicker, and lose the page to a shed request,
// when gateways disagree for a while). Takes STUDENTS[4] and STUDENTS[7].
import { test } from "node:test";
import assert from "node:assert/strict";
import { BASE, STUDENTS, createRound, page, shot, signIn } from "./lib.mjs";

const [AHEAD, WAITER] = [STUDENTS[4], STUDENTS[7]];

const BASIC = "Basic " + Buffer.from("registrar:registrar-demo").toString("base64");

test("the queue page swaps a notice's words in place as the room changes", async () => {
  assert.ok(AHEAD && WAITER, "the runner passes demo students");
  // A round of its own that admits nobody yet.
  const admin = await page();
  await signIn(admin, "registrar", "registrar-demo", true);
  await admin.waitForURL(/\/admin/);
  const round = await createRound(admin, `Notice round ${Date.now()}`, 0);
  await admin.getByRole("button", { name: "Open now" }).click();
  await admin.waitForURL(/msg=saved/);
  const change = async (body) => {
    const r = await admin.request.post(`${BASE}/api/admin/rounds/${round}`, {
      headers: { Authorization: BASIC }, data: body,
    });
    assert.equal(r.status(), 200, await r.text());
  };

  // One student joins first, through the API...
  const a = await page();
  await signIn(a, AHEAD);
  await a.waitForURL((u) => !u.pathname.startsWith("/login"));
  let joined;
  for (let i = 0; i < 20; i++) {
    joined = await a.evaluate(async ([base, id]) => {
      const csrf = (await (await fetch(`${base}/api/session`)).json()).csrf;
      const r = await fetch(`${base}/api/rounds/${id}/join`, {
        method: "POST", headers: { "content-type": "application/json", "x-csrf-token": csrf }, body: "{}",
      });
      return { status: r.status, body: await r.text() };
    }, [BASE, round]);
    // The gateway's snapshot may not have the round open for a moment.
    if (joined.status === 200) { break; }
    assert.equal(joined.status, 409, joined.body);
    await a.waitForTimeout(500);
  }
  assert.equal(joined.status, 200, `the student ahead could not join: ${joined.body}`);

  // ...the other on the queue page, with the script on.
  const p = await page();
  await signIn(p, WAITER);
  await p.waitForURL((u) => !u.pathname.startsWith("/login"));
  await p.goto(`${BASE}/rounds/${round}`);
  await p.getByRole("button", { name: "Join the queue" }).click();
  await p.waitForSelector("#queue-poll", { state: "attached" });
  assert.equal(await p.locator("#queue-poll").getAttribute("data-phase"), "waiting");
  assert.equal(await p.locator("#message").isHidden(), true, "no notice yet");
  // Gone on a reload.
  await p.evaluate(() => { window.sluiceKept = true; });

  // Admission starts with one slot: the student ahead takes it, and the
  // page says why the line stopped.
  await change({ admission_per_min: 600, max_active: 1 });
  await p.waitForFunction(
    () => !document.getElementById("message").hidden &&
      /Every slot is in use/.test(document.getElementById("message").textContent),
    null, { timeout: 45_000 });
  assert.equal(await p.evaluate(() => window.sluiceKept), true, "the page was not reloaded");
  await shot(p, "notice-01-seats-busy");

  // The registrar lowers the rate to nothing and lifts the cap: the other
  // notice's words take the message's place, still without a reload.
  await change({ admission_per_min: 0, max_active: 0 });
  await p.waitForFunction(
    () => /admission rate was lowered/.test(document.getElementById("message").textContent),
    null, { timeout: 45_000 });
  assert.equal(await p.locator("#message").isVisible(), true);
  assert.doesNotMatch(await p.locator("#message").textContent(), /Every slot/);
  assert.equal(await p.evaluate(() => window.sluiceKept), true, "the page was not reloaded");
  assert.equal(await p.locator("#queue-poll").getAttribute("data-phase"), "waiting");
  await shot(p, "notice-02-slowed");

  await p.context().close();
  await a.context().close();
  await admin.context().close();
});
