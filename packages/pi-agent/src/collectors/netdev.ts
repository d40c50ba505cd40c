import path from "node:path";
import type { v1 } from "@pifleet/proto";
import type { Collector, ReportPart, SourcePaths } from "./types.js";
import { KernelFile, num } from "./read.js";

/** The report carries at most this many interfaces (the protocol's limit). */
const MAX_INTERFACES = 64;

/**
 * /proc/net/dev: per-interface counters since boot. Two header lines, then
 * "iface: rx_bytes rx_packets rx_errs rx_drop rx_fifo rx_frame rx_compressed rx_multicast
 * tx_bytes tx_packets tx_errs tx_drop tx_fifo tx_colls tx_carrier tx_compressed".
 */
export class NetdevCollector implements Collector {
  private readonly file: KernelFile;
  private readonly only?: Set<string>;
  constructor(paths: SourcePaths, interfaces?: string[]) {
    this.file = new KernelFile(path.join(paths.proc, "net", "dev"), { sync: true });
    this.only = interfaces ? new Set(interfaces) : undefined;
  }

  async collect(signal: AbortSignal): Promise<ReportPart> {
    const net: v1.NetCounters.$Properties[] = [];
    for (const line of (await this.file.read(signal)).split("\n")) {
      const colon = line.indexOf(":");
      if (colon < 0) continue;
      const name = line.slice(0, colon).trim();
      if (!name || name.includes("|")) continue;
      if (this.only ? !this.only.has(name) : name === "lo") continue;
      const f = line.slice(colon + 1).trim().split(/\s+/);
      if (f.length < 16) throw new Error(`${this.file.path}: ${name}: expected 16 counters, found ${f.length}`);
      const c = (i: number, what: string) => num(f[i], this.file.path, `${name} ${what}`);
      net.push({
        interface: name,
        rxBytes: c(0, "rx bytes"),
        rxPackets: c(1, "rx packets"),
        rxErrors: c(2, "rx errs"),
        txBytes: c(8, "tx bytes"),
        txPackets: c(9, "tx packets"),
        txErrors: c(10, "tx errs"),
      });
      if (net.length === MAX_INTERFACES) break;
    }
    return { net };
  }
}
