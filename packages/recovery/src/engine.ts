import { EventEmitter } from "node:events";
import type { Logger } from "@pifleet/core";
import { judgeDarkShare } from "./dark-share.js";
import { SlidingWindowLimit } from "./rate-limit.js";
import {
  DEFAULT_RECOVERY_CONFIG,
  type AuditEvent,
  type FileserverPort,
  type Health,
  type IntentStore,
  type LoadBalancerPort,
  type PiRef,
  type PowerPort,
  type RecoveryConfig,
  type RecoveryState,
} from "./types.js";

export interface RecoveryDeps {
  pis: PiRef[];
  power: PowerPort;
  lb?: LoadBalancerPort;
  fileserver?: FileserverPort;
  intents: IntentStore;
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
  unhealthySinceMs: number | undefined;
  healthySinceMs: number | undefined;
  held: boolean;
  quarantined: boolean;
  /** Left drained because it did not boot in time: it goes back into service whenever it turns healthy. */
  lateBoot: boolean;
}

export interface RecoveryStatus {
  alarm: boolean;
  alarmReason: string;
  active: number;
  paused: string;
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
 * when a large share of the fleet goes dark at once, back-off per Pi, a fleet-wide rate limit,
 * and crash-safe intents around every power-off.
 */
export class RecoveryEngine extends EventEmitter<{ status: [RecoveryStatus] }> {
  private readonly cfg: RecoveryConfig;
  private readonly pis = new Map<string, PiRecord>();
  private readonly limit: SlidingWindowLimit;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private startedMs = 0;
  private alarm = { on: false, reason: "" };
  private paused = "";
  private stopped = false;
  private readonly jobs = new Set<Promise<void>>();
  /** Intents held by a running job; any other open intent is a port someone must switch back on. */
  private readonly ownIntents = new Set<number>();
  private lastIntentSweepMs = 0;

  constructor(private readonly deps: RecoveryDeps) {
    super();
    this.cfg = { ...DEFAULT_RECOVERY_CONFIG, ...deps.config };
    this.now = deps.now ?? Date.now;
    this.limit = new SlidingWindowLimit(this.cfg.powerActionsPerWindow, this.cfg.powerWindowMs);
    for (const ref of deps.pis) {
      this.pis.set(ref.name, {
        ref,
        busy: false,
        attempts: 0,
        rebuilt: false,
        nextAttemptMs: 0,
        unhealthySinceMs: undefined,
        healthySinceMs: undefined,
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
    this.timer = setInterval(() => this.tick(), this.cfg.tickMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await Promise.allSettled([...this.jobs]);
  }

  status(): RecoveryStatus {
    return { alarm: this.alarm.on, alarmReason: this.alarm.reason, active: [...this.pis.values()].filter((p) => p.busy).length, paused: this.paused };
  }

  /** Ports left off by a coordinator that died mid-cycle are switched back on. */
  async recoverIntents(): Promise<void> {
    for (const intent of this.deps.intents.openIntents()) {
      if (this.ownIntents.has(intent.id)) continue;
      try {
        await this.deps.power.set(intent.port, true);
        this.deps.intents.closeIntent(intent.id, "recovered", "port switched on after a coordinator restart");
        this.deps.audit({
          kind: "power",
          subject: intent.pi,
          message: `port ${intent.port} switched back on: a power action (${intent.reason}) was interrupted by a coordinator restart`,
          fields: { port: String(intent.port), intent: String(intent.id) },
        });
        // The Pi now boots: give it its boot window rather than judging it dead and cycling it again.
        const rec = this.pis.get(intent.pi);
        if (rec && !rec.busy && !rec.quarantined) this.resumeAfterRestart(rec, "power restored after an interrupted power action");
      } catch (err) {
        // Stays open: the next start tries again. Loud, because a Pi is dark until then.
        this.deps.logger?.error({ err: (err as Error).message, pi: intent.pi, port: intent.port }, "cannot restore power");
        this.deps.audit({ kind: "power", subject: intent.pi, message: `port ${intent.port} could not be switched back on: ${(err as Error).message}` });
      }
    }
  }

  tick(): void {
    if (this.stopped) return;
    const now = this.now();
    if (now - this.lastIntentSweepMs >= 15_000) {
      // A port whose switch-on failed mid-job is retried here until the switch answers.
      this.lastIntentSweepMs = now;
      void this.recoverIntents();
    }
    const health = new Map<string, Health>();
    for (const [name, rec] of this.pis) {
      const h = this.deps.health(name);
      health.set(name, h);
      if (h === "healthy") {
        rec.unhealthySinceMs = undefined;
        rec.healthySinceMs ??= now;
        if (!rec.busy && rec.attempts > 0 && now - rec.healthySinceMs >= this.cfg.stableMs) {
          rec.attempts = 0;
          this.deps.setAttempts?.(name, 0);
          rec.rebuilt = false;
        }
      } else {
        rec.healthySinceMs = undefined;
        if (h === "down" || h === "suspect") rec.unhealthySinceMs ??= now;
      }
    }
    // Agents are still reconnecting after a start: silence then says nothing about the Pis.
    if (now - this.startedMs < this.cfg.startupGraceMs) return;
    const considered = [...this.pis.values()].filter((r) => !r.quarantined && !r.held && !r.busy);
    for (const rec of considered) {
      // Not a power action, so no guard applies: a Pi that booted late takes traffic again.
      if (rec.lateBoot && health.get(rec.ref.name) === "healthy") this.spawn(rec, () => this.backInService(rec, `healthy again after attempt ${rec.attempts} (booted after the ${Math.round(this.cfg.bootTimeoutMs / 1000)} s boot timeout)`));
    }
    const verdict = judgeDarkShare(considered.map((r) => health.get(r.ref.name)!), this.cfg.darkShare);
    this.setAlarm(verdict.alarm, verdict.reason);
    if (this.alarm.on) return;
    const fsOk = this.deps.fileserver?.healthy() ?? true;
    this.setPaused(fsOk ? "" : "the fileserver is unhealthy: a Pi could not boot, no power action is taken");
    if (!fsOk) return;

    let active = [...this.pis.values()].filter((p) => p.busy).length;
    for (const rec of considered) {
      if (active >= this.cfg.maxConcurrent) break;
      const h = health.get(rec.ref.name)!;
      if (rec.unhealthySinceMs === undefined || now < rec.nextAttemptMs) continue;
      const waited = now - rec.unhealthySinceMs;
      if (!(h === "down" && waited >= this.cfg.confirmMs) && !(h === "suspect" && waited >= this.cfg.suspectActMs)) continue;
      if (this.limit.nextFreeMs(now) > now) break;
      active++;
      this.spawn(rec, () => this.remediate(rec, h));
    }
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
    if (rebuild) {
      rec.rebuilt = true;
      await this.cycle(rec, "rebuild", `rebuilding the root filesystem after ${rec.attempts - 1} failed power-cycles`);
    } else {
      await this.cycle(rec, "cycle", `power-cycling (attempt ${rec.attempts})`);
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
    const refusal = this.powerRefusal(force);
    if (refusal) throw new Refused(refusal);
    if (!this.limit.take(this.now())) throw new Refused(this.rateLimitRefusal());
    const intent = this.deps.intents.openIntent(name, port, reason);
    this.ownIntents.add(intent);
    this.deps.setState(name, mode === "rebuild" ? "rebuilding" : "power-cycling", reason);
    this.deps.audit({ kind: "power", subject: name, message: `port ${port} off: ${reason}`, actor, fields: { port: String(port), intent: String(intent) } });
    try {
      await this.deps.power.set(port, false);
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
        await this.deps.power.set(port, true);
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

  private quarantine(rec: PiRecord, reason: string): void {
    rec.quarantined = true;
    this.deps.setState(rec.ref.name, "quarantined", `${reason}: a person decides (pifleet release ${rec.ref.name})`);
    this.deps.audit({ kind: "recovery", subject: rec.ref.name, message: `quarantined: ${reason}` });
  }

  /** Operator commands. Each is audited with the operator's name, allowed or refused. */
  async operator(action: string, pi: string, actor: string, reason = "", force = false): Promise<OperatorResult> {
    const rec = this.pis.get(pi);
    const result = await this.runOperator(action, rec, actor, reason, force).catch((err: Error) => ({ ok: false, message: err.message }));
    this.deps.audit({ kind: "operator", subject: pi, actor, message: `${action}${reason ? ` (${reason})` : ""}: ${result.ok ? "ok" : "refused"} — ${result.message}` });
    return result;
  }

  private async runOperator(action: string, rec: PiRecord | undefined, actor: string, reason: string, force: boolean): Promise<OperatorResult> {
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
      case "release":
        if (!rec.quarantined) return { ok: false, message: `${name} is not quarantined` };
        rec.quarantined = false;
        rec.lateBoot = false;
        rec.attempts = 0;
        this.deps.setAttempts?.(name, 0);
        rec.rebuilt = false;
        rec.nextAttemptMs = 0;
        rec.unhealthySinceMs = undefined;
        this.deps.setState(name, null, `released by ${actor}`);
        if (this.deps.health(name) === "healthy") await this.deps.lb?.ready(name);
        return { ok: true, message: `${name} released; recovery will act on it again` };
      case "cycle":
      case "rebuild": {
        if (rec.busy) return { ok: false, message: `${name} is already being remediated` };
        if (action === "rebuild" && !this.deps.fileserver) return { ok: false, message: "no fileserver agent connected" };
        // Refused before the drain, so a refused request leaves the Pi in service as it was.
        const refusal = this.powerRefusal(force) ?? (this.limit.nextFreeMs(this.now()) > this.now() ? this.rateLimitRefusal() : undefined);
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

  /** Why no power action may be taken now, or undefined. `force` is an operator's override. */
  private powerRefusal(force: boolean): string | undefined {
    if (force) return undefined;
    if (this.alarm.on) return `refused: fleet alarm (${this.alarm.reason})`;
    if (!(this.deps.fileserver?.healthy() ?? true)) return "refused: the fileserver is unhealthy";
    return undefined;
  }

  private rateLimitRefusal(): string {
    return `refused: rate limit of ${this.cfg.powerActionsPerWindow} power actions per ${this.cfg.powerWindowMs / 1000} s reached`;
  }

  private record(name: string): PiRecord {
    const rec = this.pis.get(name);
    if (!rec) throw new Error(`unknown Pi ${name}`);
    return rec;
  }

  private setAlarm(on: boolean, reason: string): void {
    if (on === this.alarm.on) {
      this.alarm.reason = on ? reason : "";
      return;
    }
    this.alarm = { on, reason };
    this.deps.audit({ kind: "alarm", subject: "fleet", message: on ? `FLEET ALARM: ${reason}` : "fleet alarm cleared: recovery resumes" });
    this.deps.logger?.[on ? "error" : "info"]({ reason }, on ? "fleet alarm" : "fleet alarm cleared");
    this.emitStatus();
  }

  private setPaused(reason: string): void {
    if (reason === this.paused) return;
    this.paused = reason;
    this.deps.audit({ kind: "recovery", subject: "fleet", message: reason ? `recovery paused: ${reason}` : "recovery resumed" });
    this.emitStatus();
  }

  private emitStatus(): void {
    this.emit("status", this.status());
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
