#!/usr/bin/env node
// A process of simulated Pi agents (tests and the feed benchmark):
//   node dist/sim/main.js --url ws://[::1]:7300/agent --credentials creds.json [--interval 1000]
//     [--local-address ::1] [--transport lean|fleet-client]
// creds.json: [{"identity": "pi01", "secret": "…"}, …]. Prints one JSON line when every agent is
// connected ({"ready": N, "ms": …}), then a stats line every 5 s; SIGTERM stops it.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { createLogger } from "@pifleet/core";
import { SimFleet, type SimAgentSpec } from "./agents.js";

const { values } = parseArgs({
  options: {
    url: { type: "string" },
    credentials: { type: "string" },
    interval: { type: "string", default: "1000" },
    "local-address": { type: "string" },
    concurrency: { type: "string", default: "200" },
    // lean (default): minimal clients sending pre-encoded reports; fleet-client: FleetClient each.
    transport: { type: "string", default: "lean" },
  },
  strict: true,
});
if (!values.url || !values.credentials) {
  process.stderr.write("usage: sim --url WS_URL --credentials FILE [--interval MS] [--local-address ADDR]\n");
  process.exit(2);
}
const agents = JSON.parse(readFileSync(values.credentials, "utf8")) as SimAgentSpec[];
const logger = createLogger("sim", { level: process.env.PIFLEET_LOG_LEVEL ?? "warn" });
const sim = new SimFleet({
  url: values.url,
  agents,
  intervalMs: Number(values.interval),
  localAddress: values["local-address"],
  connectConcurrency: Number(values.concurrency),
  lean: values.transport !== "fleet-client",
  logger,
});
sim.on("refused", (identity, e) => logger.warn({ identity, code: e.code, reason: e.reason }, "refused"));
const t0 = Date.now();
await sim.start();
process.stdout.write(`${JSON.stringify({ ready: agents.length, ms: Date.now() - t0 })}\n`);
const stats = setInterval(() => process.stdout.write(`${JSON.stringify({ sent: sim.sent, connected: sim.connected })}\n`), 5000);
stats.unref();
const stop = () => {
  clearInterval(stats);
  void sim.stop().then(() => process.exit(0));
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
