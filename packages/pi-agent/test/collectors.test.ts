import { describe, it, expect, beforeEach, afterEach } from "vitest";
import { cpSync, mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import {
  LoadavgCollector,
  CpuCollector,
  MemoryCollector,
  UptimeCollector,
  ThermalCollector,
  NetdevCollector,
  createCollectors,
  checkAgentConfig,
} from "@pifleet/pi-agent";

const FIXTURE = fileURLToPath(new URL("./fixtures/pi3", import.meta.url));
const signal = () => AbortSignal.timeout(5000);

/** A writable copy of the Pi fixture, so a test can change a file between two reads. */
let root: string;
let paths: { proc: string; sys: string };
beforeEach(() => {
  root = mkdtempSync(path.join(tmpdir(), "pi-agent-fixture-"));
  cpSync(FIXTURE, root, { recursive: true });
  paths = { proc: path.join(root, "proc"), sys: path.join(root, "sys") };
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe("loadavg", () => {
  it("reads the three load averages from /proc/loadavg", async () => {
    expect(await new LoadavgCollector(paths).collect(signal())).toEqual({ load: { one: 0.52, five: 0.58, fifteen: 0.59 } });
  });

  it("names the file and field when the content is not a number", async () => {
    writeFileSync(path.join(paths.proc, "loadavg"), "0.52 x 0.59 2/345 12345\n");
    await expect(new LoadavgCollector(paths).collect(signal())).rejects.toThrow(/loadavg: 5-minute load is not a number/);
  });
});

describe("uptime", () => {
  it("reads whole seconds since boot from /proc/uptime", async () => {
    expect(await new UptimeCollector(paths).collect(signal())).toEqual({ uptimeS: 302465 });
  });
});

describe("memory", () => {
  it("converts MemTotal and MemAvailable from kB to bytes", async () => {
    expect(await new MemoryCollector(paths).collect(signal())).toEqual({ memTotalBytes: 949448 * 1024, memAvailableBytes: 712340 * 1024 });
  });

  it("estimates available memory on kernels without MemAvailable", async () => {
    writeFileSync(path.join(paths.proc, "meminfo"), "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 20 kB\nCached: 300 kB\n");
    expect(await new MemoryCollector(paths).collect(signal())).toEqual({ memTotalBytes: 1000 * 1024, memAvailableBytes: 420 * 1024 });
  });

  it("refuses a file without MemTotal", async () => {
    writeFileSync(path.join(paths.proc, "meminfo"), "MemFree: 100 kB\n");
    await expect(new MemoryCollector(paths).collect(signal())).rejects.toThrow(/meminfo: no MemTotal line/);
  });
});

describe("cpu", () => {
  it("reports the busy share of the ticks between two reports", async () => {
    const cpu = new CpuCollector(paths);
    // First report: since boot. busy = 1000+10+500+40 = 1550 of 9750 ticks.
    expect((await cpu.collect(signal())).cpuPercent).toBeCloseTo((100 * 1550) / 9750, 6);
    // Next: +300 user, +100 system, +500 idle, +100 iowait → 400 busy of 1000.
    writeFileSync(path.join(paths.proc, "stat"), "cpu  1300 10 600 8500 300 0 40 0 0 0\ncpu0 1 2 3 4\n");
    expect((await cpu.collect(signal())).cpuPercent).toBeCloseTo(40, 6);
    // No ticks elapsed: 0, not NaN.
    expect((await cpu.collect(signal())).cpuPercent).toBe(0);
  });

  it("leaves guest time out of the total (it is already in user)", async () => {
    const cpu = new CpuCollector(paths);
    writeFileSync(path.join(paths.proc, "stat"), "cpu  100 0 0 100 0 0 0 0 100 0\n");
    expect((await cpu.collect(signal())).cpuPercent).toBeCloseTo(50, 6);
  });
});

describe("thermal", () => {
  it("reports the hottest zone in °C", async () => {
    expect(await new ThermalCollector(paths).collect(signal())).toEqual({ temperatureC: 51.5 });
  });

  it("leaves the field unset when there is no thermal zone", async () => {
    rmSync(path.join(paths.sys, "class", "thermal"), { recursive: true });
    const part = await new ThermalCollector(paths).collect(signal());
    expect(part).toEqual({});
    expect("temperatureC" in part).toBe(false);
  });

  it("skips a zone that cannot be read", async () => {
    rmSync(path.join(paths.sys, "class", "thermal", "thermal_zone1", "temp"));
    mkdirSync(path.join(paths.sys, "class", "thermal", "thermal_zone7"));
    writeFileSync(path.join(paths.sys, "class", "thermal", "thermal_zone7", "temp"), "garbage\n");
    expect(await new ThermalCollector(paths).collect(signal())).toEqual({ temperatureC: 47.236 });
  });
});

describe("netdev", () => {
  it("reads every interface but lo, including a VLAN whose counters touch the colon", async () => {
    const { net } = await new NetdevCollector(paths).collect(signal());
    expect(net).toEqual([
      { interface: "eth0", rxBytes: 9876543210, rxPackets: 7654321, rxErrors: 3, txBytes: 1234567890, txPackets: 2345678, txErrors: 0 },
      { interface: "eth0.131", rxBytes: 123456789012, rxPackets: 98765432, rxErrors: 0, txBytes: 987654321098, txPackets: 87654321, txErrors: 2 },
    ]);
  });

  it("keeps only the configured interfaces", async () => {
    const { net } = await new NetdevCollector(paths, ["eth0.131", "lo"]).collect(signal());
    expect(net!.map((n) => n.interface)).toEqual(["lo", "eth0.131"]);
  });

  it("refuses a line with missing counters", async () => {
    writeFileSync(path.join(paths.proc, "net", "dev"), "h1\nh2\n  eth0: 1 2 3\n");
    await expect(new NetdevCollector(paths).collect(signal())).rejects.toThrow(/eth0: expected 16 counters, found 3/);
  });
});

describe("kernel file reads", () => {
  it("grows past the initial buffer for a large file", async () => {
    const lines = ["h1", "h2"];
    for (let i = 0; i < 64; i++) lines.push(`  veth${i}: ${Array.from({ length: 16 }, (_, j) => 1_000_000 + i * 100 + j).join(" ")}`);
    writeFileSync(path.join(paths.proc, "net", "dev"), `${lines.join("\n")}\n`);
    const { net } = await new NetdevCollector(paths).collect(signal());
    expect(net).toHaveLength(64);
    expect(net![63]).toMatchObject({ interface: "veth63", rxBytes: 1_006_300, txErrors: 1_006_310 });
  });

  it("gives up when the deadline has passed", async () => {
    const ac = new AbortController();
    ac.abort(new Error("deadline"));
    await expect(new LoadavgCollector(paths).collect(ac.signal)).rejects.toThrow(/deadline/);
  });
});

describe("registry", () => {
  it("builds only the collectors the config enables, with their deadlines", () => {
    const config = checkAgentConfig({
      coordinator: { url: "ws://[::1]:7300/agent" },
      identity: "pi1",
      secretFile: "/etc/pifleet/pi-agent.secret",
      paths,
      collectors: { thermal: false, apache: { enabled: false }, probe: { deadlineMs: 300 } },
    });
    const built = createCollectors(config.collectors, { paths: config.paths });
    expect(built.map((c) => c.name)).toEqual(["loadavg", "cpu", "memory", "uptime", "netdev", "rootfs", "probe"]);
    expect(built.find((c) => c.name === "probe")!.deadlineMs).toBe(300);
    expect(built.find((c) => c.name === "rootfs")!.deadlineMs).toBe(500);
  });
});
