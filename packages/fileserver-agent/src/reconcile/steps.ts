import { constants } from "node:fs";
import { lstat, mkdir, open, rename, rm, symlink, writeFile, chmod, chown, utimes } from "node:fs/promises";
import path from "node:path";
import { formatCommand, runChecked, shellQuote, type CommandRunner } from "../runner.js";
import { assertNotSymlink, assertResolvesInside, PathError } from "../safety.js";
import { hashTree } from "../content/hash.js";
import { canWalkHandles, writeInside, type FileOwner } from "../inside.js";

/**
 * The smallest unit of change. Every step prints as the exact shell command it performs (file
 * system steps run in-process but mean precisely the printed command), and every step that
 * writes names the directory it must stay inside (`within`), checked right before it runs.
 */
export type Step =
  | { op: "exec"; cmd: string; args: string[] }
  | { op: "mkdir"; path: string; within: string; parents?: boolean }
  /** `cp --reflink=auto -a -T`: reflinks where the filesystem can, else copies. `to` must not exist. */
  | { op: "copy"; from: string; to: string; within: string }
  /** rename(2): atomic on one filesystem. */
  | { op: "rename"; from: string; to: string; within: string }
  | { op: "remove"; path: string; within: string }
  | { op: "symlink"; target: string; path: string; within: string }
  /**
   * Written to a temporary name then renamed, so a reader sees the old file or the new one.
   * `noFollow`: reached from `within` through directory handles opened with O_NOFOLLOW, so not
   * even a symlink swapped in after the check can lead the write out (files in a root whose Pi
   * may be running; see inside.ts).
   */
  | {
      op: "write";
      path: string;
      content: string;
      within: string;
      mode?: number;
      noFollow?: boolean;
      /** Numeric owner to give the file (default: the agent's own, root). */
      owner?: FileOwner;
      /** A credential: its content is never printed, not even by `--verbose`. */
      secret?: boolean;
    }
  /**
   * One regular file copied out of a tree someone else writes (a Pi's root): the source must
   * resolve inside `fromWithin` and is opened without following a final symlink; its times are
   * kept so the next observation sees it unchanged. Written to a temporary name then renamed.
   */
  | { op: "copyFile"; from: string; fromWithin: string; to: string; within: string }
  /** Refuses to continue unless the tree hashes to `version` (a source that changed mid-copy). */
  | { op: "verify"; path: string; version: string };

export interface StepContext {
  runner: CommandRunner;
  /** Base directories that must not be symlinks themselves (Pi roots, the staging roots). */
  noSymlinkBases?: Set<string>;
}

const CP_ARGS = (from: string, to: string) => ["--reflink=auto", "-a", "-T", from, to];

/** One shell line; `verbose` adds the full content of written files as a here-document. */
export function formatStep(step: Step, verbose = false): string {
  switch (step.op) {
    case "exec":
      return formatCommand(step.cmd, step.args);
    case "mkdir":
      return formatCommand("mkdir", step.parents ? ["-p", step.path] : [step.path]);
    case "copy":
      return formatCommand("cp", CP_ARGS(step.from, step.to));
    case "rename":
      return formatCommand("mv", ["-T", step.from, step.to]);
    case "remove":
      return formatCommand("rm", ["-rf", step.path]);
    case "symlink":
      return formatCommand("ln", ["-s", step.target, step.path]);
    case "write": {
      const mode = (step.mode ?? 0o644).toString(8).padStart(4, "0");
      const how = step.noFollow ? "written atomically, no symlink followed" : "written atomically";
      const own = step.owner ? ` -o ${step.owner.uid} -g ${step.owner.gid}` : "";
      if (step.secret) return `install -m ${mode}${own} /dev/stdin ${shellQuote(step.path)}  # a secret (${Buffer.byteLength(step.content)} bytes, not shown), ${how}`;
      if (!verbose) return `install -m ${mode}${own} /dev/stdin ${shellQuote(step.path)}  # ${step.content.split("\n").length - 1} lines, ${how}`;
      return `install -m ${mode}${own} /dev/stdin ${shellQuote(step.path)} <<'PIFLEET'\n${step.content}${step.content.endsWith("\n") ? "" : "\n"}PIFLEET`;
    }
    case "copyFile":
      return `${formatCommand("install", ["-p", "-m", "0644", "-T", step.from, step.to])}  # no symlink followed, must stay inside ${shellQuote(step.fromWithin)}`;
    case "verify":
      return `# verify: the tree ${step.path} hashes to ${step.version}`;
  }
}

async function copyRegularFile(step: Extract<Step, { op: "copyFile" }>): Promise<void> {
  await assertResolvesInside(step.fromWithin, step.from, "boot file");
  let src;
  try {
    src = await open(step.from, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ELOOP") throw new PathError(step.from, "is a symlink; refused (boot files are copied, never followed)");
    throw err;
  }
  try {
    const st = await src.stat();
    if (!st.isFile()) throw new PathError(step.from, "is not a regular file; refused");
    const tmp = `${step.to}.pifleet-tmp`;
    await rm(tmp, { force: true });
    const out = await open(tmp, "wx", 0o644);
    try {
      for await (const chunk of src.createReadStream({ autoClose: false })) await out.write(chunk as Buffer);
    } finally {
      await out.close();
    }
    await utimes(tmp, st.atime, st.mtime);
    await rename(tmp, step.to);
  } finally {
    await src.close();
  }
}

async function absent(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return false;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return true;
    throw err;
  }
}

async function confine(ctx: StepContext, within: string, ...targets: string[]): Promise<void> {
  if (ctx.noSymlinkBases?.has(within)) await assertNotSymlink(within, "root");
  for (const t of targets) await assertResolvesInside(within, t);
}

/** Runs one step; throws (CommandError, PathError, a system error) when it cannot. */
export async function executeStep(step: Step, ctx: StepContext): Promise<void> {
  switch (step.op) {
    case "exec":
      await runChecked(ctx.runner, step.cmd, step.args);
      return;
    case "mkdir":
      await confine(ctx, step.within, step.path);
      await mkdir(step.path, { recursive: step.parents ?? false });
      // mkdir -p follows symlinks it meets; check again now that the whole path exists.
      if (step.parents) await confine(ctx, step.within, step.path);
      return;
    case "copy":
      await confine(ctx, step.within, step.to);
      // cp into an existing directory (or a symlink to one) would write somewhere else entirely.
      if (!(await absent(step.to))) throw new PathError(step.to, "copy destination already exists");
      await runChecked(ctx.runner, "cp", CP_ARGS(step.from, step.to));
      return;
    case "rename":
      await confine(ctx, step.within, step.from, step.to);
      await rename(step.from, step.to);
      return;
    case "remove":
      await confine(ctx, step.within, step.path);
      // rm does not follow symlinks: a link planted here is removed, not its target.
      await rm(step.path, { recursive: true, force: true });
      return;
    case "symlink":
      await confine(ctx, step.within, step.path);
      await symlink(step.target, step.path);
      return;
    case "write": {
      await confine(ctx, step.within, step.path);
      if (step.noFollow && canWalkHandles()) {
        await writeInside(step.within, path.relative(step.within, step.path), step.content, step.mode ?? 0o644, step.owner);
        return;
      }
      await mkdir(path.dirname(step.path), { recursive: true });
      await confine(ctx, step.within, step.path);
      const tmp = `${step.path}.pifleet-tmp`;
      await rm(tmp, { force: true });
      await writeFile(tmp, step.content, { mode: step.mode ?? 0o644, flag: "wx" });
      if (step.owner) await chown(tmp, step.owner.uid, step.owner.gid);
      await chmod(tmp, step.mode ?? 0o644);
      await rename(tmp, step.path);
      return;
    }
    case "copyFile":
      await confine(ctx, step.within, step.to);
      await copyRegularFile(step);
      return;
    case "verify": {
      const got = await hashTree(step.path);
      if (got !== step.version) throw new PathError(step.path, `hashes to ${got}, expected ${step.version}: the source changed while it was copied`);
      return;
    }
  }
}
