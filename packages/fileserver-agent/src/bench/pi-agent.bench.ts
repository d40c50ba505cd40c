import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { checkFleet, fileserverView, goalMet, parseYaml, plan, type BenchRow } from "@pifleet/core";
import { Fileserver } from "../fileserver.js";
import { initSandbox } from "../sandbox.js";
import { ExecRunner } from "../runner.js";

const examples = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../../../examples");
const OFF = { network: "off", nfs: "off", notes: [] } as const;
const RUNS = 15;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * What the Pi agent's files cost the daemon's observation (every 5 s): per root, the config, the
 * secret, the root's passwd and group, and the Pi's secret on the fileserver — five more bounded
 * no-follow reads beside the identity's three.
 */
export async function run(): Promise<BenchRow[]> {
  const prefix = mkdtempSync(path.join(tmpdir(), "pifleet-pi-agent-bench-"));
  try {
    const fleet = parseYaml(readFileSync(path.join(examples, "shelf-96.yaml"), "utf8")) as Record<string, unknown>;
    fleet.piAgent = { coordinator: { url: "wss://coordinator:7300/agent" } };
    const p = fileserverView(plan(checkFleet(fleet)));
    initSandbox(prefix, p);
    const golden = path.join(prefix, p.fileserver.goldenImage);
    writeFileSync(path.join(golden, "etc/passwd"), "root:x:0:0::/root:/bin/sh\npifleet:x:998:998::/nonexistent:/usr/sbin/nologin\n");
    writeFileSync(path.join(golden, "etc/group"), "root:x:0:\npifleet:x:998:\n");
    const secrets = path.join(prefix, p.piAgent!.secrets);
    mkdirSync(secrets, { recursive: true, mode: 0o700 });
    for (const pi of p.pis) writeFileSync(path.join(secrets, `${pi.name}.secret`), `bench-secret-${pi.name}\n`, { mode: 0o600 });
    const fs = new Fileserver({ plan: p, runner: new ExecRunner(), live: { ...OFF, notes: [] }, prefix });
    const built = await fs.apply();
    if (!built.result?.ok) throw new Error(`apply failed: ${built.result?.failed?.error}`);

    const observe: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      const planned = await fs.planApply();
      observe.push(performance.now() - t0);
      if (planned.diff.actions.length || planned.diff.drift.length) throw new Error("a converged sandbox has drift");
    }
    const obsMs = median(observe);
    return [
      {
        name: `plan (observe + diff, identity and Pi agent files included) of ${p.pis.length} converged roots, median of ${RUNS}`,
        value: obsMs,
        unit: "ms",
        goal: goalMet("≤ 500 ms (a tenth of the 5 s report interval)", obsMs <= 500),
        note: `${((obsMs * 1000) / p.pis.length).toFixed(0)} µs per root`,
      },
    ];
  } finally {
    rmSync(prefix, { recursive: true, force: true });
  }
}
