import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { AgentConfig } from "./config.js";
import * as core from "@pifleet/core/runtime";
import { outstandingStats } from "./bounded-stat.js";

const USAGE = "usage: pi-agent --config /etc/pifleet/pi-agent.yaml [--check [--json]]";
/** How long each start step may take before systemd gives up on the start: the unit's TimeoutStartSec. */
const START_STEP_USEC = 60_000_000;

/**
 * `node dist/main.js --config FILE` runs the agent; `--check` only validates FILE (and `--json`
 * prints the result with every default filled in).
 */
export async function runDaemon(argv: string[]): Promise<void> {
  let args;
  try {
    args = parseArgs({ args: argv, options: { config: { type: "string", short: "c" }, check: { type: "boolean" }, json: { type: "boolean" } }, strict: true }).values;
  } catch (err) {
    fail(`pi-agent: ${(err as Error).message}\n${USAGE}`, 2);
  }
  if (!args.config) fail(USAGE, 2);
  if (args.check) return check(args.config, Boolean(args.json));

  // Before anything slow: a Pi starting Node 18 twice (here and for the config check) from an
  // SD card or NFS root at boot may need much of TimeoutStartSec=. Each EXTEND_TIMEOUT_USEC tells
  // systemd the start is progressing, so the timeout counts from the last step, not from exec;
  // a start that hangs still fails after a minute without news.
  const notifier = core.createNotifier();
  const progressing = () => notifier.notify({ EXTEND_TIMEOUT_USEC: START_STEP_USEC });
  void progressing();
  const config = loadConfigApart(args.config);
  void progressing();
  let secret: string;
  let ca: Buffer | undefined;
  try {
    secret = core.readSecret({ file: config.secretFile });
    if (config.coordinator.ca) {
      try {
        ca = readFileSync(config.coordinator.ca);
      } catch (err) {
        throw new Error(`coordinator.ca: cannot read ${config.coordinator.ca}: ${(err as NodeJS.ErrnoException).code ?? err}`);
      }
    }
  } catch (err) {
    fail(`pi-agent: ${args.config}: ${(err as Error).message}`, 1);
  }

  const { PiAgent } = await import("./agent.js");
  const log = core.createLogger("pi-agent", config.logLevel ? { level: config.logLevel } : {});
  const agent = new PiAgent({ config, secret, ca, logger: log, notifier });
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "stopping");
    setTimeout(() => exitAfterSignal(signal), 3000).unref();
    void agent.stop().finally(() => exitAfterSignal(signal));
  };
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
  process.on("uncaughtException", (err) => {
    log.fatal({ err: err.message, stack: err.stack }, "uncaught exception");
    if (outstandingStats() === 0) process.exit(1);
    // process.exit() would wait forever on a stat stuck in the pool; systemd restarts us either way.
    setTimeout(() => process.kill(process.pid, "SIGKILL"), 200);
  });
  agent.start();
}

async function check(file: string, json: boolean): Promise<void> {
  const { loadAgentConfig } = await import("./config.js");
  try {
    const config = loadAgentConfig(file);
    process.stdout.write(json ? `${JSON.stringify(config)}\n` : `${file}: ok\n`);
  } catch (err) {
    fail((err as Error).message, 1);
  }
}

/**
 * Validates the config in a short-lived child process (`--check --json`): the YAML parser and zod
 * then never enter the daemon, which saves about 9 MiB of resident memory on every Pi for as long
 * as it runs, at the price of one extra Node start when the agent starts.
 */
function loadConfigApart(file: string): AgentConfig {
  const main = fileURLToPath(new URL("./main.js", import.meta.url));
  try {
    const out = execFileSync(process.execPath, [main, "--config", file, "--check", "--json"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 60_000 });
    return JSON.parse(out) as AgentConfig;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    fail(`pi-agent: ${(e.stderr ?? "").trim() || e.message}`, 1);
  }
}

/**
 * Exits 0 after a clean stop. With a stat stuck on a dead NFS root, process.exit() would block
 * joining the thread pool, so the signal is re-raised with its default action instead: the kernel
 * ends the process (the stuck wait is killable), and systemd counts death by SIGTERM as clean.
 */
function exitAfterSignal(signal: NodeJS.Signals): void {
  if (outstandingStats() === 0) process.exit(0);
  process.removeAllListeners(signal);
  // pino writes asynchronously and only exit handlers flush it, which this path skips: give the
  // last lines a moment to reach stderr (best effort; the log may sit on the dead root anyway).
  setTimeout(() => process.kill(process.pid, signal), 200);
}

function fail(message: string, code: number): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}
