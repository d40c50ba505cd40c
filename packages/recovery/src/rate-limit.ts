/** Sliding-window limit on destructive actions: a bug or a flapping fleet cannot cycle everything. */
export class SlidingWindowLimit {
  private readonly times: number[] = [];

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {}

  /** Takes a slot if one is free at `now`; false means refused. */
  take(now: number): boolean {
    while (this.times.length && this.times[0] <= now - this.windowMs) this.times.shift();
    if (this.times.length >= this.limit) return false;
    this.times.push(now);
    return true;
  }

  /** When the next slot frees up. */
  nextFreeMs(now: number): number {
    while (this.times.length && this.times[0] <= now - this.windowMs) this.times.shift();
    return this.times.length < this.limit ? now : this.times[0] + this.windowMs;
  }
}
