/**
 * Prometheus text exposition (format 0.0.4), written by hand: a handful of counters, gauges read
 * at scrape time and one histogram. Labels are fixed small sets (endpoint, code, state).
 */

type Labels = Record<string, string>;

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
}

export class Counter {
  private readonly values = new Map<string, { labels: Labels; value: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  inc(labels: Labels = {}, by = 1): void {
    this.bind(labels).value += by;
  }

  /** The cell for one label set, for hot paths: `cell.value++` costs nothing more. */
  bind(labels: Labels = {}): { value: number } {
    const key = labelText(labels);
    let cur = this.values.get(key);
    if (!cur) {
      cur = { labels, value: 0 };
      this.values.set(key, cur);
    }
    return cur;
  }

  get(labels: Labels = {}): number {
    return this.values.get(labelText(labels))?.value ?? 0;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const [key, { value }] of this.values) lines.push(`${this.name}${key} ${value}`);
    return lines.join("\n");
  }
}

/** Read when scraped, so the hot path keeps no extra bookkeeping. */
export class Gauge {
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly read: () => Array<[Labels, number]> | number,
  ) {}

  render(): string {
    const v = this.read();
    const rows: Array<[Labels, number]> = typeof v === "number" ? [[{}, v]] : v;
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`, ...rows.map(([l, n]) => `${this.name}${labelText(l)} ${n}`)].join("\n");
  }
}

export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    /** Upper bounds, ascending, in the metric's unit. */
    readonly buckets: readonly number[],
  ) {
    this.counts = new Array<number>(buckets.length).fill(0);
  }

  observe(v: number): void {
    this.sum += v;
    this.count++;
    // Linear scan: a dozen buckets, and most observations land in the first few.
    for (let i = 0; i < this.buckets.length; i++) {
      if (v <= this.buckets[i]) {
        this.counts[i]++;
        return;
      }
    }
  }

  get total(): number {
    return this.count;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    let cum = 0;
    this.buckets.forEach((b, i) => {
      cum += this.counts[i];
      lines.push(`${this.name}_bucket{le="${b}"} ${cum}`);
    });
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.count}`, `${this.name}_sum ${this.sum}`, `${this.name}_count ${this.count}`);
    return lines.join("\n");
  }
}

export class Metrics {
  readonly connections = new Counter("pifleet_connections_total", "WebSocket connections accepted, by endpoint.");
  readonly framesIn = new Counter("pifleet_frames_in_total", "Frames received, by endpoint.");
  readonly framesOut = new Counter("pifleet_frames_out_total", "Frames sent, by endpoint.");
  readonly refused = new Counter("pifleet_refused_total", "Frames or connections refused, by ErrorFrame code and reason.");
  readonly reports = new Counter("pifleet_reports_total", "Pi reports accepted (replayed: sent late after a reconnect).");
  readonly fileserverReports = new Counter("pifleet_fileserver_reports_total", "Fileserver reports accepted.");
  readonly events = new Counter("pifleet_events_total", "Events appended to the audit log, by kind.");
  readonly operatorRequests = new Counter("pifleet_operator_requests_total", "Operator requests, by action and outcome.");
  readonly commands = new Counter("pifleet_commands_total", "Commands sent to agents, by kind and outcome.");
  readonly httpRefused = new Counter("pifleet_http_refused_total", "HTTP connections or requests refused, by reason (connection cap, per-address cap, path outside the static root, bad path).");
  readonly feedTrimmed = new Counter("pifleet_feed_trimmed_total", "Events whose text was shortened so the feed frame carrying them fits the frame limit.");
  readonly feedLatency = new Histogram(
    "pifleet_report_feed_latency_seconds",
    "From a report's arrival to the feed frame carrying it being handed to the watchers' sockets.",
    [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  );
  private readonly gauges: Gauge[] = [];

  gauge(name: string, help: string, read: () => Array<[Labels, number]> | number): void {
    this.gauges.push(new Gauge(name, help, read));
  }

  render(): string {
    const parts = [this.connections, this.framesIn, this.framesOut, this.refused, this.reports, this.fileserverReports, this.events, this.operatorRequests, this.commands, this.httpRefused, this.feedTrimmed, this.feedLatency, ...this.gauges];
    return `${parts.map((p) => p.render()).join("\n")}\n`;
  }
}
