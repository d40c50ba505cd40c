import { FeedMirror, displayStateName } from "@pifleet/coordinator";
import { FleetClient, v1 } from "@pifleet/proto";

export interface SeenState {
  at: number;
  pi: string;
  state: string;
  reason: string;
}

export interface SeenFleetStatus {
  at: number;
  alarm: boolean;
  alarmReason: string;
  fileserverHealthy: boolean;
  activeRemediations: number;
}

/**
 * A watcher on the coordinator's feed (FleetClient as ROLE_WATCHER + FeedMirror) that keeps
 * everything it was told, with receive times: every Pi status, every fleet status and every
 * event by id (a reconnect's snapshot repeats recent events; they are kept once).
 */
export class FeedWatch {
  readonly client: FleetClient;
  readonly mirror = new FeedMirror(10_000);
  readonly states: SeenState[] = [];
  readonly fleet: SeenFleetStatus[] = [];
  private readonly eventsById = new Map<number, v1.FleetEvent>();

  constructor(url: string, token: string) {
    const name = token.slice(0, token.indexOf("."));
    this.client = new FleetClient({ url, role: v1.Role.ROLE_WATCHER, identity: name, token, initialBackoffMs: 50, maxBackoffMs: 300, maxFrameBytes: 64 * 1024 * 1024 });
    this.client.on("message", (env) => {
      const u = this.mirror.apply(env);
      if (!u) return;
      const at = Date.now();
      for (const s of u.pis) this.states.push({ at, pi: s.name, state: displayStateName(s.state), reason: s.reason });
      if (u.fleetStatus) {
        const f = u.fleetStatus;
        this.fleet.push({ at, alarm: f.alarm, alarmReason: f.alarmReason, fileserverHealthy: f.fileserverHealthy, activeRemediations: f.activeRemediations });
      }
      for (const e of u.events) this.eventsById.set(Number(e.id), e);
    });
    this.client.start();
  }

  /** Every event seen, in the event log's order (by id). */
  get events(): v1.FleetEvent[] {
    return [...this.eventsById.values()].sort((a, b) => Number(a.id) - Number(b.id));
  }

  /** Events about one subject at or after a time, optionally of some kinds. */
  eventsFor(subject: string, sinceMs = 0, kinds?: string[]): v1.FleetEvent[] {
    return this.events.filter((e) => e.subject === subject && Number(e.timeMs) >= sinceMs && (!kinds || kinds.includes(e.kind)));
  }

  state(pi: string): string | undefined {
    const s = this.mirror.pis.get(pi);
    return s ? displayStateName(s.state) : undefined;
  }

  /** The displayed states one Pi went through since `sinceMs`, consecutive repeats folded. */
  stateTrail(pi: string, sinceMs: number): string[] {
    const out: string[] = [];
    for (const s of this.states) if (s.pi === pi && s.at >= sinceMs && out.at(-1) !== s.state) out.push(s.state);
    return out;
  }

  until<T>(what: string, probe: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
    return waitFor(what, probe, timeoutMs, () => this.describe());
  }

  describe(): string {
    const pis = [...this.mirror.pis.values()].map((p) => `${p.name}=${displayStateName(p.state)}`).join(" ");
    const tail = this.events.slice(-15).map((e) => `  #${e.id} ${e.kind} ${e.subject} [${e.actor}]: ${e.message}`).join("\n");
    return `feed: ${pis}\nlast events:\n${tail}`;
  }

  stop(): Promise<void> {
    return this.client.stop();
  }
}

/** Polls `probe` until it returns something truthy; on timeout the error says what was awaited and, if given, the scene. */
export async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 10_000, scene?: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${scene ? `\n${scene()}` : ""}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** True when `want` appears in `seq` in this order (other items may come between). */
export function inOrder<T>(seq: T[], want: Array<(x: T) => boolean>): boolean {
  let i = 0;
  for (const x of seq) if (i < want.length && want[i](x)) i++;
  return i === want.length;
}
