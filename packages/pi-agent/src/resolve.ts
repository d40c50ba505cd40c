import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import type { LookupFunction } from "node:net";

/** How long a resolved name is reused. */
const TTL_MS = 60_000;
/** RFC 6761: "localhost" is loopback, whatever the resolver configuration says. */
const LOOPBACK: LookupAddress[] = [
  { address: "::1", family: 6 },
  { address: "127.0.0.1", family: 4 },
];

const cache = new Map<string, { addresses: LookupAddress[]; until: number }>();
const pending = new Map<string, Array<(err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void>>();

/**
 * The HTTP collectors' name lookup. getaddrinfo runs on the thread pool and reads /etc/hosts,
 * which on a Pi lives on the NFS root: with the root hung, two lookups a second would soon take
 * every pool thread and stall the /proc reads too. So "localhost" (the default URLs) never reaches
 * the resolver, other names are cached for a minute, and one lookup per name runs at a time.
 */
export const cachedLookup: LookupFunction = (hostname, options, callback) => {
  const all = typeof options === "object" && options !== null && (options as { all?: boolean }).all === true;
  const family = typeof options === "object" && options !== null ? Number((options as { family?: number | string }).family ?? 0) : Number(options ?? 0);
  const reply = (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => {
    const wanted = family === 4 || family === 6 ? addresses.filter((a) => a.family === family) : addresses;
    if (err || wanted.length === 0) {
      const e = err ?? Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND", hostname });
      return all ? (callback as (e: Error, a: LookupAddress[]) => void)(e, []) : (callback as (e: Error, a: string, f: number) => void)(e, "", 0);
    }
    if (all) (callback as (e: null, a: LookupAddress[]) => void)(null, wanted);
    else (callback as (e: null, a: string, f: number) => void)(null, wanted[0].address, wanted[0].family);
  };
  const name = hostname.toLowerCase();
  if (name === "localhost" || name.endsWith(".localhost")) return reply(null, LOOPBACK);
  const hit = cache.get(name);
  if (hit && hit.until > Date.now()) return reply(null, hit.addresses);
  const waiters = pending.get(name);
  if (waiters) {
    waiters.push(reply);
    return;
  }
  pending.set(name, [reply]);
  dnsLookup(name, { all: true }, (err, addresses) => {
    if (!err) cache.set(name, { addresses, until: Date.now() + TTL_MS });
    const ws = pending.get(name) ?? [];
    pending.delete(name);
    for (const w of ws) w(err, addresses ?? []);
  });
};
