import type { IntentStore } from "@pifleet/recovery";
import type { Store } from "../store/types.js";
import type { HaBackend } from "./backend.js";

/** One coordinator, SQLite: always the leader, intents in the store, nothing to fence against. */
export function singleBackend(store: Store, name = "coordinator"): HaBackend {
  const intents: IntentStore = {
    openIntent: (pi, port, reason) => store.openIntent(pi, port, reason, "cycle"),
    closeIntent: (id, outcome, note) => store.closeIntent(id, outcome, note),
    openIntents: () => store.openIntents().map((i) => ({ id: i.id, pi: i.pi, port: i.port, reason: i.reason, createdMs: i.createdMs, offMs: i.offMs ?? undefined })),
    markOff: (id, atMs) => store.intentOff(id, atMs),
  };
  return {
    kind: "single",
    name,
    start: async () => {},
    isLeader: () => true,
    leader: () => name,
    healthy: () => true,
    fence: async () => {},
    intents,
    shareView: () => {},
    peerVerdict: () => undefined,
    onLost: () => {},
    stop: async () => {},
  };
}
