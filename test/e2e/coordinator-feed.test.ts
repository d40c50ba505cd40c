import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { v1 } from "@pifleet/proto";
import { SqliteStore } from "@pifleet/coordinator";
import { waitFor, Watcher } from "../../packages/coordinator/test/harness.js";

// The coordinator as a real process (built dist), simulated agents as separate processes, real
// WebSockets over ::1 and 127.0.0.1, a watcher in this process and `pifleet watch --json` as another.

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const COORDINATOR = path.join(root, "packages/coordinator/dist/main.js");
const SIM = path.join(root, "packages/coordinator/dist/sim/main.js");
const CLI = path.join(root, "packages/cli/dist/main.js");
const INTERVAL = 1000;

interface Proc {
  child: ChildProcess;
  out: string[];
  exited: Promise<number | null>;
}

function start(args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, PIFLEET_LOG_FORMAT: "json", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const out: string[] = [];
  let partial = "";
  child.stdout!.on("data", (d: Buffer) => {
    const parts = (partial + d.toString()).split("\n");
    partial = parts.pop()!;
    out.push(...parts);
  });
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.on("exit", (code) => {
      if (code) process.stderr.write(`${args[0]} exited ${code}: ${err.slice(-2000)}\n`);
      resolve(code);
    }),
  );
  return { child, out, exited };
}

async function run(args: string[]): Promise<string> {
  const p = start(args);
  const code = await p.exited;
  if (code !== 0) throw new Error(`${args.join(" ")} exited ${code}`);
  return p.out.join("\n");
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen({ host: "::", port: 0 }, r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function healthy(port: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      const r = await fetch(`http://[::1]:${port}/healthz`);
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error("coordinator did not come up");
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("coordinator end to end: real processes, real sockets", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "pifleet-e2e-coord-"));
  const db = path.join(dir, "coordinator.db");
  const config = path.join(dir, "coordinator.yaml");
  let port = 0;
  let coordinator: Proc;
  const agents = new Map<string, Proc>();
  let watcher: Watcher;
  let cliWatch: Proc;

  const agentArgs = (pi: string, host: string) => [SIM, "--url", `ws://${host.includes(":") ? `[${host}]` : host}:${port}/agent`, "--credentials", path.join(dir, `${pi}.json`), "--interval", String(INTERVAL)];

  beforeAll(async () => {
    for (const f of [COORDINATOR, SIM, CLI]) if (!existsSync(f)) throw new Error(`${f} is missing: build first (pnpm exec tsc -b)`);
    port = await freePort();
    const fleet = path.join(root, "examples/seed-8.yaml");
    // Enrollment and tokens through the CLI, as an operator would.
    await Promise.all(["pi01", "pi02", "pi03"].map((pi) => run([CLI, "enroll", pi, "--db", db, "--fleet", fleet, "--out", path.join(dir, `${pi}.secret`)])));
    const token = (await run([CLI, "token", "create", "watcher", "--role", "watcher", "--db", db])).trim();
    writeFileSync(path.join(dir, "watcher.token"), token);
    for (const pi of ["pi01", "pi02", "pi03"]) {
      writeFileSync(path.join(dir, `${pi}.json`), JSON.stringify([{ identity: pi, secret: readFileSync(path.join(dir, `${pi}.secret`), "utf8").trim() }]));
    }
    writeFileSync(config, [`fleet: ${fleet}`, `listen: { host: "::", port: ${port} }`, `database: ${db}`, `reportIntervalMs: ${INTERVAL}`, "startupGraceMs: 5000", ""].join("\n"));
    coordinator = start([COORDINATOR, "--config", config]);
    await healthy(port);
    agents.set("pi01", start(agentArgs("pi01", "::1")));
    agents.set("pi02", start(agentArgs("pi02", "127.0.0.1")));
    agents.set("pi03", start(agentArgs("pi03", "::1")));
    watcher = new Watcher(`ws://[::1]:${port}/feed`, token, "watcher");
    cliWatch = start([CLI, "watch", "--url", `ws://127.0.0.1:${port}`, "--token-file", path.join(dir, "watcher.token"), "--json"]);
  });

  afterAll(async () => {
    await watcher?.stop();
    for (const p of [...agents.values(), cliWatch, coordinator]) if (p && p.child.exitCode === null) p.child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  it("a watcher sees every agent healthy", async () => {
    await watcher.until("pi01..pi03 healthy and connected", () =>
      ["pi01", "pi02", "pi03"].every((pi) => watcher.state(pi) === "PI_STATE_HEALTHY" && watcher.mirror.pis.get(pi)!.connected),
    15_000);
    expect(watcher.mirror.fleet).toBe("seed");
    expect(watcher.mirror.pis.size).toBe(8); // every planned Pi, reporting or not
    expect(watcher.mirror.pis.get("pi05")!.port).toBe(5);
  });

  it("kill an agent process: the feed shows its Pi down within 3 report intervals", async () => {
    const killedAt = Date.now();
    agents.get("pi02")!.child.kill("SIGKILL");
    const down = await watcher.until("pi02 down", () => watcher.seen.find((s) => s.at >= killedAt && s.status.name === "pi02" && s.status.state === v1.PiState.PI_STATE_DOWN), 10_000);
    const afterKill = down.at - killedAt;
    const afterLastReport = down.status.stateSinceMs - down.status.lastSeenMs;
    process.stderr.write(`pi02 down ${afterKill} ms after the kill, ${afterLastReport} ms after its last report\n`);
    // Down is declared 3 intervals after the last report, which came at most one interval before
    // the kill; the judge sweeps every interval/20. Room is left for a loaded 2-core machine.
    expect(afterLastReport).toBeGreaterThanOrEqual(3 * INTERVAL);
    expect(afterLastReport).toBeLessThanOrEqual(3 * INTERVAL + 250);
    expect(afterKill).toBeLessThanOrEqual(3 * INTERVAL + 500);
    expect(down.status.connected).toBe(false);
    expect(watcher.state("pi01")).toBe("PI_STATE_HEALTHY");
  });

  it("restart the coordinator: agents reconnect, Pi states and the event log are intact", async () => {
    const before = watcher.mirror.events.map((e) => ({ id: e.id, kind: e.kind, subject: e.subject, message: e.message }));
    process.stderr.write(`events before the restart:\n${before.map((e) => `  ${e.id} ${e.kind} ${e.subject}: ${e.message}`).join("\n")}\n`);
    expect(before.some((e) => e.kind === "state" && e.subject === "pi02" && /→ down/.test(e.message))).toBe(true);
    const oldSnapshot = watcher.mirror;
    let snapshots = 0;
    oldSnapshot.on("update", (u) => u.kind === "snapshot" && snapshots++);

    coordinator.child.kill("SIGTERM");
    expect(await coordinator.exited).toBe(0);
    // A clean stop checkpoints the write-ahead log into the database file.
    expect(!existsSync(`${db}-wal`) || statSync(`${db}-wal`).size === 0).toBe(true);
    const restartedAt = Date.now();
    coordinator = start([COORDINATOR, "--config", config]);
    await healthy(port);

    // The first snapshot of the new process: states as stored, before any agent is back.
    await watcher.until("a snapshot from the restarted coordinator", () => snapshots > 0, 15_000);
    expect(watcher.state("pi02")).toBe("PI_STATE_DOWN");
    const after = new Map(watcher.mirror.events.map((e) => [e.id, e]));
    for (const e of before) expect(after.get(e.id), `event ${e.id} kept`).toMatchObject(e);

    await watcher.until("pi01 and pi03 reconnected and reporting", () =>
      ["pi01", "pi03"].every((pi) => {
        const s = watcher.mirror.pis.get(pi)!;
        return s.connected && Number(s.lastSample?.timeMs ?? 0) > restartedAt;
      }),
    15_000);
    expect(watcher.state("pi01")).toBe("PI_STATE_HEALTHY");
    expect(watcher.state("pi03")).toBe("PI_STATE_HEALTHY");
    // No flapping: the restart itself changed no Pi's state.
    expect(watcher.mirror.events.filter((e) => e.kind === "state" && e.timeMs >= restartedAt && ["pi01", "pi03"].includes(e.subject))).toEqual([]);

    // A dead Pi coming back is new history, appended after the old.
    agents.set("pi02", start(agentArgs("pi02", "127.0.0.1")));
    const lastBefore = Math.max(...before.map((e) => e.id));
    const back = await watcher.until(
      "pi02 healthy again",
      () => watcher.mirror.events.find((e) => e.id > lastBefore && e.kind === "state" && e.subject === "pi02" && /down → healthy/.test(e.message)),
      15_000,
    );
    expect(watcher.state("pi02")).toBe("PI_STATE_HEALTHY");
    expect(back.timeMs).toBeGreaterThan(restartedAt);
  });

  it("`pifleet watch --json` streamed the same story on 127.0.0.1, and the database holds all of it", async () => {
    const parsed = () => cliWatch.out.filter(Boolean).map((l) => JSON.parse(l) as { type: string; [k: string]: unknown });
    await waitFor("pifleet watch reconnected after the restart", () => parsed().filter((l) => l.type === "snapshot").length === 2, 20_000);
    cliWatch.child.kill("SIGTERM");
    expect(await cliWatch.exited).toBe(0);
    const lines = parsed();
    expect(lines.some((l) => l.type === "disconnected")).toBe(true);
    const events = lines.filter((l) => l.type === "event") as unknown as Array<{ subject: string; message: string }>;
    expect(events.some((e) => e.subject === "pi02" && /→ down/.test(e.message))).toBe(true);
    const deltas = lines.filter((l) => l.type === "delta") as unknown as Array<{ pis: Array<{ name: string; state: string; lastReport: { timeMs: number } | null }> }>;
    expect(deltas.some((d) => d.pis.some((p) => p.name === "pi01" && p.state === "healthy" && typeof p.lastReport?.timeMs === "number"))).toBe(true);

    for (const a of agents.values()) a.child.kill("SIGTERM");
    coordinator.child.kill("SIGTERM");
    expect(await coordinator.exited).toBe(0);
    const store = new SqliteStore(db);
    try {
      const stored = store.events({ limit: 100_000 });
      const ids = new Set(stored.map((e) => e.id));
      for (const e of watcher.mirror.events) expect(ids.has(e.id)).toBe(true);
      expect(store.piStates().find((p) => p.pi === "pi02")).toMatchObject({ state: "healthy" });
      expect(store.agents().map((a) => a.identity)).toEqual(["pi01", "pi02", "pi03"]);
    } finally {
      store.close();
    }
  });
});
