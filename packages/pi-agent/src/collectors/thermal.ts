import path from "node:path";
import { readdir } from "node:fs/promises";
import type { Collector, ReportPart, SourcePaths } from "./types.js";
import { KernelFile } from "./read.js";

const RELIST_MS = 60_000;

/**
 * /sys/class/thermal/thermal_zone<N>/temp (millidegrees Celsius). With several zones the hottest
 * counts: that is the one that throttles. No zone (a VM, a container) leaves the field unset.
 */
export class ThermalCollector implements Collector {
  private readonly dir: string;
  private readonly files = new Map<string, KernelFile>();
  private zones: string[] | null = null;
  private listedAt = 0;
  constructor(paths: SourcePaths) {
    this.dir = path.join(paths.sys, "class", "thermal");
  }

  async collect(signal: AbortSignal): Promise<ReportPart> {
    // Zones come and go only with drivers: the directory is listed once a minute, not every report.
    let entries = this.zones;
    if (!entries || performance.now() - this.listedAt > RELIST_MS) {
      try {
        entries = (await readdir(this.dir)).filter((e) => /^thermal_zone\d+$/.test(e));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") entries = [];
        else throw err;
      }
      this.zones = entries;
      this.listedAt = performance.now();
      for (const [zone, file] of this.files) if (!entries.includes(zone)) (file.close(), this.files.delete(zone));
    }
    if (entries.length === 0) return {};
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
