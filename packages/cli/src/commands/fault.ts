import path from "node:path";
import type { Command } from "commander";
import { controlRequest } from "../demo/control.js";
import { DEFAULT_DEMO_DIR } from "../demo/run.js";
import { PI_FAULTS } from "../demo/emulated-pi.js";
import { UsageError } from "../usage-error.js";

export function registerFault(program: Command): void {
  program
    .command("fault")
    .description(`inject a fault into a Pi of a running demo (${PI_FAULTS.join(", ")}) or into its fileserver (nfs-down, nfs-up)`)
    .argument("<pi>", "the Pi's name, e.g. pi03")
    .argument("<kind>", PI_FAULTS.join("|"))
    .option("--dir <dir>", "the demo's folder (as given to pifleet demo --dir)", DEFAULT_DEMO_DIR)
    .action(async (pi: string, kind: string, opts: { dir: string }) => {
      const fileserverFault = pi === "fileserver" && (kind === "nfs-down" || kind === "nfs-up");
      if (!fileserverFault && !PI_FAULTS.includes(kind as never)) {
        throw new UsageError(`kind: "${kind}" is not one of ${PI_FAULTS.join(", ")} (or, for the fileserver, nfs-down / nfs-up)`);
      }
      const r = await controlRequest(path.join(opts.dir, "demo.sock"), { action: "fault", pi, kind });
      if (!r.ok) throw new UsageError(r.message);
      process.stdout.write(`${r.message}\n`);
    });
}
