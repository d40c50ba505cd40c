import type { Collector, ReportPart } from "./types.js";
import { httpGet, reasonOf } from "../http-get.js";
import { parseModStatus } from "../mod-status.js";

/** GET server-status?auto from mod_status; any failure → reachable=false with the reason. */
export class ApacheCollector implements Collector {
  constructor(
    private readonly url: string,
    private readonly deadlineMs: number,
  ) {}

  async collect(signal: AbortSignal): Promise<ReportPart> {
    try {
      const res = await httpGet(this.url, { signal, maxBytes: 64 * 1024 });
      if (res.status !== 200) return { apache: { reachable: false, error: `HTTP ${res.status} from ${this.url}` } };
      const parsed = parseModStatus(res.body);
      if (!parsed.ok) return { apache: { reachable: false, error: parsed.error } };
      return { apache: parsed.status };
    } catch (err) {
      const why = signal.aborted ? `no answer within ${this.deadlineMs} ms` : reasonOf(err);
      return { apache: { reachable: false, error: why } };
    }
  }
}
