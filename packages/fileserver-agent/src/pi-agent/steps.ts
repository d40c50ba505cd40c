import path from "node:path";
import type { FileserverView, PiPlan } from "@pifleet/core";
import type { Step } from "../reconcile/steps.js";
import type { FileOwner } from "../inside.js";
import { AGENT_CONFIG, AGENT_SECRET, CONFIG_MODE, desiredAgentConfig, octal, ROOT_OWNER, SECRET_MODE, type AgentOwner } from "./files.js";
import type { AgentFile, PiAgentObservation, SecretSource } from "./observe.js";

interface Want {
  rel: string;
  content: string;
  mode: number;
  owner: FileOwner;
  secret: boolean;
  /** What the content comes from, for the drift line (a secret's text is never shown). */
  from: string;
}

function wanted(view: FileserverView, pi: PiPlan, source: SecretSource, owner: AgentOwner): Want[] {
  const config = desiredAgentConfig(view, pi);
  if (config === undefined) return [];
  const out: Want[] = [{ rel: AGENT_CONFIG, content: config, mode: CONFIG_MODE, owner: ROOT_OWNER, secret: false, from: "the plan" }];
  if (source.text !== undefined) out.push({ rel: AGENT_SECRET, content: source.text, mode: SECRET_MODE, owner: owner.owner, secret: true, from: source.path });
  return out;
}

const write = (root: string, w: Want): Step => ({
  op: "write",
  path: path.join(root, w.rel),
  content: w.content,
  within: root,
  noFollow: true,
  mode: w.mode,
  owner: w.owner,
  ...(w.secret ? { secret: true } : {}),
});

/**
 * The agent's config and secret for a root being built (a fresh copy of the golden image, so the
 * secret's owner is the golden image's agent user). A Pi whose secret is missing still gets its
 * root — a recovery is never held up for it — and `apply` reports the secret until it is there.
 */
export function buildPiAgentSteps(view: FileserverView, root: string, pi: PiPlan, source: SecretSource | undefined, goldenOwner: AgentOwner | undefined): Step[] {
  if (!view.piAgent || !source) return [];
  return wanted(view, pi, source, goldenOwner ?? { owner: ROOT_OWNER }).map((w) => write(root, w));
}

export interface PiAgentDiff {
  /** One line per file that differs, and notes (missing secret, missing agent user). */
  differs: string[];
  refused: string[];
  /** Writes of only the files whose content, mode or owner differ: a root already right is not touched. */
  steps: Step[];
}

function differences(f: AgentFile, w: Want): string[] {
  const cur = f.current;
  if (!cur) return [`${w.rel} missing`];
  const out: string[] = [];
  if (cur.text !== w.content) out.push(`${w.rel} differs from ${w.from}`);
  if (cur.mode !== w.mode) out.push(`${w.rel} has mode ${octal(cur.mode)}, not ${octal(w.mode)}`);
  if (cur.uid !== w.owner.uid || cur.gid !== w.owner.gid) out.push(`${w.rel} is owned by ${cur.uid}:${cur.gid}, not ${w.owner.uid}:${w.owner.gid}`);
  return out;
}

/** What an existing root needs so its Pi agent has this Pi's config and secret. */
export function piAgentDiff(view: FileserverView, root: string, pi: PiPlan, obs: PiAgentObservation): PiAgentDiff {
  const out: PiAgentDiff = { differs: [], refused: [], steps: [] };
  if (!view.piAgent) return out;
  const owner = obs.owner ?? { owner: ROOT_OWNER };
  if (obs.source.problem) out.differs.push(`${obs.source.problem}: ${pi.name}'s agent secret cannot be written (enroll it: pifleet enroll ${pi.name} --role pi --out ${pi.name}.secret, then copy it there, mode 0600)`);
  if (owner.note) out.differs.push(owner.note);
  // Reported, not changed: the secrets folder is the operator's, not pifleet's to rewrite.
  if (obs.source.mode !== undefined && (obs.source.mode & 0o077) !== 0) out.differs.push(`${obs.source.path} has mode ${octal(obs.source.mode)}: others on the fileserver can read ${pi.name}'s secret (chmod 0600 it)`);
  for (const w of wanted(view, pi, obs.source, owner)) {
    const f = obs.files.find((x) => x.rel === w.rel);
    if (!f) continue;
    if (f.problem) {
      out.refused.push(f.problem);
      continue;
    }
    const what = differences(f, w);
    if (!what.length) continue;
    out.differs.push(...what);
    out.steps.push(write(root, w));
  }
  return out;
}
