import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { renderFileserverNetworkd, type FileserverView } from "@pifleet/core";
import type { Layout } from "../layout.js";
import type { DriftEntry } from "../reconcile/drift.js";
import type { PersistDriver } from "./driver.js";

/** Every file core's renderer names is `NN-pifleet-…`; nothing else in the directory is ours. */
const OURS = /^\d+-pifleet-.+\.(netdev|network)$/;

async function list(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}

/** Does a `[Match] Name=` list (space-separated shell globs) match this interface? */
function matchesName(patterns: string, name: string): boolean {
  return patterns
    .split(/\s+/)
    .filter(Boolean)
    .some((p) => new RegExp(`^${p.replace(/[.+^${}()|\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`).test(name));
}

/** A .netdev/.network pair per VLAN in `/etc/systemd/network`, plus the trunk's VLAN= list. */
export const networkdDriver: PersistDriver = {
  name: "networkd",

  desired(plan: FileserverView, layout: Layout) {
    const files = new Map<string, string>();
    for (const [name, text] of renderFileserverNetworkd(plan)) files.set(path.join(layout.networkdDir, path.basename(name)), text);
    return files;
  },

  within(layout: Layout) {
    return layout.networkdDir;
  },

  async owned(layout: Layout) {
    return (await list(layout.networkdDir)).filter((f) => OURS.test(f)).map((f) => path.join(layout.networkdDir, f));
  },

  async configured(layout: Layout) {
    return (await list(layout.networkdDir))
      .map((f) => /^\d+-pifleet-(.+)\.netdev$/.exec(f)?.[1])
      .filter((n): n is string => n !== undefined);
  },

  /**
   * networkd applies only the first .network file (by name) that matches a link. If another
   * file also matches the trunk, either pifleet's VLAN= lines are ignored or that file's own
   * settings (its DHCP, its addresses) are: both need a person.
   */
  async check(plan: FileserverView, layout: Layout): Promise<DriftEntry[]> {
    const out: DriftEntry[] = [];
    for (const f of await list(layout.networkdDir)) {
      if (!f.endsWith(".network") || OURS.test(f)) continue;
      const text = await readFile(path.join(layout.networkdDir, f), "utf8").catch(() => "");
      const names = [...text.matchAll(/^\s*Name\s*=\s*(.+)$/gm)].map((m) => m[1].trim());
      const trunk = plan.fileserver.trunkInterfaces.find((t) => names.some((n) => matchesName(n, t)));
      if (trunk === undefined) continue;
      out.push({
        kind: "persist",
        subject: path.join(layout.networkdDir, f),
        detail: `also matches ${trunk}; networkd uses only the first matching .network file, so either this file or pifleet's VLAN= list is ignored (move VLAN= into a drop-in of this file)`,
      });
    }
    return out;
  },
};
