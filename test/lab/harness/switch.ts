import { readFileSync } from "node:fs";
import path from "node:path";
import type { SwitchPlan } from "@pifleet/core";
import { repoRoot } from "./cache.js";
import type { Lab } from "./lab.js";
import type { Vm } from "./vm.js";
import type { Cable } from "./wire.js";

export interface SwitchVmOptions {
  name: string;
  /** The plan's switch table: which VLANs each port carries, tagged or untagged, and its PVID. */
  plan: SwitchPlan;
  /** The switch ports that have a cable, in NIC order (first → eth0). */
  ports: { port: number; wire: Cable }[];
  /**
   * Ports that carry one VLAN untagged where the plan has it tagged: the lab's uplink to the
   * host, whose kernel has no 802.1Q (the host side is a plain tap device).
   */
  untagged?: { port: number; vlan: number }[];
}

/**
 * The `bridge vlan add` lines that make a VLAN-filtering Linux bridge behave like the planned
 * switch, for the ports that are wired: `<dev> <vid> [pvid] [untagged]`.
 */
export function switchVlanLines(plan: SwitchPlan, ports: { port: number }[]): string[] {
  const dev = new Map(ports.map((p, i) => [p.port, `eth${i}`]));
  const pvid = new Map(plan.pvids.map((p) => [p.port, p.vlan]));
  const lines: string[] = [];
  for (const v of plan.vlans) {
    for (const port of v.untagged) {
      const d = dev.get(port);
      if (d) lines.push(`${d} ${v.vlan}${pvid.get(port) === v.vlan ? " pvid" : ""} untagged`);
    }
    for (const port of v.tagged) {
      const d = dev.get(port);
      if (d) lines.push(`${d} ${v.vlan}${pvid.get(port) === v.vlan ? " pvid" : ""}`);
    }
  }
  return lines;
}

/**
 * A tiny VM playing the shelf's switch: one NIC per wired port on a Linux bridge with
 * vlan_filtering, configured from the plan's switch table. Untagged frames from a Pi's port join
 * that Pi's VLAN; the fileserver's trunk port carries them tagged — as on the real switch.
 */
export function switchVm(lab: Lab, options: SwitchVmOptions): Vm {
  const dev = new Map(options.ports.map((p, i) => [p.port, `eth${i}`]));
  const untagged = new Map((options.untagged ?? []).map((u) => [dev.get(u.port), u.vlan]));
  const lines = switchVlanLines(options.plan, options.ports).map((l) => {
    const [d, vid] = l.split(" ");
    return untagged.get(d) === Number(vid) ? `${d} ${vid} pvid untagged` : l;
  });
  return lab.tinyVm({
    name: options.name,
    wires: options.ports.map((p) => p.wire),
    cmdline: ["lab.after=wait"],
    files: {
      "lab/run.sh": readFileSync(path.join(repoRoot, "test/lab/guest/switch.sh"), "utf8"),
      "lab/env": `PORTS="${options.ports.map((p, i) => `eth${i}:${p.port}`).join(" ")}"\n`,
      "lab/vlans": `${lines.join("\n")}\n`,
    },
  });
}
