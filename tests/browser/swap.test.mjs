// Changing section: a student holding one section of a course changes to
// another section of the same course from the timetable (one swap command,
// decided by the real worker) and sees the timetable change.
// Takes STUDENTS[8..9].
import { test } from "node:test";
import assert from "node:assert/strict";
import { BASE, PASSWORD, STUDENTS, page, shot, signIn } from "./lib.mjs";

const [STUDENT] = STUDENTS.slice(8, 10);

// Waits on the results page for the command it was sent to, and returns
// the outcome tags of its rows.
async function outcomeOf(p) {
  await p.waitForURL(/\/results\?pending=/);
  const id = new URL(p.url()).searchParams.get("pending");
  const rows = p.locator(`tr[data-command="${id}"]`);
  await rows.first().waitFor({ timeout: 30_000 });
  return (await rows.locator(".tag").allTextContents()).map((t) => t.trim());
}

test("a student changes to another section of the same course from the timetable", async () => {
  assert.ok(STUDENT, "the runner passes at least ten demo students");
  const p = await page();
  await signIn(p, STUDENT, PASSWORD);
  await p.waitForURL(/\/courses/);

  // Courses with at least two sections that still have seats, by id.
  await p.goto(`${BASE}/courses?open=1`);
  const candidates = await p.locator("table.results tbody tr").evaluateAll((rows) => {
    const byCourse = new Map();
    for (const r of rows) {
      const form = r.querySelector("form input[name=section]");
      if (!form) continue;
      const list = byCourse.get(r.dataset.course) || [];
      list.push({ id: form.value, code: r.querySelector("td strong").textContent.trim() });
      byCourse.set(r.dataset.course, list);
    }
    return [...byCourse.values()].filter((l) => l.length >= 2);
  });
  assert.ok(candidates.length > 0, "the demo catalog has a course with two open sections");

  // Enroll in the first section of a candidate (one may need a
  // prerequisite the student lacks: then try the next).
  let held = null;
  let admitted = false;
  for (const sections of candidates.slice(0, 4)) {
    await p.goto(`${BASE}/courses?open=1`);
    await p.locator(`tr:has(input[name=section][value="${sections[0].id}"]) form button`).click();
    await p.waitForURL(/msg=added/);
    await p.goto(`${BASE}/cart`);
    if (!admitted) {
      await p.getByRole("link", { name: /Go to the queue/ }).first().click();
      await p.getByRole("button", { name: "Join the queue" }).click();
      await p.waitForSelector("text=You're in!", { timeout: 30_000 });
      await p.getByRole("link", { name: "Enroll from your cart" }).click();
      admitted = true;
    }
    await p.getByRole("button", { name: "Enroll in the whole cart" }).click();
    const tags = await outcomeOf(p);
    if (tags.includes("Enrolled")) {
      held = sections;
      break;
    }
    await p.goto(`${BASE}/cart`);
    await p.getByRole("button", { name: "Remove" }).first().click();
  }
  assert.ok(held, "enrolled in one section of a course with another open section");

  await p.goto(`${BASE}/timetable`);
  const blocks = async () =>
    (await p.locator("td.block strong").allTextContents()).map((t) => t.trim());
  const before = await blocks();
  await shot(p, "swap-01-before");

  // The change form of the section held offers the other sections.
  const item = p.locator(`li[data-section="${held[0].id}"]`);
  const options = await item.locator("select[name=enroll] option").evaluateAll((os) =>
    os.map((o) => o.value),
  );
  assert.ok(options.includes(held[1].id), `offers ${held[1].code}: ${options.join()}`);
  await item.locator("select[name=enroll]").selectOption(held[1].id);
  await item.getByRole("button", { name: "Change section" }).click();
  const tags = await outcomeOf(p);
  assert.deepEqual([...tags].sort(), ["Dropped", "Enrolled"], "the swap's two items");
  await shot(p, "swap-02-results");

  await p.goto(`${BASE}/timetable`);
  await p.waitForSelector("table.timetable");
  const after = await blocks();
  const online = await p.locator("text=No fixed time").count();
  if (before.length > 0 || after.length > 0) {
    assert.ok(!after.includes(held[0].code), `${held[0].code} is gone: ${after.join()}`);
    assert.ok(after.includes(held[1].code) || online > 0, `${held[1].code} is shown: ${after.join()}`);
  }
  // The change form now stands for the new section.
  assert.equal(await p.locator(`li[data-section="${held[1].id}"]`).count(), 1);
  assert.equal(await p.locator(`li[data-section="${held[0].id}"]`).count(), 0);
  await shot(p, "swap-03-after");
  await p.context().close();
});
