/**
 * Power-on in waves: which ports to switch on when, as pure logic driven by the engine's tick.
 *
 * Why: boot ROMs give up after a few DHCP tries, and a whole shelf booting at once overwhelms
 * DHCP, TFTP and NFS — 48 netbooting Pi 3s powered with their server and none booted
 * (raspberrypi/firmware#764, #1081). So at most `size` Pis boot at a time; the next wave starts
 * when every Pi of the last one reported healthy, or its timeout passed. A netbooted Pi that never
 * reports is cycled again with back-off (a Pi 5 ROM does not retry a failed TFTP,
 * raspberrypi/rpi-eeprom#687), then quarantined with the reason. An SD-booted Pi that stays
 * silent is no boot-storm casualty: it is left to the recovery engine.
 */

export interface WaveConfig {
  /** Pis booting at once (initial power-ons and retries together). */
  size: number;
  /** How long a Pi may take to report healthy after its port is switched on. */
  timeoutMs: number;
  /** Power-cycles of a silent netbooted Pi before it is quarantined. */
  retries: number;
  /** Wait before the n-th retry: retryBackoffMs × 2^(n−1), capped. */
  retryBackoffMs: number;
  maxRetryBackoffMs: number;
}

export const DEFAULT_WAVE_CONFIG: WaveConfig = {
  size: 8,
  timeoutMs: 180_000,
  retries: 2,
  retryBackoffMs: 30_000,
  maxRetryBackoffMs: 300_000,
};

export interface WavePi {
  name: string;
  port: number;
  netboot: boolean;
}

export type WaveAction =
  /** A wave begins: these Pis' ports go on now. */
  | { kind: "wave"; wave: number; pis: WavePi[] }
  | { kind: "power-on"; pi: WavePi; wave: number }
  /** Off, dwell, on again: the n-th retry of a silent netbooted Pi. */
  | { kind: "cycle"; pi: WavePi; attempt: number; reason: string }
  | { kind: "quarantine"; pi: WavePi; reason: string }
  /** An SD-booted Pi did not report in time: the recovery engine takes it from here. */
  | { kind: "late"; pi: WavePi; reason: string }
  | { kind: "finished"; summary: string };

type PiPhase =
  | { phase: "queued" }
  | { phase: "booting"; sinceMs: number; wave: number; cycles: number }
  | { phase: "waiting"; untilMs: number; cycles: number }
  | { phase: "healthy" | "quarantined" | "late" };

export interface WaveStatus {
  wave: number;
  waves: number;
  queued: number;
  booting: number;
  waiting: number;
  healthy: number;
  quarantined: number;
  late: number;
  done: boolean;
}

export class PowerOnWaves {
  private readonly cfg: WaveConfig;
  private readonly pis: WavePi[];
  private readonly phase = new Map<string, PiPhase>();
  private readonly queue: WavePi[];
  private wave = 0;
  private finished = false;

  constructor(pis: WavePi[], cfg: Partial<WaveConfig> = {}) {
    this.cfg = { ...DEFAULT_WAVE_CONFIG, ...cfg };
    if (!(this.cfg.size >= 1)) throw new Error(`wave size must be at least 1 (got ${this.cfg.size})`);
    // Port order: a shelf comes up from its first port, as a person would watch it.
    this.pis = [...pis].sort((a, b) => a.port - b.port);
    this.queue = [...this.pis];
    for (const p of this.pis) this.phase.set(p.name, { phase: "queued" });
  }

  /** Still in the run's hands: the recovery engine must not act on it meanwhile. */
  owns(pi: string): boolean {
    const p = this.phase.get(pi);
    return p !== undefined && (p.phase === "queued" || p.phase === "booting" || p.phase === "waiting");
  }

  get done(): boolean {
    return this.finished;
  }

  /** A retry could not be carried out now (rate limit, guard): try again at `untilMs`, not counted. */
  defer(pi: string, untilMs: number): void {
    const p = this.phase.get(pi);
    if (p?.phase === "booting" && p.cycles > 0) this.phase.set(pi, { phase: "waiting", untilMs, cycles: p.cycles - 1 });
  }

  status(): WaveStatus {
    const count = (ph: PiPhase["phase"]) => [...this.phase.values()].filter((p) => p.phase === ph).length;
    return {
      wave: this.wave,
      waves: this.wave + Math.ceil(this.queue.length / this.cfg.size),
      queued: count("queued"),
      booting: count("booting"),
      waiting: count("waiting"),
      healthy: count("healthy"),
      quarantined: count("quarantined"),
      late: count("late"),
      done: this.finished,
    };
  }

  tick(now: number, healthy: (pi: string) => boolean): WaveAction[] {
    if (this.finished) return [];
    const out: WaveAction[] = [];
    for (const pi of this.pis) {
      const p = this.phase.get(pi.name)!;
      if (this.owns(pi.name) && healthy(pi.name)) {
        this.phase.set(pi.name, { phase: "healthy" });
        if (p.phase === "queued") this.queue.splice(this.queue.indexOf(pi), 1);
        continue;
      }
      if (p.phase === "booting" && now - p.sinceMs >= this.cfg.timeoutMs) this.timedOut(pi, p, now, out);
    }

    // Retries first: they waited longest. They share the wave's slots, so DHCP never sees more than `size` at once.
    for (const pi of this.pis) {
      const p = this.phase.get(pi.name)!;
      if (p.phase !== "waiting" || now < p.untilMs || this.booting() >= this.cfg.size) continue;
      const attempt = p.cycles + 1;
      this.phase.set(pi.name, { phase: "booting", sinceMs: now, wave: 0, cycles: attempt });
      out.push({ kind: "cycle", pi, attempt, reason: `no report ${secs(this.cfg.timeoutMs)} after power-on: power-cycle ${attempt} of ${this.cfg.retries}` });
    }

    // The next wave once no Pi of the last one is still in its first boot window.
    const lastWaveBooting = this.pis.some((pi) => {
      const p = this.phase.get(pi.name)!;
      return p.phase === "booting" && p.wave === this.wave && p.cycles === 0;
    });
    if (!lastWaveBooting && this.queue.length > 0) {
      const room = this.cfg.size - this.booting();
      if (room > 0) {
        const batch = this.queue.splice(0, room);
        this.wave++;
        out.push({ kind: "wave", wave: this.wave, pis: batch });
        for (const pi of batch) {
          this.phase.set(pi.name, { phase: "booting", sinceMs: now, wave: this.wave, cycles: 0 });
          out.push({ kind: "power-on", pi, wave: this.wave });
        }
      }
    }

    if (this.queue.length === 0 && ![...this.phase.values()].some((p) => p.phase === "booting" || p.phase === "waiting")) {
      this.finished = true;
      const s = this.status();
      out.push({ kind: "finished", summary: `${s.healthy} healthy, ${s.quarantined} quarantined, ${s.late} left to recovery, in ${this.wave} wave(s)` });
    }
    return out;
  }

  private booting(): number {
    return [...this.phase.values()].filter((p) => p.phase === "booting").length;
  }

  private timedOut(pi: WavePi, p: Extract<PiPhase, { phase: "booting" }>, now: number, out: WaveAction[]): void {
    const silent = `no healthy report ${secs(this.cfg.timeoutMs)} after power-on`;
    if (!pi.netboot) {
      this.phase.set(pi.name, { phase: "late" });
      out.push({ kind: "late", pi, reason: `${silent}; SD-booted, left to recovery` });
      return;
    }
    if (p.cycles >= this.cfg.retries) {
      this.phase.set(pi.name, { phase: "quarantined" });
      out.push({
        kind: "quarantine",
        pi,
        reason: `netbooted and ${silent}${p.cycles ? `, also after ${p.cycles} power-cycle(s)` : ""}: check its DHCP reservation (MAC), TFTP folder (serial) and switch port (STP edge)`,
      });
      return;
    }
    const backoff = Math.min(this.cfg.maxRetryBackoffMs, this.cfg.retryBackoffMs * 2 ** p.cycles);
    this.phase.set(pi.name, { phase: "waiting", untilMs: now + backoff, cycles: p.cycles });
  }
}

function secs(ms: number): string {
  return `${+(ms / 1000).toFixed(1)} s`;
}
