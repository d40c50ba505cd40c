#!/usr/bin/env node
// The project's one test command (README, .ci/run): build, check generated code, run every
// suite, and close with the line CI reads: "N passed, N failed".
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, existsSync, rmSync } from "node:fs";
import path from "node:path";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const artifacts = path.join(root, ".artifacts");
mkdirSync(artifacts, { recursive: true });
const run = (cmd, args) => spawnSync(cmd, args, { cwd: root, stdio: "inherit" }).status ?? 1;

let failedSteps = 0;
if (run("pnpm", ["-s", "build"]) !== 0) failedSteps++;
if (run("node", ["packages/proto/scripts/generate.mjs", "--check"]) !== 0) failedSteps++;
// Test files (and the VM lab's harness) are type-checked too, against the packages' built types.
if (failedSteps === 0 && run("pnpm", ["exec", "tsc", "-p", "tsconfig.test.json"]) !== 0) failedSteps++;

// The shelf lab (five VMs for about 15 minutes) runs alone, after everything else: on two cores it
// would starve the suites that judge timings, and they it. Arguments (a filter) make one run.
const SHELF_LAB = "test/lab/shelf-vm.test.ts";
const extra = process.argv.slice(2);
const phases = extra.length ? [{ name: "vitest", args: extra }] : [{ name: "vitest", args: ["--exclude", SHELF_LAB] }, { name: "vitest-shelf-lab", args: [SHELF_LAB] }];

let passed = 0;
let failed = failedSteps;
let vitestStatus = failedSteps === 0 ? 0 : 1;
for (const phase of failedSteps === 0 ? phases : []) {
  const report = path.join(artifacts, `${phase.name}.json`);
  // A report left by an earlier run must not stand in for one this run did not write.
  rmSync(report, { force: true });
  const status = run("pnpm", ["exec", "vitest", "run", "--reporter=default", "--reporter=json", `--outputFile.json=${report}`, ...phase.args]);
  if (status !== 0) vitestStatus = status;
  if (!existsSync(report)) {
    failed++;
    continue;
  }
  const r = JSON.parse(readFileSync(report, "utf8"));
  passed += r.numPassedTests;
  failed += r.numFailedTests + (r.numTotalTestSuites > 0 && r.numFailedTestSuites > 0 && r.numFailedTests === 0 ? r.numFailedTestSuites : 0);
  const skipped = r.numPendingTests + r.numTodoTests;
  if (skipped > 0) {
    process.stdout.write(`${skipped} tests were skipped: a skipped test is not a passing one\n`);
    failed += skipped;
  }
  if (r.numTotalTests === 0) failed++;
}
if (vitestStatus !== 0 && failed === 0) failed = 1;
process.stdout.write(`${passed} passed, ${failed} failed\n`);
process.exit(failed === 0 ? 0 : 1);
