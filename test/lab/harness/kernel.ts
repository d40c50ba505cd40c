import { chmodSync, readdirSync } from "node:fs";
import path from "node:path";
import { cached } from "./cache.js";
import { run } from "./exec.js";

export interface Kernel {
  /** Kernel release, e.g. `6.1.0-56-amd64`: the name of its folder under lib/modules. */
  release: string;
  /** Debian package and version it came from. */
  packageName: string;
  packageVersion: string;
  vmlinuz: string;
  /** Root of the unpacked package: modules under `lib/modules/<release>`, with modules.dep. */
  root: string;
  modulesDir: string;
}

/**
 * The kernel Debian's `linux-image-amd64` currently depends on, resolved through the machine's
 * own apt configuration (its mirror, its release), so the lab boots what a Debian fileserver runs.
 */
export async function resolveDebianKernel(): Promise<{ packageName: string; version: string }> {
  const meta = "linux-image-amd64";
  let depends: string;
  try {
    depends = (await run("apt-cache", ["depends", meta])).stdout;
  } catch (e) {
    throw new Error(`lab: apt-cache cannot resolve ${meta} (run apt-get update?): ${(e as Error).message}`);
  }
  const packageName = /Depends:\s*(linux-image-[0-9][^\s|]*)/.exec(depends)?.[1];
  if (!packageName) throw new Error(`lab: ${meta} depends on no linux-image-<release> package:\n${depends}`);
  const show = (await run("apt-cache", ["show", "--no-all-versions", packageName])).stdout;
  const version = /^Version:\s*(\S+)/m.exec(show)?.[1];
  if (!version) throw new Error(`lab: apt-cache show ${packageName} gives no Version`);
  return { packageName, version };
}

/** Downloads (never installs) Debian's kernel package, unpacks it and indexes its modules. */
export async function debianKernel(): Promise<Kernel> {
  const { packageName, version } = await resolveDebianKernel();
  const dir = await cached("kernel", { packageName, version, layout: 1 }, async (out) => {
    // apt drops to its sandbox user to download; it needs to write here.
    chmodSync(out, 0o777);
    await run("apt-get", ["download", "-q", `${packageName}=${version}`], { cwd: out, timeoutMs: 10 * 60_000 });
    const deb = readdirSync(out).find((f) => f.endsWith(".deb"));
    if (!deb) throw new Error(`lab: apt-get download left no .deb for ${packageName}`);
    await run("dpkg", ["-x", deb, "root"], { cwd: out });
    const release = onlyRelease(path.join(out, "root"));
    // The package ships no modules.dep: `depmod` normally runs at install time.
    await run("depmod", ["-b", path.join(out, "root"), release]);
    await run("rm", ["-f", deb], { cwd: out });
    chmodSync(out, 0o755);
  });
  const root = path.join(dir, "root");
  const release = onlyRelease(root);
  return {
    release,
    packageName,
    packageVersion: version,
    vmlinuz: path.join(root, "boot", `vmlinuz-${release}`),
    root,
    modulesDir: path.join(root, "lib", "modules", release),
  };
}

function onlyRelease(root: string): string {
  const releases = readdirSync(path.join(root, "lib", "modules"));
  if (releases.length !== 1) throw new Error(`lab: expected one kernel release in ${root}, found ${releases.join(", ")}`);
  return releases[0];
}

/** Every module file `names` need, dependencies first, as paths relative to the modules folder. */
export async function moduleClosure(kernel: Kernel, names: readonly string[]): Promise<string[]> {
  const ordered: string[] = [];
  for (const name of names) {
    const { stdout } = await run("modprobe", ["-d", kernel.root, "-S", kernel.release, "--show-depends", name]);
    for (const line of stdout.split("\n")) {
      const m = /^insmod (\S+)/.exec(line.trim());
      if (!m) continue;
      const rel = path.relative(kernel.modulesDir, m[1]);
      if (!ordered.includes(rel)) ordered.push(rel);
    }
  }
  return ordered;
}
