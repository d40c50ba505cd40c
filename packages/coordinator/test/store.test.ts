import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { MIGRATIONS, SqliteStore, StoreError } from "@pifleet/coordinator";

const dirs: string[] = [];
function tmpDb(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "pifleet-store-"));
  dirs.push(dir);
  return path.join(dir, "sub", "coordinator.db");
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("SQLite store", () => {
  it("round-trips everything and keeps it across close and reopen", () => {
    const file = tmpDb();
    let now = 1000;
    const a = new SqliteStore(file, () => now);
    a.enrollAgent({ identity: "pi01", role: "pi", publicKey: "PUB1" });
    a.enrollAgent({ identity: "fileserver", role: "fileserver", publicKey: "PUB2" });
    a.createToken({ name: "alice", role: "operator", hash: "ab".repeat(32) });
    now = 2000;
    expect(a.revokeAgent("pi01")).toBe(true);
    expect(a.revokeAgent("pi01")).toBe(false);
    expect(a.revokeAgent("nobody")).toBe(false);
    a.savePiStates([
      { pi: "pi01", state: "down", reason: "no report for 3 s", health: "down", sinceMs: 1500, lastSeenMs: 1400, lastReport: new Uint8Array([1, 2, 3]), attempts: 2, held: true },
    ]);
    const e1 = a.appendEvent({ kind: "state", subject: "pi01", message: "healthy → down", actor: "judge", fields: { from: "healthy", to: "down" } });
    const e2 = a.appendEvent({ kind: "auth", subject: "pi09", message: "refused" });
    const intent = a.openIntent("pi01", 1, "power-cycling (attempt 1)");
    const other = a.openIntent("pi02", 2, "rebuild", "rebuild");
    a.closeIntent(other, "done");
    a.close();

    const b = new SqliteStore(file);
    expect(b.schemaVersion).toBe(MIGRATIONS.length);
    expect(b.agent("pi01")).toEqual({ identity: "pi01", role: "pi", publicKey: "PUB1", createdMs: 1000, revokedMs: 2000 });
    expect(b.agents().map((x) => x.identity)).toEqual(["fileserver", "pi01"]);
    expect(b.token("alice")).toMatchObject({ role: "operator", hash: "ab".repeat(32), revokedMs: null });
    expect(b.revokedSince(1999)).toEqual({ agents: ["pi01"], tokens: [] });
    expect(b.piStates()).toEqual([
      { pi: "pi01", state: "down", reason: "no report for 3 s", health: "down", sinceMs: 1500, lastSeenMs: 1400, lastReport: new Uint8Array([1, 2, 3]), attempts: 2, held: true },
    ]);
    expect(b.recentEvents(10)).toEqual([e1, e2]);
    expect(b.events({ kind: "auth" })).toEqual([e2]);
    expect(b.events({ afterId: e1.id })).toEqual([e2]);
    expect(b.openIntents()).toEqual([expect.objectContaining({ id: intent, pi: "pi01", port: 1, action: "cycle", status: "open", reason: "power-cycling (attempt 1)" })]);
    expect(b.intents().find((i) => i.id === other)).toMatchObject({ status: "done", action: "rebuild" });
    b.closeIntent(intent, "recovered", "port switched on after a coordinator restart");
    expect(b.openIntents()).toEqual([]);
    expect(b.intents().find((i) => i.id === intent)).toMatchObject({ status: "undone", note: "port switched on after a coordinator restart" });
    b.close();
  });

  it("re-enrolling replaces the key and lifts a revocation", () => {
    const s = new SqliteStore(tmpDb());
    s.enrollAgent({ identity: "pi01", role: "pi", publicKey: "OLD" });
    s.revokeAgent("pi01");
    s.enrollAgent({ identity: "pi01", role: "pi", publicKey: "NEW" });
    expect(s.agent("pi01")).toMatchObject({ publicKey: "NEW", revokedMs: null });
    s.close();
  });

  it("the event log is append-only, even to the coordinator's own connection", () => {
    const file = tmpDb();
    const s = new SqliteStore(file);
    s.appendEvent({ kind: "state", subject: "pi01", message: "x" });
    s.flush();
    const raw = new Database(file);
    expect(() => raw.prepare("UPDATE events SET message = 'forged'").run()).toThrow(/append-only/);
    expect(() => raw.prepare("DELETE FROM events").run()).toThrow(/append-only/);
    raw.close();
    expect(s.recentEvents(5)[0].message).toBe("x");
    s.close();
  });

  it("notices writes by another process, not its own", () => {
    const file = tmpDb();
    const s = new SqliteStore(file);
    s.enrollAgent({ identity: "pi01", role: "pi", publicKey: "K" });
    expect(s.changedElsewhere()).toBe(false);
    const cli = new SqliteStore(file);
    cli.revokeAgent("pi01");
    cli.close();
    expect(s.changedElsewhere()).toBe(true);
    expect(s.changedElsewhere()).toBe(false);
    s.close();
  });

  it("refuses a database from a newer pifleet, naming the file", () => {
    const file = tmpDb();
    new SqliteStore(file).close();
    const raw = new Database(file);
    raw.pragma("user_version = 99");
    raw.close();
    expect(() => new SqliteStore(file)).toThrow(StoreError);
    expect(() => new SqliteStore(file)).toThrow(/coordinator\.db: schema version 99 is newer/);
  });

  it("writes events and states on its writer thread; reads, flush and intents wait for them", async () => {
    const file = tmpDb();
    const s = new SqliteStore(file);
    const ids = [];
    for (let i = 0; i < 500; i++) {
      ids.push(s.appendEvent({ kind: "state", subject: `pi${i}`, message: "healthy → down" }).id);
      s.savePiStates([{ pi: `pi${i}`, state: "down", reason: "r", health: "down", sinceMs: 1, lastSeenMs: null, lastReport: new Uint8Array([i % 256]), attempts: 0, held: false }]);
    }
    expect(ids).toEqual(Array.from({ length: 500 }, (_, i) => i + 1)); // ids at once, in order
    expect(s.recentEvents(1000)).toHaveLength(500); // a read waits for the writer
    await new Promise((r) => setTimeout(r, 50));
    const other = new SqliteStore(file);
    expect(other.recentEvents(1000)).toHaveLength(500);
    expect(other.piStates().find((p) => p.pi === "pi107")!.lastReport).toEqual(new Uint8Array([107]));
    other.close();
    // an intent is durable when openIntent returns, with everything queued before it
    s.appendEvent({ kind: "power", subject: "pi1", message: "port 1 off" });
    s.openIntent("pi1", 1, "cycle");
    const third = new SqliteStore(file);
    expect(third.openIntents()).toHaveLength(1);
    expect(third.recentEvents(1)[0]).toMatchObject({ id: 501, kind: "power" });
    third.close();
    s.close();
    // a reopened store continues the ids
    const again = new SqliteStore(file);
    expect(again.appendEvent({ kind: "x", subject: "y", message: "z" }).id).toBe(502);
    again.close();
  });

  it("refuses an unknown intent outcome", () => {
    const s = new SqliteStore(tmpDb());
    const id = s.openIntent("pi01", 1, "x");
    expect(() => s.closeIntent(id, "maybe" as never)).toThrow(/outcome "maybe"/);
    s.close();
  });
});
