import { Command, InvalidArgumentError } from "commander";
import { createLogger, loadFleet, plan, renderSwitchTable, type Fleet, type Plan } from "@pifleet/core";
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

const positiveInt = (what: string) => (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${what} must be a positive integer`);
  return n;
};

function open(fleet: Fleet, flags: SnmpFlags): SwitchHandle {
  try {
    return openSwitch(switchResourceFromFleet(fleet), { timeoutMs: flags.timeout, attempts: flags.attempts, logger: createLogger("switch") });
  } catch (err) {
    if (err instanceof SwitchConfigError || err instanceof UnknownPowerDriverError) throw new UsageError(err.message);
    throw err;
  }
}

async function withSwitch<T>(file: string, flags: SnmpFlags, work: (sw: SwitchHandle, derived: Plan) => Promise<T>): Promise<T> {
  const fleet = loadFleet(file);
  const derived = plan(fleet);
  const sw = open(fleet, flags);
  try {
    return await work(sw, derived);
  } catch (err) {
    if (err instanceof SwitchPlanError) throw new UsageError(err.message);
    throw err;
  } finally {
    await sw.close();
  }
}

/** A port number, or the name of the Pi on it. */
function resolvePort(derived: Plan, text: string): { port: number; label: string } {
  if (/^\d+$/.test(text)) {
    const port = Number(text);
    if (port < 1) throw new UsageError(`PORT must be 1 or more, got ${text}`);
    const pi = derived.pis.find((p) => p.port === port);
    return { port, label: pi ? `port ${port} (${pi.name})` : `port ${port}` };
  }
  const pi = derived.pis.find((p) => p.name === text);
  if (!pi) throw new UsageError(`PORT: "${text}" is neither a port number nor a Pi of fleet ${derived.fleet}`);
  return { port: pi.port, label: `port ${pi.port} (${pi.name})` };
}

export function registerSwitch(program: Command): void {
  const sw = program.command("switch").description("the switch over SNMP: VLAN table (plan, diff, apply) and PoE power");
  const snmpOptions = (cmd: Command): Command =>
    cmd
      .option("--timeout <ms>", "SNMP timeout per attempt, milliseconds", positiveInt("--timeout"))
      .option("--attempts <n>", "SNMP attempts per request (timeouts are retried with back-off)", positiveInt("--attempts"));

  sw.command("plan")
    .description("print the VLAN table the fleet's plan wants on the switch (no SNMP)")
    .argument("<fleet>", "fleet file (YAML)")
    .option("--json", "print as JSON")
    .action((file: string, opts: { json?: boolean }) => {
      const derived = plan(loadFleet(file));
      process.stdout.write(opts.json ? `${JSON.stringify(derived.switch, null, 2)}\n` : renderSwitchTable(derived));
    });

  snmpOptions(
    sw
      .command("diff")
      .description("compare the switch's VLAN table with the plan: missing VLANs, wrong membership, wrong PVIDs; foreign VLANs are listed, never touched")
      .argument("<fleet>", "fleet file (YAML)")
      .option("--json", "print as JSON")
      .option("--exit-code", "exit with status 1 when the switch differs from the plan"),
  ).action(async (file: string, opts: SnmpFlags & { json?: boolean; exitCode?: boolean }) => {
    await withSwitch(file, opts, async (handle, derived) => {
      const diff = diffSwitch(derived.switch, await handle.vlans.read());
      process.stdout.write(opts.json ? `${JSON.stringify(diff, null, 2)}\n` : renderDiff(diff));
      if (opts.exitCode && diff.drift.length > 0) process.exitCode = 1;
    });
  });

  snmpOptions(
    sw
      .command("apply")
      .description("make the switch's VLAN table match the plan (idempotent; every write is read back)")
      .argument("<fleet>", "fleet file (YAML)")
      .option("--dry-run", "print what would be written, write nothing")
      .option("--json", "print as JSON"),
  ).action(async (file: string, opts: SnmpFlags & { dryRun?: boolean; json?: boolean }) => {
    await withSwitch(file, opts, async (handle, derived) => {
      const result = await applySwitchPlan(handle.vlans, derived.switch, { dryRun: opts.dryRun, logger: createLogger("switch") });
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ dryRun: !!opts.dryRun, actions: result.actions, foreign: result.before.foreign }, null, 2)}\n`);
        return;
      }
      const lines = result.actions.map((a) => `${opts.dryRun ? "would " : ""}${renderAction(a)}`);
      if (result.actions.length === 0) lines.push("switch already matches the plan: nothing written");
      else if (!opts.dryRun) lines.push(`applied ${result.actions.length} change(s), read back and verified`);
      for (const f of result.before.foreign) lines.push(`left alone: vlan ${f.vlan} "${f.name}" (not in the plan)`);
      process.stdout.write(`${lines.join("\n")}\n`);
    });
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
  ).action(async (file: string, portText: string, action: string, opts: SnmpFlags & { dwell?: number }) => {
    if (!["on", "off", "status", "cycle"].includes(action)) throw new UsageError(`ACTION must be on, off, status or cycle, not "${action}"`);
    await withSwitch(file, opts, async (handle, derived) => {
      const { port, label } = resolvePort(derived, portText);
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
