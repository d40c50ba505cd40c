import { constants, existsSync } from "node:fs";
import { lstat, mkdir, open, readlink, rename, rm, type FileHandle } from "node:fs/promises";
import path from "node:path";
import { assertResolvesInside, checkRelative, PathError } from "./safety.js";

/** Linux names every open directory here: a path through it is resolved from that directory, as openat(2) would. */
const FD_DIR = "/proc/self/fd";

const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

async function openDir(at: string, shown: string): Promise<FileHandle> {
  try {
    return await open(at, DIR_FLAGS);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Linux answers ENOTDIR, not ELOOP, for a symlink opened with O_DIRECTORY|O_NOFOLLOW.
    if (code === "ELOOP" || code === "ENOTDIR") {
      const link = await lstat(at).then((st) => st.isSymbolicLink(), () => false);
      if (link) {
        const target = await readlink(at).catch(() => "?");
        throw new PathError(shown, `is a symlink (to ${target}); refused (pifleet follows no symlink inside a Pi's root)`);
      }
      throw new PathError(shown, "is not a directory; refused");
    }
    throw err;
  }
}

/** Numeric owner of a written file, as the root's own /etc/passwd and /etc/group define it. */
export interface FileOwner {
  uid: number;
  gid: number;
}

/** Whether `writeInside` can walk directory handles here (it falls back to checked paths elsewhere). */
export const canWalkHandles = (): boolean => existsSync(FD_DIR);

/**
 * The directory holding `root/rel`, reached from `root` one component at a time, each opened
 * with O_NOFOLLOW from the handle of the one before: a symlink anywhere on the way (even one a Pi
 * swaps in after pifleet's path check) is refused, never followed. `create` makes missing
 * directories (0755); without it a missing one is null.
 */
async function walkTo(root: string, rel: string, create: boolean): Promise<{ dir: FileHandle; name: string } | null> {
  const parts = checkRelative(rel, "file").split("/");
  const name = parts.pop()!;
  let dir = await openDir(root, root);
  try {
    let shown = root;
    for (const part of parts) {
      shown = path.join(shown, part);
      const at = `${FD_DIR}/${dir.fd}/${part}`;
      let next: FileHandle;
      try {
        next = await openDir(at, shown);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
        if (!create) {
          await dir.close();
          return null;
        }
        await mkdir(at, { mode: 0o755 }).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== "EEXIST") throw e;
        });
        next = await openDir(at, shown);
      }
      await dir.close();
      dir = next;
    }
    return { dir, name };
  } catch (err) {
    await dir.close().catch(() => undefined);
    throw err;
  }
}

/**
 * Writes `root/rel` atomically (a temporary file, then rename(2)) without following any symlink
 * on the way (see walkTo); the file is created with O_EXCL|O_NOFOLLOW in its directory. A Pi that
 * swaps a directory of its running root for a symlink between pifleet's check and its write
 * (`etc → /` on the fileserver) makes the write fail, not land outside the root: the race that
 * path checks alone cannot close. Missing directories are created (0755).
 */
export async function writeInside(root: string, rel: string, content: string, mode = 0o644, owner?: FileOwner): Promise<void> {
  const { dir, name } = (await walkTo(root, rel, true))!;
  try {
    const tmp = `${FD_DIR}/${dir.fd}/${name}.pifleet-tmp`;
    // rm does not follow a symlink: one planted under the temporary name is removed, not its target.
    await rm(tmp, { force: true });
    const out = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
    try {
      await out.writeFile(content);
      // Owner before mode: the file is never readable by its new owner with looser bits than asked.
      if (owner) await out.chown(owner.uid, owner.gid);
      await out.chmod(mode);
    } finally {
      await out.close();
    }
    // rename replaces whatever holds the name (a symlink included) and never follows it.
    await rename(tmp, `${FD_DIR}/${dir.fd}/${name}`);
  } finally {
    await dir.close();
  }
}

/** What `readInside` reads at most: pifleet's own small files, never a Pi's planted multi-GB one. */
export const READ_INSIDE_LIMIT = 64 * 1024;

/**
 * A small regular file inside `root`, read without following anything out of it: the way there
 * must resolve inside `root`, is walked without following a symlink where Linux allows (walkTo),
 * and the file itself is opened with O_NOFOLLOW — so a Pi that put a symlink in place of one of
 * pifleet's files (`etc/hostname → /etc/shadow`) gets it refused, not read. null when missing.
 */
export async function readInside(root: string, rel: string, what = rel, limit = READ_INSIDE_LIMIT): Promise<string | null> {
  return (await readInsideWithStat(root, rel, what, limit))?.text ?? null;
}

/** What `readInsideWithStat` found: the text and the file's permission bits and owner. */
export interface InsideFile {
  text: string;
  /** Permission bits only (`st_mode & 07777`). */
  mode: number;
  uid: number;
  gid: number;
}

/** readInside, with the mode and owner of the very file read (fstat of the handle, not a second lookup by path). */
export async function readInsideWithStat(root: string, rel: string, what = rel, limit = READ_INSIDE_LIMIT): Promise<InsideFile | null> {
  const file = path.join(root, rel);
  await assertResolvesInside(root, file, what);
  let at = file;
  let dir: FileHandle | undefined;
  if (canWalkHandles()) {
    const found = await walkTo(root, rel, false);
    if (!found) return null;
    dir = found.dir;
    at = `${FD_DIR}/${dir.fd}/${found.name}`;
  }
  try {
    let fh: FileHandle;
    try {
      // O_NONBLOCK: a FIFO planted here must not hang the agent; it is refused below.
      fh = await open(at, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return null;
      if (code === "ELOOP") {
        const target = await readlink(at).catch(() => "?");
        throw new PathError(file, `${what} is a symlink (to ${target}); pifleet writes it as a regular file and refuses to follow it — remove the link by hand`);
      }
      throw err;
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new PathError(file, `${what} is not a regular file; left for a person`);
      if (st.size > limit) throw new PathError(file, `${what} is ${st.size} bytes, more than the ${limit} pifleet reads; left for a person`);
      const buf = Buffer.alloc(limit + 1);
      const { bytesRead } = await fh.read(buf, 0, limit + 1, 0);
      if (bytesRead > limit) throw new PathError(file, `${what} grew past ${limit} bytes while read; left for a person`);
      return { text: buf.subarray(0, bytesRead).toString("utf8"), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
    } finally {
      await fh.close();
    }
  } finally {
    await dir?.close();
  }
}
