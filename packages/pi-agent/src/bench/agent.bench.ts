import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { BenchRow } from "@pifleet/core";
import { generateAgentCredential } from "@pifleet/proto";
import { MiniCoordinator } from "./mini-coordinator.js";

/**
 * The agent's cost on a Pi: one run spawns a bare Node process (the floor any Node daemon pays)
 * and the real agent (dist/main.js, every collector on, reporting at 1 Hz to a small in-bench
 * coordinator and probing an in-bench web server that serves recorded mod_status output), warms
 * both up, then samples RSS (/proc/PID/status) and CPU time (/proc/PID/stat) for ~20 s.
 */
// Long enough for V8's memory reducer to finish the full GCs it runs ~10 s after start.
const WARMUP_MS = Number(process.env.PI_AGENT_BENCH_WARMUP_MS ?? 15_000);
const SAMPLE_MS = Number(process.env.PI_AGENT_BENCH_SAMPLE_MS ?? 20_000);
// PI_AGENT_BENCH_ENTRY measures another build of the daemon, e.g. the bundle `pifleet install` ships.
const MAIN = process.env.PI_AGENT_BENCH_ENTRY ?? fileURLToPath(new URL("../main.js", import.meta.url));
const STATUS_FIXTURE = fileURLToPath(new URL("../../test/fixtures/server-status/event-extended-2.4.71.txt", import.meta.url));

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

async function webServer(): Promise<Server> {
  const status = readFileSync(STATUS_FIXTURE, "utf8");
  const srv = createServer((req, res) => res.end(req.url?.startsWith("/server-status") ? status : "<!doctype html><p>hello from a Pi</p>\n"));
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  return srv;
}

export async function run(): Promise<BenchRow[]> {
  const dir = mkdtempSync(path.join(tmpdir(), "pi-agent-bench-"));
  const cred = generateAgentCredential("pi1");
  const coordinator = await new MiniCoordinator({ agents: { pi1: cred.publicKey } }).start();
  const web = await webServer();
  const webPort = (web.address() as AddressInfo).port;
  const children: ChildProcess[] = [];
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
        `  apache: { url: "http://127.0.0.1:${webPort}/server-status?auto" }`,
        `  probe: { url: "http://127.0.0.1:${webPort}/" }`,
        "",
      ].join("\n"),
    );
    const env = { PATH: process.env.PATH, PIFLEET_LOG_FORMAT: "json", PIFLEET_LOG_LEVEL: "warn" };
    const bare = spawn(process.execPath, ["-e", "setInterval(()=>{},1000)"], { stdio: "ignore", env });
    const agent = spawn(process.execPath, [MAIN, "--config", path.join(dir, "pi-agent.yaml")], { stdio: ["ignore", "ignore", "inherit"], env });
    children.push(bare, agent);
    await sleep(WARMUP_MS);
    if (agent.exitCode !== null) throw new Error(`agent exited with ${agent.exitCode}`);
    if (coordinator.reports.length === 0) throw new Error("agent sent no report during warm-up");

    const clk = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    const bareSamples: Mem[] = [];
    const agentSamples: Mem[] = [];
    const reportsAtStart = coordinator.reports.length;
    const cpuAtStart = cpuMs(agent.pid!, clk);
    const bareCpuAtStart = cpuMs(bare.pid!, clk);
    const t0 = performance.now();
    while (performance.now() - t0 < SAMPLE_MS) {
      bareSamples.push(mem(bare.pid!));
      agentSamples.push(mem(agent.pid!));
      await sleep(1000);
    }
    const elapsedMs = performance.now() - t0;
    const cpuEnd = cpuMs(agent.pid!, clk);
    const agentCpuMs = cpuEnd.ms - cpuAtStart.ms;
    const bareCpuMs = cpuMs(bare.pid!, clk).ms - bareCpuAtStart.ms;
    const reports = coordinator.reports.length - reportsAtStart;
    const frames = coordinator.reports.slice(reportsAtStart).map((r) => r.bytes).sort((a, b) => a - b);
    const last = coordinator.reports.at(-1)!.report;

    const avg = (xs: Mem[], k: keyof Mem) => xs.reduce((s, x) => s + x[k], 0) / xs.length;
    const floor = avg(bareSamples, "rss");
    const agentRss = avg(agentSamples, "rss");
    const first = agentSamples[0];
    const final = agentSamples.at(-1)!;
    const drift = mib(final.rss - first.rss);
    const above = mib(agentRss - floor);
    const anonAbove = mib(avg(agentSamples, "anon") - avg(bareSamples, "anon"));
    const fileAbove = mib(avg(agentSamples, "file") - avg(bareSamples, "file"));
    return [
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
        note: `goal ≤ 8 MiB: ${above <= 8 ? "met" : "missed"}; anon +${anonAbove.toFixed(1)} MiB, file-backed (node binary pages, shared/reclaimable) +${fileAbove.toFixed(1)} MiB`,
      },
      {
        name: "pi-agent: agent RSS drift after warm-up",
        value: drift,
        unit: "MiB",
        note: `last − first sample over ${(elapsedMs / 1000).toFixed(0)} s (${mib(first.rss).toFixed(1)} → ${mib(final.rss).toFixed(1)}); ${drift > 1 ? "GROWING" : drift < -1 ? "shrinking (GC still settling): no growth" : "flat"}`,
      },
      { name: "pi-agent: agent CPU at 1 Hz", value: (100 * agentCpuMs) / elapsedMs, unit: "%", note: `of one core, all threads (${cpuEnd.source}); bare node ${((100 * bareCpuMs) / elapsedMs).toFixed(3)} %` },
      { name: "pi-agent: CPU per report", value: reports ? agentCpuMs / reports : NaN, unit: "ms", note: `${reports} reports in ${(elapsedMs / 1000).toFixed(1)} s, incl. 2 HTTP GETs and 7 kernel-file reads each` },
      {
        name: "pi-agent: encoded report frame",
        value: frames[Math.floor(frames.length / 2)],
        unit: "bytes",
        note: `median Envelope{PiReport}; ${last?.net.length ?? 0} interfaces, ${last?.apache?.scoreboard?.length ?? 0}-slot scoreboard`,
      },
    ];
  } finally {
    for (const c of children) c.kill("SIGTERM");
    await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once("exit", r)) : undefined)));
    await coordinator.stop();
    await new Promise((r) => web.close(r));
    rmSync(dir, { recursive: true, force: true });
  }
}
