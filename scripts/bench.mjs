#!/usr/bin/env node
// `pnpm bench`: runs every packages/*/dist/bench/*.bench.js (compiled from src/bench) in one
// process tree and prints one table. Each bench module exports `run(): Promise<Row[]>`.
import { spawnSync } from "node:child_process";
import { readdirSync, existsSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const args = process.argv.slice(2);
// `pnpm bench lab` (alone or with other filters): also the shelf lab's rows, from one run of its VM
// test (about 15 minutes, root, qemu). Not in a plain `pnpm bench`: it would triple its time.
const lab = args.includes("lab");
const only = args.filter((a) => a !== "lab");
const order = ["core", "proto", "coordinator", "pi-agent", "switch", "lb", "fileserver-agent", "cli"];
const files = [];
for (const pkg of order) {
  const dir = path.join(root, "packages", pkg, "dist", "bench");
  if (!existsSync(dir)) continue;
  for (const f of readdirSync(dir).filter((f) => f.endsWith(".bench.js")).sort()) {
    if (only.length && !only.some((o) => `${pkg}/${f}`.includes(o))) continue;
    files.push(path.join(dir, f));
  }
}

// Other work on this machine moves every figure: the load goes with the table.
const load = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
const startedAt = new Date();
const loadAtStart = load();
const rows = [];
for (const file of files) {
  const mod = await import(pathToFileURL(file).href);
  process.stderr.write(`bench: ${path.relative(root, file)}\n`);
  for (const row of await mod.run()) rows.push(row);
}
if (lab) rows.push(...labRows());

const header = ["benchmark", "value", "unit", "goal", "notes"];
const cells = rows.map((r) => [r.name, typeof r.value === "number" ? fmt(r.value) : String(r.value), r.unit ?? "", r.goal ?? "", r.note ?? ""]);
const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
const line = (c) => `| ${c.map((x, i) => (i === 1 ? x.padStart(widths[i]) : x.padEnd(widths[i]))).join(" | ")} |`;
process.stdout.write(`${startedAt.toISOString()}, ${(Date.now() - startedAt.getTime()) / 1000 | 0} s; load average ${loadAtStart} at the start, ${load()} at the end (2 cores)\n`);
process.stdout.write(`${[line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...cells.map(line)].join("\n")}\n`);

/**
 * The shelf lab (test/lab/shelf-vm.test.ts) run once: it records, and asserts nothing about, how
 * long its Pi VMs took from power-on to their agent's first healthy report, from a hang to healthy
 * again (detection, drain, PoE cycle, netboot), and the whole lab.
 */
function labRows() {
  const file = path.join(os.tmpdir(), `pifleet-lab-figures-${process.pid}.json`);
  process.stderr.write("bench: test/lab/shelf-vm.test.ts (the shelf lab, VMs under qemu)\n");
  const r = spawnSync(process.execPath, [path.join(root, "node_modules/vitest/vitest.mjs"), "run", "test/lab/shelf-vm.test.ts"], {
    cwd: root,
    env: { ...process.env, PIFLEET_LAB_FIGURES: file },
    stdio: ["ignore", "ignore", "inherit"],
  });
  if (!existsSync(file)) return [{ name: "shelf lab", value: "failed", note: `the lab test exited ${r.status}` }];
  const f = JSON.parse(readFileSync(file, "utf8"));
  rmSync(file, { force: true });
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const note = r.status === 0 ? "TCG, 5 VMs on 2 cores" : `TCG; the lab test failed (exit ${r.status}): partial`;
  const out = [];
  if (f.powerOnToHealthyS.length) {
    out.push({ name: `shelf lab: Pi VM power-on → first healthy report (median of ${f.powerOnToHealthyS.length}, booting together)`, value: median(f.powerOnToHealthyS), unit: "s", goal: "none set (reported)", note: `${note}; each ${f.powerOnToHealthyS.map((s) => s.toFixed(0)).join(", ")} s` });
  }
  if (f.hangToHealthyS.length) out.push({ name: "shelf lab: hung Pi → healthy again (suspect, down, drain, PoE off/on, netboot)", value: median(f.hangToHealthyS), unit: "s", goal: "none set (reported)", note });
  out.push({ name: "shelf lab: whole lab wall time (images cached)", value: f.wallS, unit: "s", goal: "≤ 1500 (25 min)", note });
  return out;
}

function fmt(v) {
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3);
}
