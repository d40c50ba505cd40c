import path from "node:path";
import { renderFileserverInterfaces, type FileserverView } from "@pifleet/core";
import type { Layout } from "../layout.js";
import type { DriftEntry } from "../reconcile/drift.js";
import type { PersistDriver } from "./driver.js";
import { readOrNull } from "../read-or-null.js";


/** The seed's form: one stanza per VLAN in `/etc/network/interfaces.d/pifleet`. */
export const ifupdownDriver: PersistDriver = {
  name: "ifupdown",

  desired(plan: FileserverView, layout: Layout) {
    return new Map([[layout.interfacesFile, renderFileserverInterfaces(plan)]]);
  },

  within(layout: Layout) {
    return path.dirname(layout.interfacesFile);
  },

  async owned(layout: Layout) {
    return (await readOrNull(layout.interfacesFile)) === null ? [] : [layout.interfacesFile];
  },

  async configured(layout: Layout) {
    const text = await readOrNull(layout.interfacesFile);
    if (text === null) return [];
    return [...text.matchAll(/^\s*iface\s+(\S+)/gm)].map((m) => m[1]);
  },

  async check(_plan: FileserverView, layout: Layout): Promise<DriftEntry[]> {
    // Debian's default /etc/network/interfaces sources interfaces.d; a hand-written one may not.
    const main = await readOrNull(layout.networkInterfaces);
    if (main === null) return [];
    const sources = main
      .split("\n")
      .map((l) => l.trim())
      .some((l) => /^source\s+(\/etc\/network\/)?interfaces\.d\/\*/.test(l) || /^source-directory\s+(\/etc\/network\/)?interfaces\.d\/?$/.test(l));
    if (sources) return [];
    return [
      {
        kind: "persist",
        subject: layout.networkInterfaces,
        detail: `does not source interfaces.d (add "source /etc/network/interfaces.d/*"): the VLAN interfaces would not come back after a reboot`,
      },
    ];
  },
};
