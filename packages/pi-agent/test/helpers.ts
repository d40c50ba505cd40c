import { createRequire } from "node:module";
import { closeSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The Pi-like /proc and /sys fixture. */
export const PI_FIXTURE = fileURLToPath(new URL("./fixtures/pi3", import.meta.url));
export const AGENT_MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url));

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

interface DgramSocket {
  bind(path: string): void;
  on(event: "message", cb: (buf: Buffer) => void): void;
  on(event: "error", cb: (err: Error) => void): void;
  close(): void;
}

/**
 * A NOTIFY_SOCKET like systemd's: a unix datagram socket (through the same addon core's notifier
 * uses; Node has no AF_UNIX datagrams) that records every message.
 */
export function notifySocket(dir: string): { path: string; messages: string[]; close(): void } {
  const req = createRequire(fileURLToPath(new URL("../../core/package.json", import.meta.url)));
  const lib = req("unix-dgram") as { createSocket(type: "unix_dgram"): DgramSocket };
  const sockPath = path.join(dir, "notify.sock");
  const messages: string[] = [];
  const sock = lib.createSocket("unix_dgram");
  sock.on("message", (buf) => messages.push(buf.toString()));
  sock.on("error", () => undefined);
  sock.bind(sockPath);
  return { path: sockPath, messages, close: () => sock.close() };
}

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

/** A writable copy of the Pi fixture under `dir`. */
export function piPaths(dir: string): { proc: string; sys: string } {
  cpSync(PI_FIXTURE, path.join(dir, "pi"), { recursive: true });
  return { proc: path.join(dir, "pi", "proc"), sys: path.join(dir, "pi", "sys") };
}

/** Writes the secret and an agent config; returns the config path. */
export function writeAgentConfig(dir: string, secret: string, config: Record<string, unknown>): string {
  const secretFile = path.join(dir, "pi-agent.secret");
  writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
  const file = path.join(dir, "pi-agent.yaml");
  // YAML is a superset of JSON.
  writeFileSync(file, `${JSON.stringify({ secretFile, ...config }, null, 2)}\n`);
  return file;
}

/**
 * A filesystem that hangs, for real: a FUSE mount whose server never reads /dev/fuse behaves like
 * an NFS root whose server died — every lookup below it waits for an answer that never comes. The
 * fusectl filesystem counts the requests waiting on the connection. Needs root (CAP_SYS_ADMIN) and
 * /dev/fuse; everything lives in a temp dir and is undone by the pushed cleanups.
 */
export function mountHungFuse(cleanup: Array<() => void>): { dir: string; fd: number; waiting: () => number; abort: () => void } {
  if (!existsSync("/dev/fuse")) throw new Error("this test needs /dev/fuse (and root) to mount a filesystem that hangs");
  const base = mkdtempSync(path.join(tmpdir(), "pi-agent-hung-"));
  const dir = path.join(base, "mnt");
  const ctl = path.join(base, "fusectl");
  mkdirSync(dir);
  mkdirSync(ctl);
  cleanup.push(() => rmSync(base, { recursive: true, force: true }));
  const fd = openSync("/dev/fuse", "r+");
  let open = true;
  const abort = () => {
    if (open) closeSync(fd);
    open = false;
  };
  cleanup.push(abort);
  const m = spawnSync("mount", ["-i", "-t", "fuse.pifleet-hung", "-o", "fd=3,rootmode=40000,user_id=0,group_id=0", "pifleet-hung", dir], {
    stdio: ["ignore", "pipe", "pipe", fd],
    encoding: "utf8",
  });
  if (m.status !== 0) throw new Error(`mount of a test FUSE filesystem failed (needs root): ${m.stderr || m.error}`);
  // Lazy: the mount may still have a stat in flight when the test ends.
  cleanup.push(() => void spawnSync("umount", ["-l", dir]));
  const c = spawnSync("mount", ["-t", "fusectl", "fusectl", ctl], { encoding: "utf8" });
  if (c.status !== 0) throw new Error(`mount -t fusectl failed: ${c.stderr}`);
  cleanup.push(() => void spawnSync("umount", ["-l", ctl]));
  // The connection is named by the mount's device minor (mountinfo: "0:39"); stat of the mount
  // point itself would hang, so read it from mountinfo.
  const line = readFileSync("/proc/self/mountinfo", "utf8").split("\n").find((l) => l.split(" ")[4] === dir);
  if (!line) throw new Error(`${dir} not in mountinfo`);
  const minor = line.split(" ")[2].split(":")[1];
  const waiting = () => Number(readFileSync(path.join(ctl, minor, "waiting"), "utf8").trim());
  return { dir, fd, waiting, abort };
}
