import type { Logger } from "@pifleet/core";
import { FleetClient, piStateName, v1 } from "@pifleet/proto";
import { FeedMirror } from "@pifleet/coordinator";

/**
 * `pifleet install --wait-report`: after the unit is active, a watcher on the coordinator's feed
 * waits until the installed agent is seen reporting. "Reporting" is read from the coordinator's
 * own status, with durations only (the target's, this machine's and the coordinator's clocks
 * need not agree): a report counts when the coordinator received it after `since`, a local time:
 * when `systemctl restart` returned, so the old process, stopped before that, cannot be mistaken
 * for the new one; when this run restarted nothing, when the wait began, so a hung agent whose
 * connection is still open is not taken for a reporting one (the next report, one interval away,
 * answers).
 */

export type WaitRole = "pi" | "fileserver";

export interface ReportWaitOptions {
  urls: string[];
  token: string;
  /** The token's name: the watcher's identity. */
  watcher: string;
  ca?: Buffer;
  role: WaitRole;
  /** The agent's enrolled name: the config's `identity`. */
  agent: string;
  timeoutMs: number;
  logger?: Logger;
}

/** What the coordinator says about the agent, from one look at the feed. */
export interface Sighting {
  reported: boolean;
  /** One line, starting with the agent's name: "pi01: never connected", "pi01: healthy", ... */
  said: string;
}

export interface FeedView {
  /** The coordinator's clock at the last frame, and this machine's when it arrived. */
  coordinatorMs: number;
  localMs: number;
  pis: ReadonlyMap<string, v1.PiStatus>;
  /** Every Pi of the snapshot arrived (a large fleet's snapshot comes in several frames). */
  complete: boolean;
  fleetStatus?: v1.FleetStatus;
  events: readonly v1.FleetEvent[];
}

export interface Freshness {
  /** Local time after which a report counts, and what it was ("the restart"). */
  since: number;
  sinceWhat: string;
  now: number;
}

/** How long ago (ms) the coordinator saw `atMs` (its clock), measured now on this machine. */
function ageOf(view: FeedView, atMs: number, now: number): number {
  return view.coordinatorMs + (now - view.localMs) - atMs;
}

function counts(view: FeedView, atMs: number, f: Freshness): boolean {
  if (atMs <= 0) return false;
  const age = ageOf(view, atMs, f.now);
  return age <= f.now - f.since;
}

/** A duration as the install's lines print it: "1.4 s". */
export const seconds = (ms: number) => `${(Math.max(0, ms) / 1000).toFixed(1)} s`;

/** The agent's latest refusal in the feed's events (audit "auth" events name the agent as subject). */
function lastRefusal(view: FeedView, agent: string): v1.FleetEvent | undefined {
  for (let i = view.events.length - 1; i >= 0; i--) {
    const e = view.events[i]!;
    if (e.kind === "auth" && e.subject === agent && e.message.startsWith("refused")) return e;
  }
  return undefined;
}

function refusalLine(view: FeedView, agent: string, now: number): string {
  const e = lastRefusal(view, agent);
  return e ? `; last refusal ${seconds(ageOf(view, Number(e.timeMs), now))} ago: ${e.message}` : "";
}

export function piSighting(view: FeedView, agent: string, f: Freshness): Sighting {
  const s = view.pis.get(agent);
  if (!s) {
    return {
      reported: false,
      said: view.complete ? `${agent}: not a Pi of the coordinator's fleet (${view.pis.size} Pis: check the config's identity and the fleet file)` : `${agent}: the coordinator's snapshot has not arrived`,
    };
  }
  const state = piStateName(s.state);
  const lastSeen = Number(s.lastSeenMs);
  if (s.state === v1.PiState.PI_STATE_CREDENTIALS_REFUSED && !s.connected) return { reported: false, said: `${agent}: refused: credentials — ${s.reason}` };
  if (s.connected && counts(view, lastSeen, f)) return { reported: true, said: `${agent}: ${state}${s.reason ? ` (${s.reason})` : ""}` };
  if (lastSeen === 0) return { reported: false, said: `${agent}: ${s.connected ? "connected, but has sent no report" : "never connected"}${refusalLine(view, agent, f.now)}` };
  const age = seconds(ageOf(view, lastSeen, f.now));
  return {
    reported: false,
    said: `${agent}: ${s.connected ? `connected, but no report since ${f.sinceWhat}` : "not connected"}; last report ${age} ago; shown ${state}${s.reason ? ` (${s.reason})` : ""}${refusalLine(view, agent, f.now)}`,
  };
}

export function fileserverSighting(view: FeedView, agent: string, f: Freshness): Sighting {
  const fs = view.fleetStatus;
  if (!fs) return { reported: false, said: `${agent}: the coordinator's snapshot has not arrived` };
  if (fs.fileserver !== agent) {
    return { reported: false, said: `${agent}: not the coordinator's fileserver (${fs.fileserver ? `it expects "${fs.fileserver}"` : "its fleet names none, or it predates FleetStatus.fileserver"})` };
  }
  const lastSeen = Number(fs.fileserverLastSeenMs);
  const health = `${fs.fileserverHealthy ? "healthy" : "unhealthy"}${fs.fileserverReason ? ` (${fs.fileserverReason})` : ""}`;
  if (counts(view, lastSeen, f)) return { reported: true, said: `${agent}: ${health}` };
  if (lastSeen === 0) return { reported: false, said: `${agent}: never connected${refusalLine(view, agent, f.now)}` };
  return { reported: false, said: `${agent}: no report since ${f.sinceWhat}; last report ${seconds(ageOf(view, lastSeen, f.now))} ago; ${health}${refusalLine(view, agent, f.now)}` };
}

/** The wait ended without a report: at the timeout, or at once when the watcher's token is refused. */
export class ReportTimeout extends Error {
  override name = "ReportTimeout";
  constructor(
    message: string,
    readonly timedOut = true,
  ) {
    super(message);
  }
}

/** The watcher: opened early (while the install runs), asked once the unit is active. */
export class ReportWatch {
  private readonly client: FleetClient;
  private readonly mirror = new FeedMirror();
  private coordinatorMs = 0;
  private localMs = 0;
  private refused: string | undefined;
  private lastDisconnect: string | undefined;
  private connected = false;
  private readonly check = new Set<() => void>();

  constructor(readonly o: ReportWaitOptions) {
    this.client = new FleetClient({
      url: o.urls[0]!,
      urls: o.urls,
      role: v1.Role.ROLE_WATCHER,
      identity: o.watcher,
      token: o.token,
      ca: o.ca,
      maxFrameBytes: 64 * 1024 * 1024,
      initialBackoffMs: 200,
      maxBackoffMs: 2000,
      agentVersion: "pifleet-install",
      logger: o.logger,
    });
    this.client.on("message", (env) => {
      if (!this.mirror.apply(env)) return;
      const t = env.body === "snapshot" ? env.snapshot?.timeMs : env.delta?.timeMs;
      this.coordinatorMs = Number(t ?? 0);
      this.localMs = Date.now();
      for (const c of this.check) c();
    });
    this.client.on("ready", () => (this.connected = true));
    this.client.on("disconnected", (why) => {
      this.connected = false;
      this.lastDisconnect = why;
    });
    this.client.on("refused", (e) => {
      // A token the coordinator refuses will not do better on a retry.
      if (e.code === "unauthenticated" || e.code === "forbidden") {
        this.refused = `the coordinator refused the watcher token ${o.watcher}: ${e.code} (${e.reason}): ${e.message}`;
        for (const c of this.check) c();
      }
    });
  }

  get url(): string {
    return this.client.url;
  }

  start(): void {
    this.client.start();
  }

  stop(): Promise<void> {
    return this.client.stop();
  }

  /** What the coordinator says now. */
  sighting(f: Omit<Freshness, "now">): Sighting {
    if (this.localMs === 0) {
      return { reported: false, said: `${this.o.agent}: unknown — no feed from the coordinator (${this.o.urls.join(", ")}${this.lastDisconnect ? `: ${this.lastDisconnect}` : this.connected ? "" : ": not connected"})` };
    }
    const view: FeedView = { coordinatorMs: this.coordinatorMs, localMs: this.localMs, pis: this.mirror.pis, complete: this.mirror.complete, fleetStatus: this.mirror.fleetStatus, events: this.mirror.events };
    const now = Date.now();
    return (this.o.role === "pi" ? piSighting : fileserverSighting)(view, this.o.agent, { ...f, now });
  }

  /**
   * Resolves with the first sighting that counts as a report and when it arrived; rejects with
   * ReportTimeout (what the coordinator last said) after `timeoutMs` from now, or at once when the
   * watcher's own token is refused.
   */
  until(since: number, sinceWhat: string): Promise<{ sighting: Sighting; at: number }> {
    const f = { since, sinceWhat };
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        clearInterval(tick);
        this.check.delete(look);
      };
      const look = () => {
        if (this.refused) {
          done();
          return reject(new ReportTimeout(this.refused, false));
        }
        const s = this.sighting(f);
        if (s.reported) {
          done();
          resolve({ sighting: s, at: Date.now() });
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new ReportTimeout(this.sighting(f).said));
      }, this.o.timeoutMs);
      // Reports arrive as frames; a quiet feed is looked at now and then all the same.
      const tick = setInterval(look, 500);
      this.check.add(look);
      look();
    });
  }
}
