import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, loadCoordinatorConfig, parseCoordinatorConfig } from "@pifleet/coordinator";

const dir = mkdtempSync(path.join(tmpdir(), "pifleet-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const FILE = "/etc/pifleet/coordinator.yaml";

function errorOf(text: string): ConfigError {
  try {
    parseCoordinatorConfig(text, FILE);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("coordinator config", () => {
  it("fills defaults derived from the report interval, and resolves paths against the file", () => {
    const c = parseCoordinatorConfig("fleet: fleet.yaml\nreportIntervalMs: 500\ndatabase: ../lib/c.db\n", FILE);
    expect(c.fleet).toBe("/etc/pifleet/fleet.yaml");
    expect(c.database).toBe("/etc/lib/c.db");
    expect(c.listen).toEqual({ host: "::", port: 7300 });
    expect(c.settings).toMatchObject({ reportIntervalMs: 500, suspectAfterMs: 1000, downAfterMs: 1500, helloTimeoutMs: 5000, maxFrameBytes: 262_144 });
    expect(c.tls).toBeUndefined();
  });

  it("takes every documented field", () => {
    const c = parseCoordinatorConfig(
      [
        "fleet: /srv/fleet.yaml",
        "listen: { host: 127.0.0.1, port: 7400 }",
        "database: /var/lib/pifleet/c.db",
        "tls: { cert: tls/cert.pem, key: /k.pem }",
        "staticDir: /usr/share/pifleet/dashboard",
        "reportIntervalMs: 1000",
        "suspectAfterMs: 2500",
        "downAfterMs: 4000",
        "startupGraceMs: 0",
        "maxFrameBytes: 65536",
        "helloTimeoutMs: 2000",
        "feedBatchMs: 2",
        "recentEvents: 50",
        "stateFlushMs: 1000",
      ].join("\n"),
      FILE,
    );
    expect(c.tls).toEqual({ cert: "/etc/pifleet/tls/cert.pem", key: "/k.pem" });
    expect(c.listen).toEqual({ host: "127.0.0.1", port: 7400 });
    expect(c.settings).toMatchObject({ suspectAfterMs: 2500, downAfterMs: 4000, startupGraceMs: 0, maxFrameBytes: 65536, helloTimeoutMs: 2000, feedBatchMs: 2, recentEvents: 50, stateFlushMs: 1000 });
  });

  it.each([
    ["listen:\n  port: 70000\nfleet: f.yaml", /coordinator\.yaml: listen\.port: .*65535/],
    ["fleet: f.yaml\nreportIntervalMs: fast", /coordinator\.yaml: reportIntervalMs: .*number/],
    ["reportIntervalMs: 1000", /coordinator\.yaml: fleet: /],
    ["fleet: f.yaml\ntls: { cert: c.pem }", /coordinator\.yaml: tls\.key: /],
    ["fleet: f.yaml\nsuspectAfterMs: 3000\ndownAfterMs: 2000", /coordinator\.yaml: downAfterMs: must be greater than suspectAfterMs \(3000\)/],
    ["fleet: f.yaml\nlisten: { hots: x }", /coordinator\.yaml: listen: unknown key "hots"/],
    ["fleet: f.yaml\nfleet: g.yaml", /coordinator\.yaml: line 2: .*/],
  ])("names the file and the field at fault: %s", (text, message) => {
    expect(errorOf(text).message).toMatch(message);
  });

  it("reports every issue at once", () => {
    const e = errorOf("listen: { port: -1 }\nmaxFrameBytes: 1\n");
    expect(e.issues.map((i) => i.path).sort()).toEqual(["fleet", "listen.port", "maxFrameBytes"]);
  });

  it("says when the file cannot be read", () => {
    expect(() => loadCoordinatorConfig(path.join(dir, "missing.yaml"))).toThrow(/missing\.yaml: .*cannot read: ENOENT/);
    writeFileSync(path.join(dir, "ok.yaml"), "fleet: fleet.yaml\n");
    expect(loadCoordinatorConfig(path.join(dir, "ok.yaml")).fleet).toBe(path.join(dir, "fleet.yaml"));
  });
});
