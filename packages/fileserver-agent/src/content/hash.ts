import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { lstat, readdir, readlink } from "node:fs/promises";
import path from "node:path";

/** Hex digits of a content version: 64 bits, plenty to tell site versions apart. */
export const VERSION_LENGTH = 16;
export const VERSION_RE = /^[0-9a-f]{16}$/;

async function fileDigest(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/**
 * A site version is a hash of the tree: names, types, permission bits, file contents and
 * symlink targets (never followed). Owners and times are left out so the same site copied by
 * anyone, at any time, is the same version.
 */
export async function hashTree(dir: string): Promise<string> {
  const top = await lstat(dir);
  if (!top.isDirectory()) throw new Error(`${dir}: not a directory`);
  const hash = createHash("sha256");
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(path.join(dir, rel))).sort();
    for (const name of names) {
      const r = rel ? `${rel}/${name}` : name;
      const full = path.join(dir, r);
      const st = await lstat(full);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isDirectory()) {
        hash.update(`d ${mode} ${r}\n`);
        await walk(r);
      } else if (st.isSymbolicLink()) {
        hash.update(`l ${r}\0${await readlink(full)}\n`);
      } else if (st.isFile()) {
        hash.update(`f ${mode} ${r}\0${st.size}\0${await fileDigest(full)}\n`);
      } else {
        throw new Error(`${full}: site content may hold only files, directories and symlinks`);
      }
    }
  };
  await walk("");
  return hash.digest("hex").slice(0, VERSION_LENGTH);
}
