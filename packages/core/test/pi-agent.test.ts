import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { checkFleet, DEFAULT_PI_SECRETS_DIR, plan, renderPiAgentConfig, renderPlanFiles } from "@pifleet/core";
import { issuesOf } from "./fleet-issues.js";

// The fleet file's optional piAgent: section, which makes the fileserver agent write every Pi's
// agent config (and secret) into its root; `pifleet plan` shows the config it would write.

const seed = () => parse(readFileSync(new URL("../../../examples/seed-8.yaml", import.meta.url), "utf8")) as Record<string, any>;
const withAgent = (piAgent: unknown) => ({ ...seed(), piAgent });

describe("the fleet file's piAgent section", () => {
  it("is optional: without it the plan has no piAgent and pifleet plan writes no pi-agent.yaml", () => {
    const p = plan(checkFleet(seed()));
    expect(p.piAgent).toBeUndefined();
    expect([...renderPlanFiles(p).keys()].filter((k) => k.includes("pi-agent"))).toEqual([]);
  });

  it("is planned with the default secrets folder, and only the keys given", () => {
    const p = plan(checkFleet(withAgent({ coordinator: { url: "wss://coordinator:7300/agent" } })));
    expect(p.piAgent).toEqual({ coordinator: { url: "wss://coordinator:7300/agent" }, secrets: DEFAULT_PI_SECRETS_DIR });
    expect(DEFAULT_PI_SECRETS_DIR).toBe("/etc/pifleet/pi-secrets");
  });

  it("names the field at fault", () => {
    const cases: [unknown, string, RegExp][] = [
      [{}, "piAgent.coordinator", /./],
      [{ coordinator: { url: "http://coordinator/" } }, "piAgent.coordinator.url", /ws:\/\/ or wss:\/\//],
      [{ coordinator: { url: "ws://c/", urls: ["nope"] } }, "piAgent.coordinator.urls[0]", /ws:\/\/ or wss:\/\//],
      [{ coordinator: { url: "ws://c/", ca: "ca.pem" } }, "piAgent.coordinator.ca", /absolute path/],
      [{ coordinator: { url: "ws://c/" }, secrets: "pi-secrets" }, "piAgent.secrets", /absolute path/],
      [{ coordinator: { url: "ws://c/" }, intervalMs: 5 }, "piAgent.intervalMs", /./],
      [{ coordinator: { url: "ws://c/" }, intervalMs: 1.5 }, "piAgent.intervalMs", /whole number/],
      [{ coordinator: { url: "ws://c/" }, secret: "/x" }, "piAgent", /unknown key "secret"/],
    ];
    for (const [section, at, message] of cases) {
      const issues = issuesOf(withAgent(section));
      const found = issues.find((i) => i.path === at);
      expect(found, `${JSON.stringify(section)} → ${JSON.stringify(issues)}`).toBeDefined();
      expect(found!.message).toMatch(message);
    }
  });

  it("refuses a secrets folder inside the export tree, which the Pis mount read-write", () => {
    expect(issuesOf(withAgent({ coordinator: { url: "ws://c/" }, secrets: "/export/secrets" }))).toContainEqual({
      path: "piAgent.secrets",
      message: "/export/secrets is inside fileserver.exportRoot /export, which the Pis mount: keep the Pis' secrets outside the export tree",
    });
    expect(issuesOf(withAgent({ coordinator: { url: "ws://c/" }, secrets: "/etc/pifleet/../x" })).map((i) => i.path)).toContain("piAgent.secrets");
  });

  it("pifleet plan shows every Pi's pi-agent.yaml, rendered from the section and the Pi's own plan", () => {
    const p = plan(checkFleet(withAgent({ coordinator: { url: "wss://c1:7300/agent", urls: ["wss://c2:7300/agent"], ca: "/etc/pifleet/ca.pem" }, secrets: "/srv/secrets", intervalMs: 2000 })));
    const files = renderPlanFiles(p);
    const agentFiles = [...files.keys()].filter((k) => k.endsWith("pi-agent.yaml"));
    expect(agentFiles).toEqual(p.pis.map((pi) => `pis/${pi.name}/pi-agent.yaml`));
    const pi01 = p.pis[0];
    expect(files.get("pis/pi01/pi-agent.yaml")).toBe(
      "# Written by pifleet for fleet seed from the fleet file's piAgent section: edits are put back.\n" +
        'coordinator:\n  url: "wss://c1:7300/agent"\n  urls: ["wss://c2:7300/agent"]\n  ca: "/etc/pifleet/ca.pem"\n' +
        `identity: "pi01"\nsecretFile: "/etc/pifleet/pi-agent.secret"\nlocalAddress: "${pi01.ipv6}"\nintervalMs: 2000\n`,
    );
    expect(files.get("pis/pi01/pi-agent.yaml")).toBe(renderPiAgentConfig(p.piAgent!, pi01, p.fleet));
    // The secret never leaves the fileserver's secrets folder: no file of the plan names one.
    expect([...files.keys()].some((k) => k.includes("secret"))).toBe(false);
  });
});
