import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline/promises";
import { CommanderError, type Command } from "commander";
import { createLogger } from "@pifleet/core";
import { FleetClient, v1 } from "@pifleet/proto";
import { feedCredentials, feedUrl } from "../feed-credentials.js";
import { UsageError } from "../usage-error.js";

type Action = "cycle" | "drain" | "undrain" | "rebuild" | "release" | "power-on-all";

const ACTIONS: Array<{ action: Action; description: string; powers?: boolean }> = [
  { action: "cycle", description: "drain a Pi and power-cycle its switch port now (refused during a fleet alarm or while the fileserver is unhealthy, unless --force)", powers: true },
  { action: "drain", description: "take a Pi out of the load balancer and hold it: automatic recovery leaves it alone until undrain" },
  { action: "undrain", description: "put a held Pi back into the load balancer and under automatic recovery" },
  { action: "rebuild", description: "drain a Pi, switch its port off, rebuild its root filesystem from the golden image, switch it on", powers: true },
  { action: "release", description: "release a quarantined Pi: automatic recovery may act on it again" },
];

interface OperateOpts {
  url?: string;
  token?: string;
  tokenFile?: string;
  reason?: string;
  force?: boolean;
  yes?: boolean;
  timeout: string;
  ca?: string;
}

/** The exit status of a request the coordinator refused (usage errors are 2, through UsageError). */
const REFUSED = 1;
const CONNECT_TIMEOUT_MS = 15_000;

/**
 * `pifleet cycle|drain|undrain|rebuild|release PI`: one OperatorRequest over the feed as an
 * operator, the coordinator's OperatorReply printed. The coordinator audits every request with
 * the operator's name, allowed or refused.
 */
export function registerOperate(program: Command): void {
  const common = (cmd: Command, timeout: string) =>
    cmd
      .option("--url <url>", "the coordinator's feed, e.g. wss://coordinator:7300/feed (or $PIFLEET_URL)")
      .option("--token <token>", "an operator token, NAME.SECRET (or --token-file, or $PIFLEET_TOKEN)")
      .option("--token-file <file>", "read the token from FILE")
      .option("--reason <text>", "why: kept in the audit log with your name")
      .option("--timeout <seconds>", "give up waiting for the coordinator's answer after this long", timeout)
      .option("--ca <file>", "CA certificate (PEM) to trust for wss://")
      .exitOverride((err) => {
        throw err.exitCode === 1 ? new CommanderError(2, err.code, err.message) : err;
      });
  // Whole shelves booting at once overwhelm DHCP/TFTP/NFS and boot ROMs give up: the coordinator paces it.
  common(
    program
      .command("power-on")
      .description("switch every Pi's port on, in waves (recovery.waveSize at a time, default 8): the next wave when the last reported healthy or timed out; silent netbooted Pis are cycled again, then quarantined")
      .requiredOption("--all", "every Pi not held, quarantined or being remediated (the only form today)"),
    "120",
  ).action((opts: OperateOpts) => operate("power-on-all", "", opts, false));
  for (const { action, description, powers } of ACTIONS) {
    const cmd = program
      .command(action)
      .description(description)
      .argument("<pi>", "the Pi's name, e.g. pi03")
      .option("--url <url>", "the coordinator's feed, e.g. wss://coordinator:7300/feed (or $PIFLEET_URL)")
      .option("--token <token>", "an operator token, NAME.SECRET (or --token-file, or $PIFLEET_TOKEN)")
      .option("--token-file <file>", "read the token from FILE")
      .option("--reason <text>", "why: kept in the audit log with your name")
      .option("--timeout <seconds>", "give up waiting for the coordinator's answer after this long", action === "rebuild" ? "900" : "120")
      .option("--ca <file>", "CA certificate (PEM) to trust for wss://");
    if (powers) {
      cmd.option("--force", "act even during a fleet alarm or while the fileserver is unhealthy");
      cmd.option("-y, --yes", "do not ask for confirmation");
    }
    // A missing argument or an unknown option is a usage error: status 2, as for every other one here.
    cmd.exitOverride((err) => {
      throw err.exitCode === 1 ? new CommanderError(2, err.code, err.message) : err;
    });
    cmd.action((pi: string, opts: OperateOpts) => operate(action, pi, opts, Boolean(powers)));
  }
}

async function operate(action: Action, pi: string, opts: OperateOpts, powers: boolean): Promise<void> {
  const rawUrl = opts.url ?? process.env.PIFLEET_URL;
  if (!rawUrl) throw new UsageError("--url or $PIFLEET_URL is required (the coordinator's feed, e.g. ws://[::1]:7300/feed)");
  const url = feedUrl(rawUrl);
  const { token, name } = feedCredentials(opts, "an operator token");
  const timeoutS = Number(opts.timeout);
  if (!Number.isFinite(timeoutS) || timeoutS <= 0) throw new UsageError(`--timeout: "${opts.timeout}" must be a positive number of seconds`);

  // A power action on the wrong Pi takes a server down: a person at a terminal confirms it.
  if (powers && !opts.yes && process.stdin.isTTY && process.stdout.isTTY) {
    const what = action === "rebuild" ? `switch ${pi} off and rebuild its root filesystem from the golden image` : `power-cycle ${pi}`;
    if (!(await confirm(`${what}${opts.force ? " (forced past the guards)" : ""}? [y/N] `))) {
      process.stderr.write(`pifleet: ${action} ${pi}: not confirmed, nothing done\n`);
      process.exitCode = REFUSED;
      return;
    }
  }

  const reply = await request(
    { url, token, identity: name, ca: opts.ca ? readFileSync(opts.ca) : undefined, timeoutMs: timeoutS * 1000 },
    { id: randomUUID(), action, pi, reason: opts.reason ?? "", force: Boolean(opts.force) },
  );
  if (reply.ok) {
    process.stdout.write(`${reply.message}\n`);
    return;
  }
  process.stderr.write(`pifleet: ${action}${pi ? ` ${pi}` : ""} refused: ${reply.message}\n`);
  process.exitCode = REFUSED;
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

/**
 * Connects as an operator, sends one request, resolves with its reply. A refusal of the
 * credentials is a reply too (not ok), since retrying will not change it.
 */
function request(
  c: { url: string; token: string; identity: string; ca?: Buffer; timeoutMs: number },
  req: v1.OperatorRequest.$Properties & { id: string },
): Promise<{ ok: boolean; message: string }> {
  const client = new FleetClient({
    url: c.url,
    role: v1.Role.ROLE_OPERATOR,
    identity: c.identity,
    token: c.token,
    ca: c.ca,
    initialBackoffMs: 200,
    maxBackoffMs: 2000,
    agentVersion: "pifleet-cli",
    logger: createLogger("operate", { level: process.env.PIFLEET_LOG_LEVEL ?? "error" }),
  });
  return new Promise((resolve, reject) => {
    let sent = false;
    const connectMs = Math.min(CONNECT_TIMEOUT_MS, c.timeoutMs);
    let timer = setTimeout(() => finish(() => reject(new Error(`could not connect to ${c.url} within ${connectMs / 1000} s`))), connectMs);
    let settled = false;
    const finish = (done: () => void) => {
      // Stopping the client closes the socket, which reports a disconnect: the first outcome wins.
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void client.stop().then(done);
    };
    client.on("ready", () => {
      // Sent once: after a reconnect the coordinator may already be carrying the first one out.
      if (sent) return;
      sent = true;
      client.send({ operatorRequest: req }, false);
      clearTimeout(timer);
      timer = setTimeout(
        () => finish(() => reject(new Error(`no answer from the coordinator within ${c.timeoutMs / 1000} s; see the event log for whether ${req.action} ${req.pi} was carried out`))),
        c.timeoutMs,
      );
    });
    client.on("message", (env) => {
      if (env.body !== "operatorReply") return;
      const r = env.operatorReply as v1.OperatorReply;
      if (r.id === req.id) finish(() => resolve({ ok: r.ok, message: r.message }));
    });
    client.on("refused", (e) => finish(() => resolve({ ok: false, message: `the coordinator refused ${c.identity}: ${e.code} (${e.reason}): ${e.message}` })));
    client.on("disconnected", (why) => {
      if (sent) finish(() => reject(new Error(`the connection closed (${why}) before the coordinator answered; see the event log for whether ${req.action} ${req.pi} was carried out`)));
    });
    client.start();
  });
}
