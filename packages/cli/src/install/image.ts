import path from "node:path";
import type { BundleManifest } from "./bundle.js";
import { InstallError, sh, type CommandResult } from "./remote.js";

/**
 * `pifleet install --prefix DIR --image`: DIR is a root filesystem image on the target (the
 * netboot golden image on the fileserver, which the fileserver agent copies into each Pi's root).
 * Everything here acts on the image's files with the target's own tools — useradd --prefix,
 * systemctl --root — and never runs a binary of the image: it may be another CPU's, and nothing
 * may start inside it.
 */

type Remote = { run(command: string): Promise<CommandResult>; check(command: string, what?: string): Promise<string>; label: string };

/** What makes a folder a root filesystem image: an os-release and systemd's unit folder. */
export const IMAGE_MARKS = { osRelease: ["etc/os-release", "usr/lib/os-release"], systemd: "etc/systemd/system" } as const;

/** The marks missing under `prefix` (empty: it is a root image), in one exec. */
export async function missingImageMarks(remote: Remote, prefix: string): Promise<string[]> {
  const at = (p: string) => path.posix.join(prefix, p);
  // -L too: etc/os-release is a symlink (to ../usr/lib/os-release), and an absolute one would
  // resolve against the target's own root, not the image's.
  const script = 'for p; do if [ -e "$p" ] || [ -L "$p" ]; then printf "Y %s\\n" "$p"; fi; done';
  const paths = [...IMAGE_MARKS.osRelease, IMAGE_MARKS.systemd].map(at);
  const text = await remote.check(`sh -c ${sh(script)} sh ${paths.map(sh).join(" ")}`, `looking at ${prefix}`);
  const present = new Set(text.split("\n").filter((l) => l.startsWith("Y ")).map((l) => l.slice(2)));
  const missing: string[] = [];
  if (!IMAGE_MARKS.osRelease.some((p) => present.has(at(p)))) missing.push(`${IMAGE_MARKS.osRelease.map(at).join(" or ")}`);
  if (!present.has(at(IMAGE_MARKS.systemd))) missing.push(`${at(IMAGE_MARKS.systemd)}/`);
  return missing;
}

export async function requireImage(remote: Remote, prefix: string): Promise<void> {
  const missing = await missingImageMarks(remote, prefix);
  if (missing.length > 0) {
    throw new InstallError(
      `--image: ${prefix} on ${remote.label} is not a root filesystem image: no ${missing.join(", no ")} (an image has an os-release and systemd's etc/systemd/system; without --image, --prefix installs files only)`,
    );
  }
}

export interface DpkgPackage {
  package: string;
  status: string;
  version: string;
  architecture: string;
}

/** The stanzas of a dpkg status file (only the fields needed here). */
export function parseDpkgStatus(text: string): Map<string, DpkgPackage> {
  const out = new Map<string, DpkgPackage>();
  for (const stanza of text.split(/\n\s*\n/)) {
    const field = (name: string) => new RegExp(`^${name}:[ \\t]*(.*)$`, "mi").exec(stanza)?.[1].trim() ?? "";
    const pkg = field("Package");
    if (pkg) out.set(pkg, { package: pkg, status: field("Status"), version: field("Version"), architecture: field("Architecture") });
  }
  return out;
}

/** The upstream major of a Debian version: `18.19.0+dfsg-6~deb12u2` → 18, `1:20.1.0-1` → 20. */
export function debianMajor(version: string): number | undefined {
  const m = /^(?:\d+:)?(\d+)\./.exec(version);
  return m ? Number(m[1]) : undefined;
}

/**
 * The image's /usr/bin/node and /usr/bin/perl, judged from its dpkg status and its files — never
 * by running them. Throws naming what is missing or too old.
 */
export async function checkImageRuntime(remote: Remote, prefix: string, manifest: BundleManifest, out: (l: string) => void): Promise<void> {
  const at = (p: string) => path.posix.join(prefix, p);
  if (manifest.natives.length > 0) {
    throw new InstallError(
      `--image: the ${manifest.role} bundle carries native addons (${manifest.natives.join(", ")}), whose Node ABI only running the image's node could tell; install it on the running host instead`,
    );
  }
  const status = at("var/lib/dpkg/status");
  const script = [
    'for f in "$2" "$3"; do if [ -f "$f" ] || [ -L "$f" ]; then printf "Y %s\\n" "$f"; fi; done',
    'if [ -f "$1" ]; then echo "dpkg-status"; awk \'BEGIN { RS = ""; ORS = "\\n\\n" } $1 == "Package:" && ($2 == "nodejs" || $2 == "perl-base")\' "$1"; fi',
  ].join("\n");
  const text = await remote.check(`sh -c ${sh(script)} sh ${[status, at("usr/bin/node"), at("usr/bin/perl")].map(sh).join(" ")}`, `reading ${status}`);
  const [head, ...rest] = text.split("dpkg-status\n");
  const has = (p: string) => head.split("\n").includes(`Y ${at(p)}`);
  if (rest.length === 0) {
    throw new InstallError(`--image: ${status} does not exist on ${remote.label}: the image's Node version is read from its dpkg status (a Debian or Raspberry Pi OS image has one)`);
  }
  const pkgs = parseDpkgStatus(rest.join(""));
  const nodejs = pkgs.get("nodejs");
  const installed = (p?: DpkgPackage) => p && / installed$/.test(p.status);
  if (!installed(nodejs) || !has("usr/bin/node")) {
    throw new InstallError(
      `--image: no Node in the image ${prefix} (${!installed(nodejs) ? `package nodejs is ${nodejs ? `"${nodejs.status}"` : "not"} installed in ${status}` : `${at("usr/bin/node")} does not exist`}): the unit runs /usr/bin/node; install Node ${manifest.minNode} or later into the image (Debian 12's and Raspberry Pi OS bookworm's nodejs is 18)`,
    );
  }
  const major = debianMajor(nodejs!.version);
  if (major === undefined || major < manifest.minNode) {
    throw new InstallError(`--image: the image's nodejs is ${nodejs!.version} (${status}); the ${manifest.role} bundle needs Node ${manifest.minNode} or later`);
  }
  // The unit starts the daemon through notify-exec.pl, which needs perl's Socket and Fcntl: both in perl-base.
  if (!has("usr/bin/perl") || !installed(pkgs.get("perl-base"))) {
    throw new InstallError(
      `--image: no ${!has("usr/bin/perl") ? at("usr/bin/perl") : `perl-base installed in ${status}`} in the image: the unit starts the daemon through /usr/bin/perl (Socket and Fcntl, from perl-base); install perl-base into the image`,
    );
  }
  const arch = nodejs!.architecture;
  out(
    `  = the image's nodejs ${nodejs!.version} (${arch}) runs the bundle (Node ${manifest.minNode}+, any CPU); perl-base ${pkgs.get("perl-base")!.version} has Socket and Fcntl — read from ${status}, nothing in the image was run`,
  );
}

export interface ImageUser {
  uid: number;
  gid: number;
}

/** `user` as the image's own /etc/passwd has it (not the target's: its uids may differ). */
export async function imageUser(remote: Remote, prefix: string, user: string): Promise<ImageUser | undefined> {
  const passwd = path.posix.join(prefix, "etc/passwd");
  const text = await remote.check(`sh -c ${sh('[ -f "$1" ] && cat -- "$1" || true')} sh ${sh(passwd)}`, `reading ${passwd}`);
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f[0] === user && f.length >= 7) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  return undefined;
}

/** The target's useradd must know --prefix (shadow 4.6+; Debian 12 has 4.13) to write the image's files. */
export async function requireUseraddPrefix(remote: Remote): Promise<void> {
  const r = await remote.run("useradd --help");
  if (!/--prefix/.test(r.stdout + r.stderr)) {
    throw new InstallError(
      `--image: ${remote.label} has ${r.code === 127 ? "no useradd" : "a useradd without --prefix"}: the service user is created in the image with the target's useradd --prefix (shadow 4.6 or later, e.g. Debian 12's passwd package)`,
    );
  }
}

export function useraddInImage(prefix: string, user: string): string {
  return `useradd --prefix ${sh(prefix)} --system --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin ${sh(user)}`;
}

/** The target's systemctl, for offline enabling (--root needs no running systemd). */
export async function requireSystemctl(remote: Remote): Promise<void> {
  const r = await remote.run("systemctl --version");
  if (r.code !== 0) {
    throw new InstallError(`--image: ${remote.label} has no working systemctl (${(r.stderr || r.stdout).trim() || `exit ${r.code}`}): the unit is enabled in the image with systemctl --root`);
  }
}

/** Enables `unit` inside the image (its [Install] symlinks), only when it is not enabled yet. */
export async function enableInImage(
  remote: Remote,
  prefix: string,
  unit: string,
  dryRun: boolean,
  change: (l: string) => void,
  same: (l: string) => void,
): Promise<void> {
  const root = `--root=${sh(prefix)}`;
  const state = (await remote.run(`systemctl ${root} is-enabled ${unit}`)).stdout.trim();
  if (state === "enabled") {
    same(`${unit} enabled in the image`);
    return;
  }
  change(`systemctl ${root} enable ${unit}${state ? ` (was ${state})` : ""}`);
  if (!dryRun) await remote.check(`systemctl ${root} enable ${unit}`, `enabling ${unit} in the image ${prefix}`);
}
