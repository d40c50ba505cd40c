import { realpathSync, statSync } from "node:fs";
import path from "node:path";
import type { Logger, FileserverView } from "@pifleet/core";
import { Fileserver } from "./fileserver.js";
import { EmulatedHost } from "./host/emulator.js";
import { resolveLive, type LiveRequest } from "./host/live.js";
import { createLayout } from "./layout.js";
import { ExecRunner, type CommandRunner } from "./runner.js";
import type { DnsmasqOptions } from "./netboot/options.js";

/** A sandbox folder, checked and made absolute (its realpath, so every later check compares like with like). */
export function resolvePrefix(prefix: string | undefined): string {
  if (!prefix) return "";
  const abs = path.resolve(prefix);
  let st;
  try {
    st = statSync(abs);
  } catch {
    throw new Error(`root prefix ${abs} does not exist (create the sandbox folder first)`);
  }
  if (!st.isDirectory()) throw new Error(`root prefix ${abs} is not a directory`);
  const real = realpathSync(abs);
  if (real === "/") return "";
  return real;
}

export interface OpenOptions {
  plan: FileserverView;
  prefix?: string;
  live?: LiveRequest;
  logger?: Logger;
  /** The host's programs; tests pass a fake. */
  runner?: CommandRunner;
  uid?: number;
  dnsmasq?: DnsmasqOptions;
}

/** Decides how the kernel is reached (host, emulated, off) and builds the Fileserver. */
export async function openFileserver(opts: OpenOptions): Promise<Fileserver> {
  const prefix = resolvePrefix(opts.prefix);
  const base = opts.runner ?? new ExecRunner();
  const live = await resolveLive(opts.live ?? "auto", { prefix, runner: base, uid: opts.uid });
  let runner = base;
  if (live.network === "emulate" || live.nfs === "emulate") {
    const layout = createLayout(opts.plan, prefix);
    runner = new EmulatedHost(layout.emulatorState, prefix, base, opts.plan.fileserver.trunkInterfaces);
  }
  for (const note of live.notes) opts.logger?.info({ live }, note);
  return new Fileserver({ plan: opts.plan, runner, live, prefix, logger: opts.logger, ...(opts.dnsmasq ? { dnsmasq: opts.dnsmasq } : {}) });
}
