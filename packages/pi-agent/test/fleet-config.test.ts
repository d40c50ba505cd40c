import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { checkFleet, parseYaml, PI_AGENT_SECRET, plan, renderPlanFiles } from "@pifleet/core";
import { parseAgentConfig } from "../src/config.js";

// The config the fileserver agent writes into every Pi's root (core's renderPiAgentConfig, from
// the fleet file's piAgent: section) is one this agent starts from: parsed here with the agent's
// own parser, so a change on either side that breaks the other fails this test.

const seed = () => parseYaml(readFileSync(new URL("../../../examples/seed-8.yaml", import.meta.url), "utf8")) as Record<string, any>;

function rendered(piAgent: unknown) {
  const p = plan(checkFleet({ ...seed(), piAgent }));
  const files = renderPlanFiles(p);
  return p.pis.map((pi) => ({ pi, text: files.get(`pis/${pi.name}/pi-agent.yaml`)! }));
}

describe("the Pi agent config pifleet renders from the fleet file", () => {
  it("passes the agent's own schema for every Pi, all fields given", () => {
    const all = rendered({ coordinator: { url: "wss://coordinator:7300/agent", urls: ["wss://[2a00:1098:0:84::7]:7300/agent"], ca: "/etc/pifleet/ca.pem" }, intervalMs: 2500 });
    expect(all).toHaveLength(8);
    for (const { pi, text } of all) {
      const cfg = parseAgentConfig(text, `pis/${pi.name}/pi-agent.yaml`);
      expect(cfg.identity).toBe(pi.name);
      expect(cfg.secretFile).toBe(PI_AGENT_SECRET);
      expect(cfg.localAddress).toBe(pi.ipv6);
      expect(cfg.coordinator).toEqual({ url: "wss://coordinator:7300/agent", urls: ["wss://[2a00:1098:0:84::7]:7300/agent"], ca: "/etc/pifleet/ca.pem" });
      expect(cfg.intervalMs).toBe(2500);
    }
  });

  it("passes with only the coordinator's url: the rest are the agent's defaults", () => {
    const [{ pi, text }] = rendered({ coordinator: { url: "ws://[2a00:1098:0:84::7]:7300/agent" } });
    const cfg = parseAgentConfig(text);
    expect(cfg.coordinator).toEqual({ url: "ws://[2a00:1098:0:84::7]:7300/agent" });
    expect(cfg.localAddress).toBe(pi.ipv6);
    expect(cfg.intervalMs).toBe(1000);
  });
});
