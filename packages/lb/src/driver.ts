import type { LoadBalancerServerPlan } from "@pifleet/core";

/**
 * What pifleet needs from a load balancer, and nothing more: keep the backend's server list equal
 * to the plan, move one server between ready / drain / maintenance, and read back what the load
 * balancer believes. One vendor = one file under drivers/, registered by name (fleet
 * `loadBalancer.driver`).
 */
export interface LoadBalancerDriver {
  /** The registered driver name, e.g. "haproxy". */
  readonly name: string;
  readonly backend: string;
  /** Every server in the backend, as the load balancer sees it now. */
  servers(): Promise<ServerState[]>;
  /** One server's state; throws LoadBalancerError when it is not in the backend. */
  server(name: string): Promise<ServerState>;
  /**
   * Adds planned servers that are missing, updates ones whose address moved, and removes servers
   * that pifleet added earlier but the plan no longer lists. Servers someone else configured are
   * never removed.
   */
  sync(planned: readonly LoadBalancerServerPlan[]): Promise<SyncResult>;
  /** No new traffic; existing connections finish and health checks go on. */
  drain(name: string): Promise<void>;
  /** No traffic and no health checks: the server is out. */
  maintenance(name: string): Promise<void>;
  /** Back into rotation (subject to its health check). */
  ready(name: string): Promise<void>;
  close(): Promise<void>;
}

export type AdminState = "ready" | "drain" | "maint";
export type OperationalState = "down" | "starting" | "up" | "stopping";
export type CheckResult = "unknown" | "neutral" | "failed" | "passed" | "conditional";

export interface ServerState {
  name: string;
  address: string;
  port: number;
  admin: AdminState;
  operational: OperationalState;
  check: {
    /** Health checks configured and administratively enabled (paused ones in maintenance count as enabled). */
    enabled: boolean;
    /** The vendor's short status, e.g. HAProxy's L7OK, L4CON, INI. */
    status: string;
    result: CheckResult;
  };
  weight: number;
  secondsSinceChange: number;
  /** Added by pifleet at run time (so sync may remove it); false for servers from the config file. */
  managed: boolean;
}

export interface SyncResult {
  added: string[];
  updated: string[];
  removed: string[];
  unchanged: string[];
  /** Unplanned managed servers left in maintenance because the load balancer refused to delete them yet (live connections). */
  pending: { name: string; reason: string }[];
}

export interface DriverOptions {
  /** Where the load balancer's control interface listens (HAProxy: unix socket path or host:port). */
  socket: string;
  backend: string;
  /** Per request. */
  timeoutMs?: number;
  /** Health check for servers the driver adds; the backend's own `option httpchk` decides what a check sends. */
  check?: boolean;
}

/** A load balancer refused or failed a request. `command` and `answer` are what was sent and what came back. */
export class LoadBalancerError extends Error {
  constructor(
    message: string,
    readonly command?: string,
    readonly answer?: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = "LoadBalancerError";
  }
}
