#!/usr/bin/env node
import { runCli } from "./program.js";

/** The `pifleet-fileserver` command: plan, apply, rebuild, rollback, sync-content, report, init-sandbox. */
process.exitCode = await runCli(process.argv);
