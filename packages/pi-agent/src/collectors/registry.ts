import type { Logger } from "@pifleet/core";
import type { CollectorName, CollectorsConfig } from "../config.js";
import type { Collector, SourcePaths } from "./types.js";
import { LoadavgCollector } from "./loadavg.js";
import { CpuCollector } from "./cpu.js";
import { MemoryCollector } from "./memory.js";
import { UptimeCollector } from "./uptime.js";
import { ThermalCollector } from "./thermal.js";
import { NetdevCollector } from "./netdev.js";
import { RootfsCollector } from "./rootfs.js";
import { ApacheCollector } from "./apache.js";
import { ProbeCollector } from "./probe.js";

export interface CollectorContext {
  paths: SourcePaths;
  logger?: Logger;
}

type Factory<K extends CollectorName> = (options: CollectorsConfig[K], ctx: CollectorContext) => Collector;

/** Every collector, by the name the config uses. A new source is one file and one line here. */
export const COLLECTORS: { [K in CollectorName]: Factory<K> } = {
  loadavg: (_o, ctx) => new LoadavgCollector(ctx.paths),
  cpu: (_o, ctx) => new CpuCollector(ctx.paths),
  memory: (_o, ctx) => new MemoryCollector(ctx.paths),
  uptime: (_o, ctx) => new UptimeCollector(ctx.paths),
  thermal: (_o, ctx) => new ThermalCollector(ctx.paths),
  netdev: (o, ctx) => new NetdevCollector(ctx.paths, o.interfaces),
  rootfs: (o, ctx) => new RootfsCollector(o.path, o.deadlineMs, ctx.logger),
  apache: (o) => new ApacheCollector(o.url, o.deadlineMs),
  probe: (o) => new ProbeCollector(o.url, o.deadlineMs, o.host),
};

export interface EnabledCollector {
  name: CollectorName;
  collector: Collector;
  deadlineMs: number;
}

/** The collectors the config enables, in registry order. */
export function createCollectors(config: CollectorsConfig, ctx: CollectorContext): EnabledCollector[] {
  const out: EnabledCollector[] = [];
  for (const name of Object.keys(COLLECTORS) as CollectorName[]) {
    const options = config[name];
    if (!options.enabled) continue;
    const factory = COLLECTORS[name] as Factory<typeof name>;
    out.push({ name, collector: factory(options as never, ctx), deadlineMs: options.deadlineMs });
  }
  return out;
}
