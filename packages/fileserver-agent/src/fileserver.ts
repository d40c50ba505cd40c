import { realpath, stat } from "node:fs/promises";
import path from "node:path";
import type { Logger, FileserverView } from "@pifleet/core";
import { createLayout, findPi, rootPaths, type Layout } from "./layout.js";
import type { Live } from "./host/live.js";
import type { CommandRunner } from "./runner.js";
import { persistDriver } from "./persist/registry.js";
import { observe, type Observed } from "./observe/observe.js";
import { observeRoot } from "./observe/roots.js";
import { diffApply } from "./reconcile/diff.js";
import type { Action, Diff } from "./reconcile/drift.js";
import { executeActions, type ExecutionResult } from "./reconcile/execute.js";
import type { Step } from "./reconcile/steps.js";
import { exportRootSteps, rebuildSteps, rollbackSteps } from "./rootfs.js";
import { hashTree } from "./content/hash.js";
import { contentPhases, storeSteps } from "./content/steps.js";
import { isInside, PathError } from "./safety.js";
import type { DnsmasqOptions } from "./netboot/options.js";

/** An operation the agent will not do in the current state (a powered Pi, a missing root). */
export class RefusedError extends Error {
  override name = "RefusedError";
}

/** A name on the command line or in a command frame that matches nothing in the plan. */
export class UnknownPiError extends Error {
  override name = "UnknownPiError";
}

export interface PowerInput {
  /** Skip the power guard. */
  force?: boolean;
  /** What the caller knows of the Pi's power (the agent cannot see the switch). Unknown counts as powered. */
  piPowered?: boolean;
}

export interface Planned {
  observed: Observed;
  diff: Diff;
  /** Problems that kept part of the operation from being planned (a root refused…). */
  skipped: string[];
  /** sync-content: the version of the site. */
  version?: string;
}

export interface Outcome extends Planned {
  dryRun: boolean;
  result?: ExecutionResult;
}

export interface FileserverOptions {
  plan: FileserverView;
  runner: CommandRunner;
  live: Live;
  prefix?: string;
  logger?: Logger;
  /** How dnsmasq is checked and reloaded (netbooted Pis). */
  dnsmasq?: DnsmasqOptions;
}

/**
 * The fileserver agent's whole job, used by the CLI and by the daemon alike: observe the
 * fileserver, compare it with the plan, and change it — through actions whose exact commands
 * can be printed instead of run.
 */
export class Fileserver {
  readonly plan: FileserverView;
  readonly layout: Layout;
  readonly live: Live;
  private readonly runner: CommandRunner;
  private readonly logger?: Logger;
  private readonly driver;
  private readonly dnsmasq?: DnsmasqOptions;
  private readonly protectedBases: Set<string>;
  private lock: Promise<unknown> = Promise.resolve();

  constructor(opts: FileserverOptions) {
    this.plan = opts.plan;
    this.layout = createLayout(opts.plan, opts.prefix ?? "");
    this.live = opts.live;
    this.runner = opts.runner;
    this.logger = opts.logger;
    this.driver = persistDriver(opts.plan.fileserver.network);
    this.dnsmasq = opts.dnsmasq;
    this.protectedBases = new Set(
      opts.plan.pis.flatMap((p) => {
        const r = rootPaths(this.layout, p);
        return [r.root, r.building, r.next, r.prev];
      }),
    );
  }

  observe(): Promise<Observed> {
    return observe({ plan: this.plan, layout: this.layout, live: this.live, runner: this.runner, driver: this.driver, dnsmasq: this.dnsmasq });
  }

  /** Drift and the actions `apply` would take. */
  async planApply(): Promise<Planned> {
    const observed = await this.observe();
    return { observed, diff: diffApply(this.plan, this.layout, observed), skipped: [] };
  }

  apply(dryRun = false): Promise<Outcome> {
    return this.exclusive(async () => {
      const first = await this.run(await this.planApply(), dryRun);
      // A netbooted Pi's TFTP folder is filled from its own root's /boot, which a root this
      // apply created did not have when the fileserver was observed: look once more, so one
      // apply leaves a fresh fileserver able to boot its Pis. Only TFTP: nothing else depends on
      // what is inside a root.
      if (dryRun || !first.result?.ok || !first.diff.actions.some((a) => a.kind === "root")) return first;
      return this.followUp(first, (a) => a.kind === "tftp");
    });
  }

  /** Runs what a second look finds (`keep`: which of those actions), appended to `first`. */
  private async followUp(first: Outcome, keep: (a: Action) => boolean): Promise<Outcome> {
    const again = await this.planApply();
    const actions = again.diff.actions.filter(keep);
    if (actions.length === 0) return first;
    const second = await this.run({ ...again, diff: { drift: again.diff.drift, actions } }, false);
    const r2 = second.result!;
    return {
      ...first,
      observed: second.observed,
      diff: { drift: first.diff.drift, actions: [...first.diff.actions, ...actions] },
      result: { ok: r2.ok, done: [...first.result!.done, ...r2.done], ...(r2.failed ? { failed: r2.failed } : {}) },
    };
  }

  async planRebuild(which: string, power: PowerInput): Promise<Planned> {
    const pi = this.pi(which);
    this.guardPower(pi.name, "rebuild", power);
    const observed = await this.observe();
    this.guardExportRoot(observed);
    const root = await observeRoot(this.layout, pi);
    const steps = [...exportRootSteps(this.layout, observed), ...rebuildSteps(this.plan, this.layout, root, observed, this.live.nfs !== "off")];
    const why = root.state === "absent" ? "create the root from the golden image" : "build a fresh root from the golden image and swap it in (the old one becomes .prev)";
    return { observed, diff: { drift: [], actions: [{ kind: "root", subject: pi.name, why, steps }] }, skipped: [] };
  }

  rebuild(which: string, power: PowerInput, dryRun = false): Promise<Outcome> {
    return this.exclusive(async () => {
      const done = await this.run(await this.planRebuild(which, power), dryRun);
      const pi = this.pi(which);
      // A rebuilt root brings its own kernel and initramfs: serve those, not the old root's.
      if (dryRun || !done.result?.ok || !pi.netboot) return done;
      return this.followUp(done, (a) => a.kind === "tftp" && a.subject === pi.name);
    });
  }

  async planRollback(which: string, power: PowerInput): Promise<Planned> {
    const pi = this.pi(which);
    this.guardPower(pi.name, "roll back", power);
    const observed = await this.observe();
    this.guardExportRoot(observed);
    const root = await observeRoot(this.layout, pi);
    if (!root.hasPrevious) throw new RefusedError(`${pi.name}: no previous root (${root.paths.prev}) to roll back to`);
    const steps = rollbackSteps(this.layout, root, this.live.nfs !== "off");
    return { observed, diff: { drift: [], actions: [{ kind: "root", subject: pi.name, why: "swap the root and .prev", steps }] }, skipped: [] };
  }

  rollback(which: string, power: PowerInput, dryRun = false): Promise<Outcome> {
    return this.exclusive(async () => this.run(await this.planRollback(which, power), dryRun));
  }

  /**
   * A new site version into every root, at disk speed: one master copy in the store (checked
   * against its hash), then each root is staged, then all are switched.
   */
  async planSyncContent(dir: string): Promise<Planned> {
    let source: string;
    try {
      source = await realpath(dir);
      if (!(await stat(source)).isDirectory()) throw new Error("not a directory");
    } catch (err) {
      throw new PathError(dir, `site content must be a directory (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    if (isInside(this.layout.exportRoot, source)) throw new PathError(dir, `site content must not come from inside the export root ${this.layout.exportRoot}`);
    const version = await hashTree(source);
    const observed = await this.observe();
    this.guardExportRoot(observed);
    const store = this.layout.contentStore;
    const actions: Action[] = [];
    const skipped: string[] = [];
    const storeS = storeSteps(store, this.layout.exportRoot, observed.store, version, source);
    if (storeS.length) actions.push({ kind: "content", subject: "store", why: `keep site ${version} as the master copy`, steps: storeS });
    const switches: Action[] = [];
    // Shared content: the store is what every Pi mounts; no root is written.
    for (const r of this.plan.fileserver.content === "shared" ? [] : observed.roots) {
      if (r.state !== "present") {
        if (r.state !== "absent") skipped.push(`${r.pi.name}: ${r.paths.root} is ${r.state === "symlink" ? `a symlink (to ${r.linkTarget})` : "not a directory"}; refused`);
        continue;
      }
      try {
        const phases = contentPhases(r.paths.root, r.content, version, path.join(store, version));
        if (phases.stage.length) actions.push({ kind: "content", subject: r.pi.name, why: `stage site ${version}`, steps: phases.stage });
        if (phases.switch.length) switches.push({ kind: "content", subject: r.pi.name, why: `switch to site ${version}`, steps: phases.switch });
      } catch (err) {
        if (!(err instanceof PathError)) throw err;
        skipped.push(`${r.pi.name}: ${err.message}; refused`);
      }
    }
    actions.push(...switches);
    return { observed, diff: { drift: [], actions }, skipped, version };
  }

  syncContent(dir: string, dryRun = false): Promise<Outcome> {
    return this.exclusive(async () => this.run(await this.planSyncContent(dir), dryRun));
  }

  private pi(which: string) {
    const pi = findPi(this.plan, which);
    if (!pi) throw new UnknownPiError(`no Pi "${which}" in fleet ${this.plan.fleet} (give a name like ${this.plan.pis[0]?.name} or an address like ${this.plan.pis[0]?.piAddress})`);
    return pi;
  }

  private guardPower(name: string, verb: string, power: PowerInput): void {
    if (power.force) return;
    if (power.piPowered === false) return;
    const known = power.piPowered === true ? "is powered" : "may be powered (the fileserver cannot see the switch)";
    throw new RefusedError(`refusing to ${verb} ${name}'s root: the Pi ${known} and would have its root replaced under it; power it off and say so (--pi-powered=no), or --force`);
  }

  private guardExportRoot(observed: Observed): void {
    if (observed.exportRootProblem) throw new PathError(this.layout.exportRoot, observed.exportRootProblem);
  }

  private async run(planned: Planned, dryRun: boolean): Promise<Outcome> {
    if (dryRun || planned.diff.actions.length === 0) return { ...planned, dryRun };
    const result = await executeActions(planned.diff.actions, { runner: this.runner, noSymlinkBases: this.protectedBases }, (action, _step, command) =>
      this.logger?.info({ action: action.kind, subject: action.subject, command }, "run"),
    );
    if (!result.ok) this.logger?.error({ command: result.failed?.command, error: result.failed?.error }, "step failed");
    return { ...planned, dryRun, result };
  }

  /** One change at a time: a rebuild and a content sync must not interleave on one root. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.lock.then(fn, fn);
    this.lock = next.catch(() => undefined);
    return next;
  }
}

export type { Step };
