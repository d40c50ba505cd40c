import { readFileSync } from "node:fs";
import { parseDocument } from "yaml";
import { z as zod, type z } from "zod";
import { FleetError, formatPath, type FieldIssue } from "./errors.js";

/** Zod issues as field issues: `path: message`, unknown keys named. */
export function zodIssues(error: z.ZodError): FieldIssue[] {
  return error.issues.map((issue) => {
    if (issue.code === "unrecognized_keys") {
      return { path: formatPath(issue.path), message: `unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `"${k}"`).join(", ")}` };
    }
    return { path: formatPath(issue.path), message: issue.message };
  });
}

/** YAML text → a value, or FleetError naming the file and the line. */
export function parseYaml(text: string, file?: string): unknown {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new FleetError(
      doc.errors.map((e) => ({ path: `line ${e.linePos?.[0]?.line ?? "?"}`, message: e.message.split("\n")[0] })),
      file,
    );
  }
  return doc.toJS() ?? {};
}

/**
 * Every pifleet config file (fleet, coordinator, agents) is YAML checked by a zod schema; errors
 * name the file and every field at fault, never a stack trace.
 */
export function parseConfig<S extends z.ZodType>(schema: S, text: string, file?: string): z.infer<S> {
  const result = schema.safeParse(parseYaml(text, file));
  if (!result.success) throw new FleetError(zodIssues(result.error), file);
  return result.data;
}

export function readConfigText(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new FleetError([{ path: "", message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }], file);
  }
}

export function loadConfig<S extends z.ZodType>(schema: S, file: string): z.infer<S> {
  return parseConfig(schema, readConfigText(file), file);
}

/** Field schemas every agent config shares. */
export const absolutePathSchema = zod.string().startsWith("/", "must be an absolute path");

export const wsUrlSchema = zod.string().refine((s) => {
  try {
    return ["ws:", "wss:"].includes(new URL(s).protocol);
  } catch {
    return false;
  }
}, "must be a ws:// or wss:// URL");

/** How an agent reaches the coordinator. */
export const CoordinatorLinkSchema = zod.strictObject({
  /** ws://[addr]:7300/agent, or wss:// in production. */
  url: wsUrlSchema,
  /** More coordinators (high availability): tried in turn after `url` when a connection fails. */
  urls: zod.array(wsUrlSchema).max(16).optional(),
  /** PEM bundle to trust for wss:// (a private CA). */
  ca: absolutePathSchema.optional(),
});

export function enrolledNameSchema(what: string) {
  return zod.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, `must be ${what}'s enrolled name (a lower-case hostname label)`);
}
