import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { renderPiAgentConfig, type FileserverView } from "@pifleet/core";
import { formatActions, initSandbox, openFileserver, type Fileserver } from "@pifleet/fileserver-agent";
import { seedPlan, seedPlanWith, tempDir } from "./helpers.js";

// With the fleet file's piAgent: section, every Pi's root carries its agent's config and secret,
// written by the fileserver agent at build, rebuild and apply — so a root rebuilt from the golden
// image still has an agent that reports. The secret is owned by the root's own pifleet user.

const CONFIG = "etc/pifleet/pi-agent.yaml";
const SECRET = "etc/pifleet/pi-agent.secret";
// Deliberately not the fileserver's own numbers, and uid ≠ gid: the root's files decide.
const GOLDEN_PASSWD = "root:x:0:0:root:/root:/bin/bash\npifleet:x:998:990:pifleet agent:/nonexistent:/usr/sbin/nologin\n";
const GOLDEN_GROUP = "root:x:0:\npifleet:x:997:\n";

let t: ReturnType<typeof tempDir>;
let fs: Fileserver;
const pi = (name: string) => fs.plan.pis.find((p) => p.name === name)!;
const rootOf = (name: string) => path.join(fs.layout.exportRoot, pi(name).piAddress);
const inRoot = (name: string, rel: string) => path.join(rootOf(name), rel);
const read = (name: string, rel: string) => readFileSync(inRoot(name, rel), "utf8");
const secrets = () => path.join(t.dir, "etc/pifleet/pi-secrets");
const secretOf = (name: string) => `secret-of-${name}-${"x".repeat(20)}\n`;
const agentDrift = async () => (await fs.planApply()).diff.drift.filter((d) => d.kind === "agent");
const owner = (p: string) => {
  const st = statSync(p);
  return { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
};

function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = path.join(d, name);
      const st = lstatSync(p);
      out.push(`${path.relative(dir, p)} ${st.ino} ${st.mode} ${st.uid}:${st.gid} ${st.size} ${st.mtimeMs}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

const AGENT = { coordinator: { url: "wss://coordinator:7300/agent", ca: "/etc/pifleet/ca.pem" } };
const agentPlan = () => seedPlanWith((f) => (f.piAgent = AGENT));

async function open(plan: FileserverView = agentPlan(), opts: { passwd?: boolean; skip?: string[] } = {}): Promise<void> {
  initSandbox(t.dir, plan);
  if (opts.passwd !== false) {
    writeFileSync(path.join(t.dir, plan.fileserver.goldenImage, "etc/passwd"), GOLDEN_PASSWD);
    writeFileSync(path.join(t.dir, plan.fileserver.goldenImage, "etc/group"), GOLDEN_GROUP);
  }
  mkdirSync(secrets(), { recursive: true, mode: 0o700 });
  for (const p of plan.pis) {
    if (opts.skip?.includes(p.name)) continue;
    writeFileSync(path.join(secrets(), `${p.name}.secret`), secretOf(p.name), { mode: 0o600 });
  }
  fs = await openFileserver({ plan, prefix: t.dir, live: "emulate" });
}

beforeEach(() => {
  t = tempDir("pi-agent");
});
afterEach(() => t.cleanup());

describe("each Pi's root carries its agent's config and secret", () => {
  it("a built root has the Pi's config and its secret 0600, owned by the image's pifleet user; no secret is printed", async () => {
    await open();
    const planned = await fs.planApply();
    const text = formatActions(planned.diff.actions, true);
    for (const p of fs.plan.pis) expect(text).not.toContain(secretOf(p.name));
    expect(text).toContain(`install -m 0600 -o 998 -g 997 /dev/stdin ${fs.layout.exportRoot}/.10.46.189.2.building/${SECRET}  # a secret (${secretOf("pi01").length} bytes, not shown), written atomically, no symlink followed`);
    expect((await fs.apply()).result?.ok).toBe(true);
    for (const p of fs.plan.pis) {
      expect(read(p.name, CONFIG)).toBe(renderPiAgentConfig(fs.plan.piAgent!, p, fs.plan.fleet));
      expect(read(p.name, CONFIG)).toContain(`identity: "${p.name}"\n`);
      expect(read(p.name, CONFIG)).toContain(`localAddress: "${p.ipv6}"\n`);
      expect(owner(inRoot(p.name, CONFIG))).toEqual({ mode: 0o644, uid: 0, gid: 0 });
      expect(read(p.name, SECRET)).toBe(secretOf(p.name));
      expect(owner(inRoot(p.name, SECRET))).toEqual({ mode: 0o600, uid: 998, gid: 997 });
    }
    // The golden image itself is left as it is.
    expect(existsSync(path.join(fs.layout.golden, "etc/pifleet"))).toBe(false);
    expect(await agentDrift()).toEqual([]);
  });

  it("a rebuilt root gets them too", async () => {
    await open();
    await fs.apply();
    rmSync(inRoot("pi02", SECRET));
    writeFileSync(inRoot("pi02", CONFIG), "broken\n");
    expect((await fs.rebuild("pi02", { piPowered: false })).result?.ok).toBe(true);
    expect(read("pi02", CONFIG)).toBe(renderPiAgentConfig(fs.plan.piAgent!, pi("pi02"), fs.plan.fleet));
    expect(read("pi02", SECRET)).toBe(secretOf("pi02"));
    expect(owner(inRoot("pi02", SECRET))).toEqual({ mode: 0o600, uid: 998, gid: 997 });
    expect(readFileSync(path.join(fs.layout.exportRoot, `.${pi("pi02").piAddress}.prev/${CONFIG}`), "utf8")).toBe("broken\n");
  });

  it("the owner is the pifleet user as each root's own passwd and group define it", async () => {
    await open();
    await fs.apply();
    // pi03's image was updated in place: its pifleet user has other numbers now.
    writeFileSync(inRoot("pi03", "etc/passwd"), "root:x:0:0::/root:/bin/sh\npifleet:x:1234:1234::/nonexistent:/usr/sbin/nologin\n");
    writeFileSync(inRoot("pi03", "etc/group"), "root:x:0:\npifleet:x:1235:\n");
    expect(await agentDrift()).toEqual([{ kind: "agent", subject: "pi03", detail: `${SECRET} is owned by 998:997, not 1234:1235` }]);
    expect((await fs.apply()).result?.ok).toBe(true);
    expect(owner(inRoot("pi03", SECRET))).toEqual({ mode: 0o600, uid: 1234, gid: 1235 });
    expect(owner(inRoot("pi04", SECRET))).toEqual({ mode: 0o600, uid: 998, gid: 997 });
    expect(await agentDrift()).toEqual([]);
  });

  it("a Pi whose secret is missing is reported by name and file; the others are still done", async () => {
    await open(agentPlan(), { skip: ["pi03"] });
    const out = await fs.apply();
    expect(out.result?.ok).toBe(true);
    const file = path.join(secrets(), "pi03.secret");
    expect(await agentDrift()).toEqual([
      { kind: "agent", subject: "pi03", detail: `${file} missing: pi03's agent secret cannot be written (enroll it: pifleet enroll pi03 --role pi --out pi03.secret, then copy it there, mode 0600)` },
    ]);
    expect(read("pi03", CONFIG)).toContain('identity: "pi03"');
    expect(existsSync(inRoot("pi03", SECRET))).toBe(false);
    for (const name of ["pi01", "pi02", "pi04", "pi08"]) expect(read(name, SECRET)).toBe(secretOf(name));
    // Enrolled later: the next apply writes it, and only it.
    writeFileSync(file, secretOf("pi03"), { mode: 0o600 });
    const actions = (await fs.planApply()).diff.actions;
    expect(actions.map((a) => [a.kind, a.subject, a.steps.map((s) => (s.op === "write" ? path.relative(rootOf(a.subject), s.path) : s.op))])).toEqual([["agent", "pi03", [SECRET]]]);
    await fs.apply();
    expect(read("pi03", SECRET)).toBe(secretOf("pi03"));
    expect(await agentDrift()).toEqual([]);
    // A secret others on the fileserver can read is reported (the folder is the operator's: not changed).
    chmodSync(file, 0o644);
    expect(await agentDrift()).toEqual([{ kind: "agent", subject: "pi03", detail: `${file} has mode 0644: others on the fileserver can read pi03's secret (chmod 0600 it)` }]);
    expect(statSync(file).mode & 0o777).toBe(0o644);
  });

  it("edits, a loosened mode and a wrong owner are drift, and only those files are rewritten", async () => {
    await open();
    await fs.apply();
    writeFileSync(inRoot("pi01", CONFIG), "coordinator: { url: ws://evil/ }\nidentity: pi01\nsecretFile: /tmp/x\n");
    chmodSync(inRoot("pi02", SECRET), 0o644);
    chownSync(inRoot("pi05", SECRET), 0, 0);
    writeFileSync(inRoot("pi06", SECRET), "stale\n");
    const untouched = lstatSync(inRoot("pi01", SECRET));
    expect(await agentDrift()).toEqual([
      { kind: "agent", subject: "pi01", detail: `${CONFIG} differs from the plan` },
      { kind: "agent", subject: "pi02", detail: `${SECRET} has mode 0644, not 0600` },
      { kind: "agent", subject: "pi05", detail: `${SECRET} is owned by 0:0, not 998:997` },
      { kind: "agent", subject: "pi06", detail: `${SECRET} differs from ${path.join(secrets(), "pi06.secret")}` },
    ]);
    expect((await fs.apply()).result?.ok).toBe(true);
    expect(read("pi01", CONFIG)).toBe(renderPiAgentConfig(fs.plan.piAgent!, pi("pi01"), fs.plan.fleet));
    expect(owner(inRoot("pi02", SECRET))).toEqual({ mode: 0o600, uid: 998, gid: 997 });
    expect(owner(inRoot("pi05", SECRET))).toEqual({ mode: 0o600, uid: 998, gid: 997 });
    expect(read("pi06", SECRET)).toBe(secretOf("pi06"));
    const now = lstatSync(inRoot("pi01", SECRET));
    expect([now.ino, now.mtimeMs]).toEqual([untouched.ino, untouched.mtimeMs]);
    expect(await agentDrift()).toEqual([]);
  });

  it("a second apply changes nothing: no inode, owner, size or mtime under the export root", async () => {
    await open();
    await fs.apply();
    const before = listing(fs.layout.exportRoot);
    const again = await fs.apply();
    expect(again.diff.actions).toEqual([]);
    expect(listing(fs.layout.exportRoot)).toEqual(before);
  });

  it("refuses a symlinked etc/pifleet in a root, naming the path, and writes nothing through it", async () => {
    await open();
    await fs.apply();
    // The sandbox's etc/pifleet stands for the fileserver's own: where the Pis' secrets wait.
    const target = path.join(t.dir, "etc/pifleet");
    const dir = inRoot("pi04", "etc/pifleet");
    rmSync(dir, { recursive: true });
    symlinkSync(target, dir);
    const before = listing(target);
    const drift = await agentDrift();
    expect(drift.map((d) => d.subject)).toEqual(["pi04", "pi04"]);
    for (const [d, rel] of drift.map((d, i) => [d, [CONFIG, SECRET][i]] as const)) {
      expect(d.detail).toContain(`${inRoot("pi04", rel)}`);
      expect(d.detail).toContain(`resolves to ${target}/${path.basename(rel)}, outside ${rootOf("pi04")}`);
      expect(d.detail).toMatch(/; refused$/);
    }
    // Nothing else drifted, so there is nothing to do: the link is left for a person.
    expect((await fs.apply()).diff.actions).toEqual([]);
    expect(listing(target)).toEqual(before);
    expect(existsSync(path.join(target, "pi-agent.yaml"))).toBe(false);
    expect(readlinkSync(dir)).toBe(target);

    // A link that stays inside the root is refused too: nothing in a root is followed.
    renameSync(inRoot("pi05", "etc/pifleet"), inRoot("pi05", "srv-pifleet"));
    symlinkSync("../srv-pifleet", inRoot("pi05", "etc/pifleet"));
    const inside = (await agentDrift()).filter((d) => d.subject === "pi05");
    expect(inside).toHaveLength(2);
    for (const d of inside) expect(d.detail).toContain(`${inRoot("pi05", "etc/pifleet")}: is a symlink (to ../srv-pifleet); refused`);
  });

  it("a golden image without the pifleet user: the secret stays root:root 0600 and the missing user is reported", async () => {
    await open(agentPlan(), { passwd: false });
    expect((await fs.apply()).result?.ok).toBe(true);
    expect(owner(inRoot("pi01", SECRET))).toEqual({ mode: 0o600, uid: 0, gid: 0 });
    const drift = await agentDrift();
    expect(drift).toHaveLength(fs.plan.pis.length);
    expect(drift[0]).toEqual({ kind: "agent", subject: "pi01", detail: "no pifleet user in the root's etc/passwd: the agent user is missing from the image (install the agent into the golden image: pifleet install --role pi --prefix GOLDEN); its secret is left root:root 0600" });
    // A note for a person, not a change: a second apply writes nothing.
    expect((await fs.apply()).diff.actions).toEqual([]);
  });

  it("without the piAgent section nothing of the agent is written, as before", async () => {
    await open(seedPlan());
    const out = await fs.apply();
    expect(out.result?.ok).toBe(true);
    expect(out.diff.actions.some((a) => a.kind === "agent")).toBe(false);
    for (const p of fs.plan.pis) expect(existsSync(inRoot(p.name, "etc/pifleet"))).toBe(false);
  });
});
