import { performance } from "node:perf_hooks";
import type { BenchRow } from "./row.js";
import { checkFleet, FleetError, plan, type FleetInput } from "../index.js";


function fleetOf(n: number): FleetInput {
  const prefixLength = 32 - Math.ceil(Math.log2(Math.max(4, n * 4)));
  return {
    name: "bench",
    switch: { address: "127.0.0.1", snmp: { version: "2c", community: { env: "C" } }, trunkPort: n + 1 },
    fileserver: { goldenImage: "/srv/golden" },
    private: { range: `10.0.0.0/${Math.min(prefixLength, 30)}`, firstVlan: 2 },
    public: { vlan: 4094, prefix: "2001:db8::/64", gateway: "2001:db8::1" },
    pis: Array.from({ length: n }, (_, i) => ({ name: `pi${i + 1}`, port: i + 1 })),
  };
}

function timePlan(n: number): { ms: number; error?: string } {
  const input = fleetOf(n);
  const iterations = n <= 100 ? 200 : 5;
  let error: string | undefined;
  const start = performance.now();
  for (let i = 0; i < iterations; i++) {
    try {
      plan(checkFleet(input));
    } catch (err) {
      if (!(err instanceof FleetError)) throw err;
      error = `${err.issues.length} issues, first: ${err.issues[0].path}: ${err.issues[0].message}`;
    }
  }
  return { ms: (performance.now() - start) / iterations, error };
}

export async function run(): Promise<BenchRow[]> {
  timePlan(96); // warm-up
  const rows: BenchRow[] = [];
  for (const n of [96, 4000, 10_000]) {
    const r = timePlan(n);
    rows.push({
      name: `plan ${n} Pis (validate + derive)`,
      value: r.ms,
      unit: "ms",
      note: r.error ? `refused: one trunk carries at most 4093 private VLANs (${r.error.slice(0, 80)}…)` : "",
    });
  }
  return rows;
}
