import path from "node:path";
import { netbootedPis, renderDnsmasqConf, renderDnsmasqHosts, renderTftpFiles, tftpFallbackRoot, type FileserverView } from "@pifleet/core";
import type { Live } from "../host/live.js";
import type { Layout } from "../layout.js";
import type { Action, DriftEntry } from "../reconcile/drift.js";
import type { Step } from "../reconcile/steps.js";
import { under, type NetbootObservation, type PresentFile, type TftpPiObservation } from "./observe.js";

/** The file `dnsmasq --test` checks before either of the real ones is installed: never in dnsmasq's conf-dir. */
export function checkFileOf(obs: NetbootObservation): string {
  return path.join(path.dirname(obs.hostsFile), "pifleet-dnsmasq.check.conf");
}

/** Whether the agent restarts/reloads dnsmasq itself: on a real host, or when told to. */
export function controlsDnsmasq(obs: NetbootObservation, live: Live): boolean {
  return obs.options.control === "on" || (obs.options.control === "auto" && live.nfs === "host");
}

/** Copies keep the source's mtime, so size and mtime say whether the Pi's root changed the file. */
function sameFile(present: PresentFile | undefined, size: number, mtimeMs: number): boolean {
  return present !== undefined && !present.symlink && present.size === size && Math.abs(present.mtimeMs - mtimeMs) <= 1;
}

function diffPiFolder(o: TftpPiObservation, within: string, drift: DriftEntry[], actions: Action[]): void {
  const subject = o.pi.name;
  for (const problem of o.problems) drift.push({ kind: "tftp", subject, detail: problem });
  const steps: Step[] = [];
  const changed: string[] = [];
  if (!o.dirExists) {
    changed.push(`${o.pi.netboot!.tftpPrefix}/`);
    steps.push({ op: "mkdir", path: o.dir, within, parents: true });
  }
  if (o.bootFiles.some((f) => f.name.startsWith("overlays/")) && ![...o.present.keys()].some((k) => k.startsWith("overlays/"))) {
    steps.push({ op: "mkdir", path: path.join(o.dir, "overlays"), within, parents: true });
  }
  const kernel = o.bootFiles.find((f) => /^(vmlinuz|kernel)/.test(f.name))?.name;
  const initramfs = o.bootFiles.find((f) => /^(initrd\.img|initramfs)/.test(f.name))?.name;
  const written = renderTftpFiles(o.pi, { ...(kernel ? { kernel } : {}), ...(initramfs ? { initramfs } : {}) });
  const wanted = new Set<string>([...written.keys(), ...o.bootFiles.map((f) => f.name)]);
  for (const f of o.bootFiles) {
    if (sameFile(o.present.get(f.name), f.size, f.mtimeMs)) continue;
    changed.push(f.name);
    steps.push({ op: "copyFile", from: f.from, fromWithin: o.rootReal!, to: path.join(o.dir, f.name), within });
  }
  for (const [name, text] of written) {
    if (o.present.get(name)?.text === text && !o.present.get(name)?.symlink) continue;
    changed.push(name);
    steps.push({ op: "write", path: path.join(o.dir, name), content: text, within });
  }
  for (const name of o.present.keys()) {
    if (name.endsWith("/") || wanted.has(name)) continue;
    changed.push(`-${name}`);
    steps.push({ op: "remove", path: path.join(o.dir, name), within });
  }
  // A Pi 3 ROM asks for bootcode.bin at the root before it looks for <serial>/.
  const bootcode = o.pi.netboot!.method === "rpi" ? o.bootFiles.find((f) => f.name === "bootcode.bin") : undefined;
  if (bootcode && !sameFile(o.rootPresent.get("bootcode.bin"), bootcode.size, bootcode.mtimeMs)) {
    changed.push("../bootcode.bin");
    steps.push({ op: "copyFile", from: bootcode.from, fromWithin: o.rootReal!, to: path.join(o.interfaceRoot, "bootcode.bin"), within });
  }
  for (const name of o.rootPresent.keys()) {
    if (name === `${o.pi.netboot!.tftpPrefix}/` || (name === "bootcode.bin" && bootcode)) continue;
    changed.push(`-../${name}`);
    steps.push({ op: "remove", path: path.join(o.interfaceRoot, name.replace(/\/$/, "")), within });
  }
  if (steps.length === 0) return;
  drift.push({ kind: "tftp", subject, detail: `${o.dir}: ${changed.length ? changed.join(", ") : "missing"} differ${changed.length === 1 ? "s" : ""} from the plan and the Pi's root` });
  actions.push({ kind: "tftp", subject, why: `serve ${subject}'s boot files over TFTP from its own root`, steps });
}

/**
 * dnsmasq and the TFTP folders → the plan. TFTP first, so a Pi that gets its lease finds its
 * files; dnsmasq's files are checked by `dnsmasq --test` before they are installed, then the
 * smallest reload that makes them take effect: SIGHUP for reservations, a restart for the rest.
 */
export function diffNetboot(plan: FileserverView, layout: Layout, live: Live, obs: NetbootObservation, drift: DriftEntry[], actions: Action[]): void {
  const within = obs.tftpRoot;
  const base: Step[] = [];
  const fallback = under(layout, tftpFallbackRoot(plan));
  if (obs.pis.length) {
    if (!obs.tftpRootExists) base.push({ op: "mkdir", path: obs.tftpRoot, within: path.dirname(obs.tftpRoot), parents: true });
    if (!obs.fallbackExists) base.push({ op: "mkdir", path: fallback, within, parents: true });
  }
  if (base.length) {
    drift.push({ kind: "tftp", subject: obs.tftpRoot, detail: obs.tftpRootExists ? "fallback folder .none missing" : "TFTP root missing" });
    actions.push({ kind: "tftp", subject: obs.tftpRoot, why: "create the TFTP root and its empty fallback folder", steps: base });
  }
  for (const o of obs.pis) diffPiFolder(o, within, drift, actions);
  for (const stale of obs.staleRoots) {
    drift.push({ kind: "tftp", subject: stale, detail: "in the TFTP root pifleet owns, but no netbooted Pi's VLAN uses it; removed" });
    actions.push({ kind: "tftp", subject: stale, why: "remove a TFTP folder the plan dropped", steps: [{ op: "remove", path: stale, within }] });
  }

  const pis = netbootedPis(plan);
  const conf = pis.length ? renderDnsmasqConf(plan, { confFile: obs.options.confFile, hostsFile: obs.options.hostsFile }) : null;
  const hosts = pis.length ? renderDnsmasqHosts(plan) : null;
  const confChanged = obs.confText !== conf;
  const hostsChanged = obs.hostsText !== hosts;
  if (!confChanged && !hostsChanged) return;
  if (confChanged) drift.push({ kind: "dhcp", subject: obs.confFile, detail: obs.confText === null ? "missing" : conf === null ? "no netbooted Pi left: removed" : "differs from the plan" });
  if (hostsChanged) drift.push({ kind: "dhcp", subject: obs.hostsFile, detail: obs.hostsText === null ? "missing" : hosts === null ? "no netbooted Pi left: removed" : "reservations differ from the plan" });
  if (!obs.dnsmasqInstalled) {
    drift.push({ kind: "dhcp", subject: obs.options.binary, detail: "dnsmasq is not installed (Debian: apt install dnsmasq); its files are not written, as they cannot be checked" });
    return;
  }
  const steps: Step[] = [];
  const confDir = path.dirname(obs.confFile);
  const hostsDir = path.dirname(obs.hostsFile);
  if (conf !== null && hosts !== null) {
    // One file holding both, reservations as dhcp-host= lines: --test parses options, not the hostsfile.
    const check = checkFileOf(obs);
    const hostLines = hosts.split("\n").filter((l) => l && !l.startsWith("#")).map((l) => `dhcp-host=${l}`);
    steps.push(
      { op: "write", path: check, content: `${conf}${hostLines.join("\n")}\n`, within: hostsDir, mode: 0o600 },
      { op: "exec", cmd: obs.options.binary, args: ["--test", `--conf-file=${check}`] },
      { op: "remove", path: check, within: hostsDir },
    );
    // Reservations first: a restart that reads the new conf then finds the hosts file it names.
    if (hostsChanged) steps.push({ op: "write", path: obs.hostsFile, content: hosts, within: hostsDir });
    if (confChanged) steps.push({ op: "write", path: obs.confFile, content: conf, within: confDir });
  } else {
    if (confChanged) steps.push({ op: "remove", path: obs.confFile, within: confDir });
    if (hostsChanged) steps.push({ op: "remove", path: obs.hostsFile, within: hostsDir });
  }
  let why = confChanged ? "DHCP/TFTP options changed: dnsmasq restarted (leases kept in its lease file)" : "reservations changed: dnsmasq re-reads them on SIGHUP, every lease kept";
  if (controlsDnsmasq(obs, live)) {
    const [cmd, ...args] = confChanged ? obs.options.restart : obs.options.reload;
    steps.push({ op: "exec", cmd, args });
  } else {
    why += " — not reloaded here (sandbox or dnsmasq.control off)";
  }
  actions.push({ kind: "dhcp", subject: obs.confFile, why, steps });
}
