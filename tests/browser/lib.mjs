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
