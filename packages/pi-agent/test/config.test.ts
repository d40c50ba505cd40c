import { describe, it, expect } from "vitest";
import { parseAgentConfig, loadAgentConfig } from "@pifleet/pi-agent";

const MINIMAL = `
coordinator:
  url: ws://[2a00:1098:0:84::10]:7300/agent
identity: pi1
secretFile: /etc/pifleet/pi-agent.secret
`;

describe("pi agent config", () => {
  it("fills every default from a minimal file", () => {
    const c = parseAgentConfig(MINIMAL, "pi-agent.yaml");
    expect(c).toMatchObject({
      identity: "pi1",
      intervalMs: 1000,
      queue: 300,
      paths: { proc: "/proc", sys: "/sys" },
      commands: { restartApache: ["systemctl", "restart", "apache2"], reboot: ["systemctl", "reboot"], timeoutMs: 120_000 },
    });
    expect(c.localAddress).toBeUndefined();
    expect(c.collectors.apache).toEqual({ enabled: true, deadlineMs: 700, url: "http://localhost/server-status?auto" });
    expect(c.collectors.probe).toEqual({ enabled: true, deadlineMs: 700, url: "http://localhost/" });
    expect(c.collectors.rootfs).toEqual({ enabled: true, deadlineMs: 500, path: "/" });
    expect(c.collectors.loadavg).toEqual({ enabled: true, deadlineMs: 200 });
  });

  it("takes the seed's public address as the source address and true/false as collector switches", () => {
    const c = parseAgentConfig(`${MINIMAL}localAddress: "2a00:1098:0:84:1000:1::2"\ncollectors:\n  thermal: false\n  netdev: { interfaces: [eth0, eth0.131] }\n`);
    expect(c.localAddress).toBe("2a00:1098:0:84:1000:1::2");
    expect(c.collectors.thermal.enabled).toBe(false);
    expect(c.collectors.netdev).toMatchObject({ enabled: true, interfaces: ["eth0", "eth0.131"] });
  });

  it("shortens default deadlines to fit a short interval, but refuses an explicit one that does not fit", () => {
    const c = parseAgentConfig(`${MINIMAL}intervalMs: 250\n`);
    expect(c.collectors.apache.deadlineMs).toBe(200);
    expect(c.collectors.loadavg.deadlineMs).toBe(200);
    expect(() => parseAgentConfig(`${MINIMAL}intervalMs: 500\ncollectors:\n  probe: { deadlineMs: 500 }\n`, "pi.yaml")).toThrow(
      "pi.yaml: collectors.probe.deadlineMs: must be below intervalMs (500)",
    );
  });

  it("names the file and every field at fault", () => {
    const bad = `
coordinator:
  url: http://coordinator/agent
identity: Pi_One
secretFile: relative/secret
localAddress: eth0.131
intervalMs: 10
collectors:
  apache: { url: "localhost/server-status" }
  gpu: true
commands:
  reboot: []
`;
    let message = "";
    try {
      parseAgentConfig(bad, "/etc/pifleet/pi-agent.yaml");
    } catch (err) {
      message = (err as Error).message;
    }
    const lines = message.split("\n");
    expect(lines.every((l) => l.startsWith("/etc/pifleet/pi-agent.yaml: "))).toBe(true);
    expect(message).toContain("coordinator.url: must be a ws:// or wss:// URL");
    expect(message).toContain("identity: must be the Pi's enrolled name");
    expect(message).toContain("secretFile: must be an absolute path");
    expect(message).toContain("localAddress: must be an IP address");
    expect(message).toContain("intervalMs:");
    expect(message).toContain("collectors.apache.url: must be an http:// or https:// URL");
    expect(message).toContain('collectors: unknown key "gpu"');
    expect(message).toContain("commands.reboot: must name a program to run");
  });

  it("reports YAML syntax errors by line, and a missing file by name", () => {
    expect(() => parseAgentConfig("identity: [pi1\n", "x.yaml")).toThrow(/^x\.yaml: line \d+: /);
    expect(() => loadAgentConfig("/nonexistent/pi-agent.yaml")).toThrow("/nonexistent/pi-agent.yaml: (top level): cannot read: ENOENT");
  });

  it("requires the coordinator, identity and secret", () => {
    expect(() => parseAgentConfig("intervalMs: 1000\n", "a.yaml")).toThrow(/a\.yaml: coordinator: .*\n.*a\.yaml: identity: .*\n.*a\.yaml: secretFile: /s);
  });
});
