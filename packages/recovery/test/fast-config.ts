import type { RecoveryConfig } from "@pifleet/recovery";

/** Every wait of the engine in tens of milliseconds, so a whole remediation runs within a test. */
export const FAST_CONFIG: Partial<RecoveryConfig> = {
  confirmMs: 50,
  reconnectBackoffMs: 0,
  nfsRetryMs: 0,
  suspectActMs: 200,
  startupGraceMs: 0,
  dwellMs: 20,
  bootTimeoutMs: 300,
  backoffMs: 20,
  maxBackoffMs: 50,
  tickMs: 10,
};
