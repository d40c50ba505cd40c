import { judgeDarkShare } from "./dark-share.js";
import type { Health } from "./types.js";

/** What one guard says now: holding means no automatic power action. */
export interface GuardVerdict {
  name: "startup" | "alarm" | "fileserver" | "switch";
  holding: boolean;
  reason: string;
}

/** Agents are still reconnecting after a start: silence then says nothing about the Pis. */
export function startupGuard(now: number, startedMs: number, graceMs: number): GuardVerdict {
  const holding = now - startedMs < graceMs;
  return { name: "startup", holding, reason: holding ? `start-up grace (${Math.round(graceMs / 1000)} s): agents are still reconnecting` : "" };
}

/** Many Pis dark at once is a network or coordinator fault, not many dead Pis. */
export function darkShareGuard(health: Health[], darkShare: number): GuardVerdict {
  const v = judgeDarkShare(health, darkShare);
  return { name: "alarm", holding: v.alarm, reason: v.reason };
}

/** A Pi could not boot from a fileserver that does not serve its root. */
export function fileserverGuard(healthy: boolean): GuardVerdict {
  return { name: "fileserver", holding: !healthy, reason: healthy ? "" : "the fileserver is unhealthy: a Pi could not boot, no power action is taken" };
}

/** A shelf whose switch or fileserver does not answer: its Pis cannot be judged or cycled. */
export function reachGuard(unreachable: string | undefined): GuardVerdict {
  return { name: "switch", holding: unreachable !== undefined, reason: unreachable ?? "" };
}

export interface SettleState {
  /** A guard held at the last evaluation. */
  holding: boolean;
  /** No automatic power action before this (a guard lifted recently). */
  untilMs: number;
  /** Which guard lifted last, for the audit message. */
  lifted: string;
}

/**
 * The window after a guard lifts. While a guard holds, a dark Pi's silence is not its own fault
 * (the network, the fileserver or the coordinator kept it from reporting), so the time it spent
 * dark proves nothing. When the last guard lifts, agents start reconnecting — over their back-off
 * of up to `reconnectBackoffMs` — and a Pi still dark must be seen unhealthy afresh, for
 * `confirmMs` plus that back-off, before any power action. After the fileserver was down, a Pi's
 * NFS client may take longer than that to retry its root (`nfsRetryMs`): the window is the
 * longest of every guard that held.
 *
 * Kept per shelf (the group of Pis that share their guards): `step` is called once per tick with
 * that shelf's verdicts.
 */
export class Settle {
  private s: SettleState = { holding: false, untilMs: 0, lifted: "" };
  /** Every guard that held since the last lift: the window is the longest of theirs. */
  private held = new Set<GuardVerdict["name"]>();

  /** `windowMs(name)`: the wait after guard `name` lifts. */
  constructor(private readonly windowMs: (name: GuardVerdict["name"]) => number) {}

  get state(): Readonly<SettleState> {
    return this.s;
  }

  /**
   * Feeds this tick's verdicts. Returns the guard that just lifted (the group's Pis must restart
   * their unhealthy clocks) with the window now running, or undefined.
   */
  step(now: number, verdicts: readonly GuardVerdict[]): (GuardVerdict & { windowMs: number }) | undefined {
    const holding = verdicts.filter((v) => v.holding);
    if (holding.length) {
      this.s.holding = true;
      this.s.lifted = holding[0].name;
      for (const v of holding) this.held.add(v.name);
      return undefined;
    }
    if (!this.s.holding) return undefined;
    const windowMs = Math.max(...[...this.held].map((n) => this.windowMs(n)), this.windowMs(this.s.lifted as GuardVerdict["name"]));
    this.held.clear();
    this.s.holding = false;
    this.s.untilMs = now + windowMs;
    return { name: this.s.lifted as GuardVerdict["name"], holding: false, reason: "", windowMs };
  }

  /** True while automatic power actions must wait: a guard holds, or one lifted too recently. */
  blocks(now: number): boolean {
    return this.s.holding || now < this.s.untilMs;
  }

  /** Starts as if `name` had been holding (the start-up grace holds from the first tick). */
  hold(name: GuardVerdict["name"]): void {
    this.s.holding = true;
    this.s.lifted = name;
    this.held.add(name);
  }
}
