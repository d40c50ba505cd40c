import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { createLogger } from "@pifleet/core";
import { FleetClient, v1 } from "@pifleet/proto";
import { FeedMirror, fleetEventJson, onShelf, piStatusJson, renderWatch, type FeedUpdate } from "@pifleet/coordinator";
import { feedCredentials, feedUrl } from "../feed-credentials.js";
import { UsageError } from "../usage-error.js";

interface WatchOpts {
  url: string;
  token?: string;
  tokenFile?: string;
  json?: boolean;
  shelf?: string;
  ca?: string;
}

export function registerWatch(program: Command): void {
  program
    .command("watch")
    .description("the live fleet feed: a table of Pis redrawn in place, or --json lines for scripts")
    .requiredOption("--url <url>", "the coordinator's feed, e.g. ws://[2a00:1098:0:84::10]:7300/feed; several, comma-separated, for coordinators in high availability (the next is tried when one fails)")
    .option("--token <token>", "a watcher or operator token (NAME.SECRET); or --token-file, or $PIFLEET_TOKEN")
    .option("--token-file <file>", "read the token from FILE")
    .option("--ca <file>", "CA certificate (PEM) to trust for wss://")
    .option("--shelf <name>", "only this shelf's Pis (the fleet file's shelves: names; shelf1 for a one-shelf fleet)")
    .option("--json", "one JSON object per line: a snapshot, then deltas and events")
    .action((opts: WatchOpts) => watch(opts));
}

async function watch(opts: WatchOpts): Promise<void> {
  const { token, name } = feedCredentials(opts);
  const urls = opts.url.split(",").map((u) => feedUrl(u.trim()));
  const client = new FleetClient({
    url: urls[0]!,
    urls,
    role: v1.Role.ROLE_WATCHER,
    identity: name,
    token,
    ca: opts.ca ? readFileSync(opts.ca) : undefined,
    maxFrameBytes: 64 * 1024 * 1024,
    // A person is watching: come back soon after a coordinator restart.
    maxBackoffMs: 3000,
    agentVersion: "pifleet-watch",
    logger: createLogger("watch", { level: process.env.PIFLEET_LOG_LEVEL ?? "error" }),
  });
  const mirror = new FeedMirror();
  const out = process.stdout;
  const tty = Boolean(out.isTTY) && !opts.json;
  let connected = false;
  let drawTimer: NodeJS.Timeout | undefined;
  let lastDraw = 0;

  const draw = () => {
    drawTimer = undefined;
    lastDraw = Date.now();
    const lines = renderWatch(mirror, { now: Date.now(), columns: out.columns ?? 120, rows: tty ? (out.rows ?? 40) : 100_000, connected, url: client.url, color: tty, shelf: opts.shelf });
    if (tty) out.write(`\x1b[H${lines.join("\x1b[K\n")}\x1b[K\x1b[J`);
    else out.write(`${lines.join("\n")}\n\n`);
  };
  // Redraws are coalesced: a big fleet sends hundreds of deltas a second, a screen needs a few.
  const scheduleDraw = () => {
    if (drawTimer) return;
    const gap = tty ? 100 : 1000;
    drawTimer = setTimeout(draw, Math.max(0, lastDraw + gap - Date.now()));
  };

  const line = (o: unknown) => out.write(`${JSON.stringify(o)}\n`);
  mirror.on("update", (u: FeedUpdate) => {
    if (!opts.json) return scheduleDraw();
    if (u.kind === "snapshot") {
      line({ type: "snapshot", fleet: mirror.fleet, timeMs: Date.now(), fleetStatus: u.fleetStatus && v1.FleetStatus.toObject(u.fleetStatus, { defaults: true }), pis: u.pis.filter((p) => onShelf(p, opts.shelf)).map(piStatusJson), events: u.events.map(fleetEventJson) });
      return;
    }
    for (const e of u.events) line({ type: "event", ...fleetEventJson(e) });
    const pis = u.pis.filter((p) => onShelf(p, opts.shelf));
    if (pis.length || u.fleetStatus) {
      line({ type: "delta", timeMs: Date.now(), pis: pis.map(piStatusJson), ...(u.fleetStatus ? { fleetStatus: v1.FleetStatus.toObject(u.fleetStatus, { defaults: true }) } : {}) });
    }
  });

  await new Promise<void>((resolve, reject) => {
    let ticker: NodeJS.Timeout | undefined;
    // FleetClient's reconnect timer does not hold the process open; a watcher waiting out a
    // coordinator restart has nothing else to, so this does until the user stops it.
    const keepAlive = setInterval(() => undefined, 60_000);
    const finish = (err?: Error) => {
      clearInterval(keepAlive);
      clearInterval(ticker);
      clearTimeout(drawTimer);
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      if (tty) out.write("\x1b[?25h\x1b[?1049l");
      void client.stop().then(() => (err ? reject(err) : resolve()));
    };
    const onSignal = () => finish();
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    client.on("message", (env) => mirror.apply(env));
    client.on("ready", () => {
      connected = true;
      if (opts.json) line({ type: "connected", url: client.url, as: name, timeMs: Date.now() });
    });
    client.on("disconnected", (why) => {
      connected = false;
      if (opts.json) line({ type: "disconnected", reason: why, timeMs: Date.now() });
      else scheduleDraw();
    });
    client.on("refused", (e) => {
      // Credentials will not get better by retrying.
      if (e.code === "unauthenticated" || e.code === "forbidden") finish(new UsageError(`the coordinator refused ${name}: ${e.code} (${e.reason}): ${e.message}`));
    });
    if (tty) {
      out.write("\x1b[?1049h\x1b[?25l");
      ticker = setInterval(draw, 1000); // "last seen" ages move even when nothing else does
    }
    client.start();
  });
}
