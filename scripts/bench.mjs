#!/usr/bin/env node
// `pnpm bench`: runs every packages/*/dist/bench/*.bench.js (compiled from src/bench) in one
// process tree and prints one table. Each bench module exports `run(): Promise<Row[]>`.
import { readdirSync, existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const only = process.argv.slice(2);
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

const header = ["benchmark", "value", "unit", "goal", "notes"];
const cells = rows.map((r) => [r.name, typeof r.value === "number" ? fmt(r.value) : String(r.value), r.unit ?? "", r.goal ?? "", r.note ?? ""]);
const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
const line = (c) => `| ${c.map((x, i) => (i === 1 ? x.padStart(widths[i]) : x.padEnd(widths[i]))).join(" | ")} |`;
process.stdout.write(`${startedAt.toISOString()}, ${(Date.now() - startedAt.getTime()) / 1000 | 0} s; load average ${loadAtStart} at the start, ${load()} at the end (2 cores)\n`);
process.stdout.write(`${[line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...cells.map(line)].join("\n")}\n`);

function fmt(v) {
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3);
}
