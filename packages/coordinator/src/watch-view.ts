import { textTable } from "@pifleet/core";
import { piStateName, readingOf, v1 } from "@pifleet/proto";
import type { FeedMirror } from "./feed-mirror.js";

/** A PiStatus as JSON for scripts: state by name, numbers as numbers, the last report read with the agent's facts. */
export function piStatusJson(p: v1.PiStatus): Record<string, unknown> {
  return {
    name: p.name,
    port: p.port,
    shelf: p.shelf,
    state: piStateName(p.state),
    reason: p.reason,
    connected: p.connected,
    held: p.held,
    attempts: p.attempts,
    lastSeenMs: p.lastSeenMs,
    stateSinceMs: p.stateSinceMs,
    lastReport: readingOf(p),
  };
}

export function fleetEventJson(e: v1.FleetEvent): Record<string, unknown> {
  return { id: e.id, timeMs: e.timeMs, kind: e.kind, subject: e.subject, message: e.message, actor: e.actor, fields: { ...e.fields } };
}

const COLOR: Record<string, string> = {
  healthy: "32",
  suspect: "33",
  down: "31;1",
  unknown: "90",
  drained: "36",
  "power-cycling": "36",
  booting: "36",
  rebuilding: "36",
  quarantined: "35;1",
  // Silent for a known reason (its agent is turned away), not dead: reverse video, a person acts.
  "credentials-refused": "33;7",
};

export interface WatchViewOptions {
  now: number;
  /** Terminal size; rows beyond the height are summarised. */
  columns: number;
  rows: number;
  connected: boolean;
  url: string;
  color: boolean;
  /** Only this shelf's Pis (and its pause/alarm); undefined: the whole fleet with one line per shelf. */
  shelf?: string;
}

/** Whether a Pi status belongs on a screen filtered to `shelf` (none: every Pi). */
export function onShelf(p: v1.PiStatus, shelf: string | undefined): boolean {
  return shelf === undefined || p.shelf === shelf;
}

/** The fleet overview: one line per shelf with its counts and why its recovery is paused, if it is. */
export function shelfOverview(fs: v1.FleetStatus | undefined): string[] {
  if (!fs || fs.shelves.length < 2) return [];
  const rows = fs.shelves.map((s) => [s.name ?? "", String(s.pisTotal), String(s.healthy), String(s.suspect), String(s.down), String(s.other), s.alarm ? `ALARM: ${s.alarmReason ?? ""}` : s.pausedReason ? `paused: ${s.pausedReason}` : ""]);
  return textTable(["SHELF", "PIS", "HEALTHY", "SUSPECT", "DOWN", "OTHER", "RECOVERY"], rows).split("\n");
}

/** The `pifleet watch` screen: a summary line, a table of Pis (trouble first), the latest events. */
export function renderWatch(m: FeedMirror, o: WatchViewOptions): string[] {
  const paint = (code: string | undefined, text: string) => (o.color && code ? `\x1b[${code}m${text}\x1b[0m` : text);
  const pis = [...m.pis.values()].filter((p) => onShelf(p, o.shelf));
  const counts = new Map<string, number>();
  for (const p of pis) counts.set(piStateName(p.state), (counts.get(piStateName(p.state)) ?? 0) + 1);
  const fs = m.fleetStatus;
  const summary = [
    `fleet ${m.fleet || "?"}${o.shelf !== undefined ? `, shelf ${o.shelf}` : ""}: ${pis.length} Pis`,
    [...counts].sort((a, b) => b[1] - a[1]).map(([s, n]) => `${n} ${s}`).join(", "),
    fs ? `fileserver ${fs.fileserverHealthy ? "healthy" : "UNHEALTHY"}` : "",
    fs ? `${fs.activeRemediations} remediations` : "",
    // High availability: who drives power, seen from the coordinator this feed comes from.
    fs?.haBackend && fs.haBackend !== "single" ? `leader ${fs.leader || paint("31;1", "NONE")} (via ${fs.coordinator})` : "",
    fs?.haBackend && fs.haBackend !== "single" && !fs.storeHealthy ? paint("31;1", `${fs.haBackend} UNREACHABLE`) : "",
  ].filter(Boolean);
  const head = [
    summary.join(" · "),
    `${o.connected ? "live" : paint("31", "disconnected, reconnecting")} · ${o.url} · ${new Date(o.now).toISOString().slice(11, 19)}`,
  ];
  const mine = o.shelf === undefined ? undefined : fs?.shelves.find((s) => s.name === o.shelf);
  if (o.shelf !== undefined) {
    if (mine?.alarm) head.push(paint("31;1", `SHELF ALARM: ${mine.alarmReason}`));
    if (mine?.pausedReason) head.push(paint("33;1", `recovery paused: ${mine.pausedReason}`));
  } else if (fs?.alarm) head.push(paint("31;1", `FLEET ALARM: ${fs.alarmReason}`));
  head.push("");
  if (o.shelf === undefined) {
    const overview = shelfOverview(fs);
    if (overview.length) head.push(...overview, "");
  }

  const eventLines = m.events.slice(-5).map((e) => `${new Date(e.timeMs).toISOString().slice(11, 19)} ${e.kind.padEnd(8)} ${e.subject.padEnd(10)} ${e.message}`);
  const room = Math.max(3, o.rows - head.length - 2 - (eventLines.length ? eventLines.length + 2 : 0) - 1);
  // Trouble first: a healthy Pi is the least interesting row on the screen.
  pis.sort((a, b) => Number(a.state === v1.PiState.PI_STATE_HEALTHY) - Number(b.state === v1.PiState.PI_STATE_HEALTHY) || a.port - b.port);
  const shown = pis.length > room ? pis.slice(0, room - 1) : pis;
  const rows = shown.map((p) => {
    const r = readingOf(p);
    const a = r?.apache;
    return [
      p.name,
      String(p.port),
      piStateName(p.state),
      r?.load ? r.load.one.toFixed(2) : "-",
      a ? (a.reachable ? `${a.busyWorkers ?? 0}/${a.idleWorkers ?? 0}` : "down") : "-",
      r?.probe ? (r.probe.ok ? `${r.probe.latencyMs ?? 0} ms` : `fail${r.probe.status ? ` ${r.probe.status}` : ""}`) : "-",
      p.lastSeenMs ? age(o.now - p.lastSeenMs) : "never",
      `${p.connected ? "" : "(offline) "}${p.reason}`,
    ];
  });
  const table = textTable(["PI", "PORT", "STATE", "LOAD", "APACHE B/I", "PROBE", "LAST SEEN", "REASON"], rows).split("\n");
  const lines = table.map((line, i) => {
    if (i < 2) return line;
    const state = piStateName(shown[i - 2].state);
    return line.replace(new RegExp(`(?<=^\\S+\\s+\\d+\\s+)${state.replace(/-/g, "\\-")}`), (s) => paint(COLOR[state], s));
  });
  if (shown.length < pis.length) lines.push(`… and ${pis.length - shown.length} more`);
  const out = [...head, ...lines];
  if (eventLines.length) out.push("", "recent events:", ...eventLines);
  return out.map((l) => clip(l, o.columns));
}

/** Cuts a line to `columns` visible characters, keeping colour sequences intact. */
function clip(line: string, columns: number): string {
  let visible = 0;
  let i = 0;
  while (i < line.length) {
    if (line[i] === "\x1b") {
      const end = line.indexOf("m", i);
      i = end < 0 ? line.length : end + 1;
      continue;
    }
    if (visible === columns - 1 && line.slice(i).replace(/\x1b\[[0-9;]*m/g, "").length > 1) {
      return `${line.slice(0, i)}…${line.includes("\x1b") ? "\x1b[0m" : ""}`;
    }
    visible++;
    i++;
  }
  return line;
}

function age(ms: number): string {
  if (ms < 0) ms = 0;
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s ago`;
  if (ms < 120_000) return `${Math.round(ms / 1000)} s ago`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min ago`;
  return `${Math.round(ms / 3_600_000)} h ago`;
}
