import path from "node:path";
import type { FileserverView } from "@pifleet/core";
import type { Layout } from "./layout.js";
import type { RootObservation } from "./observe/roots.js";
import type { Observed } from "./observe/observe.js";
import type { Step } from "./reconcile/steps.js";
import { sharedContentSteps } from "./content/shared.js";
import { contentSteps } from "./content/steps.js";
import { buildIdentitySteps } from "./identity/steps.js";
import { buildPiAgentSteps } from "./pi-agent/steps.js";
import { PathError } from "./safety.js";

/**
 * Root filesystem life cycle, all inside the export root so every swap is a rename(2):
 *   .<addr>.building  a copy in progress (never trusted; deleted on the next attempt)
 *   .<addr>.new       a complete fresh root (the copy finished)
 *   <addr>            what the Pi mounts
 *   .<addr>.prev      the root before the last rebuild, for rollback
 * A crash leaves either the old root in place, or `.new` complete with the root absent —
 * which `apply` finishes by renaming `.new` into place.
 */

/** A fresh fileserver has no export root yet. */
export function exportRootSteps(layout: Layout, obs: Observed): Step[] {
  if (obs.exportRootExists) return [];
  return [{ op: "mkdir", path: layout.exportRoot, within: layout.prefix || "/", parents: true }];
}

/**
 * Steps that build a complete fresh root at `.new`: golden image copy, then the site — the
 * current version copied in, or (shared content) the mount of the one read-only copy — then the
 * Pi's identity (hostname, hosts, public interface), so no Pi boots as the golden image, and
 * (with a `piAgent:` section) the agent's config and secret, so a rebuilt root still reports.
 */
function buildSteps(view: FileserverView, layout: Layout, root: RootObservation, obs: Observed): Step[] {
  if (!obs.golden.ok || !obs.golden.real) throw new PathError(layout.golden, obs.golden.problem ?? "golden image unusable");
  const p = root.paths;
  const within = layout.exportRoot;
  const steps: Step[] = [];
  if (root.hasBuilding) steps.push({ op: "remove", path: p.building, within });
  if (root.hasNext) steps.push({ op: "remove", path: p.next, within });
  steps.push({ op: "copy", from: obs.golden.real, to: p.building, within });
  if (view.fileserver.content === "shared") {
    if (obs.golden.content) steps.push(...sharedContentSteps(view, root.pi, p.building, obs.golden.content));
  } else if (obs.store.current && obs.golden.content) {
    steps.push(...contentSteps(p.building, obs.golden.content, obs.store.current, path.join(layout.contentStore, obs.store.current)));
  }
  if (!obs.golden.hosts) throw new PathError(layout.golden, "golden image not observed");
  steps.push(...buildIdentitySteps(p.building, root.pi, obs.golden.hosts));
  steps.push(...buildPiAgentSteps(view, p.building, root.pi, root.piAgent?.source, obs.golden.agentOwner));
  steps.push({ op: "rename", from: p.building, to: p.next, within });
  return steps;
}

function refuseSymlink(root: RootObservation): void {
  if (root.state === "symlink") {
    throw new PathError(root.paths.root, `is a symlink (to ${root.linkTarget}); pifleet refuses to follow a symlinked root — move it away by hand`);
  }
  if (root.state === "not-a-directory") throw new PathError(root.paths.root, "is not a directory; pifleet leaves it for a person");
}

/** A missing root: build it, then rename it into place. */
export function createRootSteps(view: FileserverView, layout: Layout, root: RootObservation, obs: Observed): Step[] {
  refuseSymlink(root);
  if (root.state !== "absent") throw new Error(`${root.paths.root} exists`);
  return [...buildSteps(view, layout, root, obs), { op: "rename", from: root.paths.next, to: root.paths.root, within: layout.exportRoot }];
}

/** The root is gone but a complete `.new` waits: a swap was interrupted between its two renames. */
export function finishSwapSteps(layout: Layout, root: RootObservation): Step[] {
  return [{ op: "rename", from: root.paths.next, to: root.paths.root, within: layout.exportRoot }];
}

/**
 * A fresh root beside the old one, then the swap: old → `.prev`, new → root. The older `.prev`
 * is renamed out of the way first and deleted last, so the gap without a root is two renames.
 */
export function rebuildSteps(view: FileserverView, layout: Layout, root: RootObservation, obs: Observed, nfsLive: boolean): Step[] {
  refuseSymlink(root);
  if (root.state === "absent") return createRootSteps(view, layout, root, obs);
  const p = root.paths;
  const within = layout.exportRoot;
  const steps = buildSteps(view, layout, root, obs);
  if (root.hasTrash) steps.push({ op: "remove", path: p.trash, within });
  if (root.hasPrevious) steps.push({ op: "rename", from: p.prev, to: p.trash, within });
  steps.push({ op: "rename", from: p.root, to: p.prev, within });
  steps.push({ op: "rename", from: p.next, to: p.root, within });
  if (root.hasPrevious) steps.push({ op: "remove", path: p.trash, within });
  // The kernel's export cache holds the old directory; flush it so the Pi mounts the new one.
  if (nfsLive) steps.push({ op: "exec", cmd: "exportfs", args: ["-f"] });
  return steps;
}

/** The root and `.prev` trade places, so a second rollback undoes the first. */
export function rollbackSteps(layout: Layout, root: RootObservation, nfsLive: boolean): Step[] {
  refuseSymlink(root);
  if (!root.hasPrevious) throw new PathError(root.paths.prev, `no previous root for ${root.pi.name} to roll back to`);
  const p = root.paths;
  const within = layout.exportRoot;
  const steps: Step[] = [];
  if (root.state === "absent") {
    steps.push({ op: "rename", from: p.prev, to: p.root, within });
  } else {
    if (root.hasSwap) throw new PathError(p.swap, "exists: an earlier rollback was interrupted; check it by hand");
    steps.push({ op: "rename", from: p.root, to: p.swap, within });
    steps.push({ op: "rename", from: p.prev, to: p.root, within });
    steps.push({ op: "rename", from: p.swap, to: p.prev, within });
  }
  if (nfsLive) steps.push({ op: "exec", cmd: "exportfs", args: ["-f"] });
  return steps;
}
