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

let httpsModule: typeof import("node:https") | undefined;

/** Connect-phase failures after which the next address of the host is worth trying. */
const NEXT_ADDRESS = new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "EADDRNOTAVAIL", "EAFNOSUPPORT"]);

/**
 * One kept-alive connection per origin address, shared by server-status and the probe (the same
 * Apache): a fresh TCP connection per request cost the agent more than everything else it does in
 * a report (connect, socket and parser set-up, close), and Apache as much. With maxSockets 1 the
 * two requests take turns on it. On Debian's default event MPM an idle kept-alive connection holds
 * no worker; under prefork it holds one process (of the 150 default), the price of the saving.
 */
const agents = new Map<string, http.Agent>();
function agentFor(tls: boolean, to: LookupAddress): http.Agent {
  const key = `${tls ? "s" : ""}${to.address}`;
  let agent = agents.get(key);
  if (!agent) {
    // The request keeps the URL's host (Host header, TLS name); only the connection goes to `to`.
    const lookup = ((_host: string, options: { all?: boolean }, cb: (...args: unknown[]) => void) =>
      options?.all ? cb(null, [to]) : cb(null, to.address, to.family)) as unknown as LookupFunction;
    const options = { keepAlive: true, maxSockets: 1, maxFreeSockets: 1, lookup } as http.AgentOptions;
    agent = tls ? new httpsModule!.Agent(options) : new http.Agent(options);
    agents.set(key, agent);
  }
  return agent;
}

/** The address of each host that answered last: tried first next time. */
const preferred = new Map<string, string>();

/**
 * A GET over the origin's kept-alive connection. node:http rather than fetch: fetch loads undici,
 * several MiB of resident memory on a 1 GiB Pi. TLS is loaded only for https:// URLs. A request
 * that fails because the server closed the idle connection just as it was reused is sent once
 * more, on a new connection: that race is not news about Apache.
 *
 * "localhost" is both ::1 and 127.0.0.1 and Apache may listen on only one, so the host's
 * addresses are tried in turn, moving on only when one is refused or unreachable, and the one
 * that answered is tried first next time. Not Node's autoSelectFamily: on Node 18 (a Pi's
 * distribution Node) its connection racing trips an internal assertion (ERR_INTERNAL_ASSERTION in
 * afterConnect, nodejs/node#47644) when a request is aborted at its deadline mid-connect, and that
 * kills the agent. On loopback a refusal is immediate, so trying in order costs nothing.
 */
export async function httpGet(url: string | URL, opts: HttpGetOptions): Promise<HttpResult> {
  const u = typeof url === "string" ? new URL(url) : url;
  const tls = u.protocol === "https:";
  const mod = tls ? (httpsModule ??= await import("node:https")) : http;
  if (opts.signal.aborted) throw abortError(opts.signal);
  const host = u.hostname.replace(/^\[(.*)\]$/, "$1");
  const addresses = await addressesOf(host);
  const first = preferred.get(host);
  if (first) addresses.sort((a, b) => Number(b.address === first) - Number(a.address === first));
  for (let i = 0; ; i++) {
    const to = addresses[i];
    try {
      let result: HttpResult;
      try {
        result = await getOnce(mod, u, opts, agentFor(tls, to));
      } catch (err) {
        if (!(err as { reusedSocket?: boolean }).reusedSocket || opts.signal.aborted) throw err;
        result = await getOnce(mod, u, opts, agentFor(tls, to));
      }
      preferred.set(host, to.address);
      return result;
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
    cachedLookup(host, { all: true }, ((err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => (err ? reject(err) : resolve([...addresses]))) as never),
  );
}

function getOnce(mod: typeof http | typeof import("node:https"), u: URL, opts: HttpGetOptions, agent: http.Agent): Promise<HttpResult> {
  const max = opts.maxBytes ?? 64 * 1024;
  return new Promise((resolve, reject) => {
    if (opts.signal.aborted) return reject(abortError(opts.signal));
    let started = performance.now();
    const reqOpts: RequestOptions & { autoSelectFamily: boolean } = { method: "GET", agent, autoSelectFamily: false, headers: { "user-agent": "pifleet-pi-agent", ...opts.headers }, signal: opts.signal };
    const req = mod.request(u, reqOpts, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let kept = 0;
      let truncated = false;
      // The whole body is read, kept or not: only then can the connection carry the next request.
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
        resolve({ status: res.statusCode ?? 0, body: chunks.length === 0 ? "" : chunks.length === 1 ? chunks[0].toString("utf8") : Buffer.concat(chunks).toString("utf8"), latencyMs: Math.round(performance.now() - started), truncated }),
      );
      res.on("error", (err) => reject(opts.signal.aborted ? abortError(opts.signal) : err));
    });
    // Latency counts from when the request has a connection, not while it waits its turn for one.
    req.once("socket", () => (started = performance.now()));
    req.on("error", (err) => {
      if (opts.signal.aborted) return reject(abortError(opts.signal));
      if (req.reusedSocket) Object.assign(err, { reusedSocket: true });
      reject(err);
    });
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
