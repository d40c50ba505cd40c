import type { ChildProcess } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import type { NetNs } from "../harness/index.js";

export interface WatchedState {
  at: number;
  pi: string;
  state: string;
  reason: string;
  connected: boolean;
}

export interface WatchedEvent {
  id: number;
  timeMs: number;
  kind: string;
  subject: string;
  message: string;
  actor: string;
  fields: Record<string, string>;
}

/**
 * `pifleet watch --json` run inside the lab's network namespace, as an operator would run it
 * beside the shelf: every line it prints is kept (and logged), so the test reads the fleet the
 * way a script of a user's would.
 */
export class NsWatch {
  readonly states: WatchedState[] = [];
  readonly events: WatchedEvent[] = [];
  readonly current = new Map<string, WatchedState>();
  snapshots = 0;
  /** The last fleet status the feed sent (snapshot or delta), as `watch --json` prints it. */
  fleetStatus?: Record<string, unknown>;
  private readonly child: ChildProcess;
  private readonly log: WriteStream;
  private waiters = new Set<() => void>();
  private exited?: string;

  constructor(ns: NetNs, argv: string[], logFile: string) {
    this.log = createWriteStream(logFile);
    this.child = ns.spawn(argv, { stdio: ["ignore", "pipe", "pipe"] });
    let partial = "";
    this.child.stdout!.setEncoding("utf8");
    this.child.stdout!.on("data", (chunk: string) => {
      partial += chunk;
      const lines = partial.split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) this.onLine(line);
    });
    this.child.stderr!.on("data", (d: Buffer) => this.log.write(`[stderr] ${d.toString()}`));
    this.child.on("exit", (code, signal) => {
      this.exited = signal ? `killed by ${signal}` : `exit ${code}`;
      this.notify();
    });
  }

  private onLine(line: string): void {
    this.log.write(`${line}\n`);
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    const at = Date.now();
    const pis = (o.pis as Record<string, unknown>[] | undefined) ?? [];
    if (o.type === "snapshot") this.snapshots++;
    if (o.fleetStatus) this.fleetStatus = o.fleetStatus as Record<string, unknown>;
    for (const p of pis) {
      const s = { at, pi: String(p.name), state: String(p.state), reason: String(p.reason ?? ""), connected: Boolean(p.connected) };
      this.states.push(s);
      this.current.set(s.pi, s);
    }
    const events = o.type === "event" ? [o] : o.type === "snapshot" ? ((o.events as Record<string, unknown>[]) ?? []) : [];
    for (const e of events) {
      const id = Number(e.id);
      if (this.events.some((x) => x.id === id)) continue;
      this.events.push({ id, timeMs: Number(e.timeMs), kind: String(e.kind), subject: String(e.subject), message: String(e.message), actor: String(e.actor ?? ""), fields: (e.fields as Record<string, string> | undefined) ?? {} });
    }
    this.notify();
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  state(pi: string): string | undefined {
    return this.current.get(pi)?.state;
  }

  /** First time at or after `since` that `pi` was seen in `state`. */
  firstAt(pi: string, state: string, since: number): number | undefined {
    return this.states.find((s) => s.pi === pi && s.state === state && s.at >= since)?.at;
  }

  eventsFor(subject: string, sinceMs: number, kinds?: string[]): WatchedEvent[] {
    return this.events.filter((e) => e.subject === subject && e.timeMs >= sinceMs && (!kinds || kinds.includes(e.kind))).sort((a, b) => a.id - b.id);
  }

  /** The states `pi` went through since `since`, repeats folded. */
  trail(pi: string, since: number): string[] {
    const out: string[] = [];
    for (const s of this.states) if (s.pi === pi && s.at >= since && out[out.length - 1] !== s.state) out.push(s.state);
    return out;
  }

  until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const test = () => {
        if (check()) {
          clearTimeout(timer);
          this.waiters.delete(test);
          resolve();
        } else if (this.exited) {
          clearTimeout(timer);
          this.waiters.delete(test);
          reject(new Error(`pifleet watch ${this.exited} while waiting for ${what}`));
        }
      };
      const timer = setTimeout(() => {
        this.waiters.delete(test);
        const now = [...this.current.values()].map((s) => `${s.pi}=${s.state}${s.reason ? ` (${s.reason})` : ""}`).join(", ");
        reject(new Error(`not within ${timeoutMs / 1000} s: ${what}; the feed says ${now || "nothing yet"}`));
      }, timeoutMs);
      this.waiters.add(test);
      test();
    });
  }

  stop(): void {
    this.child.kill("SIGTERM");
    this.log.end();
  }
}
