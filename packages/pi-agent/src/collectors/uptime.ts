import path from "node:path";
import type { Collector, ReportPart, SourcePaths } from "./types.js";
import { KernelFile, num } from "./read.js";

/** /proc/uptime: "12345.67 23456.78" (seconds since boot, idle seconds). */
export class UptimeCollector implements Collector {
  private readonly file: KernelFile;
  constructor(paths: SourcePaths) {
    this.file = new KernelFile(path.join(paths.proc, "uptime"), { initialBytes: 128, sync: true });
  }

  async collect(signal: AbortSignal): Promise<ReportPart> {
    const [up] = (await this.file.read(signal)).trim().split(/\s+/);
    return { uptimeS: Math.floor(num(up, this.file.path, "uptime")) };
  }
}
