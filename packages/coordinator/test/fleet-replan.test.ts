import { describe, expect, it } from "vitest";
import { defaultThresholds, FleetState } from "@pifleet/coordinator";
import { v1 } from "@pifleet/proto";

const good = () => v1.PiSample.create({ timeMs: 1, apache: { reachable: true, busyWorkers: 1, idleWorkers: 9 }, probe: { ok: true, status: 200 }, rootfs: { stalled: false } });

describe("fleet state: replan (a fleet-file reload)", () => {
  it("adds, removes and moves Pis; a new Pi's start-up grace counts from the reload, not from the start", () => {
    let now = 1_000_000;
    const fleet = new FleetState(
      [
        { name: "pi01", port: 1 },
        { name: "pi02", port: 2 },
      ],
      { ...defaultThresholds(1000), startupGraceMs: 10_000 },
      { now: () => now },
    );
    fleet.sample("pi01", good(), now);
    fleet.sample("pi02", good(), now);
    now += 60_000; // long past the run's own grace
    fleet.sample("pi01", good(), now);
    const statuses: v1.FleetStatus[] = [];
    fleet.on("fleetStatus", (s) => statuses.push(v1.FleetStatus.create({ ...s })));
    const diff = fleet.replan([
      { name: "pi01", port: 5 },
      { name: "pi03", port: 3 },
    ]);
    expect(diff).toEqual({ added: ["pi03"], removed: ["pi02"], changed: ["pi01"] });
    expect([...fleet.pis.keys()].sort()).toEqual(["pi01", "pi03"]);
    expect(fleet.pis.get("pi01")!.status.port).toBe(5);
    expect(fleet.pis.get("pi01")!.health).toBe("healthy"); // moved, state kept
    expect(statuses.at(-1)).toMatchObject({ pisTotal: 2, pisRemoved: ["pi02"] });

    // Within its own grace, silence does not make the new Pi down (recovery would cycle it).
    now += 5_000;
    fleet.sample("pi01", good(), now);
    fleet.sweep(now);
    expect(fleet.pis.get("pi03")!.health).toBe("unknown");
    now += 10_000;
    fleet.sample("pi01", good(), now);
    fleet.sweep(now);
    expect(fleet.pis.get("pi03")!.health).toBe("down");

    // Added back: no longer listed as removed.
    fleet.replan([
      { name: "pi01", port: 5 },
      { name: "pi02", port: 2 },
      { name: "pi03", port: 3 },
    ]);
    expect(fleet.fleetStatus.pisRemoved).toEqual([]);
    expect(fleet.pis.get("pi02")!.health).toBe("unknown");
  });
});
