import path from "node:path";
import type { Collector, ReportPart, SourcePaths } from "./types.js";
import { KernelFile } from "./read.js";

/** /proc/meminfo: MemTotal and MemAvailable, in kB. */
export class MemoryCollector implements Collector {
  private readonly file: KernelFile;
  constructor(paths: SourcePaths) {
    this.file = new KernelFile(path.join(paths.proc, "meminfo"));
  }

  async collect(signal: AbortSignal): Promise<ReportPart> {
    const kb = new Map<string, number>();
    for (const line of (await this.file.read(signal)).split("\n")) {
      const m = /^(\w+):\s+(\d+)(?:\s+kB)?\s*$/.exec(line);
      if (m) kb.set(m[1], Number(m[2]));
    }
    const total = kb.get("MemTotal");
    if (total === undefined) throw new Error(`${this.file.path}: no MemTotal line`);
    // Kernels before 3.14 have no MemAvailable; free + page cache is the usual estimate there.
    const available = kb.get("MemAvailable") ?? (kb.get("MemFree") ?? 0) + (kb.get("Buffers") ?? 0) + (kb.get("Cached") ?? 0);
    return { memTotalBytes: total * 1024, memAvailableBytes: available * 1024 };
  }
}
