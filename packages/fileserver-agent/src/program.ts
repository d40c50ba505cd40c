import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { createLogger, FleetError, fileserverView, loadFleet, plan as derivePlan, UnknownNameError, type FileserverView } from "@pifleet/core";
import { RefusedError, UnknownPiError, type Outcome } from "./fileserver.js";
import type { LiveRequest } from "./host/live.js";
import { openFileserver, resolvePrefix } from "./open.js";
import { outcomeJson, renderHeader, renderPlanned, summarize } from "./output.js";
import { PathError } from "./safety.js";
import { initSandbox } from "./sandbox.js";

/** Exit statuses a shell script (the VM lab) can branch on. */
export const EXIT = { ok: 0, failed: 1, usage: 2, drift: 3, refused: 4 } as const;

interface GlobalOpts {
  fleet: string;
  fileserver?: string;
  rootPrefix?: string;
  live: LiveRequest;
  dryRun?: boolean;
  force?: boolean;
  piPowered?: boolean;
  json?: boolean;
}

function yesNo(value: string): boolean {
  if (/^(yes|true|on|1)$/i.test(value)) return true;
  if (/^(no|false|off|0)$/i.test(value)) return false;
  throw new InvalidArgumentError("expected yes or no");
}

/** This fileserver's part of the plan: the one named by --fileserver, or the fleet's only one. */
function viewOf(opts: GlobalOpts): FileserverView {
  try {
    return fileserverView(derivePlan(loadFleet(opts.fleet)), opts.fileserver);
  } catch (err) {
    if (err instanceof UnknownNameError) throw new FleetError([{ path: "--fileserver", message: err.message }], opts.fleet);
    throw err;
  }
}

async function open(opts: GlobalOpts) {
  const plan = viewOf(opts);
  // Logs go to stderr; stdout carries the command's own output.
  const logger = createLogger("pifleet-fileserver", { level: process.env.PIFLEET_LOG_LEVEL ?? "warn" });
  return openFileserver({ plan, prefix: opts.rootPrefix, live: opts.live, logger });
}

function write(text: string): void {
  process.stdout.write(text);
}

/** Prints an outcome; returns the exit status. */
function finish(outcome: Outcome, opts: GlobalOpts, header: string): number {
  if (opts.json) {
    write(`${JSON.stringify(outcomeJson(outcome), null, 2)}\n`);
  } else {
    write(header);
    if (outcome.dryRun) write(`${renderPlanned(outcome, true)}dry run: nothing changed\n`);
    else write(`${summarize(outcome)}\n`);
  }
  return outcome.result && !outcome.result.ok ? EXIT.failed : EXIT.ok;
}

export function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command("pifleet-fileserver")
    .description("Make this fileserver match the fleet plan: VLAN interfaces, NFS exports, Pi root filesystems, site content")
    .addOption(new Option("--fleet <file>", "fleet file").env("PIFLEET_FLEET").default("/etc/pifleet/fleet.yaml"))
    .addOption(new Option("--fileserver <name>", "which of the fleet's fileservers this is (needed when it lists several)").env("PIFLEET_FILESERVER"))
    .addOption(new Option("--root-prefix <dir>", "act on a sandbox folder as if it were / (ip and exportfs are then emulated)").env("PIFLEET_ROOT_PREFIX"))
    .addOption(new Option("--live <mode>", "how to reach the kernel: auto, host, emulate or off").choices(["auto", "host", "emulate", "off"]).default("auto"))
    .option("--dry-run", "print the exact commands instead of running them")
    .option("--force", "rebuild or roll back even if the Pi may be powered")
    .option("--pi-powered <yes|no>", "the Pi's power state, as the switch reports it (default: assume powered)", yesNo)
    .option("--json", "machine-readable output")
    .showHelpAfterError()
    .exitOverride();

  const globals = (cmd: Command) => cmd.optsWithGlobals() as GlobalOpts;

  program
    .command("plan")
    .description("show drift from the plan and the exact commands apply would run")
    .option("--check", `exit ${EXIT.drift} when there is drift`)
    .action(async (o: { check?: boolean }, cmd: Command) => {
      const opts = globals(cmd);
      const fs = await open(opts);
      const planned = await fs.planApply();
      if (opts.json) write(`${JSON.stringify(outcomeJson({ ...planned, dryRun: true }), null, 2)}\n`);
      else write(renderHeader(fs) + renderPlanned(planned));
      setExit(o.check && planned.diff.drift.length > 0 ? EXIT.drift : EXIT.ok);
    });

  program
    .command("apply")
    .description("create what is missing (interfaces, exports, roots, site content); leave what is not pifleet's alone")
    .action(async (_o: unknown, cmd: Command) => {
      const opts = globals(cmd);
      const fs = await open(opts);
      setExit(finish(await fs.apply(opts.dryRun), opts, renderHeader(fs)));
    });

  program
    .command("rebuild")
    .argument("<pi>", "a Pi name (pi01) or its private address (10.46.189.2)")
    .description("build a fresh root from the golden image beside the old one and swap it in; the old one is kept for rollback")
    .action(async (pi: string, _o: unknown, cmd: Command) => {
      const opts = globals(cmd);
      const fs = await open(opts);
      setExit(finish(await fs.rebuild(pi, { force: opts.force, piPowered: opts.piPowered }, opts.dryRun), opts, renderHeader(fs)));
    });

  program
    .command("rollback")
    .argument("<pi>", "a Pi name or its private address")
    .description("swap the root and the one before the last rebuild")
    .action(async (pi: string, _o: unknown, cmd: Command) => {
      const opts = globals(cmd);
      const fs = await open(opts);
      setExit(finish(await fs.rollback(pi, { force: opts.force, piPowered: opts.piPowered }, opts.dryRun), opts, renderHeader(fs)));
    });

  program
    .command("sync-content")
    .argument("<dir>", "the site's files")
    .description("put a new site version into every root and switch each atomically (var/www/html → .pifleet-content-<version>)")
    .action(async (dir: string, _o: unknown, cmd: Command) => {
      const opts = globals(cmd);
      const fs = await open(opts);
      setExit(finish(await fs.syncContent(dir, opts.dryRun), opts, renderHeader(fs)));
    });

  program
    .command("report")
    .description("print the report the agent sends the coordinator, as JSON")
    .action(async (_o: unknown, cmd: Command) => {
      const opts = globals(cmd);
      const fs = await open(opts);
      const planned = await fs.planApply();
      // Loaded here only: the protocol library is the slowest import, and only this command needs it.
      const { buildReport } = await import("./report.js");
      const report = buildReport(fs.plan, fs.plan.fileserver.name, planned.observed, planned.diff.drift);
      write(`${JSON.stringify(report.toJSON(), null, 2)}\n`);
      setExit(report.healthy ? EXIT.ok : EXIT.failed);
    });

  program
    .command("init-sandbox")
    .description("prepare a --root-prefix folder: a tiny golden image and Debian's /etc/network/interfaces")
    .action(async (_o: unknown, cmd: Command) => {
      const opts = globals(cmd);
      const prefix = resolvePrefix(opts.rootPrefix);
      const created = initSandbox(prefix, viewOf(opts));
      write(created.length ? `created:\n${created.map((c) => `  ${c}`).join("\n")}\n` : "sandbox already prepared\n");
    });

  return program;
}

/**
 * `pifleet-fileserver …` with `argv` as Node gives it (node, script, args…); returns the exit
 * status. Shared by the `pifleet-fileserver` bin (dist/cli.js) and the installed bundle's
 * main.js, which runs it when given a subcommand.
 */
export async function runCli(argv: string[]): Promise<number> {
  let code: number = EXIT.ok;
  try {
    await buildProgram((c) => (code = c)).parseAsync(argv);
    return code;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : EXIT.usage;
    const msg = (err as Error).message ?? String(err);
    if (err instanceof RefusedError) {
      process.stderr.write(`pifleet-fileserver: refused: ${msg}\n`);
      return EXIT.refused;
    }
    if (err instanceof FleetError || err instanceof UnknownPiError || err instanceof PathError) {
      process.stderr.write(`pifleet-fileserver: ${msg}\n`);
      return EXIT.usage;
    }
    process.stderr.write(`pifleet-fileserver: ${msg}\n`);
    if (process.env.PIFLEET_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    return EXIT.failed;
  }
}
