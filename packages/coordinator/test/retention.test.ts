import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { EventLog, parseCoordinatorConfig, Retention, SqliteStore, type RetentionSettings } from "@pifleet/coordinator";

// The audit log is append-only, and bounded: events leave the database only after an export to a
// file, through an export record that itself can never change, and each removal is an event.

const dirs: string[] = [];
const stores: SqliteStore[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup(now = () => Date.now()) {
  const dir = mkdtempSync(path.join(tmpdir(), "pifleet-retention-"));
  dirs.push(dir);
  const store = new SqliteStore(path.join(dir, "coordinator.db"), now);
  stores.push(store);
  return { dir, store, log: new EventLog(store, 10) };
}

const settings = (dir: string, o: Partial<RetentionSettings> = {}): RetentionSettings => ({ enabled: true, maxAgeMs: 365 * 86_400_000, maxEvents: 1000, exportDir: path.join(dir, "event-archive"), checkEveryMs: 3_600_000, batch: 400, ...o });

describe("audit log retention", () => {
  it("exports the events beyond maxEvents to fsynced JSON lines, records the export, removes them, and logs that", async () => {
    const { dir, store, log } = setup();
    for (let i = 1; i <= 2500; i++) log.append({ kind: "state", subject: `pi${i % 7}`, message: `event ${i}`, fields: { i: String(i) } });
    const r = await new Retention(store, log, settings(dir)).run();
    expect(r).toMatchObject({ exported: 1500, firstId: 1, lastId: 1500 });
    expect(r.files).toHaveLength(4); // batches of 400

    const files = readdirSync(path.join(dir, "event-archive")).sort((a, b) => Number(a.split("-")[1]) - Number(b.split("-")[1]));
    expect(files).toEqual(["events-1-400.jsonl", "events-401-800.jsonl", "events-801-1200.jsonl", "events-1201-1500.jsonl"]);
    const lines = files.flatMap((f) => readFileSync(path.join(dir, "event-archive", f), "utf8").trimEnd().split("\n").map((l) => JSON.parse(l) as { id: number; message: string; fields: Record<string, string> }));
    expect(lines.map((e) => e.id)).toEqual(Array.from({ length: 1500 }, (_, i) => i + 1));
    expect(lines[41]).toMatchObject({ id: 42, message: "event 42", fields: { i: "42" } });

    const exports = store.eventExports();
    expect(exports.map((e) => [e.firstId, e.lastId, e.count])).toEqual([[1, 400, 400], [401, 800, 400], [801, 1200, 400], [1201, 1500, 300]]);
    for (const e of exports) expect(e.sha256).toBe(createHash("sha256").update(readFileSync(e.file)).digest("hex"));

    // 1000 kept, plus the event that says what was removed.
    expect(store.eventStats()).toEqual({ count: 1001, firstId: 1501, lastId: 2501 });
    const said = store.events({ kind: "retention" });
    expect(said).toHaveLength(1);
    expect(said[0]).toMatchObject({ subject: "audit-log", actor: "coordinator", fields: { count: "1500", firstId: "1", lastId: "1500" } });
    expect(said[0].message).toMatch(/^1500 events \(ids 1–1500\) exported to 4 file\(s\) in .*event-archive and removed from the database/);
  });

  it("exports events older than maxAge, and nothing when nothing is due", async () => {
    let clock = Date.parse("2024-01-01T00:00:00Z");
    const { dir, store, log } = setup(() => clock);
    for (let i = 0; i < 50; i++) log.append({ kind: "power", subject: "pi01", message: `old ${i}` });
    clock += 40 * 86_400_000;
    for (let i = 0; i < 30; i++) log.append({ kind: "power", subject: "pi01", message: `new ${i}` });
    const retention = new Retention(store, log, settings(dir, { maxAgeMs: 30 * 86_400_000, maxEvents: 1_000_000 }), undefined, () => clock);
    expect((await retention.run()).exported).toBe(50);
    expect(store.events({ limit: 1000 }).map((e) => e.message).slice(0, 2)).toEqual(["new 0", "new 1"]);
    expect((await retention.run()).exported).toBe(0);
    expect(store.events({ kind: "retention" })).toHaveLength(1);
  });

  it("the database still refuses to change or remove any event no export covers, and any export record", async () => {
    const { dir, store, log } = setup();
    for (let i = 0; i < 1200; i++) log.append({ kind: "x", subject: "s", message: String(i) });
    await new Retention(store, log, settings(dir)).run();
    store.flush();
    const db = new Database(path.join(dir, "coordinator.db"));
    try {
      expect(() => db.prepare("DELETE FROM events WHERE id = 1000").run()).toThrow(/append-only/);
      expect(() => db.prepare("UPDATE events SET message = 'x' WHERE id = 1000").run()).toThrow(/append-only/);
      expect(() => db.prepare("DELETE FROM event_exports").run()).toThrow(/append-only/);
      expect(() => db.prepare("UPDATE event_exports SET sha256 = 'x'").run()).toThrow(/append-only/);
    } finally {
      db.close();
    }
  });

  it("is configured in coordinator.yaml, exporting beside the database by default", () => {
    const c = parseCoordinatorConfig("fleet: f.yaml\ndatabase: /var/lib/pifleet/coordinator.db\nretention: { maxAgeDays: 90, maxEvents: 50000 }\n", "/etc/pifleet/coordinator.yaml");
    expect(c.retention).toEqual({ enabled: true, maxAgeMs: 90 * 86_400_000, maxEvents: 50_000, exportDir: "/var/lib/pifleet/event-archive", checkEveryMs: 3_600_000, batch: 5000 });
    expect(parseCoordinatorConfig("fleet: f.yaml\ndatabase: ':memory:'\n", "c.yaml").retention.enabled).toBe(false);
    expect(() => parseCoordinatorConfig("fleet: f.yaml\nretention: { maxEvents: 5 }\n", "c.yaml")).toThrow(/retention\.maxEvents/);
  });
});
