import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger, freePort } from "@pifleet/core";
import { startDemo, type DemoHandle } from "../../packages/cli/src/demo/run.js";
import { openBrowser } from "./chromium.mjs";
import { inOrder, recordTileStates, type StateChange } from "./state-recorder.js";

// The dashboard in a real browser (Debian's Chromium, headless) against a whole emulated shelf:
// the real coordinator, switch emulator, fileserver agent and eight Pi agent processes. What the
// page shows is checked through its DOM; the tiles' states are recorded as they change.

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const artifacts = path.join(root, ".artifacts", "dashboard");
const PIS = 8;
const VICTIM = "pi03";
const OPERATED = "pi05";


const tileState = (page: Page, pi: string) => page.locator(`#grid .tile[data-pi="${pi}"]`).getAttribute("data-state");
const events = (page: Page, pi: string) =>
  page.$$eval(`#events li[data-subject="${pi}"]`, (lis) => lis.map((li) => ({ kind: (li as HTMLElement).dataset.kind!, text: li.textContent ?? "" })).reverse());

describe("dashboard in headless Chromium against a running demo shelf", () => {
  let dir: string;
  let demo: DemoHandle | undefined;
  let browser: Awaited<ReturnType<typeof openBrowser>> | undefined;
  let page: Page;
  let states: Map<string, StateChange[]>;
  const out: string[] = [];

  beforeAll(async () => {
    mkdirSync(artifacts, { recursive: true });
    // The page the coordinator serves is the bundle `pnpm build` makes; make it from these sources.
    execFileSync(process.execPath, [path.join(root, "packages/dashboard/build.mjs")], { stdio: "inherit" });
    dir = mkdtempSync(path.join(tmpdir(), "pifleet-dashboard-test-"));
    demo = await startDemo({
      pis: PIS,
      dir,
      port: await freePort("::"),
      httpPort: await freePort("::"),
      // Short waits so a recovery takes seconds; the guards (concurrency, dark share) stay on.
      recovery: { confirmMs: 1000, suspectActMs: 3000, startupGraceMs: 4000, backoffMs: 1000, bootTimeoutMs: 20_000 },
      logger: createLogger("dashboard-test", { level: "warn" }),
      out: (l) => out.push(l),
    });
    browser = await openBrowser({ width: 1440, height: 900 });
    states = await recordTileStates(browser.context);
    page = browser.page;
  });

  afterAll(async () => {
    await browser?.close();
    await demo?.stop();
    // The coordinator's log is the first thing to read when this test fails.
    if (dir && existsSync(path.join(dir, "logs", "coordinator.log"))) copyFileSync(path.join(dir, "logs", "coordinator.log"), path.join(artifacts, "coordinator.log"));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("shows every Pi of the shelf as a tile, and they become healthy", async () => {
    expect(demo!.dashboardUrl).toMatch(/^http:\/\/\[::1\]:\d+\/#name=operator&role=operator&token=/);
    await page.goto(demo!.dashboardUrl);
    // The token leaves the address bar once read.
    await expect.poll(() => page.url(), { timeout: 5000 }).not.toContain("token=");
    await page.waitForSelector("#conn.on", { timeout: 15_000 });
    expect(await page.textContent("#conn")).toBe("operator operator");
    await expect.poll(() => page.locator("#grid .tile").count(), { timeout: 15_000 }).toBe(PIS);
    const names = await page.$$eval("#grid .tile", (els) => els.map((e) => (e as HTMLElement).dataset.pi));
    expect(names).toEqual(Array.from({ length: PIS }, (_, i) => `pi${String(i + 1).padStart(2, "0")}`));
    await expect
      .poll(() => page.$$eval("#grid .tile", (els) => els.filter((e) => (e as HTMLElement).dataset.state === "healthy" && e.classList.contains("healthy")).length), { timeout: 60_000, interval: 250 })
      .toBe(PIS);
    // Each healthy tile carries the Pi's figures from its agent's reports, and the summary counts them.
    await expect.poll(() => page.locator(`#grid .tile[data-pi="${VICTIM}"] .m`).textContent(), { timeout: 10_000 }).toMatch(/^ld \d+(\.\d+)? · (\d+ms|\d+\.\ds)$/);
    expect(await page.textContent('#summary span[data-state="healthy"]')).toBe(`healthy ${PIS}`);
    await page.screenshot({ path: path.join(artifacts, "1-healthy.png") });
  }, 90_000);

  it("follows a killed Pi through its recovery, tile and event log, back to healthy", async () => {
    expect((await events(page, VICTIM)).filter((e) => e.kind === "power")).toEqual([]);
    const faultAt = Date.now();
    expect(await demo!.pis[2].fault("kill")).toMatch(/agent killed/);

    // Mid-recovery picture for the artifacts: taken as soon as the tile leaves healthy.
    await expect.poll(() => tileState(page, VICTIM), { timeout: 20_000, interval: 100 }).not.toBe("healthy");
    await page.locator(`#grid .tile[data-pi="${VICTIM}"]`).click();
    await page.screenshot({ path: path.join(artifacts, "2-recovering.png") });

    await expect
      .poll(() => (states.get(VICTIM) ?? []).filter((s) => s.atMs >= faultAt).map((s) => s.state), { timeout: 60_000, interval: 250 })
      .toContain("booting");
    await expect.poll(() => tileState(page, VICTIM), { timeout: 30_000, interval: 250 }).toBe("healthy");

    const recorded = (states.get(VICTIM) ?? []).filter((s) => s.atMs >= faultAt);
    const shown = recorded.map((s) => s.state);
    process.stderr.write(`${VICTIM}'s tile after the kill: ${recorded.map((s) => `${s.state} @${((s.atMs - faultAt) / 1000).toFixed(1)}s`).join(" → ")}\n`);
    await page.screenshot({ path: path.join(artifacts, "3-recovered.png") });
    expect(shown[0], `states shown: ${shown.join(" → ")}`).not.toBe("healthy");
    expect(shown.at(-1)).toBe("healthy");
    expect(shown.some((s) => s === "suspect" || s === "down"), `states shown: ${shown.join(" → ")}`).toBe(true);
    const firstBad = shown.find((s) => s === "suspect" || s === "down")!;
    expect(inOrder(shown, [firstBad, "drained", "power-cycling", "booting", "healthy"]), `states shown: ${shown.join(" → ")}`).toBe(true);

    // The event log tells the same story for this Pi, in order.
    const log = await events(page, VICTIM);
    const power = log.filter((e) => e.kind === "power").map((e) => e.text);
    expect(power.some((t) => / port 3 off/.test(t)), power.join("\n")).toBe(true);
    expect(power.some((t) => / port 3 on/.test(t)), power.join("\n")).toBe(true);
    const story = log.map((e) => `${e.kind} ${e.text}`);
    const at = (re: RegExp) => story.findIndex((s) => re.test(s));
    const steps = [/^state .*healthy → (suspect|down)/, /^recovery .*drained: /, /^power .*port 3 off/, /^power .*port 3 on/, /^recovery .*healthy again/];
    const positions = steps.map(at);
    expect(positions.every((p) => p >= 0), `missing step in\n${story.join("\n")}`).toBe(true);
    expect([...positions].sort((a, b) => a - b), story.join("\n")).toEqual(positions);
    expect(story.some((s) => /^state .*→ healthy/.test(s) && story.indexOf(s) > positions[3])).toBe(true);

    // The detail panel of the selected Pi follows it too.
    expect(await page.textContent("#detail-title")).toBe(`${VICTIM} (port 3)`);
    await expect.poll(async () => (await page.textContent("#detail-body")) ?? "", { timeout: 5000 }).toMatch(/statehealthy/);
  }, 120_000);

  it("drains and undrains a Pi from the operator buttons", async () => {
    await page.locator(`#grid .tile[data-pi="${OPERATED}"]`).click();
    expect(await page.textContent("#detail-title")).toBe(`${OPERATED} (port 5)`);
    await expect.poll(() => page.locator('#actions button[data-action="drain"]').isEnabled()).toBe(true);

    await page.click('#actions button[data-action="drain"]');
    await expect.poll(() => page.textContent("#action-result"), { timeout: 15_000 }).toMatch(new RegExp(`^✓ ${OPERATED} drained and held`));
    await expect.poll(() => tileState(page, OPERATED), { timeout: 5000 }).toBe("drained");
    expect(await page.locator(`#grid .tile[data-pi="${OPERATED}"]`).getAttribute("class")).toContain("drained");
    await expect.poll(async () => (await page.textContent("#detail-body")) ?? "").toContain("drained (held by operator)");
    await expect
      .poll(async () => (await events(page, OPERATED)).filter((e) => e.kind === "operator").map((e) => e.text).join("\n"))
      .toMatch(/operator asked to drain pi\d+ \(dashboard\): done — .*\(operator\)/);
    await page.screenshot({ path: path.join(artifacts, "4-drained-by-operator.png") });
    // Held: the recovery engine leaves it drained although it is perfectly healthy.
    await new Promise((r) => setTimeout(r, 2000));
    expect(await tileState(page, OPERATED)).toBe("drained");

    await page.click('#actions button[data-action="undrain"]');
    await expect.poll(() => page.textContent("#action-result"), { timeout: 15_000 }).toBe(`✓ ${OPERATED} back in service`);
    await expect.poll(() => tileState(page, OPERATED), { timeout: 10_000 }).toBe("healthy");
    const ops = (await events(page, OPERATED)).filter((e) => e.kind === "operator").map((e) => e.text);
    expect(ops.some((t) => /asked to undrain pi\d+ \(dashboard\): done/.test(t)), ops.join("\n")).toBe(true);
    expect(states.get(OPERATED)?.map((s) => s.state).slice(-3)).toEqual(["healthy", "drained", "healthy"]);

    // A request the engine refuses is shown as refused, not as success.
    await page.click('#actions button[data-action="release"]');
    await expect.poll(() => page.textContent("#action-result"), { timeout: 15_000 }).toBe(`✗ ${OPERATED} is not quarantined`);
  }, 60_000);

  it("a watcher sees the same shelf but gets no operator buttons", async () => {
    const watcherPage = await browser!.context.newPage();
    try {
      await watcherPage.goto(demo!.dashboardUrl.replace(/#.*$/, `#name=watcher&role=watcher&token=${encodeURIComponent(demo!.watcherToken)}`));
      await watcherPage.waitForSelector("#conn.on", { timeout: 15_000 });
      expect(await watcherPage.textContent("#conn")).toBe("watching as watcher");
      await expect.poll(() => watcherPage.locator('#grid .tile[data-state="healthy"]').count(), { timeout: 15_000 }).toBe(PIS);
      await watcherPage.locator(`#grid .tile[data-pi="${OPERATED}"]`).click();
      for (const b of await watcherPage.locator("#actions button").all()) expect(await b.isDisabled()).toBe(true);
    } finally {
      await watcherPage.close();
    }
  }, 30_000);

  it("never reached beyond loopback", () => {
    expect(browser!.blocked).toEqual([]);
  });
});
