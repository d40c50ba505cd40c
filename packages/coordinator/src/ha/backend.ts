import type { IntentStore } from "@pifleet/recovery";

/**
 * Who may act on the fleet, and where the acts are recorded first. `single` (one coordinator,
 * SQLite) is always the leader; `etcd` wins a lease-backed election and writes each act as a
 * transaction guarded by its leader key, so a deposed leader cannot cut power.
 */
export interface HaBackend {
  readonly kind: string;
  /** This coordinator's name (for the feed and the event log). */
  readonly name: string;
  /** Resolves when this coordinator is the leader (the single backend: at once). */
  start(): Promise<void>;
  isLeader(): boolean;
  /** The current leader's name, when known. */
  leader(): string | undefined;
  /** Whether the backing store answers (always true for single). */
  healthy(): boolean;
  /**
   * Writes `act` (and every intent change queued since the last fence) guarded by this
   * coordinator's leadership. Rejects with FencedError when it is no longer the leader: the
   * act must then not be carried out.
   */
  fence(act: string): Promise<void>;
  /** The power intents recovery opens and closes (durable before the port is touched). */
  intents: IntentStore;
  /**
   * Verdicts shared between coordinators: each publishes what it judges of the agents connected
   * to it (reports stay local), and the leader reads the others' for Pis not connected to it.
   */
  shareView(view: PeerView): void;
  /** The freshest verdict another live coordinator published for `subject`, if any. */
  peerVerdict(subject: string): { health: string; coordinator: string } | undefined;
  /** Called once when leadership is lost (lease expired, fence refused, store unreachable). */
  onLost(cb: (reason: string) => void): void;
  stop(): Promise<void>;
}

/** The act was refused: this coordinator is not (or no longer) the leader. */
export class FencedError extends Error {
  constructor(act: string, why: string) {
    super(`${act} not performed: ${why}`);
    this.name = "FencedError";
  }
}

/** subject (Pi name, or "fileserver") → verdict ("healthy", "suspect", "down", "unknown"). */
export type PeerView = Record<string, string>;
