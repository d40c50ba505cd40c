import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeEnvelope, FIELD_LIMITS, MAX_FRAME_BYTES, v1 } from "@pifleet/proto";
import { RawClient, sleep, startCoordinator, waitFor, type Harness } from "./harness.js";

// An authenticated client must not be able to degrade the audit log or the feed: a real
// coordinator on loopback, flooded by a watcher's token, then by a burst of large events.

const QUIET = 300;
let h: Harness;

beforeAll(async () => {
  h = await startCoordinator({ settings: { refusalQuietMs: QUIET } });
});

afterAll(async () => {
  await h?.stop();
});

async function feedClient(token: string, identity: string, role = v1.Role.ROLE_WATCHER): Promise<RawClient> {
  const c = new RawClient(h.coord.url("feed"));
  c.send(encodeEnvelope({ seq: 1, hello: { role, identity, nonce: await c.challenge(), token } }));
  await c.next("snapshot");
  return c;
}

const request = (i: number, reason: string) => encodeEnvelope({ seq: i + 2, operatorRequest: { id: `r${i}`, action: "cycle", pi: "pi02", reason } });

function eventsOf(c: RawClient): v1.FleetEvent[] {
  return c.frames.flatMap((f) => ((f.snapshot ?? f.delta)?.events ?? []) as v1.FleetEvent[]);
}

describe("abuse by an authenticated client", () => {
  it("1,000 operator requests from a watcher: a handful of events, under 1 MB, the connection closed, no frame over the limit", async () => {
    const observer = await feedClient(h.watcherToken, "watch");
    const before = h.store.eventStats().lastId;
    const flood = await feedClient(h.watcherToken, "watch");
    const reason = "x".repeat(FIELD_LIMITS.reason);
    for (let i = 0; i < 1000; i++) flood.send(request(i, reason));
    const closed = await flood.closed;
    expect(closed.code).toBe(1008);
    const err = flood.frames.find((f) => f.body === "error")!.error!;
    expect(err).toMatchObject({ code: "rate_limited", reason: "operator_requests", frame: "operatorRequest" });
    const replies = flood.frames.filter((f) => f.body === "operatorReply").map((f) => f.operatorReply!);
    expect(replies.every((r) => !r.ok)).toBe(true);
    expect(replies.filter((r) => /^forbidden/.test(String(r.message))).length).toBeLessThanOrEqual(10 + 2); // the burst, and what refilled meanwhile
    expect(replies.filter((r) => /^rate limited/.test(String(r.message))).length).toBeGreaterThan(0);

    await sleep(QUIET * 3); // repeats are summed up once quiet
    const added = h.store.events({ afterId: before, limit: 100_000 });
    process.stderr.write(`flood: ${added.length} events added:\n${added.map((e) => `  ${e.kind} ${e.subject}: ${e.message.slice(0, 160)}`).join("\n")}\n`);
    expect(added.length).toBeGreaterThanOrEqual(3);
    expect(added.length).toBeLessThanOrEqual(6);
    const bytes = added.reduce((n, e) => n + Buffer.byteLength(JSON.stringify(e)), 0);
    expect(bytes).toBeLessThan(1024 * 1024);
    expect(bytes).toBeLessThan(10 * 1024);
    // The repeats are counted, not lost: one event says how many forbidden requests there were.
    const forbidden = added.filter((e) => e.kind === "operator" && e.actor === "watch" && e.fields.role === "watcher" && e.fields.action === "cycle");
    expect(forbidden.reduce((n, e) => n + Number(e.fields.count), 0)).toBe(replies.filter((r) => /^forbidden/.test(String(r.message))).length);
    const limited = added.filter((e) => e.fields.refusal === "rate_limited");
    expect(limited.reduce((n, e) => n + Number(e.fields.count), 0)).toBe(replies.filter((r) => /^rate limited/.test(String(r.message))).length);
    expect(added.filter((e) => e.kind === "auth" && e.fields.reason === "operator_requests")).toHaveLength(1);

    expect(Math.max(...observer.sizes, ...flood.sizes)).toBeLessThanOrEqual(MAX_FRAME_BYTES);
    expect(observer.ws.readyState).toBe(observer.ws.OPEN);
    observer.ws.close();
  });

  it("a reason over the bound is refused at once, naming the field; nothing of it is stored", async () => {
    const before = h.store.eventStats().lastId;
    const c = await feedClient(h.watcherToken, "watch");
    c.send(request(0, "x".repeat(2000)));
    const err = (await c.next("error")).error!;
    expect(err).toMatchObject({ code: "invalid", frame: "operatorRequest", message: `operatorRequest: reason: longer than ${FIELD_LIMITS.reason} characters (2000)` });
    await c.closed;
    await sleep(QUIET * 3);
    const added = h.store.events({ afterId: before });
    expect(added.map((e) => e.kind)).toEqual(["auth"]);
    expect(JSON.stringify(added).length).toBeLessThan(2000);
  });

  it("an operator token's connections share one limit", async () => {
    const conns = await Promise.all([0, 1, 2].map(() => feedClient(h.operatorToken, "ops", v1.Role.ROLE_OPERATOR)));
    for (const c of conns) for (let i = 0; i < 10; i++) c.send(encodeEnvelope({ seq: i + 2, operatorRequest: { id: `o${i}`, action: "release", pi: "pi01" } }));
    const replies = () => conns.flatMap((c) => c.frames.filter((f) => f.body === "operatorReply").map((f) => f.operatorReply!));
    await waitFor("30 replies", () => replies().length === 30);
    // Each connection stayed within its own burst of 10; together they went over the token's 20.
    expect(replies().filter((r) => /^rate limited/.test(String(r.message))).length).toBeGreaterThanOrEqual(5);
    for (const c of conns) expect(c.ws.readyState).toBe(c.ws.OPEN);
    for (const c of conns) c.ws.close();
  });

  it("a burst of large events reaches watchers in frames under the limit, and a new watcher's snapshot too", async () => {
    const w = await feedClient(h.watcherToken, "watch");
    const from = w.frames.length;
    const big = "y".repeat(3000);
    for (let i = 0; i < 1500; i++) h.coord.audit({ kind: "test", subject: "fleet", message: `${big} ${i}`, fields: { i: String(i) } });
    // One event alone larger than a frame: shortened on the feed, whole in the audit log.
    const huge = h.coord.audit({ kind: "test", subject: "fleet", message: "z".repeat(400_000), fields: { i: "huge" } });
    await waitFor("all 1501 events on the feed", () => eventsOf(w).filter((e) => e.kind === "test").length === 1501, 20_000);
    const got = eventsOf(w).filter((e) => e.kind === "test");
    expect(got.slice(0, 1500).map((e) => e.fields.i)).toEqual(Array.from({ length: 1500 }, (_, i) => String(i)));
    expect(got[1500].message.length).toBeLessThan(100_000);
    expect(got[1500].message).toMatch(/more characters in the audit log\)$/);
    expect(h.store.events({ afterId: Number(huge.id) - 1, limit: 1 })[0].message).toHaveLength(400_000);
    const sizes = w.sizes.slice(from);
    expect(sizes.length).toBeGreaterThan(10);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(MAX_FRAME_BYTES);

    // The snapshot's recent events (100 of 3 KB) no longer fit one frame: the rest follow in deltas.
    const late = await feedClient(h.watcherToken, "watch");
    await waitFor("the snapshot's 100 events", () => eventsOf(late).length >= 100);
    expect(eventsOf(late)).toHaveLength(100);
    expect(late.frames.map((f) => f.body).slice(0, 4)).toEqual(["challenge", "helloAck", "snapshot", "delta"]);
    expect(Math.max(...late.sizes)).toBeLessThanOrEqual(MAX_FRAME_BYTES);
    expect(h.coord.metrics.feedTrimmed.get({})).toBeGreaterThan(0);
    w.ws.close();
    late.ws.close();
  });
});
