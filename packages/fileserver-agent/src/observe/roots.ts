import { lstat, readlink, realpath, stat } from "node:fs/promises";
import type { PiPlan } from "@pifleet/core";
import { rootPaths, type Layout, type RootPaths } from "../layout.js";
import { observeContent, type ContentObservation } from "../content/observe.js";
import { observeGoldenHosts, observeIdentity, type IdentityFile, type IdentityObservation } from "../identity/observe.js";
import { observeAgentOwner, observePiAgent, type PiAgentObservation } from "../pi-agent/observe.js";
import type { AgentOwner } from "../pi-agent/files.js";

export interface RootObservation {
  pi: PiPlan;
  paths: RootPaths;
  state: "present" | "absent" | "symlink" | "not-a-directory";
  /** For a symlink: where it points (never followed). */
  linkTarget?: string;
  hasPrevious: boolean;
  /** A complete fresh root left by an interrupted swap. */
  hasNext: boolean;
  hasBuilding: boolean;
  hasTrash: boolean;
  hasSwap: boolean;
  content: ContentObservation;
  /** The Pi's hostname, hosts and public interface files as found (empty unless present). */
  identity: IdentityObservation;
  /** With a `piAgent:` section: the Pi's secret on the fileserver, and the agent's files in the root. */
  piAgent?: PiAgentObservation;
}

async function kind(p: string): Promise<"dir" | "symlink" | "other" | "absent"> {
  try {
    const st = await lstat(p);
    return st.isSymbolicLink() ? "symlink" : st.isDirectory() ? "dir" : "other";
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return "absent";
    throw err;
  }
}

const EMPTY_CONTENT: ContentObservation = { version: "", html: "absent", versions: [], leftovers: [], wwwExists: false, originalSaved: false };

export async function observeRoot(layout: Layout, pi: PiPlan): Promise<RootObservation> {
  const paths = rootPaths(layout, pi);
  const k = await kind(paths.root);
  const obs: RootObservation = {
    pi,
    paths,
    state: k === "dir" ? "present" : k === "symlink" ? "symlink" : k === "absent" ? "absent" : "not-a-directory",
    hasPrevious: (await kind(paths.prev)) === "dir",
    hasNext: (await kind(paths.next)) === "dir",
    hasBuilding: (await kind(paths.building)) !== "absent",
    hasTrash: (await kind(paths.trash)) !== "absent",
    hasSwap: (await kind(paths.swap)) === "dir",
    content: EMPTY_CONTENT,
    identity: [],
  };
  if (k === "symlink") obs.linkTarget = await readlink(paths.root).catch(() => "?");
  if (obs.state === "present") {
    obs.content = await observeContent(paths.root);
    obs.identity = await observeIdentity(paths.root, pi);
  }
  // Observed for absent roots too: a root built now needs the secret.
  if (layout.piSecrets) obs.piAgent = await observePiAgent(layout.piSecrets, obs.state === "present" ? paths.root : undefined, pi);
  return obs;
}

export async function observeGolden(layout: Layout): Promise<{ ok: boolean; problem?: string; content?: ContentObservation; hosts?: IdentityFile; agentOwner?: AgentOwner }> {
  try {
    const st = await stat(layout.golden);
    if (!st.isDirectory()) return { ok: false, problem: `golden image ${layout.golden} is not a directory` };
  } catch (err) {
    return { ok: false, problem: `golden image ${layout.golden}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` };
  }
  // The copy is taken from the golden image's realpath (it may be a symlink to the current image): so is its hosts file.
  const real = await realpath(layout.golden);
  return {
    ok: true,
    content: await observeContent(layout.golden),
    hosts: await observeGoldenHosts(real),
    // A built root is a copy of the image: its secret's owner is the image's agent user.
    ...(layout.piSecrets ? { agentOwner: await observeAgentOwner(real) } : {}),
  };
}
