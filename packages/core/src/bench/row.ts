/** One row of `pnpm bench`'s table. Every package's bench module returns these. */
export interface BenchRow {
  name: string;
  value: number | string;
  unit?: string;
  /** The goal beside the figure, and whether it is met ("≤ 20 ms: met"). */
  goal?: string;
  note?: string;
}

/** The goal column: the goal and whether this run met it. */
export function goalMet(goal: string, ok: boolean): string {
  return `${goal}: ${ok ? "met" : "missed"}`;
}
