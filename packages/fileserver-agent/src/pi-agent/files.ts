import { PI_AGENT_CONFIG, PI_AGENT_SECRET, PI_AGENT_USER, renderPiAgentConfig, type FileserverView, type PiPlan } from "@pifleet/core";
import type { FileOwner } from "../inside.js";
import { checkName } from "../safety.js";

/**
 * The Pi agent's files inside a Pi's root, by path relative to the root: its config (rendered
 * from the fleet file's `piAgent:` section) and its secret (copied from the fileserver's secrets
 * folder). The program and unit come with the golden image; these two make the agent this Pi's.
 */
export const AGENT_CONFIG = PI_AGENT_CONFIG.slice(1);
export const AGENT_SECRET = PI_AGENT_SECRET.slice(1);
export const PASSWD = "etc/passwd";
export const GROUP = "etc/group";

export const CONFIG_MODE = 0o644;
export const SECRET_MODE = 0o600;
export const ROOT_OWNER: FileOwner = { uid: 0, gid: 0 };

/** The secret pifleet enrolled for this Pi, as named in the secrets folder: `<pi name>.secret`. */
export function secretFileName(pi: PiPlan): string {
  return checkName(`${pi.name}.secret`, "a Pi's secret file");
}

/** The config the Pi's root should carry; undefined without a `piAgent:` section. */
export function desiredAgentConfig(view: FileserverView, pi: PiPlan): string | undefined {
  return view.piAgent ? renderPiAgentConfig(view.piAgent, pi, view.fleet) : undefined;
}

/** Who owns the secret in a root: the agent's user as that root defines it, or root when it does not. */
export interface AgentOwner {
  owner: FileOwner;
  /** Why the owner is not the agent's user (the image lacks it, or its passwd cannot be read safely). */
  note?: string;
}

const field = (line: string) => line.split(":");
const numeric = (s: string | undefined) => (s !== undefined && /^\d{1,10}$/.test(s) ? Number(s) : undefined);

/**
 * The `pifleet` user's uid and group's gid from a root's own passwd and group text (the numbers
 * differ between images, so the fileserver's own are no guide). A root with the user but no such
 * group uses the user's primary group; a root without the user leaves the secret root's.
 */
export function agentOwner(passwd: string | null, group: string | null): AgentOwner {
  const user = (passwd ?? "").split("\n").map(field).find((f) => f[0] === PI_AGENT_USER);
  const uid = numeric(user?.[2]);
  if (!user || uid === undefined) {
    return { owner: ROOT_OWNER, note: `no ${PI_AGENT_USER} user in the root's ${PASSWD}: the agent user is missing from the image (install the agent into the golden image: pifleet install --role pi --prefix GOLDEN); its secret is left root:root ${SECRET_MODE.toString(8).padStart(4, "0")}` };
  }
  const grp = (group ?? "").split("\n").map(field).find((f) => f[0] === PI_AGENT_USER);
  const gid = numeric(grp?.[2]) ?? numeric(user[3]);
  if (gid === undefined) return { owner: ROOT_OWNER, note: `the ${PI_AGENT_USER} user in the root's ${PASSWD} has no numeric group; its secret is left root:root` };
  return { owner: { uid, gid } };
}

export const octal = (mode: number) => mode.toString(8).padStart(4, "0");
