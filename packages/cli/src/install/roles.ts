import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/**
 * What each role is on a target host. The layout is fixed so the systemd units in systemd/ can
 * name absolute paths:
 *   /usr/lib/pifleet/<name>/main.js, notify-exec.pl, package.json, manifest.json
 *                              (+ node_modules/ for native addons: the coordinator's SQLite)
 *   /etc/pifleet/<name>.yaml      config (0644)
 *   /etc/pifleet/<name>.secret    agent secret (0600, owned by the service user)
 *   /etc/systemd/system/<unit>.service
 */
export type RoleName = "pi" | "fileserver" | "coordinator";

export interface Role {
  role: RoleName;
  /** File and directory name on the target: config `<name>.yaml`, code `/usr/lib/pifleet/<name>`. */
  name: string;
  /** Workspace package whose dist/main.js is bundled. */
  package: string;
  unit: string;
  /** Who the unit runs as; owns the secret file. */
  user: string;
  /** Native addons shipped beside the bundle (esbuild cannot inline a .node file). */
  natives: string[];
  /** Plain JS packages shipped beside the bundle, not bundled (they read files next to their code). */
  packages?: string[];
  /**
   * The oldest Node major the bundle runs on (esbuild's target, the installer's check). The Pi
   * agent runs on the distribution's own nodejs: 18 on Debian 12 and Raspberry Pi OS bookworm.
   */
  minNode: 18 | 20;
  /** Extra files the role installs, by target path → repository file. */
  extras: { target: string; source: string; mode: number }[];
  /** Static files shipped inside the bundle: workspace folder → folder in the bundle. */
  assets?: { from: string; to: string }[];
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");
export const SYSTEMD_DIR = path.join(repoRoot, "systemd");
export const WORKSPACE_ROOT = repoRoot;

export const ROLES: Record<RoleName, Role> = {
  pi: {
    role: "pi",
    name: "pi-agent",
    package: "pi-agent",
    unit: "pifleet-pi-agent",
    user: "pifleet",
    // None: one bundle runs on every Pi (arm64, armhf) and every Node from 18 on.
    natives: [],
    minNode: 18,
    extras: [{ target: "/etc/polkit-1/rules.d/60-pifleet-pi-agent.rules", source: "pifleet-pi-agent.rules", mode: 0o644 }],
  },
  fileserver: {
    role: "fileserver",
    name: "fileserver",
    package: "fileserver-agent",
    unit: "pifleet-fileserver",
    user: "root",
    natives: [],
    minNode: 20,
    extras: [],
  },
  coordinator: {
    role: "coordinator",
    name: "coordinator",
    package: "coordinator",
    unit: "pifleet-coordinator",
    user: "pifleet",
    natives: ["better-sqlite3"],
    // etcd3 (HA mode) is shipped as a package, not bundled: it and grpc load .proto files from
    // beside their own code at run time (__dirname), which an ESM bundle does not have.
    packages: ["etcd3"],
    minNode: 20,
    extras: [],
    // The dashboard: point coordinator.yaml's staticDir at /usr/lib/pifleet/coordinator/dashboard.
    assets: [{ from: "packages/dashboard/dist/public", to: "dashboard" }],
  },
};

export function roleOf(text: string): Role | undefined {
  return (ROLES as Record<string, Role | undefined>)[text];
}

/** Absolute target paths, under `prefix` ("/" on a real host; a sandbox folder in tests). */
export function layoutOf(role: Role, prefix = "/") {
  const at = (p: string) => path.posix.join(prefix, p);
  return {
    libDir: at(`/usr/lib/pifleet/${role.name}`),
    config: at(`/etc/pifleet/${role.name}.yaml`),
    secret: at(`/etc/pifleet/${role.name}.secret`),
    unit: at(`/etc/systemd/system/${role.unit}.service`),
    extras: role.extras.map((e) => ({ ...e, target: at(e.target) })),
  };
}

/** The file in each bundle that starts the daemon with its notify socket (see systemd/notify-exec.pl). */
export const NOTIFY_EXEC = "notify-exec.pl";

/** The command line the unit runs: the installer and the unit files must agree on it. */
export function execStartOf(role: Role): string {
  const layout = layoutOf(role);
  return `/usr/bin/perl ${layout.libDir}/${NOTIFY_EXEC} /usr/bin/node ${layout.libDir}/main.js --config ${layout.config}`;
}

export function unitText(role: Role): string {
  return readFileSync(path.join(SYSTEMD_DIR, `${role.unit}.service`), "utf8");
}
