import { renderPiPublicInterface, type PiPlan } from "@pifleet/core";
import { checkName } from "../safety.js";

/**
 * A Pi's identity inside its root, by path relative to the root: what makes a copy of the golden
 * image this Pi at boot — its hostname, and its static IPv6 on the tagged public VLAN exactly as
 * `pifleet plan` renders it (`pis/<name>/interfaces.d/<iface>`).
 */
export const HOSTNAME = "etc/hostname";
export const HOSTS = "etc/hosts";
export const INTERFACES_D = "etc/network/interfaces.d";

/** The address Debian maps the machine's own name to in /etc/hosts. */
const SELF = "127.0.1.1";

export function publicInterfaceFile(pi: PiPlan): string {
  return `${INTERFACES_D}/${checkName(pi.publicInterface, "the Pi's public interface")}`;
}

/** Every identity file's path inside the root, in the order they are written. */
export function identityPaths(pi: PiPlan): string[] {
  return [HOSTNAME, HOSTS, publicInterfaceFile(pi)];
}

/** What a root with no /etc/hosts gets: Debian's defaults plus the Pi's own name. */
function defaultHosts(name: string): string {
  return `127.0.0.1 localhost\n${SELF} ${name}\n::1 localhost ip6-localhost ip6-loopback\n`;
}

const isSelfLine = (line: string) => line.trim().split(/\s+/)[0] === SELF;

/**
 * `hosts` with its 127.0.1.1 line naming `name`: the first such line replaced (later ones, which
 * would map the address to a stale name, dropped), or one added after the 127.0.0.1 lines; every
 * other line kept as it is. A file that already says `127.0.1.1 <name>` (any spacing) comes back
 * unchanged, so a second apply writes nothing.
 */
export function hostsWithName(hosts: string | null, name: string): string {
  if (hosts === null) return defaultHosts(name);
  const lines = hosts.split("\n");
  if (lines.at(-1) === "") lines.pop();
  const own = `${SELF} ${name}`;
  const out: string[] = [];
  let placed = false;
  for (const line of lines) {
    if (!isSelfLine(line)) {
      out.push(line);
      continue;
    }
    if (placed) continue;
    placed = true;
    const fields = line.trim().split(/\s+/);
    out.push(fields.length === 2 && fields[1] === name ? line : own);
  }
  if (!placed) {
    let at = 0;
    out.forEach((line, i) => {
      if (line.trim().split(/\s+/)[0] === "127.0.0.1") at = i + 1;
    });
    out.splice(at, 0, own);
  }
  return `${out.join("\n")}\n`;
}

/** The content each identity file should have, given the root's current /etc/hosts. */
export function desiredIdentity(pi: PiPlan, currentHosts: string | null): Map<string, string> {
  return new Map([
    [HOSTNAME, `${pi.name}\n`],
    [HOSTS, hostsWithName(currentHosts, pi.name)],
    [publicInterfaceFile(pi), renderPiPublicInterface(pi)],
  ]);
}
