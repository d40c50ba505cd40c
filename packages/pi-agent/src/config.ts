import { isIP } from "node:net";
import { z } from "zod";
import { CoordinatorLinkSchema, enrolledNameSchema, FleetError, loadConfig, parseConfig, zodIssues } from "@pifleet/core";

const ms = (min: number, max: number) => z.int().min(min).max(max);
const absolutePath = z.string().startsWith("/", "must be an absolute path");
const httpUrl = z.string().refine((s) => {
  try {
    return ["http:", "https:"].includes(new URL(s).protocol);
  } catch {
    return false;
  }
}, "must be an http:// or https:// URL");
const argv = z.array(z.string().min(1)).min(1, "must name a program to run (an argv list, no shell)");

/**
 * Every collector takes `enabled` and `deadlineMs`; `false`/`true` are shorthands for
 * `{enabled: false}`/`{}` so a config can switch a source off in one word. A deadline left out is
 * the collector's default, shortened to 80% of the interval when the interval is shorter.
 */
function collector<T extends z.ZodRawShape>(shape: T) {
  return z.preprocess(
    (v) => (typeof v === "boolean" ? { enabled: v } : (v ?? {})),
    z.strictObject({ enabled: z.boolean().default(true), deadlineMs: ms(10, 60_000).optional(), ...shape }),
  );
}

/** Default deadlines: files are instant unless something is badly wrong; HTTP and NFS get longer. */
export const DEFAULT_DEADLINES_MS = { loadavg: 200, cpu: 200, memory: 200, uptime: 200, thermal: 200, netdev: 200, rootfs: 500, apache: 700, probe: 700 } as const;

export const CollectorsSchema = z
  .strictObject({
    loadavg: collector({}),
    cpu: collector({}),
    memory: collector({}),
    uptime: collector({}),
    thermal: collector({}),
    netdev: collector({
      /** Only these interfaces (e.g. eth0, eth0.131); default: every interface but lo. */
      interfaces: z.array(z.string().regex(/^[^\s:/]{1,15}$/, "must be an interface name")).max(64).optional(),
    }),
    rootfs: collector({
      /** What to stat: the root filesystem, which on a Pi is NFS. */
      path: absolutePath.default("/"),
    }),
    apache: collector({
      url: httpUrl.default("http://localhost/server-status?auto"),
    }),
    probe: collector({
      url: httpUrl.default("http://localhost/"),
      /** Host header to send, for a name-based virtual host. */
      host: z.string().min(1).optional(),
    }),
  })
  // Each entry fills its own defaults from `undefined`, so an absent section is an empty one.
  .prefault(() => ({}) as never);

export const AgentConfigSchema = z
  .strictObject({
    coordinator: CoordinatorLinkSchema,
    /** The Pi's enrolled name. */
    identity: enrolledNameSchema("the Pi"),
    /** File holding the secret `pifleet enroll` issued (mode 0600). */
    secretFile: absolutePath,
    /** Source address for the coordinator connection: the Pi's eth0.131 IPv6 address. */
    localAddress: z
      .string()
      .refine((s) => isIP(s) !== 0, "must be an IP address (the Pi's public eth0.131 address)")
      .optional(),
    intervalMs: ms(100, 600_000).default(1000),
    /** Reports kept while disconnected (oldest dropped first). */
    queue: z.int().min(0).max(100_000).default(300),
    paths: z
      .strictObject({
        proc: absolutePath.default("/proc"),
        sys: absolutePath.default("/sys"),
      })
      .prefault({}),
    collectors: CollectorsSchema,
    commands: z
      .strictObject({
        restartApache: argv.default(["systemctl", "restart", "apache2"]),
        reboot: argv.default(["systemctl", "reboot"]),
        timeoutMs: ms(100, 3_600_000).default(120_000),
      })
      .prefault({}),
    logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).optional(),
  })
  .superRefine((cfg, ctx) => {
    // A collector that may run longer than the interval would delay every report behind it.
    for (const [name, c] of Object.entries(cfg.collectors)) {
      if (c.deadlineMs !== undefined && c.deadlineMs >= cfg.intervalMs) {
        ctx.addIssue({
          code: "custom",
          path: ["collectors", name, "deadlineMs"],
          message: `must be below intervalMs (${cfg.intervalMs})`,
        });
      }
    }
  })
  .transform((cfg) => {
    const fill = <C extends { deadlineMs?: number }>(name: keyof typeof DEFAULT_DEADLINES_MS, c: C) => ({
      ...c,
      deadlineMs: c.deadlineMs ?? Math.max(10, Math.min(DEFAULT_DEADLINES_MS[name], Math.floor(cfg.intervalMs * 0.8))),
    });
    const c = cfg.collectors;
    return {
      ...cfg,
      collectors: {
        loadavg: fill("loadavg", c.loadavg),
        cpu: fill("cpu", c.cpu),
        memory: fill("memory", c.memory),
        uptime: fill("uptime", c.uptime),
        thermal: fill("thermal", c.thermal),
        netdev: fill("netdev", c.netdev),
        rootfs: fill("rootfs", c.rootfs),
        apache: fill("apache", c.apache),
        probe: fill("probe", c.probe),
      },
    };
  });

export type AgentConfig = z.output<typeof AgentConfigSchema>;
export type CollectorsConfig = AgentConfig["collectors"];
export type CollectorName = keyof CollectorsConfig;

/** Validates parsed config; errors name the file and every field at fault. */
export function checkAgentConfig(data: unknown, file?: string): AgentConfig {
  const result = AgentConfigSchema.safeParse(data);
  if (!result.success) throw new FleetError(zodIssues(result.error), file);
  return result.data;
}

export function parseAgentConfig(text: string, file?: string): AgentConfig {
  return parseConfig(AgentConfigSchema, text, file);
}

export function loadAgentConfig(file: string): AgentConfig {
  return loadConfig(AgentConfigSchema, file);
}
