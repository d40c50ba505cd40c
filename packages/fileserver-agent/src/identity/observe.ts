import path from "node:path";
import type { PiPlan } from "@pifleet/core";
import { PathError } from "../safety.js";
import { readInside } from "../inside.js";
import { HOSTS, identityPaths } from "./files.js";

/** One identity file as found in a root: its text (null: missing), or why it cannot be used. */
export interface IdentityFile {
  rel: string;
  path: string;
  current: string | null;
  /** Set when the file or the way to it is unsafe (a symlink out of the root, not a regular file). */
  problem?: string;
}

export type IdentityObservation = IdentityFile[];

/** Reads one file of a root the safe way; a path problem is recorded, not thrown. */
export async function observeIdentityFile(root: string, rel: string): Promise<IdentityFile> {
  const file = path.join(root, rel);
  try {
    return { rel, path: file, current: await readInside(root, rel) };
  } catch (err) {
    if (!(err instanceof PathError)) throw err;
    return { rel, path: file, current: null, problem: err.message };
  }
}

/** A Pi root's identity files, read without following anything out of the root. */
export function observeIdentity(root: string, pi: PiPlan): Promise<IdentityObservation> {
  return Promise.all(identityPaths(pi).map((rel) => observeIdentityFile(root, rel)));
}

/** The golden image's /etc/hosts: what every freshly built root starts from. */
export function observeGoldenHosts(golden: string): Promise<IdentityFile> {
  return observeIdentityFile(golden, HOSTS);
}
