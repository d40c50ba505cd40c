import { mkdirSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { MIGRATIONS } from "./migrations.js";
import { WriteBehind } from "./write-behind.js";
import type {
  AgentRecord,
  AgentRole,
  EventInput,
  EventExport,
  EventRecord,
  IntentOutcome,
  IntentStatus,
  PiStateRecord,
  PowerIntent,
  Store,
  TokenRecord,
  TokenRole,
} from "./types.js";

export class StoreError extends Error {
  override name = "StoreError";
}

interface AgentRow {
  identity: string;
  role: AgentRole;
  public_key: string;
  created_ms: number;
  revoked_ms: number | null;
}
interface TokenRow {
  name: string;
  role: TokenRole;
  hash: string;
  created_ms: number;
  revoked_ms: number | null;
}
interface PiStateRow {
  pi: string;
  state: string;
  reason: string;
  health: string;
  since_ms: number;
  last_seen_ms: number | null;
  last_report: Buffer | null;
  attempts: number;
  held: number;
}
interface EventRow {
  id: number;
  time_ms: number;
  kind: string;
  subject: string;
  message: string;
  actor: string;
  fields: string;
}
interface IntentRow {
  id: number;
  pi: string;
  port: number;
  action: string;
  reason: string;
  status: IntentStatus;
  note: string;
  created_ms: number;
  updated_ms: number;
  off_ms: number | null;
}

const INSERT_EVENT = `INSERT INTO events (id, time_ms, kind, subject, message, actor, fields) VALUES (?, ?, ?, ?, ?, ?, ?)`;
const SAVE_STATE = `INSERT INTO pi_state (pi, state, reason, health, since_ms, last_seen_ms, last_report, attempts, held)
  VALUES (@pi, @state, @reason, @health, @since_ms, @last_seen_ms, @last_report, @attempts, @held)
  ON CONFLICT (pi) DO UPDATE SET state = excluded.state, reason = excluded.reason, health = excluded.health,
    since_ms = excluded.since_ms, last_seen_ms = excluded.last_seen_ms, last_report = excluded.last_report,
    attempts = excluded.attempts, held = excluded.held`;

const OUTCOME_STATUS: Record<IntentOutcome, IntentStatus> = { done: "done", recovered: "undone", undone: "undone", failed: "failed" };

/**
 * The coordinator's state in one SQLite file (WAL), shared safely with `pifleet enroll` and
 * `pifleet token`. Events and Pi states go through a writer thread (see WriteBehind); identities
 * and power intents are written directly, intents with a full sync.
 */
export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly stmt;
  private dataVersion: number;
  private readonly writer: WriteBehind | undefined;
  private lastEventId: number;
  onError: ((err: Error) => void) | undefined;

  constructor(
    readonly file: string,
    private readonly now: () => number = Date.now,
  ) {
    if (file !== ":memory:") mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    try {
      this.db = new Database(file);
    } catch (err) {
      throw new StoreError(`${file}: cannot open database: ${(err as Error).message}`);
    }
    this.db.pragma("journal_mode = WAL");
    // NORMAL loses nothing when the process dies; power intents ask for a full sync themselves.
    this.db.pragma("synchronous = NORMAL");
    this.db.pragma("busy_timeout = 10000");
    this.migrate();
    const db = this.db;
    this.stmt = {
      enrollAgent: db.prepare(
        `INSERT INTO agents (identity, role, public_key, created_ms, revoked_ms) VALUES (?, ?, ?, ?, NULL)
         ON CONFLICT (identity) DO UPDATE SET role = excluded.role, public_key = excluded.public_key, created_ms = excluded.created_ms, revoked_ms = NULL`,
      ),
      revokeAgent: db.prepare(`UPDATE agents SET revoked_ms = ? WHERE identity = ? AND revoked_ms IS NULL`),
      agent: db.prepare<[string], AgentRow>(`SELECT * FROM agents WHERE identity = ?`),
      agents: db.prepare<[], AgentRow>(`SELECT * FROM agents ORDER BY identity`),
      createToken: db.prepare(
        `INSERT INTO tokens (name, role, hash, created_ms, revoked_ms) VALUES (?, ?, ?, ?, NULL)
         ON CONFLICT (name) DO UPDATE SET role = excluded.role, hash = excluded.hash, created_ms = excluded.created_ms, revoked_ms = NULL`,
      ),
      revokeToken: db.prepare(`UPDATE tokens SET revoked_ms = ? WHERE name = ? AND revoked_ms IS NULL`),
      token: db.prepare<[string], TokenRow>(`SELECT * FROM tokens WHERE name = ?`),
      tokens: db.prepare<[], TokenRow>(`SELECT * FROM tokens ORDER BY name`),
      revokedAgents: db.prepare<[number], { identity: string }>(`SELECT identity FROM agents WHERE revoked_ms >= ?`),
      revokedTokens: db.prepare<[number], { name: string }>(`SELECT name FROM tokens WHERE revoked_ms >= ?`),
      piStates: db.prepare<[], PiStateRow>(`SELECT * FROM pi_state ORDER BY pi`),
      savePiState: db.prepare(SAVE_STATE),
      appendEvent: db.prepare(INSERT_EVENT),
      maxEventId: db.prepare<[], { id: number | null }>(`SELECT max(id) AS id FROM events`),
      recentEvents: db.prepare<[number], EventRow>(`SELECT * FROM (SELECT * FROM events ORDER BY id DESC LIMIT ?) ORDER BY id`),
      openIntent: db.prepare(
        `INSERT INTO power_intents (pi, port, action, reason, status, created_ms, updated_ms) VALUES (?, ?, ?, ?, 'open', ?, ?)`,
      ),
      closeIntent: db.prepare(`UPDATE power_intents SET status = ?, note = ?, updated_ms = ? WHERE id = ? AND status = 'open'`),
      openIntents: db.prepare<[], IntentRow>(`SELECT * FROM power_intents WHERE status = 'open' ORDER BY id`),
      intents: db.prepare<[number], IntentRow>(`SELECT * FROM (SELECT * FROM power_intents ORDER BY id DESC LIMIT ?) ORDER BY id`),
      intentOff: db.prepare(`UPDATE power_intents SET off_ms = ?, updated_ms = ? WHERE id = ? AND status = 'open'`),
      eventStats: db.prepare<[], { count: number; firstId: number | null; lastId: number | null }>(`SELECT count(*) AS count, min(id) AS firstId, max(id) AS lastId FROM events`),
      insertExport: db.prepare(`INSERT INTO event_exports (first_id, last_id, count, file, sha256, time_ms) VALUES (?, ?, ?, ?, ?, ?)`),
      deleteExported: db.prepare(`DELETE FROM events WHERE id >= ? AND id <= ?`),
      eventExports: db.prepare<[], { id: number; first_id: number; last_id: number; count: number; file: string; sha256: string; time_ms: number }>(`SELECT * FROM event_exports ORDER BY id`),
    };
    this.dataVersion = this.readDataVersion();
    this.lastEventId = this.stmt.maxEventId.get()?.id ?? 0;
    if (file !== ":memory:") {
      // Checkpoints (and their fsync) happen on the writer thread, never on the event loop.
      this.db.pragma("wal_autocheckpoint = 0");
      this.writer = new WriteBehind(file, { insertEvent: INSERT_EVENT, saveState: SAVE_STATE }, (m) => this.onError?.(new StoreError(`${file}: write failed: ${m}`)));
    }
  }

  private migrate(): void {
    const current = this.db.pragma("user_version", { simple: true }) as number;
    if (current > MIGRATIONS.length) {
      throw new StoreError(`${this.file}: schema version ${current} is newer than this coordinator understands (${MIGRATIONS.length}); upgrade pifleet`);
    }
    // The version is read again under the write lock: two processes opening a new database at
    // once (e.g. several `pifleet enroll`) must not both run the same migration.
    const step = this.db.transaction((): boolean => {
      const v = this.db.pragma("user_version", { simple: true }) as number;
      if (v >= MIGRATIONS.length) return false;
      this.db.exec(MIGRATIONS[v]);
      this.db.pragma(`user_version = ${v + 1}`);
      return true;
    });
    while (step.immediate()) {
      // one migration per transaction
    }
  }

  get schemaVersion(): number {
    return this.db.pragma("user_version", { simple: true }) as number;
  }

  private readDataVersion(): number {
    return this.db.pragma("data_version", { simple: true }) as number;
  }

  enrollAgent(a: { identity: string; role: AgentRole; publicKey: string }): void {
    this.stmt.enrollAgent.run(a.identity, a.role, a.publicKey, this.now());
  }

  revokeAgent(identity: string): boolean {
    return this.stmt.revokeAgent.run(this.now(), identity).changes > 0;
  }

  agent(identity: string): AgentRecord | undefined {
    const r = this.stmt.agent.get(identity);
    return r && agentOf(r);
  }

  agents(): AgentRecord[] {
    return this.stmt.agents.all().map(agentOf);
  }

  createToken(t: { name: string; role: TokenRole; hash: string }): void {
    this.stmt.createToken.run(t.name, t.role, t.hash, this.now());
  }

  revokeToken(name: string): boolean {
    return this.stmt.revokeToken.run(this.now(), name).changes > 0;
  }

  token(name: string): TokenRecord | undefined {
    const r = this.stmt.token.get(name);
    return r && tokenOf(r);
  }

  tokens(): TokenRecord[] {
    return this.stmt.tokens.all().map(tokenOf);
  }

  revokedSince(sinceMs: number): { agents: string[]; tokens: string[] } {
    return {
      agents: this.stmt.revokedAgents.all(sinceMs).map((r) => r.identity),
      tokens: this.stmt.revokedTokens.all(sinceMs).map((r) => r.name),
    };
  }

  changedElsewhere(): boolean {
    // data_version moves when another connection commits (the writer thread's count too).
    const v = this.readDataVersion();
    if (v === this.dataVersion) return false;
    this.dataVersion = v;
    return true;
  }

  piStates(): PiStateRecord[] {
    this.flush();
    return this.stmt.piStates.all().map((r) => ({
      pi: r.pi,
      state: r.state,
      reason: r.reason,
      health: r.health,
      sinceMs: r.since_ms,
      lastSeenMs: r.last_seen_ms,
      lastReport: r.last_report ? new Uint8Array(r.last_report) : null,
      attempts: r.attempts,
      held: r.held !== 0,
    }));
  }

  /** Queued for the writer thread: committed at the end of this event-loop turn, or soon after. */
  savePiStates(rows: Iterable<PiStateRecord>): void {
    for (const r of rows) {
      const row = {
        pi: r.pi,
        state: r.state,
        reason: r.reason,
        health: r.health,
        since_ms: r.sinceMs,
        last_seen_ms: r.lastSeenMs,
        last_report: r.lastReport,
        attempts: r.attempts,
        held: r.held ? 1 : 0,
      };
      if (this.writer) this.writer.push({ s: row });
      else this.stmt.savePiState.run({ ...row, last_report: row.last_report && Buffer.from(row.last_report) });
    }
  }

  /**
   * The id is assigned here, so the feed can announce the event at once; the row is written by
   * the writer thread. Only one coordinator writes a database's events.
   */
  appendEvent(e: EventInput): EventRecord {
    const rec: EventRecord = {
      id: ++this.lastEventId,
      timeMs: e.timeMs ?? this.now(),
      kind: e.kind,
      subject: e.subject,
      message: e.message,
      actor: e.actor ?? "",
      fields: e.fields ?? {},
    };
    const row = [rec.id, rec.timeMs, rec.kind, rec.subject, rec.message, rec.actor, JSON.stringify(rec.fields)];
    if (this.writer) this.writer.push({ e: row });
    else this.stmt.appendEvent.run(...row);
    return rec;
  }

  /** Blocks until every queued event and state is committed. */
  flush(): void {
    this.writer?.drain();
  }

  recentEvents(limit: number): EventRecord[] {
    this.flush();
    return this.stmt.recentEvents.all(limit).map(eventOf);
  }

  events(q: { afterId?: number; kind?: string; subject?: string; limit?: number } = {}): EventRecord[] {
    this.flush();
    const where: string[] = ["id > @afterId"];
    if (q.kind !== undefined) where.push("kind = @kind");
    if (q.subject !== undefined) where.push("subject = @subject");
    const rows = this.db
      .prepare<Record<string, unknown>, EventRow>(`SELECT * FROM events WHERE ${where.join(" AND ")} ORDER BY id LIMIT @limit`)
      .all({ afterId: q.afterId ?? 0, kind: q.kind, subject: q.subject, limit: q.limit ?? 1000 });
    return rows.map(eventOf);
  }

  openIntent(pi: string, port: number, reason: string, action = "cycle"): number {
    // The intent must be on disk before the port goes off, even if the machine loses power next;
    // what was queued before it is written first, so the log never shows an effect before its cause.
    this.flush();
    this.db.pragma("synchronous = FULL");
    try {
      const now = this.now();
      return Number(this.stmt.openIntent.run(pi, port, action, reason, now, now).lastInsertRowid);
    } finally {
      this.db.pragma("synchronous = NORMAL");
    }
  }

  closeIntent(id: number, outcome: IntentOutcome, note = ""): void {
    this.flush();
    const status = OUTCOME_STATUS[outcome];
    if (!status) throw new StoreError(`closeIntent: outcome "${String(outcome)}" is not one of ${Object.keys(OUTCOME_STATUS).join(", ")}`);
    this.stmt.closeIntent.run(status, note, this.now(), id);
  }

  openIntents(): PowerIntent[] {
    this.flush();
    return this.stmt.openIntents.all().map(intentOf);
  }

  intents(limit = 1000): PowerIntent[] {
    this.flush();
    return this.stmt.intents.all(limit).map(intentOf);
  }

  intentOff(id: number, atMs: number): void {
    this.stmt.intentOff.run(atMs, this.now(), id);
  }

  eventStats(): { count: number; firstId: number; lastId: number } {
    this.flush();
    const r = this.stmt.eventStats.get()!;
    return { count: r.count, firstId: r.firstId ?? 0, lastId: r.lastId ?? 0 };
  }

  removeExportedEvents(x: { firstId: number; lastId: number; count: number; file: string; sha256: string }): void {
    this.flush();
    this.db.transaction(() => {
      this.stmt.insertExport.run(x.firstId, x.lastId, x.count, x.file, x.sha256, this.now());
      const removed = this.stmt.deleteExported.run(x.firstId, x.lastId).changes;
      if (removed !== x.count) throw new StoreError(`removeExportedEvents: ${removed} events in ${x.firstId}–${x.lastId}, the export holds ${x.count}`);
    })();
  }

  eventExports(): EventExport[] {
    return this.stmt.eventExports.all().map((r) => ({ id: r.id, firstId: r.first_id, lastId: r.last_id, count: r.count, file: r.file, sha256: r.sha256, timeMs: r.time_ms }));
  }

  close(): void {
    if (!this.db.open) return;
    this.writer?.close();
    this.db.pragma("wal_checkpoint(TRUNCATE)");
    this.db.close();
  }
}

function agentOf(r: AgentRow): AgentRecord {
  return { identity: r.identity, role: r.role, publicKey: r.public_key, createdMs: r.created_ms, revokedMs: r.revoked_ms };
}

function tokenOf(r: TokenRow): TokenRecord {
  return { name: r.name, role: r.role, hash: r.hash, createdMs: r.created_ms, revokedMs: r.revoked_ms };
}

function eventOf(r: EventRow): EventRecord {
  return { id: r.id, timeMs: r.time_ms, kind: r.kind, subject: r.subject, message: r.message, actor: r.actor, fields: JSON.parse(r.fields) as Record<string, string> };
}

function intentOf(r: IntentRow): PowerIntent {
  return {
    id: r.id,
    pi: r.pi,
    port: r.port,
    action: r.action,
    reason: r.reason,
    status: r.status,
    note: r.note,
    createdMs: r.created_ms,
    updatedMs: r.updated_ms,
    offMs: r.off_ms,
  };
}
