import { FleetFileSchema, normalizeFleet, type Fleet } from "./schema.js";
import { FleetError } from "./errors.js";
import { parseYaml, readConfigText, zodIssues } from "./config-file.js";
import { validateFleet } from "../plan/validate.js";

/** Parses and validates fleet YAML text. `file` only labels errors. */
export function parseFleet(text: string, file?: string): Fleet {
  return checkFleet(parseYaml(text, file), file);
}

/** Validates an already-parsed object (JSON, YAML, or built in code), in either of the file's forms. */
export function checkFleet(data: unknown, file?: string): Fleet {
  const result = FleetFileSchema.safeParse(data);
  if (!result.success) throw new FleetError(zodIssues(result.error), file);
  const fleet = normalizeFleet(result.data);
  const issues = validateFleet(fleet);
  if (issues.length > 0) throw new FleetError(issues, file);
  return fleet;
}

export function loadFleet(file: string): Fleet {
  return parseFleet(readConfigText(file), file);
}
