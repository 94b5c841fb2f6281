// What every browser test file shares: the browser, a fresh context per
// page, screenshots, signing in, and the demo students the runner hands out.
import { before, after } from "node:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

export const BASE = process.env.SLUICE_BASE_URL;
export const ARTIFACTS = process.env.SLUICE_ARTIFACTS || "artifacts";
export const PASSWORD = "sluice-demo";

// Demo students of class years the demo round admits, in a fixed order.
// Each test file takes its own slice so files do not share carts or seats:
// pages.test.mjs takes 0-1; every other file says which it takes.
export const STUDENTS = (process.env.SLUICE_STUDENTS || "").split(/\s+/).filter(Boolean);

let browser;

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  // launch() always starts Chromium with a fresh temporary profile (it
  // refuses a --user-data-dir of ours), so no state leaks between runs.
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
});

after(async () => {
  await browser?.close();
});

export async function page(options = {}) {
  const context = await browser.newContext({ locale: "en-US", ...options });
  const p = await context.newPage();
  p.setDefaultTimeout(20_000);
  return p;
}

export const shot = (p, name) => p.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

export async function signIn(p, name, password = PASSWORD, staff = false) {
  await p.goto(`${BASE}/login${staff ? "?staff=1" : ""}`);
  await p.getByLabel(staff ? "Username" : "Student number").fill(name);
  await p.getByLabel("Password").fill(password);
  await p.getByRole("button", { name: "Sign in" }).click();
}

// A datetime-local value on Seoul's clock (UTC+9, no daylight saving).
export const seoul = (ms) => new Date(ms + 9 * 3600_000).toISOString().slice(0, 16);

// On a page signed in as the registrar: creates a round of its own for
// class years 1-4 at `perMin` admissions a minute, scheduled a day ahead so
// that only "Open now" opens it, and returns its id from the round page
// it lands on.
export async function createRound(admin, name, perMin) {
  await admin.goto(`${BASE}/admin`);
  const now = Date.now();
  await admin.getByLabel("Name", { exact: true }).fill(name);
  await admin.getByLabel(/Class years/).fill("1-4");
  await admin.getByLabel(/Pre-queue opens/).fill(seoul(now + 86_400_000));
  await admin.getByLabel(/Room opens/).fill(seoul(now + 2 * 86_400_000));
  await admin.getByLabel(/Closes/).fill(seoul(now + 3 * 86_400_000));
  await admin.getByLabel("Admissions per minute").fill(String(perMin));
  await admin.getByRole("button", { name: "Create" }).click();
  await admin.waitForURL(/\/admin\/rounds\/\d+$/);
  return admin.url().match(/rounds\/(\d+)/)[1];
}
