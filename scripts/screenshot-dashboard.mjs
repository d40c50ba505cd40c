#!/usr/bin/env node
// Makes docs/dashboard.png, the README's picture of the dashboard: a demo shelf (96 Pis by
// default) at 1440×900 in the middle of recoveries. Run by hand after `pnpm build`:
//   node scripts/screenshot-dashboard.mjs [--pis 96] [--out docs/dashboard.png]
// It starts the real demo (built dist), injects a few faults, and takes the picture once the
// grid shows several recovery states at once. Not part of the test run.
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { openBrowser } from "../test/dashboard/chromium.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({ options: { pis: { type: "string", default: "96" }, out: { type: "string", default: "docs/dashboard.png" } } });
const pis = Number(values.pis);
const out = path.resolve(root, values.out);

const { startDemo } = await import(path.join(root, "packages/cli/dist/demo/run.js"));
const { createLogger } = await import(path.join(root, "packages/core/dist/index.js"));

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer();
    s.listen({ host: "::", port: 0 }, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (m) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${m}\n`);

const dir = mkdtempSync(path.join(tmpdir(), "pifleet-screenshot-"));
log(`starting a ${pis}-Pi demo in ${dir}`);
const demo = await startDemo({
  pis,
  dir,
  port: await freePort(),
  httpPort: await freePort(),
  // Slower steps than the tests use, so the picture catches several of them at once.
  recovery: { confirmMs: 2000, suspectActMs: 6000, startupGraceMs: 5000, maxConcurrent: 3 },
  logger: createLogger("screenshot", { level: "warn" }),
  out: () => undefined,
});
const browser = await openBrowser({ width: 1440, height: 900 });
let stopping;
const cleanup = () =>
  (stopping ??= (async () => {
    await browser.close();
    await demo.stop();
    rmSync(dir, { recursive: true, force: true });
  })());
for (const sig of ["SIGINT", "SIGTERM"]) process.once(sig, () => void cleanup().then(() => process.exit(130)));
try {
  const { page } = browser;
  await page.goto(demo.dashboardUrl);
  const states = () => page.$$eval("#grid .tile", (els) => els.map((e) => e.dataset.state));
  for (let t = Date.now(); ; await sleep(2000)) {
    const s = await states();
    const healthy = s.filter((x) => x === "healthy").length;
    log(`${healthy}/${pis} healthy`);
    if (s.length === pis && healthy === pis) break;
    if (Date.now() - t > 600_000) throw new Error("the shelf did not become healthy within 10 minutes");
  }
  await sleep(15_000); // some load history for the sparklines

  // A mix of trouble: crashed Pis, a hung web server, a damaged root, and one held by the operator.
  const pick = (i) => demo.pis[Math.min(i, demo.pis.length - 1)];
  const held = pick(Math.floor(pis * 0.6));
  await page.locator(`#grid .tile[data-pi="${held.name}"]`).click();
  await page.click('#actions button[data-action="drain"]');
  for (const [pi, kind] of [
    [pick(Math.floor(pis * 0.15)), "kill"],
    [pick(Math.floor(pis * 0.4)), "kill"],
    [pick(Math.floor(pis * 0.45)), "corrupt-root"],
    [pick(Math.floor(pis * 0.8)), "hang-apache"],
    [pick(Math.floor(pis * 0.9)), "kill"],
  ]) {
    log(await pi.fault(kind));
    await sleep(700);
  }
  const focus = pick(Math.floor(pis * 0.4));
  await page.locator(`#grid .tile[data-pi="${focus.name}"]`).click();

  // The picture: when the grid shows the most distinct recovery states at once — on a shelf
  // that is otherwise healthy (an overloaded machine makes every emulated Pi slow, and the
  // fleet alarm that follows is not the picture the README wants).
  let best = 0;
  for (let t = Date.now(); Date.now() - t < 120_000; await sleep(500)) {
    const now = await states();
    const distinct = new Set(now.filter((x) => x !== "healthy")).size;
    const calm = now.filter((x) => x === "healthy").length >= pis * 0.8 && (await page.locator("#alarm").isHidden());
    if (calm && distinct > best) {
      best = distinct;
      await page.screenshot({ path: out });
      log(`${distinct} recovery states on screen: saved ${path.relative(root, out)}`);
    }
    if (distinct >= 5) break;
  }
} finally {
  await cleanup();
}
