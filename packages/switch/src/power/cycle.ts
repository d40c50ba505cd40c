import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "@pifleet/core";
import type { PowerDriver } from "./driver.js";

export interface PowerCycleResult {
  port: number;
  offMs: number;
  dwellMs: number;
  onMs: number;
}

/**
 * Off (verified), wait the dwell so the Pi's capacitors drain and it really resets, on (verified).
 * If turning it back on fails, the error says the port is left off: the caller (the recovery
 * engine's intent log) must finish the job.
 */
export async function powerCycle(driver: PowerDriver, port: number, dwellMs: number, options: { logger?: Logger; signal?: AbortSignal } = {}): Promise<PowerCycleResult> {
  const log = options.logger;
  const t0 = Date.now();
  await driver.powerSet(port, false);
  const t1 = Date.now();
  log?.info({ port, dwellMs }, "PoE off (verified), waiting before power on");
  await sleep(dwellMs, undefined, { signal: options.signal });
  const t2 = Date.now();
  try {
    await driver.powerSet(port, true);
  } catch (err) {
    (err as Error).message = `port ${port} is left OFF: ${(err as Error).message}`;
    throw err;
  }
  const t3 = Date.now();
  log?.info({ port }, "PoE on (verified)");
  return { port, offMs: t1 - t0, dwellMs: t2 - t1, onMs: t3 - t2 };
}
