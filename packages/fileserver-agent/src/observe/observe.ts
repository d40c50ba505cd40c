import { realpath, stat } from "node:fs/promises";
import type { FileserverView } from "@pifleet/core";
import type { Layout } from "../layout.js";
import type { Live } from "../host/live.js";
import type { CommandRunner } from "../runner.js";
import { runChecked } from "../runner.js";
import type { PersistDriver } from "../persist/driver.js";
import { PERSIST_DRIVERS } from "../persist/registry.js";
import type { DriftEntry } from "../reconcile/drift.js";
import { observeStore, type ContentObservation, type StoreObservation } from "../content/observe.js";
import { assertNotSymlink, isInside, PathError, realpathOfExisting } from "../safety.js";
import { parseIpLinks, type LiveLink } from "./iproute.js";
import { parseExportfs, type LiveExport } from "./exportfs.js";
import { observeGolden, observeRoot, type RootObservation } from "./roots.js";
import type { IdentityFile } from "../identity/observe.js";
import type { AgentOwner } from "../pi-agent/files.js";
import { readOrNull } from "../read-or-null.js";
import { netbootedPis } from "@pifleet/core";
import { observeNetboot, under, type NetbootObservation } from "../netboot/observe.js";
import { defaultDnsmasqOptions, type DnsmasqOptions } from "../netboot/options.js";

export interface PersistObservation {
  driver: PersistDriver;
  /** Desired file → its current content (null: missing). */
  files: Map<string, string | null>;
  /** pifleet's files that should not exist: another driver's, or a name the plan dropped. */
  stale: string[];
  /** Interfaces pifleet's existing files configure (any driver). */
  configured: Set<string>;
  checks: DriftEntry[];
}

export interface Observed {
  live: Live;
  /** Undefined when the network is not observed (live=off) or `ip` failed (see errors). */
  links?: LiveLink[];
  exports?: LiveExport[];
  nfsRunning?: boolean;
  exportsFile: string | null;
  persist: PersistObservation;
  roots: RootObservation[];
  store: StoreObservation;
  golden: { ok: boolean; problem?: string; real?: string; content?: ContentObservation; hosts?: IdentityFile; agentOwner?: AgentOwner };
  /** Set when the export root itself cannot be used (a symlink out of the sandbox…): nothing is written. */
  exportRootProblem?: string;
  exportRootExists: boolean;
  /** dnsmasq and the TFTP folders: only when a Pi is netbooted or pifleet's dnsmasq file is still there. */
  netboot?: NetbootObservation;
  errors: string[];
}


export interface ObserveContext {
  plan: FileserverView;
  layout: Layout;
  live: Live;
  runner: CommandRunner;
  driver: PersistDriver;
  dnsmasq?: DnsmasqOptions;
}

/** NFS is up when the kernel server has threads, or (no nfsd view here) systemd says so. */
async function nfsRunning(ctx: ObserveContext): Promise<boolean> {
  if (ctx.live.nfs === "host") {
    const threads = await readOrNull("/proc/fs/nfsd/threads").catch(() => null);
    if (threads !== null && Number(threads.trim()) > 0) return true;
  }
  const r = await ctx.runner.run("systemctl", ["is-active", "nfs-server"]);
  return r.code === 0 && r.stdout.trim() === "active";
}

async function checkExportRoot(layout: Layout): Promise<string | undefined> {
  try {
    if (layout.prefix) {
      const { real, rest } = await realpathOfExisting(layout.exportRoot);
      const resolved = rest ? `${real}/${rest}` : real;
      const prefix = await realpath(layout.prefix);
      if (!isInside(prefix, resolved)) return `export root ${layout.exportRoot} resolves to ${resolved}, outside the root prefix ${layout.prefix}`;
    }
    await assertNotSymlink(layout.contentStore, "content store");
    return undefined;
  } catch (err) {
    if (err instanceof PathError) return err.message;
    throw err;
  }
}

/** Reads everything the diff needs. Read-only: observing never changes the fileserver. */
export async function observe(ctx: ObserveContext): Promise<Observed> {
  const { plan, layout, live, runner, driver } = ctx;
  const errors: string[] = [];

  let links: LiveLink[] | undefined;
  if (live.network !== "off") {
    try {
      const l = await runChecked(runner, "ip", ["-j", "-d", "link", "show"]);
      const a = await runChecked(runner, "ip", ["-j", "addr", "show"]);
      links = parseIpLinks(l.stdout, a.stdout);
    } catch (err) {
      errors.push(`network: ${(err as Error).message}`);
    }
  }

  let exports: LiveExport[] | undefined;
  let nfs: boolean | undefined;
  if (live.nfs !== "off") {
    try {
      exports = parseExportfs((await runChecked(runner, "exportfs", ["-v"])).stdout);
    } catch (err) {
      errors.push(`exports: ${(err as Error).message}`);
    }
    nfs = await nfsRunning(ctx);
  }

  const files = new Map<string, string | null>();
  for (const f of driver.desired(plan, layout).keys()) files.set(f, await readOrNull(f));
  const stale: string[] = [];
  const configured = new Set<string>();
  for (const d of PERSIST_DRIVERS) {
    for (const f of await d.owned(layout)) if (!files.has(f)) stale.push(f);
    for (const name of await d.configured(layout)) configured.add(name);
  }

  const exportRootProblem = await checkExportRoot(layout);
  const golden = await observeGolden(layout);
  const goldenReal = golden.ok ? await realpath(layout.golden) : undefined;
  const roots = exportRootProblem ? [] : await Promise.all(plan.pis.map((pi) => observeRoot(layout, pi)));

  const dnsmasq = ctx.dnsmasq ?? defaultDnsmasqOptions();
  const netboot =
    !exportRootProblem && (netbootedPis(plan).length > 0 || (await readOrNull(under(layout, dnsmasq.confFile))) !== null)
      ? await observeNetboot(plan, layout, runner, dnsmasq)
      : undefined;

  return {
    live,
    netboot,
    links,
    exports,
    nfsRunning: nfs,
    exportsFile: await readOrNull(layout.exportsFile),
    persist: { driver, files, stale, configured, checks: await driver.check(plan, layout) },
    roots,
    store: exportRootProblem ? { exists: false, current: "", previous: "", versions: [], leftovers: [] } : await observeStore(layout.contentStore),
    golden: { ...golden, real: goldenReal },
    exportRootProblem,
    exportRootExists: await stat(layout.exportRoot).then((st) => st.isDirectory(), () => false),
    errors,
  };
}
