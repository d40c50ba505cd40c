import type { v1 } from "@pifleet/proto";

/** The protocol's limit on the scoreboard string. */
export const MAX_SCOREBOARD = 4096;

export type ModStatusResult = { ok: true; status: v1.ApacheStatus.$Properties } | { ok: false; error: string };

/**
 * Parses mod_status's machine-readable page (`server-status?auto`): "Key: value" lines. The first
 * line is the server's host name; the set of keys varies with the MPM, ExtendedStatus and the
 * version, so only BusyWorkers and IdleWorkers are required (they are present in every 2.2 and 2.4
 * release). Anything else that does not look like mod_status, or a present number that is not a
 * number, is refused with a reason rather than read as zero.
 */
export function parseModStatus(text: string): ModStatusResult {
  if (/^\s*</.test(text)) return { ok: false, error: "got an HTML page, not server-status?auto output (does the URL end in ?auto?)" };
  const fields = new Map<string, string>();
  for (const raw of text.split(/\r?\n/)) {
    const i = raw.indexOf(":");
    if (i <= 0) continue;
    const key = raw.slice(0, i).trim();
    // The first occurrence wins: a later line of the same name would come from a third-party module.
    if (!fields.has(key)) fields.set(key, raw.slice(i + 1).trim());
  }
  const errors: string[] = [];
  const int = (key: string, required: boolean): number | undefined => {
    const v = fields.get(key);
    if (v === undefined || (v === "" && !required)) {
      if (required) errors.push(`no ${key} line`);
      return undefined;
    }
    if (!/^\d+$/.test(v)) {
      errors.push(`${key}: ${JSON.stringify(v.slice(0, 40))} is not a whole number`);
      return undefined;
    }
    return Number(v);
  };
  const busy = int("BusyWorkers", true);
  const idle = int("IdleWorkers", true);
  if (busy === undefined && idle === undefined && errors.every((e) => e.startsWith("no "))) {
    return { ok: false, error: "not mod_status ?auto output (no BusyWorkers or IdleWorkers line)" };
  }
  const accesses = int("Total Accesses", false);
  const uptime = int("Uptime", false) ?? int("ServerUptimeSeconds", false);
  let reqPerSec: number | undefined;
  const rps = fields.get("ReqPerSec");
  if (rps !== undefined && rps !== "") {
    // Apache prints fractions without a leading zero: ".142857".
    if (/^(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(rps)) reqPerSec = Number(rps);
    else errors.push(`ReqPerSec: ${JSON.stringify(rps.slice(0, 40))} is not a number`);
  } else if (accesses !== undefined && uptime) {
    // Apache leaves ReqPerSec out while its uptime is 0 s; it is this same quotient otherwise.
    reqPerSec = accesses / uptime;
  }
  let scoreboard = fields.get("Scoreboard") ?? "";
  if (scoreboard && !/^[_SRWKDCLGI.]+$/.test(scoreboard)) errors.push(`Scoreboard: unexpected characters in ${JSON.stringify(scoreboard.slice(0, 40))}`);
  if (errors.length) return { ok: false, error: `bad server-status: ${errors.join("; ")}` };
  // A huge ServerLimit × ThreadsPerChild could exceed what one frame may carry; the counts stay exact.
  if (scoreboard.length > MAX_SCOREBOARD) scoreboard = scoreboard.slice(0, MAX_SCOREBOARD);
  return {
    ok: true,
    status: {
      reachable: true,
      busyWorkers: busy,
      idleWorkers: idle,
      requestsPerSec: reqPerSec ?? 0,
      totalAccesses: accesses ?? 0,
      uptimeS: uptime ?? 0,
      scoreboard,
    },
  };
}
