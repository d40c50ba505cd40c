import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocketServer, type WebSocket } from "ws";
import { decodeEnvelope, encodeEnvelope, generateAgentCredential, newNonce, v1, verifyHello } from "@pifleet/proto";
import { checkFileserverConfig, hashTree } from "@pifleet/fileserver-agent";
import { ensureBuilt, repo, tempDir } from "./helpers.js";

const main = path.join(repo, "packages/fileserver-agent/dist/main.js");
const cred = generateAgentCredential("fileserver");

/** Just enough of a coordinator: challenge, verify the signed hello, collect reports and results. */
class FakeCoordinator {
  readonly wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  readonly reports: v1.FileserverReport[] = [];
  readonly results = new Map<string, v1.CommandResult>();
  readonly hellos: v1.Hello[] = [];
  private ws: WebSocket | undefined;
  private waiters: Array<() => void> = [];

  constructor() {
    this.wss.on("connection", (ws) => {
      const nonce = newNonce();
      ws.send(encodeEnvelope({ seq: 1, challenge: { nonce, serverTimeMs: Date.now() } }));
      ws.on("message", (data: Buffer) => {
        const env = decodeEnvelope(data);
        if (env.body === "hello") {
          const h = env.hello as v1.Hello;
          this.hellos.push(h);
          if (h.role !== v1.Role.ROLE_FILESERVER || !verifyHello(cred.publicKey, h.role, h.identity, nonce, h.signature)) {
            ws.send(encodeEnvelope({ seq: 2, error: { code: "unauthenticated", message: "bad signature", frame: "hello" } }));
            ws.close();
            return;
          }
          this.ws = ws;
          ws.send(encodeEnvelope({ seq: 2, helloAck: { sessionId: "s1", reportIntervalMs: 0 } }));
        } else if (env.body === "fileserverReport") this.reports.push(env.fileserverReport as v1.FileserverReport);
        else if (env.body === "commandResult") this.results.set(String(env.commandResult!.id), env.commandResult as v1.CommandResult);
        for (const w of this.waiters.splice(0)) w();
      });
    });
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.wss.address() as AddressInfo).port}/agent`;
  }

  async until<T>(get: () => T | undefined, what: string, ms = 20_000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = get();
      if (v !== undefined && v !== false) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 200);
      });
    }
  }

  private seq = 10;
  async command(kind: string, args: Record<string, string> = {}, force = false): Promise<v1.CommandResult> {
    const id = `c${this.seq}`;
    this.ws!.send(encodeEnvelope({ seq: ++this.seq, command: { id, target: "fileserver", kind, args, force } }));
    return this.until(() => this.results.get(id), `result of ${kind}`, 60_000);
  }

  close(): Promise<void> {
    return new Promise((r) => this.wss.close(() => r()));
  }
}

let t: ReturnType<typeof tempDir>;
let coord: FakeCoordinator;
let agent: ChildProcess;
let stderr = "";
const notifications: string[] = [];
let notifySock: { close(): void } | undefined;

beforeAll(async () => {
  await ensureBuilt();
  t = tempDir("agent");
  coord = new FakeCoordinator();
  await new Promise((r) => coord.wss.once("listening", r));
  const sandbox = path.join(t.dir, "root");
  mkdirSync(sandbox);
  execFileSync(process.execPath, [path.join(repo, "packages/fileserver-agent/dist/cli.js"), "--fleet", path.join(repo, "examples/seed-8.yaml"), "--root-prefix", sandbox, "init-sandbox"]);
  const site = path.join(sandbox, "srv/pifleet/content/site1");
  mkdirSync(site, { recursive: true });
  writeFileSync(path.join(site, "index.html"), "from the coordinator");
  writeFileSync(path.join(t.dir, "secret"), cred.secret);
  chmodSync(path.join(t.dir, "secret"), 0o600);
  const config = path.join(t.dir, "fileserver.yaml");
  writeFileSync(
    config,
    [
      `fleet: ${path.join(repo, "examples/seed-8.yaml")}`,
      `coordinator: { url: "${coord.url}" }`,
      "identity: fileserver",
      `secretFile: ${path.join(t.dir, "secret")}`,
      "intervalMs: 500",
      `rootPrefix: ${sandbox}`,
      "live: emulate",
      "logLevel: warn",
    ].join("\n"),
  );
  // systemd's notify socket, played by a datagram socket of our own.
  const unix = createRequire(path.join(repo, "packages/core/package.json"))("unix-dgram") as {
    createSocket(type: "unix_dgram", cb: (buf: Buffer) => void): { bind(p: string): void; close(): void };
  };
  const sockPath = path.join(t.dir, "notify.sock");
  const sock = unix.createSocket("unix_dgram", (buf) => notifications.push(buf.toString()));
  sock.bind(sockPath);
  notifySock = sock;
  agent = spawn(process.execPath, [main, "--config", config], { env: { ...process.env, NOTIFY_SOCKET: sockPath, WATCHDOG_USEC: "2000000" }, stdio: ["ignore", "ignore", "pipe"] });
  agent.stderr!.on("data", (d) => (stderr += d));
}, 120_000);

afterAll(async () => {
  if (agent && agent.exitCode === null) agent.kill("SIGKILL");
  notifySock?.close();
  await coord?.close();
  t?.cleanup();
});

describe("fileserver agent against a coordinator", () => {
  it("authenticates, reports, runs commands, refuses unsafe ones, and stops cleanly on SIGTERM", async () => {
    const first = await coord.until(() => coord.reports[0], "a first report");
    expect(coord.hellos[0]).toMatchObject({ role: v1.Role.ROLE_FILESERVER, identity: "fileserver" });
    expect(first.fileserver).toBe("fileserver");
    expect(first.healthy).toBe(true);
    expect(first.nfsServerRunning).toBe(true);
    expect(first.drift.some((d) => d.kind === "root" && d.subject === "pi01")).toBe(true);
    expect(first.roots.map((r) => r.present)).toEqual(Array(8).fill(false));
    await coord.until(() => notifications.some((n) => n.includes("READY=1")), "READY=1");

    const apply = await coord.command("apply");
    expect(apply.ok, apply.message).toBe(true);
    expect(apply.message).toBe("done: 18 actions");
    const clean = await coord.until(() => coord.reports.find((r, i) => i > 0 && r.drift.length === 0 && r.roots.every((x) => x.present)), "a report without drift");
    expect(clean.healthy).toBe(true);

    const sync = await coord.command("sync-content", { dir: "/srv/pifleet/content/site1" });
    expect(sync.ok, sync.message).toBe(true);
    const version = await hashTree(path.join(t.dir, "root/srv/pifleet/content/site1"));
    expect(sync.message).toContain(`site ${version}`);
    expect(readFileSync(path.join(t.dir, "root/export/10.46.189.14/var/www/html/index.html"), "utf8")).toBe("from the coordinator");
    await coord.until(() => coord.reports.find((r) => r.roots.every((x) => x.contentVersion === version)), "a report with the site version");

    const etc = await coord.command("sync-content", { dir: "/etc" });
    expect(etc.ok).toBe(false);
    expect(etc.message).toMatch(/\/etc: args.dir (does not exist|must be inside \/srv\/pifleet\/content)/);
    const dotdot = await coord.command("sync-content", { dir: "/srv/pifleet/content/../../../etc" });
    expect(dotdot).toMatchObject({ ok: false, message: expect.stringMatching(/args.dir must not contain "\.\."/) });

    const powered = await coord.command("rebuild", { pi: "pi01" });
    expect(powered.ok).toBe(false);
    expect(powered.message).toMatch(/^refused: refusing to rebuild pi01's root/);
    const before = readlinkSync(path.join(t.dir, "root/export/10.46.189.2/var/www/html"));
    const rebuilt = await coord.command("rebuild", { pi: "pi01", pi_powered: "false" });
    expect(rebuilt.ok, rebuilt.message).toBe(true);
    expect(readlinkSync(path.join(t.dir, "root/export/10.46.189.2/var/www/html"))).toBe(before);
    const back = await coord.command("rollback", { pi: "pi01" }, true);
    expect(back.ok, back.message).toBe(true);

    expect(await coord.command("format-disk")).toMatchObject({ ok: false, message: 'kind: "format-disk" is not one of apply, rebuild, rollback, sync-content' });
    expect(await coord.command("rebuild", { pi: "pi01", pi_powered: "maybe" })).toMatchObject({ ok: false, message: 'args.pi_powered: "maybe" is not true or false' });

    await coord.until(() => notifications.some((n) => n.includes("WATCHDOG=1")), "WATCHDOG=1");
    const exited = new Promise<number | null>((r) => agent.once("exit", (code) => r(code)));
    agent.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(stderr).not.toMatch(/"level":(50|60)/);
  }, 90_000);

  it("names the config file and field at fault", () => {
    expect(() => checkFileserverConfig({ identity: "Bad Name", secretFile: "relative", coordinator: { url: "http://x" } }, "/etc/pifleet/fileserver.yaml")).toThrow(
      /\/etc\/pifleet\/fileserver\.yaml: coordinator\.url: must be a ws:\/\/ or wss:\/\/ URL[\s\S]*identity: must be the fileserver's enrolled name[\s\S]*secretFile: must be an absolute path/,
    );
  });
});
