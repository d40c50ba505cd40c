import path from "node:path";
import type { Collector, ReportPart, SourcePaths } from "./types.js";
import { KernelFile } from "./read.js";

/** /proc/meminfo: MemTotal and MemAvailable, in kB. */
export class MemoryCollector implements Collector {
  private readonly file: KernelFile;
  constructor(paths: SourcePaths) {
    this.file = new KernelFile(path.join(paths.proc, "meminfo"), { sync: true });
  }

  async collect(signal: AbortSignal): Promise<ReportPart> {
    const text = await this.file.read(signal);
    // The two lines wanted come first in every kernel that has MemAvailable: no need to parse ~50.
    const total = field(text, "MemTotal:");
    const avail = field(text, "MemAvailable:");
    if (total !== undefined && avail !== undefined) return { memTotalBytes: total * 1024, memAvailableBytes: avail * 1024 };
    return this.parseAll(text);
  }

  private parseAll(text: string): ReportPart {
    const kb = new Map<string, number>();
    for (const line of text.split("\n")) {
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

/** The kB figure of a "Key:   123 kB" line at the start of a line, or undefined. */
function field(text: string, key: string): number | undefined {
  let at = text.startsWith(key) ? 0 : text.indexOf(`\n${key}`);
  if (at < 0) return undefined;
  if (at > 0) at++;
  const end = text.indexOf("\n", at);
  const m = /^\s+(\d+)(?:\s+kB)?\s*$/.exec(text.slice(at + key.length, end < 0 ? undefined : end));
  return m ? Number(m[1]) : undefined;
}
