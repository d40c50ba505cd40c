import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentKeyFromSecret, encodeEnvelope, FleetClient, signHello, v1 } from "@pifleet/proto";
import { SimFleet } from "@pifleet/coordinator";
import { RawClient, sleep, startCoordinator, waitFor, Watcher, type Harness } from "./harness.js";

const INTERVAL = 200;

async function agentConn(h: Harness, identity: string): Promise<RawClient> {
  const c = new RawClient(h.coord.url("agent"));
  const nonce = await c.challenge();
  const role = v1.Role.ROLE_PI;
  c.send(encodeEnvelope({ seq: 1, hello: { role, identity, nonce, signature: signHello(agentKeyFromSecret(h.secrets.get(identity)!), role, identity, nonce) } }));
  await c.next("helloAck");
  return c;
}

describe("operators, commands and connections", () => {
  let h: Harness;
  let watcher: Watcher;
  let operator: Watcher;

  beforeAll(async () => {
    h = await startCoordinator({ pis: ["pi01", "pi02", "pi03"], settings: { reportIntervalMs: INTERVAL } });
    watcher = new Watcher(h.coord.url("feed"), h.watcherToken, "watch");
    operator = new Watcher(h.coord.url("feed"), h.operatorToken, "ops", v1.Role.ROLE_OPERATOR);
    await watcher.until("watcher snapshot", () => watcher.mirror.complete);
    await operator.until("operator snapshot", () => operator.mirror.complete);
  });
  afterAll(async () => {
    await watcher?.stop();
    await operator?.stop();
    await h?.stop();
  });

  function request(w: Watcher, req: v1.OperatorRequest.$Properties): Promise<v1.OperatorReply> {
    return new Promise((resolve) => {
      const on = (env: { body: string; operatorReply?: v1.OperatorReply.$Properties | null }) => {
        if (env.body === "operatorReply" && env.operatorReply!.id === req.id) {
          w.client.off("message", on);
          resolve(env.operatorReply as v1.OperatorReply);
        }
      };
      w.client.on("message", on);
      w.client.send({ operatorRequest: req });
    });
  }

  it("refuses operator requests on a watcher token, and audits them with the watcher's name", async () => {
    const reply = await request(watcher, { id: "r1", action: "cycle", pi: "pi02", reason: "looks stuck" });
    expect(reply.ok).toBe(false);
    expect(reply.message).toMatch(/forbidden/);
    const ev = h.store.events({ kind: "operator" }).find((e) => e.fields.request === "r1")!;
    expect(ev).toMatchObject({ actor: "watch", subject: "pi02" });
    expect(ev.fields).toMatchObject({ action: "cycle", ok: "false", role: "watcher" });
    expect(watcher.client.ready).toBe(true);
  });

  it("answers an operator that no recovery engine is configured, audited; then dispatches to one", async () => {
    const reply = await request(operator, { id: "r2", action: "drain", pi: "pi01", reason: "maintenance" });
    expect(reply).toMatchObject({ ok: false, message: "no recovery engine configured" });
    expect(h.store.events({ kind: "operator" }).find((e) => e.fields.request === "r2")).toMatchObject({ actor: "ops", subject: "pi01" });

    const calls: unknown[] = [];
    h.coord.setOperations({
      operator: async (action, pi, actor, reason, force) => {
        calls.push({ action, pi, actor, reason, force });
        return { ok: true, message: `${pi} drained` };
      },
    });
    const ok = await request(operator, { id: "r3", action: "drain", pi: "pi01", reason: "maintenance", force: true });
    expect(ok).toMatchObject({ ok: true, message: "pi01 drained" });
    expect(calls).toEqual([{ action: "drain", pi: "pi01", actor: "ops", reason: "maintenance", force: true }]);
    const unknown = await request(operator, { id: "r4", action: "cycle", pi: "pi77" });
    expect(unknown).toMatchObject({ ok: false, message: expect.stringMatching(/no Pi named "pi77"/) });
    h.coord.setOperations(undefined);
    // The audit event reaches watchers through the feed too.
    await watcher.until("operator event in the feed", () => watcher.mirror.events.find((e) => e.kind === "operator" && e.fields.request === "r3"));
  });

  it("sends a command to an agent and returns its result; fails fast when the agent is absent or silent", async () => {
    const agent = await agentConn(h, "pi03");
    const pending = h.coord.sendCommand("pi03", "restart-apache", { graceful: "1" }, { timeoutMs: 5000 });
    const cmd = (await agent.next("command")).command!;
    expect(cmd).toMatchObject({ target: "pi03", kind: "restart-apache", args: { graceful: "1" }, timeoutMs: 5000, force: false });
    agent.send(encodeEnvelope({ seq: 2, commandResult: { id: cmd.id, ok: true, message: "apache restarted", durationMs: 42 } }));
    expect(await pending).toEqual({ id: cmd.id, ok: true, message: "apache restarted", durationMs: 42 });
    expect(h.store.events({ kind: "command", subject: "pi03" }).at(-1)!.message).toMatch(/restart-apache: ok/);

    const silent = await h.coord.sendCommand("pi03", "reboot", {}, { timeoutMs: 150 });
    expect(silent).toMatchObject({ ok: false, message: "no result within 150 ms" });
    expect(await h.coord.sendCommand("pi02", "reboot")).toMatchObject({ ok: false, message: "pi02 is not connected" });

    const dropped = h.coord.sendCommand("pi03", "reboot", {}, { timeoutMs: 10_000 });
    await agent.next("command");
    agent.ws.close();
    expect(await dropped).toMatchObject({ ok: false, message: "the agent disconnected" });
  });

  it("a second connection for the same identity replaces the first (logged); the Pi stays connected", async () => {
    const first = await agentConn(h, "pi02");
    await watcher.until("pi02 connected", () => watcher.mirror.pis.get("pi02")?.connected);
    const second = await agentConn(h, "pi02");
    const err = (await first.next("error")).error!;
    expect(err).toMatchObject({ code: "replaced", reason: "replaced" });
    await first.closed;
    expect(h.log.find((l) => l.msg === "a new connection replaces the agent's previous one" && l.identity === "pi02")).toBeDefined();
    await sleep(100);
    expect(h.coord.connectedAgents()).toContain("pi02");
    expect(watcher.mirror.pis.get("pi02")!.connected).toBe(true);
    second.ws.close();
    await watcher.until("pi02 disconnected", () => watcher.mirror.pis.get("pi02")?.connected === false);
  });

  it("serves /healthz and Prometheus /metrics with the documented series", async () => {
    const sim = new SimFleet({ url: h.coord.url("agent"), agents: [{ identity: "pi01", secret: h.secrets.get("pi01")! }], intervalMs: INTERVAL });
    await sim.start();
    await watcher.until("pi01 healthy", () => watcher.state("pi01") === "PI_STATE_HEALTHY");
    const base = `http://127.0.0.1:${h.coord.address().port}`;
    const health = (await (await fetch(`${base}/healthz`)).json()) as Record<string, unknown>;
    expect(health).toMatchObject({ status: "ok", fleet: "test", pis: 3, agentsConnected: 1, watchers: 2 });
    const res = await fetch(`${base}/metrics`);
    expect(res.headers.get("content-type")).toMatch(/text\/plain; version=0.0.4/);
    const text = await res.text();
    for (const series of [
      /^pifleet_connections_total\{endpoint="agent"\} \d+$/m,
      /^pifleet_frames_in_total\{endpoint="agent"\} \d+$/m,
      /^pifleet_frames_out_total\{endpoint="feed"\} \d+$/m,
      /^pifleet_reports_total \d+$/m,
      /^pifleet_pis\{state="healthy"\} 1$/m,
      /^pifleet_pis\{state="down"\} \d+$/m,
      // The 20 ms bucket exists; how full it is depends on the machine's load (a benchmark's job).
      /^pifleet_report_feed_latency_seconds_bucket\{le="0.02"\} \d+$/m,
      /^pifleet_report_feed_latency_seconds_bucket\{le="\+Inf"\} [1-9]\d*$/m,
      /^pifleet_report_feed_latency_seconds_count [1-9]\d*$/m,
      /^pifleet_watchers 2$/m,
      /^pifleet_event_loop_delay_seconds\{quantile="0.99"\} [\d.e-]+$/m,
      /^# TYPE pifleet_report_feed_latency_seconds histogram$/m,
    ]) {
      expect(text).toMatch(series);
    }
    await sim.stop();
  });
});

describe("listening and serving", () => {
  it("listens dual-stack on :: by default: agents on ::1 and 127.0.0.1 both reach a watcher", async () => {
    const h = await startCoordinator({ host: "::", pis: ["pi01", "pi02"], settings: { reportIntervalMs: INTERVAL } });
    try {
      // one FleetClient agent, one lean simulated agent (pre-encoded reports, time_ms appended)
      const sim6 = new SimFleet({ url: h.coord.url("agent", "::1"), agents: [{ identity: "pi01", secret: h.secrets.get("pi01")! }], intervalMs: INTERVAL, lean: true, leanRefresh: 3 });
      const sim4 = new SimFleet({ url: h.coord.url("agent", "127.0.0.1"), agents: [{ identity: "pi02", secret: h.secrets.get("pi02")! }], intervalMs: INTERVAL });
      await Promise.all([sim6.start(), sim4.start()]);
      const w = new Watcher(h.coord.url("feed", "127.0.0.1"), h.watcherToken, "watch");
      await w.until("both healthy", () => w.state("pi01") === "PI_STATE_HEALTHY" && w.state("pi02") === "PI_STATE_HEALTHY");
      const t = await w.reportAfter("pi01", Date.now());
      expect(t).toBeLessThanOrEqual(Date.now());
      sim6.setFault("pi01", "probe-fail");
      await w.until("the lean agent's fault reaches the judge", () => w.state("pi01") === "PI_STATE_SUSPECT");
      expect(w.mirror.pis.get("pi01")!.reason).toMatch(/HTTP probe failed: status 500/);
      await Promise.all([w.stop(), sim6.stop(), sim4.stop()]);
    } finally {
      await h.stop();
    }
  });

  it("serves a static directory at / without escaping it", async () => {
    const h = await startCoordinator({ pis: ["pi01"] });
    await h.coord.stop();
    const dir = path.join(h.dir, "www");
    mkdirSync(dir);
    writeFileSync(path.join(dir, "index.html"), "<h1>pifleet</h1>");
    writeFileSync(path.join(dir, "app.js"), "console.log(1)");
    const { Coordinator } = await import("@pifleet/coordinator");
    const c = new Coordinator({ desired: { fleet: "t", pis: [{ name: "pi01", port: 1 }] }, store: h.store, staticDir: dir, listen: { host: "127.0.0.1", port: 0 }, logger: h.coord.logger });
    const { port } = await c.start();
    try {
      const index = await fetch(`http://127.0.0.1:${port}/`);
      expect(index.headers.get("content-type")).toMatch(/text\/html/);
      expect(await index.text()).toBe("<h1>pifleet</h1>");
      expect((await fetch(`http://127.0.0.1:${port}/app.js`)).headers.get("content-type")).toMatch(/javascript/);
      expect((await fetch(`http://127.0.0.1:${port}/%2e%2e/coordinator.db`)).status).toBe(404);
      expect((await fetch(`http://127.0.0.1:${port}/missing.css`)).status).toBe(404);
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    } finally {
      await c.stop();
      await h.stop();
    }
  });

  it("speaks wss and https when given a certificate and key", async () => {
    const h = await startCoordinator({ pis: ["pi01"] });
    await h.coord.stop();
    const cert = path.join(h.dir, "cert.pem");
    const key = path.join(h.dir, "key.pem");
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert], { stdio: "ignore" });
    const { Coordinator } = await import("@pifleet/coordinator");
    const c = new Coordinator({ desired: { fleet: "t", pis: [{ name: "pi01", port: 1 }] }, store: h.store, tls: { cert, key }, listen: { host: "127.0.0.1", port: 0 }, logger: h.coord.logger, settings: { reportIntervalMs: INTERVAL } });
    await c.start();
    try {
      expect(c.url("agent")).toMatch(/^wss:\/\/127\.0\.0\.1:\d+\/agent$/);
      const client = new FleetClient({ url: c.url("agent"), role: v1.Role.ROLE_PI, identity: "pi01", secret: h.secrets.get("pi01")!, ca: readFileSync(cert) });
      const ack = await new Promise<v1.HelloAck>((resolve) => {
        client.once("ready", resolve);
        client.start();
      });
      expect(ack.reportIntervalMs).toBe(INTERVAL);
      await client.stop();
    } finally {
      await c.stop();
      await h.stop();
    }
  });

  it("splits a big fleet's snapshot so no frame exceeds the limit, and the watcher still gets every Pi", async () => {
    const pis = Array.from({ length: 1500 }, (_, i) => `pi${String(i + 1).padStart(4, "0")}`);
    const h = await startCoordinator({ pis: ["pi0001"], settings: { maxFrameBytes: 16 * 1024 } });
    await h.coord.stop();
    const { Coordinator } = await import("@pifleet/coordinator");
    const c = new Coordinator({
      desired: { fleet: "big", pis: pis.map((name, i) => ({ name, port: i + 1 })) },
      store: h.store,
      listen: { host: "127.0.0.1", port: 0 },
      logger: h.coord.logger,
      settings: { maxFrameBytes: 16 * 1024 },
    });
    await c.start();
    try {
      const raw = new RawClient(c.url("feed"));
      raw.send(encodeEnvelope({ seq: 1, hello: { role: v1.Role.ROLE_WATCHER, identity: "watch", nonce: await raw.challenge(), token: h.watcherToken } }));
      const sizes: number[] = [];
      raw.ws.on("message", (d: Buffer) => sizes.push(d.byteLength));
      const snap = (await raw.next("snapshot")).snapshot!;
      expect(snap.fleetStatus!.pisTotal).toBe(1500);
      expect(snap.pis!.length).toBeLessThan(1500);
      const names = new Set<string>();
      await waitFor("every Pi", () => {
        for (const f of raw.frames) for (const p of (f.snapshot ?? f.delta)?.pis ?? []) names.add(p.name!);
        return names.size === 1500;
      });
      expect(Math.max(...sizes)).toBeLessThanOrEqual(16 * 1024);
      raw.ws.close();
    } finally {
      await c.stop();
      await h.stop();
    }
  });
});
