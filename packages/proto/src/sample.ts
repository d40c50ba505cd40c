import { v1 } from "./codec.js";

/** Apache's scoreboard characters, in the order of ApacheSample.slots. */
export const SCOREBOARD_STATES = "_SRWKDCLGI.";
const STATE_INDEX: Record<string, number> = Object.fromEntries([...SCOREBOARD_STATES].map((c, i) => [c, i]));

/** Slots per scoreboard state (ApacheSample.slots) from mod_status's Scoreboard string. */
export function scoreboardCounts(scoreboard: string): number[] {
  const counts = new Array<number>(SCOREBOARD_STATES.length).fill(0);
  for (let i = 0; i < scoreboard.length; i++) {
    const k = STATE_INDEX[scoreboard[i]];
    if (k !== undefined) counts[k]++;
  }
  // Trailing zeros cost a byte each on the wire and say nothing.
  let n = counts.length;
  while (n > 0 && counts[n - 1] === 0) n--;
  counts.length = n;
  return counts;
}

/** The six interface counters PiSample.net carries per interface, in its order. */
const NET_FIELDS = ["rxBytes", "txBytes", "rxPackets", "txPackets", "rxErrors", "txErrors"] as const;
export const NET_COUNTERS = NET_FIELDS.length;

export interface SampleResult {
  sample: v1.PiSample.$Properties;
  /** The facts changed with this reading (and must reach the coordinator before the sample). */
  factsChanged: boolean;
}

/**
 * Turns full readings (a PiReport's absolute figures) into PiSamples: integers, counter increases
 * instead of totals, and what never changes moved to AgentFacts. The Pi agent uses it for every
 * report; the coordinator uses it for agents that still send PiReport. It keeps the previous
 * counters, so each reading must go through the same encoder in order.
 */
export class SampleEncoder {
  private current: v1.AgentFacts.$Properties;
  private prevNet: Map<string, number[]> | undefined;
  private prevNetAt = 0;
  private prevAccesses: number | undefined;

  constructor(base: { agentVersion?: string; nodeVersion?: string; arch?: string } = {}) {
    this.current = { memTotalKib: 0, interfaces: [], scoreboardSlots: 0, agentVersion: base.agentVersion ?? "", nodeVersion: base.nodeVersion ?? "", arch: base.arch ?? "" };
  }

  /** The facts the samples so far are to be read with. */
  get facts(): v1.AgentFacts.$Properties {
    return this.current;
  }

  encode(r: v1.PiReport.$Properties): SampleResult {
    let changed = false;
    // Facts already handed out (sent, queued) are never modified: a change makes new ones.
    const edit = (): v1.AgentFacts.$Properties => {
      if (!changed) {
        this.current = { ...this.current, interfaces: [...(this.current.interfaces ?? [])] };
        changed = true;
      }
      return this.current;
    };
    const f = (): v1.AgentFacts.$Properties => this.current;
    const s: v1.PiSample.$Properties = { timeMs: r.timeMs };
    if (r.load) s.load = [centi(r.load.one), centi(r.load.five), centi(r.load.fifteen)];
    if (r.cpuPercent != null) s.cpuPermille = Math.round(r.cpuPercent * 10);
    if (r.memAvailableBytes != null) s.memAvailableKib = Math.round(Number(r.memAvailableBytes) / 1024);
    if (r.memTotalBytes) {
      const kib = Math.round(Number(r.memTotalBytes) / 1024);
      if (kib !== f().memTotalKib) edit().memTotalKib = kib;
    }
    if (r.temperatureC != null) s.temperatureMc = Math.round(r.temperatureC * 1000);
    if (r.uptimeS != null) s.uptimeS = r.uptimeS;
    if (r.net && r.net.length > 0) this.encodeNet(r.net, Number(r.timeMs ?? 0), s, edit);
    if (r.rootfs) s.rootfs = r.rootfs;
    if (r.probe) s.probe = r.probe;
    const a = r.apache;
    if (a) {
      const out: v1.ApacheSample.$Properties = { reachable: a.reachable, error: a.error, busyWorkers: a.busyWorkers, idleWorkers: a.idleWorkers, uptimeS: a.uptimeS };
      if (a.reachable) {
        const total = Number(a.totalAccesses ?? 0);
        if (this.prevAccesses !== undefined) out.accesses = total >= this.prevAccesses ? total - this.prevAccesses : total;
        this.prevAccesses = total;
        const board = a.scoreboard ?? "";
        if (board) {
          out.slots = scoreboardCounts(board);
          if (board.length !== f().scoreboardSlots) edit().scoreboardSlots = board.length;
        }
      }
      s.apache = out;
    }
    if (r.replayed) s.replayed = true;
    return { sample: s, factsChanged: changed };
  }

  private encodeNet(net: v1.NetCounters.$Properties[], timeMs: number, s: v1.PiSample.$Properties, edit: () => v1.AgentFacts.$Properties): void {
    const names = this.current.interfaces ?? [];
    let changed = names.length !== net.length;
    for (let i = 0; !changed && i < net.length; i++) changed = names[i] !== net[i].interface;
    if (changed) edit().interfaces = net.map((n) => n.interface ?? "");
    const prev = this.prevNet;
    const next = new Map<string, number[]>();
    const deltas: number[] = [];
    for (const n of net) {
      const cur = NET_FIELDS.map((k) => Number(n[k] ?? 0));
      next.set(n.interface ?? "", cur);
      if (!prev) continue;
      const before = prev.get(n.interface ?? "");
      // A counter that went down was reset (the interface was re-created): its total is the increase.
      for (let k = 0; k < NET_COUNTERS; k++) deltas.push(before === undefined ? 0 : cur[k] >= before[k] ? cur[k] - before[k] : cur[k]);
    }
    if (prev) {
      s.net = deltas;
      s.spanMs = Math.max(0, timeMs - this.prevNetAt);
    }
    this.prevNet = next;
    this.prevNetAt = timeMs;
  }
}

function centi(x: number | null | undefined): number {
  return Math.max(0, Math.round((x ?? 0) * 100));
}

/** A sample read with its facts: what the dashboard, `pifleet watch` and scripts show. */
export interface PiReading {
  timeMs: number;
  /** What the counter increases in `net` and `apache.accesses` cover. */
  spanMs: number;
  replayed: boolean;
  load: { one: number; five: number; fifteen: number } | null;
  cpuPercent: number | null;
  memTotalBytes: number | null;
  memAvailableBytes: number | null;
  temperatureC: number | null;
  uptimeS: number | null;
  /** Increases over `spanMs`, per interface. */
  net: Array<{ interface: string; rxBytes: number; txBytes: number; rxPackets: number; txPackets: number; rxErrors: number; txErrors: number }>;
  rootfs: { stalled: boolean; latencyMs: number } | null;
  apache: {
    reachable: boolean;
    error: string;
    busyWorkers: number;
    idleWorkers: number;
    /** Requests per second over the span (null without a span). */
    requestsPerSec: number | null;
    accesses: number;
    uptimeS: number;
    /** Slots per scoreboard state character; their sum is the scoreboard size. */
    slots: Record<string, number>;
  } | null;
  probe: { ok: boolean; status: number; latencyMs: number; error: string } | null;
  agentVersion: string;
  nodeVersion: string;
  arch: string;
}

/** Reads a PiStatus's last sample with its facts; null when no report has arrived. */
export function readingOf(status: { lastSample?: v1.IPiSample | null; facts?: v1.IAgentFacts | null }): PiReading | null {
  const s = status.lastSample;
  if (!s) return null;
  const f = status.facts ?? {};
  const n = (v: number | null | undefined) => (v == null ? null : Number(v));
  const span = Number(s.spanMs ?? 0);
  const names = f.interfaces ?? [];
  const net: PiReading["net"] = [];
  const c = s.net ?? [];
  for (let i = 0; i * NET_COUNTERS + NET_COUNTERS <= c.length; i++) {
    const o = i * NET_COUNTERS;
    net.push({ interface: names[i] ?? `#${i}`, rxBytes: Number(c[o]), txBytes: Number(c[o + 1]), rxPackets: Number(c[o + 2]), txPackets: Number(c[o + 3]), rxErrors: Number(c[o + 4]), txErrors: Number(c[o + 5]) });
  }
  const load = s.load && s.load.length >= 3 ? { one: s.load[0] / 100, five: s.load[1] / 100, fifteen: s.load[2] / 100 } : null;
  const a = s.apache;
  const slots: Record<string, number> = {};
  (a?.slots ?? []).forEach((count, i) => {
    if (i < SCOREBOARD_STATES.length && count) slots[SCOREBOARD_STATES[i]] = count;
  });
  const memTotal = Number(f.memTotalKib ?? 0);
  return {
    timeMs: Number(s.timeMs ?? 0),
    spanMs: span,
    replayed: Boolean(s.replayed),
    load,
    cpuPercent: s.cpuPermille == null ? null : s.cpuPermille / 10,
    memTotalBytes: memTotal ? memTotal * 1024 : null,
    memAvailableBytes: s.memAvailableKib == null ? null : Number(s.memAvailableKib) * 1024,
    temperatureC: s.temperatureMc == null ? null : s.temperatureMc / 1000,
    uptimeS: n(s.uptimeS),
    net,
    rootfs: s.rootfs ? { stalled: Boolean(s.rootfs.stalled), latencyMs: s.rootfs.latencyMs ?? 0 } : null,
    apache: a
      ? {
          reachable: Boolean(a.reachable),
          error: a.error ?? "",
          busyWorkers: a.busyWorkers ?? 0,
          idleWorkers: a.idleWorkers ?? 0,
          accesses: Number(a.accesses ?? 0),
          requestsPerSec: span > 0 && a.reachable ? Number(a.accesses ?? 0) / (span / 1000) : null,
          uptimeS: Number(a.uptimeS ?? 0),
          slots,
        }
      : null,
    probe: s.probe ? { ok: Boolean(s.probe.ok), status: s.probe.status ?? 0, latencyMs: s.probe.latencyMs ?? 0, error: s.probe.error ?? "" } : null,
    agentVersion: f.agentVersion ?? "",
    nodeVersion: f.nodeVersion ?? "",
    arch: f.arch ?? "",
  };
}
