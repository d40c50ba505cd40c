import { readFileSync } from "node:fs";
import { parseCoordinatorConfig } from "@pifleet/coordinator";
import { parseFileserverConfig } from "@pifleet/fileserver-agent";
import { parseAgentConfig } from "@pifleet/pi-agent";
import type { RoleName } from "./roles.js";
import { InstallError } from "./remote.js";

/**
 * The role's config checked here, with the parser its daemon's `--check` uses, before anything is
 * uploaded: a mistake is reported with the field at fault and the target is never touched (a
 * daemon that would refuse it at start is never installed). Paths in it (secretFile, fleet) name
 * files on the target and are not looked at here.
 */
export function checkRoleConfig(role: RoleName, text: string, file: string): unknown {
  const parse: Record<RoleName, (text: string, file: string) => unknown> = {
    pi: parseAgentConfig,
    fileserver: parseFileserverConfig,
    coordinator: parseCoordinatorConfig,
  };
  try {
    return parse[role](text, file);
  } catch (err) {
    throw new InstallError(`--config refused, nothing was uploaded: ${(err as Error).message}`);
  }
}

/** The enrolled name in an agent's config (`identity`), checked as the install will check it. */
export function configIdentity(role: "pi" | "fileserver", file: string): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new InstallError(`--config ${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  return (checkRoleConfig(role, text, file) as { identity: string }).identity;
}
