import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger, freePort } from "@pifleet/core";
import { startDemo, type DemoHandle } from "../../packages/cli/src/demo/run.js";
import { openBrowser } from "./chromium.mjs";

// The dashboard in headless Chromium against a demo of two shelves (two switch emulators, same
// ports and VLAN ids): the fleet overview has one row per shelf with its counts, the grid shows
// the chosen shelf's Pis only, and a shelf whose switch stops answering shows as paused.

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const artifacts = path.join(root, ".artifacts", "dashboard");
const PIS = 4;

const cell = (page: Page, shelf: string, field: string) => page.locator(`#shelves tr[data-shelf="${shelf}"] td[data-field="${field}"]`).textContent();
const shownTiles = (page: Page) => page.$$eval("#grid .tile:not([hidden])", (els) => els.map((e) => (e as HTMLElement).dataset.pi));

describe("dashboard: fleet overview per shelf and the chosen shelf's grid", () => {
  let dir: string;
  let demo: DemoHandle | undefined;
  let browser: Awaited<ReturnType<typeof openBrowser>> | undefined;
  let page: Page;

  beforeAll(async () => {
    mkdirSync(artifacts, { recursive: true });
    execFileSync(process.execPath, [path.join(root, "packages/dashboard/build.mjs")], { stdio: "inherit" });
    dir = mkdtempSync(path.join(tmpdir(), "pifleet-dashboard-shelves-"));
    demo = await startDemo({
      pis: PIS,
      shelves: 2,
      dir,
      port: await freePort("::"),
      httpPort: await freePort("::"),
      recovery: { startupGraceMs: 2000 },
      logger: createLogger("dashboard-shelves-test", { level: "warn" }),
      out: () => undefined,
    });
    browser = await openBrowser({ width: 1440, height: 900 });
    page = browser.page;
  });

  afterAll(async () => {
    await browser?.close();
    await demo?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("shows one overview row per shelf with its counts, and shelf1's grid", async () => {
    await page.goto(demo!.dashboardUrl);
    await page.waitForSelector("#conn.on", { timeout: 15_000 });
    await page.waitForSelector("#shelves:not([hidden])", { timeout: 15_000 });
    expect(await page.$$eval("#shelves tbody tr", (trs) => trs.map((t) => (t as HTMLElement).dataset.shelf))).toEqual(["shelf1", "shelf2"]);
    for (const s of ["shelf1", "shelf2"]) {
      await expect.poll(() => cell(page, s, "healthy"), { timeout: 60_000, interval: 250 }).toBe(String(PIS));
      expect(await cell(page, s, "total")).toBe(String(PIS));
      expect(await cell(page, s, "down")).toBe("0");
      expect(await cell(page, s, "recovery")).toBe("running");
    }
    expect(await page.getAttribute('#shelves tr[data-shelf="shelf1"]', "class")).toContain("chosen");
    expect(await shownTiles(page)).toEqual(["s1-pi01", "s1-pi02", "s1-pi03", "s1-pi04"]);
    expect(await page.textContent("#summary-shelf")).toBe("shelf shelf1");
    expect(await page.textContent('#summary span[data-state="healthy"]')).toBe(`healthy ${PIS}`);
    await page.screenshot({ path: path.join(artifacts, "shelves-1-overview.png") });
  }, 90_000);

  it("clicking a shelf's row shows that shelf's grid", async () => {
    await page.click('#shelves tr[data-shelf="shelf2"]');
    expect(await shownTiles(page)).toEqual(["s2-pi01", "s2-pi02", "s2-pi03", "s2-pi04"]);
    expect(await page.getAttribute('#shelves tr[data-shelf="shelf2"]', "class")).toContain("chosen");
    expect(await page.textContent("#summary-shelf")).toBe("shelf shelf2");
  }, 30_000);

  it("a shelf whose switch stops answering shows as paused in the overview; the other stays running", async () => {
    await demo!.emulators[1].stop();
    await expect.poll(() => cell(page, "shelf2", "recovery"), { timeout: 30_000, interval: 250 }).toMatch(/^paused: the switch demo-switch-2 .* is unreachable/);
    expect(await cell(page, "shelf1", "recovery")).toBe("running");
    await page.screenshot({ path: path.join(artifacts, "shelves-2-paused.png") });
  }, 40_000);

  it("never reached beyond loopback", () => {
    expect(browser!.blocked).toEqual([]);
  });
});
