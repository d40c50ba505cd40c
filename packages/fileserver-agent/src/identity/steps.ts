import path from "node:path";
import type { PiPlan } from "@pifleet/core";
import type { Step } from "../reconcile/steps.js";
import { PathError } from "../safety.js";
import { desiredIdentity, HOSTS } from "./files.js";
import type { IdentityFile, IdentityObservation } from "./observe.js";

/**
 * Writes of every identity file a root being built needs, whatever it holds (a fresh copy of the
 * golden image, which no Pi has mounted). `goldenHosts` is the golden image's /etc/hosts: the
 * copy's own, so the Pi's line is added to what the image already lists.
 */
export function buildIdentitySteps(root: string, pi: PiPlan, goldenHosts: IdentityFile): Step[] {
  if (goldenHosts.problem) throw new PathError(goldenHosts.path, `golden image: ${goldenHosts.problem}`);
  return [...desiredIdentity(pi, goldenHosts.current)].map(([rel, content]) => ({ op: "write", path: path.join(root, rel), content, within: root, noFollow: true }));
}

export interface IdentityDiff {
  /** One line per file that differs (`etc/hostname differs from the plan`). */
  differs: string[];
  /** Files that cannot be written safely, with why. */
  refused: string[];
  /** Writes of only the files whose content differs: a root already right is not touched. */
  steps: Step[];
}

/** What an existing root needs so it carries its Pi's identity. */
export function identityDiff(root: string, pi: PiPlan, obs: IdentityObservation): IdentityDiff {
  const out: IdentityDiff = { differs: [], refused: [], steps: [] };
  const hosts = obs.find((f) => f.rel === HOSTS);
  const desired = desiredIdentity(pi, hosts?.problem ? null : (hosts?.current ?? null));
  for (const f of obs) {
    if (f.problem) {
      out.refused.push(f.problem);
      continue;
    }
    const want = desired.get(f.rel);
    if (want === undefined || f.current === want) continue;
    out.differs.push(`${f.rel} ${f.current === null ? "missing" : "differs from the plan"}`);
    out.steps.push({ op: "write", path: f.path, content: want, within: root, noFollow: true });
  }
  return out;
}
