// The pages as a student and a registrar use them, in headless Chromium,
// against a real gateway, worker, MariaDB and RabbitMQ started by ./run.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BASE, PASSWORD, STUDENTS, page, shot, signIn } from "./lib.mjs";

const [STUDENT_A, STUDENT_B] = STUDENTS;

test("a student builds a cart, waits, is admitted, enrolls and sees the timetable", async () => {
  assert.ok(STUDENT_A, "the runner passes a demo student number");
  const p = await page();
  await signIn(p, STUDENT_A, PASSWORD);
  await p.waitForURL(/\/courses/);
  await shot(p, "01-courses");

  // Two sections from the first result page, one at a time.
  for (let i = 0; i < 2; i++) {
    const add = p.locator("tr form button", { hasText: "Add" }).first();
    await add.click();
    await p.waitForURL(/msg=added/);
  }
  await p.goto(`${BASE}/cart`);
  assert.equal(await p.locator("ul.items").first().locator("li.item").count(), 2);
  await shot(p, "02-cart");

  // Queue: the demo round is open and admits at once at this rate.
  await p.getByRole("link", { name: /Go to the queue/ }).first().click();
  await p.getByRole("button", { name: "Join the queue" }).click();
  await p.waitForSelector("text=You're in!", { timeout: 30_000 });
  await shot(p, "03-admitted");

  await p.getByRole("link", { name: "Enroll from your cart" }).click();
  await p.getByRole("button", { name: "Enroll in the whole cart" }).click();
  await p.waitForURL(/\/results/);
  // The page polls the command until the worker decided it.
  await p.waitForSelector("table tbody tr", { timeout: 30_000 });
  const outcomes = await p.locator("table tbody tr .tag").allTextContents();
  assert.ok(outcomes.length >= 1, "each cart item has an outcome");
  assert.ok(outcomes.every((o) => ["Enrolled", "Not enrolled", "Waitlisted"].includes(o.trim())), outcomes.join());
  await shot(p, "04-results");

  await p.getByRole("link", { name: "See the timetable" }).click();
  await p.waitForSelector("table.timetable");
  if (outcomes.some((o) => o.trim() === "Enrolled")) {
    assert.ok((await p.locator("td.block").count()) + (await p.locator("text=No fixed time").count()) > 0);
  }
  await shot(p, "05-timetable");
  await p.context().close();
});

test("a registrar changes the admission rate and the live view shows it", async () => {
  // A browser far from Seoul: the page's times are the university's anyway.
  const p = await page({ timezoneId: "America/New_York" });
  await signIn(p, "registrar", "registrar-demo", true);
  await p.waitForURL(/\/admin/);
  await p.getByRole("link", { name: "Demo round" }).first().click();
  await p.getByLabel("Admissions per minute").fill("1234");
  await p.getByRole("button", { name: "Apply rate" }).click();
  await p.waitForURL(/msg=saved/);
  // Effective: the live view (fed from the room snapshot every gateway
  // refreshes) reports the new target, and the audit log names who.
  await p.waitForFunction(() => document.getElementById("s-target")?.textContent === "1234", null, { timeout: 15_000 });
  // The live view's clock is in the university's zone (the page says all
  // times are Asia/Seoul), not the browser's.
  const clock = (await p.locator("#live-at").textContent()).trim();
  const shown = clock.match(/^(\d{2}):(\d{2}):\d{2} KST$/);
  assert.ok(shown, `live clock "${clock}" is not HH:MM:SS KST`);
  const seoul = new Intl.DateTimeFormat("en-GB", { timeZone: "Asia/Seoul", hour: "2-digit", minute: "2-digit", hourCycle: "h23" })
    .format(new Date()).split(":").map(Number);
  const apart = Math.abs((Number(shown[1]) * 60 + Number(shown[2])) - (seoul[0] * 60 + seoul[1]));
  assert.ok(Math.min(apart, 1440 - apart) <= 2, `live clock ${clock} is not Seoul's time (${seoul.join(":")})`);
  const audit = await p.locator("section[aria-labelledby=audit-h] tbody tr").first().textContent();
  assert.match(audit, /registrar/);
  assert.match(audit, /1234/);
  await shot(p, "06-admin-round");

  // A bad value gets a message next to the field, not an error page.
  await p.getByLabel("Admissions per minute").fill("lots");
  await p.getByRole("button", { name: "Apply rate" }).click();
  await p.waitForSelector("#rate-err");
  await p.context().close();
});

test("a student is refused the admin pages", async () => {
  const p = await page();
  await signIn(p, STUDENT_B, PASSWORD);
  await p.waitForURL(/\/courses/);
  const r = await p.goto(`${BASE}/admin`);
  assert.equal(r.status(), 403);
  await p.waitForSelector("text=You may not open this page");
  await shot(p, "07-refused");
  await p.context().close();
});

test("the queue page on a phone", async () => {
  const p = await page({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale: "ko-KR" });
  await p.goto(`${BASE}/`);
  await p.locator("ul.plain a").first().click();
  await p.waitForSelector("text=대기열 들어가기");
  await shot(p, "08-queue-phone");
  await p.context().close();
});
