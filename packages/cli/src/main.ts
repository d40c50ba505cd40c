#!/usr/bin/env node
import { Command, CommanderError } from "commander";
import { FleetError } from "@pifleet/core";
import { UsageError } from "./usage-error.js";
import { registerPlan } from "./commands/plan.js";
import { registerInstall } from "./commands/install.js";
import { registerSwitch } from "./commands/switch.js";
import { registerSwitchEmulator } from "./commands/switch-emulator.js";
import { registerEnroll } from "./commands/enroll.js";
import { registerToken } from "./commands/token.js";
import { registerWatch } from "./commands/watch.js";
import { registerCoordinator } from "./commands/coordinator.js";
import { registerDemo } from "./commands/demo.js";
import { registerFault } from "./commands/fault.js";
import { registerOperate } from "./commands/operate.js";

/** Each command lives in its own module and registers itself here. */
const registrars: Array<(program: Command) => void> = [registerPlan, registerInstall, registerSwitch, registerSwitchEmulator, registerEnroll, registerToken, registerWatch, registerCoordinator, registerDemo, registerFault, registerOperate];

export function buildProgram(): Command {
  const program = new Command("pifleet")
    .description("Run a rack of Raspberry Pis as a production web cluster")
    .version("0.1.0")
    .showHelpAfterError()
    .exitOverride();
  for (const register of registrars) register(program);
  return program;
}

async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    if (err instanceof FleetError || err instanceof UsageError) {
      process.stderr.write(`pifleet: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`pifleet: ${err instanceof Error ? err.message : String(err)}\n`);
    if (process.env.PIFLEET_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv);
