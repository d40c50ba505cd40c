import path from "node:path";
import type { FileserverView, PiPlan } from "@pifleet/core";
import { checkAbsolute, checkPiAddress } from "./safety.js";

/**
 * Where everything lives on the fileserver, as host paths. With a root prefix (a sandbox
 * folder for the demo and tests) every path is taken below it, as if the prefix were `/`.
 */
export interface Layout {
  /** "" on a real fileserver. */
  prefix: string;
  exportRoot: string;
  golden: string;
  exportsDir: string;
  /** pifleet's own exports file; nothing else under exports.d is ever written. */
  exportsFile: string;
  networkInterfaces: string;
  interfacesFile: string;
  networkdDir: string;
  /** State of the sandbox's emulated kernel (ip links, exports). */
  emulatorState: string;
  /** Master copies of site content: `<exportRoot>/.pifleet/content/<version>` plus `current`; the shared export in `shared` mode. */
  contentStore: string;
  /** The Pi agent's secrets folder (`piAgent.secrets`), when the fleet file has a `piAgent:` section. */
  piSecrets?: string;
}

export const EXPORTS_FILE_NAME = "pifleet.exports";
export const INTERFACES_FILE_NAME = "pifleet";

export function createLayout(plan: FileserverView, prefix = ""): Layout {
  const pre = prefix === "" ? "" : checkAbsolute(prefix, "root prefix");
  const under = (p: string) => (pre === "" || pre === "/" ? p : path.join(pre, p));
  const exportRoot = under(checkAbsolute(plan.fileserver.exportRoot, "fileserver.exportRoot"));
  if (plan.fileserver.exportRoot === "/") throw new Error("fileserver.exportRoot: / cannot be the export root");
  return {
    prefix: pre === "/" ? "" : pre,
    exportRoot,
    golden: under(checkAbsolute(plan.fileserver.goldenImage, "fileserver.goldenImage")),
    exportsDir: under("/etc/exports.d"),
    exportsFile: under(`/etc/exports.d/${EXPORTS_FILE_NAME}`),
    networkInterfaces: under("/etc/network/interfaces"),
    interfacesFile: under(`/etc/network/interfaces.d/${INTERFACES_FILE_NAME}`),
    networkdDir: under("/etc/systemd/network"),
    emulatorState: under("/var/lib/pifleet/emulated-host.json"),
    contentStore: under(checkAbsolute(plan.fileserver.contentExport, "fileserver.contentExport")),
    ...(plan.piAgent ? { piSecrets: under(checkAbsolute(plan.piAgent.secrets, "piAgent.secrets")) } : {}),
  };
}

/** The paths of one Pi's root and its siblings, all directly in the export root (so rename(2) is atomic). */
export interface RootPaths {
  pi: string;
  address: string;
  /** What the Pi mounts. */
  root: string;
  /** A copy in progress; never trusted. */
  building: string;
  /** A complete fresh root waiting to be swapped in. */
  next: string;
  /** The root before the last rebuild: what `rollback` restores. */
  prev: string;
  /** The `prev` being replaced, deleted after the swap. */
  trash: string;
  /** Rollback's temporary name for the current root while the two trade places. */
  swap: string;
}

export function rootPaths(layout: Layout, pi: PiPlan): RootPaths {
  const a = checkPiAddress(pi.piAddress);
  const at = (name: string) => path.join(layout.exportRoot, name);
  return {
    pi: pi.name,
    address: a,
    root: at(a),
    building: at(`.${a}.building`),
    next: at(`.${a}.new`),
    prev: at(`.${a}.prev`),
    trash: at(`.${a}.trash`),
    swap: at(`.${a}.swap`),
  };
}

/** Finds a Pi by name or by its private address. */
export function findPi(plan: FileserverView, which: string): PiPlan | undefined {
  return plan.pis.find((p) => p.name === which || p.piAddress === which);
}
