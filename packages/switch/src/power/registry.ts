import type { PowerContext, PowerDriver, PowerDriverDefinition } from "./driver.js";

const definitions = new Map<string, PowerDriverDefinition>();

/** A vendor file calls this once at load; a second registration under one name is a bug. */
export function registerPowerDriver(definition: PowerDriverDefinition): void {
  if (definitions.has(definition.name)) throw new Error(`PoE driver "${definition.name}" is already registered`);
  definitions.set(definition.name, definition);
}

export function powerDriverNames(): string[] {
  return [...definitions.keys()].sort();
}

export function powerDriverDefinition(name: string): PowerDriverDefinition | undefined {
  return definitions.get(name);
}

export class UnknownPowerDriverError extends Error {
  override name = "UnknownPowerDriverError";
}

/** Binds the named driver (fleet `switch.poe.driver`) to a switch. */
export function createPowerDriver(name: string, ctx: PowerContext): PowerDriver {
  const def = definitions.get(name);
  if (!def) throw new UnknownPowerDriverError(`switch.poe.driver: unknown PoE driver "${name}" (known: ${powerDriverNames().join(", ")})`);
  return {
    name: def.name,
    powerSet: (port, on) => def.powerSet(ctx, checkPort(port), on),
    powerGet: (port) => def.powerGet(ctx, checkPort(port)),
  };
}

function checkPort(port: number): number {
  if (!Number.isInteger(port) || port < 1) throw new RangeError(`PoE port must be a positive integer, got ${port}`);
  return port;
}
