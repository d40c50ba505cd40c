/** One row of `pnpm bench`'s table. Every package's bench module returns these. */
export interface BenchRow {
  name: string;
  value: number | string;
  unit?: string;
  note?: string;
}
