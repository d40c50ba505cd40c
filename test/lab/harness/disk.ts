import { statSync, readdirSync, lstatSync } from "node:fs";
import path from "node:path";
import { run } from "./exec.js";

function treeBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir)) {
    const p = path.join(dir, entry);
    const st = lstatSync(p);
    total += st.isDirectory() ? treeBytes(p) + 4096 : Math.max(st.size, 0) + 4096;
  }
  return total;
}

/**
 * A raw ext4 image holding a copy of `dir` (`mke2fs -d`, no mounting, no root needed for the copy
 * itself). Sparse: the file takes only the space its contents do. `sizeMiB` defaults to the tree's
 * size plus room.
 */
export async function ext4Image(dir: string, image: string, options: { label: string; sizeMiB?: number }): Promise<string> {
  const sizeMiB = options.sizeMiB ?? Math.ceil((treeBytes(dir) * 1.25) / 2 ** 20) + 32;
  await run("mke2fs", ["-q", "-F", "-t", "ext4", "-L", options.label, "-d", dir, "-E", "root_owner=0:0", image, `${sizeMiB}M`]);
  statSync(image);
  return image;
}
