import type { Collector, ReportPart } from "./types.js";
import { httpGet, reasonOf } from "../http-get.js";

/**
 * GET the site as a visitor would: ok when it answers 2xx or 3xx within the deadline. The body is
 * read (so a server that sends headers and then stalls fails) but not kept.
 */
export class ProbeCollector implements Collector {
  private readonly headers?: Record<string, string>;
  constructor(
    private readonly url: string,
    private readonly deadlineMs: number,
    host?: string,
  ) {
    this.headers = host ? { host } : undefined;
  }

  async collect(signal: AbortSignal): Promise<ReportPart> {
    const started = performance.now();
    try {
      const res = await httpGet(this.url, { signal, maxBytes: 0, headers: this.headers });
      const ok = res.status >= 200 && res.status < 400;
      return { probe: { ok, status: res.status, latencyMs: res.latencyMs, error: ok ? "" : `HTTP ${res.status}` } };
    } catch (err) {
      const latencyMs = Math.round(performance.now() - started);
      const error = signal.aborted ? `no answer within ${this.deadlineMs} ms` : reasonOf(err);
      return { probe: { ok: false, status: 0, latencyMs, error } };
    }
  }
}
