import type { CommandRunner } from "../runner.js";

/**
 * How the agent reaches the kernel's network and NFS state:
 * - host: the real `ip`/`exportfs` (a real fileserver, the VM lab);
 * - emulate: a small emulator keeps links and exports in a JSON file inside the sandbox, so a
 *   demo on a machine without VLANs or nfsd still shows the exact commands and their effect;
 * - off: not observed and not changed (reported as such).
 */
export type LiveMode = "host" | "emulate" | "off";
export type LiveRequest = LiveMode | "auto";

export interface Live {
  network: LiveMode;
  nfs: LiveMode;
  /** Why a part is emulated or off, for the operator to read. */
  notes: string[];
}

async function runs(runner: CommandRunner, cmd: string, args: string[]): Promise<boolean> {
  const r = await runner.run(cmd, args, { timeoutMs: 5000 });
  return r.code !== 127;
}

export async function resolveLive(
  request: LiveRequest,
  opts: { prefix: string; runner: CommandRunner; uid?: number },
): Promise<Live> {
  if (request === "emulate" && !opts.prefix) throw new Error("--live emulate needs a --root-prefix: the emulator keeps its state in the sandbox");
  if (request === "host" && opts.prefix) {
    return { network: "host", nfs: "host", notes: ["live=host with a root prefix: ip and exportfs act on this machine's real network and NFS server"] };
  }
  if (request === "off") return { network: "off", nfs: "off", notes: ["live=off: VLAN interfaces and live exports are neither observed nor changed"] };
  if (request === "emulate") return { network: "emulate", nfs: "emulate", notes: emulateNotes(opts.prefix) };
  // Asked for by name on a real fileserver: nothing to explain.
  if (request === "host") return { network: "host", nfs: "host", notes: [] };
  if (opts.prefix) return { network: "emulate", nfs: "emulate", notes: emulateNotes(opts.prefix) };
  const uid = opts.uid ?? process.getuid?.() ?? 0;
  const notes: string[] = [];
  let network: LiveMode = "host";
  let nfs: LiveMode = "host";
  if (uid !== 0) {
    notes.push(`not root (uid ${uid}): VLAN interfaces and exports are neither observed nor changed`);
    return { network: "off", nfs: "off", notes };
  }
  const ipVersion = await opts.runner.run("ip", ["-V"], { timeoutMs: 5000 });
  if (ipVersion.code === 127) {
    network = "off";
    notes.push("iproute2 (ip) is not installed: VLAN interfaces are neither observed nor changed");
  } else if (!/iproute2/.test(ipVersion.stdout + ipVersion.stderr)) {
    // busybox's `ip` applet has no -j and ignores what it does not know.
    network = "off";
    notes.push("the `ip` first in PATH is not iproute2 (busybox's applet?): put iproute2 first in PATH; VLAN interfaces are neither observed nor changed");
  }
  if (!(await runs(opts.runner, "exportfs", ["-h"]))) {
    nfs = "off";
    notes.push("exportfs is not installed (Debian: nfs-kernel-server): live exports are neither observed nor changed");
  }
  return { network, nfs, notes };
}

function emulateNotes(prefix: string): string[] {
  return [`sandbox ${prefix}: ip and exportfs are emulated (state in ${prefix}/var/lib/pifleet/emulated-host.json); this machine's network and NFS server are not touched`];
}
