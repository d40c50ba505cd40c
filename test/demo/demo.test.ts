import { freePort } from "@pifleet/core";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { v1 } from "@pifleet/proto";
import { waitFor, Watcher } from "../../packages/coordinator/test/harness.js";

// `pifleet demo` as a user runs it: the built CLI as a child process, its printed URL and token,
// a fault through `pifleet fault`, and Ctrl-C (SIGINT) — after which nothing of it may be left.

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const CLI = path.join(root, "packages/cli/dist/main.js");
const PIS = 8;


/** Can this port be bound again, on both loopbacks? */
async function free(port: number): Promise<boolean> {
  for (const host of ["::", "127.0.0.1"]) {
    const s = createServer();
    const ok = await new Promise<boolean>((resolve) => {
      s.once("error", () => resolve(false));
      s.listen({ host, port, exclusive: true }, () => resolve(true));
    });
    if (ok) await new Promise((r) => s.close(r));
    else return false;
  }
  return true;
}

/** Every live process whose command line mentions one of `needles` (read from /proc). */
function processesMentioning(needles: string[]): Array<{ pid: number; cmd: string }> {
  const found: Array<{ pid: number; cmd: string }> = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").join(" ").trim();
    } catch {
      continue; // gone meanwhile
    }
    if (cmd && needles.some((n) => cmd.includes(n))) found.push({ pid: Number(entry), cmd });
  }
  return found;
}

function healthz(port: number): Promise<{ pis: number; states: Record<string, number>; agentsConnected: number } | undefined> {
  return fetch(`http://127.0.0.1:${port}/healthz`).then((r) => (r.ok ? r.json() : undefined), () => undefined);
}

describe("pifleet demo, the real command", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "pifleet-demo-test-"));
  let port = 0;
  let httpPort = 0;
  let demo: ChildProcess;
  let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  let stdout = "";
  let stderr = "";
  let watcher: Watcher | undefined;
  let token = "";
  let url = "";
  const needles = () => [dir, `--port ${port}`, `:${port}`, `--http-port ${httpPort}`, `:${httpPort}`];

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first (pnpm exec tsc -b)`);
    // The page the demo serves is the bundle `pnpm build` makes.
    execFileSync(process.execPath, [path.join(root, "packages/dashboard/build.mjs")], { stdio: "inherit" });
    port = await freePort("::");
    httpPort = await freePort("::");
    demo = spawn(process.execPath, [CLI, "demo", "--pis", String(PIS), "--dir", dir, "--port", String(port), "--http-port", String(httpPort)], {
      cwd: root,
      env: { ...process.env, PIFLEET_LOG_LEVEL: "warn", PIFLEET_LOG_FORMAT: "json" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    demo.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
    demo.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    exited = new Promise((resolve) => demo.once("exit", (code, signal) => resolve({ code, signal })));
  });

  afterAll(async () => {
    await watcher?.stop();
    if (demo.exitCode === null && demo.signalCode === null) {
      demo.kill("SIGINT");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
    }
    // Never leave a test's shelf running, whatever failed above.
    for (const p of processesMentioning([dir])) {
      try {
        process.kill(p.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it("prints the dashboard's address with an operator token, and serves the dashboard there", async () => {
    await waitFor("the demo's banner", () => /Ctrl-C stops everything/.test(stdout) || demo.exitCode !== null, 60_000);
    expect(demo.exitCode, stderr.slice(-2000)).toBeNull();
    url = stdout.match(/dashboard\s+(http:\/\/\S+)/)?.[1] ?? "";
    token = stdout.match(/operator token\s+(\S+)/)?.[1] ?? "";
    expect(url).toMatch(new RegExp(`^http://\\[::1\\]:${port}/#name=operator&role=operator&token=`));
    expect(token).toMatch(/^operator\.\S{20,}$/);
    expect(new URLSearchParams(new URL(url).hash.slice(1)).get("token")).toBe(token);
    expect(stdout).toContain(`pifleet fault pi01 kill|hang-apache|slow|corrupt-root|heal --dir ${dir}`);

    const page = await fetch(url);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('<section id="grid"');
    const script = html.match(/<script type="module" src="([^"]+)"/)?.[1];
    expect(script).toBe("app.js");
    const app = await fetch(new URL(script!, url));
    expect(app.status).toBe(200);
    expect(app.headers.get("content-type")).toMatch(/javascript/);
  }, 90_000);

  it("brings all 8 Pis up healthy, reporting through their agents", async () => {
    const deadline = Date.now() + 60_000;
    let last: Awaited<ReturnType<typeof healthz>>;
    for (;;) {
      last = await healthz(port);
      if (last?.states.healthy === PIS) break;
      if (Date.now() > deadline) throw new Error(`not all healthy: ${JSON.stringify(last)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(last!.pis).toBe(PIS);
    expect(last!.agentsConnected).toBe(PIS + 1); // and the fileserver agent

    watcher = new Watcher(`ws://[::1]:${port}/feed`, token, "operator", v1.Role.ROLE_OPERATOR);
    await watcher.until("the feed's snapshot", () => watcher!.mirror.pis.size === PIS, 10_000);
    for (const [name, s] of watcher.mirror.pis) {
      expect(s.state, name).toBe(v1.PiState.PI_STATE_HEALTHY);
      expect(s.connected, name).toBe(true);
      expect(s.lastSample?.probe?.ok, name).toBe(true);
    }
    // The whole shelf is alive as processes: the coordinator, the fileserver agent, 8 Pi agents.
    const procs = processesMentioning([dir]).map((p) => p.cmd);
    expect(procs.filter((c) => /coordinator\/dist\/main\.js --config/.test(c))).toHaveLength(1);
    expect(procs.filter((c) => /pi-agent\/dist\/main\.js --config/.test(c))).toHaveLength(PIS);
    expect(procs.filter((c) => /fileserver-agent\/dist\/main\.js --config/.test(c))).toHaveLength(1);
  }, 90_000);

  it("`pifleet fault pi03 kill`: the Pi recovers by itself, with power events in the log", async () => {
    const faultAt = Date.now();
    const out = execFileSync(process.execPath, [CLI, "fault", "pi03", "kill", "--dir", dir], { encoding: "utf8" });
    expect(out).toMatch(/^pi03: agent killed/);

    const events = () => watcher!.mirror.events.filter((e) => e.subject === "pi03" && Number(e.timeMs) >= faultAt - 1000);
    await watcher!.until("pi03 healthy again after a power cycle", () => events().some((e) => e.kind === "recovery" && /healthy again/.test(e.message)), 60_000);
    const story = events().map((e) => `${e.kind}: ${e.message}`);
    process.stderr.write(`pi03 after the kill:\n  ${story.join("\n  ")}\n`);
    const at = (re: RegExp) => story.findIndex((s) => re.test(s));
    const steps = [/^state: healthy → (suspect|down)/, /^recovery: drained/, /^power: port 3 off/, /^power: port 3 on/, /^state: .*→ booting/, /^recovery: healthy again/];
    const positions = steps.map(at);
    expect(positions.every((p) => p >= 0), story.join("\n")).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    expect(watcher!.state("pi03")).toBe("PI_STATE_HEALTHY");
    expect((await healthz(port))?.states.healthy).toBe(PIS);
    // The other Pis were left alone.
    expect(watcher!.mirror.events.filter((e) => e.kind === "power" && e.subject !== "pi03")).toEqual([]);

    // A Pi the demo does not have is refused by name.
    let refused = "";
    try {
      execFileSync(process.execPath, [CLI, "fault", "pi99", "kill", "--dir", dir], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    } catch (err) {
      refused = String((err as { stderr: string }).stderr);
    }
    expect(refused).toMatch(/no Pi named "pi99"/);
  }, 90_000);

  it("Ctrl-C (SIGINT) stops it with status 0 and leaves no process behind and its ports free", async () => {
    const before = processesMentioning(needles());
    expect(before.length).toBeGreaterThanOrEqual(PIS + 3); // the demo, its coordinator, agents (and HAProxy when installed)
    await watcher?.stop();
    watcher = undefined;
    const stoppedAt = Date.now();
    demo.kill("SIGINT");
    const { code, signal } = await Promise.race([exited, new Promise<never>((_, reject) => setTimeout(() => reject(new Error("the demo did not exit within 20 s of SIGINT")), 20_000))]);
    process.stderr.write(`demo exited ${Date.now() - stoppedAt} ms after SIGINT\n`);
    expect({ code, signal }, stderr.slice(-2000)).toEqual({ code: 0, signal: null });
    expect(stdout).not.toMatch(/coordinator exited/);

    expect(processesMentioning(needles())).toEqual([]);
    // Nor an unreaped child (a zombie's command line is empty, so the search above cannot see it).
    const zombies = before.filter((p) => {
      try {
        const stat = readFileSync(`/proc/${p.pid}/stat`, "utf8");
        return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
      } catch {
        return false;
      }
    });
    expect(zombies).toEqual([]);
    expect(await free(port)).toBe(true);
    expect(await free(httpPort)).toBe(true);
    // Its control socket is gone too: `pifleet fault` now says no demo is running.
    let answer = "";
    try {
      execFileSync(process.execPath, [CLI, "fault", "pi03", "kill", "--dir", dir], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    } catch (err) {
      answer = String((err as { stderr: string }).stderr);
    }
    expect(answer).toMatch(/no demo is running/);
  }, 60_000);
});
