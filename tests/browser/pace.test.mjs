// The automatic pace from the registrar's pages: a round of its own (the
// demo round is shared), opened, switched to automatic pace; the live view
// names the mode and the reason. Takes STUDENTS[10..12].
import { test } from "node:test";
import assert from "node:assert/strict";
import { BASE, STUDENTS, createRound, page, shot, signIn } from "./lib.mjs";

const [STUDENT] = STUDENTS.slice(10, 13);

test("a registrar switches a round to automatic pace and the live view says why", async () => {
  const p = await page();
  await signIn(p, "registrar", "registrar-demo", true);
  await p.waitForURL(/\/admin/);
  const id = await createRound(p, `Pace round ${Date.now()}`, 600);
  await p.getByRole("button", { name: "Open now" }).click();
  await p.waitForURL(/msg=saved/);

  // Bad settings: a message next to the form, not an error page.
  await p.locator("#pace-auto").check();
  await p.getByLabel("Floor (per minute)").fill("500");
  await p.getByLabel("Ceiling (per minute)").fill("50");
  await p.getByRole("button", { name: "Apply pace" }).click();
  await p.waitForSelector("#pace-err");

  await p.locator("#pace-auto").check();
  await p.getByLabel("Floor (per minute)").fill("30");
  await p.getByLabel("Ceiling (per minute)").fill("900");
  await p.getByRole("button", { name: "Apply pace" }).click();
  await p.waitForURL(/msg=saved/);
  // The live view shows the mode at once and, after the leader's first
  // step, why the rate is where it is (the worker keeps up: climbing).
  await p.waitForFunction(() => /Automatic pace 30–900/.test(document.getElementById("s-pace")?.textContent || ""), null, { timeout: 15_000 });
  await p.waitForFunction(() => /Workers keep up|Near the targets|Workers behind/.test(document.getElementById("s-pace-reason")?.textContent || ""), null, { timeout: 20_000 });
  const audit = await p.locator("section[aria-labelledby=audit-h] tbody tr").first().textContent();
  assert.match(audit, /round\.pace/);
  assert.match(audit, /auto/);
  await shot(p, "pace-admin-round");

  // A student waiting in that round sees the pace on the status API.
  const s = await page();
  await signIn(s, STUDENT);
  await s.waitForURL((u) => !u.pathname.startsWith("/login"));
  const joined = await s.evaluate(async ([base, round]) => {
    const csrf = (await (await fetch(`${base}/api/session`)).json()).csrf;
    const r = await fetch(`${base}/api/rounds/${round}/join`, {
      method: "POST", headers: { "content-type": "application/json", "x-csrf-token": csrf }, body: "{}",
    });
    return { status: r.status, body: await r.json() };
  }, [BASE, id]);
  assert.equal(joined.status, 200, JSON.stringify(joined.body));
  const st = joined.body;
  assert.ok(["waiting", "admitted"].includes(st.state), JSON.stringify(st));
  if (st.state === "waiting") {
    assert.equal(st.pace.mode, "auto", JSON.stringify(st));
  }
  await s.context().close();
  await p.context().close();
});

// Priority inside a round, on a phone without JavaScript: declared on the
// round page before it opens (a bad weight answered next to the form),
// audit-logged, and fixed once the round opens.
test("a registrar gives 4th years an earlier turn from the round page on a phone", async () => {
  const p = await page({ viewport: { width: 390, height: 844 }, isMobile: true, javaScriptEnabled: false });
  await signIn(p, "registrar", "registrar-demo", true);
  await p.waitForURL(/\/admin/);
  await createRound(p, `Priority round ${Date.now()}`, 600);

  await p.getByLabel(/By weight/).check();
  await p.getByLabel(/Groups of class years/).fill("4=0/1-3=1");
  await p.getByRole("button", { name: "Apply priority" }).click();
  await p.waitForSelector("#priority-err");
  assert.match(await p.locator("#priority-err").textContent(), /1 to 100/);

  await p.getByLabel(/In order/).check();
  await p.getByLabel(/Groups of class years/).fill("4/1-3");
  await p.getByRole("button", { name: "Apply priority" }).click();
  await p.waitForURL(/msg=saved/);
  const audit = await p.locator("section[aria-labelledby=audit-h] tbody tr").first().textContent();
  assert.match(audit, /round\.priority/);
  assert.match(audit, /strict:4\/1-3/);
  await shot(p, "priority-admin-round-phone");

  await p.getByRole("button", { name: "Open now" }).click();
  await p.waitForURL(/msg=saved/);
  assert.equal(await p.locator("#priority_groups").count(), 0, "fixed once open");
  assert.match(await p.locator("#priority-form").textContent(), /4\/1-3/);
  await p.context().close();
});
