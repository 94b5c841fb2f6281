// The cart sent at admission and alternates, in headless Chromium against
// the real stack started by ./run. Takes STUDENTS[2..4]. The demo round
// admits at once, so the waiting part runs in a round of its own, created
// by the registrar with an admission rate of 0 and opened to admissions
// once the student has opted in.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BASE, PASSWORD, STUDENTS, page, shot, signIn } from "./lib.mjs";

const [, , STUDENT_C, STUDENT_D] = STUDENTS;

// "YYYY-MM-DDTHH:MM" in Seoul, `hours` from now, for datetime-local fields.
function seoul(hours) {
  const at = new Date(Date.now() + hours * 3600_000);
  const f = new Intl.DateTimeFormat("en-CA", {
    timeZone: "Asia/Seoul", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  }).formatToParts(at);
  const v = Object.fromEntries(f.map((p) => [p.type, p.value]));
  return `${v.year}-${v.month}-${v.day}T${v.hour}:${v.minute}`;
}

async function addSections(p, n) {
  await p.goto(`${BASE}/courses`);
  for (let i = 0; i < n; i++) {
    await p.locator("tr form button", { hasText: "Add" }).first().click();
    await p.waitForURL(/msg=added/);
  }
}

test("a student names an alternate on the cart page", async () => {
  assert.ok(STUDENT_C, "the runner passes demo students");
  const p = await page();
  await signIn(p, STUDENT_C, PASSWORD);
  await p.waitForURL(/\/courses/);
  // A course with several sections: the app API's catalog names one.
  const found = await p.evaluate(async () => (await fetch("/api/catalog?per_page=100")).json());
  const counts = {};
  for (const s of found.sections) counts[s.code] = (counts[s.code] || 0) + 1;
  const code = Object.keys(counts).find((c) => counts[c] >= 2);
  assert.ok(code, "the demo catalog has a course with two sections");
  await p.goto(`${BASE}/courses?q=${encodeURIComponent(code)}`);
  await p.locator("tr form button", { hasText: "Add" }).first().click();
  await p.waitForURL(/msg=added/);
  await p.goto(`${BASE}/cart`);
  const picker = p.locator("form.alternates select").first();
  assert.equal(await picker.count(), 1, `the cart offers alternates for ${code}`);
  const value = await picker.locator("option").nth(1).getAttribute("value");
  await picker.selectOption(value);
  await p.getByRole("button", { name: "Save alternates" }).first().click();
  await p.waitForURL(/msg=alternates/);
  assert.equal(await p.locator("form.alternates select").first().inputValue(), value);
  await shot(p, "alt-02-saved");
  await p.context().close();
});

test("a student opts in while waiting and sees the outcome without clicking enroll", async () => {
  assert.ok(STUDENT_D, "the runner passes demo students");
  // The registrar makes a round that admits nobody yet.
  const admin = await page();
  await signIn(admin, "registrar", "registrar-demo", true);
  await admin.waitForURL(/\/admin/);
  await admin.getByLabel("Name").fill("Auto-send round");
  await admin.getByLabel(/Class years/).fill("1-4");
  await admin.getByLabel(/Pre-queue opens/).fill(seoul(-2));
  await admin.getByLabel(/Room opens/).fill(seoul(-1));
  await admin.getByLabel(/Closes/).fill(seoul(5));
  await admin.getByLabel("Admissions per minute").fill("0");
  await admin.getByRole("button", { name: "Create" }).click();
  await admin.waitForURL(/\/admin\/rounds\/\d+/);
  const round = admin.url().match(/\/admin\/rounds\/(\d+)/)[1];

  const p = await page();
  await signIn(p, STUDENT_D, PASSWORD);
  await p.waitForURL(/\/courses/);
  await addSections(p, 2);
  // Wait for the scheduler to open the round, then join.
  for (let i = 0; i < 30; i++) {
    await p.goto(`${BASE}/rounds/${round}`);
    if (await p.getByRole("button", { name: "Join the queue" }).count()) { break; }
    await p.waitForTimeout(1000);
  }
  await p.getByRole("button", { name: "Join the queue" }).click();
  await p.waitForSelector("#queue-cart");
  await p.getByRole("button", { name: "Send my cart when I am admitted" }).click();
  await p.waitForSelector("#auto-send-on");
  assert.equal(await p.locator("#queue-cart tbody tr").count(), 2);
  await shot(p, "auto-01-opted-in");

  // Admission opens; the student clicks nothing.
  const r = await admin.request.post(`${BASE}/api/admin/rounds/${round}`, {
    headers: { Authorization: "Basic " + Buffer.from("registrar:registrar-demo").toString("base64") },
    data: { admission_per_min: 6000 },
  });
  assert.equal(r.status(), 200);
  await p.waitForSelector("#auto-send-outcomes li", { timeout: 45_000 });
  const outcomes = await p.locator("#auto-send-outcomes li").allTextContents();
  assert.equal(outcomes.length, 2, outcomes.join(" | "));
  assert.ok(outcomes.every((o) => /Enrolled|Not enrolled|Waitlisted/.test(o)), outcomes.join(" | "));
  await shot(p, "auto-02-outcomes");
  await p.context().close();
  await admin.context().close();
});
