import type { Fleet, LoadBalancerDriverName } from "@pifleet/core";
import { LoadBalancerError, type DriverOptions, type LoadBalancerDriver } from "./driver.js";

export type DriverFactory = (options: DriverOptions) => LoadBalancerDriver;

const factories = new Map<string, DriverFactory>();

/** A vendor file calls this once; a second registration under the same name is a programming error. */
export function registerDriver(name: LoadBalancerDriverName, factory: DriverFactory): void {
  if (factories.has(name)) throw new Error(`load balancer driver "${name}" is already registered`);
  factories.set(name, factory);
}

export function driverNames(): string[] {
  return [...factories.keys()].sort();
}

export function createDriver(name: string, options: DriverOptions): LoadBalancerDriver {
  const factory = factories.get(name);
  if (!factory) {
    throw new LoadBalancerError(`loadBalancer.driver: unknown driver "${name}" (known: ${driverNames().join(", ") || "none"})`);
  }
  return factory(options);
}

/** The driver the fleet file names, pointed at the fleet's socket and backend. */
export function driverForFleet(fleet: Pick<Fleet, "loadBalancer">, extra: Partial<DriverOptions> = {}): LoadBalancerDriver {
  const lb = fleet.loadBalancer;
  return createDriver(lb.driver, { socket: lb.socket, backend: lb.backend, ...extra });
}
