import type { v1 } from "@pifleet/proto";

/** The report fields one collector owns. */
export type ReportPart = Partial<v1.PiReport.$Properties>;

/**
 * One source of figures, node_exporter style. A collector returns its fields rather than writing
 * into a shared report, so one that answers after its deadline can never change a report that has
 * already been sent. It must settle promptly once `signal` aborts (its deadline passed): sources
 * whose failure is itself news (Apache, the probe, the root filesystem) settle with that failure.
 */
export interface Collector {
  collect(signal: AbortSignal): Promise<ReportPart>;
}

/** Where collectors read the kernel's files: configurable so tests point them at fixtures. */
export interface SourcePaths {
  proc: string;
  sys: string;
}
