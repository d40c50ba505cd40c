import { OID } from "../snmp/oids.js";
import type { PowerContext } from "./driver.js";
import { registerPowerDriver } from "./registry.js";
import { noPort } from "./rfc3621.js";

/**
 * CISCO-POWER-ETHERNET-EXT-MIB cpeExtPsePortEnable.{module}.{port} (the table AUGMENTS the standard
 * pethPsePortTable, so {module} is the PSE group): auto(1) detects a device and powers it,
 * static(2) pre-allocates power, limit(3) polices it, disable(4) turns PoE off. "On" is auto, the
 * IOS default; reading static or limit also means on.
 */
const Enable = { auto: 1, static: 2, limit: 3, disable: 4 } as const;

function enableOid(ctx: PowerContext, port: number): string {
  return `${OID.cpeExtPsePortEnable}.${ctx.group}.${port}`;
}

export async function powerSet(ctx: PowerContext, port: number, on: boolean): Promise<void> {
  await ctx.snmp.setVerified([
    {
      oid: enableOid(ctx, port),
      type: "Integer",
      value: on ? Enable.auto : Enable.disable,
      // A port someone set to static or limit is on too; do not fight their power policy.
      expect: (got) => (on ? got === Enable.auto || got === Enable.static || got === Enable.limit : got === Enable.disable),
    },
  ]);
}

export async function powerGet(ctx: PowerContext, port: number): Promise<boolean> {
  const [vb] = await ctx.snmp.get([enableOid(ctx, port)]);
  if (vb.value === Enable.disable) return false;
  if (vb.value === Enable.auto || vb.value === Enable.static || vb.value === Enable.limit) return true;
  throw noPort(ctx, port, vb.value);
}

registerPowerDriver({ name: "cisco", describes: "CISCO-POWER-ETHERNET-EXT-MIB cpeExtPsePortEnable", powerSet, powerGet });
