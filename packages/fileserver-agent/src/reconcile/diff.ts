import path from "node:path";
import { renderExports, type FileserverView } from "@pifleet/core";
import type { Layout } from "../layout.js";
import type { Observed } from "../observe/observe.js";
import { isWideClient } from "../observe/exportfs.js";
import type { LiveLink } from "../observe/iproute.js";
import { contentSteps } from "../content/steps.js";
import { createRootSteps, exportRootSteps, finishSwapSteps } from "../rootfs.js";
import { isInside, PathError } from "../safety.js";
import type { Action, Diff, DriftEntry } from "./drift.js";
import type { Step } from "./steps.js";
import { diffNetboot } from "../netboot/diff.js";
import { identityDiff } from "../identity/steps.js";
import { piAgentDiff } from "../pi-agent/steps.js";
import type { RootObservation } from "../observe/roots.js";

/** Set as the link's alias on every VLAN interface pifleet creates: its mark of ownership in the live state. */
export function ownerMark(plan: FileserverView): string {
  return `pifleet:${plan.fleet}`;
}

function isLinkLocal(a: { family: string; local: string; scope: string }): boolean {
  return a.scope === "link" || a.scope === "host" || a.local.toLowerCase().startsWith("fe80:");
}

function diffInterfaces(plan: FileserverView, obs: Observed, links: LiveLink[], drift: DriftEntry[], actions: Action[]): void {
  const trunks = new Set(plan.fileserver.trunkInterfaces);
  const mark = ownerMark(plan);
  const byName = new Map(links.map((l) => [l.name, l]));
  const planned = new Set(plan.fileserver.interfaces.map((i) => i.name));
  for (const trunk of trunks) {
    const link = byName.get(trunk);
    if (!link) {
      drift.push({ kind: "interface", subject: trunk, detail: "trunk interface missing: no VLAN can be created on it" });
    } else if (!link.up) {
      // The kernel refuses to bring a VLAN up on a lower device that is down (ENETDOWN).
      drift.push({ kind: "interface", subject: trunk, detail: "trunk interface down: its VLANs cannot come up" });
      actions.push({ kind: "interface", subject: trunk, why: "bring the trunk up before its VLANs", steps: [{ op: "exec", cmd: "ip", args: ["link", "set", trunk, "up"] }] });
    }
  }

  for (const i of plan.fileserver.interfaces) {
    const trunk = i.parent;
    const trunkLink = byName.get(trunk);
    const link = byName.get(i.name);
    const cidr = `${i.address}/${i.prefixLength}`;
    if (!link) {
      drift.push({ kind: "interface", subject: i.name, detail: `missing (VLAN ${i.vlan} on ${trunk}, ${cidr}, for ${i.pi})` });
      if (!trunkLink) continue;
      const holder = links.find((l) => l.kind === "vlan" && l.parent === trunk && l.vlanId === i.vlan);
      if (holder) {
        drift.push({ kind: "interface", subject: holder.name, detail: `holds VLAN ${i.vlan} on ${trunk}, so ${i.name} cannot be created; left alone` });
        continue;
      }
      actions.push({
        kind: "interface",
        subject: i.name,
        why: `create VLAN ${i.vlan} for ${i.pi}`,
        steps: [
          { op: "exec", cmd: "ip", args: ["link", "add", "link", trunk, "name", i.name, "type", "vlan", "id", String(i.vlan)] },
          { op: "exec", cmd: "ip", args: ["link", "set", i.name, "alias", mark] },
          { op: "exec", cmd: "ip", args: ["addr", "add", cidr, "dev", i.name] },
          { op: "exec", cmd: "ip", args: ["link", "set", i.name, "up"] },
        ],
      });
      continue;
    }
    if (link.kind !== "vlan" || link.vlanId !== i.vlan || link.parent !== trunk) {
      const what = link.kind === "vlan" ? `VLAN ${link.vlanId ?? "?"} on ${link.parent ?? "?"}` : link.kind || "a plain device";
      drift.push({ kind: "interface", subject: i.name, detail: `exists as ${what}, not VLAN ${i.vlan} on ${trunk}; left alone (delete it by hand)` });
      continue;
    }
    const steps: Step[] = [];
    if (link.alias !== mark) {
      // Links brought up at boot from pifleet's own persistent files carry no alias (neither
      // ifupdown nor a .netdev sets one): they are pifleet's already, so the mark is put back
      // without calling it drift — a fileserver fresh from a reboot is as the plan wants it.
      if (!obs.persist.configured.has(i.name)) drift.push({ kind: "interface", subject: i.name, detail: `not marked as pifleet's (alias "${link.alias ?? ""}")` });
      steps.push({ op: "exec", cmd: "ip", args: ["link", "set", i.name, "alias", mark] });
    }
    const v4 = link.addresses.filter((a) => !isLinkLocal(a));
    if (!v4.some((a) => a.family === "inet" && a.local === i.address && a.prefixlen === i.prefixLength)) {
      drift.push({ kind: "address", subject: i.name, detail: `missing ${cidr}` });
      steps.push({ op: "exec", cmd: "ip", args: ["addr", "add", cidr, "dev", i.name] });
    }
    for (const a of v4) {
      if (a.family === "inet" && a.local === i.address && a.prefixlen === i.prefixLength) continue;
      drift.push({ kind: "address", subject: i.name, detail: `unexpected ${a.local}/${a.prefixlen}; left alone` });
    }
    if (!link.up) {
      drift.push({ kind: "interface", subject: i.name, detail: "down" });
      steps.push({ op: "exec", cmd: "ip", args: ["link", "set", i.name, "up"] });
    }
    if (steps.length) actions.push({ kind: "interface", subject: i.name, why: `repair ${i.name} for ${i.pi}`, steps });
  }

  for (const link of links) {
    if (planned.has(link.name) || link.kind !== "vlan" || link.parent === undefined || !trunks.has(link.parent)) continue;
    const ours = link.alias === mark || obs.persist.configured.has(link.name);
    if (ours) {
      drift.push({ kind: "interface", subject: link.name, detail: `VLAN ${link.vlanId} is no longer in the plan; pifleet created it, so it is removed` });
      actions.push({ kind: "interface", subject: link.name, why: "remove a VLAN pifleet created that the plan dropped", steps: [{ op: "exec", cmd: "ip", args: ["link", "del", link.name] }] });
    } else {
      drift.push({ kind: "interface", subject: link.name, detail: `VLAN ${link.vlanId} on ${link.parent} is not in the plan; left alone (pifleet did not create it)` });
    }
  }
}

function diffPersist(obs: Observed, plan: FileserverView, layout: Layout, drift: DriftEntry[], actions: Action[]): void {
  const driver = obs.persist.driver;
  const within = driver.within(layout);
  for (const [file, content] of driver.desired(plan, layout)) {
    const current = obs.persist.files.get(file);
    if (current === content) continue;
    drift.push({ kind: "persist", subject: file, detail: current === null || current === undefined ? "missing" : "differs from the plan" });
    actions.push({ kind: "persist", subject: file, why: `${driver.name}: VLANs come back after a reboot`, steps: [{ op: "write", path: file, content, within }] });
  }
  for (const file of obs.persist.stale) {
    drift.push({ kind: "persist", subject: file, detail: "pifleet's file, no longer wanted (plan or network driver changed)" });
    actions.push({ kind: "persist", subject: file, why: "remove a stale pifleet file", steps: [{ op: "remove", path: file, within: path.dirname(file) }] });
  }
  drift.push(...obs.persist.checks);
}

/**
 * A present root's hostname, hosts and public interface, written where they differ from the
 * plan. These are the only files pifleet writes into a root its Pi may be running from in every
 * content mode: small, each replaced by one rename, read by the Pi at its next boot.
 */
function diffIdentity(r: RootObservation, drift: DriftEntry[], actions: Action[]): void {
  const subject = r.pi.name;
  const d = identityDiff(r.paths.root, r.pi, r.identity);
  for (const problem of d.refused) drift.push({ kind: "identity", subject, detail: `${problem}; refused` });
  for (const what of d.differs) drift.push({ kind: "identity", subject, detail: what });
  if (d.steps.length) {
    actions.push({ kind: "identity", subject, why: `make ${subject}'s root carry its own hostname and public interface (${r.pi.publicInterface}); read at its next boot`, steps: d.steps });
  }
}

/**
 * A present root's Pi agent config and secret, written where content, mode or owner differ; like
 * the identity files, through directory handles that follow no symlink. The agent reads them when
 * it next starts (the Pi's next boot, or a restart of its unit).
 */
function diffPiAgent(plan: FileserverView, r: RootObservation, drift: DriftEntry[], actions: Action[]): void {
  if (!r.piAgent) return;
  const subject = r.pi.name;
  const d = piAgentDiff(plan, r.paths.root, r.pi, r.piAgent);
  for (const problem of d.refused) drift.push({ kind: "agent", subject, detail: `${problem}; refused` });
  for (const what of d.differs) drift.push({ kind: "agent", subject, detail: what });
  if (d.steps.length) actions.push({ kind: "agent", subject, why: `give ${subject}'s root its Pi agent config and secret; read when the agent next starts`, steps: d.steps });
}

function diffRoots(plan: FileserverView, layout: Layout, obs: Observed, drift: DriftEntry[], actions: Action[]): void {
  const current = obs.store.current;
  const shared = plan.fileserver.content === "shared";
  const mkdir = exportRootSteps(layout, obs);
  if (mkdir.length) {
    drift.push({ kind: "root", subject: layout.exportRoot, detail: "export root missing" });
    actions.push({ kind: "root", subject: layout.exportRoot, why: "create the export root", steps: mkdir });
  }
  for (const r of obs.roots) {
    const subject = r.pi.name;
    try {
      if (r.state === "symlink" || r.state === "not-a-directory") {
        drift.push({ kind: "root", subject, detail: `${r.paths.root} ${r.state === "symlink" ? `is a symlink (to ${r.linkTarget})` : "is not a directory"}; refused, left for a person` });
        continue;
      }
      if (r.state === "absent") {
        if (r.hasSwap) {
          drift.push({ kind: "root", subject, detail: `${r.paths.root} missing and ${r.paths.swap} exists (an interrupted rollback); left for a person` });
        } else if (r.hasNext) {
          drift.push({ kind: "root", subject, detail: `${r.paths.root} missing; a complete ${r.paths.next} waits (an interrupted swap)` });
          actions.push({ kind: "root", subject, why: "finish an interrupted swap", steps: finishSwapSteps(layout, r) });
        } else if (!obs.golden.ok) {
          drift.push({ kind: "root", subject, detail: `${r.paths.root} missing, and ${obs.golden.problem}` });
        } else {
          drift.push({ kind: "root", subject, detail: `${r.paths.root} missing` });
          actions.push({ kind: "root", subject, why: `create ${subject}'s root from the golden image${shared ? " with the shared site mounted" : current ? ` with site ${current}` : ""}`, steps: createRootSteps(plan, layout, r, obs) });
        }
        continue;
      }
      diffIdentity(r, drift, actions);
      diffPiAgent(plan, r, drift, actions);
      if (shared) {
        // No site content is written into a running Pi's root (the Pi could swap a directory for a symlink under
        // the agent's feet): a root that does not mount the shared site is moved by a rebuild.
        if (r.content.html !== "shared") {
          drift.push({ kind: "content", subject, detail: `serves ${r.content.version ? `its own copy of site ${r.content.version}` : "its own var/www/html"}, not the shared content export; rebuild ${subject}'s root to move it (pifleet writes no site content into a running Pi's root)` });
        }
        continue;
      }
      if (current && r.content.version !== current) {
        if (r.content.problem) {
          drift.push({ kind: "content", subject, detail: `${r.content.problem}; refused` });
          continue;
        }
        drift.push({ kind: "content", subject, detail: `serves ${r.content.version || "no pifleet site"}, current is ${current}` });
        actions.push({ kind: "content", subject, why: `switch ${subject} to site ${current}`, steps: contentSteps(r.paths.root, r.content, current, path.join(layout.contentStore, current)) });
      }
    } catch (err) {
      if (!(err instanceof PathError)) throw err;
      drift.push({ kind: r.state === "present" ? "content" : "root", subject, detail: `${err.message}; refused` });
    }
  }
}

function diffExports(plan: FileserverView, layout: Layout, obs: Observed, drift: DriftEntry[], actions: Action[]): void {
  const desired = renderExports(plan);
  const fileChanged = obs.exportsFile !== desired;
  const shared = plan.fileserver.content === "shared";
  const steps: Step[] = [];
  // exportfs cannot export a directory that does not exist yet: the store before the first sync.
  if (shared && !obs.store.exists) steps.push({ op: "mkdir", path: layout.contentStore, within: layout.exportRoot, parents: true });
  if (fileChanged) {
    drift.push({ kind: "export", subject: layout.exportsFile, detail: obs.exportsFile === null ? "missing" : "differs from the plan" });
    steps.push({ op: "write", path: layout.exportsFile, content: desired, within: layout.exportsDir });
  }
  let liveMissing = false;
  if (obs.exports) {
    // exportfs lists fileserver paths (in a sandbox, as if chrooted into it): compare those.
    const pairs = plan.pis.map((p) => ({ at: p.nfsRoot, client: p.piAddress }));
    if (shared) pairs.push(...plan.pis.map((p) => ({ at: plan.fileserver.contentExport, client: p.piAddress })));
    const wanted = new Set(pairs.map((p) => `${p.at}\0${p.client}`));
    for (const { at, client } of pairs) {
      if (!obs.exports.some((e) => e.path === at && e.client === client)) {
        liveMissing = true;
        drift.push({ kind: "export", subject: at, detail: `not exported to ${client}` });
      }
    }
    for (const e of obs.exports) {
      if (!isInside(plan.fileserver.exportRoot, e.path) || wanted.has(`${e.path}\0${e.client}`)) continue;
      const wide = isWideClient(e.client) ? ` — ${e.client} is wider than one Pi: others could mount this root` : "";
      drift.push({ kind: "foreign_export", subject: e.path, detail: `exported to ${e.client} by something other than pifleet; left alone${wide}` });
    }
  }
  // exportfs -ra re-reads every exports file; run it only when ours changed or the live table lacks ours.
  if (obs.live.nfs !== "off" && (fileChanged || liveMissing)) {
    steps.push({ op: "exec", cmd: "exportfs", args: ["-ra"] });
  }
  if (steps.length) actions.push({ kind: "export", subject: layout.exportsFile, why: "export each root to its Pi only", steps });
}

/** Observed state → what differs from the plan, and the actions that make `apply` converge. */
export function diffApply(plan: FileserverView, layout: Layout, obs: Observed): Diff {
  const drift: DriftEntry[] = [];
  const actions: Action[] = [];
  if (obs.links) diffInterfaces(plan, obs, obs.links, drift, actions);
  diffPersist(obs, plan, layout, drift, actions);
  if (obs.exportRootProblem) {
    drift.push({ kind: "root", subject: layout.exportRoot, detail: `${obs.exportRootProblem}; nothing under it is touched` });
    return { drift, actions };
  }
  diffRoots(plan, layout, obs, drift, actions);
  diffExports(plan, layout, obs, drift, actions);
  if (obs.netboot) diffNetboot(plan, layout, obs.live, obs.netboot, drift, actions);
  return { drift, actions };
}
