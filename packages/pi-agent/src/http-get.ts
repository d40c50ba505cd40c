import type { IncomingMessage, RequestOptions } from "node:http";
import * as http from "node:http";
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

/**
 * A single GET on a fresh connection (a health check should exercise the whole path, and holding
 * a keep-alive connection would pin an Apache worker). node:http rather than fetch: fetch loads
 * undici, several MiB of resident memory on a 1 GiB Pi. TLS is loaded only for https:// URLs.
 */
export async function httpGet(url: string | URL, opts: HttpGetOptions): Promise<HttpResult> {
  const u = typeof url === "string" ? new URL(url) : url;
  const mod = u.protocol === "https:" ? (https ??= await import("node:https")) : http;
  const started = performance.now();
  const max = opts.maxBytes ?? 64 * 1024;
  return new Promise((resolve, reject) => {
    if (opts.signal.aborted) return reject(abortError(opts.signal));
    // autoSelectFamily: "localhost" is both ::1 and 127.0.0.1; Apache may listen on only one.
    const reqOpts: RequestOptions & { autoSelectFamily: boolean } = { method: "GET", agent: false, lookup: cachedLookup, autoSelectFamily: true, headers: { "user-agent": "pifleet-pi-agent", ...opts.headers }, signal: opts.signal };
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
