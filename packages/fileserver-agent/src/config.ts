import { z } from "zod";
import { DnsmasqOptionsSchema } from "./netboot/options.js";
import { CoordinatorLinkSchema, enrolledNameSchema, FleetError, loadConfig, parseConfig, zodIssues } from "@pifleet/core";

const absolutePath = z.string().startsWith("/", "must be an absolute path");

/** /etc/pifleet/fileserver.yaml */
export const FileserverConfigSchema = z.strictObject({
  /** The fleet file the plan is derived from; re-read on every report, so edits take effect. */
  fleet: absolutePath.default("/etc/pifleet/fleet.yaml"),
  coordinator: CoordinatorLinkSchema,
  /** The fileserver's enrolled name. */
  identity: enrolledNameSchema("the fileserver"),
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
  /** dnsmasq for netbooted Pis: its two files, and how it is checked and reloaded. */
  dnsmasq: DnsmasqOptionsSchema,
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
