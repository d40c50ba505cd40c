import type { Health } from "./types.js";

export interface DarkVerdict {
  dark: number;
  total: number;
  alarm: boolean;
  reason: string;
}

/**
 * Many Pis going dark together is far likelier a broken switch uplink, a network partition or a
 * coordinator fault than many Pis failing at once; power-cycling them would make it worse.
 */
export function judgeDarkShare(health: Health[], darkShare: number): DarkVerdict {
  const total = health.length;
  const dark = health.filter((h) => h === "down" || h === "suspect").length;
  const alarm = total > 1 && dark / total > darkShare;
  const reason = alarm
    ? `${dark} of ${total} Pis (${Math.round((dark / total) * 100)} %) are unhealthy at once, over the ${Math.round(darkShare * 100)} % limit: suspect the network or the coordinator, no Pi is power-cycled`
    : "";
  return { dark, total, alarm, reason };
}
