/**
 * What the coordinator keeps. Synchronous on purpose: power intents are durable when openIntent
 * returns, which their crash safety relies on (the intent exists before the port goes off);
 * events and Pi states are committed together at the end of the current event-loop turn. A
 * clustered store would replicate beneath this interface (a local replica that a consensus layer
 * keeps in step), not make every caller asynchronous.
 */
export interface Store {
  enrollAgent(agent: { identity: string; role: AgentRole; publicKey: string }): void;
  /** False when no such agent is enrolled (or it was already revoked). */
  revokeAgent(identity: string): boolean;
  agent(identity: string): AgentRecord | undefined;
  agents(): AgentRecord[];

  createToken(token: { name: string; role: TokenRole; hash: string }): void;
  revokeToken(name: string): boolean;
  token(name: string): TokenRecord | undefined;
  tokens(): TokenRecord[];
  /** Agents and tokens revoked after `sinceMs`: their live connections must be closed. */
  revokedSince(sinceMs: number): { agents: string[]; tokens: string[] };
  /** True when another process (e.g. `pifleet enroll --revoke`) wrote since the last call. */
  changedElsewhere(): boolean;

  piStates(): PiStateRecord[];
  /** Upserts all rows in one transaction. */
  savePiStates(rows: Iterable<PiStateRecord>): void;

  appendEvent(event: EventInput): EventRecord;
  /** The newest `limit` events, oldest first. */
  recentEvents(limit: number): EventRecord[];
  events(query?: { afterId?: number; kind?: string; subject?: string; limit?: number }): EventRecord[];
  /** How many events the database holds, and the lowest and highest id (0 when empty). */
  eventStats(): { count: number; firstId: number; lastId: number };
  /**
   * Records that events firstId..lastId were exported to `file` (already durable), and removes
   * them, in one transaction. The only way an event leaves the database.
   */
  removeExportedEvents(x: { firstId: number; lastId: number; count: number; file: string; sha256: string }): void;
  eventExports(): EventExport[];

  /** Written and synced before the power action starts; returns the intent id. */
  openIntent(pi: string, port: number, reason: string, action?: string): number;
  /** done: finished as planned; recovered/undone: undone after a crash (port back on); failed. */
  closeIntent(id: number, outcome: IntentOutcome, note?: string): void;
  openIntents(): PowerIntent[];
  intents(limit?: number): PowerIntent[];
  /** The intent's port was verified off at `atMs`. */
  intentOff(id: number, atMs: number): void;

  /** Checkpoints the write-ahead log into the main file and closes. */
  close(): void;

  /** Told of writes that failed after the call that made them had returned (the writer thread). */
  onError?: (err: Error) => void;
}

export type AgentRole = "pi" | "fileserver";
export type TokenRole = "watcher" | "operator";
export type IntentOutcome = "done" | "recovered" | "undone" | "failed";
export type IntentStatus = "open" | "done" | "undone" | "failed";

export interface AgentRecord {
  identity: string;
  role: AgentRole;
  /** SPKI DER, base64url. The secret never reaches the coordinator's database. */
  publicKey: string;
  createdMs: number;
  revokedMs: number | null;
}

export interface TokenRecord {
  name: string;
  role: TokenRole;
  /** SHA-256 of the token, hex. */
  hash: string;
  createdMs: number;
  revokedMs: number | null;
}

export interface PiStateRecord {
  pi: string;
  /** Displayed state, lower-case (piStateName): healthy, suspect, down, drained, … */
  state: string;
  reason: string;
  /** What the health judge alone says (healthy, suspect, down, unknown). */
  health: string;
  sinceMs: number;
  lastSeenMs: number | null;
  /** The last report: PiStatus bytes with only last_sample and facts (before pifleet 0.2: a PiReport; see PiEntry.storedReport). */
  lastReport: Uint8Array | null;
  attempts: number;
  held: boolean;
}

export interface EventInput {
  timeMs?: number;
  kind: string;
  subject: string;
  message: string;
  actor?: string;
  fields?: Record<string, string>;
}

export interface EventRecord {
  id: number;
  timeMs: number;
  kind: string;
  subject: string;
  message: string;
  actor: string;
  fields: Record<string, string>;
}

export interface PowerIntent {
  id: number;
  pi: string;
  port: number;
  action: string;
  reason: string;
  status: IntentStatus;
  note: string;
  createdMs: number;
  updatedMs: number;
  /** When the port was verified off, if the coordinator lived to record it. */
  offMs: number | null;
}

export interface EventExport {
  id: number;
  firstId: number;
  lastId: number;
  count: number;
  file: string;
  sha256: string;
  timeMs: number;
}
