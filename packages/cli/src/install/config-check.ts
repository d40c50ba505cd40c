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
export function checkRoleConfig(role: RoleName, text: string, file: string): void {
  const parse: Record<RoleName, (text: string, file: string) => unknown> = {
    pi: parseAgentConfig,
    fileserver: parseFileserverConfig,
    coordinator: parseCoordinatorConfig,
  };
  try {
    parse[role](text, file);
  } catch (err) {
    throw new InstallError(`--config refused, nothing was uploaded: ${(err as Error).message}`);
  }
}
