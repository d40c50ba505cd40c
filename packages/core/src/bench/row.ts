/** One row of `pnpm bench`'s table. Every package's bench module returns these. */
export interface BenchRow {
  name: string;
  value: number | string;
  unit?: string;
  /** The target this figure is held to, printed beside it (e.g. "≤ 20 ms"). */
  goal?: string;
  note?: string;
}
