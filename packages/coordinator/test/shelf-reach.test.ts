import { describe, expect, it } from "vitest";
import { ShelfReach } from "@pifleet/coordinator";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("ShelfReach: each shelf's switch probed on its own", () => {
  it("calls a shelf unreachable after consecutive failed probes only, names its switch, and clears on an answer", async () => {
    let aUp = true;
    const reach = new ShelfReach(
      [
        { shelf: "a", label: "sw-a (10.0.0.2:161)", probe: () => (aUp ? Promise.resolve(true) : Promise.reject(new Error("Request timed out"))) },
        // Never answers at all: the probe's own timeout fails it.
        { shelf: "b", label: "sw-b (10.0.0.3:161)", probe: () => new Promise(() => undefined) },
      ],
      { intervalMs: 20, timeoutMs: 30, failures: 2 },
    );
    reach.start();
    try {
      await sleep(150);
      expect(reach.unreachable("a")).toBeUndefined();
      expect(reach.unreachable("b")).toMatch(/^the switch sw-b \(10\.0\.0\.3:161\) of shelf b is unreachable \(no answer in 0\.03 s; \d+ probes failed since /);
      aUp = false;
      await sleep(25);
      // One failure is one lost datagram, not a dead switch.
      expect(reach.unreachable("a")).toBeUndefined();
      await sleep(80);
      expect(reach.unreachable("a")).toContain("Request timed out");
      aUp = true;
      await sleep(60);
      expect(reach.unreachable("a")).toBeUndefined();
      expect(reach.unreachable("nope")).toBeUndefined();
    } finally {
      reach.stop();
    }
  });
});
