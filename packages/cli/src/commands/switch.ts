import { Command, InvalidArgumentError } from "commander";
import { createLogger, loadFleet, plan, renderSwitchTable, shelfOf, UnknownNameError, type Fleet, type Plan, type ShelfPlan } from "@pifleet/core";
import {
  applySwitchPlan,
  diffSwitch,
  openSwitch,
  renderAction,
  renderDiff,
  switchResourceFromFleet,
  SwitchConfigError,
  SwitchPlanError,
  UnknownPowerDriverError,
  type SwitchHandle,
} from "@pifleet/switch";
import { UsageError } from "../usage-error.js";

interface SnmpFlags {
  timeout?: number;
  attempts?: number;
}

interface ShelfFlags {
  shelf?: string;
  parallel?: number;
}

const positiveInt = (what: string) => (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${what} must be a positive integer`);
  return n;
};

function open(fleet: Fleet, shelf: string, flags: SnmpFlags): SwitchHandle {
  try {
    return openSwitch(switchResourceFromFleet(fleet, process.env, shelf), { timeoutMs: flags.timeout, attempts: flags.attempts, logger: createLogger("switch") });
  } catch (err) {
    if (err instanceof SwitchConfigError || err instanceof UnknownPowerDriverError) throw new UsageError(err.message);
    throw err;
  }
}

/** The shelves a command acts on: the one named, or every shelf of the fleet. */
function shelvesOf(derived: Plan, name: string | undefined): ShelfPlan[] {
  try {
    return name === undefined ? derived.shelves : [shelfOf(derived, name)];
  } catch (err) {
    if (err instanceof UnknownNameError) throw new UsageError(`--shelf: ${err.message}`);
    throw err;
  }
}

/** Runs `work` on each shelf's switch, at most `parallel` switches at once, results in shelf order. */
async function eachSwitch<T>(file: string, flags: SnmpFlags & ShelfFlags, work: (sw: SwitchHandle, shelf: ShelfPlan, derived: Plan) => Promise<T>): Promise<T[]> {
  const fleet = loadFleet(file);
  const derived = plan(fleet);
  const shelves = shelvesOf(derived, flags.shelf);
  const results: T[] = new Array(shelves.length);
  let next = 0;
  const worker = async () => {
    while (next < shelves.length) {
      const i = next++;
      const sw = open(fleet, shelves[i].name, flags);
      try {
        results[i] = await work(sw, shelves[i], derived);
      } catch (err) {
        if (err instanceof SwitchPlanError) throw new UsageError(`shelf ${shelves[i].name}: ${err.message}`);
        throw err;
      } finally {
        await sw.close();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(flags.parallel ?? 1, shelves.length) }, worker));
  return results;
}

/** A port number (on the named shelf, or the only one), or the name of the Pi on it (any shelf). */
function resolvePort(derived: Plan, text: string, shelfName: string | undefined): { port: number; shelf: string; label: string } {
  if (/^\d+$/.test(text)) {
    const port = Number(text);
    if (port < 1) throw new UsageError(`PORT must be 1 or more, got ${text}`);
    if (shelfName === undefined && derived.shelves.length > 1) throw new UsageError(`PORT ${port}: the fleet has ${derived.shelves.length} shelves; say which with --shelf, or name the Pi`);
    const [shelf] = shelvesOf(derived, shelfName ?? derived.shelves[0].name);
    const pi = derived.pis.find((p) => p.port === port && p.shelf === shelf.name);
    return { port, shelf: shelf.name, label: pi ? `port ${port} (${pi.name})` : `port ${port}` };
  }
  const pi = derived.pis.find((p) => p.name === text);
  if (!pi) throw new UsageError(`PORT: "${text}" is neither a port number nor a Pi of fleet ${derived.fleet}`);
  if (shelfName !== undefined && pi.shelf !== shelfName) throw new UsageError(`PORT: ${pi.name} is on shelf ${pi.shelf}, not ${shelfName}`);
  return { port: pi.port, shelf: pi.shelf, label: `port ${pi.port} (${pi.name})` };
}

/** With several shelves, each block of output is headed by its shelf. */
function headed(derived: Plan, shelf: ShelfPlan, text: string): string {
  return derived.shelves.length > 1 ? `== shelf ${shelf.name} (switch ${shelf.switch.name})\n${text}` : text;
}

export function registerSwitch(program: Command): void {
  const sw = program.command("switch").description("the switch over SNMP: VLAN table (plan, diff, apply) and PoE power");
  const snmpOptions = (cmd: Command): Command =>
    cmd
      .option("--shelf <name>", "only this shelf's switch (default: every shelf's)")
      .option("--parallel <n>", "with several shelves: switches worked on at once (default 1: one at a time)", positiveInt("--parallel"))
      .option("--timeout <ms>", "SNMP timeout per attempt, milliseconds", positiveInt("--timeout"))
      .option("--attempts <n>", "SNMP attempts per request (timeouts are retried with back-off)", positiveInt("--attempts"));

  sw.command("plan")
    .description("print the VLAN table the fleet's plan wants on the switch (no SNMP)")
    .argument("<fleet>", "fleet file (YAML)")
    .option("--shelf <name>", "only this shelf's switch (default: every shelf's)")
    .option("--json", "print as JSON")
    .action((file: string, opts: { json?: boolean; shelf?: string }) => {
      const derived = plan(loadFleet(file));
      const shelves = shelvesOf(derived, opts.shelf);
      if (opts.json) {
        const data = shelves.map((s) => ({ shelf: s.name, ...s.switch }));
        process.stdout.write(`${JSON.stringify(derived.shelves.length === 1 ? data[0] : data, null, 2)}\n`);
        return;
      }
      process.stdout.write(shelves.map((s) => headed(derived, s, renderSwitchTable(s))).join("\n"));
    });

  snmpOptions(
    sw
      .command("diff")
      .description("compare the switch's VLAN table with the plan: missing VLANs, wrong membership, wrong PVIDs; foreign VLANs are listed, never touched")
      .argument("<fleet>", "fleet file (YAML)")
      .option("--json", "print as JSON")
      .option("--exit-code", "exit with status 1 when the switch differs from the plan"),
  ).action(async (file: string, opts: SnmpFlags & ShelfFlags & { json?: boolean; exitCode?: boolean }) => {
    const diffs = await eachSwitch(file, opts, async (handle, shelf, derived) => {
      const diff = diffSwitch(shelf.switch, await handle.vlans.read());
      if (!opts.json) process.stdout.write(headed(derived, shelf, renderDiff(diff)));
      return { shelf: shelf.name, ...diff };
    });
    if (opts.json) process.stdout.write(`${JSON.stringify(diffs.length === 1 && !opts.shelf ? diffs[0] : diffs, null, 2)}\n`);
    if (opts.exitCode && diffs.some((d) => d.drift.length > 0)) process.exitCode = 1;
  });

  snmpOptions(
    sw
      .command("apply")
      .description("make the switch's VLAN table match the plan (idempotent; every write is read back)")
      .argument("<fleet>", "fleet file (YAML)")
      .option("--dry-run", "print what would be written, write nothing")
      .option("--json", "print as JSON"),
  ).action(async (file: string, opts: SnmpFlags & ShelfFlags & { dryRun?: boolean; json?: boolean }) => {
    const results = await eachSwitch(file, opts, async (handle, shelf, derived) => {
      const result = await applySwitchPlan(handle.vlans, shelf.switch, { dryRun: opts.dryRun, logger: createLogger("switch").child({ shelf: shelf.name }) });
      const data = { shelf: shelf.name, dryRun: !!opts.dryRun, actions: result.actions, foreign: result.before.foreign };
      if (opts.json) return data;
      const lines = result.actions.map((a) => `${opts.dryRun ? "would " : ""}${renderAction(a)}`);
      if (result.actions.length === 0) lines.push("switch already matches the plan: nothing written");
      else if (!opts.dryRun) lines.push(`applied ${result.actions.length} change(s), read back and verified`);
      for (const f of result.before.foreign) lines.push(`left alone: vlan ${f.vlan} "${f.name}" (not in the plan)`);
      process.stdout.write(headed(derived, shelf, `${lines.join("\n")}\n`));
      return data;
    });
    if (opts.json) process.stdout.write(`${JSON.stringify(results.length === 1 && !opts.shelf ? results[0] : results, null, 2)}\n`);
  });

  snmpOptions(
    sw
      .command("power")
      .description("switch a port's PoE on or off (verified by read-back), cycle it, or show its status")
      .argument("<fleet>", "fleet file (YAML)")
      .argument("<port>", "switch port number, or the name of the Pi on it")
      .argument("<action>", "on | off | status | cycle")
      .option("--dwell <seconds>", "cycle: seconds off (default: the fleet's switch.poe.dwellSeconds)", (v) => {
        const n = Number(v);
        if (!Number.isFinite(n) || n < 0 || n > 600) throw new InvalidArgumentError("--dwell must be 0..600 seconds");
        return n;
      }),
  ).action(async (file: string, portText: string, action: string, opts: SnmpFlags & ShelfFlags & { dwell?: number }) => {
    if (!["on", "off", "status", "cycle"].includes(action)) throw new UsageError(`ACTION must be on, off, status or cycle, not "${action}"`);
    const derived = plan(loadFleet(file));
    const { port, shelf, label } = resolvePort(derived, portText, opts.shelf);
    await eachSwitch(file, { ...opts, shelf, parallel: 1 }, async (handle) => {
      if (action === "on" || action === "off") {
        await handle.power.powerSet(port, action === "on");
        process.stdout.write(`${label}: power ${action} (read back and verified)\n`);
        return;
      }
      if (action === "cycle") {
        const r = await handle.powerCycle(port, opts.dwell === undefined ? undefined : Math.round(opts.dwell * 1000));
        process.stdout.write(`${label}: power cycled (off ${r.offMs} ms, dwell ${r.dwellMs} ms, on ${r.onMs} ms; both verified)\n`);
        return;
      }
      const [s] = await handle.status([port]);
      process.stdout.write(`${label}: power ${s.power ? "on" : "off"}, PoE ${s.detection}, link ${s.link}\n`);
    });
  });
}
