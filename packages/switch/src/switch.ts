import { createLogger, type Logger } from "@pifleet/core";
import { LinkReader } from "./link.js";
import { createPowerDriver, poeDetection, powerCycle, type PoeDetection, type PowerCycleResult, type PowerDriver } from "./power/index.js";
import type { SwitchResource } from "./resource.js";
import { SnmpClient, type SnmpClientOptions } from "./snmp/client.js";
import type { VlanDriver } from "./vlan/driver.js";
import { QBridgeVlanDriver } from "./vlan/qbridge.js";

export interface PortStatus {
  port: number;
  power: boolean;
  detection: PoeDetection;
  link: string;
}

/**
 * A switch opened for work: the resource, one SNMP session, and the drivers the fleet names.
 * `power.powerSet/powerGet` are for callers that journal each step (the recovery engine);
 * `powerCycle` is the whole off-dwell-on sequence.
 */
export interface SwitchHandle {
  readonly resource: SwitchResource;
  readonly snmp: SnmpClient;
  readonly power: PowerDriver;
  readonly vlans: VlanDriver;
  readonly link: LinkReader;
  powerCycle(port: number, dwellMs?: number): Promise<PowerCycleResult>;
  status(ports: number[]): Promise<PortStatus[]>;
  close(): Promise<void>;
}

export function openSwitch(resource: SwitchResource, options: SnmpClientOptions = {}): SwitchHandle {
  const logger: Logger = options.logger ?? createLogger("switch");
  const snmp = new SnmpClient(
    { name: resource.name, host: resource.address, port: resource.snmpPort },
    { write: resource.credentials, read: resource.readCredentials },
    { ...options, logger },
  );
  const ctx = { snmp, group: resource.poe.group };
  const power = createPowerDriver(resource.poe.driver, ctx);
  const link = new LinkReader(snmp);
  return {
    resource,
    snmp,
    power,
    vlans: new QBridgeVlanDriver(snmp),
    link,
    powerCycle: (port, dwellMs = resource.poe.dwellMs) => powerCycle(power, port, dwellMs, { logger: logger.child({ switch: resource.name }) }),
    async status(ports) {
      const out: PortStatus[] = [];
      const detection = await poeDetection(ctx, ports);
      const links = await link.states(ports);
      for (const port of ports) out.push({ port, power: await power.powerGet(port), detection: detection.get(port) ?? "unknown", link: links.get(port) ?? "unknown" });
      return out;
    },
    close: () => snmp.close(),
  };
}
