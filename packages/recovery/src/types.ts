import { DEFAULT_WAVE_CONFIG } from "./waves.js";

/** What the recovery engine needs from the rest of the coordinator, each behind a narrow port. */

export type Health = "healthy" | "suspect" | "down" | "unknown";
export type RecoveryState = "drained" | "power-cycling" | "booting" | "rebuilding" | "quarantined";

export interface PiRef {
  name: string;
  port: number;
  /** Boots over the network (DHCP/TFTP from the fileserver): a silent one after power-on is retried in its wave. */
  netboot?: boolean;
  /** The shelf (switch) the port is on: guards count per shelf. Absent: the one shelf. */
  shelf?: string;
}

/** The switch's PoE driver: sets are verified by read-back before they resolve. */
export interface PowerPort {
  set(port: number, on: boolean): Promise<void>;
  get(port: number): Promise<boolean>;
}

export interface LoadBalancerPort {
  drain(pi: string): Promise<void>;
  ready(pi: string): Promise<void>;
}

export interface FileserverPort {
  /** Whether the fileserver serving `shelf` (every shelf when absent) is healthy. */
  healthy(shelf?: string): boolean;
  /** Rebuilds the Pi's root filesystem from the golden image; called with the Pi's port off. */
  rebuild(pi: string): Promise<void>;
}

export interface OpenIntent {
  id: number;
  pi: string;
  port: number;
  reason: string;
  createdMs: number;
  /** When the port was verified off; absent when the coordinator died before it could say. */
  offMs?: number;
}

/**
 * Durable record of power actions in flight. An intent means "this port is being switched off
 * and must end up on"; it is written (and synced) before the port is switched off and closed only
 * after the port is verified on again, so a coordinator that dies in between finds it on start.
 */
export interface IntentStore {
  openIntent(pi: string, port: number, reason: string): number;
  closeIntent(id: number, outcome: "done" | "recovered" | "failed", note?: string): void;
  openIntents(): OpenIntent[];
  /** Records when the port was verified off, so a restarted coordinator can finish its dwell. */
  markOff?(id: number, atMs: number): void;
}

/**
 * Pis whose agent the coordinator refuses for its credentials (revoked, a key that no longer
 * matches): not dead, so no power or rebuild action until a person acts.
 */
export interface CredentialsPort {
  /** Why the Pi's agent is refused (e.g. "revoked"), or undefined when it is not. */
  refused(pi: string): string | undefined;
  /** A person released the Pi: recovery may act on it again. */
  clear(pi: string, actor: string): void;
}

/**
 * Whether a shelf's own parts answer: its switch (SNMP) and its fileserver. A shelf whose switch
 * cannot be reached cannot be power-cycled, and its Pis' silence may be that switch's fault.
 */
export interface ShelfReachPort {
  /** Why the shelf's switch or fileserver is unreachable now, or undefined when both answer. */
  unreachable(shelf: string): string | undefined;
}

export interface AuditEvent {
  kind: "recovery" | "power" | "lb" | "alarm" | "operator";
  subject: string;
  message: string;
  actor?: string;
  fields?: Record<string, string>;
}

export interface RecoveryConfig {
  /** At most this many Pis in remediation at once. */
  maxConcurrent: number;
  /** More than this share of the fleet unhealthy at once: assume the network or coordinator is at fault. */
  darkShare: number;
  /**
   * A Pi must be `down` this long before anything is done. Short on purpose: a partition makes
   * every Pi it cuts off `suspect` (counted as dark by the fleet alarm) within one report
   * interval, before the first of them can turn `down`; this is the margin on top of that.
   */
  confirmMs: number;
  /**
   * The agents' longest reconnect back-off (FleetClient's cap). After a guard lifts, a Pi still
   * dark must stay unhealthy for `confirmMs` plus this before any power action.
   */
  reconnectBackoffMs: number;
  /**
   * After the fileserver guard lifts: how long a Pi's NFS client may take to retry its root's
   * mount (Linux over TCP retransmits every `timeo`, 60 s by default). A Pi still dark must stay
   * unhealthy for `confirmMs` plus the longer of this and the reconnect back-off: until then its
   * silence may still be the fileserver's.
   */
  nfsRetryMs: number;
  /** A Pi that is only `suspect` (alive but failing) is acted on after this long. */
  suspectActMs: number;
  /** No judgement this long after start: agents are still reconnecting. */
  startupGraceMs: number;
  /** Seconds a port stays off during a cycle. */
  dwellMs: number;
  /** How long a Pi may take to report healthy after power returns. */
  bootTimeoutMs: number;
  /** Power-cycles before the root filesystem is rebuilt. */
  cyclesBeforeRebuild: number;
  /** A quarantined Pi's port is switched off (and left off until a person releases it). */
  quarantinePowerOff: boolean;
  /** Wait before the n-th attempt on one Pi: backoffMs × 2^(n−1), capped. */
  backoffMs: number;
  maxBackoffMs: number;
  /** Fleet-wide power-cycle rate limit. */
  powerActionsPerWindow: number;
  powerWindowMs: number;
  /** Healthy this long and the Pi's attempt count resets. */
  stableMs: number;
  tickMs: number;
  /** `power-on --all`: Pis switched on at once, how long each may take to report, retries of a silent netbooted Pi. */
  waveSize: number;
  waveTimeoutMs: number;
  waveRetries: number;
  /** Wait before the n-th retry of a silent netbooted Pi: × 2^(n−1), capped by maxBackoffMs. */
  waveRetryBackoffMs: number;
}

export const DEFAULT_RECOVERY_CONFIG: RecoveryConfig = {
  maxConcurrent: 2,
  darkShare: 0.3,
  confirmMs: 500,
  reconnectBackoffMs: 15_000,
  nfsRetryMs: 90_000,
  suspectActMs: 20_000,
  startupGraceMs: 20_000,
  dwellMs: 5_000,
  bootTimeoutMs: 120_000,
  cyclesBeforeRebuild: 2,
  quarantinePowerOff: true,
  backoffMs: 10_000,
  maxBackoffMs: 300_000,
  powerActionsPerWindow: 6,
  powerWindowMs: 60_000,
  stableMs: 600_000,
  tickMs: 250,
  // The wave scheduler's own defaults, so the two cannot drift apart.
  waveSize: DEFAULT_WAVE_CONFIG.size,
  waveTimeoutMs: DEFAULT_WAVE_CONFIG.timeoutMs,
  waveRetries: DEFAULT_WAVE_CONFIG.retries,
  waveRetryBackoffMs: DEFAULT_WAVE_CONFIG.retryBackoffMs,
};
