import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { checkRoleConfig } from "./config-check.js";
import os from "node:os";
import path from "node:path";
import { buildBundle, bundleFiles, loadBundle, sha256, type BundleManifest } from "./bundle.js";
import { checkImageRuntime, enableInImage, imageUser, missingImageMarks, requireImage, requireSystemctl, requireUseraddPrefix, useraddInImage, type ImageUser } from "./image.js";
import { InstallError, RemoteHost, sh, type SshTarget } from "./remote.js";
import { ReportTimeout, seconds, type ReportWatch } from "./report-wait.js";
import { layoutOf, NOTIFY_EXEC, SYSTEMD_DIR, unitText, type Role } from "./roles.js";

/**
 * `pifleet install`: puts one role on one host over SSH and leaves it running. Every step reads
 * the target first and changes only what differs, so a second run reports 0 changes; --dry-run
 * does the reading and prints what it would change.
 */

export interface InstallOptions {
  role: Role;
  target: SshTarget;
  /** Local files to install as the role's config and secret. */
  config?: string;
  secretFile?: string;
  /** Install root on the target ("/" for real; a sandbox folder in tests — then no users, no systemctl). */
  prefix: string;
  /**
   * --image: `prefix` is a root filesystem image (the netboot golden image): the service user is
   * created in it and the unit enabled offline (systemctl --root); nothing is started.
   */
  image?: boolean;
  start: boolean;
  dryRun: boolean;
  /** A bundle folder from scripts/bundle.mjs; built on the fly from packages/<role>/dist when absent. */
  bundleDir?: string;
  activeTimeoutMs: number;
  /**
   * --wait-report: a watcher on the coordinator's feed, started here before the target is touched
   * and asked, once the unit is active, for the agent's first report.
   */
  reportWait?: ReportWatch;
  out: (line: string) => void;
}

export interface InstallSummary {
  changes: number;
  /** One line per change made (or, with dryRun, that would be made). */
  actions: string[];
}

/**
 * Every file `pifleet install` puts on a host for `role`, at its path under `prefix`, with its
 * mode and (for the secret) owner: the bundle, config, secret, unit and the role's extras.
 */
export function plannedFiles(role: Role, bundleDir: string, manifest: BundleManifest, options: { config?: Buffer; secret?: Buffer; prefix: string }): DesiredFile[] {
  const layout = layoutOf(role, options.prefix);
  const desired: DesiredFile[] = bundleFiles(bundleDir, manifest).map((f) => ({
    path: path.posix.join(layout.libDir, f.rel),
    data: f.data,
    mode: 0o644,
    what: "bundle",
  }));
  if (options.config) desired.push({ path: layout.config, data: options.config, mode: 0o644, what: "config" });
  if (options.secret) desired.push({ path: layout.secret, data: options.secret, mode: 0o600, owner: role.user, what: "secret" });
  desired.push({ path: layout.unit, data: Buffer.from(unitText(role)), mode: 0o644, what: "unit" });
  for (const extra of layout.extras) {
    desired.push({ path: extra.target, data: readFileSync(path.join(SYSTEMD_DIR, extra.source)), mode: extra.mode, what: "extra" });
  }
  return desired;
}

export interface DesiredFile {
  path: string;
  data: Buffer;
  mode: number;
  /** Enforced when installing at "/" (by name) or into an image (by the image's uid); a sandbox has no service user. */
  owner?: string;
  what: string;
}

interface RemoteFile {
  sha256: string;
  mode: number;
  /** The owner's name as the target resolves it, and the numeric ids (what an image's files carry). */
  owner: string;
  uid: number;
  gid: number;
}

/** Who a file must belong to: by name on a real host, by the image's own ids in an image. */
interface OwnerSpec {
  chown: string;
  label: string;
  is(have: RemoteFile): boolean;
}

export async function install(options: InstallOptions): Promise<InstallSummary> {
  const { role, prefix } = options;
  const real = prefix === "/";
  if (options.image && real) throw new InstallError("--image: needs --prefix DIR, the root filesystem image to install into (not /)");

  // Everything local first: a bad argument must fail before anything on the target is touched.
  const config = options.config ? readLocal(options.config, "--config") : undefined;
  if (config && options.config) checkRoleConfig(role.role, config.toString("utf8"), options.config);
  const secret = options.secretFile ? readLocal(options.secretFile, "--secret-file") : undefined;
  if (secret && secret.toString("utf8").trim() === "") throw new InstallError(`--secret-file ${options.secretFile} is empty`);
  let tempBundle: string | undefined;
  let bundleDir = options.bundleDir;
  if (!bundleDir) {
    tempBundle = mkdtempSync(path.join(os.tmpdir(), `pifleet-bundle-${role.name}-`));
    bundleDir = tempBundle;
    await buildBundle(role, { outDir: bundleDir });
  }
  try {
    const manifest = loadBundle(bundleDir, role);
    return await installOn(options, manifest, plannedFiles(role, bundleDir, manifest, { config, secret, prefix }), real);
  } finally {
    if (tempBundle) rmSync(tempBundle, { recursive: true, force: true });
  }
}

async function installOn(options: InstallOptions, manifest: BundleManifest, desired: DesiredFile[], real: boolean): Promise<InstallSummary> {
  const { role, prefix, out, dryRun } = options;
  const image = Boolean(options.image);
  const layout = layoutOf(role, prefix);
  const actions: string[] = [];
  const change = (line: string) => {
    const text = dryRun ? `would ${line}` : line;
    actions.push(text);
    out(`  * ${text}`);
  };
  const same = (line: string) => out(`  = ${line}`);
  const note = (line: string) => out(`  - ${line}`);

  out(
    `pifleet install ${role.role} (${role.unit}) on ${options.target.host}${real ? "" : image ? ` into the root image ${prefix}` : ` under ${prefix}`}${dryRun ? " — dry run, nothing will be changed" : ""}`,
  );
  // The feed connects while the files go up: by the time the unit is active it has its snapshot.
  if (!dryRun) options.reportWait?.start();
  let remote: RemoteHost | undefined;
  try {
    remote = await RemoteHost.connect(options.target);
    out(`  = connected as ${remote.label}${remote.hostKey.ok && remote.hostKey.how === "added" ? ` (host key added to ${options.target.knownHosts})` : ""}`);

    // Every check before the first change: a target that cannot take the install is not half-changed.
    if (image) {
      await requireImage(remote, prefix);
      await checkImageRuntime(remote, prefix, manifest, out);
      await requireSystemctl(remote);
    } else {
      await checkNode(remote, manifest, out);
      if (!real && (await missingImageMarks(remote, prefix)).length === 0) {
        note(`${prefix} looks like a root filesystem image: pass --image to create the service user in it and enable the unit (a netboot golden image)`);
      }
    }

    let owner: ImageUser | undefined;
    if (role.user !== "root" && image) {
      owner = await imageUser(remote, prefix, role.user);
      if (owner) same(`service user ${role.user} exists in the image (uid ${owner.uid})`);
      else {
        await requireUseraddPrefix(remote);
        change(`create system user ${role.user} in the image (useradd --prefix ${prefix})`);
        if (!dryRun) {
          await remote.check(useraddInImage(prefix, role.user), `creating user ${role.user} in the image ${prefix}`);
          owner = await imageUser(remote, prefix, role.user);
          if (!owner) throw new InstallError(`${remote.label}: useradd --prefix ${prefix} succeeded, but ${prefix}/etc/passwd has no ${role.user}`);
        }
      }
    } else if (role.user !== "root") {
      if (!real) note(`service user ${role.user}: not created (--prefix installs files only)`);
      else if ((await remote.run(`id -u ${sh(role.user)}`)).code === 0) same(`service user ${role.user} exists`);
      else {
        change(`create system user ${role.user}`);
        if (!dryRun) {
          await remote.check(
            `useradd --system --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin ${sh(role.user)}`,
            `creating user ${role.user}`,
          );
        }
      }
    }

    const dirs = [...new Set(desired.map((d) => path.posix.dirname(d.path)))].sort();
    const { files: state, missingDirs, installed: installedLib } = await survey(remote, desired.map((d) => d.path), dirs, layout.libDir);
    for (const dir of missingDirs) change(`create directory ${dir}`);
    if (!dryRun && missingDirs.length > 0) await remote.check(`mkdir -p -m 0755 -- ${missingDirs.map(sh).join(" ")}`, "creating directories");

    let filesChanged = false;
    let unitChanged = false;
    for (const file of desired) {
      const have = state.get(file.path);
      const wantSha = sha256(file.data);
      const wantOwner = ownerSpec(file.owner, real, image, owner);
      if (!have || have.sha256 !== wantSha) {
        change(`${have ? "update" : "install"} ${file.path} (${file.what}, ${formatSize(file.data.length)}, mode ${octal(file.mode)})`);
        if (!dryRun) {
          await remote.writeFile(file.path, file.data, file.mode);
          if (wantOwner) await remote.check(`chown ${sh(wantOwner.chown)} -- ${sh(file.path)}`, `chown ${file.path}`);
        }
        filesChanged = true;
        if (file.what === "unit") unitChanged = true;
        continue;
      }
      let fixed = false;
      if (have.mode !== file.mode) {
        change(`chmod ${octal(file.mode)} ${file.path} (was ${octal(have.mode)})`);
        if (!dryRun) await remote.check(`chmod ${octal(file.mode)} -- ${sh(file.path)}`, `chmod ${file.path}`);
        fixed = true;
      }
      if (wantOwner && !wantOwner.is(have)) {
        change(`chown ${wantOwner.label} ${file.path} (was ${image ? `uid ${have.uid}` : have.owner})`);
        if (!dryRun) await remote.check(`chown ${sh(wantOwner.chown)} -- ${sh(file.path)}`, `chown ${file.path}`);
        fixed = true;
      }
      if (fixed) filesChanged = true;
      else same(`${file.path} unchanged`);
    }
    const wanted = new Set(desired.map((d) => d.path));
    const stale = installedLib.filter((p) => !wanted.has(p));
    for (const p of stale) change(`remove ${p} (no longer in the bundle)`);
    if (!dryRun && stale.length > 0) await remote.check(`rm -f -- ${stale.map(sh).join(" ")}`, "removing stale files");
    if (stale.length > 0) filesChanged = true;

    const configMissing = !desired.some((d) => d.what === "config") && !state.has(layout.config);
    if (image) {
      // Normal for a golden image: each Pi's config and secret go into its own root, written there
      // by the fileserver agent when it builds the root.
      if (configMissing) note(`no ${layout.config} in the image: each root gets its own from the fileserver agent`);
    } else if (configMissing) {
      note(`${layout.config} does not exist: the service cannot start until it does (pass --config FILE)`);
    }

    if (image) {
      await enableInImage(remote, prefix, `${role.unit}.service`, dryRun, change, same);
      note("nothing started: the unit starts on each Pi that boots a root copied from this image");
    } else if (!real) {
      note("systemctl daemon-reload / enable / restart: skipped (--prefix installs files only; nothing runs them)");
    } else {
      await manageService(remote, options, { unitChanged, filesChanged, configMissing }, change, same, note);
    }
  } finally {
    remote?.close();
    await options.reportWait?.stop();
  }
  out(
    actions.length === 0
      ? `no changes: ${role.unit} on ${options.target.host} is already as planned`
      : `${actions.length} change${actions.length === 1 ? "" : "s"}${dryRun ? " would be made (dry run: none made)" : " made"}`,
  );
  return { changes: actions.length, actions };
}

async function checkNode(remote: RemoteHost, manifest: BundleManifest, out: (l: string) => void): Promise<void> {
  const r = await remote.run(`/usr/bin/node -p ${sh('[process.versions.node, process.versions.modules, process.arch, process.platform].join(" ")')}`);
  if (r.code !== 0) {
    throw new InstallError(
      `${remote.label}: no working /usr/bin/node (${(r.stderr || r.stdout).trim() || `exit ${r.code}`}); the units run /usr/bin/node: install Node ${manifest.minNode} or later there (Debian 12's and Raspberry Pi OS bookworm's nodejs is 18)`,
    );
  }
  const [version, abi, arch, platform] = r.stdout.trim().split(" ");
  const major = Number(version.split(".")[0]);
  if (!(major >= manifest.minNode)) {
    throw new InstallError(`${remote.label}: /usr/bin/node is v${version}; the ${manifest.role} bundle needs Node ${manifest.minNode} or later`);
  }
  if (manifest.natives.length > 0 && (arch !== manifest.arch || platform !== manifest.platform || abi !== manifest.nodeModulesAbi)) {
    throw new InstallError(
      `${remote.label}: the bundle's native addons (${manifest.natives.join(", ")}) were built for ${manifest.platform}-${manifest.arch}, Node ABI ${manifest.nodeModulesAbi}, but the target runs ${platform}-${arch}, Node v${version} (ABI ${abi}): build the bundle on a matching machine (node scripts/bundle.mjs ${manifest.role}) and pass it with --bundle`,
    );
  }
  // The unit starts the daemon through notify-exec.pl: without perl's Socket and Fcntl (perl-base)
  // it would not start at all.
  const perl = await remote.run(`/usr/bin/perl -MSocket -MFcntl -e ${sh('print "ok\n"')}`);
  if (perl.code !== 0 || perl.stdout.trim() !== "ok") {
    throw new InstallError(
      `${remote.label}: no working /usr/bin/perl with Socket and Fcntl (${(perl.stderr || perl.stdout).trim() || `exit ${perl.code}`}): the unit starts the daemon through ${NOTIFY_EXEC}; install perl-base`,
    );
  }
  out(
    `  = /usr/bin/node v${version} (${platform}-${arch}${manifest.natives.length > 0 ? `, ABI ${abi}` : ""}) ${manifest.natives.length > 0 ? "matches the bundle's native addons" : `runs the bundle (Node ${manifest.minNode}+, any CPU)`}; /usr/bin/perl has Socket and Fcntl`,
  );
}

interface Survey {
  files: Map<string, RemoteFile>;
  missingDirs: string[];
  /** Every file now under the role's lib dir. */
  installed: string[];
}

/**
 * Everything the installer needs to know about the target's files, in one exec: each exec is a
 * round trip and a fork or two on the target, and a Pi is slow at both.
 */
async function survey(remote: RemoteHost, paths: string[], dirs: string[], libDir: string): Promise<Survey> {
  const script = [
    'lib=$1; shift',
    'while [ "$1" != "--" ]; do [ -d "$1" ] || printf "D %s\\n" "$1"; shift; done; shift',
    'if [ -d "$lib" ]; then find "$lib" -type f -printf "F %p\\n"; fi',
    'for f; do [ -f "$f" ] && printf "%s\\0" "$f"; done | xargs -0 -r sh -c \'sha256sum -- "$@" | sed "s/^/H /" && stat -c "S %a:%U:%u:%g %n" -- "$@"\' sh',
  ].join("\n");
  const text = await remote.check(`sh -c ${sh(script)} sh ${[libDir, ...dirs, "--", ...paths].map(sh).join(" ")}`, "reading installed files");
  const hashes = new Map<string, string>();
  const stats = new Map<string, { mode: number; owner: string; uid: number; gid: number }>();
  const missingDirs: string[] = [];
  const installed: string[] = [];
  for (const line of text.split("\n")) {
    const tag = line.slice(0, 2);
    const rest = line.slice(2);
    if (tag === "D ") missingDirs.push(rest);
    else if (tag === "F ") installed.push(rest);
    else if (tag === "H ") {
      const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(rest);
      if (m) hashes.set(m[2], m[1]);
    } else if (tag === "S ") {
      const m = /^([0-7]+):(\S+):(\d+):(\d+) (.+)$/.exec(rest);
      if (m) stats.set(m[5], { mode: parseInt(m[1], 8), owner: m[2], uid: Number(m[3]), gid: Number(m[4]) });
    }
  }
  const files = new Map<string, RemoteFile>();
  for (const [file, sha] of hashes) {
    const st = stats.get(file);
    if (st) files.set(file, { sha256: sha, ...st });
  }
  return { files, missingDirs, installed: installed.sort() };
}

/**
 * Enables and (re)starts the role's unit; a unit that does not come up is reported with its state
 * and journal. With `reportWait`, then waits for the agent's first report to the coordinator; an
 * agent that does not report is reported with what the coordinator said and the same journal.
 */
export async function manageService(
  remote: Pick<RemoteHost, "run" | "check" | "label">,
  options: InstallOptions,
  changed: { unitChanged: boolean; filesChanged: boolean; configMissing: boolean },
  change: (l: string) => void,
  same: (l: string) => void,
  note: (l: string) => void,
): Promise<void> {
  const unit = `${options.role.unit}.service`;
  const dry = options.dryRun;
  if (changed.unitChanged) {
    change("systemctl daemon-reload");
    if (!dry) await remote.check("systemctl daemon-reload");
  }
  const enabled = (await remote.run(`systemctl is-enabled ${unit}`)).stdout.trim();
  if (enabled === "enabled") same(`${unit} enabled`);
  else {
    change(`systemctl enable ${unit}`);
    if (!dry) await remote.check(`systemctl enable ${unit}`);
  }
  if (!options.start) {
    note(`not started (--no-start)${changed.filesChanged ? `: run systemctl restart ${unit} to use the new files` : ""}`);
    return;
  }
  if (changed.configMissing) throw new InstallError(`${remote.label}: cannot start ${unit}: ${layoutOf(options.role).config} is missing (pass --config FILE)`);
  const active = (await remote.run(`systemctl is-active ${unit}`)).stdout.trim();
  if (!changed.filesChanged && active === "active") {
    same(`${unit} active`);
    if (dry && options.reportWait) note(`would wait for ${options.reportWait.o.agent} to report to the coordinator`);
    else if (!dry) await waitForReport(remote, options, undefined, same);
    return;
  }
  change(`systemctl restart ${unit}${active === "active" ? "" : ` (was ${active || "unknown"})`}`);
  if (dry) {
    if (options.reportWait) note(`would wait for ${options.reportWait.o.agent} to report to the coordinator`);
    return;
  }
  // A unit that failed often enough (an earlier install with a bad secret, say) hit its start
  // limit, and systemd refuses even a manual restart until that is reset.
  if (active === "failed") await remote.run(`systemctl reset-failed ${unit}`);
  const restart = await remote.run(`systemctl restart ${unit}`);
  // Whatever the old process said to the coordinator, it said before this: it was stopped first.
  const restarted = Date.now();
  const deadline = restarted + options.activeTimeoutMs;
  for (;;) {
    const now = (await remote.run(`systemctl is-active ${unit}`)).stdout.trim();
    if (now === "active" && restart.code === 0) {
      same(`${unit} active`);
      await waitForReport(remote, options, restarted, same);
      return;
    }
    if (now === "failed" || restart.code !== 0 || Date.now() > deadline) {
      const { state, journal } = await unitReport(remote, unit);
      throw new InstallError(
        `${remote.label}: ${unit} did not become active (${now || "unknown"}${restart.code !== 0 ? `, systemctl restart exited ${restart.code}` : ""}; ${state}). Last journal lines:\n${journal}`,
      );
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * What systemd knows about a unit that let us down (e.g. SubState=auto-restart, Result=exit-code
 * or timeout) and what the daemon said: the end of every failure message about it.
 */
async function unitReport(remote: Pick<RemoteHost, "run">, unit: string): Promise<{ state: string; journal: string }> {
  const show = await remote.run(`systemctl show -p ActiveState,SubState,Result ${unit}`);
  const state = show.stdout.trim().split("\n").filter(Boolean).join(" ");
  const journal = await remote.run(`journalctl -u ${unit} -n 20 --no-pager -o cat`);
  return { state: state || "systemctl show said nothing", journal: journal.stdout.trim() || "(none)" };
}

/** --wait-report: the agent's first report after `restarted` (nothing restarted: after now). */
async function waitForReport(remote: Pick<RemoteHost, "run" | "label">, options: InstallOptions, restarted: number | undefined, same: (l: string) => void): Promise<void> {
  const w = options.reportWait;
  if (!w) return;
  const unit = `${options.role.unit}.service`;
  const from = Date.now();
  try {
    const { sighting, at } = await w.until(restarted ?? from, restarted === undefined ? "the wait began" : "the restart");
    same(
      restarted === undefined
        ? `${sighting.said} — reporting to the coordinator (${w.url}): a report ${seconds(at - from)} after asking`
        : `${sighting.said} — first report to the coordinator (${w.url}) ${seconds(at - restarted)} after systemctl restart returned`,
    );
  } catch (err) {
    if (!(err instanceof ReportTimeout)) throw err;
    const { state, journal } = await unitReport(remote, unit);
    throw new InstallError(
      `${remote.label}: ${unit} is active (${state}), but ${err.timedOut ? `its agent did not report to the coordinator (${w.url}) within ${seconds(w.o.timeoutMs)}` : `its report cannot be waited for`}: ${err.message}. Last journal lines:\n${journal}`,
    );
  }
}

function ownerSpec(user: string | undefined, real: boolean, image: boolean, inImage: ImageUser | undefined): OwnerSpec | undefined {
  if (!user) return undefined;
  if (real) return { chown: `${user}:`, label: user, is: (have) => have.owner === user };
  if (!image) return undefined;
  // A dry run before the user exists in the image: its ids are not known yet, and nothing is changed.
  if (!inImage) return { chown: `${user}:`, label: `${user} (in the image, once created)`, is: () => false };
  // The image's ids, not the target's: the same name may have another uid on the fileserver.
  return {
    chown: `${inImage.uid}:${inImage.gid}`,
    label: `${user} (uid ${inImage.uid} in the image)`,
    is: (have) => have.uid === inImage.uid && have.gid === inImage.gid,
  };
}

function readLocal(file: string, flag: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new InstallError(`${flag} ${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}

function octal(mode: number): string {
  return `0${mode.toString(8)}`;
}

function formatSize(bytes: number): string {
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  if (bytes >= 1e3) return `${(bytes / 1e3).toFixed(1)} kB`;
  return `${bytes} B`;
}
