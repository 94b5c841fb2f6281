// The waitlist as students and the registrar use it, in headless Chromium:
// a student opts a full section into the waitlist, sees their place in
// line, the registrar raises the capacity, and the student reads the
// promotion on the results page. Takes STUDENTS[5..7] and a section of the
// last course in the registrar's list, which no other file touches.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BASE, PASSWORD, STUDENTS, page, shot, signIn } from "./lib.mjs";

const [HOLDER, WAITER] = STUDENTS.slice(5, 7);

// Admitted through the demo round's queue, then the whole cart sent.
async function enrollCart(p) {
  await p.goto(`${BASE}/cart`);
  await p.getByRole("link", { name: /Go to the queue/ }).first().click();
  await p.getByRole("button", { name: "Join the queue" }).click();
  await p.waitForSelector("text=You're in!", { timeout: 30_000 });
  await p.getByRole("link", { name: "Enroll from your cart" }).click();
  await p.getByRole("button", { name: "Enroll in the whole cart" }).click();
  await p.waitForURL(/\/results/);
  await p.waitForSelector("table tbody tr .tag", { timeout: 30_000 });
}

async function addToCart(p, code, sid) {
  await p.goto(`${BASE}/courses?q=${encodeURIComponent(code)}`);
  await p.locator(`form:has(input[name="section"][value="${sid}"]) button`).click();
  await p.waitForURL(/msg=added/);
}

async function setCapacity(admin, sid, capacity) {
  await admin.locator(`#cap-${sid}`).fill(String(capacity));
  await admin.locator(`form[action="/admin/sections/${sid}"] button`, { hasText: "Save" }).click();
  await admin.waitForURL(/msg=saved/);
}

test("a full section's waitlist: opt in, see the place, promoted by a capacity raise", async () => {
  assert.ok(HOLDER && WAITER, "the runner hands out at least 7 demo students");
  const admin = await page();
  await signIn(admin, "registrar", "registrar-demo", true);
  await admin.waitForURL(/\/admin/);
  await admin.goto(`${BASE}/admin/courses`);
  const last = admin.locator("table tbody tr td a").last();
  const code = (await last.textContent()).trim();
  await last.click();
  const action = await admin.locator('form[action^="/admin/sections/"]').first().getAttribute("action");
  const sid = action.split("/").pop();
  // Room for exactly one more student: the holder takes it.
  const heading = await admin.locator(`#sec-${sid}`).textContent();
  const enrolled = Number(heading.match(/enrolled\s+(\d+)\s*\//)[1]);
  await setCapacity(admin, sid, enrolled + 1);

  const holder = await page();
  await signIn(holder, HOLDER, PASSWORD);
  await holder.waitForURL(/\/courses/);
  await addToCart(holder, code, sid);
  await enrollCart(holder);
  assert.deepEqual((await holder.locator("table tbody tr .tag").allTextContents()).map((t) => t.trim()), ["Enrolled"]);

  const waiter = await page({ viewport: { width: 390, height: 844 } });
  await signIn(waiter, WAITER, PASSWORD);
  await waiter.waitForURL(/\/courses/);
  await addToCart(waiter, code, sid);
  await waiter.goto(`${BASE}/cart`);
  await waiter.getByRole("button", { name: "Join the waitlist if full" }).click();
  await waiter.waitForURL(/msg=waitlist_on/);
  await waiter.waitForSelector("text=Waitlist if full");
  await shot(waiter, "waitlist-01-cart-choice");
  await enrollCart(waiter);
  assert.deepEqual((await waiter.locator("table tbody tr .tag").allTextContents()).map((t) => t.trim()), ["Waitlisted"]);
  await waiter.reload();
  assert.equal((await waiter.locator(`#waitlists [data-waitlist-section="${sid}"] .place`).textContent()).trim(), "1st of 1");
  await shot(waiter, "waitlist-02-place");

  // The registrar's view lists the line; then one more seat.
  await admin.reload();
  const line = admin.locator(`#waitlist-${sid}`);
  assert.match(await line.textContent(), new RegExp(WAITER));
  await setCapacity(admin, sid, enrolled + 2);
  await shot(admin, "waitlist-03-registrar");

  // No student acts: the worker promotes, the results page says so.
  let promoted = "";
  for (let i = 0; i < 40 && !promoted; i++) {
    await waiter.goto(`${BASE}/results`);
    promoted = (await waiter.locator("#promotions li").allTextContents()).join(" ");
    if (!promoted) await waiter.waitForTimeout(500);
  }
  assert.match(promoted, /Promoted from the waitlist into /);
  assert.equal(await waiter.locator("#waitlists").count(), 0, "no longer waiting");
  await shot(waiter, "waitlist-04-promoted");
  for (const p of [admin, holder, waiter]) await p.context().close();
});
