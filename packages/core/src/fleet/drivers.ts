/**
 * The names of every pluggable driver a fleet file may choose. They live here, beside the schema,
 * so a typo (`driver: nosuch`) is refused when the file is read, by every tool alike; each
 * package's registry is typed by these names, so a name without its implementation (or the
 * reverse) does not compile or fails the registry's test.
 */
export const POE_DRIVERS = ["rfc3621", "cisco"] as const;
export type PoeDriverName = (typeof POE_DRIVERS)[number];

export const LOAD_BALANCER_DRIVERS = ["haproxy"] as const;
export type LoadBalancerDriverName = (typeof LOAD_BALANCER_DRIVERS)[number];

/** How the fileserver makes its VLAN interfaces persistent. */
export const NETWORK_DRIVERS = ["ifupdown", "networkd"] as const;
export type NetworkDriverName = (typeof NETWORK_DRIVERS)[number];

/**
 * How a netbooted Pi finds its kernel: `rpi` is the Raspberry Pi boot ROM/EEPROM (TFTP folder
 * `<serial>/` with config.txt, cmdline.txt and the firmware files); `ipxe` is a PXE ROM that runs
 * an iPXE script (x86 boards, and the qemu lab's Pi VMs).
 */
export const BOOT_METHODS = ["rpi", "ipxe"] as const;
export type BootMethodName = (typeof BOOT_METHODS)[number];

/**
 * Where the Pis' Apache reads the site from: `copy` puts a copy in every Pi's root (the seed's
 * way; the agent writes into roots their Pis can change); `shared` keeps one master copy that
 * every Pi mounts read-only over NFS, so an update is one write and no Pi's root is ever
 * written while it runs.
 */
export const CONTENT_MODES = ["copy", "shared"] as const;
export type ContentMode = (typeof CONTENT_MODES)[number];

export const BOOT_MODES = ["sd", "netboot"] as const;
export type BootMode = (typeof BOOT_MODES)[number];

/** A zod enum's message for an unknown name, listing the known ones. */
export function unknownNameMessage(kind: string, known: readonly string[]): (issue: { input?: unknown }) => string {
  return (issue) => `unknown ${kind} ${JSON.stringify(issue.input)} (known: ${known.join(", ")})`;
}
