import type { LookupAddress } from "node:dns";
import type { IncomingMessage, RequestOptions } from "node:http";
import * as http from "node:http";
import { isIP, type LookupFunction } from "node:net";
import { cachedLookup } from "./resolve.js";

export interface HttpResult {
  status: number;
  body: string;
  /** From sending the request to the end of the (possibly truncated) body. */
  latencyMs: number;
  truncated: boolean;
}

export interface HttpGetOptions {
  signal: AbortSignal;
  /** Bytes of body kept; the rest is read and dropped so the connection ends normally. */
  maxBytes?: number;
  headers?: Record<string, string>;
}

let https: typeof import("node:https") | undefined;

/** Connect-phase failures after which the next address of the host is worth trying. */
const NEXT_ADDRESS = new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "EADDRNOTAVAIL", "EAFNOSUPPORT"]);

/**
 * A single GET on a fresh connection (a health check should exercise the whole path, and holding
 * a keep-alive connection would pin an Apache worker). node:http rather than fetch: fetch loads
 * undici, several MiB of resident memory on a 1 GiB Pi. TLS is loaded only for https:// URLs.
 *
 * "localhost" is both ::1 and 127.0.0.1 and Apache may listen on only one, so the host's
 * addresses are tried in turn, each on its own connection, moving on only when one is refused or
 * unreachable. Not Node's autoSelectFamily: on Node 18 (a Pi's distribution Node) its connection
 * racing trips an internal assertion (ERR_INTERNAL_ASSERTION in afterConnect, nodejs/node#47644)
 * when a request is aborted at its deadline mid-connect, and that kills the agent. On loopback a
 * refusal is immediate, so trying in order costs nothing.
 */
export async function httpGet(url: string | URL, opts: HttpGetOptions): Promise<HttpResult> {
  const u = typeof url === "string" ? new URL(url) : url;
  const mod = u.protocol === "https:" ? (https ??= await import("node:https")) : http;
  const started = performance.now();
  if (opts.signal.aborted) throw abortError(opts.signal);
  const addresses = await addressesOf(u.hostname.replace(/^\[(.*)\]$/, "$1"));
  for (let i = 0; ; i++) {
    try {
      return await getFrom(mod, u, addresses[i], opts, started);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "";
      if (opts.signal.aborted || i + 1 >= addresses.length || !NEXT_ADDRESS.has(code)) throw err;
    }
  }
}

function addressesOf(host: string): Promise<LookupAddress[]> {
  const family = isIP(host);
  if (family) return Promise.resolve([{ address: host, family }]);
  return new Promise((resolve, reject) =>
    cachedLookup(host, { all: true }, ((err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => (err ? reject(err) : resolve(addresses))) as never),
  );
}

function getFrom(mod: Pick<typeof http, "request">, u: URL, to: LookupAddress, opts: HttpGetOptions, started: number): Promise<HttpResult> {
  const max = opts.maxBytes ?? 64 * 1024;
  // The request keeps the URL's host (Host header, TLS name); only the connection goes to `to`.
  const lookup = ((_host: string, options: { all?: boolean }, cb: (...args: unknown[]) => void) =>
    options?.all ? cb(null, [to]) : cb(null, to.address, to.family)) as unknown as LookupFunction;
  return new Promise((resolve, reject) => {
    const reqOpts: RequestOptions & { autoSelectFamily: boolean } = { method: "GET", agent: false, lookup, autoSelectFamily: false, headers: { "user-agent": "pifleet-pi-agent", ...opts.headers }, signal: opts.signal };
    const req = mod.request(u, reqOpts, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let kept = 0;
      let truncated = false;
      res.on("data", (chunk: Buffer) => {
        if (kept >= max) {
          truncated = true;
          return;
        }
        const part = kept + chunk.length > max ? chunk.subarray(0, max - kept) : chunk;
        truncated ||= part.length < chunk.length;
        chunks.push(part);
        kept += part.length;
      });
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8"), latencyMs: Math.round(performance.now() - started), truncated }),
      );
      res.on("error", (err) => reject(opts.signal.aborted ? abortError(opts.signal) : err));
    });
    req.on("error", (err) => reject(opts.signal.aborted ? abortError(opts.signal) : err));
    req.end();
  });
}

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error("aborted");
}

/** A short reason for a report: "connect ECONNREFUSED 127.0.0.1:80", "no answer within 700 ms". */
export function reasonOf(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length) return reasonOf(err.errors[0]);
  const e = err as NodeJS.ErrnoException;
  return (e?.message || e?.code || String(err)).slice(0, 200);
}
