import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, renameSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { labLog } from "./log.js";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

/** Built kernels and images live outside git, shared by every lab test and run. */
export function cacheRoot(): string {
  const dir = process.env.PIFLEET_LAB_CACHE ?? path.join(repoRoot, ".lab-cache");
  mkdirSync(dir, { recursive: true });
  return dir;
}

function stable(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stable);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => [k, stable(v)]),
    );
  }
  return value;
}

/** Key of a build recipe: any change to what goes into an artifact gives a new key. */
export function recipeHash(recipe: unknown): string {
  return createHash("sha256").update(JSON.stringify(stable(recipe))).digest("hex").slice(0, 16);
}

export function fileHash(file: string): string {
  return createHash("sha256").update(readFileSync(file)).digest("hex");
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function lock(lockDir: string, timeoutMs: number): Promise<() => void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(lockDir);
      writeFileSync(path.join(lockDir, "pid"), String(process.pid));
      return () => rmSync(lockDir, { recursive: true, force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    // Another test worker builds the same artifact; a lock whose owner died is taken over.
    let owner = NaN;
    try {
      owner = Number(readFileSync(path.join(lockDir, "pid"), "utf8"));
    } catch {
      /* being created or removed right now */
    }
    if (Number.isInteger(owner) && owner > 0 && !alive(owner)) {
      rmSync(lockDir, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`lab cache: timed out waiting for ${lockDir}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * Returns the folder holding the artifact `name` built from `recipe`, building it first when the
 * cache has no copy for this exact recipe. A build writes into a scratch folder that is renamed
 * into place only when complete, so an interrupted build never leaves a half artifact behind.
 * Older versions of the same artifact are removed once the new one exists (after a grace period,
 * in case a VM of a concurrent run still boots from one).
 */
export async function cached(name: string, recipe: unknown, build: (dir: string) => Promise<void>): Promise<string> {
  const root = cacheRoot();
  const key = recipeHash(recipe);
  const dir = path.join(root, `${name}-${key}`);
  if (existsSync(path.join(dir, ".recipe.json"))) return dir;
  const release = await lock(`${dir}.lock`, 20 * 60_000);
  try {
    if (existsSync(path.join(dir, ".recipe.json"))) return dir;
    const scratch = path.join(root, ".tmp", `${name}-${key}-${process.pid}`);
    rmSync(scratch, { recursive: true, force: true });
    mkdirSync(scratch, { recursive: true });
    const started = Date.now();
    labLog.info({ artifact: name, key }, "lab cache: building");
    try {
      await build(scratch);
    } catch (e) {
      rmSync(scratch, { recursive: true, force: true });
      throw e;
    }
    writeFileSync(path.join(scratch, ".recipe.json"), `${JSON.stringify(stable(recipe), null, 2)}\n`);
    rmSync(dir, { recursive: true, force: true });
    renameSync(scratch, dir);
    labLog.info({ artifact: name, key, seconds: Math.round((Date.now() - started) / 100) / 10 }, "lab cache: built");
    for (const entry of readdirSync(root)) {
      const other = path.join(root, entry);
      const sameArtifact = entry.startsWith(`${name}-`) && /^[0-9a-f]{16}$/.test(entry.slice(name.length + 1));
      if (sameArtifact && entry !== `${name}-${key}` && Date.now() - statSync(other).mtimeMs > 10 * 60_000) {
        rmSync(other, { recursive: true, force: true });
      }
    }
    return dir;
  } finally {
    release();
  }
}
