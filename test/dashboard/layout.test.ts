import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger, freePort } from "@pifleet/core";
import { SimFleet, SqliteStore, createToken, enrollAgent } from "@pifleet/coordinator";
import { dashboardDir } from "@pifleet/dashboard";
import { openBrowser } from "./chromium.mjs";

// A full shelf of 96 Pis must fit one 1440×900 screen: the real coordinator serving the built page,
// 96 simulated agents (lighter than 96 Pi agent processes) of which a few fail (suspect) or never report (down),
// and the page in headless Chromium measured through its layout.

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const artifacts = path.join(root, ".artifacts", "dashboard");
const COORDINATOR = path.join(root, "packages/coordinator/dist/main.js");
const FLEET = path.join(root, "examples/shelf-96.yaml");
const SILENT = ["pi94", "pi95", "pi96"];
const FAILING = ["pi17", "pi42"];


describe("dashboard layout with a full shelf of 96 Pis at 1440×900", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "pifleet-dashboard-layout-"));
  let coordinator: ChildProcess | undefined;
  let sim: SimFleet | undefined;
  let browser: Awaited<ReturnType<typeof openBrowser>> | undefined;
  let page: Page;
  let url = "";

  beforeAll(async () => {
    if (!existsSync(COORDINATOR)) throw new Error(`${COORDINATOR} is missing: build first (pnpm exec tsc -b)`);
    mkdirSync(artifacts, { recursive: true });
    execFileSync(process.execPath, [path.join(root, "packages/dashboard/build.mjs")], { stdio: "inherit" });
    const port = await freePort("::");
    const db = path.join(dir, "coordinator.db");
    const store = new SqliteStore(db);
    const names = Array.from({ length: 96 }, (_, i) => `pi${String(i + 1).padStart(2, "0")}`);
    const agents = names.filter((n) => !SILENT.includes(n)).map((identity) => ({ identity, secret: enrollAgent(store, identity, "pi").secret }));
    const token = createToken(store, "operator", "operator");
    store.close();
    const config = path.join(dir, "coordinator.yaml");
    writeFileSync(
      config,
      [`fleet: ${FLEET}`, `listen: { host: "::", port: ${port} }`, `database: ${db}`, `staticDir: ${dashboardDir}`, "startupGraceMs: 0", "switch: { enabled: false }", "loadBalancer: { enabled: false }", ""].join("\n"),
    );
    coordinator = spawn(process.execPath, [COORDINATOR, "--config", config], { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, PIFLEET_LOG_LEVEL: "warn" } });
    const deadline = Date.now() + 20_000;
    for (;;) {
      const ok = await fetch(`http://[::1]:${port}/healthz`).then((r) => r.ok, () => false);
      if (ok) break;
      if (Date.now() > deadline || coordinator.exitCode !== null) throw new Error("coordinator did not come up");
      await new Promise((r) => setTimeout(r, 100));
    }
    sim = new SimFleet({ url: `ws://[::1]:${port}/agent`, agents, intervalMs: 1000, logger: createLogger("sim", { level: "warn" }) });
    await sim.start();
    for (const pi of FAILING) sim.setFault(pi, "probe-fail");
    url = `http://[::1]:${port}/#name=operator&role=operator&token=${encodeURIComponent(token)}`;
    browser = await openBrowser({ width: 1440, height: 900 });
    page = browser.page;
  });

  afterAll(async () => {
    await browser?.close();
    await sim?.stop();
    coordinator?.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  });

  it("shows all 96 tiles on one screen, none cut off, with their states", async () => {
    await page.goto(url);
    await expect.poll(() => page.locator("#grid .tile").count(), { timeout: 15_000 }).toBe(96);
    const count = (state: string) => page.locator(`#grid .tile[data-state="${state}"]`).count();
    await expect.poll(() => count("healthy"), { timeout: 30_000, interval: 250 }).toBe(96 - SILENT.length - FAILING.length);
    await expect.poll(() => count("suspect"), { timeout: 15_000 }).toBe(FAILING.length);
    // Never reported: down once the coordinator's start-up grace is over.
    await expect.poll(() => count("down"), { timeout: 15_000 }).toBe(SILENT.length);
    for (const pi of SILENT) expect(await page.locator(`#grid .tile[data-pi="${pi}"]`).getAttribute("data-state")).toBe("down");
    await page.locator('#grid .tile[data-pi="pi17"]').click();
    await new Promise((r) => setTimeout(r, 1500)); // a few reports for the sparklines
    await page.screenshot({ path: path.join(artifacts, "shelf-96.png") });

    const layout = await page.evaluate(() => {
      const grid = document.querySelector("#grid") as HTMLElement;
      const clipped: string[] = [];
      const outside: string[] = [];
      for (const tile of document.querySelectorAll<HTMLElement>("#grid .tile")) {
        const r = tile.getBoundingClientRect();
        if (r.top < 0 || r.left < 0 || r.bottom > innerHeight || r.right > innerWidth) outside.push(tile.dataset.pi!);
        // Every text of a tile is readable whole: nothing ends in an ellipsis or spills out.
        for (const el of tile.querySelectorAll<HTMLElement>(".n b, .n span, .s, .m")) {
          if (el.scrollWidth > el.clientWidth + 1) clipped.push(`${tile.dataset.pi} ${el.className || el.tagName}: "${el.textContent}"`);
        }
        if (tile.scrollHeight > tile.clientHeight + 1) clipped.push(`${tile.dataset.pi}: taller than its tile`);
      }
      return {
        outside,
        clipped,
        gridScrolls: grid.scrollHeight > grid.clientHeight + 1,
        pageScrolls: document.documentElement.scrollHeight > innerHeight || document.documentElement.scrollWidth > innerWidth,
        columns: new Set([...document.querySelectorAll<HTMLElement>("#grid .tile")].map((t) => Math.round(t.getBoundingClientRect().left))).size,
      };
    });
    // The longest texts a tile can get still fit whole (a real shelf under load: three-digit
    // latencies, double-digit load, the longest state name, minutes in a state).
    const worst = await page.evaluate(() => {
      const tile = document.querySelector<HTMLElement>('#grid .tile[data-pi="pi96"]')!;
      const texts: Record<string, string[]> = { ".n b": ["pi96"], ".n span": [":96"], ".s": ["power-cycling", "quarantined", "rebuilding"], ".m": ["ld 26.8 · 999ms", "ld 113 · 9.9s", "119s · no report", "119m · www ✗", "119s · ld 26.8"] };
      const clipped: string[] = [];
      for (const [sel, values] of Object.entries(texts)) {
        const el = tile.querySelector<HTMLElement>(sel)!;
        for (const v of values) {
          el.textContent = v;
          if (el.scrollWidth > el.clientWidth + 1) clipped.push(`${sel}: "${v}" needs ${el.scrollWidth}px, has ${el.clientWidth}px`);
        }
      }
      return clipped;
    });
    expect(worst).toEqual([]);
    expect(layout.outside).toEqual([]);
    expect(layout.clipped).toEqual([]);
    expect(layout.gridScrolls).toBe(false);
    expect(layout.pageScrolls).toBe(false);
    expect(layout.columns).toBeGreaterThanOrEqual(8);

    // The summary counts every state, in the order of the recovery path.
    const summary = await page.$$eval("#summary span[data-state]", (s) => s.map((e) => e.textContent));
    expect(summary).toEqual([`healthy ${96 - SILENT.length - FAILING.length}`, `suspect ${FAILING.length}`, `down ${SILENT.length}`]);
    expect(browser!.blocked).toEqual([]);
  }, 90_000);
});
