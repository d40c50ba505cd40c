import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { FleetError, loadFleet } from "@pifleet/core";
import { readFileSync } from "node:fs";

const seedYaml = readFileSync(new URL("../../../examples/seed-8.yaml", import.meta.url), "utf8");
const dir = mkdtempSync(path.join(tmpdir(), "pifleet-fleet-"));

function issuesOf(yaml: string): { file: string; issues: FleetError["issues"]; message: string } {
  const file = path.join(dir, `f${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, yaml);
  try {
    loadFleet(file);
  } catch (err) {
    expect(err).toBeInstanceOf(FleetError);
    const e = err as FleetError;
    expect(e.message.startsWith(`${file}: `)).toBe(true);
    expect(e.message).not.toMatch(/\n\s+at /);
    return { file, issues: e.issues, message: e.message };
  }
  throw new Error("fleet was accepted");
}

describe("bad fleet files name the file, the field and the fault", () => {
  it("duplicate ports", () => {
    const { issues } = issuesOf(seedYaml.replace("{ name: pi02, port: 2 }", "{ name: pi02, port: 1 }"));
    expect(issues).toContainEqual({ path: "pis[1].port", message: "port 1 is already used by pis[0] (pi01)" });
  });
  it("duplicate names", () => {
    const { issues } = issuesOf(seedYaml.replace("{ name: pi02, port: 2 }", "{ name: pi01, port: 2 }"));
    expect(issues).toContainEqual({ path: "pis[1].name", message: '"pi01" is already used by pis[0]' });
  });
  it("VLAN id out of range", () => {
    expect(issuesOf(seedYaml.replace("firstVlan: 10", "firstVlan: 4095")).issues[0].path).toBe("private.firstVlan");
    expect(issuesOf(seedYaml.replace("firstVlan: 10", "firstVlan: 0")).issues[0].path).toBe("private.firstVlan");
    const { issues } = issuesOf(seedYaml.replace("firstVlan: 10", "firstVlan: 4090"));
    expect(issues.some((i) => i.path === "pis[5].port" && i.message.includes("VLAN 4095"))).toBe(true);
  });
  it("private VLAN colliding with the public VLAN", () => {
    const { issues } = issuesOf(seedYaml.replace("firstVlan: 10", "firstVlan: 128"));
    expect(issues).toHaveLength(1);
    expect(issues[0].path).toBe("pis[3].port");
    expect(issues[0].message).toContain("public VLAN");
  });
  it("the trunk port used by a Pi", () => {
    const { issues } = issuesOf(seedYaml.replace("{ name: pi08, port: 8 }", "{ name: pi08, port: 24 }"));
    expect(issues).toContainEqual({ path: "pis[7].port", message: "port 24 is the fileserver trunk (switch.trunkPort)" });
  });
  it("a malformed prefix", () => {
    expect(issuesOf(seedYaml.replace("prefix: 2a00:1098:0:84::/64", "prefix: 2a00:1098:zz::/64")).issues).toContainEqual({
      path: "public.prefix",
      message: '"2a00:1098:zz::" is not an IPv6 address',
    });
    expect(issuesOf(seedYaml.replace("range: 10.46.189.0/24", "range: 10.46.189.7/24")).issues[0].message).toContain("host bits");
  });
  it("an export root that is not absolute", () => {
    const { issues } = issuesOf(seedYaml.replace("exportRoot: /export", "exportRoot: export"));
    expect(issues).toContainEqual({ path: "fileserver.exportRoot", message: "must be an absolute path" });
    expect(issuesOf(seedYaml.replace("exportRoot: /export", "exportRoot: /export/../etc")).issues[0].path).toBe("fileserver.exportRoot");
  });
  it("unknown keys", () => {
    const { issues } = issuesOf(seedYaml.replace("  trunkPort: 24", "  trunkPort: 24\n  trunkport: 23"));
    expect(issues).toContainEqual({ path: "switch", message: 'unknown key "trunkport"' });
  });
  it("YAML syntax errors and missing files", () => {
    expect(issuesOf("name: [unclosed\n").issues[0].path).toMatch(/^line \d+/);
    expect(() => loadFleet(path.join(dir, "nope.yaml"))).toThrow(/nope\.yaml: \(top level\): cannot read: ENOENT/);
  });
  it("reports every issue at once", () => {
    const bad = seedYaml.replace("{ name: pi02, port: 2 }", "{ name: pi01, port: 24 }").replace("gateway: 2a00:1098:0:84::1", "gateway: 2a00:1098:0:85::1");
    expect(issuesOf(bad).issues.map((i) => i.path).sort()).toEqual(["pis[1].name", "pis[1].port", "public.gateway"]);
  });
});
