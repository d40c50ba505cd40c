import type { Logger } from "@pifleet/core";
import type { Store } from "../store/types.js";
import type { HaBackend } from "./backend.js";
import { EtcdBackend } from "./etcd.js";
import { singleBackend } from "./single.js";
import type { HaSection } from "./config.js";

type Factory = (o: { ha: HaSection; store: Store; fleet: string; logger: Logger }) => HaBackend;

/** Backends by name; `single` when coordinator.yaml has no `ha:`. */
const backends: Record<string, Factory> = {
  single: ({ ha, store }) => singleBackend(store, ha?.name),
  etcd: ({ ha, fleet, logger }) =>
    new EtcdBackend({ endpoints: ha!.etcd!.endpoints, tls: ha!.etcd!.tls, auth: ha!.etcd!.auth, name: ha!.name, fleet, leaseTtlS: ha!.leaseTtlS, logger: logger.child({ part: "ha" }) }),
};

export function openHaBackend(o: { ha: HaSection | undefined; store: Store; fleet: string; logger: Logger }): HaBackend {
  const kind = o.ha?.etcd ? "etcd" : "single";
  return backends[kind]!({ ...o, ha: o.ha as HaSection });
}

export { FencedError, type HaBackend } from "./backend.js";
