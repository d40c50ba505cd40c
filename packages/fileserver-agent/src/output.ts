import { textTable } from "@pifleet/core";
import type { Fileserver, Outcome, Planned } from "./fileserver.js";
import { formatActions } from "./reconcile/execute.js";
import { formatStep } from "./reconcile/steps.js";

export function renderHeader(fs: Fileserver): string {
  const p = fs.plan;
  const lines = [
    `fileserver ${p.fileserver.name}, fleet ${p.fleet}: ${p.pis.length} Pis, export root ${fs.layout.exportRoot}, network ${p.fileserver.network}`,
    `live: network ${fs.live.network}, nfs ${fs.live.nfs}`,
    ...fs.live.notes.map((n) => `  note: ${n}`),
  ];
  return `${lines.join("\n")}\n`;
}

/** Drift, roots and the actions that would fix the drift: what `plan` prints. */
export function renderPlanned(planned: Planned, verbose = false): string {
  const out: string[] = [];
  const { drift, actions } = planned.diff;
  const obs = planned.observed;
  if (obs.errors.length) out.push(...obs.errors.map((e) => `error: ${e}`), "");
  if (drift.length) {
    out.push(`drift (${drift.length}):`, textTable(["kind", "subject", "detail"], drift.map((d) => [d.kind, d.subject, d.detail])), "");
  } else {
    out.push("drift: none", "");
  }
  if (obs.roots.length) {
    out.push(
      "roots:",
      textTable(
        ["pi", "root", "state", "previous", "site"],
        obs.roots.map((r) => [r.pi.name, r.paths.root, r.state, r.hasPrevious ? "yes" : "-", r.content.version || "-"]),
      ),
      "",
    );
  }
  if (obs.nfsRunning !== undefined) out.push(`nfs server: ${obs.nfsRunning ? "running" : "NOT running"}`, "");
  for (const s of planned.skipped) out.push(`skipped: ${s}`);
  if (planned.skipped.length) out.push("");
  out.push(actions.length ? `actions (${actions.length}):` : "actions: none");
  if (actions.length) out.push(formatActions(actions, verbose).trimEnd());
  return `${out.join("\n")}\n`;
}

/** One paragraph for a CommandResult or the end of a CLI run. */
const actions = (n: number) => `${n} action${n === 1 ? "" : "s"}`;

export function summarize(outcome: Outcome): string {
  const n = outcome.diff.actions.length;
  const version = outcome.version ? ` (site ${outcome.version})` : "";
  const skipped = outcome.skipped.length ? `; skipped: ${outcome.skipped.join("; ")}` : "";
  if (n === 0) return `nothing to do${version}${skipped}`;
  if (outcome.dryRun) return `dry run, ${actions(n)} would run${version}:\n${formatActions(outcome.diff.actions).trimEnd()}${skipped}`;
  const r = outcome.result!;
  if (r.ok) return `done: ${actions(n)}${version}${skipped}`;
  return `failed after ${r.done.length} of ${actions(n)}${version}: ${r.failed!.command}: ${r.failed!.error}${skipped}`;
}

export function outcomeJson(outcome: Outcome): unknown {
  return {
    dryRun: outcome.dryRun,
    version: outcome.version,
    drift: outcome.diff.drift,
    skipped: outcome.skipped,
    actions: outcome.diff.actions.map((a) => ({ kind: a.kind, subject: a.subject, why: a.why, commands: a.steps.map((s) => formatStep(s)) })),
    roots: outcome.observed.roots.map((r) => ({
      pi: r.pi.name,
      root: r.paths.root,
      state: r.state,
      hasPrevious: r.hasPrevious,
      contentVersion: r.content.version,
    })),
    nfsServerRunning: outcome.observed.nfsRunning ?? null,
    errors: outcome.observed.errors,
    result: outcome.result ? { ok: outcome.result.ok, done: outcome.result.done.length, failed: outcome.result.failed ? { command: outcome.result.failed.command, error: outcome.result.failed.error } : null } : null,
  };
}
