import { SnmpError } from "../snmp/errors.js";
import { DetectionStatus, OID, TruthValue } from "../snmp/oids.js";
import type { PowerContext } from "./driver.js";
import { registerPowerDriver } from "./registry.js";

/**
 * RFC 3621 POWER-ETHERNET-MIB: pethPsePortAdminEnable.{group}.{port}, TruthValue true(1) / false(2).
 * Most managed PoE switches implement it.
 */
function adminOid(ctx: PowerContext, port: number): string {
  return `${OID.pethPsePortAdminEnable}.${ctx.group}.${port}`;
}

export async function powerSet(ctx: PowerContext, port: number, on: boolean): Promise<void> {
  await ctx.snmp.setVerified([{ oid: adminOid(ctx, port), type: "Integer", value: on ? TruthValue.true : TruthValue.false }]);
}

export async function powerGet(ctx: PowerContext, port: number): Promise<boolean> {
  const [vb] = await ctx.snmp.get([adminOid(ctx, port)]);
  if (vb.value === TruthValue.true) return true;
  if (vb.value === TruthValue.false) return false;
  throw noPort(ctx, port, vb.value);
}

export type PoeDetection = "disabled" | "searching" | "deliveringPower" | "fault" | "test" | "otherFault" | "unknown";

/**
 * pethPsePortDetectionStatus: whether power actually flows (a device is drawing it). Shared by
 * every vendor whose MIB augments the standard port table.
 */
export async function poeDetection(ctx: PowerContext, ports: number[]): Promise<Map<number, PoeDetection>> {
  const vbs = await ctx.snmp.get(ports.map((p) => `${OID.pethPsePortDetectionStatus}.${ctx.group}.${p}`));
  return new Map(ports.map((p, i) => [p, (typeof vbs[i].value === "number" ? DetectionStatus[vbs[i].value as number] : undefined) as PoeDetection | undefined ?? "unknown"]));
}

export function noPort(ctx: PowerContext, port: number, value: unknown): SnmpError {
  const what = value === null ? "does not exist" : `reads ${String(value)}`;
  return new SnmpError("missing", `${ctx.snmp.label}: port ${port} of PoE group ${ctx.group} ${what} — not a PoE port, or the wrong switch.poe.group / driver`, ctx.snmp.label);
}

registerPowerDriver({ name: "rfc3621", describes: "POWER-ETHERNET-MIB pethPsePortAdminEnable (RFC 3621)", powerSet, powerGet });
