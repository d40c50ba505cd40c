import { constants, existsSync } from "node:fs";
import { lstat, mkdir, open, readlink, rename, rm, type FileHandle } from "node:fs/promises";
import path from "node:path";
import { checkRelative, PathError } from "./safety.js";

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

/** Whether `writeInside` can walk directory handles here (it falls back to checked paths elsewhere). */
export const canWalkHandles = (): boolean => existsSync(FD_DIR);

/**
 * Writes `root/rel` atomically (a temporary file, then rename(2)) without following any symlink
 * on the way: each directory is opened with O_NOFOLLOW from the handle of the one before, and
 * the file is created with O_EXCL|O_NOFOLLOW in the last one. A Pi that swaps a directory of its
 * running root for a symlink between pifleet's check and its write (`etc → /` on the fileserver)
 * makes the write fail, not land outside the root: the race that path checks alone cannot close.
 * Missing directories are created (0755).
 */
export async function writeInside(root: string, rel: string, content: string, mode = 0o644): Promise<void> {
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
        await mkdir(at, { mode: 0o755 }).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== "EEXIST") throw e;
        });
        next = await openDir(at, shown);
      }
      await dir.close();
      dir = next;
    }
    const tmp = `${FD_DIR}/${dir.fd}/${name}.pifleet-tmp`;
    // rm does not follow a symlink: one planted under the temporary name is removed, not its target.
    await rm(tmp, { force: true });
    const out = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
    try {
      await out.writeFile(content);
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
