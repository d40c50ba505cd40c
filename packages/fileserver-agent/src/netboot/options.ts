import { z } from "zod";
import { DEFAULT_DNSMASQ_PATHS } from "@pifleet/core";

const absolutePath = z.string().startsWith("/", "must be an absolute path");
const command = z.array(z.string().min(1)).min(1, "a program and its arguments");

/**
 * How the agent drives Debian's dnsmasq (the `dnsmasq:` section of the agent's config). The two
 * files are fileserver paths, taken below the root prefix like every other path the agent owns.
 */
export const DnsmasqOptionsSchema = z
  .strictObject({
    confFile: absolutePath.default(DEFAULT_DNSMASQ_PATHS.confFile),
    hostsFile: absolutePath.default(DEFAULT_DNSMASQ_PATHS.hostsFile),
    /** Re-reads the reservations (SIGHUP): every lease stays, in memory and in the lease file. */
    reload: command.default(["systemctl", "reload", "dnsmasq"]),
    /**
     * dnsmasq reads its own options only when it starts, so a new VLAN, range or TFTP root needs a
     * restart; it reloads its leases from the lease file, so they survive that too.
     */
    restart: command.default(["systemctl", "restart", "dnsmasq"]),
    /** `auto`: reload/restart only on a real host (live=host), never from a sandbox. */
    control: z.enum(["auto", "on", "off"]).default("auto"),
    /** The binary `--test` runs; an invalid file is never installed. */
    binary: z.string().min(1).default("dnsmasq"),
  })
  .prefault({});

export type DnsmasqOptions = z.infer<typeof DnsmasqOptionsSchema>;

export function defaultDnsmasqOptions(): DnsmasqOptions {
  return DnsmasqOptionsSchema.parse(undefined);
}
