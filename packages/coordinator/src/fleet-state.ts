import { EventEmitter } from "node:events";
import { encodePiStatusWith, readingOf, SampleEncoder, v1, type PiReading } from "@pifleet/proto";
import { judge, type Health, type JudgedReport, type JudgeThresholds, type Verdict } from "./judge.js";
import type { PiStateRecord } from "./store/types.js";

/** States only the recovery engine sets; while one is set the judge's verdict is kept but not shown. */
export type RecoveryState = "drained" | "power-cycling" | "booting" | "rebuilding" | "quarantined";
/** Shown while the Pi's agent is refused for its credentials: silent for a known reason, not dead. */
export const CREDENTIALS_REFUSED = "credentials-refused";
export type DisplayState = Health | RecoveryState | typeof CREDENTIALS_REFUSED;

export const PI_STATE: Record<DisplayState, v1.PiState> = {
  unknown: v1.PiState.PI_STATE_UNKNOWN,
  healthy: v1.PiState.PI_STATE_HEALTHY,
  suspect: v1.PiState.PI_STATE_SUSPECT,
  down: v1.PiState.PI_STATE_DOWN,
  drained: v1.PiState.PI_STATE_DRAINED,
  "power-cycling": v1.PiState.PI_STATE_POWER_CYCLING,
  booting: v1.PiState.PI_STATE_BOOTING,
  rebuilding: v1.PiState.PI_STATE_REBUILDING,
  quarantined: v1.PiState.PI_STATE_QUARANTINED,
  [CREDENTIALS_REFUSED]: v1.PiState.PI_STATE_CREDENTIALS_REFUSED,
};
const NAME_OF = new Map<v1.PiState, DisplayState>(Object.entries(PI_STATE).map(([k, v]) => [v, k as DisplayState]));
const HEALTHS = new Set<string>(["unknown", "healthy", "suspect", "down"]);

export function displayStateName(state: v1.PiState): DisplayState {
  return NAME_OF.get(state) ?? "unknown";
}

export function isRecoveryState(s: string): s is RecoveryState {
  return s in PI_STATE && !HEALTHS.has(s) && s !== CREDENTIALS_REFUSED;
}

export interface PiRef {
  name: string;
  port: number;
  /** The shelf (switch) the port is on; one-shelf fleets may leave it out. */
  shelf?: string;
}

/** Bytes kept per Pi for its last sample; a larger one (long error strings) grows its buffer. */
const SAMPLE_SLOT = 192;

/**
 * One Pi as the coordinator sees it. `status` is the message the feed encodes, except that its
 * last sample and its facts are kept apart, as received: the feed and the database take those
 * bytes as they are. The sample's bytes are copied into a buffer this Pi keeps for good, and the
 * decoded sample is judged on arrival and not kept: anything allocated per report and kept for
 * one report interval would survive the young generation, and at 10,000 reports a second the
 * garbage collector would then pause the whole fleet.
 */
export class PiEntry {
  readonly status: v1.PiStatus;
  private sampleBuf: Buffer | null = null;
  private sampleLen = 0;
  /** The agent's AgentFacts, encoded once per hello (the feed sends these bytes). */
  factsBytes: Uint8Array | null = null;
  facts: v1.AgentFacts | null = null;
  health: Health = "unknown";
  healthReason = "waiting for the first report";
  override: RecoveryState | null = null;
  /**
   * Why the Pi's agent is refused for its credentials (ErrorFrame reason: revoked, bad_signature,
   * unknown_identity), or null. Shown unless a recovery state is; cleared when the agent
   * authenticates again (re-enrolled) or a person releases the Pi.
   */
  credentials: string | null = null;
  credentialsMessage = "";
  /** Coordinator clock at the last fresh report, this run or a previous one. */
  lastReportAt: number | undefined;
  /** performance.now() of the oldest report not yet sent to watchers (0: none). */
  pendingSince = 0;
  /** Queued for the database (see Coordinator's write queue). */
  storeQueued = false;
  /** Neighbours in the fleet's list of Pis by last report (see FleetState). */
  older: PiEntry | null = null;
  newer: PiEntry | null = null;
  listed = false;

  /** Watched since (the run's start, or the reload that added it): its start-up grace counts from here. */
  since: number;

  constructor(
    // Not readonly: a fleet-file reload may move a Pi to another port or shelf.
    public ref: PiRef,
    now: number,
  ) {
    this.since = now;
    this.status = v1.PiStatus.create({
      name: ref.name,
      port: ref.port,
      shelf: ref.shelf ?? "",
      state: v1.PiState.PI_STATE_UNKNOWN,
      reason: this.healthReason,
      stateSinceMs: now,
    });
  }

  get state(): DisplayState {
    return displayStateName(this.status.state);
  }

  /** The last sample's bytes: a view of this Pi's buffer, valid until the next sample. */
  get sampleBytes(): Uint8Array | null {
    return this.sampleBuf ? this.sampleBuf.subarray(0, this.sampleLen) : null;
  }

  /** Keeps a sample's bytes (`src[from, to)`), reusing this Pi's buffer. */
  keepSample(src: Uint8Array, from = 0, to = src.byteLength): void {
    const n = to - from;
    if (!this.sampleBuf || this.sampleBuf.byteLength < n) this.sampleBuf = Buffer.allocUnsafeSlow(Math.max(SAMPLE_SLOT, n));
    this.sampleBuf.set(src.subarray(from, to), 0);
    this.sampleLen = n;
  }

  setFacts(facts: v1.AgentFacts.$Properties | null): void {
    this.facts = facts ? v1.AgentFacts.fromObject(facts) : null;
    this.factsBytes = this.facts ? v1.AgentFacts.encode(this.facts).finish() : null;
  }

  /** The last sample, decoded on demand. */
  lastSample(): v1.PiSample | null {
    const b = this.sampleBytes;
    return b ? v1.PiSample.decode(b) : null;
  }

  /** The last sample read with the facts, as the dashboard shows it. */
  lastReading(): PiReading | null {
    return readingOf({ lastSample: this.lastSample(), facts: this.facts });
  }

  /**
   * What the database keeps of the last report: PiStatus bytes holding only last_sample and
   * facts (a copy: the sample buffer is reused). Rows written before pifleet 0.2 hold a PiReport,
   * which always starts with field 1 (`pi`), where these start with field 11 or 12.
   */
  storedReport(): Uint8Array | null {
    const sample = this.sampleBytes;
    return sample || this.factsBytes ? encodePiStatusWith({}, sample, this.factsBytes) : null;
  }

  restoreReport(bytes: Uint8Array): void {
    if (bytes[0] === ((1 << 3) | 2)) {
      // A PiReport from before 0.2: read it as an old agent's report is read.
      const enc = new SampleEncoder();
      const { sample } = enc.encode(v1.PiReport.decode(bytes));
      this.keepSample(v1.PiSample.encode(sample).finish());
      this.setFacts(enc.facts);
      return;
    }
    const st = v1.PiStatus.decode(bytes);
    if (st.lastSample) this.keepSample(v1.PiSample.encode(st.lastSample).finish());
    this.setFacts(st.facts ?? null);
  }
}

/** A sample as the fleet takes it: judged, and marked when it was queued while disconnected. */
export type ReportedSample = JudgedReport & { replayed?: boolean | null };

export interface StateChange {
  pi: string;
  from: DisplayState;
  to: DisplayState;
  reason: string;
  /** "judge", "recovery", or whoever set a recovery state. */
  actor: string;
  /** Already recorded in the audit log by whoever caused it (the gateway's refusal event). */
  logged?: boolean;
  health: Health;
  timeMs: number;
}

export interface FileserverHealthChange {
  name: string;
  healthy: boolean;
  reason: string;
}

export interface FleetStateEvents {
  /** The displayed state of a Pi changed. */
  state: [change: StateChange];
  /** Every report, after judging. Replayed ones (queued while disconnected) are not judged. */
  report: [pi: string, sample: ReportedSample, health: Health];
  fileserverReport: [name: string, report: v1.FileserverReport];
  fileserverHealth: [change: FileserverHealthChange];
  /** Something in this Pi's PiStatus changed (the feed sends it). */
  changed: [entry: PiEntry];
  /** Something in FleetStatus changed. */
  fleetStatus: [status: v1.FleetStatus];
}

/**
 * Holds every planned Pi's state. The health judge owns unknown/healthy/suspect/down; another
 * module (the recovery engine) may impose a recovery state with `setRecoveryState` and hand the
 * Pi back with `null`. Work per report is O(1): lateness is found by walking the Pis in order of
 * their last report and stopping at the first one on time.
 */
export class FleetState extends EventEmitter<FleetStateEvents> {
  readonly pis = new Map<string, PiEntry>();
  readonly fleetStatus: v1.FleetStatus;
  readonly watchingSince: number;
  /**
   * Heard from this run, in order of their last report: a list threaded through the entries
   * (oldest first). A Map deleted from and re-added to 10,000 times a second rebuilds its table
   * every few thousand operations, an old-space allocation the garbage collector then sweeps;
   * moving an entry here writes four pointers.
   */
  private oldest: PiEntry | null = null;
  private newest: PiEntry | null = null;
  /** Not heard from since this run started: judged once the start-up grace is over. */
  private readonly unheard = new Map<string, PiEntry>();
  private readonly counts = new Map<v1.PiState, number>();
  /** Each shelf's counts, the same objects as fleetStatus.shelves (kept as states change). */
  private readonly shelves = new Map<string, v1.ShelfStatus>();
  private readonly fileserver: { name: string; lastReportAt?: number; healthy: boolean; reason: string } | undefined;
  private readonly now: () => number;

  constructor(
    refs: readonly PiRef[],
    readonly thresholds: JudgeThresholds,
    opts: { now?: () => number; fileserver?: string } = {},
  ) {
    super();
    this.now = opts.now ?? Date.now;
    this.watchingSince = this.now();
    for (const ref of refs) {
      const e = new PiEntry(ref, this.watchingSince);
      this.pis.set(ref.name, e);
      this.unheard.set(ref.name, e);
    }
    this.fileserver = opts.fileserver ? { name: opts.fileserver, healthy: false, reason: "no report yet" } : undefined;
    this.fleetStatus = v1.FleetStatus.create({ pisTotal: refs.length, fileserverHealthy: false, fileserver: this.fileserver?.name ?? "", fileserverReason: this.fileserver?.reason ?? "" });
    for (const ref of refs) {
      if (ref.shelf === undefined || this.shelves.has(ref.shelf)) continue;
      const sh = v1.ShelfStatus.create({ name: ref.shelf });
      this.shelves.set(ref.shelf, sh);
      this.fleetStatus.shelves.push(sh);
    }
    this.recount();
  }

  /** Loads what a previous run stored. Rows for Pis no longer planned are ignored. */
  restore(rows: Iterable<PiStateRecord>): void {
    for (const row of rows) {
      const e = this.pis.get(row.pi);
      if (!e) continue;
      const state = (row.state in PI_STATE ? row.state : "unknown") as DisplayState;
      e.status.state = PI_STATE[state];
      e.status.reason = row.reason;
      e.status.stateSinceMs = row.sinceMs;
      e.status.attempts = row.attempts;
      e.status.held = row.held;
      e.health = HEALTHS.has(row.health) ? (row.health as Health) : "unknown";
      e.healthReason = isRecoveryState(state) || state === CREDENTIALS_REFUSED ? "" : row.reason;
      e.override = isRecoveryState(state) ? state : null;
      // Still refused after a restart: a revoked Pi whose agent stopped retrying stays left alone.
      e.credentials = state === CREDENTIALS_REFUSED ? (/\((\w+)\)/.exec(row.reason)?.[1] ?? "refused") : null;
      if (row.lastSeenMs !== null) {
        e.lastReportAt = row.lastSeenMs;
        e.status.lastSeenMs = row.lastSeenMs;
      }
      if (row.lastReport) {
        try {
          e.restoreReport(row.lastReport);
        } catch {
          // A report the current schema cannot read is only history; the next report replaces it.
        }
      }
    }
    this.recount();
  }

  /**
   * A sample from the Pi's own authenticated connection. `raw[from, to)` are its bytes as received
   * (kept as they are); without them the sample is encoded here.
   */
  sample(name: string, sample: ReportedSample, at = this.now(), raw?: Uint8Array, from?: number, to?: number): void {
    const e = this.pis.get(name);
    if (!e) return;
    if (sample.replayed) {
      this.emit("report", name, sample, e.health);
      return;
    }
    e.lastReportAt = at;
    e.status.lastSeenMs = at;
    if (raw) e.keepSample(raw, from, to);
    else e.keepSample(v1.PiSample.encode(sample as v1.PiSample.$Properties).finish());
    this.unheard.delete(name);
    this.unlist(e);
    this.list(e);
    const v = judge({ now: at, watchingSince: this.watchingSince, lastReportAt: at, report: sample }, this.thresholds);
    if (v) this.applyVerdict(e, v, at);
    this.emit("changed", e);
    this.emit("report", name, sample, e.health);
  }

  /** The facts a Pi's agent sent (in its hello, or since); null for an agent that sends none. */
  setFacts(name: string, facts: v1.AgentFacts.$Properties | null): void {
    const e = this.pis.get(name);
    if (!e) return;
    e.setFacts(facts);
    this.emit("changed", e);
  }

  /** Judges silence (no report content needed): call a few times per interval. Cost: the late Pis only. */
  sweep(now = this.now()): void {
    const t = this.thresholds;
    if (this.unheard.size > 0 && now - this.watchingSince >= t.startupGraceMs) {
      for (const [name, e] of this.unheard) {
        const v = judge({ now, watchingSince: e.since, lastReportAt: e.lastReportAt }, t);
        if (v) this.applyVerdict(e, v, now);
        if (e.health === "down") this.unheard.delete(name);
      }
    }
    for (let e = this.oldest; e; ) {
      if (now - (e.lastReportAt ?? 0) <= t.suspectAfterMs) break;
      const next: PiEntry | null = e.newer;
      const v = judge({ now, watchingSince: this.watchingSince, lastReportAt: e.lastReportAt }, t);
      if (v) this.applyVerdict(e, v, now);
      // Down stays down until a report: no need to look at it again.
      if (e.health === "down") this.unlist(e);
      e = next;
    }
    const fs = this.fileserver;
    if (fs?.lastReportAt !== undefined && fs.healthy && now - fs.lastReportAt >= t.downAfterMs) {
      this.setFileserverHealth(false, `no report for ${t.downAfterMs / 1000} s`);
    }
  }

  /**
   * Takes a new list of planned Pis (a fleet-file reload): new ones are added unheard (their
   * start-up grace counts from now), gone ones are dropped and named in FleetStatus.pisRemoved
   * so watchers drop them too, and a Pi moved to another port or shelf keeps its state.
   */
  replan(refs: readonly PiRef[]): { added: string[]; removed: string[]; changed: string[] } {
    const now = this.now();
    const want = new Map(refs.map((r) => [r.name, r]));
    const added: string[] = [];
    const removed: string[] = [];
    const changed: string[] = [];
    for (const [name, e] of this.pis) {
      if (want.has(name)) continue;
      this.unlist(e);
      this.unheard.delete(name);
      this.pis.delete(name);
      removed.push(name);
    }
    for (const ref of refs) {
      const e = this.pis.get(ref.name);
      if (!e) {
        const n = new PiEntry(ref, now);
        this.pis.set(ref.name, n);
        this.unheard.set(ref.name, n);
        added.push(ref.name);
        this.emit("changed", n);
      } else if (e.ref.port !== ref.port || e.ref.shelf !== ref.shelf) {
        e.ref = ref;
        e.status.port = ref.port;
        changed.push(ref.name);
        this.emit("changed", e);
      }
    }
    // A re-added Pi is no longer removed; the list holds only this reload's removals and earlier ones still gone.
    const gone = new Set([...this.fleetStatus.pisRemoved, ...removed]);
    for (const name of this.pis.keys()) gone.delete(name);
    this.fleetStatus.pisRemoved = [...gone];
    this.fleetStatus.pisTotal = this.pis.size;
    this.recount();
    this.emit("fleetStatus", this.fleetStatus);
    return { added, removed, changed };
  }

  setConnected(name: string, connected: boolean): void {
    const e = this.pis.get(name);
    if (!e || e.status.connected === connected) return;
    e.status.connected = connected;
    this.emit("changed", e);
  }

  /** What the judge says, whatever recovery state is shown. */
  health(name: string): Health {
    return this.pis.get(name)?.health ?? "unknown";
  }

  /**
   * Imposes a recovery state (drained, power-cycling, booting, rebuilding, quarantined), or with
   * null hands the Pi back to the judge, whose current verdict is shown again.
   */
  setRecoveryState(name: string, state: RecoveryState | null, reason: string, actor = "recovery"): void {
    const e = this.mustGet(name);
    if (state !== null && !isRecoveryState(state)) throw new Error(`setRecoveryState: "${String(state)}" is not a recovery state`);
    e.override = state;
    if (state) this.display(e, state, reason, reason, actor, this.now());
    else this.showUnderlying(e, reason, actor);
  }

  /**
   * The Pi's agent was refused for its credentials. When that is news, returns the state shown
   * until now; the caller records the one audit event (the state change is marked logged).
   * Later refusals of a Pi already so marked return undefined.
   */
  setCredentialsRefused(name: string, reason: string, message: string): DisplayState | undefined {
    const e = this.pis.get(name);
    if (!e || e.credentials !== null) return undefined;
    const from = e.state;
    e.credentials = reason;
    e.credentialsMessage = message;
    if (e.override === null) this.showUnderlying(e, credentialsReason(e), "gateway", true);
    else this.emit("changed", e);
    return from;
  }

  /** Why a Pi's agent is refused for its credentials, or undefined. */
  credentialsRefused(name: string): string | undefined {
    return this.pis.get(name)?.credentials ?? undefined;
  }

  /** The agent authenticated again, or a person released the Pi. */
  clearCredentialsRefused(name: string, why: string, actor: string): boolean {
    const e = this.pis.get(name);
    if (!e || e.credentials === null) return false;
    e.credentials = null;
    if (e.override === null) this.showUnderlying(e, why, actor);
    return true;
  }

  setAttempts(name: string, attempts: number): void {
    const e = this.mustGet(name);
    if (e.status.attempts === attempts) return;
    e.status.attempts = attempts;
    this.emit("changed", e);
  }

  setHeld(name: string, held: boolean): void {
    const e = this.mustGet(name);
    if (e.status.held === held) return;
    e.status.held = held;
    this.emit("changed", e);
  }

  /** The recovery engine's fleet-wide view: alarm and active remediations. */
  /** Who leads and whether the store answers (FleetStatus 10–13); emitted only when it changed. */
  setHaStatus(s: { leader: string; coordinator: string; storeHealthy: boolean; backend: string }): void {
    const f = this.fleetStatus;
    if (f.leader === s.leader && f.coordinator === s.coordinator && f.storeHealthy === s.storeHealthy && f.haBackend === s.backend) return;
    f.leader = s.leader;
    f.coordinator = s.coordinator;
    f.storeHealthy = s.storeHealthy;
    f.haBackend = s.backend;
    this.emit("fleetStatus", f);
  }

  setRecoveryStatus(s: { alarm: boolean; alarmReason: string; active: number; shelves?: Array<{ shelf: string; alarm: boolean; alarmReason: string; paused: string }> }): void {
    const f = this.fleetStatus;
    let shelvesChanged = false;
    for (const r of s.shelves ?? []) {
      const sh = this.shelves.get(r.shelf);
      if (!sh || (sh.alarm === r.alarm && sh.alarmReason === r.alarmReason && sh.pausedReason === r.paused)) continue;
      sh.alarm = r.alarm;
      sh.alarmReason = r.alarmReason;
      sh.pausedReason = r.paused;
      shelvesChanged = true;
    }
    if (!shelvesChanged && f.alarm === s.alarm && f.alarmReason === s.alarmReason && f.activeRemediations === s.active) return;
    f.alarm = s.alarm;
    f.alarmReason = s.alarmReason;
    f.activeRemediations = s.active;
    this.emit("fleetStatus", f);
  }

  fileserverReport(name: string, report: v1.FileserverReport, at = this.now()): void {
    const fs = this.fileserver;
    if (!fs || fs.name !== name) return;
    fs.lastReportAt = at;
    // Every report is news to a watcher waiting for this fileserver (`pifleet install --wait-report`):
    // one FleetStatus per report interval (5 s by default) on the feed.
    this.fleetStatus.fileserverLastSeenMs = at;
    // The agent's own error usually names the same cause ("NFS server not running"): say it once.
    const problems = [
      ...new Set([
        ...(report.healthy ? [] : ["reports itself unhealthy"]),
        ...(report.nfsServerRunning ? [] : ["NFS server not running"]),
        ...(report.error ? report.error.split("; ") : []),
      ]),
    ];
    if (!this.setFileserverHealth(problems.length === 0, problems.length ? problems.join("; ") : "reporting healthy")) this.emit("fleetStatus", this.fleetStatus);
    this.emit("fileserverReport", name, report);
  }

  fileserverHealthy(): boolean {
    return this.fileserver?.healthy ?? false;
  }

  /** Pis per displayed state, kept as states change (for /metrics). */
  stateCounts(): ReadonlyMap<v1.PiState, number> {
    return this.counts;
  }

  record(e: PiEntry): PiStateRecord {
    return {
      pi: e.ref.name,
      state: e.state,
      reason: e.status.reason,
      health: e.health,
      sinceMs: e.status.stateSinceMs,
      lastSeenMs: e.lastReportAt ?? null,
      lastReport: e.storedReport(),
      attempts: e.status.attempts,
      held: e.status.held,
    };
  }

  private applyVerdict(e: PiEntry, v: Verdict, now: number): void {
    if (v.health === e.health && v.reason === e.healthReason) return;
    e.health = v.health;
    e.healthReason = v.reason;
    if (e.override === null && e.credentials === null) this.display(e, v.health, v.reason, v.reason, "judge", now);
  }

  /** What is shown with no recovery state imposed: the credentials refusal, else the judge's verdict. */
  private showUnderlying(e: PiEntry, eventReason: string, actor: string, logged = false): void {
    if (e.credentials !== null) this.display(e, CREDENTIALS_REFUSED, credentialsReason(e), eventReason, actor, this.now(), logged);
    else this.display(e, e.health, e.healthReason, eventReason, actor, this.now());
  }

  private display(e: PiEntry, state: DisplayState, reason: string, eventReason: string, actor: string, now: number, logged = false): void {
    const s = e.status;
    const to = PI_STATE[state];
    const from = s.state;
    if (to === from && reason === s.reason) return;
    s.reason = reason;
    if (to !== from) {
      s.state = to;
      s.stateSinceMs = now;
      this.counts.set(from, (this.counts.get(from) ?? 1) - 1);
      this.counts.set(to, (this.counts.get(to) ?? 0) + 1);
      const sh = e.ref.shelf === undefined ? undefined : this.shelves.get(e.ref.shelf);
      const shelfMoved = sh !== undefined && bucket(from) !== bucket(to);
      if (shelfMoved) {
        sh[bucket(from)]--;
        sh[bucket(to)]++;
      }
      this.emit("state", { pi: e.ref.name, from: displayStateName(from), to: state, reason: eventReason, actor, health: e.health, timeMs: now, logged });
      const healthy = this.counts.get(v1.PiState.PI_STATE_HEALTHY) ?? 0;
      if (healthy !== this.fleetStatus.pisHealthy || shelfMoved) {
        this.fleetStatus.pisHealthy = healthy;
        this.emit("fleetStatus", this.fleetStatus);
      }
    }
    this.emit("changed", e);
  }

  /** True when the FleetStatus changed and was emitted. */
  private setFileserverHealth(healthy: boolean, reason: string): boolean {
    const fs = this.fileserver!;
    const changed = fs.healthy !== healthy;
    const said = fs.reason !== reason;
    fs.healthy = healthy;
    fs.reason = reason;
    this.fleetStatus.fileserverReason = reason;
    if (changed) {
      this.fleetStatus.fileserverHealthy = healthy;
      this.emit("fileserverHealth", { name: fs.name, healthy, reason });
    }
    if (changed || said) this.emit("fleetStatus", this.fleetStatus);
    return changed || said;
  }

  private list(e: PiEntry): void {
    e.older = this.newest;
    e.newer = null;
    if (this.newest) this.newest.newer = e;
    else this.oldest = e;
    this.newest = e;
    e.listed = true;
  }

  private unlist(e: PiEntry): void {
    if (!e.listed) return;
    if (e.older) e.older.newer = e.newer;
    else this.oldest = e.newer;
    if (e.newer) e.newer.older = e.older;
    else this.newest = e.older;
    e.older = e.newer = null;
    e.listed = false;
  }

  private recount(): void {
    this.counts.clear();
    for (const sh of this.shelves.values()) Object.assign(sh, { pisTotal: 0, healthy: 0, suspect: 0, down: 0, other: 0 });
    for (const e of this.pis.values()) {
      this.counts.set(e.status.state, (this.counts.get(e.status.state) ?? 0) + 1);
      const sh = e.ref.shelf === undefined ? undefined : this.shelves.get(e.ref.shelf);
      if (sh) {
        sh.pisTotal++;
        sh[bucket(e.status.state)]++;
      }
    }
    this.fleetStatus.pisHealthy = this.counts.get(v1.PiState.PI_STATE_HEALTHY) ?? 0;
  }

  private mustGet(name: string): PiEntry {
    const e = this.pis.get(name);
    if (!e) throw new Error(`unknown Pi "${name}"`);
    return e;
  }
}

function credentialsReason(e: PiEntry): string {
  const n = e.ref.name;
  return `its agent is refused for its credentials (${e.credentials}): ${e.credentialsMessage || "refused"}; no power or rebuild action until a person acts (pifleet enroll ${n} and restart its agent, or pifleet release ${n})`;
}

/** Which of a shelf's overview counts a displayed state goes in. */
function bucket(state: v1.PiState): "healthy" | "suspect" | "down" | "other" {
  if (state === v1.PiState.PI_STATE_HEALTHY) return "healthy";
  if (state === v1.PiState.PI_STATE_SUSPECT) return "suspect";
  if (state === v1.PiState.PI_STATE_DOWN) return "down";
  return "other";
}
