import { readFileSync } from "node:fs";
import { run } from "./exec.js";

/** The host's Debian release codename (e.g. `bookworm`): the lab's guests run the same release. */
export function hostCodename(): string {
  const osRelease = readFileSync("/etc/os-release", "utf8");
  const codename = /^VERSION_CODENAME=["']?([a-z]+)/m.exec(osRelease)?.[1];
  if (!codename) throw new Error("lab: /etc/os-release names no VERSION_CODENAME (the lab needs a Debian host)");
  return codename;
}

/**
 * The Debian archives this machine's apt is configured for, for `codename` and its -updates and
 * -security suites, as one-line sources entries (`deb URI SUITE COMPONENT`). They come from
 * `apt-cache policy`, so mmdebstrap fetches from the same mirror apt does, and third-party
 * repositories on the host (origin other than Debian) are left out.
 */
export async function debianSources(codename: string): Promise<string[]> {
  const { stdout } = await run("apt-cache", ["policy"]);
  const lines = stdout.split("\n");
  const entries = new Set<string>();
  for (let i = 0; i < lines.length - 1; i++) {
    const m = /^\s*-?\d+\s+(\S+:\/\/\S+)\s+(\S+)\/(\S+)\s+\S+\s+Packages\s*$/.exec(lines[i]);
    if (!m) continue;
    const release = lines[i + 1].trim();
    if (!release.startsWith("release ")) continue;
    const fields = Object.fromEntries(
      release
        .slice("release ".length)
        .split(",")
        .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
    );
    const [, uri, suite, component] = m;
    const ours = suite === codename || suite === `${codename}-updates` || suite === `${codename}-security`;
    if (fields.o === "Debian" && ours) entries.add(`deb ${uri} ${suite} ${component}`);
  }
  const list = [...entries].sort();
  if (!list.some((e) => e.split(" ")[2] === codename)) {
    throw new Error(`lab: apt knows no Debian archive for ${codename} (apt-cache policy); run apt-get update`);
  }
  return list;
}
