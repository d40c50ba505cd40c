import path from "node:path";
import type { Collector, ReportPart, SourcePaths } from "./types.js";
import { KernelFile, num } from "./read.js";

/** /proc/loadavg: "0.52 0.58 0.59 2/345 12345". */
export class LoadavgCollector implements Collector {
  private readonly file: KernelFile;
  constructor(paths: SourcePaths) {
    this.file = new KernelFile(path.join(paths.proc, "loadavg"), { initialBytes: 128, sync: true });
  }

  async collect(signal: AbortSignal): Promise<ReportPart> {
    const [one, five, fifteen] = (await this.file.read(signal)).trim().split(/\s+/);
    return { load: { one: num(one, this.file.path, "1-minute load"), five: num(five, this.file.path, "5-minute load"), fifteen: num(fifteen, this.file.path, "15-minute load") } };
  }
}
