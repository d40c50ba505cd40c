import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { parseFleet, type Fleet } from "@pifleet/core";

const run = promisify(execFile);
const examples = new URL("../../../examples/", import.meta.url);

/** An example fleet pointed at an emulator's port (the files say 16161). */
export function exampleFleet(name: "seed-8.yaml" | "shelf-96.yaml", port: number, edit: (yaml: string) => string = (y) => y): Fleet {
  const yaml = readFileSync(new URL(name, examples), "utf8").replace("snmpPort: 16161", `snmpPort: ${port}`);
  return parseFleet(edit(yaml), name);
}

/** The same fleet with SNMPv3 credentials read from the environment. */
export function v3Fleet(port: number): Fleet {
  return exampleFleet("seed-8.yaml", port, (y) =>
    y.replace(
      /snmp:\n\s+version: "2c"\n\s+community: \{ env: PIFLEET_SNMP_COMMUNITY \}/,
      'snmp:\n    version: "3"\n    user: pifleet\n    authProtocol: sha256\n    authKey: { env: SNMP_AUTH }\n    privProtocol: aes\n    privKey: { env: SNMP_PRIV }',
    ),
  );
}

// Debian's net-snmp tools read ~/.snmp and write /var/lib/snmp; keep both in a scratch directory.
const snmpHome = mkdtempSync(path.join(tmpdir(), "pifleet-snmptools-"));
const toolEnv = { ...process.env, HOME: snmpHome, SNMPCONFPATH: snmpHome, SNMP_PERSISTENT_DIR: snmpHome, MIBS: "" };

/** Runs snmpget/snmpset/snmpwalk (async: the emulator under test shares this event loop). */
export async function snmpTool(tool: "snmpget" | "snmpset" | "snmpwalk" | "snmpbulkwalk", args: string[]): Promise<{ ok: boolean; out: string }> {
  try {
    const { stdout } = await run(tool, ["-On", "-m", "", "-r", "0", "-t", "2", ...args], { env: toolEnv, timeout: 10_000 });
    return { ok: true, out: stdout };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, out: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

export function v2cArgs(community: string, port: number): string[] {
  return ["-v2c", "-c", community, `127.0.0.1:${port}`];
}

import { createLogger } from "@pifleet/core";
/** Tests keep their stderr for failures; pass PIFLEET_TEST_LOG=debug to see the switch's logs. */
export const quiet = createLogger("switch-test", { level: process.env.PIFLEET_TEST_LOG ?? "silent" });
