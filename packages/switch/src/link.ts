import { readBridgePorts } from "./bridge.js";
import type { SnmpClient } from "./snmp/client.js";
import { IfOperStatus, OID } from "./snmp/oids.js";

export type LinkState = "up" | "down" | "testing" | "unknown" | "dormant" | "notPresent" | "lowerLayerDown";

/**
 * IF-MIB ifOperStatus of bridge ports, found through the bridge-port → ifIndex map. A port the
 * switch does not list as a bridge port reads "unknown".
 */
export class LinkReader {
  #bridgePorts?: Map<number, number>;
  constructor(private readonly snmp: SnmpClient) {}

  async states(ports: number[]): Promise<Map<number, LinkState>> {
    // The map only changes when line cards do; one walk per reader is enough.
    this.#bridgePorts ??= await readBridgePorts(this.snmp);
    const known = ports.filter((p) => this.#bridgePorts!.has(p));
    const vbs = await this.snmp.get(known.map((p) => `${OID.ifOperStatus}.${this.#bridgePorts!.get(p)}`));
    const out = new Map<number, LinkState>(ports.map((p) => [p, "unknown"]));
    known.forEach((p, i) => {
      const v = vbs[i].value;
      out.set(p, ((typeof v === "number" ? IfOperStatus[v] : undefined) ?? "unknown") as LinkState);
    });
    return out;
  }

  async state(port: number): Promise<LinkState> {
    return (await this.states([port])).get(port)!;
  }
}
