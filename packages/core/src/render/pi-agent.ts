import type { PiAgentPlan, PiPlan } from "../plan/types.js";

/** Where the Pi agent's config and secret live in a Pi's root (the paths `pifleet install --role pi` uses too). */
export const PI_AGENT_CONFIG = "/etc/pifleet/pi-agent.yaml";
export const PI_AGENT_SECRET = "/etc/pifleet/pi-agent.secret";
/** The user the Pi agent's unit runs as: it owns the secret. */
export const PI_AGENT_USER = "pifleet";

/** A YAML scalar that reads back as exactly this string (JSON's quoting is valid YAML). */
const q = (s: string) => JSON.stringify(s);

/**
 * One Pi's agent config, rendered from the plan's `piAgent` section: the coordinator link as the
 * fleet file gives it, the Pi's enrolled name, the secret's path and, as the connection's source
 * address, the Pi's planned IPv6 on the public VLAN (so it reports over `eth0.131`).
 */
export function renderPiAgentConfig(agent: PiAgentPlan, pi: PiPlan, fleet: string): string {
  const c = agent.coordinator;
  const lines = [
    `# Written by pifleet for fleet ${fleet} from the fleet file's piAgent section: edits are put back.`,
    "coordinator:",
    `  url: ${q(c.url)}`,
    ...(c.urls ? [`  urls: [${c.urls.map(q).join(", ")}]`] : []),
    ...(c.ca !== undefined ? [`  ca: ${q(c.ca)}`] : []),
    `identity: ${q(pi.name)}`,
    `secretFile: ${q(PI_AGENT_SECRET)}`,
    `localAddress: ${q(pi.ipv6)}`,
    ...(agent.intervalMs !== undefined ? [`intervalMs: ${agent.intervalMs}`] : []),
  ];
  return `${lines.join("\n")}\n`;
}
