import { afterAll, describe, expect, it } from "vitest";
import { v1 } from "@pifleet/proto";
import { SimFleet, SqliteStore } from "@pifleet/coordinator";
import { startCoordinator, waitFor, type Harness } from "./harness.js";

// Last reports reach the database as a steady trickle while the coordinator runs, each Pi about
// once per stateFlushMs, in the stored form a restart reads back (sample + facts).
let h: Harness | undefined;
let sim: SimFleet | undefined;
afterAll(async () => {
  await sim?.stop();
  await h?.stop();
});

describe("the last-report flush", () => {
  it("writes every reporting Pi's last sample and facts within about stateFlushMs, without a stop", async () => {
    const pis = Array.from({ length: 20 }, (_, i) => `pi${String(i + 1).padStart(2, "0")}`);
    h = await startCoordinator({ pis, settings: { reportIntervalMs: 200, stateFlushMs: 1000 } });
    sim = new SimFleet({ url: h.coord.url("agent"), agents: pis.map((identity) => ({ identity, secret: h!.secrets.get(identity)! })), intervalMs: 200 });
    await sim.start();
    const since = Date.now();
    const reader = new SqliteStore(h.store.file);
    try {
      const stored = await waitFor(
        "every Pi's last report in the database",
        () => {
          const rows = reader.piStates().filter((r) => r.lastReport && (r.lastSeenMs ?? 0) > since);
          return rows.length === pis.length && rows;
        },
        5000,
      );
      for (const row of stored) {
        const st = v1.PiStatus.decode(row.lastReport!);
        expect(st.facts!.interfaces).toEqual(["eth0", "eth0.131", "eth0.2"]);
        expect(Number(st.lastSample!.timeMs)).toBeGreaterThan(since - 1000);
      }
    } finally {
      reader.close();
    }
  });
});
