import { realpath } from "node:fs/promises";
import path from "node:path";
import type { PiPlan } from "@pifleet/core";
import { readInside, readInsideWithStat, type InsideFile } from "../inside.js";
import { PathError } from "../safety.js";
import { agentOwner, AGENT_CONFIG, AGENT_SECRET, GROUP, PASSWD, secretFileName, type AgentOwner } from "./files.js";

/** One of the agent's files in a root as found: its text, mode and owner (null: missing), or why it cannot be used. */
export interface AgentFile {
  rel: string;
  path: string;
  current: InsideFile | null;
  problem?: string;
}

/** The Pi's secret in the fileserver's secrets folder: its text, or why there is none. */
export interface SecretSource {
  path: string;
  text?: string;
  /** Its permission bits: anything beyond 0600 lets others on the fileserver read the Pi's key. */
  mode?: number;
  problem?: string;
}

export interface PiAgentObservation {
  source: SecretSource;
  /** The config and secret in the root (empty when the root is absent). */
  files: AgentFile[];
  /** Who should own the secret, from the root's own passwd and group (absent root: undefined). */
  owner?: AgentOwner;
}

async function observeFile(root: string, rel: string): Promise<AgentFile> {
  const file = path.join(root, rel);
  try {
    return { rel, path: file, current: await readInsideWithStat(root, rel) };
  } catch (err) {
    if (!(err instanceof PathError)) throw err;
    return { rel, path: file, current: null, problem: err.message };
  }
}

/** The agent user of a root (or of the golden image every built root starts as), read the safe way. */
export async function observeAgentOwner(root: string): Promise<AgentOwner> {
  try {
    const [passwd, group] = await Promise.all([readInside(root, PASSWD), readInside(root, GROUP)]);
    return agentOwner(passwd, group);
  } catch (err) {
    if (!(err instanceof PathError)) throw err;
    return { ...agentOwner(null, null), note: `${err.message}; the secret is left root:root` };
  }
}

/**
 * `<secrets>/<pi>.secret` on the fileserver. The folder is the fileserver's own (no Pi can write
 * it), so a symlinked folder is followed once (realpath); the file itself is read like a root's
 * files: no symlink, regular, bounded.
 */
export async function observeSecretSource(secrets: string, pi: PiPlan): Promise<SecretSource> {
  const name = secretFileName(pi);
  const file = path.join(secrets, name);
  let dir: string;
  try {
    dir = await realpath(secrets);
  } catch (err) {
    return { path: file, problem: `${file} missing: the secrets folder ${secrets} ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "does not exist" : `cannot be read (${(err as NodeJS.ErrnoException).code})`}` };
  }
  try {
    const found = await readInsideWithStat(dir, name, file);
    if (found === null) return { path: file, problem: `${file} missing` };
    if (found.text.trim() === "") return { path: file, problem: `${file} is empty` };
    return { path: file, text: found.text, mode: found.mode };
  } catch (err) {
    if (err instanceof PathError) return { path: file, problem: err.message };
    return { path: file, problem: `${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` };
  }
}

/** What the Pi agent's part of a root looks like: the secret waiting on the fileserver, and (present root) its files and agent user. */
export async function observePiAgent(secrets: string, root: string | undefined, pi: PiPlan): Promise<PiAgentObservation> {
  if (root === undefined) return { source: await observeSecretSource(secrets, pi), files: [] };
  const [source, owner, ...files] = await Promise.all([observeSecretSource(secrets, pi), observeAgentOwner(root), ...[AGENT_CONFIG, AGENT_SECRET].map((rel) => observeFile(root, rel))]);
  return { source, files, owner };
}
