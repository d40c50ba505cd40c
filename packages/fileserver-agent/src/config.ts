import { z } from "zod";
import { FleetError, loadConfig, parseConfig, zodIssues } from "@pifleet/core";

const absolutePath = z.string().startsWith("/", "must be an absolute path");

/** /etc/pifleet/fileserver.yaml */
export const FileserverConfigSchema = z.strictObject({
  /** The fleet file the plan is derived from; re-read on every report, so edits take effect. */
  fleet: absolutePath.default("/etc/pifleet/fleet.yaml"),
  coordinator: z.strictObject({
    /** ws://[addr]:7300/agent, or wss:// in production. */
    url: z.string().refine((s) => {
      try {
        return ["ws:", "wss:"].includes(new URL(s).protocol);
      } catch {
        return false;
      }
    }, "must be a ws:// or wss:// URL"),
    /** PEM bundle to trust for wss:// (a private CA). */
    ca: absolutePath.optional(),
  }),
  /** The fileserver's enrolled name. */
  identity: z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, "must be the fileserver's enrolled name (a lower-case hostname label)"),
  /** File holding the secret `pifleet enroll` issued (mode 0600). */
  secretFile: absolutePath,
  intervalMs: z.int().min(500).max(600_000).default(5000),
  /** Commands print what they would run and change nothing. */
  dryRun: z.boolean().default(false),
  /** Act on a sandbox folder as if it were / (the demo). */
  rootPrefix: absolutePath.optional(),
  live: z.enum(["auto", "host", "emulate", "off"]).default("auto"),
  /**
   * `sync-content` from the coordinator reads only below these folders (fileserver paths, taken
   * under rootPrefix): a command must not be able to publish /etc on every Pi's web site.
   */
  contentSources: z.array(absolutePath).min(1).default(["/srv/pifleet/content"]),
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).optional(),
});

export type FileserverConfig = z.infer<typeof FileserverConfigSchema>;

/** Validates parsed config; errors name the file and every field at fault. */
export function checkFileserverConfig(data: unknown, file?: string): FileserverConfig {
  const result = FileserverConfigSchema.safeParse(data);
  if (!result.success) throw new FleetError(zodIssues(result.error), file);
  return result.data;
}

export function parseFileserverConfig(text: string, file?: string): FileserverConfig {
  return parseConfig(FileserverConfigSchema, text, file);
}

export function loadFileserverConfig(file: string): FileserverConfig {
  return loadConfig(FileserverConfigSchema, file);
}
