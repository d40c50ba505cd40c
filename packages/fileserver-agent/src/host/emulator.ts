import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { CommandRunner, RunOptions, RunResult } from "../runner.js";

interface EmuLink {
  ifindex: number;
  ifname: string;
  kind: string;
  link?: string;
  vlanId?: number;
  up: boolean;
  alias?: string;
  addresses: { family: "inet" | "inet6"; local: string; prefixlen: number }[];
}

export interface EmulatorState {
  note: string;
  links: EmuLink[];
  exports: { path: string; client: string; options: string }[];
  /** Set to false to emulate a fileserver whose NFS server is down (a fault for the demo). */
  nfsServer: boolean;
}

const ok = (stdout = ""): RunResult => ({ code: 0, stdout, stderr: "" });
const fail = (code: number, stderr: string): RunResult => ({ code, stdout: "", stderr: `${stderr}\n` });

/**
 * The sandbox's kernel: answers the exact `ip`, `exportfs` and `systemctl` commands the agent
 * runs, in the same output shapes as iproute2 and nfs-utils, keeping links and exports in a
 * JSON file so separate runs (CLI, agent) see one consistent host. Everything else (`cp`) goes
 * to the real runner. It is an emulator, not a sandbox escape hatch: nothing here touches the
 * machine's own network or NFS server.
 */
export class EmulatedHost implements CommandRunner {
  constructor(
    private readonly stateFile: string,
    private readonly prefix: string,
    private readonly fallback: CommandRunner,
    private readonly trunks: readonly string[] = ["eth0"],
  ) {}

  load(): EmulatorState {
    if (!existsSync(this.stateFile)) {
      return {
        note: "pifleet's sandbox emulator: the links and exports a real fileserver would have. Edit to inject faults.",
        links: [
          { ifindex: 1, ifname: "lo", kind: "", up: true, addresses: [{ family: "inet", local: "127.0.0.1", prefixlen: 8 }] },
          ...this.trunks.map((ifname, i) => ({ ifindex: 2 + i, ifname, kind: "", up: true, addresses: [] })),
        ],
        exports: [],
        nfsServer: true,
      };
    }
    return JSON.parse(readFileSync(this.stateFile, "utf8")) as EmulatorState;
  }

  save(state: EmulatorState): void {
    mkdirSync(path.dirname(this.stateFile), { recursive: true });
    const tmp = `${this.stateFile}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
    renameSync(tmp, this.stateFile);
  }

  async run(cmd: string, args: string[], options?: RunOptions): Promise<RunResult> {
    if (cmd === "ip") return this.ip(args);
    if (cmd === "exportfs") return this.exportfs(args);
    if (cmd === "systemctl" && args[0] === "is-active") {
      const s = this.load();
      return args[1] === "nfs-server" && s.nfsServer ? ok("active\n") : { code: 3, stdout: "inactive\n", stderr: "" };
    }
    return this.fallback.run(cmd, args, options);
  }

  private ip(args: string[]): RunResult {
    const s = this.load();
    const a = args.join(" ");
    const find = (name: string) => s.links.find((l) => l.ifname === name);
    if (a === "-V") return ok("ip utility, iproute2-emulated\n");
    if (a === "-j -d link show") return ok(`${JSON.stringify(s.links.map((l) => linkJson(l, true)))}\n`);
    if (a === "-j link show") return ok(`${JSON.stringify(s.links.map((l) => linkJson(l, false)))}\n`);
    if (a === "-j addr show") return ok(`${JSON.stringify(s.links.map(addrJson))}\n`);
    let m = /^link add link (\S+) name (\S+) type vlan id (\d+)$/.exec(a);
    if (m) {
      const [, parent, name, id] = m;
      if (!find(parent)) return fail(1, `Cannot find device "${parent}"`);
      if (name.length > 15) return fail(1, `Error: argument "${name}" is wrong: "name" not a valid ifname`);
      if (find(name) || s.links.some((l) => l.kind === "vlan" && l.link === parent && l.vlanId === Number(id))) return fail(2, "RTNETLINK answers: File exists");
      s.links.push({ ifindex: Math.max(...s.links.map((l) => l.ifindex)) + 1, ifname: name, kind: "vlan", link: parent, vlanId: Number(id), up: false, addresses: [] });
      this.save(s);
      return ok();
    }
    m = /^addr add (\S+)\/(\d+) dev (\S+)$/.exec(a);
    if (m) {
      const link = find(m[3]);
      if (!link) return fail(1, `Cannot find device "${m[3]}"`);
      if (link.addresses.some((x) => x.local === m![1])) return fail(2, "RTNETLINK answers: File exists");
      link.addresses.push({ family: m[1].includes(":") ? "inet6" : "inet", local: m[1], prefixlen: Number(m[2]) });
      this.save(s);
      return ok();
    }
    m = /^link set (\S+) (up|down)$/.exec(a);
    if (m) {
      const link = find(m[1]);
      if (!link) return fail(1, `Cannot find device "${m[1]}"`);
      link.up = m[2] === "up";
      this.save(s);
      return ok();
    }
    if (args[0] === "link" && args[1] === "set" && args[3] === "alias" && args.length === 5) {
      const link = find(args[2]);
      if (!link) return fail(1, `Cannot find device "${args[2]}"`);
      link.alias = args[4];
      this.save(s);
      return ok();
    }
    m = /^link (?:del|delete) (?:dev )?(\S+)$/.exec(a);
    if (m) {
      const link = find(m[1]);
      if (!link) return fail(1, `Cannot find device "${m[1]}"`);
      s.links = s.links.filter((l) => l !== link && !(l.kind === "vlan" && l.link === link.ifname));
      this.save(s);
      return ok();
    }
    return fail(1, `pifleet emulator: unsupported ip command: ip ${a}`);
  }

  private exportfs(args: string[]): RunResult {
    const s = this.load();
    const a = args.join(" ");
    if (a === "-h") return ok("usage: exportfs [-adfhioruvs] [host:/path]\n");
    if (a === "-f") return ok();
    if (a === "-v") {
      const lines = s.exports.map((e) => {
        const client = e.client === "*" ? "<world>" : e.client;
        return e.path.length > 14 ? `${e.path}\n\t\t${client}(${e.options})` : `${e.path.padEnd(14)}\t${client}(${e.options})`;
      });
      return ok(lines.length ? `${lines.join("\n")}\n` : "");
    }
    if (a === "-ra" || a === "-ar" || a === "-r") {
      const { exports, warnings } = this.readExportFiles();
      s.exports = exports;
      this.save(s);
      return { code: 0, stdout: "", stderr: warnings.join("") };
    }
    return fail(1, `pifleet emulator: unsupported exportfs command: exportfs ${a}`);
  }

  /** `/etc/exports` and `/etc/exports.d/*.exports` of the sandbox, as exportfs -r reads them. */
  private readExportFiles(): { exports: EmulatorState["exports"]; warnings: string[] } {
    const files = [path.join(this.prefix, "etc/exports")];
    const dir = path.join(this.prefix, "etc/exports.d");
    if (existsSync(dir)) for (const f of readdirSync(dir).sort()) if (f.endsWith(".exports")) files.push(path.join(dir, f));
    const exports: EmulatorState["exports"] = [];
    const warnings: string[] = [];
    for (const f of files) {
      if (!existsSync(f)) continue;
      for (const raw of readFileSync(f, "utf8").split("\n")) {
        const line = raw.replace(/#.*/, "").trim();
        if (!line) continue;
        const [p, ...clients] = line.split(/\s+/);
        if (!existsSync(path.join(this.prefix, p))) warnings.push(`exportfs: Failed to stat ${p}: No such file or directory\n`);
        for (const c of clients) {
          const m = /^([^()]*)(?:\(([^()]*)\))?$/.exec(c);
          if (m) exports.push({ path: p, client: m[1] || "*", options: m[2] ?? "ro" });
        }
      }
    }
    return { exports, warnings };
  }
}

function linkJson(l: EmuLink, details: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = { ifindex: l.ifindex };
  if (l.link) out.link = l.link;
  out.ifname = l.ifname;
  out.flags = l.ifname === "lo" ? ["LOOPBACK", ...(l.up ? ["UP", "LOWER_UP"] : [])] : ["BROADCAST", "MULTICAST", ...(l.up ? ["UP", "LOWER_UP"] : [])];
  out.mtu = l.ifname === "lo" ? 65536 : 1500;
  out.operstate = l.ifname === "lo" ? "UNKNOWN" : l.up ? "UP" : "DOWN";
  out.link_type = l.ifname === "lo" ? "loopback" : "ether";
  if (details && l.kind) {
    out.linkinfo =
      l.kind === "vlan" ? { info_kind: "vlan", info_data: { protocol: "802.1Q", id: l.vlanId, flags: ["REORDER_HDR"] } } : { info_kind: l.kind };
  }
  if (l.alias) out.ifalias = l.alias;
  return out;
}

function addrJson(l: EmuLink): Record<string, unknown> {
  const { linkinfo: _drop, ifalias: _alias, ...base } = linkJson(l, false);
  return {
    ...base,
    addr_info: l.addresses.map((a) => ({ family: a.family, local: a.local, prefixlen: a.prefixlen, scope: a.local.startsWith("127.") ? "host" : "global" })),
  };
}
