import { readFileSync } from "node:fs";
import { parseDocument } from "yaml";
import { FleetSchema, type Fleet } from "./schema.js";
import { FleetError, formatPath, type FieldIssue } from "./errors.js";
import { validateFleet } from "../plan/validate.js";

/** Parses and validates fleet YAML text. `file` only labels errors. */
export function parseFleet(text: string, file?: string): Fleet {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new FleetError(
      doc.errors.map((e) => ({ path: `line ${e.linePos?.[0]?.line ?? "?"}`, message: e.message.split("\n")[0] })),
      file,
    );
  }
  return checkFleet(doc.toJS(), file);
}

/** Validates an already-parsed object (JSON, YAML, or built in code). */
export function checkFleet(data: unknown, file?: string): Fleet {
  const result = FleetSchema.safeParse(data);
  if (!result.success) {
    const issues: FieldIssue[] = result.error.issues.map((issue) => {
      if (issue.code === "unrecognized_keys") {
        return { path: formatPath(issue.path), message: `unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `"${k}"`).join(", ")}` };
      }
      return { path: formatPath(issue.path), message: issue.message };
    });
    throw new FleetError(issues, file);
  }
  const issues = validateFleet(result.data);
  if (issues.length > 0) throw new FleetError(issues, file);
  return result.data;
}

export function loadFleet(file: string): Fleet {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new FleetError([{ path: "", message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }], file);
  }
  return parseFleet(text, file);
}
