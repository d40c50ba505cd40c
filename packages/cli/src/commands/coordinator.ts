import { spawnSync } from "node:child_process";
import type { Command } from "commander";
import { loadCoordinatorConfig, loadPlannedFleet, runCoordinatorDaemon } from "@pifleet/coordinator";
import { UsageError } from "../usage-error.js";

export function registerCoordinator(program: Command): void {
  const cmd = program.command("coordinator").description("the coordinator service");
  cmd
    .command("run")
    .description("run the coordinator in the foreground (what the systemd unit runs); stops on SIGTERM/SIGINT, reloads the fleet file on SIGHUP")
    .requiredOption("--config <file>", "coordinator config (YAML), e.g. /etc/pifleet/coordinator.yaml")
    .action(async (opts: { config: string }) => {
      await runCoordinatorDaemon(opts.config);
    });
  cmd
    .command("reload")
    .description(
      "check the fleet file, then have the running coordinator apply it in place (systemctl reload, i.e. SIGHUP): agents stay connected; a file the coordinator refuses keeps the running fleet",
    )
    .option("--config <file>", "the running coordinator's config (names the fleet file)", "/etc/pifleet/coordinator.yaml")
    .option("--unit <name>", "its systemd unit", "pifleet-coordinator")
    .option("--pid <pid>", "signal this process instead of going through systemd (a coordinator run by hand)")
    .action((opts: { config: string; unit: string; pid?: string }) => {
      // The same loader and errors as the daemon's start-up: a bad file is reported here, naming
      // the field, and the coordinator is not disturbed at all.
      const config = loadCoordinatorConfig(opts.config);
      const next = loadPlannedFleet(config.fleet);
      process.stdout.write(`${config.fleet}: fleet ${next.desired.fleet}, ${next.desired.pis.length} Pis: valid\n`);
      if (opts.pid !== undefined) {
        const pid = Number(opts.pid);
        if (!Number.isInteger(pid) || pid <= 1) throw new UsageError(`--pid: "${opts.pid}" is not a process id`);
        process.kill(pid, "SIGHUP");
        process.stdout.write(`sent SIGHUP to ${pid}; the coordinator logs what changed (a "reload" event on the feed)\n`);
        return;
      }
      const since = `@${Math.floor(Date.now() / 1000)}`;
      // systemctl reload returns once the daemon says READY=1 again (it sends RELOADING=1 first).
      const r = spawnSync("systemctl", ["reload", opts.unit], { stdio: ["ignore", "inherit", "inherit"] });
      if (r.error) throw new Error(`systemctl: ${r.error.message}`);
      if (r.status !== 0) throw new Error(`systemctl reload ${opts.unit} failed (exit ${r.status}); see journalctl -u ${opts.unit}`);
      const j = spawnSync("journalctl", ["-u", opts.unit, "--since", since, "-o", "cat", "--no-pager"], { encoding: "utf8" });
      const lines = (j.stdout ?? "").split("\n").map(messageOf).filter((m) => m.startsWith("fleet file"));
      process.stdout.write(lines.length ? `${lines.join("\n")}\n` : `reloaded ${opts.unit}; its journal says what changed (journalctl -u ${opts.unit})\n`);
    });
}

/** The unit logs JSON (PIFLEET_LOG_FORMAT=json): the message of a line, with its error if any. */
function messageOf(line: string): string {
  if (!line.startsWith("{")) return line;
  try {
    const o = JSON.parse(line) as { msg?: string; err?: string };
    return o.err ? `${o.msg}: ${o.err}` : (o.msg ?? "");
  } catch {
    return line;
  }
}
