export function benchPiName(i: number): string {
  return `pi${String(i + 1).padStart(5, "0")}`;
}
