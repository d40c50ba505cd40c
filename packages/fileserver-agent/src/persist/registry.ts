import type { PersistDriver } from "./driver.js";
import { ifupdownDriver } from "./ifupdown.js";
import { networkdDriver } from "./networkd.js";

export const PERSIST_DRIVERS: readonly PersistDriver[] = [ifupdownDriver, networkdDriver];

export function persistDriver(name: string): PersistDriver {
  const d = PERSIST_DRIVERS.find((x) => x.name === name);
  if (!d) throw new Error(`fileserver.network: no persistence driver "${name}" (have ${PERSIST_DRIVERS.map((x) => x.name).join(", ")})`);
  return d;
}
