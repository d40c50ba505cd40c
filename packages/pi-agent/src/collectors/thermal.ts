import path from "node:path";
import { readdir } from "node:fs/promises";
import type { Collector, ReportPart, SourcePaths } from "./types.js";
import { KernelFile } from "./read.js";

/**
 * /sys/class/thermal/thermal_zone<N>/temp (millidegrees Celsius). With several zones the hottest
 * counts: that is the one that throttles. No zone (a VM, a container) leaves the field unset.
 */
export class ThermalCollector implements Collector {
  private readonly dir: string;
  private readonly files = new Map<string, KernelFile>();
  constructor(paths: SourcePaths) {
    this.dir = path.join(paths.sys, "class", "thermal");
  }

  async collect(signal: AbortSignal): Promise<ReportPart> {
    let entries: string[];
    try {
      entries = (await readdir(this.dir)).filter((e) => /^thermal_zone\d+$/.test(e));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return {};
      throw err;
    }
    const readings = await Promise.all(
      entries.map(async (zone) => {
        try {
          let file = this.files.get(zone);
          if (!file) this.files.set(zone, (file = new KernelFile(path.join(this.dir, zone, "temp"), 64)));
          const milli = Number((await file.read(signal)).trim());
          return Number.isFinite(milli) ? milli / 1000 : undefined;
        } catch {
          // Some sensors answer EINVAL/ENODATA while they are not ready: skip that zone.
          return undefined;
        }
      }),
    );
    const valid = readings.filter((r): r is number => r !== undefined);
    return valid.length ? { temperatureC: Math.max(...valid) } : {};
  }
}
