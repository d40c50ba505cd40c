import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildBundle } from "../src/install/bundle.js";
import { install, type InstallOptions } from "../src/install/installer.js";
import { InstallError } from "../src/install/remote.js";
import { ROLES } from "../src/install/roles.js";
import { startSshd, type TestSshd } from "./install-harness.js";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const role = ROLES.pi;

/**
 * `pifleet install --prefix DIR --image` over real SSH (Debian's sshd on loopback, as root) into a
 * small root filesystem tree made here: the target's real `useradd --prefix` and `systemctl --root`
 * (offline, no running systemd needed) act on it. The tree's /usr/bin/node and /usr/bin/perl are
 * scripts that leave a mark when run: the installer must judge them from the image's dpkg status.
 */
describe("pifleet install --image (a netboot golden image under --prefix)", () => {
  let tmp: string;
  let sshd: TestSshd;
  let knownHosts: string;
  let bundleDir: string;
  let secretFile: string;
  let ranMark: string;
  let output: string[];
  let n = 0;

  const options = (prefix: string, over: Partial<InstallOptions> = {}): InstallOptions => ({
    role,
    target: { host: "127.0.0.1", port: sshd.port, user: "root", identity: sshd.userKey, knownHosts, acceptNewHostKey: false, timeoutMs: 10_000 },
    prefix,
    image: true,
    start: true,
    dryRun: false,
    bundleDir,
    activeTimeoutMs: 10_000,
    out: (line) => output.push(line),
    ...over,
  });
  const sha = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");
  const hostPifleetUid = (): number | undefined => {
    const line = readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.startsWith("pifleet:"));
    return line ? Number(line.split(":")[2]) : undefined;
  };
  const imagePasswd = (prefix: string, user: string) => {
    const line = readFileSync(path.join(prefix, "etc/passwd"), "utf8").split("\n").find((l) => l.startsWith(`${user}:`));
    if (!line) return undefined;
    const f = line.split(":");
    return { uid: Number(f[2]), gid: Number(f[3]), home: f[5], shell: f[6] };
  };
  const filesUnder = (dir: string) =>
    execFileSync("find", [dir, "(", "-type", "f", "-o", "-type", "l", ")", "-printf", "%P %T@\\n"], { encoding: "utf8" }).split("\n").filter(Boolean).sort();

  /** A root filesystem tree as mmdebstrap would leave it, cut down to what the installer reads. */
  function makeImage(opts: { nodejs?: string | null; perl?: boolean; dpkg?: boolean } = {}): string {
    const root = path.join(tmp, `image-${++n}`);
    const put = (rel: string, text: string, mode = 0o644) => {
      mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
      writeFileSync(path.join(root, rel), text, { mode });
    };
    put("usr/lib/os-release", 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n');
    mkdirSync(path.join(root, "etc/systemd/system"), { recursive: true });
    // As in Debian: a relative symlink.
    symlinkSync("../usr/lib/os-release", path.join(root, "etc/os-release"));
    // The image's own system users. One holds the uid the host's pifleet has (if the host has one),
    // so the image's pifleet cannot get the host's uid by chance: a file owned by the host's
    // pifleet would then show up as the wrong uid.
    const hostUid = hostPifleetUid();
    const users = [
      ["root", 0],
      ["_apt", 42],
      ["img-svc", 999],
      ...(hostUid !== undefined && hostUid !== 999 && hostUid !== 42 && hostUid !== 0 ? [["img-taken", hostUid] as [string, number]] : []),
    ] as Array<[string, number]>;
    put("etc/passwd", users.map(([u, id]) => `${u}:x:${id}:${u === "_apt" ? 65534 : id}::/nonexistent:/usr/sbin/nologin\n`).join(""));
    put("etc/group", users.filter(([u]) => u !== "_apt").map(([u, id]) => `${u}:x:${id}:\n`).join("") + "nogroup:x:65534:\n");
    put("etc/shadow", users.map(([u]) => `${u}:*:19000:0:99999:7:::\n`).join(""), 0o640);
    put("etc/gshadow", users.filter(([u]) => u !== "_apt").map(([u]) => `${u}:*::\n`).join("") + "nogroup:*::\n", 0o640);
    const stanzas = [
      "Package: libc6\nStatus: install ok installed\nPriority: optional\nArchitecture: arm64\nVersion: 2.36-9+deb12u10\nDescription: GNU C Library\n",
    ];
    if (opts.perl !== false) stanzas.push("Package: perl-base\nEssential: yes\nStatus: install ok installed\nArchitecture: arm64\nVersion: 5.36.0-7+deb12u2\nDescription: minimal Perl system\n");
    if (opts.nodejs !== null) {
      stanzas.push(`Package: nodejs\nStatus: install ok installed\nPriority: optional\nArchitecture: arm64\nVersion: ${opts.nodejs ?? "18.19.0+dfsg-6~deb12u2"}\nDepends: libc6 (>= 2.34)\nDescription: evented I/O for V8 javascript - runtime executable\n`);
    }
    if (opts.dpkg !== false) put("var/lib/dpkg/status", stanzas.join("\n"));
    const marker = `#!/bin/sh\necho "$0 was run" >> ${ranMark}\nexit 1\n`;
    if (opts.nodejs !== null) put("usr/bin/node", marker, 0o755);
    if (opts.perl !== false) put("usr/bin/perl", marker, 0o755);
    return root;
  }

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), "pifleet-install-image-"));
    ranMark = path.join(tmp, "image-binary-ran");
    sshd = await startSshd(tmp);
    knownHosts = path.join(tmp, "known_hosts");
    writeFileSync(knownHosts, `${sshd.hostKeyLine}\n`);
    const entry = path.join(tmp, "fixture-main.js");
    writeFileSync(entry, 'process.stdout.write("fixture daemon\\n");\n');
    bundleDir = path.join(tmp, "bundle");
    await buildBundle(role, { outDir: bundleDir, entry });
    secretFile = path.join(tmp, "pi01.secret");
    writeFileSync(secretFile, "s3cr3t-agent-credential\n");
  });

  afterAll(async () => {
    await sshd?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("creates the user in the image's passwd, enables the unit offline, installs bundle and unit; a second run changes nothing", async () => {
    const image = makeImage();
    const hostPasswd = sha("/etc/passwd");
    const hostGroup = sha("/etc/group");
    output = [];
    const first = await install(options(image));
    const text = output.join("\n");

    // The user is the image's: in its passwd and group, as the brief's useradd makes it; the host's untouched.
    const user = imagePasswd(image, "pifleet");
    expect(user).toBeDefined();
    expect(user).toMatchObject({ home: "/nonexistent", shell: "/usr/sbin/nologin" });
    expect(user!.uid).toBeLessThan(1000); // --system
    expect(readFileSync(path.join(image, "etc/group"), "utf8")).toContain(`pifleet:x:${user!.gid}:`);
    expect(readFileSync(path.join(image, "etc/shadow"), "utf8")).toMatch(/^pifleet:/m);
    expect(sha("/etc/passwd")).toBe(hostPasswd);
    expect(sha("/etc/group")).toBe(hostGroup);

    // Enabled as systemctl does it, inside the image: the [Install] WantedBy= symlink.
    const wants = path.join(image, "etc/systemd/system/multi-user.target.wants/pifleet-pi-agent.service");
    expect(readlinkSync(wants)).toBe("/etc/systemd/system/pifleet-pi-agent.service");
    expect(execFileSync("systemctl", [`--root=${image}`, "is-enabled", "pifleet-pi-agent.service"], { encoding: "utf8" }).trim()).toBe("enabled");

    expect(readFileSync(path.join(image, "etc/systemd/system/pifleet-pi-agent.service"), "utf8")).toBe(readFileSync(path.join(repo, "systemd/pifleet-pi-agent.service"), "utf8"));
    expect(readFileSync(path.join(image, "usr/lib/pifleet/pi-agent/main.js"), "utf8")).toBe(readFileSync(path.join(bundleDir, "main.js"), "utf8"));
    expect(readFileSync(path.join(image, "usr/lib/pifleet/pi-agent/notify-exec.pl"), "utf8")).toBe(readFileSync(path.join(repo, "systemd/notify-exec.pl"), "utf8"));
    expect(existsSync(path.join(image, "etc/polkit-1/rules.d/60-pifleet-pi-agent.rules"))).toBe(true);
    // No config or secret: each Pi's root gets its own from the fileserver agent.
    expect(existsSync(path.join(image, "etc/pifleet"))).toBe(false);

    expect(first.actions).toContain(`create system user pifleet in the image (useradd --prefix ${image})`);
    expect(first.actions).toContain(`systemctl --root=${image} enable pifleet-pi-agent.service (was disabled)`);
    expect(first.actions.filter((a) => /restart|daemon-reload|start/.test(a))).toEqual([]);
    expect(text).toContain(`into the root image ${image}`);
    expect(text).toContain(`the image's nodejs 18.19.0+dfsg-6~deb12u2 (arm64) runs the bundle (Node 18+, any CPU)`);
    expect(text).not.toMatch(/cannot start/);
    // The image's own binaries were never run.
    expect(existsSync(ranMark)).toBe(false);

    const before = filesUnder(image);
    output = [];
    const second = await install(options(image));
    expect(second).toEqual({ changes: 0, actions: [] });
    expect(output.join("\n")).toContain(`service user pifleet exists in the image (uid ${user!.uid})`);
    expect(output.join("\n")).toContain("pifleet-pi-agent.service enabled in the image");
    expect(output.at(-1)).toBe("no changes: pifleet-pi-agent on 127.0.0.1 is already as planned");
    expect(filesUnder(image)).toEqual(before);
    expect(existsSync(ranMark)).toBe(false);
  });

  it("a secret given with --image is owned by the image's uid for the user; --dry-run first changes nothing", async () => {
    const image = makeImage();
    const passwdBefore = readFileSync(path.join(image, "etc/passwd"), "utf8");
    output = [];
    const dry = await install(options(image, { secretFile, dryRun: true }));
    expect(dry.actions).toContain(`would create system user pifleet in the image (useradd --prefix ${image})`);
    expect(dry.actions).toContain(`would systemctl --root=${image} enable pifleet-pi-agent.service`);
    expect(dry.actions).toContain(`would install ${path.join(image, "etc/pifleet/pi-agent.secret")} (secret, 24 B, mode 0600)`);
    expect(readFileSync(path.join(image, "etc/passwd"), "utf8")).toBe(passwdBefore);
    expect(existsSync(path.join(image, "usr/lib/pifleet"))).toBe(false);
    expect(existsSync(path.join(image, "etc/systemd/system/multi-user.target.wants"))).toBe(false);

    await install(options(image, { secretFile, out: () => undefined }));
    const user = imagePasswd(image, "pifleet")!;
    const st = statSync(path.join(image, "etc/pifleet/pi-agent.secret"));
    expect({ uid: st.uid, gid: st.gid, mode: (st.mode & 0o777).toString(8) }).toEqual({ uid: user.uid, gid: user.gid, mode: "600" });
    const hostUid = hostPifleetUid();
    if (hostUid !== undefined) expect(st.uid).not.toBe(hostUid); // the image holds that uid for another user

    // Drift in the owner is repaired to the image's uid, and then nothing is left to do.
    execFileSync("chown", ["0:0", path.join(image, "etc/pifleet/pi-agent.secret")]);
    const fixed = await install(options(image, { secretFile, out: () => undefined }));
    expect(fixed.actions).toEqual([`chown pifleet (uid ${user.uid} in the image) ${path.join(image, "etc/pifleet/pi-agent.secret")} (was uid 0)`]);
    expect(statSync(path.join(image, "etc/pifleet/pi-agent.secret")).uid).toBe(user.uid);
    expect((await install(options(image, { secretFile, out: () => undefined }))).changes).toBe(0);
    expect(existsSync(ranMark)).toBe(false);
  });

  it("refuses --image on a folder that is not a root image, naming what is missing, and changes nothing", async () => {
    const plain = path.join(tmp, "plain");
    mkdirSync(plain);
    const lines: string[] = [];
    const err = await install(options(plain, { out: (l) => lines.push(l) })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InstallError);
    expect((err as Error).message).toBe(
      `--image: ${plain} on root@[127.0.0.1]:${sshd.port} is not a root filesystem image: no ${plain}/etc/os-release or ${plain}/usr/lib/os-release, no ${plain}/etc/systemd/system/ (an image has an os-release and systemd's etc/systemd/system; without --image, --prefix installs files only)`,
    );
    expect(execFileSync("find", [plain], { encoding: "utf8" }).trim()).toBe(plain);

    // Half an image (os-release, no systemd folder) names only what it lacks.
    const half = path.join(tmp, "half");
    mkdirSync(path.join(half, "etc"), { recursive: true });
    writeFileSync(path.join(half, "etc/os-release"), "ID=debian\n");
    await expect(install(options(half, { out: () => undefined }))).rejects.toThrow(new RegExp(`not a root filesystem image: no ${half}/etc/systemd/system/ \\(`));

    await expect(install(options("/", { out: () => undefined }))).rejects.toThrow("--image: needs --prefix DIR, the root filesystem image to install into (not /)");
  });

  it("refuses an image whose nodejs is too old, missing, or whose perl is missing, before changing anything", async () => {
    const cases: Array<[Parameters<typeof makeImage>[0], RegExp]> = [
      [{ nodejs: "16.20.2-1nodesource1" }, /^--image: the image's nodejs is 16\.20\.2-1nodesource1 \(.*var\/lib\/dpkg\/status\); the pi bundle needs Node 18 or later$/],
      [{ nodejs: null }, /^--image: no Node in the image .* \(package nodejs is not installed in .*var\/lib\/dpkg\/status\): the unit runs \/usr\/bin\/node/],
      [{ perl: false }, /^--image: no .*\/usr\/bin\/perl in the image: the unit starts the daemon through \/usr\/bin\/perl/],
      [{ dpkg: false }, /^--image: .*\/var\/lib\/dpkg\/status does not exist on root@/],
    ];
    for (const [opts, message] of cases) {
      const image = makeImage(opts);
      const passwd = readFileSync(path.join(image, "etc/passwd"), "utf8");
      await expect(install(options(image, { out: () => undefined }))).rejects.toThrow(message);
      expect(readFileSync(path.join(image, "etc/passwd"), "utf8")).toBe(passwd);
      expect(existsSync(path.join(image, "usr/lib/pifleet"))).toBe(false);
    }
    // Debian's Node 20 (an epoch-less Debian version) and one with an epoch pass.
    for (const nodejs of ["20.19.2+dfsg-1", "1:22.0.0-1"]) {
      expect((await install(options(makeImage({ nodejs }), { out: () => undefined }))).changes).toBeGreaterThan(3);
    }
    expect(existsSync(ranMark)).toBe(false);
  });

  it("the CLI: --image into a golden image as the README says, and --image without --prefix refused", () => {
    const image = makeImage();
    const cli = path.join(repo, "packages/cli/dist/main.js");
    const base = [cli, "install", "127.0.0.1", "--role", "pi", "--port", String(sshd.port), "--identity", sshd.userKey, "--known-hosts", knownHosts, "--bundle", bundleDir];
    const ok = spawnSync(process.execPath, [...base, "--prefix", `${image}/`, "--image"], { encoding: "utf8" });
    expect(ok.stderr).toBe("");
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/\n10 changes made\n$/);
    expect(readlinkSync(path.join(image, "etc/systemd/system/multi-user.target.wants/pifleet-pi-agent.service"))).toBe("/etc/systemd/system/pifleet-pi-agent.service");
    expect(imagePasswd(image, "pifleet")).toBeDefined();
    const again = spawnSync(process.execPath, [...base, "--prefix", image, "--image"], { encoding: "utf8" });
    expect(again.stdout).toMatch(/\nno changes: pifleet-pi-agent on 127\.0\.0\.1 is already as planned\n$/);

    const bad = spawnSync(process.execPath, [...base, "--image"], { encoding: "utf8" });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toBe("pifleet: --image: needs --prefix DIR, the root filesystem image to install into (e.g. --prefix /srv/pifleet/golden)\n");
    expect(existsSync(ranMark)).toBe(false);
  });

  it("without --image a root-image prefix still gets files only (no user, no enable), with a hint", async () => {
    const copy = makeImage();
    output = [];
    await install(options(copy, { image: false }));
    expect(output.join("\n")).toContain(`${copy} looks like a root filesystem image: pass --image to create the service user in it and enable the unit`);
    expect(imagePasswd(copy, "pifleet")).toBeUndefined();
    expect(existsSync(path.join(copy, "etc/systemd/system/multi-user.target.wants"))).toBe(false);
    expect(existsSync(path.join(copy, "usr/lib/pifleet/pi-agent/main.js"))).toBe(true);
  });
});
