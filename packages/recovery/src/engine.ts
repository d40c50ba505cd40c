import { EventEmitter } from "node:events";
import type { Logger } from "@pifleet/core";
import { darkShareGuard, fileserverGuard, reachGuard, Settle, startupGuard, type GuardVerdict } from "./guards.js";
import { SlidingWindowLimit } from "./rate-limit.js";
import { PowerOnWaves, type WaveAction, type WaveStatus } from "./waves.js";
import {
  DEFAULT_RECOVERY_CONFIG,
  type AuditEvent,
  type CredentialsPort,
  type FileserverPort,
  type Health,
  type IntentStore,
  type LoadBalancerPort,
  type OpenIntent,
  type PiRef,
  type PowerPort,
  type RecoveryConfig,
  type RecoveryState,
  type ShelfReachPort,
} from "./types.js";

export interface RecoveryDeps {
  pis: PiRef[];
  /** The PoE driver of the one shelf, and of any shelf `powerFor` does not name. */
  power: PowerPort;
  /** Each shelf's own switch: a Pi's port is switched on the switch of its shelf. */
  powerFor?: (shelf: string) => PowerPort | undefined;
  /** Whether each shelf's switch and fileserver answer; an unreachable one pauses that shelf. */
  reach?: ShelfReachPort;
  lb?: LoadBalancerPort;
  fileserver?: FileserverPort;
  intents: IntentStore;
  /** Pis refused for their credentials: left alone until a person acts. */
  credentials?: CredentialsPort;
  /** What the health judge says of a Pi right now. */
  health(pi: string): Health;
  /** The state the engine imposes on a Pi, or null to hand it back to the health judge. */
  setState(pi: string, state: RecoveryState | null, reason: string): void;
  /** An operator's hold (drain by hand), kept with the Pi's state so it survives a restart. */
  setHeld?(pi: string, held: boolean): void;
  /** Remediation attempts since the Pi was last stable, shown in the feed. */
  setAttempts?(pi: string, attempts: number): void;
  audit(event: AuditEvent): void;
  logger?: Logger;
  now?: () => number;
  config?: Partial<RecoveryConfig>;
}

interface PiRecord {
  ref: PiRef;
  busy: boolean;
  attempts: number;
  rebuilt: boolean;
  nextAttemptMs: number;
  /** First tick of this unhealthy spell (suspect or down); restarted when a guard lifts. */
  unhealthySinceMs: number | undefined;
  /** First tick it was seen `down` in this spell; restarted when a guard lifts. */
  downSinceMs: number | undefined;
  healthySinceMs: number | undefined;
  /** This engine switched its port on and no healthy report has come since: it is booting. */
  bootingSinceMs: number | undefined;
  /** Its agent was refused for its credentials at the last tick. */
  refused: boolean;
  held: boolean;
  quarantined: boolean;
  /** Left drained because it did not boot in time: it goes back into service whenever it turns healthy. */
  lateBoot: boolean;
}

/** One shelf's guards: each shelf is alarmed, paused and settled on its own. */
export interface ShelfRecoveryStatus {
  shelf: string;
  alarm: boolean;
  alarmReason: string;
  paused: string;
  settlingUntilMs: number;
}

interface ShelfGroup {
  name: string;
  settle: Settle;
  alarm: { on: boolean; reason: string };
  paused: string;
}

export interface RecoveryStatus {
  /** Per shelf (one entry for a one-shelf fleet). */
  shelves: ShelfRecoveryStatus[];
  alarm: boolean;
  alarmReason: string;
  active: number;
  paused: string;
  /** No automatic power action before this: a guard lifted recently (0: none). */
  settlingUntilMs: number;
}

export interface OperatorResult {
  ok: boolean;
  message: string;
}

/** Refused before anything was done; the message says why. */
class Refused extends Error {}

/**
 * Brings failed Pis back by itself: drain → power-cycle → boot → healthy; after repeated failures
 * rebuild the root filesystem and cycle again; still failing → quarantine until a person
 * releases it. Guards: bounded concurrency, no power while the fileserver is unhealthy, nothing
 * when a large share of the fleet goes dark at once, a fresh confirm window after any guard
 * lifts, nothing on a Pi refused for its credentials, back-off per Pi, a fleet-wide rate limit,
 * and crash-safe intents around every power-off.
 *
 * Reaction and safety: in steady state a Pi is acted on `confirmMs` after it turns `down`.
 * That is safe against a partition because the fleet alarm counts `suspect` Pis as dark, and
 * every Pi a partition cuts off is `suspect` before the first of them is `down`. After a guard
 * lifts, the time a Pi spent dark under it proves nothing, so it must be seen unhealthy afresh for
 * `confirmMs + reconnectBackoffMs` (see Settle).
 */
export class RecoveryEngine extends EventEmitter<{ status: [RecoveryStatus] }> {
  private readonly cfg: RecoveryConfig;
  private readonly pis = new Map<string, PiRecord>();
  private readonly limit: SlidingWindowLimit;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private startedMs = 0;
  /**
   * The guards of each shelf, with its lift window: a partition, a dark share or an unreachable
   * switch or fileserver on one shelf holds that shelf only. The concurrency cap and the power
   * rate limit stay fleet-wide.
   */
  private readonly groups = new Map<string, ShelfGroup>();
  private stopped = false;
  private readonly jobs = new Set<Promise<void>>();
  /** Intents held by a running job; any other open intent is a port someone must switch back on. */
  private readonly ownIntents = new Set<number>();
  /** Open intents being finished (their dwell is running out) after a restart. */
  private readonly recovering = new Set<number>();
  private lastIntentSweepMs = 0;
  /** A `power-on --all` in progress: its Pis are its own until it lets go of them. */
  private waves: PowerOnWaves | undefined;
  /** Who asked for the running power-on: every port it switches on is logged with that name. */
  private wavesBy = "";

  constructor(private readonly deps: RecoveryDeps) {
    super();
    this.cfg = { ...DEFAULT_RECOVERY_CONFIG, ...deps.config };
    this.now = deps.now ?? Date.now;
    this.limit = new SlidingWindowLimit(this.cfg.powerActionsPerWindow, this.cfg.powerWindowMs);
    for (const ref of deps.pis) {
      const shelf = ref.shelf ?? "";
      if (!this.groups.has(shelf)) this.groups.set(shelf, { name: shelf, settle: new Settle((guard) => this.settleWindowMs(guard)), alarm: { on: false, reason: "" }, paused: "" });
      this.pis.set(ref.name, {
        ref,
        busy: false,
        attempts: 0,
        rebuilt: false,
        nextAttemptMs: 0,
        unhealthySinceMs: undefined,
        downSinceMs: undefined,
        healthySinceMs: undefined,
        bootingSinceMs: undefined,
        refused: false,
        held: false,
        quarantined: false,
        lateBoot: false,
      });
    }
  }

  /** Finishes every power action a previous run left open, then starts judging. */
  async start(restored: { held?: string[]; quarantined?: string[]; inFlight?: string[] } = {}): Promise<void> {
    this.stopped = false;
    for (const name of restored.held ?? []) this.record(name).held = true;
    for (const name of restored.quarantined ?? []) this.record(name).quarantined = true;
    await this.recoverIntents();
    // Pis a previous run left mid-remediation (drained, cycling, booting) with no port off: their
    // shown state would never change again, and the load balancer would keep them drained.
    for (const name of restored.inFlight ?? []) {
      const rec = this.pis.get(name);
      if (rec && !rec.busy && !rec.held && !rec.quarantined) this.resumeAfterRestart(rec, "a remediation was interrupted by a coordinator restart");
    }
    this.startedMs = this.now();
    for (const g of this.groups.values()) g.settle.hold("startup");
    this.timer = setInterval(() => this.tick(), this.cfg.tickMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await Promise.allSettled([...this.jobs]);
  }

  status(): RecoveryStatus {
    const shelves: ShelfRecoveryStatus[] = [...this.groups.values()].map((g) => ({
      shelf: g.name,
      alarm: g.alarm.on,
      alarmReason: g.alarm.reason,
      paused: g.paused,
      settlingUntilMs: g.settle.state.holding ? 0 : g.settle.state.untilMs,
    }));
    const alarmed = shelves.filter((g) => g.alarm);
    const paused = shelves.filter((g) => g.paused);
    return {
      shelves,
      alarm: alarmed.length > 0,
      alarmReason: alarmed.map((g) => this.label(g.shelf, g.alarmReason)).join("; "),
      active: [...this.pis.values()].filter((p) => p.busy).length,
      paused: paused.map((g) => this.label(g.shelf, g.paused)).join("; "),
      settlingUntilMs: Math.max(0, ...shelves.map((g) => g.settlingUntilMs)),
    };
  }

  /** Names the shelf in a message once the fleet has more than one. */
  private label(shelf: string, message: string): string {
    return this.groups.size > 1 && message ? `shelf ${shelf}: ${message}` : message;
  }

  private group(rec: PiRecord): ShelfGroup {
    return this.groups.get(rec.ref.shelf ?? "")!;
  }

  private powerOf(shelf: string | undefined): PowerPort {
    return (shelf !== undefined ? this.deps.powerFor?.(shelf) : undefined) ?? this.deps.power;
  }

  /**
   * Ports left off by a coordinator that died mid-cycle are switched back on — but not before
   * the dwell has passed since they went off: a Pi switched on again too soon may not reset, and
   * would then sit unrecovered for its whole boot timeout. The wait is at most one dwell.
   */
  async recoverIntents(): Promise<void> {
    const open = this.deps.intents.openIntents().filter((i) => !this.ownIntents.has(i.id) && !this.recovering.has(i.id));
    await Promise.all(open.map((i) => this.recoverIntent(i)));
  }

  private async recoverIntent(intent: OpenIntent): Promise<void> {
    this.recovering.add(intent.id);
    try {
      const offFor = await this.offFor(intent);
      const wait = Math.min(this.cfg.dwellMs, Math.max(0, this.cfg.dwellMs - offFor));
      if (wait > 0) await sleep(wait);
      await this.powerOf(this.pis.get(intent.pi)?.ref.shelf).set(intent.port, true);
      this.deps.intents.closeIntent(intent.id, "recovered", "port switched on after a coordinator restart");
      const offSeconds = ((offFor + wait) / 1000).toFixed(1);
      this.deps.audit({
        kind: "power",
        subject: intent.pi,
        message: `port ${intent.port} switched back on: a power action (${intent.reason}) was interrupted by a coordinator restart; it was off ${offSeconds} s (dwell ${this.cfg.dwellMs / 1000} s)`,
        fields: { port: String(intent.port), intent: String(intent.id), offMs: String(Math.round(offFor + wait)) },
      });
      const rec = this.pis.get(intent.pi);
      if (rec) rec.bootingSinceMs = this.now();
      // The Pi now boots: give it its boot window rather than judging it dead and cycling it again.
      if (rec && !rec.busy && !rec.quarantined) this.resumeAfterRestart(rec, "power restored after an interrupted power action");
    } catch (err) {
      // Stays open: the next start tries again. Loud, because a Pi is dark until then.
      this.deps.logger?.error({ err: (err as Error).message, pi: intent.pi, port: intent.port }, "cannot restore power");
      this.deps.audit({ kind: "power", subject: intent.pi, message: `port ${intent.port} could not be switched back on: ${(err as Error).message}` });
    } finally {
      this.recovering.delete(intent.id);
    }
  }

  /** How long the intent's port has been off. Not known to be off, and found on: not at all. */
  private async offFor(intent: OpenIntent): Promise<number> {
    if (intent.offMs === undefined) {
      // The previous run died between writing the intent and seeing the port off.
      const on = await this.powerOf(this.pis.get(intent.pi)?.ref.shelf).get(intent.port).catch(() => false);
      if (on) return this.cfg.dwellMs;
    }
    return this.now() - (intent.offMs ?? intent.createdMs);
  }

  tick(): void {
    if (this.stopped) return;
    const now = this.now();
    if (now - this.lastIntentSweepMs >= 15_000) {
      // A port whose switch-on failed mid-job is retried here until the switch answers.
      this.lastIntentSweepMs = now;
      void this.recoverIntents();
    }
    const health = this.observe(now);
    if (this.waves) this.stepWaves(now, health);
    for (const rec of this.pis.values()) {
      const refused = this.refusedFor(rec) !== undefined;
      // No longer refused (re-enrolled, or released): its silence until now had a known cause.
      if (rec.refused && !refused) this.restartClocks(rec, now);
      rec.refused = refused;
    }
    const considered = [...this.pis.values()].filter((r) => !r.quarantined && !r.held && !r.busy && !r.refused && !this.waves?.owns(r.ref.name));
    for (const rec of considered) {
      // Not a power action, so no guard applies: a Pi that booted late takes traffic again.
      if (rec.lateBoot && health.get(rec.ref.name) === "healthy") this.spawn(rec, () => this.backInService(rec, `healthy again after attempt ${rec.attempts} (booted after the ${Math.round(this.cfg.bootTimeoutMs / 1000)} s boot timeout)`));
    }
    const open = new Set<string>();
    for (const g of this.groups.values()) {
      const lifted = g.settle.step(now, this.guards(now, g, considered.filter((r) => this.group(r) === g), health));
      if (lifted) this.afresh(now, g, lifted);
      if (!g.settle.blocks(now)) open.add(g.name);
    }
    if (open.size === 0) return;

    // Fleet-wide: at most maxConcurrent Pis in remediation, whichever shelves they are on.
    let active = [...this.pis.values()].filter((p) => p.busy).length;
    for (const rec of considered) {
      if (!open.has(rec.ref.shelf ?? "")) continue;
      if (active >= this.cfg.maxConcurrent) break;
      const h = health.get(rec.ref.name)!;
      if (!this.due(rec, h, now)) continue;
      if (this.limit.nextFreeMs(now) > now) break;
      active++;
      this.spawn(rec, () => this.remediate(rec, h));
    }
  }

  /** Reads every Pi's health and keeps its clocks: unhealthy since, down since, healthy since. */
  private observe(now: number): Map<string, Health> {
    const health = new Map<string, Health>();
    for (const [name, rec] of this.pis) {
      const h = this.deps.health(name);
      health.set(name, h);
      if (h === "healthy") {
        rec.unhealthySinceMs = undefined;
        rec.downSinceMs = undefined;
        rec.bootingSinceMs = undefined;
        rec.healthySinceMs ??= now;
        if (!rec.busy && rec.attempts > 0 && now - rec.healthySinceMs >= this.cfg.stableMs) {
          rec.attempts = 0;
          this.deps.setAttempts?.(name, 0);
          rec.rebuilt = false;
        }
        continue;
      }
      rec.healthySinceMs = undefined;
      if (h === "down" || h === "suspect") rec.unhealthySinceMs ??= now;
      if (h === "down") rec.downSinceMs ??= now;
      else rec.downSinceMs = undefined;
    }
    return health;
  }

  /**
   * This tick's guards, in order; each is a small function of what it needs. During the start-up
   * grace nothing else is judged (silence means nothing yet, so no alarm is raised either).
   */
  private guards(now: number, g: ShelfGroup, considered: PiRecord[], health: Map<string, Health>): GuardVerdict[] {
    const startup = startupGuard(now, this.startedMs, this.cfg.startupGraceMs);
    if (startup.holding) return [startup];
    // First: with its switch or fileserver unreachable, a shelf's dark Pis say nothing of themselves.
    const reach = reachGuard(this.unreachable(g));
    const alarm = darkShareGuard(considered.map((r) => health.get(r.ref.name)!), this.cfg.darkShare);
    this.setAlarm(g, alarm.holding, alarm.reason);
    const fs = fileserverGuard(this.fileserverHealthy(g));
    this.setPaused(g, reach.holding ? reach.reason : fs.reason);
    return [reach, alarm, fs];
  }

  private unreachable(g: ShelfGroup): string | undefined {
    return this.deps.reach?.unreachable(g.name);
  }

  private fileserverHealthy(g: ShelfGroup): boolean {
    return this.deps.fileserver?.healthy(g.name || undefined) ?? true;
  }

  /** The wait after `guard` lifts before a still-dark Pi may be cycled (see Settle). */
  private settleWindowMs(guard: GuardVerdict["name"]): number {
    return this.cfg.confirmMs + (guard === "fileserver" ? Math.max(this.cfg.reconnectBackoffMs, this.cfg.nfsRetryMs) : this.cfg.reconnectBackoffMs);
  }

  /** A guard lifted: the time any Pi spent unhealthy under it no longer counts. */
  private afresh(now: number, g: ShelfGroup, lifted: GuardVerdict & { windowMs: number }): void {
    let dark = 0;
    for (const rec of this.pis.values()) {
      if (rec.busy || this.group(rec) !== g) continue;
      if (rec.unhealthySinceMs !== undefined) dark++;
      this.restartClocks(rec, now);
    }
    const what = { startup: "start-up grace over", alarm: "fleet alarm cleared", fileserver: "fileserver healthy again", switch: "switch and fileserver reachable again" }[lifted.name];
    const windowMs = lifted.windowMs;
    const waited = windowMs > this.cfg.confirmMs + this.cfg.reconnectBackoffMs ? `the NFS clients' retry after the fileserver's outage ${secs(windowMs - this.cfg.confirmMs)}` : `the agents' reconnect back-off ${secs(this.cfg.reconnectBackoffMs)}`;
    this.deps.audit({
      kind: "recovery",
      subject: "fleet",
      message: `${this.label(g.name, what)}: no Pi${this.groups.size > 1 ? " of this shelf" : ""} is power-cycled before ${secs(windowMs)} from now (confirm ${secs(this.cfg.confirmMs)} + ${waited}); ${dark} Pi(s) still unhealthy must stay so until then`,
      fields: { guard: lifted.name, windowMs: String(windowMs), unhealthy: String(dark), ...(g.name ? { shelf: g.name } : {}) },
    });
    this.emitStatus();
  }

  private restartClocks(rec: PiRecord, now: number): void {
    if (rec.unhealthySinceMs !== undefined) rec.unhealthySinceMs = now;
    if (rec.downSinceMs !== undefined) rec.downSinceMs = now;
  }

  /** Whether a Pi has been unhealthy long enough, and nothing else says wait. */
  private due(rec: PiRecord, h: Health, now: number): boolean {
    if (now < rec.nextAttemptMs) return false;
    // Switched on by this engine and not yet healthy: it is booting, give it its boot time.
    if (rec.bootingSinceMs !== undefined && now - rec.bootingSinceMs < this.cfg.bootTimeoutMs) return false;
    if (h === "down") return rec.downSinceMs !== undefined && now - rec.downSinceMs >= this.cfg.confirmMs;
    if (h === "suspect") return rec.unhealthySinceMs !== undefined && now - rec.unhealthySinceMs >= this.cfg.suspectActMs;
    return false;
  }

  private refusedFor(rec: PiRecord): string | undefined {
    return this.deps.credentials?.refused(rec.ref.name);
  }

  private spawn(rec: PiRecord, job: () => Promise<void>): void {
    rec.busy = true;
    this.emitStatus();
    const p = job()
      .catch((err) => {
        this.deps.logger?.error({ err: (err as Error).message, pi: rec.ref.name }, "remediation failed");
        this.deps.audit({ kind: "recovery", subject: rec.ref.name, message: `remediation stopped: ${(err as Error).message}` });
      })
      .finally(() => {
        rec.busy = false;
        this.jobs.delete(p);
        this.emitStatus();
      });
    this.jobs.add(p);
  }

  private async remediate(rec: PiRecord, health: Health): Promise<void> {
    const name = rec.ref.name;
    rec.attempts++;
    this.deps.setAttempts?.(rec.ref.name, rec.attempts);
    const rebuild = rec.attempts > this.cfg.cyclesBeforeRebuild && !rec.rebuilt && this.deps.fileserver !== undefined;
    if (rec.attempts > this.cfg.cyclesBeforeRebuild + (this.deps.fileserver ? 1 : 0)) {
      return this.quarantine(rec, `still ${health} after ${rec.attempts - 1} attempts${rec.rebuilt ? " including a root filesystem rebuild" : ""}`);
    }
    await this.drain(rec, `${health} for ${Math.round((this.now() - (rec.unhealthySinceMs ?? this.now())) / 1000)} s (attempt ${rec.attempts})`);
    try {
      if (rebuild) {
        rec.rebuilt = true;
        await this.cycle(rec, "rebuild", `rebuilding the root filesystem after ${rec.attempts - 1} failed power-cycles`);
      } else {
        await this.cycle(rec, "cycle", `power-cycling (attempt ${rec.attempts})`);
      }
    } catch (err) {
      if (!(err instanceof Refused)) throw err;
      // A guard closed between the decision and the power-off: nothing was done, this attempt
      // does not count, and the Pi takes traffic again as soon as it reports healthy.
      rec.attempts--;
      if (rebuild) rec.rebuilt = false;
      this.deps.setAttempts?.(name, rec.attempts);
      rec.lateBoot = true;
      this.deps.setState(name, null, `not power-cycled: ${err.message}`);
      this.deps.audit({ kind: "recovery", subject: name, message: `not power-cycled: ${err.message}` });
      return;
    }
    await this.awaitBoot(rec);
  }

  private async drain(rec: PiRecord, reason: string): Promise<void> {
    this.deps.setState(rec.ref.name, "drained", reason);
    this.deps.audit({ kind: "recovery", subject: rec.ref.name, message: `drained: ${reason}` });
    if (!this.deps.lb) return;
    try {
      await this.deps.lb.drain(rec.ref.name);
      this.deps.audit({ kind: "lb", subject: rec.ref.name, message: "drained in the load balancer" });
    } catch (err) {
      // A dead Pi takes no traffic anyway (the LB's own checks fail); carry on and say so.
      this.deps.audit({ kind: "lb", subject: rec.ref.name, message: `drain failed: ${(err as Error).message}` });
    }
  }

  /**
   * Off → (rebuild) → dwell → on, inside one durable intent. Every guard is checked again right
   * before the port goes off: the fleet may have gone dark while this Pi waited.
   */
  private async cycle(rec: PiRecord, mode: "cycle" | "rebuild", reason: string, actor?: string, force = false): Promise<void> {
    const { name, port } = rec.ref;
    const refusal = this.powerRefusal(force, rec) ?? (actor === undefined ? this.credentialsRefusal(rec) : undefined);
    if (refusal) throw new Refused(refusal);
    if (!this.limit.take(this.now())) throw new Refused(this.rateLimitRefusal());
    const intent = this.deps.intents.openIntent(name, port, reason);
    this.ownIntents.add(intent);
    this.deps.setState(name, mode === "rebuild" ? "rebuilding" : "power-cycling", reason);
    this.deps.audit({ kind: "power", subject: name, message: `port ${port} off: ${reason}`, actor, fields: { port: String(port), intent: String(intent) } });
    try {
      await this.powerOf(rec.ref.shelf).set(port, false);
      this.deps.intents.markOff?.(intent, this.now());
      if (mode === "rebuild") {
        this.deps.audit({ kind: "recovery", subject: name, message: "rebuilding the root filesystem from the golden image", actor });
        await this.deps.fileserver!.rebuild(name);
        this.deps.audit({ kind: "recovery", subject: name, message: "root filesystem rebuilt", actor });
      }
      await sleep(this.cfg.dwellMs);
    } finally {
      // Whatever happened above, the port must not stay off: on failure the intent stays open
      // and the periodic sweep keeps trying.
      try {
        await this.powerOf(rec.ref.shelf).set(port, true);
        rec.bootingSinceMs = this.now();
        this.deps.intents.closeIntent(intent, "done");
        this.deps.audit({ kind: "power", subject: name, message: `port ${port} on`, actor, fields: { port: String(port), intent: String(intent) } });
      } finally {
        this.ownIntents.delete(intent);
      }
    }
    this.deps.setState(name, "booting", `power restored, waiting up to ${Math.round(this.cfg.bootTimeoutMs / 1000)} s for a healthy report`);
  }

  /** Takes up a Pi where an interrupted remediation left it: waiting for it to boot. */
  private resumeAfterRestart(rec: PiRecord, reason: string): void {
    rec.attempts = Math.max(rec.attempts, 1);
    this.deps.setAttempts?.(rec.ref.name, rec.attempts);
    this.deps.setState(rec.ref.name, "booting", `${reason}; waiting up to ${Math.round(this.cfg.bootTimeoutMs / 1000)} s for a healthy report`);
    this.spawn(rec, () => this.awaitBoot(rec));
  }

  private async awaitBoot(rec: PiRecord): Promise<void> {
    const name = rec.ref.name;
    const deadline = this.now() + this.cfg.bootTimeoutMs;
    while (!this.stopped && this.now() < deadline) {
      if (this.deps.health(name) === "healthy") return this.backInService(rec, `healthy again after attempt ${rec.attempts}`);
      const refused = this.refusedFor(rec);
      if (refused) {
        // It booted and its agent is turned away for its credentials: not a dead Pi.
        rec.lateBoot = true;
        this.deps.setState(name, null, `its agent is refused for its credentials (${refused})`);
        this.deps.audit({ kind: "recovery", subject: name, message: `remediation stopped: its agent is refused for its credentials (${refused}); no power action until a person acts` });
        return;
      }
      await sleep(Math.min(250, this.cfg.tickMs));
    }
    rec.lateBoot = true;
    const backoff = Math.min(this.cfg.maxBackoffMs, this.cfg.backoffMs * 2 ** (rec.attempts - 1));
    rec.nextAttemptMs = this.now() + backoff;
    this.deps.setState(name, "drained", `not healthy ${Math.round(this.cfg.bootTimeoutMs / 1000)} s after power returned; next attempt in ${Math.round(backoff / 1000)} s`);
    this.deps.audit({ kind: "recovery", subject: name, message: `boot failed (attempt ${rec.attempts}); next attempt in ${Math.round(backoff / 1000)} s` });
  }

  private async backInService(rec: PiRecord, message: string): Promise<void> {
    const name = rec.ref.name;
    if (this.deps.lb) {
      try {
        await this.deps.lb.ready(name);
        this.deps.audit({ kind: "lb", subject: name, message: "ready in the load balancer" });
      } catch (err) {
        this.deps.audit({ kind: "lb", subject: name, message: `ready failed: ${(err as Error).message}` });
      }
    }
    rec.lateBoot = false;
    this.deps.setState(name, null, "recovered");
    this.deps.audit({ kind: "recovery", subject: name, message });
    rec.unhealthySinceMs = undefined;
  }

  private async quarantine(rec: PiRecord, reason: string): Promise<void> {
    rec.quarantined = true;
    this.deps.setState(rec.ref.name, "quarantined", `${reason}: a person decides (pifleet release ${rec.ref.name})`);
    this.deps.audit({ kind: "recovery", subject: rec.ref.name, message: `quarantined: ${reason}` });
    if (this.cfg.quarantinePowerOff) await this.leaveOff(rec);
  }

  /**
   * A Pi that cannot boot keeps asking DHCP, TFTP and NFS for ever, and a board with a fault may
   * be hot: its port is switched off and stays off until a person releases it. No intent is
   * opened, because an intent means "must end up on" and a restarted coordinator would finish it.
   * It is a power act like any other: guarded, rate-limited and logged; when refused, the port is
   * left as it is and the event says why.
   */
  private async leaveOff(rec: PiRecord): Promise<void> {
    const { name, port } = rec.ref;
    const refusal = this.powerRefusal(false, rec) ?? (this.limit.take(this.now()) ? undefined : this.rateLimitRefusal());
    if (refusal) {
      this.deps.audit({ kind: "power", subject: name, message: `port ${port} not switched off after the quarantine: ${refusal}`, fields: { port: String(port) } });
      return;
    }
    try {
      await this.powerOf(rec.ref.shelf).set(port, false);
      this.deps.audit({ kind: "power", subject: name, message: `port ${port} off: quarantined, left off until a person releases it`, fields: { port: String(port) } });
    } catch (err) {
      this.deps.audit({ kind: "power", subject: name, message: `port ${port} could not be switched off after the quarantine: ${(err as Error).message}`, fields: { port: String(port) } });
    }
  }

  /** Operator commands. Each is audited with the operator's name, allowed or refused. */
  async operator(action: string, pi: string, actor: string, reason = "", force = false): Promise<OperatorResult> {
    const rec = this.pis.get(pi);
    const result = await this.runOperator(action, rec, actor, reason, force).catch((err: Error) => ({ ok: false, message: err.message }));
    this.deps.audit({ kind: "operator", subject: pi || "fleet", actor, message: `${action}${reason ? ` (${reason})` : ""}: ${result.ok ? "ok" : "refused"} — ${result.message}` });
    return result;
  }

  private async runOperator(action: string, rec: PiRecord | undefined, actor: string, reason: string, force: boolean): Promise<OperatorResult> {
    if (action === POWER_ON_ALL) return this.startWaves(actor, reason, force);
    if (!rec) return { ok: false, message: "no such Pi in the fleet" };
    const name = rec.ref.name;
    switch (action) {
      case "drain":
        rec.held = true;
        this.deps.setHeld?.(name, true);
        await this.drain(rec, `held by ${actor}${reason ? `: ${reason}` : ""}`);
        return { ok: true, message: `${name} drained and held; recovery leaves it alone until undrain` };
      case "undrain":
        if (rec.busy) return { ok: false, message: `${name} is being remediated` };
        rec.held = false;
        rec.lateBoot = false;
        this.deps.setHeld?.(name, false);
        await this.deps.lb?.ready(name);
        this.deps.setState(name, null, `undrained by ${actor}`);
        return { ok: true, message: `${name} back in service` };
      case "release": {
        const refused = this.refusedFor(rec);
        if (!rec.quarantined && !refused) return { ok: false, message: `${name} is not quarantined` };
        if (refused) this.deps.credentials!.clear(name, actor);
        rec.quarantined = false;
        rec.lateBoot = false;
        rec.attempts = 0;
        this.deps.setAttempts?.(name, 0);
        rec.rebuilt = false;
        rec.nextAttemptMs = 0;
        rec.unhealthySinceMs = undefined;
        rec.downSinceMs = undefined;
        this.deps.setState(name, null, `released by ${actor}`);
        if (this.deps.health(name) === "healthy") await this.deps.lb?.ready(name);
        const note = refused ? ` (its agent was refused for its credentials: ${refused}; refused again, it is held again)` : "";
        return { ok: true, message: `${name} released; recovery will act on it again${note}` };
      }
      case "cycle":
      case "rebuild": {
        if (rec.busy) return { ok: false, message: `${name} is already being remediated` };
        if (action === "rebuild" && !this.deps.fileserver) return { ok: false, message: "no fileserver agent connected" };
        // Refused before the drain, so a refused request leaves the Pi in service as it was.
        const refusal = this.powerRefusal(force, rec) ?? (this.limit.nextFreeMs(this.now()) > this.now() ? this.rateLimitRefusal() : undefined);
        if (refusal) return { ok: false, message: refusal };
        rec.busy = true;
        try {
          await this.drain(rec, `${action} requested by ${actor}`);
          await this.cycle(rec, action, `${action} requested by ${actor}${reason ? `: ${reason}` : ""}`, actor, force);
        } catch (err) {
          rec.busy = false;
          if (err instanceof Refused) this.deps.setState(name, rec.held ? "drained" : null, err.message);
          throw err;
        }
        // Booting is watched in the background; the operator gets the answer once power is back.
        this.spawn(rec, () => this.awaitBoot(rec));
        return { ok: true, message: `${name}: ${action === "rebuild" ? "root rebuilt, " : ""}port ${rec.ref.port} cycled; waiting for it to boot` };
      }
      default:
        return { ok: false, message: `unknown action "${action}"` };
    }
  }

  /**
   * `power-on --all`: every Pi not held, quarantined or being remediated, switched on in waves
   * (boot ROMs give up when a whole shelf asks DHCP/TFTP/NFS at once). Switching a port on harms
   * no Pi, so no guard refuses the run; the power-cycles it makes of silent netbooted Pis go
   * through every guard and the rate limit like any other.
   */
  private startWaves(actor: string, reason: string, force: boolean): OperatorResult {
    if (this.waves && !this.waves.done) {
      const s = this.waves.status();
      return { ok: false, message: `a power-on is already running (wave ${s.wave} of ${s.waves}, requested by ${this.wavesBy})` };
    }
    // A netbooted Pi cannot boot without DHCP, TFTP and NFS: switching it on would only use up its retries.
    if (!force && !(this.deps.fileserver?.healthy() ?? true)) return { ok: false, message: "refused: the fileserver is unhealthy, so no Pi could boot (--force to power on anyway)" };
    const pis = [...this.pis.values()]
      .filter((r) => !r.quarantined && !r.held && !r.busy && this.deps.health(r.ref.name) !== "healthy")
      .map((r) => ({ name: r.ref.name, port: r.ref.port, netboot: r.ref.netboot === true }));
    if (pis.length === 0) return { ok: true, message: "every Pi is healthy, held or quarantined: nothing to power on" };
    this.waves = new PowerOnWaves(pis, { size: this.cfg.waveSize, timeoutMs: this.cfg.waveTimeoutMs, retries: this.cfg.waveRetries, retryBackoffMs: this.cfg.waveRetryBackoffMs, maxRetryBackoffMs: this.cfg.maxBackoffMs });
    this.wavesBy = actor;
    const waves = Math.ceil(pis.length / this.cfg.waveSize);
    const message = `powering on ${pis.length} Pi(s) in ${waves} wave(s) of up to ${this.cfg.waveSize}; follow it in the event log`;
    this.deps.audit({ kind: "power", subject: "fleet", actor, message: `power-on --all${reason ? ` (${reason})` : ""}: ${message}; the next wave starts when the last one reported healthy, or after ${secs(this.cfg.waveTimeoutMs)}` });
    // Started now, not at the next tick, so the operator's answer follows the first wave.
    this.stepWaves(this.now(), new Map([...this.pis.keys()].map((n) => [n, this.deps.health(n)])));
    return { ok: true, message };
  }

  /** The running power-on's progress, or undefined when none runs. */
  wavesStatus(): WaveStatus | undefined {
    return this.waves?.status();
  }

  private stepWaves(now: number, health: Map<string, Health>): void {
    const waves = this.waves!;
    const owned = [...this.pis.keys()].filter((n) => waves.owns(n));
    for (const a of waves.tick(now, (pi) => health.get(pi) === "healthy")) this.waveAction(a, now);
    // Came up in its wave: in service, and judged by recovery like any other Pi from now on.
    for (const n of owned) if (!waves.owns(n) && health.get(n) === "healthy") this.deps.setState(n, null, "healthy after power-on");
    if (waves.done) this.waves = undefined;
  }

  private waveAction(a: WaveAction, now: number): void {
    switch (a.kind) {
      case "wave":
        this.deps.audit({ kind: "power", subject: "fleet", actor: this.wavesBy, message: `power-on wave ${a.wave}: ${a.pis.map((p) => p.name).join(", ")}`, fields: { wave: String(a.wave), pis: String(a.pis.length) } });
        return;
      case "power-on": {
        const rec = this.record(a.pi.name);
        rec.bootingSinceMs = now;
        this.deps.setState(a.pi.name, "booting", `power-on wave ${a.wave}: waiting up to ${secs(this.cfg.waveTimeoutMs)} for a healthy report`);
        this.spawn(rec, async () => {
          await this.powerOf(rec.ref.shelf).set(a.pi.port, true);
          this.deps.audit({ kind: "power", subject: a.pi.name, actor: this.wavesBy, message: `port ${a.pi.port} on: power-on wave ${a.wave}`, fields: { port: String(a.pi.port), wave: String(a.wave) } });
        });
        return;
      }
      case "cycle": {
        const rec = this.record(a.pi.name);
        this.spawn(rec, async () => {
          try {
            await this.cycle(rec, "cycle", a.reason);
          } catch (err) {
            if (!(err instanceof Refused)) throw err;
            // Not done, and not counted: tried again when the guard or the rate limit allows.
            this.waves?.defer(a.pi.name, Math.max(this.now() + this.cfg.tickMs, this.limit.nextFreeMs(this.now())));
            this.deps.audit({ kind: "recovery", subject: a.pi.name, message: `power-on retry deferred: ${err.message}` });
          }
        });
        return;
      }
      case "quarantine": {
        const rec = this.record(a.pi.name);
        this.spawn(rec, () => this.quarantine(rec, a.reason));
        return;
      }
      case "late":
        this.deps.setState(a.pi.name, null, a.reason);
        this.deps.audit({ kind: "recovery", subject: a.pi.name, message: a.reason });
        return;
      case "finished":
        this.deps.audit({ kind: "power", subject: "fleet", actor: this.wavesBy, message: `power-on finished: ${a.summary}` });
        return;
    }
  }

  /** Why no power action may be taken now, or undefined. `force` is an operator's override. */
  private powerRefusal(force: boolean, rec: PiRecord): string | undefined {
    if (force) return undefined;
    const g = this.group(rec);
    if (g.alarm.on) return `refused: fleet alarm (${this.label(g.name, g.alarm.reason)})`;
    // Looked at again now, not as of the last tick: the shelf may have gone dark since.
    const unreachable = this.unreachable(g);
    if (unreachable) return `refused: ${this.label(g.name, unreachable)}`;
    const watched = [...this.pis.values()].filter((r) => this.group(r) === g && !r.quarantined && !r.held && !r.busy && !this.refusedFor(r) && !this.waves?.owns(r.ref.name));
    const alarm = darkShareGuard(watched.map((r) => this.deps.health(r.ref.name)), this.cfg.darkShare);
    if (alarm.holding) return `refused: fleet alarm (${this.label(g.name, alarm.reason)})`;
    if (!this.fileserverHealthy(g)) return `refused: ${this.label(g.name, "the fileserver is unhealthy")}`;
    return undefined;
  }

  private credentialsRefusal(rec: PiRecord): string | undefined {
    const why = this.refusedFor(rec);
    return why && `refused: ${rec.ref.name}'s agent is refused for its credentials (${why}); a person decides (pifleet release ${rec.ref.name})`;
  }

  private rateLimitRefusal(): string {
    return `refused: rate limit of ${this.cfg.powerActionsPerWindow} power actions per ${this.cfg.powerWindowMs / 1000} s reached`;
  }

  private record(name: string): PiRecord {
    const rec = this.pis.get(name);
    if (!rec) throw new Error(`unknown Pi ${name}`);
    return rec;
  }

  private setAlarm(g: ShelfGroup, on: boolean, reason: string): void {
    if (on === g.alarm.on) {
      g.alarm.reason = on ? reason : "";
      return;
    }
    g.alarm = { on, reason };
    const fields = g.name ? { shelf: g.name } : undefined;
    const multi = this.groups.size > 1;
    this.deps.audit({
      kind: "alarm",
      subject: "fleet",
      message: on ? `FLEET ALARM: ${this.label(g.name, reason)}` : `fleet alarm cleared${multi ? ` on shelf ${g.name}` : ""}: recovery resumes`,
      fields,
    });
    this.deps.logger?.[on ? "error" : "info"]({ reason, shelf: g.name }, on ? "fleet alarm" : "fleet alarm cleared");
    this.emitStatus();
  }

  private setPaused(g: ShelfGroup, reason: string): void {
    if (reason === g.paused) return;
    g.paused = reason;
    const multi = this.groups.size > 1;
    const where = multi ? ` on shelf ${g.name}` : "";
    this.deps.audit({
      kind: "recovery",
      subject: "fleet",
      message: reason ? `recovery paused${where}: ${reason}${multi ? " (other shelves carry on)" : ""}` : `recovery resumed${where}`,
      fields: g.name ? { shelf: g.name } : undefined,
    });
    this.emitStatus();
  }

  private emitStatus(): void {
    this.emit("status", this.status());
  }
}

/** The operator action that powers the whole fleet on in waves. */
export const POWER_ON_ALL = "power-on-all";

function secs(ms: number): string {
  return `${+(ms / 1000).toFixed(1)} s`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
