import type { Action } from "./drift.js";
import { executeStep, formatStep, type Step, type StepContext } from "./steps.js";

export interface ExecutionResult {
  ok: boolean;
  /** Actions that ran to completion. */
  done: Action[];
  failed?: { action: Action; step: Step; command: string; error: string };
}

/**
 * Runs actions in order and stops at the first failed step: later actions may depend on it
 * (exportfs -ra needs the roots), and a half-applied fleet is easier to read than a guessed one.
 */
export async function executeActions(
  actions: Action[],
  ctx: StepContext,
  onStep?: (action: Action, step: Step, command: string) => void,
): Promise<ExecutionResult> {
  const done: Action[] = [];
  for (const action of actions) {
    for (const step of action.steps) {
      const command = formatStep(step);
      onStep?.(action, step, command);
      try {
        await executeStep(step, ctx);
      } catch (err) {
        return { ok: false, done, failed: { action, step, command, error: (err as Error).message } };
      }
    }
    done.push(action);
  }
  return { ok: true, done };
}

/** The commands a run would perform, one per line, numbered by action: what `--dry-run` prints. */
export function formatActions(actions: Action[], verbose = false): string {
  if (actions.length === 0) return "nothing to do\n";
  const lines: string[] = [];
  actions.forEach((a, i) => {
    lines.push(`# ${i + 1}. ${a.kind} ${a.subject}: ${a.why}`);
    for (const s of a.steps) lines.push(formatStep(s, verbose));
  });
  return `${lines.join("\n")}\n`;
}
