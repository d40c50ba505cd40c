import type { Command } from "commander";
import { createLogger } from "@pifleet/core";
import { runDemo } from "../demo/run.js";
import { UsageError } from "../usage-error.js";

export function registerDemo(program: Command): void {
  program
    .command("demo")
    .description("run an emulated shelf on this machine: coordinator, PoE switch emulator, HAProxy, fileserver agent and one Pi agent per Pi")
    .option("--pis <n>", "number of Pis (1-250; per shelf with --shelves)", "8")
    .option("--shelves <n>", "number of shelves (1-8), each its own PoE switch emulator with the same ports and VLAN ids", "1")
    .option("--dir <dir>", "keep the demo's files in DIR (default: a temporary folder, removed on exit)")
    .option("--port <port>", "coordinator port (dashboard and agents)", "7300")
    .option("--http-port <port>", "HAProxy's frontend port", "8080")
    .action(async (opts: { pis: string; shelves: string; dir?: string; port: string; httpPort: string }) => {
      const pis = Number(opts.pis);
      if (!Number.isInteger(pis) || pis < 1 || pis > 250) throw new UsageError(`--pis: "${opts.pis}" must be a whole number from 1 to 250`);
      const shelves = Number(opts.shelves);
      if (!Number.isInteger(shelves) || shelves < 1 || shelves > 8) throw new UsageError(`--shelves: "${opts.shelves}" must be a whole number from 1 to 8`);
      const port = Number(opts.port);
      const httpPort = Number(opts.httpPort);
      for (const [flag, v] of [["--port", port], ["--http-port", httpPort]] as const) {
        if (!Number.isInteger(v) || v < 1 || v > 65535) throw new UsageError(`${flag}: must be a TCP port`);
      }
      await runDemo({ pis, shelves, dir: opts.dir, port, httpPort, logger: createLogger("demo"), out: (l) => process.stdout.write(`${l}\n`) });
    });
}
