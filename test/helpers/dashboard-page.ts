// Page steps and checks for the dashboard's browser test (test/dashboard.test.ts).
import { join } from "node:path";
import type { Page } from "playwright-core";
import { expect } from "vitest";

// Browser globals, used only inside page.evaluate callbacks (the project's tsconfig has no DOM lib).
declare const document: any;

export async function pickFile(page: Page, name: string, bytes: Uint8Array) {
  await page.locator("#fw-file").setInputFiles({ name, mimeType: "application/octet-stream", buffer: Buffer.from(bytes) });
}

export async function createCampaign(page: Page, o: { name: string; group: string; version: string; strategy: string; canary?: string; batch: string; threshold: string; approval: boolean }) {
  await page.getByRole("link", { name: "Campaigns" }).click();
  await page.getByLabel("Name").fill(o.name);
  const option = page.locator("#c-firmware option", { hasText: `${o.version} ·` });
  await expect.poll(() => option.count()).toBe(1);
  await page.getByLabel("Firmware").selectOption((await option.getAttribute("value"))!);
  await page.getByLabel("Strategy").selectOption(o.strategy);
  await page.getByLabel("Target group").selectOption(o.group);
  if (o.canary) await page.getByLabel("Canary share (%)").fill(o.canary);
  await page.getByLabel("Batch size").fill(o.batch);
  await page.getByLabel("Failure threshold (%)").fill(o.threshold);
  await page.getByLabel("Requires approval").setChecked(o.approval);
  await expectAccessible(page);
  await page.getByRole("button", { name: "Create campaign" }).click();
  await expect.poll(() => page.url()).toMatch(/#\/campaigns\/.+/);
  return decodeURIComponent(page.url().split("#/campaigns/")[1]!);
}

/** Tabs from the top of the page to the named button and presses Enter on it: reachable and operable by keyboard. */
export async function pressByKeyboard(page: Page, name: string) {
  await expect.poll(() => page.getByRole("button", { name }).count()).toBe(1);
  await page.locator("body").focus();
  for (let i = 0; i < 80; i++) {
    await page.keyboard.press("Tab");
    if (await page.evaluate((n) => document.activeElement?.tagName === "BUTTON" && document.activeElement.textContent === n, name)) {
      await page.keyboard.press("Enter");
      return;
    }
  }
  throw new Error(`button ${name} not reachable with Tab`);
}

/** Every form control has an accessible name; the page has its landmarks. */
export async function expectAccessible(page: Page) {
  const unnamed = await page.evaluate(() => [...document.querySelectorAll("input, select, textarea")]
    .filter((el: any) => !(el.labels?.length || el.getAttribute("aria-label") || el.getAttribute("aria-labelledby")))
    .map((el: any) => el.outerHTML));
  expect(unnamed).toEqual([]);
  expect(await page.getByRole("main").count()).toBe(1);
  expect(await page.getByRole("navigation").count()).toBe(1);
}

/** Nothing wider than the viewport: wide tables scroll inside themselves. */
export async function expectFits(page: Page, width: number) {
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(width);
}

export async function shot(page: Page, dir: string, name: string) {
  await page.evaluate(() => document.getElementById("toast").replaceChildren()); // a passing message would hide content
  await page.screenshot({ path: join(dir, `${name}.png`) });
}
