import type { BrowserContext } from "playwright-core";

export interface StateChange {
  pi: string;
  state: string;
  atMs: number;
}

/**
 * Records every state each tile of the dashboard shows, in order. A MutationObserver inside the
 * page reports each `data-state` value through a binding the moment it is set, because a state
 * can last less than any poll interval (a power cycle's "power-cycling" is a couple of seconds).
 */
export async function recordTileStates(context: BrowserContext): Promise<Map<string, StateChange[]>> {
  const seen = new Map<string, StateChange[]>();
  await context.exposeFunction("__pifleetTileState", (pi: string, state: string, atMs: number) => {
    const list = seen.get(pi) ?? [];
    if (list.at(-1)?.state !== state) list.push({ pi, state, atMs });
    seen.set(pi, list);
  });
  await context.addInitScript(() => {
    const report = (window as unknown as { __pifleetTileState: (pi: string, state: string, atMs: number) => void }).__pifleetTileState;
    new MutationObserver((records) => {
      // Several changes to one tile within one task: each record's oldValue is the value the
      // previous change set, so the full sequence is [r2.old, r3.old, …, current].
      const byTile = new Map<Element, MutationRecord[]>();
      for (const r of records) {
        const el = r.target as Element;
        if (!el.getAttribute("data-pi")) continue;
        byTile.set(el, [...(byTile.get(el) ?? []), r]);
      }
      for (const [el, rs] of byTile) {
        const values = [...rs.slice(1).map((r) => r.oldValue), el.getAttribute("data-state")];
        for (const v of values) if (v) report(el.getAttribute("data-pi")!, v, Date.now());
      }
    }).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-state"], attributeOldValue: true });
  });
  return seen;
}

/** The states in `want` appear in `states` in this order (others may come between them). */
export function inOrder(states: string[], want: string[]): boolean {
  let i = 0;
  for (const s of states) if (s === want[i]) i++;
  return i === want.length;
}
