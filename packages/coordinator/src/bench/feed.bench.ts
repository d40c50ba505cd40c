import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createLogger, type BenchRow } from "@pifleet/core";
import { encodeEnvelope, FleetClient, generateAgentCredential, SampleEncoder, v1 } from "@pifleet/proto";
import { createToken } from "../enrollment.js";
import { simReport } from "../sim/agents.js";
import { SqliteStore } from "../store/sqlite.js";
import { benchPiName } from "./names.js";

// Report → feed latency at 1,000 and 10,000 agents reporting at 1 Hz: the coordinator, the
// simulated agents and the watcher (this process) are three processes on this machine. Latency
// is the watcher's receive time minus the report's time_ms (stamped by the agent when sent).

const here = path.dirname(fileURLToPath(import.meta.url));
const WARMUP_MS = 4000;
const MEASURE_MS = Number(process.env.PIFLEET_BENCH_FEED_MS ?? 12_000);
const TICKS = 100; // USER_HZ on Linux

interface Child {
  proc: ChildProcess;
  lines: string[];
  waitLine(pred: (l: string) => boolean, timeoutMs: number): Promise<string>;
}

function child(args: string[], nodeFlags: string[] = []): Child {
  const proc = spawn(process.execPath, [...nodeFlags, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, PIFLEET_LOG_FORMAT: "json" } });
  const lines: string[] = [];
  let buf = "";
  const waiters: Array<() => void> = [];
  proc.stdout!.on("data", (d: Buffer) => {
    const parts = (buf + d.toString()).split("\n");
    buf = parts.pop()!;
    lines.push(...parts);
    for (const w of waiters.splice(0)) w();
  });
  let err = "";
  proc.stderr!.on("data", (d: Buffer) => {
    err = (err + d.toString()).slice(-4000);
    if (process.env.PIFLEET_BENCH_VERBOSE) process.stderr.write(d);
  });
  proc.on("exit", (code) => {
    if (code) process.stderr.write(`bench child ${path.basename(args[0])} exited ${code}: ${err}\n`);
    for (const w of waiters.splice(0)) w();
  });
  return {
    proc,
    lines,
    async waitLine(pred, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const l = lines.find(pred);
        if (l) return l;
        if (proc.exitCode !== null) throw new Error(`${path.basename(args[0])} exited (${proc.exitCode}): ${err}`);
        if (Date.now() > deadline) throw new Error(`${path.basename(args[0])}: timed out`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 200);
        });
      }
    },
  };
}

/** Share of time some task waited for a CPU (Linux PSI, last 60 s): how contended this machine was. */
function cpuPressure(): string {
  try {
    return `${/avg60=([\d.]+)/.exec(readFileSync("/proc/pressure/cpu", "utf8"))?.[1] ?? "?"} %`;
  } catch {
    return "n/a";
  }
}

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime + stime
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Cumulative bucket counts of the coordinator's own report→feed histogram. */
async function scrape(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

function histogramOf(text: string): Array<[number, number]> {
  return [...text.matchAll(/^pifleet_report_feed_latency_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm)].map((m) => [m[1] === "+Inf" ? Infinity : Number(m[1]) * 1000, Number(m[2])]);
}

/** The bucket bound (ms) under which `p` % of the observations between two scrapes fall. */
function bucketPercentile(before: Array<[number, number]>, after: Array<[number, number]>, p: number): number {
  const total = after.at(-1)![1] - before.at(-1)![1];
  for (let i = 0; i < after.length; i++) if (after[i][1] - before[i][1] >= (p / 100) * total) return after[i][0];
  return Infinity;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function benchFleet(n: number, shelves = 1): Promise<BenchRow[]> {
  const dir = mkdtempSync(path.join(tmpdir(), "pifleet-bench-feed-"));
  const db = path.join(dir, "coordinator.db");
  const children: Child[] = [];
  let watcher: FleetClient | undefined;
  try {
    const store = new SqliteStore(db);
    const creds = Array.from({ length: n }, (_, i) => {
      const c = generateAgentCredential(benchPiName(i));
      store.enrollAgent({ identity: c.identity, role: "pi", publicKey: c.publicKey });
      return { identity: c.identity, secret: c.secret };
    });
    const token = createToken(store, "bench", "watcher");
    store.close();
    writeFileSync(path.join(dir, "creds.json"), JSON.stringify(creds));

    // PIFLEET_BENCH_COORD_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof --trace-gc": profile the coordinator alone.
    const coordFlags = (process.env.PIFLEET_BENCH_COORD_FLAGS ?? "").split(" ").filter(Boolean);
    const coord = child([path.join(here, "feed-coordinator.js"), "--db", db, "--pis", String(n), "--shelves", String(shelves)], coordFlags);
    children.push(coord);
    const { port } = JSON.parse(await coord.waitLine((l) => l.startsWith("{"), 30_000)) as { port: number };
    const sim = child([path.join(here, "../sim/main.js"), "--url", `ws://127.0.0.1:${port}/agent`, "--credentials", path.join(dir, "creds.json"), "--interval", "1000", "--concurrency", "256"]);
    children.push(sim);
    const ready = JSON.parse(await sim.waitLine((l) => l.includes('"ready"'), 300_000)) as { ms: number };

    const latencies: number[] = [];
    const lastTime = new Map<string, number>();
    let measuring = false;
    let frames = 0;
    watcher = new FleetClient({
      url: `ws://127.0.0.1:${port}/feed`,
      role: v1.Role.ROLE_WATCHER,
      identity: "bench",
      token,
      maxFrameBytes: 64 * 1024 * 1024,
      logger: createLogger("bench-watcher", { level: process.env.PIFLEET_BENCH_VERBOSE ? "debug" : "warn" }),
    });
    let disconnects = 0;
    let total = 0;
    watcher.on("disconnected", (why) => {
      disconnects++;
      process.stderr.write(`bench watcher disconnected: ${why}\n`);
    });
    watcher.on("refused", (e) => process.stderr.write(`bench watcher refused: ${e.code} ${e.message}\n`));
    watcher.on("message", () => total++);
    const snapshot = new Promise<void>((resolve) => {
      watcher!.on("message", (env) => {
        const now = Date.now();
        if (env.body === "snapshot") resolve();
        const pis = env.body === "delta" ? env.delta!.pis! : env.body === "snapshot" ? env.snapshot!.pis! : [];
        if (measuring) frames++;
        for (const p of pis) {
          const t = p.lastSample?.timeMs as number | undefined;
          if (t === undefined || t <= (lastTime.get(p.name!) ?? 0)) continue;
          lastTime.set(p.name!, t);
          if (measuring) latencies.push(now - t);
        }
      });
    });
    watcher.start();
    await snapshot;
    await new Promise((r) => setTimeout(r, WARMUP_MS));

    const pid = coord.proc.pid!;
    const simPid = sim.proc.pid!;
    const h0 = histogramOf(await scrape(port)); // also starts the event-loop delay window
    const c0 = cpuTicks(pid);
    const w0 = process.cpuUsage();
    const s0 = cpuTicks(simPid);
    const t0 = Date.now();
    measuring = true;
    await new Promise((r) => setTimeout(r, MEASURE_MS));
    measuring = false;
    const elapsed = (Date.now() - t0) / 1000;
    const cpu = ((cpuTicks(pid) - c0) / TICKS / elapsed) * 100;
    const simCpu = ((cpuTicks(simPid) - s0) / TICKS / elapsed) * 100;
    const w1 = process.cpuUsage(w0);
    const watcherCpu = ((w1.user + w1.system) / 1e6 / elapsed) * 100;
    const rss = rssMiB(pid);
    if (process.env.PIFLEET_BENCH_COORD_LOG) writeFileSync(process.env.PIFLEET_BENCH_COORD_LOG, coord.lines.join("\n"));
    const metrics = await scrape(port);
    const h1 = histogramOf(metrics);
    const refused = [...metrics.matchAll(/^pifleet_refused_total\{[^}]*\} (\d+)$/gm)].reduce((a, m) => a + Number(m[1]), 0);
    const loopMax = Number(/^pifleet_event_loop_delay_seconds\{quantile="1"\} ([\d.e-]+)$/m.exec(metrics)?.[1] ?? NaN) * 1000;
    latencies.sort((a, b) => a - b);
    const rate = latencies.length / elapsed;
    // Same figures with the Pis spread over shelves: what grouping the feed by shelf costs.
    const label = `feed, ${n.toLocaleString("en")} agents${shelves > 1 ? ` on ${shelves} shelves` : ""} @ 1 Hz`;
    if (disconnects) process.stderr.write(`bench watcher: ${disconnects} disconnects, ${total} frames\n`);
    const note = `${Math.round(rate)} reports/s reached the watcher in ${Math.round(frames / elapsed)} frames/s; agents connected in ${(ready.ms / 1000).toFixed(1)} s; CPU: sim process ${simCpu.toFixed(0)} %, watcher ${watcherCpu.toFixed(0)} %; ${refused} refusals; machine CPU pressure ${cpuPressure()}`;
    // Issue 13's goals are for the 10,000-agent fleet.
    const big = n >= 10_000;
    const goal = (text: string, ok: boolean) => (big ? `${text}: ${ok ? "met" : "MISSED"}` : undefined);
    const p99 = percentile(latencies, 99);
    const max = latencies.at(-1) ?? NaN;
    return [
      { name: `${label}: coordinator CPU`, value: cpu, unit: "% of a core", goal: goal("≤ 40 %", cpu <= 40), note },
      { name: `${label}: coordinator RSS`, value: rss, unit: "MiB", goal: goal("≤ 250 MiB", rss <= 250) },
      { name: `${label}: report→feed p50`, value: percentile(latencies, 50), unit: "ms", note: "watcher receive − report time_ms (1 ms resolution); agents, coordinator and watcher are 3 processes here" },
      { name: `${label}: report→feed p99`, value: p99, unit: "ms", goal: goal("≤ 20 ms", p99 <= 20), note: `over ${latencies.length} reports` },
      { name: `${label}: report→feed max`, value: max, unit: "ms", goal: goal("≤ 50 ms", max <= 50) },
      { name: `${label}: longest event-loop stall`, value: Math.round(loopMax), unit: "ms", goal: goal("≤ 10 ms", loopMax <= 10), note: "the coordinator's monitorEventLoopDelay over the measurement (10 ms resolution)" },
      {
        name: `${label}: arrival→sent p99 (in the coordinator)`,
        value: `≤ ${bucketPercentile(h0, h1, 99)}`,
        unit: "ms",
        note: `p50 ≤ ${bucketPercentile(h0, h1, 50)} ms (pifleet_report_feed_latency_seconds buckets)`,
      },
    ];
  } finally {
    await watcher?.stop();
    for (const c of children.reverse()) {
      c.proc.kill("SIGTERM");
      await new Promise((r) => (c.proc.exitCode !== null ? r(null) : c.proc.once("exit", r)));
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(): Promise<BenchRow[]> {
  const state = { load: 0.4, rx: 123_456_789, tx: 987_654_321, accesses: 1_234_567, fault: null };
  const board = "W".repeat(3) + "_".repeat(7) + ".".repeat(246);
  const report = simReport("pi00001", state, board);
  const enc = new SampleEncoder();
  enc.encode(report);
  const next = simReport("pi00001", { ...state, rx: state.rx + 22_000, tx: state.tx + 170_000, accesses: state.accesses + 35 }, board);
  const frame = encodeEnvelope({ seq: 3600, piSample: enc.encode(next).sample }).byteLength;
  const old = encodeEnvelope({ seq: 3600, piReport: next }).byteLength;
  const rows: BenchRow[] = [{ name: "one simulated Pi report frame (Envelope{PiSample})", value: frame, unit: "bytes", goal: `≤ 128 B: ${frame <= 128 ? "met" : "MISSED"}`, note: `the simulator's reading (3 interfaces, 256-slot scoreboard); as a v1 PiReport ${old} bytes` }];
  // "N" or "NxS" (N agents on S shelves of at most 96): PIFLEET_BENCH_FEED_SIZES=10000x105 runs that row alone.
  const sizes = (process.env.PIFLEET_BENCH_FEED_SIZES ?? "1000,10000,10000x105").split(",").map((s) => s.split("x").map(Number));
  for (const [n, shelves] of sizes) rows.push(...(await benchFleet(n, shelves ?? 1)));
  return rows;
}
