import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentKeyFromSecret, encodeEnvelope, generateAgentCredential, PROTOCOL_VERSION, signHello, v1 } from "@pifleet/proto";
import { SimFleet, SqliteStore } from "@pifleet/coordinator";
import { RawClient, startCoordinator, Watcher, type Harness } from "./harness.js";

// Bad input against a real coordinator on loopback. Each case checks the ErrorFrame, the log
// line, the audit event — and that pi01, a well-behaved agent connected all along, keeps
// reporting and its reports keep reaching a watcher.

const INTERVAL = 200;
let h: Harness;
let good: SimFleet;
let watcher: Watcher;

beforeAll(async () => {
  h = await startCoordinator({ pis: ["pi01", "pi02", "pi03", "pi04", "pi05", "pi06", "pi07"], settings: { reportIntervalMs: INTERVAL } });
  good = new SimFleet({ url: h.coord.url("agent"), agents: [{ identity: "pi01", secret: h.secrets.get("pi01")! }], intervalMs: INTERVAL });
  await good.start();
  watcher = new Watcher(h.coord.url("feed"), h.watcherToken, "watch");
  await watcher.until("pi01 healthy", () => watcher.state("pi01") === "PI_STATE_HEALTHY");
});

afterAll(async () => {
  await watcher?.stop();
  await good?.stop();
  await h?.stop();
});

function helloFrame(identity: string, nonce: Uint8Array, secret: string, role = v1.Role.ROLE_PI, facts?: v1.AgentFacts.$Properties): Uint8Array {
  return encodeEnvelope({ seq: 1, hello: { role, identity, nonce, signature: signHello(agentKeyFromSecret(secret), role, identity, nonce), facts } });
}

async function connectAs(identity: string, facts?: v1.AgentFacts.$Properties): Promise<RawClient> {
  const c = new RawClient(h.coord.url("agent"));
  c.send(helloFrame(identity, await c.challenge(), h.secrets.get(identity)!, v1.Role.ROLE_PI, facts));
  const ack = await c.next("helloAck");
  expect(ack.helloAck!.acceptsSamples).toBe(true);
  return c;
}

/** The refusal is complete: ErrorFrame, closed socket, log line, audit event; and pi01 is still served. */
async function expectRefused(c: RawClient, want: { code: string; reason: string; frame: string; subject?: string }) {
  const err = (await c.next("error")).error!;
  expect(err).toMatchObject({ code: want.code, reason: want.reason, frame: want.frame });
  expect(err.message).not.toBe("");
  const closed = await c.closed;
  expect(closed.code).toBeGreaterThanOrEqual(1000);
  const port = `:${c.localPort}`;
  const line = h.log.find((l) => String(l.msg).startsWith("refused") && l.reason === want.reason && String(l.remote).endsWith(port));
  expect(line, "log line naming the reason").toBeDefined();
  const ev = h.store.events({ kind: "auth" }).find((e) => e.fields.reason === want.reason && e.fields.remote.endsWith(port));
  expect(ev, "auth event in the audit log").toBeDefined();
  expect(ev!.fields.code).toBe(want.code);
  if (want.subject) expect(ev!.subject).toBe(want.subject);
  expect(h.coord.metrics.refused.get({ code: want.code, reason: want.reason })).toBeGreaterThan(0);
  const after = Date.now();
  await watcher.reportAfter("pi01", after, 3000);
  expect(watcher.state("pi01")).toBe("PI_STATE_HEALTHY");
}

describe("the coordinator refuses bad input and keeps serving everyone else", () => {
  it("a malformed frame", async () => {
    const c = new RawClient(h.coord.url("agent"));
    await c.challenge();
    c.send(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02]));
    await expectRefused(c, { code: "bad_frame", reason: "malformed", frame: "frame" });
  });

  it("a text frame", async () => {
    const c = new RawClient(h.coord.url("agent"));
    await c.challenge();
    c.send("hello", false);
    await expectRefused(c, { code: "bad_frame", reason: "text_frame", frame: "frame" });
  });

  it("an oversized frame: over the frame limit gets an ErrorFrame; far over, ws cuts it off unread", async () => {
    const limit = h.coord.settings.maxFrameBytes;
    const c = new RawClient(h.coord.url("agent"));
    await c.challenge();
    c.send(Buffer.alloc(limit + 1000, 7));
    await expectRefused(c, { code: "too_large", reason: "frame_limit", frame: "frame" });

    const d = new RawClient(h.coord.url("agent"));
    await d.challenge();
    d.send(Buffer.alloc(2 * limit + 1, 7));
    const closed = await d.closed;
    expect(closed.code).toBe(1009);
    const port = `:${d.localPort}`;
    await watcher.until("the ws-level refusal in the audit log", () =>
      h.store.events({ kind: "auth" }).find((e) => e.fields.reason === "ws_max_payload" && e.fields.remote.endsWith(port)),
    );
    await watcher.reportAfter("pi01", Date.now(), 3000);
  });

  it("another protocol version", async () => {
    const c = new RawClient(h.coord.url("agent"));
    const nonce = await c.challenge();
    const bytes = v1.Envelope.encode({ version: PROTOCOL_VERSION + 1, seq: 1, hello: { role: v1.Role.ROLE_PI, identity: "pi02", nonce } }).finish();
    c.send(bytes);
    await expectRefused(c, { code: "bad_version", reason: "protocol_version", frame: "hello" });
  });

  it("no hello: the connection times out", async () => {
    const c = new RawClient(h.coord.url("agent"));
    await c.challenge();
    await expectRefused(c, { code: "unauthenticated", reason: "hello_timeout", frame: "hello" });
  });

  it("a frame before hello", async () => {
    const c = new RawClient(h.coord.url("agent"));
    await c.challenge();
    c.send(encodeEnvelope({ seq: 1, piReport: { pi: "pi02", timeMs: Date.now() } }));
    await expectRefused(c, { code: "unauthenticated", reason: "frame_before_hello", frame: "piReport" });
  });

  it("a bad signature (a key that is not the enrolled one)", async () => {
    const c = new RawClient(h.coord.url("agent"));
    c.send(helloFrame("pi02", await c.challenge(), generateAgentCredential("pi02").secret));
    await expectRefused(c, { code: "unauthenticated", reason: "bad_signature", frame: "hello", subject: "pi02" });
  });

  it("an unknown identity", async () => {
    const c = new RawClient(h.coord.url("agent"));
    c.send(helloFrame("pi99", await c.challenge(), generateAgentCredential("pi99").secret));
    await expectRefused(c, { code: "unauthenticated", reason: "unknown_identity", frame: "hello", subject: "pi99" });
  });

  it("a revoked agent, at hello and — revoked by another process — while connected", async () => {
    const live = await connectAs("pi03");
    const other = new SqliteStore(h.store.file); // what `pifleet enroll --revoke` does
    expect(other.revokeAgent("pi03")).toBe(true);
    other.close();
    await expectRefused(live, { code: "unauthenticated", reason: "revoked", frame: "frame", subject: "pi03" });

    // That first refusal marked pi03: one event says so, and the feed shows it.
    const marked = h.store.events({ kind: "auth", subject: "pi03" });
    expect(marked).toHaveLength(1);
    expect(marked[0].fields).toMatchObject({ reason: "revoked", from: expect.any(String), to: "credentials-refused" });
    expect(marked[0].message).toMatch(/pi03 is shown credentials-refused: no power or rebuild action on it until a person acts/);
    await watcher.until("pi03 credentials-refused on the feed", () => watcher.state("pi03") === "PI_STATE_CREDENTIALS_REFUSED");

    // Its agent retries: refused each time (ErrorFrame, log line, metric), summed up in the audit log.
    for (let i = 0; i < 3; i++) {
      const c = new RawClient(h.coord.url("agent"));
      c.send(helloFrame("pi03", await c.challenge(), h.secrets.get("pi03")!));
      expect((await c.next("error")).error).toMatchObject({ code: "unauthenticated", reason: "revoked", frame: "hello" });
      await c.closed;
      expect(h.log.find((l) => l.reason === "revoked" && String(l.remote).endsWith(`:${c.localPort}`))).toBeDefined();
    }
    expect(h.store.events({ kind: "auth", subject: "pi03" })).toHaveLength(1);
    h.coord.refusals.sweep(Number.POSITIVE_INFINITY);
    const summed = h.store.events({ kind: "auth", subject: "pi03" });
    expect(summed).toHaveLength(2);
    expect(summed[1].fields).toMatchObject({ reason: "revoked", count: "3", aggregated: "true" });
    expect(Number(summed[1].fields.lastMs)).toBeGreaterThanOrEqual(Number(summed[1].fields.firstMs));
    expect(watcher.state("pi03")).toBe("PI_STATE_CREDENTIALS_REFUSED");
  });

  it("a valid secret claiming another Pi: in the hello, and in a report", async () => {
    // pi02's key signing a hello that says pi04
    const c = new RawClient(h.coord.url("agent"));
    const nonce = await c.challenge();
    const role = v1.Role.ROLE_PI;
    c.send(encodeEnvelope({ seq: 1, hello: { role, identity: "pi04", nonce, signature: signHello(agentKeyFromSecret(h.secrets.get("pi02")!), role, "pi04", nonce) } }));
    await expectRefused(c, { code: "unauthenticated", reason: "bad_signature", frame: "hello", subject: "pi04" });

    // authenticated as pi02, reporting for pi01
    const d = await connectAs("pi02");
    d.send(encodeEnvelope({ seq: 2, piReport: { pi: "pi01", timeMs: Date.now(), apache: { reachable: false } } }));
    await expectRefused(d, { code: "identity_mismatch", reason: "identity_mismatch", frame: "piReport", subject: "pi02" });
  });

  it("samples that do not fit their facts, or break the frame's own bounds, each named", async () => {
    const sample = { timeMs: Date.now(), apache: { reachable: true, busyWorkers: 1, idleWorkers: 9 }, probe: { ok: true, status: 200 } };
    // Each case from its own Pi: repeats of one (who, why) are summed into one audit event.
    // no facts in the hello: nothing to read the sample's interface counters with
    const a = await connectAs("pi02");
    a.send(encodeEnvelope({ seq: 2, piSample: sample }));
    await expectRefused(a, { code: "invalid", reason: "invalid_field", frame: "piSample" });
    expect((await a.next("error")).error!.message).toMatch(/no facts/);
    // counters for 2 interfaces where the facts name 1
    const b = await connectAs("pi05", { interfaces: ["eth0"] });
    b.send(encodeEnvelope({ seq: 2, piSample: { ...sample, net: [1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6] } }));
    await expectRefused(b, { code: "invalid", reason: "invalid_field", frame: "piSample" });
    expect((await b.next("error")).error!.message).toMatch(/piSample\.net: 12 counters for the 1 interfaces/);
    // not six counters per interface: refused by the codec before anything reads it
    const c = await connectAs("pi06", { interfaces: ["eth0"] });
    c.send(encodeEnvelope({ seq: 2, piSample: { ...sample, net: [1, 2, 3, 4, 5, 6, 7] } }));
    await expectRefused(c, { code: "invalid", reason: "invalid_field", frame: "piSample" });
    expect((await c.next("error")).error!.message).toMatch(/^piSample: net: 7 counters is not 6 per interface/);
    // facts naming a bad interface, in the hello
    const d = new RawClient(h.coord.url("agent"));
    d.send(helloFrame("pi07", await d.challenge(), h.secrets.get("pi07")!, v1.Role.ROLE_PI, { interfaces: ["eth0", "a b"] }));
    await expectRefused(d, { code: "invalid", reason: "invalid_field", frame: "hello" });
    expect((await d.next("error")).error!.message).toMatch(/facts\.interfaces\[1\]/);
  });

  it("an agent from before 0.2 (PiReport, no facts) is still served: its reports are converted", async () => {
    const old = new SimFleet({ url: h.coord.url("agent"), agents: [{ identity: "pi04", secret: h.secrets.get("pi04")! }], intervalMs: INTERVAL, format: "report" });
    await old.start();
    try {
      await watcher.until("pi04 healthy", () => watcher.state("pi04") === "PI_STATE_HEALTHY");
      const after = Date.now();
      await watcher.reportAfter("pi04", after, 3000);
      const s = watcher.mirror.pis.get("pi04")!;
      expect(s.facts!.interfaces).toEqual(["eth0", "eth0.131", "eth0.2"]);
      expect(s.facts!.agentVersion).toBe("sim");
      // the second report on onward carries counter increases over the interval
      expect(s.lastSample!.net!.length).toBe(18);
      expect(s.lastSample!.spanMs).toBeGreaterThan(0);
      expect(s.lastSample!.apache!.slots![0]).toBe(7);
    } finally {
      await old.stop();
    }
  });

  it("a replayed hello (captured from another connection)", async () => {
    const a = new RawClient(h.coord.url("agent"));
    const captured = helloFrame("pi02", await a.challenge(), h.secrets.get("pi02")!);
    a.send(captured);
    await a.next("helloAck");
    const b = new RawClient(h.coord.url("agent"));
    await b.challenge();
    b.send(captured);
    await expectRefused(b, { code: "unauthenticated", reason: "replayed_hello", frame: "hello", subject: "pi02" });
    a.ws.close();
  });

  it("a wrong role: a watcher token on /agent, a watcher token asking to operate", async () => {
    const c = new RawClient(h.coord.url("agent"));
    c.send(encodeEnvelope({ seq: 1, hello: { role: v1.Role.ROLE_WATCHER, identity: "watch", nonce: await c.challenge(), token: h.watcherToken } }));
    await expectRefused(c, { code: "forbidden", reason: "wrong_role", frame: "hello" });

    const d = new RawClient(h.coord.url("feed"));
    d.send(encodeEnvelope({ seq: 1, hello: { role: v1.Role.ROLE_OPERATOR, identity: "watch", nonce: await d.challenge(), token: h.watcherToken } }));
    await expectRefused(d, { code: "forbidden", reason: "wrong_role", frame: "hello", subject: "watch" });
  });

  it("a wrong token", async () => {
    const c = new RawClient(h.coord.url("feed"));
    c.send(encodeEnvelope({ seq: 1, hello: { role: v1.Role.ROLE_WATCHER, identity: "watch", nonce: await c.challenge(), token: "watch.not-the-token" } }));
    await expectRefused(c, { code: "unauthenticated", reason: "bad_token", frame: "hello", subject: "watch" });
  });

  it("nothing stored was lost along the way", () => {
    const events = h.store.events({ limit: 10_000 });
    const ids = events.map((e) => e.id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(ids.length);
    expect(events.filter((e) => e.kind === "state" && e.subject === "pi01").length).toBeGreaterThan(0);
    expect(h.store.agents().map((a) => a.identity)).toEqual(["pi01", "pi02", "pi03", "pi04", "pi05", "pi06", "pi07"]);
  });
});
