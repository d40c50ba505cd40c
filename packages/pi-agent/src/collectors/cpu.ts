import path from "node:path";
import type { Collector, ReportPart, SourcePaths } from "./types.js";
import { KernelFile, num } from "./read.js";

const FIELDS = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"];

interface Sample {
  busy: number;
  total: number;
}

/**
 * /proc/stat's aggregate "cpu" line, in clock ticks since boot. cpu_percent is the busy share of
 * the ticks since the previous report (the first report: since boot). guest and guest_nice are
 * already counted in user and nice, so they are left out of the total.
 */
export class CpuCollector implements Collector {
  private readonly file: KernelFile;
  private last: Sample = { busy: 0, total: 0 };
  constructor(paths: SourcePaths) {
    this.file = new KernelFile(path.join(paths.proc, "stat"), { initialBytes: 1024, sync: true, prefix: true });
  }

  async collect(signal: AbortSignal): Promise<ReportPart> {
    // Only the first KiB is read: the aggregate line comes first, and the rest of /proc/stat
    // (one line per CPU, and the long "intr" line) is of no use here.
    const text = await this.file.read(signal);
    const at = text.startsWith("cpu ") ? 0 : text.indexOf("\ncpu ") + 1;
    const end = text.indexOf("\n", at);
    if (at < 0 || (at === 0 && !text.startsWith("cpu ")) || end < 0) throw new Error(`${this.file.path}: no aggregate "cpu" line`);
    const line = text.slice(at, end);
    const f = line.trim().split(/\s+/).slice(1, 9);
    // Kernels before 2.6.11 lack steal; before 2.5.41, iowait..softirq.
    const v = FIELDS.map((n, i) => (f[i] === undefined ? 0 : num(f[i], this.file.path, `cpu ${n}`)));
    const total = v.reduce((a, b) => a + b, 0);
    const idle = v[3] + v[4];
    const now: Sample = { busy: total - idle, total };
    const dt = now.total - this.last.total;
    const db = now.busy - this.last.busy;
    this.last = now;
    if (dt <= 0) return { cpuPercent: 0 };
    return { cpuPercent: Math.min(100, Math.max(0, (100 * db) / dt)) };
  }
}
