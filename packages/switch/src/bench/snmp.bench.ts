import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { createLogger, parseFleet, plan, type BenchRow } from "@pifleet/core";
import { startSwitchEmulator } from "../emulator/emulator.js";
import { switchResourceFromFleet } from "../resource.js";
import { openSwitch } from "../switch.js";
import { applySwitchPlan } from "../vlan/apply.js";

const quiet = createLogger("bench", { level: "silent" });
const RW = "bench-rw-community";

function fleetAt(file: string, port: number) {
  const yaml = readFileSync(new URL(`../../../../examples/${file}`, import.meta.url), "utf8").replace("snmpPort: 16161", `snmpPort: ${port}`);
  return parseFleet(yaml, file);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** One verified PoE write = one set PDU + one read-back GET, client and emulator in this process over loopback UDP. */
async function verifiedPowerSet(version: "2c" | "3"): Promise<BenchRow> {
  const users = [{ name: "bench", authProtocol: "sha256" as const, authKey: "bench-auth-key", privProtocol: "aes" as const, privKey: "bench-priv-key" }];
  const emu = await startSwitchEmulator({ ports: 24, rwCommunity: RW, users, logger: quiet });
  const fleet = fleetAt("seed-8.yaml", emu.port);
  if (version === "3") {
    fleet.shelves[0].switch.snmp = { version: "3", user: "bench", authProtocol: "sha256", authKey: { env: "A" }, privProtocol: "aes", privKey: { env: "P" } };
  }
  const sw = openSwitch(switchResourceFromFleet(fleet, { PIFLEET_SNMP_COMMUNITY: RW, A: "bench-auth-key", P: "bench-priv-key" }), { logger: quiet });
  try {
    await sw.power.powerSet(1, true); // v3 engine discovery out of the way
    const times: number[] = [];
    for (let i = 0; i < 60; i++) {
      const t0 = performance.now();
      await sw.power.powerSet(1 + (i % 8), i % 2 === 0 ? false : true);
      times.push(performance.now() - t0);
    }
    return { name: `switch: one verified PoE set (SNMP${version === "3" ? "v3 authPriv sha256/aes" : "v2c"})`, value: median(times), unit: "ms", note: "median of 60; set + read-back over loopback, emulator in-process" };
  } finally {
    await sw.close();
    await emu.stop();
  }
}

/** The whole 96-Pi table on a fresh 104-port emulator: 97 VLANs created and configured, 96 PVIDs. */
async function apply96(): Promise<BenchRow[]> {
  const times: number[] = [];
  let pdus = 0;
  let readMs = 0;
  for (let round = 0; round < 3; round++) {
    const emu = await startSwitchEmulator({ ports: 104, rwCommunity: RW, logger: quiet });
    const fleet = fleetAt("shelf-96.yaml", emu.port);
    const sw = openSwitch(switchResourceFromFleet(fleet, { PIFLEET_SNMP_COMMUNITY: RW }), { logger: quiet });
    try {
      const t0 = performance.now();
      await applySwitchPlan(sw.vlans, plan(fleet).shelves[0].switch, { logger: quiet });
      times.push(performance.now() - t0);
      pdus = sw.snmp.stats.setPdus + sw.snmp.stats.getPdus;
      const t1 = performance.now();
      await sw.vlans.read();
      readMs = performance.now() - t1;
    } finally {
      await sw.close();
      await emu.stop();
    }
  }
  return [
    { name: "switch: apply the 96-Pi VLAN table (fresh switch)", value: median(times), unit: "ms", note: `median of 3; ${pdus} PDUs incl. read-backs and the final re-read` },
    { name: "switch: read the 96-Pi VLAN table (diff input)", value: readMs, unit: "ms", note: "walks of dot1qVlanStaticTable, dot1qPvid, dot1dBasePortIfIndex" },
  ];
}

export async function run(): Promise<BenchRow[]> {
  return [await verifiedPowerSet("2c"), await verifiedPowerSet("3"), ...(await apply96())];
}
