#!/usr/bin/env node
// The coordinator service: `node dist/main.js --config /etc/pifleet/coordinator.yaml`.
import { parseArgs } from "node:util";
import { FleetError } from "@pifleet/core";
import { runCoordinatorDaemon } from "./daemon.js";

let config: string | undefined;
try {
  ({ config } = parseArgs({ options: { config: { type: "string", short: "c" } }, strict: true }).values);
} catch (err) {
  process.stderr.write(`pifleet-coordinator: ${(err as Error).message}\n`);
  process.exit(2);
}
if (!config) {
  process.stderr.write("usage: pifleet-coordinator --config /etc/pifleet/coordinator.yaml\n");
  process.exit(2);
}
try {
  await runCoordinatorDaemon(config);
  process.exit(0);
} catch (err) {
  process.stderr.write(`pifleet-coordinator: ${(err as Error).message}\n`);
  process.exit(err instanceof FleetError ? 2 : 1);
}
