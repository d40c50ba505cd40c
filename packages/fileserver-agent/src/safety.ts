import { lstat, readlink, realpath } from "node:fs/promises";
import path from "node:path";

/**
 * Path safety. Pi roots are exported read-write with no_root_squash, so whatever a Pi's root
 * user puts there (a symlink `var/www → /etc`, say) must not steer the fileserver agent outside
 * that root. Every write is checked lexically (no `..`, no absolute path where a name is
 * expected) and against the filesystem (realpath of what exists must stay inside the base).
 */
export class PathError extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${path}: ${reason}`);
    this.name = "PathError";
  }
}

/** An absolute, normalised path without `..` segments. */
export function checkAbsolute(p: string, what: string): string {
  if (p.includes("\0")) throw new PathError(p, `${what} contains a NUL byte`);
  if (!path.isAbsolute(p)) throw new PathError(p, `${what} must be an absolute path`);
  if (p.split("/").includes("..")) throw new PathError(p, `${what} must not contain ".."`);
  const normal = path.posix.normalize(p);
  if (normal !== p && normal !== p.replace(/\/+$/, "")) throw new PathError(p, `${what} must be normalised (${normal})`);
  return normal.length > 1 ? normal.replace(/\/+$/, "") : normal;
}

/** A relative path below a base: no `..`, not absolute, not empty. */
export function checkRelative(p: string, what: string): string {
  if (p.includes("\0")) throw new PathError(p, `${what} contains a NUL byte`);
  if (p === "" || path.isAbsolute(p)) throw new PathError(p, `${what} must be a relative path`);
  const parts = p.split("/");
  if (parts.includes("..")) throw new PathError(p, `${what} must not contain ".."`);
  return parts.filter((s) => s !== "" && s !== ".").join("/");
}

/** One path component, e.g. a Pi address or a file name pifleet derives. */
export function checkName(name: string, what: string): string {
  if (name === "" || name === "." || name === ".." || name.includes("/") || name.includes("\0")) {
    throw new PathError(name, `${what} must be a single file name`);
  }
  return name;
}

export function checkPiAddress(address: string): string {
  const parts = address.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255)) {
    throw new PathError(address, "a Pi root is named by the Pi's IPv4 address");
  }
  return address;
}

/** Lexical containment: `target` is `base` itself or below it. */
export function isInside(base: string, target: string): boolean {
  const rel = path.relative(base, target);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
}

export function assertInside(base: string, target: string, what = "path"): void {
  if (!isInside(base, target) || target === base) throw new PathError(target, `${what} is outside ${base}`);
}

async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
}

/** realpath of the longest existing prefix of `p` (the rest does not exist yet). */
export async function realpathOfExisting(p: string): Promise<{ real: string; rest: string }> {
  let head = p;
  const rest: string[] = [];
  for (;;) {
    if (await exists(head)) {
      try {
        return { real: await realpath(head), rest: rest.join("/") };
      } catch (err) {
        // A dangling symlink: nothing can be written through it, and it points somewhere we do not vouch for.
        if ((err as NodeJS.ErrnoException).code === "ENOENT") {
          const target = await readlink(head).catch(() => "?");
          throw new PathError(head, `is a dangling symlink (to ${target})`);
        }
        throw err;
      }
    }
    const parent = path.dirname(head);
    if (parent === head) return { real: head, rest: rest.join("/") };
    rest.unshift(path.basename(head));
    head = parent;
  }
}

/** A base directory that must not itself be a symlink (a Pi root, a staging root). */
export async function assertNotSymlink(p: string, what: string): Promise<void> {
  let st;
  try {
    st = await lstat(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  if (st.isSymbolicLink()) {
    const target = await readlink(p).catch(() => "?");
    throw new PathError(p, `${what} is a symlink (to ${target}); pifleet refuses to follow a symlinked ${what}`);
  }
}

/**
 * Checks, against the filesystem, that writing `target` stays inside `base`: the existing part
 * of target's parent resolves (following symlinks) to `base` or below it. The final component
 * itself is not followed: pifleet only ever renames over it, removes it or creates it fresh.
 */
export async function assertResolvesInside(base: string, target: string, what = "path"): Promise<void> {
  assertInside(base, target, what);
  const b = await realpathOfExisting(base);
  const realBase = b.rest ? path.join(b.real, b.rest) : b.real;
  const { real, rest } = await realpathOfExisting(path.dirname(target));
  const resolved = rest ? path.join(real, rest) : real;
  if (!isInside(realBase, resolved)) {
    throw new PathError(target, `${what} resolves to ${path.join(resolved, path.basename(target))}, outside ${base} (a symlink on the way points out)`);
  }
}
