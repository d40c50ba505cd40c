// Debian's Chromium driven by playwright-core, shut in to loopback: shared by the dashboard test
// and scripts/screenshot-dashboard.mjs (plain .mjs so the script runs without a build step).
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
// playwright-core is a devDependency of the CLI package, not of the workspace root.
const require = createRequire(path.join(root, "packages/cli/package.json"));
/** @type {typeof import("playwright-core")} */
const { chromium } = require("playwright-core");

export const CHROMIUM = "/usr/bin/chromium";

// Without the background-networking flags Chromium keeps dialling Google's services, which this
// machine's closed network refuses — and a test must not reach beyond loopback anyway.
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-default-apps",
  "--disable-extensions",
  "--metrics-recording-only",
  "--no-default-browser-check",
  // No name resolves: the only reachable addresses are the IP literals the page is given.
  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, EXCLUDE ::1",
];

/** @param {string} url */
export function isLoopback(url) {
  try {
    const host = new URL(url).hostname;
    return host === "127.0.0.1" || host === "[::1]" || host === "localhost";
  } catch {
    return false;
  }
}

/**
 * A fresh browser profile and one page. Requests (and WebSockets) to anything but loopback are
 * aborted and listed in `blocked`, so a test can assert the page never tried.
 * @param {{ width: number; height: number }} viewport
 */
export async function openBrowser(viewport) {
  const profile = mkdtempSync(path.join(tmpdir(), "pifleet-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport,
    deviceScaleFactor: 1,
    serviceWorkers: "block",
  });
  /** @type {string[]} */
  const blocked = [];
  await context.route(
    (url) => !isLoopback(url.href) && url.protocol !== "data:" && url.protocol !== "about:",
    (route) => {
      blocked.push(route.request().url());
      return route.abort("blockedbyclient");
    },
  );
  await context.routeWebSocket(
    (url) => !isLoopback(url.href),
    (ws) => {
      blocked.push(ws.url());
      return ws.close();
    },
  );
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    blocked,
    async close() {
      await context.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
