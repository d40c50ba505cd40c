import type { Command } from "commander";
import { runCoordinatorDaemon } from "@pifleet/coordinator";

export function registerCoordinator(program: Command): void {
  const cmd = program.command("coordinator").description("the coordinator service");
  cmd
    .command("run")
    .description("run the coordinator in the foreground (what the systemd unit runs); stops on SIGTERM/SIGINT")
    .requiredOption("--config <file>", "coordinator config (YAML), e.g. /etc/pifleet/coordinator.yaml")
    .action(async (opts: { config: string }) => {
      await runCoordinatorDaemon(opts.config);
    });
}
