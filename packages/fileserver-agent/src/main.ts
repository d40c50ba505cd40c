#!/usr/bin/env node
import { readFileSync, statSync } from "node:fs";
import { parseArgs } from "node:util";
import { createLogger, createNotifier, FleetError, readSecret } from "@pifleet/core";
import { FileserverAgent } from "./agent.js";
import { loadFileserverConfig } from "./config.js";
import { isDaemonInvocation } from "./dispatch.js";

/**
 * `node dist/main.js --config /etc/pifleet/fileserver.yaml`: the fileserver agent daemon.
 * `node dist/main.js apply|plan|rebuild PI|… [options]`: the `pifleet-fileserver` command, so an
 * installed fileserver (which has this bundle only) can run it: see dispatch.ts.
 */
async function daemon(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: "string", default: "/etc/pifleet/fileserver.yaml" } }, strict: true });
  const file = values.config!;
  const cfg = loadFileserverConfig(file);
  const logger = createLogger("fileserver-agent", cfg.logLevel ? { level: cfg.logLevel } : {});
  const secret = readSecret({ file: cfg.secretFile });
  if ((statSync(cfg.secretFile).mode & 0o077) !== 0) logger.warn({ file: cfg.secretFile }, "secret file is readable by group or others; chmod 600 it");
  const ca = cfg.coordinator.ca ? readFileSync(cfg.coordinator.ca, "utf8") : undefined;
  const notifier = createNotifier();
  const agent = new FileserverAgent(cfg, { logger, secret, notifier, ca });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "stopping");
    await agent.stop();
    notifier.close();
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));

  await agent.start();
  logger.info({ coordinator: cfg.coordinator.url, identity: cfg.identity, interval: cfg.intervalMs, dryRun: cfg.dryRun }, "fileserver agent running");
}

if (isDaemonInvocation(process.argv.slice(2))) {
  daemon().catch((err) => {
    const msg = err instanceof FleetError ? err.message : (err as Error).message;
    process.stderr.write(`pifleet fileserver agent: ${msg}\n`);
    process.exit(err instanceof FleetError ? 2 : 1);
  });
} else {
  // Loaded only here: the daemon never loads the command line's code.
  const { runCli } = await import("./program.js");
  process.exitCode = await runCli(process.argv);
}
