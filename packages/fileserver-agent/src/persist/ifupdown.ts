import { access } from "node:fs/promises";
import path from "node:path";
import { renderFileserverInterfaces, type FileserverView } from "@pifleet/core";
import type { Layout } from "../layout.js";
import type { DriftEntry } from "../reconcile/drift.js";
import type { PersistDriver } from "./driver.js";
import { readOrNull } from "../read-or-null.js";

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

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
    const out: DriftEntry[] = [];
    // ifupdown itself knows nothing of 802.1Q: an `iface eth0.10` stanza is turned into a VLAN
    // by the hook Debian's `vlan` package installs. Without it, ifup at boot fails on every
    // one of pifleet's stanzas and the Pis lose their roots after the fileserver's next reboot.
    const hook = path.join(path.dirname(layout.networkInterfaces), "if-pre-up.d", "vlan");
    if (!(await exists(hook))) {
      out.push({ kind: "persist", subject: hook, detail: `missing: install Debian's vlan package (apt install vlan), or ifup cannot create the VLAN interfaces at boot` });
    }
    // Debian's default /etc/network/interfaces sources interfaces.d; a hand-written one may not.
    const main = await readOrNull(layout.networkInterfaces);
    if (main === null) return out;
    const sources = main
      .split("\n")
      .map((l) => l.trim())
      .some((l) => /^source\s+(\/etc\/network\/)?interfaces\.d\/\*/.test(l) || /^source-directory\s+(\/etc\/network\/)?interfaces\.d\/?$/.test(l));
    if (sources) return out;
    out.push({
      kind: "persist",
      subject: layout.networkInterfaces,
      detail: `does not source interfaces.d (add "source /etc/network/interfaces.d/*"): the VLAN interfaces would not come back after a reboot`,
    });
    return out;
  },
};
