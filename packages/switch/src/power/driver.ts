import type { PoeDriverName } from "@pifleet/core";
import type { SnmpClient } from "../snmp/client.js";

/** What a PoE driver acts through: the switch's SNMP session and its PSE group (module). */
export interface PowerContext {
  snmp: SnmpClient;
  group: number;
}

/**
 * One vendor's way of switching PoE, as two functions (like labgrid's driver/power/*.py). A new
 * vendor is one new file that defines these and registers them under a name the fleet file's
 * `switch.poe.driver` can use.
 */
export interface PowerDriverDefinition {
  /** One of core's POE_DRIVERS, so the fleet file's check and this registry agree. */
  name: PoeDriverName;
  /** The MIB object it writes, for `--help` and error messages. */
  describes: string;
  /** Turns PoE on the port on or off; resolves once the switch reads back the new state. */
  powerSet(ctx: PowerContext, port: number, on: boolean): Promise<void>;
  /** Whether PoE is administratively on for the port. */
  powerGet(ctx: PowerContext, port: number): Promise<boolean>;
}

/** A driver bound to one switch. */
export interface PowerDriver {
  readonly name: string;
  powerSet(port: number, on: boolean): Promise<void>;
  powerGet(port: number): Promise<boolean>;
}
