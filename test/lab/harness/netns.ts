import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { randomBytes } from "node:crypto";
import { run } from "./exec.js";

/**
 * A network namespace the lab creates for itself: the VMs, the coordinator, HAProxy and the PoE
 * emulator run inside it, so the shelf's public VLAN can end on a tap device with the fleet's
 * own addresses without the host's network ever seeing them. Deleted on close; a crashed run's
 * namespace is named after its process, so the next run can tell it from its own.
 */
export class NetNs {
  private constructor(readonly name: string) {}

  static async create(prefix = "pifleet-lab"): Promise<NetNs> {
    await NetNs.removeStale(prefix);
    const ns = new NetNs(`${prefix}-${process.pid}-${randomBytes(2).toString("hex")}`);
    await run("ip", ["netns", "add", ns.name]);
    await ns.ip("link", "set", "lo", "up");
    return ns;
  }

  /** Namespaces left by lab runs whose process is gone (killed before its cleanup ran). */
  static async removeStale(prefix: string): Promise<void> {
    const { stdout } = await run("ip", ["netns", "list"]);
    for (const line of stdout.split("\n")) {
      const name = line.split(" ")[0];
      const m = new RegExp(`^${prefix}-(\\d+)-[0-9a-f]{4}$`).exec(name);
      if (!m || Number(m[1]) === process.pid || alive(Number(m[1]))) continue;
      await run("ip", ["netns", "del", name]).catch(() => undefined);
    }
  }

  /** `ip` inside the namespace. */
  ip(...args: string[]): Promise<{ stdout: string; stderr: string }> {
    return run("ip", ["-n", this.name, ...args]);
  }

  /** A tap device (QEMU opens it by name) with these addresses, up. `nodad`: usable at once. */
  async tap(name: string, addresses: string[]): Promise<void> {
    await this.ip("tuntap", "add", "dev", name, "mode", "tap");
    for (const a of addresses) await this.ip("addr", "add", a, "dev", name, ...(a.includes(":") ? ["nodad"] : []));
    await this.ip("link", "set", name, "up");
  }

  /** argv prefixed to run inside the namespace. */
  argv(argv: string[]): string[] {
    return ["ip", "netns", "exec", this.name, ...argv];
  }

  /** Runs a command inside the namespace to completion. */
  exec(argv: string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<{ stdout: string; stderr: string }> {
    const [cmd, ...args] = this.argv(argv);
    return run(cmd, args, options);
  }

  /** Starts a long-running program inside the namespace. */
  spawn(argv: string[], options: SpawnOptions = {}): ChildProcess {
    const [cmd, ...args] = this.argv(argv);
    return spawn(cmd, args, options);
  }

  async close(): Promise<void> {
    await run("ip", ["netns", "del", this.name]).catch(() => undefined);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
