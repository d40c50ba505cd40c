import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { loadFleet, plan, renderPlanFiles, renderPlanTable } from "@pifleet/core";

export function registerPlan(program: Command): void {
  program
    .command("plan")
    .description("derive the addressing plan from a fleet file and print it or write its files")
    .argument("<fleet>", "fleet file (YAML)")
    .option("--json", "print the plan as JSON")
    .option("--out <dir>", "write cmdline.txt, interfaces, exports, switch table and HAProxy backend under DIR")
    .action((file: string, opts: { json?: boolean; out?: string }) => {
      const derived = plan(loadFleet(file));
      if (opts.out) {
        const written: string[] = [];
        for (const [rel, text] of renderPlanFiles(derived)) {
          const target = path.join(opts.out, rel);
          mkdirSync(path.dirname(target), { recursive: true });
          writeFileSync(target, text);
          written.push(target);
        }
        process.stdout.write(`wrote ${written.length} files under ${opts.out}\n`);
        return;
      }
      process.stdout.write(opts.json ? `${JSON.stringify(derived, null, 2)}\n` : renderPlanTable(derived));
    });
}
