import { lstat, readdir, readlink } from "node:fs/promises";
import path from "node:path";
import { PathError, assertResolvesInside } from "../safety.js";
import { SHARED_SITE_MOUNT } from "@pifleet/core";
import { VERSION_RE } from "./hash.js";

/** Inside a Pi root: `var/www/html` is a symlink to `.pifleet-content-<version>` beside it. */
export const WWW = "var/www";
export const CONTENT_PREFIX = ".pifleet-content-";
export const HTML = "html";
export const HTML_TMP = ".html.pifleet-tmp";
/** Where a root's own `html` directory (from the golden image) is kept the first time. */
export const ORIGINAL_HTML = ".pifleet-original-html";
/** In `shared` mode `var/www/html` points here, on the Pi: the current version in the read-only mount. */
export const SHARED_HTML_TARGET = `${SHARED_SITE_MOUNT}/current`;

export interface ContentObservation {
  /** The version `html` points at; "" when it points at none of pifleet's. */
  version: string;
  /**
   * "foreign-symlink": a symlink pifleet did not make (kept aside like a directory); "shared":
   * pifleet's link to the read-only content mount.
   */
  html: "symlink" | "shared" | "foreign-symlink" | "directory" | "absent" | "other";
  /** Complete versions present in `var/www`. */
  versions: string[];
  /** Leftovers of an interrupted copy or switch, safe to delete. */
  leftovers: string[];
  wwwExists: boolean;
  originalSaved: boolean;
  /** Set when `var/www` cannot be used safely (a symlink out of the root, a file). */
  problem?: string;
}

async function lstatOrNull(p: string) {
  try {
    return await lstat(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
}

/** Reads a root's content state without following anything out of the root. */
export async function observeContent(root: string): Promise<ContentObservation> {
  const www = path.join(root, WWW);
  const obs: ContentObservation = { version: "", html: "absent", versions: [], leftovers: [], wwwExists: false, originalSaved: false };
  try {
    await assertResolvesInside(root, path.join(www, HTML), "var/www/html");
  } catch (err) {
    if (!(err instanceof PathError)) throw err;
    obs.problem = err.message;
    return obs;
  }
  const wst = await lstatOrNull(www);
  if (!wst) return obs;
  if (!wst.isDirectory() && !wst.isSymbolicLink()) {
    obs.problem = `${www} is not a directory`;
    return obs;
  }
  obs.wwwExists = true;
  for (const name of (await readdir(www)).sort()) {
    if (name === ORIGINAL_HTML) obs.originalSaved = true;
    else if (name === HTML_TMP) obs.leftovers.push(name);
    else if (name.startsWith(CONTENT_PREFIX)) {
      const v = name.slice(CONTENT_PREFIX.length);
      if (VERSION_RE.test(v)) obs.versions.push(v);
      else obs.leftovers.push(name);
    }
  }
  const hst = await lstatOrNull(path.join(www, HTML));
  if (!hst) obs.html = "absent";
  else if (hst.isSymbolicLink()) {
    const target = await readlink(path.join(www, HTML));
    obs.html = target.startsWith(CONTENT_PREFIX) && !target.includes("/") ? "symlink" : target === SHARED_HTML_TARGET ? "shared" : "foreign-symlink";
    const v = target.startsWith(CONTENT_PREFIX) ? target.slice(CONTENT_PREFIX.length) : "";
    if (VERSION_RE.test(v) && obs.versions.includes(v)) obs.version = v;
  } else if (hst.isDirectory()) obs.html = "directory";
  else obs.html = "other";
  return obs;
}

export interface StoreObservation {
  exists: boolean;
  current: string;
  previous: string;
  versions: string[];
  leftovers: string[];
}

/** The master copies: `<store>/<version>/`, `current` and `previous` symlinks to versions. */
export async function observeStore(store: string): Promise<StoreObservation> {
  const obs: StoreObservation = { exists: false, current: "", previous: "", versions: [], leftovers: [] };
  let names: string[];
  try {
    names = (await readdir(store)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return obs;
    throw err;
  }
  obs.exists = true;
  for (const n of names) {
    if (VERSION_RE.test(n)) obs.versions.push(n);
    else if (n !== "current" && n !== "previous") obs.leftovers.push(n);
  }
  for (const which of ["current", "previous"] as const) {
    const target = await readlink(path.join(store, which)).catch(() => "");
    if (obs.versions.includes(target)) obs[which] = target;
  }
  return obs;
}
