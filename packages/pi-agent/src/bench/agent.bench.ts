import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Agent, createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { BenchRow } from "@pifleet/core";
import { freePort, goalMet } from "@pifleet/core";
import { generateAgentCredential } from "@pifleet/proto";
import { APACHE_BIN, startApache, type ApacheInstance } from "./apache-server.js";
import { MiniCoordinator } from "./mini-coordinator.js";

/**
 * The agent's cost on a Pi: one run spawns a bare Node process (the floor any Node daemon pays)
 * and the real agent (dist/main.js, every collector on, reporting at 1 Hz to a small in-bench
 * coordinator), pointed at Debian's apache2 (a private instance on loopback with the stock event
 * MPM limits, kept busy by a small load) — and, in the same run and against the same Apache,
 * Debian's prometheus-node-exporter and prometheus-apache-exporter scraped once a second, the
 * usual way to watch such a host. It warms everything up, then samples RSS (/proc/PID/status)
 * and CPU time (per-thread schedstat; /proc/PID/stat ticks too) for ~20 s. Without apache2 it
 * falls back to an in-bench server replaying recorded mod_status output; without the exporters
 * their rows say so.
 */
// Long enough for V8's memory reducer to finish the full GCs it runs ~10 s after start.
const WARMUP_MS = Number(process.env.PI_AGENT_BENCH_WARMUP_MS ?? 15_000);
const SAMPLE_MS = Number(process.env.PI_AGENT_BENCH_SAMPLE_MS ?? 20_000);
// PI_AGENT_BENCH_ENTRY measures another build of the daemon, e.g. the bundle `pifleet install` ships.
const MAIN = process.env.PI_AGENT_BENCH_ENTRY ?? fileURLToPath(new URL("../main.js", import.meta.url));
const STATUS_FIXTURE = fileURLToPath(new URL("../../test/fixtures/server-status/event-extended-2.4.71.txt", import.meta.url));
const NODE_EXPORTER = process.env.PIFLEET_NODE_EXPORTER ?? "/usr/bin/prometheus-node-exporter";
const APACHE_EXPORTER = process.env.PIFLEET_APACHE_EXPORTER ?? "/usr/bin/prometheus-apache-exporter";
/** Visitors' requests per second while measuring: Apache busy as a Pi serving a site is. */
const LOAD_RPS = 40;

interface Mem {
  rss: number;
  anon: number;
  file: number;
}

function mem(pid: number): Mem {
  const kb = (key: string, text: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? NaN);
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return { rss: kb("VmRSS", status), anon: kb("RssAnon", status), file: kb("RssFile", status) };
}

/** utime + stime in ms (clock-tick resolution). The command name may contain spaces: parse after its ')'. */
function cpuMsFromStat(pid: number, clk: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / clk;
}

/** On-CPU time of every thread in ms, to the nanosecond: ticks are too coarse for a process this idle. */
function cpuMsFromSchedstat(pid: number): number | undefined {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    return ns / 1e6;
  } catch {
    return undefined;
  }
}

function cpuMs(pid: number, clk: number): { ms: number; source: string } {
  const precise = cpuMsFromSchedstat(pid);
  return precise !== undefined && Number.isFinite(precise) ? { ms: precise, source: "schedstat" } : { ms: cpuMsFromStat(pid, clk), source: "stat ticks" };
}

const mib = (kb: number) => kb / 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The web server the agent and the exporters watch: Debian's apache2 when installed. */
async function webServer(): Promise<{ base: string; what: string; stop(): Promise<void> }> {
  if (existsSync(APACHE_BIN)) {
    const a: ApacheInstance = await startApache({ extendedStatus: true, stockLimits: true });
    return { base: a.base, what: "Debian apache2 (event MPM, stock limits)", stop: () => a.stop() };
  }
  const status = readFileSync(STATUS_FIXTURE, "utf8");
  const srv: Server = createServer((req, res) => res.end(req.url?.startsWith("/server-status") ? status : "<!doctype html><p>hello from a Pi</p>\n"));
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  return { base: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, what: `no ${APACHE_BIN}: an in-bench server replaying recorded server-status`, stop: () => new Promise((r) => srv.close(() => r())) };
}

/** GET a URL and read the whole body; resolves to the byte count (0 on any error). */
function fetchAll(url: string, agent: Agent): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { agent, timeout: 5000 }, (res) => {
      let n = 0;
      res.on("data", (d: Buffer) => (n += d.length));
      res.on("end", () => resolve(n));
      res.on("error", () => resolve(0));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(0));
    req.end();
  });
}

/** Visitors: LOAD_RPS requests a second for the site over a few kept-alive connections. */
function visitors(base: string): () => void {
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  const t = setInterval(() => void fetchAll(`${base}/`, agent), 1000 / LOAD_RPS);
  return () => {
    clearInterval(t);
    agent.destroy();
  };
}

interface Exporter {
  name: string;
  proc: ChildProcess;
  url: string;
  scrapes: number;
  bytes: number;
}

/** Starts one exporter on a loopback port; undefined when its binary is not installed. */
async function exporter(name: string, bin: string, args: (listen: string) => string[]): Promise<Exporter | undefined> {
  if (!existsSync(bin)) return undefined;
  const port = await freePort("127.0.0.1");
  const listen = `127.0.0.1:${port}`;
  const proc = spawn(bin, args(listen), { stdio: ["ignore", "ignore", "ignore"] });
  const e: Exporter = { name, proc, url: `http://${listen}/metrics`, scrapes: 0, bytes: 0 };
  const agent = new Agent({ keepAlive: false });
  for (let i = 0; i < 100; i++) {
    if (proc.exitCode !== null) throw new Error(`${bin} exited with ${proc.exitCode}`);
    if ((await fetchAll(e.url, agent)) > 0) return e;
    await sleep(100);
  }
  throw new Error(`${bin}: no /metrics on ${listen} within 10 s`);
}

/** Scrapes every exporter once a second, as Prometheus would with scrape_interval: 1s. */
function scraper(exporters: Exporter[]): { counting(on: boolean): void; stop(): void } {
  const agent = new Agent({ keepAlive: true });
  let on = false;
  const t = setInterval(() => {
    for (const e of exporters) {
      void fetchAll(e.url, agent).then((n) => {
        if (!on) return;
        e.scrapes++;
        e.bytes += n;
      });
    }
  }, 1000);
  return {
    counting: (v) => (on = v),
    stop: () => {
      clearInterval(t);
      agent.destroy();
    },
  };
}

function uptimeLoad(): string {
  return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
}

export async function run(): Promise<BenchRow[]> {
  const dir = mkdtempSync(path.join(tmpdir(), "pi-agent-bench-"));
  const cred = generateAgentCredential("pi1");
  const coordinator = await new MiniCoordinator({ agents: { pi1: cred.publicKey } }).start();
  const web = await webServer();
  const children: ChildProcess[] = [];
  const stopVisitors = visitors(web.base);
  const statusUrl = `${web.base}/server-status?auto`;
  let scrape: ReturnType<typeof scraper> | undefined;
  try {
    writeFileSync(path.join(dir, "secret"), cred.secret, { mode: 0o600 });
    writeFileSync(
      path.join(dir, "pi-agent.yaml"),
      [
        `coordinator: { url: "${coordinator.url}" }`,
        "identity: pi1",
        `secretFile: ${path.join(dir, "secret")}`,
        "localAddress: '::1'",
        "intervalMs: 1000",
        "collectors:",
        `  apache: { url: "${statusUrl}" }`,
        `  probe: { url: "${web.base}/" }`,
        "",
      ].join("\n"),
    );
    const env = { PATH: process.env.PATH, PIFLEET_LOG_FORMAT: "json", PIFLEET_LOG_LEVEL: "warn" };
    const bare = spawn(process.execPath, ["-e", "setInterval(()=>{},1000)"], { stdio: "ignore", env });
    // PI_AGENT_BENCH_NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof": profile the agent alone.
    const flags = (process.env.PI_AGENT_BENCH_NODE_FLAGS ?? "").split(" ").filter(Boolean);
    const agent = spawn(process.execPath, [...flags, MAIN, "--config", path.join(dir, "pi-agent.yaml")], { stdio: ["ignore", "ignore", "inherit"], env });
    children.push(bare, agent);
    const exporters = (
      await Promise.all([
        exporter("node_exporter", NODE_EXPORTER, (listen) => [`--web.listen-address=${listen}`]),
        exporter("apache_exporter", APACHE_EXPORTER, (listen) => [`--telemetry.address=${listen}`, `--scrape_uri=${statusUrl}`]),
      ])
    ).filter((e): e is Exporter => e !== undefined);
    for (const e of exporters) children.push(e.proc);
    scrape = scraper(exporters);
    await sleep(WARMUP_MS);
    if (agent.exitCode !== null) throw new Error(`agent exited with ${agent.exitCode}`);
    if (coordinator.reports.length === 0) throw new Error("agent sent no report during warm-up");

    const clk = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    const loadBefore = uptimeLoad();
    const bareSamples: Mem[] = [];
    const agentSamples: Mem[] = [];
    const exporterRss: number[] = exporters.map(() => 0);
    const reportsAtStart = coordinator.reports.length;
    const cpuAtStart = cpuMs(agent.pid!, clk);
    const bareCpuAtStart = cpuMs(bare.pid!, clk);
    const expAtStart = exporters.map((e) => ({ fine: cpuMs(e.proc.pid!, clk).ms, ticks: cpuMsFromStat(e.proc.pid!, clk) }));
    scrape.counting(true);
    const t0 = performance.now();
    while (performance.now() - t0 < SAMPLE_MS) {
      bareSamples.push(mem(bare.pid!));
      agentSamples.push(mem(agent.pid!));
      exporters.forEach((e, i) => (exporterRss[i] += mem(e.proc.pid!).rss));
      await sleep(1000);
    }
    const elapsedMs = performance.now() - t0;
    scrape.counting(false);
    const cpuEnd = cpuMs(agent.pid!, clk);
    const agentCpuMs = cpuEnd.ms - cpuAtStart.ms;
    const bareCpuMs = cpuMs(bare.pid!, clk).ms - bareCpuAtStart.ms;
    const expCpu = exporters.map((e, i) => ({ fine: cpuMs(e.proc.pid!, clk).ms - expAtStart[i].fine, ticks: cpuMsFromStat(e.proc.pid!, clk) - expAtStart[i].ticks }));
    const loadAfter = uptimeLoad();
    const reports = coordinator.reports.length - reportsAtStart;
    const window = coordinator.reports.slice(reportsAtStart);
    const frames = window.map((r) => r.bytes).sort((a, b) => a - b);
    const last = window.at(-1)!;
    const lastFacts = coordinator.facts.get("pi1");

    const avg = (xs: Mem[], k: keyof Mem) => xs.reduce((s, x) => s + x[k], 0) / xs.length;
    const floor = avg(bareSamples, "rss");
    const agentRss = avg(agentSamples, "rss");
    const first = agentSamples[0];
    const final = agentSamples.at(-1)!;
    const drift = mib(final.rss - first.rss);
    const above = mib(agentRss - floor);
    const anonAbove = mib(avg(agentSamples, "anon") - avg(bareSamples, "anon"));
    const fileAbove = mib(avg(agentSamples, "file") - avg(bareSamples, "file"));
    const perReport = reports ? agentCpuMs / reports : NaN;
    const median = frames[Math.floor(frames.length / 2)];
    const load = `load ${loadBefore} → ${loadAfter}`;
    const rows: BenchRow[] = [
      { name: "pi-agent: bare node RSS (floor)", value: mib(floor), unit: "MiB", note: `node -e 'setInterval(()=>{},1000)', mean of ${bareSamples.length} samples` },
      {
        name: "pi-agent: agent RSS",
        value: mib(agentRss),
        unit: "MiB",
        note: `${process.env.PI_AGENT_BENCH_ENTRY ? `${path.basename(path.dirname(MAIN))}/${path.basename(MAIN)}, ` : ""}all 9 collectors, 1 Hz, ${Math.round(WARMUP_MS / 1000)} s warm-up, mean of ${agentSamples.length} samples`,
      },
      {
        name: "pi-agent: agent RSS above the floor",
        value: above,
        unit: "MiB",
        goal: goalMet("≤ 8 MiB", above <= 8),
        note: `anon +${anonAbove.toFixed(1)} MiB, file-backed (node binary pages, shared/reclaimable) +${fileAbove.toFixed(1)} MiB`,
      },
      {
        name: "pi-agent: agent RSS drift after warm-up",
        value: drift,
        unit: "MiB",
        goal: goalMet("flat (within ±1 MiB)", Math.abs(drift) <= 1),
        note: `last − first sample over ${(elapsedMs / 1000).toFixed(0)} s (${mib(first.rss).toFixed(1)} → ${mib(final.rss).toFixed(1)})`,
      },
      { name: "pi-agent: agent CPU at 1 Hz", value: (100 * agentCpuMs) / elapsedMs, unit: "% of a core", note: `all threads (${cpuEnd.source}); bare node ${((100 * bareCpuMs) / elapsedMs).toFixed(3)} %` },
      {
        name: "pi-agent: CPU per report",
        value: perReport,
        unit: "ms",
        goal: goalMet("≤ 2 ms", perReport <= 2),
        note: `${reports} reports in ${(elapsedMs / 1000).toFixed(1)} s, each 2 HTTP GETs (one kept-alive connection) and 7 kernel-file reads; ${web.what}, ${LOAD_RPS} visitor req/s; ${load}`,
      },
      {
        name: "pi-agent: encoded report frame (median)",
        value: median,
        unit: "bytes",
        goal: goalMet("≤ 128 B", median <= 128),
        note: `Envelope{PiSample}, min ${frames[0]} max ${frames.at(-1)}; ${lastFacts?.interfaces.length ?? 0} interfaces, ${lastFacts?.scoreboardSlots ?? 0}-slot scoreboard as ${last.sample?.apache?.slots?.length ?? 0} counts (v1 PiReport before: 551 B)`,
      },
    ];
    if (exporters.length < 2) {
      const missing = [!exporters.some((e) => e.name === "node_exporter") && NODE_EXPORTER, !exporters.some((e) => e.name === "apache_exporter") && APACHE_EXPORTER].filter(Boolean).join(", ");
      rows.push({ name: "exporters: node_exporter + apache_exporter CPU per scrape", value: "skipped", goal: "agent ≤ ⅕ of it", note: `not installed: ${missing} (apt-get install prometheus-node-exporter prometheus-apache-exporter)` });
      return rows;
    }
    let sum = 0;
    exporters.forEach((e, i) => {
      const per = expCpu[i].fine / Math.max(1, e.scrapes);
      sum += per;
      rows.push({
        name: `exporters: ${e.name} CPU per scrape`,
        value: per,
        unit: "ms",
        note: `${e.scrapes} scrapes at 1 Hz in the same run (${(e.bytes / Math.max(1, e.scrapes) / 1024).toFixed(0)} KiB each); /proc/PID/stat ticks say ${(expCpu[i].ticks / Math.max(1, e.scrapes)).toFixed(1)} ms; RSS ${mib(exporterRss[i] / agentSamples.length).toFixed(0)} MiB`,
      });
    });
    const ratio = perReport / sum;
    rows.push({
      name: "pi-agent: CPU per report ÷ exporters' CPU per scrape",
      value: ratio,
      unit: "×",
      goal: goalMet("≤ 0.2 (⅕)", ratio <= 0.2),
      note: `${perReport.toFixed(2)} ms ÷ (${exporters.map((_e, i) => (expCpu[i].fine / Math.max(1, exporters[i].scrapes)).toFixed(2)).join(" + ")}) ms; same machine, same ${(elapsedMs / 1000).toFixed(0)} s, same Apache`,
    });
    return rows;
  } finally {
    scrape?.stop();
    stopVisitors();
    for (const c of children) c.kill("SIGTERM");
    await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once("exit", r)) : undefined)));
    await coordinator.stop();
    await web.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
