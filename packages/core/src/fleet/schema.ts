import { z } from "zod";
import { CoordinatorLinkSchema } from "./config-file.js";
import { BOOT_METHODS, BOOT_MODES, CONTENT_MODES, LOAD_BALANCER_DRIVERS, NETWORK_DRIVERS, POE_DRIVERS, unknownNameMessage } from "./drivers.js";

/** Credentials are never written into the fleet file: it names where to read them. */
export const SecretRefSchema = z.union([
  z.strictObject({ env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, "must be an environment variable name") }),
  z.strictObject({ file: z.string().startsWith("/", "must be an absolute path") }),
]);
export type SecretRef = z.infer<typeof SecretRefSchema>;

const port = z.int().min(1).max(4096);
const vlanId = z.int().min(1).max(4094);
const hostname = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, "must be a lower-case hostname label (a-z, 0-9, '-')");
const absolutePath = z.string().startsWith("/", "must be an absolute path");
const interfaceName = z.string().regex(/^[a-zA-Z0-9_-]{1,12}$/, "must be an interface name like eth0");

export const SnmpV2cSchema = z.strictObject({
  version: z.literal("2c"),
  /** Read-write community: needed to switch PoE and set VLANs. */
  community: SecretRefSchema,
  readCommunity: SecretRefSchema.optional(),
});

export const SnmpV3Schema = z.strictObject({
  version: z.literal("3"),
  user: z.string().min(1),
  authProtocol: z.enum(["md5", "sha", "sha224", "sha256", "sha384", "sha512"]).default("sha"),
  authKey: SecretRefSchema,
  privProtocol: z.enum(["des", "aes", "aes256b", "aes256r"]).default("aes"),
  privKey: SecretRefSchema,
});

export const SwitchSchema = z.strictObject({
  name: hostname.default("switch"),
  address: z.string().min(1),
  snmpPort: z.int().min(1).max(65535).default(161),
  snmp: z.discriminatedUnion("version", [SnmpV2cSchema, SnmpV3Schema]),
  trunkPort: port,
  /** Ports towards the router: they carry the public VLAN tagged. */
  uplinkPorts: z.array(port).default([]),
  poe: z
    .strictObject({
      driver: z.enum(POE_DRIVERS, { error: unknownNameMessage("PoE driver", POE_DRIVERS) }).default("rfc3621"),
      group: z.int().min(1).default(1),
      /** Seconds a port stays off during a power-cycle. */
      dwellSeconds: z.number().min(0).max(600).default(5),
    })
    .prefault({}),
});

export const FileserverSchema = z.strictObject({
  name: hostname.default("fileserver"),
  /** Where the coordinator and `pifleet install` reach it (management network). */
  address: z.string().min(1).optional(),
  /** Parent of the `eth0.N` VLAN interfaces: the port cabled to a shelf's switch trunk (the default for shelves that name none). */
  trunkInterface: interfaceName.default("eth0"),
  exportRoot: absolutePath.default("/export"),
  goldenImage: absolutePath,
  network: z.enum(NETWORK_DRIVERS, { error: unknownNameMessage("network driver", NETWORK_DRIVERS) }).default("ifupdown"),
  exportOptions: z.string().regex(/^[a-z_,=0-9]+$/).default("rw,sync,no_subtree_check,no_root_squash"),
  /** How the site's content reaches the Pis (see drivers.ts): a copy per root, or one read-only export. */
  content: z.enum(CONTENT_MODES, { error: unknownNameMessage("content mode", CONTENT_MODES) }).default("copy"),
  /** Netbooted Pis' TFTP folders live here; inside the export tree (default `<exportRoot>/tftp`). */
  tftpRoot: absolutePath.optional(),
});

export const PrivateSchema = z.strictObject({
  range: z.string(),
  firstVlan: vlanId.default(10),
});

export const PublicSchema = z.strictObject({
  vlan: vlanId.default(131),
  prefix: z.string(),
  gateway: z.string(),
  /**
   * Interface identifier (the low 64 bits) of each Pi's address. `{port}`, `{slot}`, `{vlan}` and
   * `{shelf}` (the shelf's position in `shelves`, from 1) are written as decimal digits so the
   * address reads like the port: port 1 → 1000:1::2.
   */
  addressScheme: z.string().default("1000:{port}::2"),
});

export const LoadBalancerSchema = z.strictObject({
  driver: z.enum(LOAD_BALANCER_DRIVERS, { error: unknownNameMessage("load balancer driver", LOAD_BALANCER_DRIVERS) }).default("haproxy"),
  /** HAProxy's runtime API: a unix socket path or host:port. */
  socket: z.string().min(1).default("/run/haproxy/admin.sock"),
  backend: z.string().regex(/^[A-Za-z0-9_.:-]+$/).default("pifleet"),
  serverPort: z.int().min(1).max(65535).default(80),
  healthCheck: z.string().default("GET /"),
});

const bootMode = z.enum(BOOT_MODES, { error: unknownNameMessage("boot mode", BOOT_MODES) });

export const BootSchema = z.strictObject({
  /** `sd`: each Pi boots its kernel from an SD card; `netboot`: DHCP + TFTP from the fileserver, no card. */
  mode: bootMode.default("sd"),
  /** How netbooted Pis fetch their kernel (see drivers.ts). */
  method: z.enum(BOOT_METHODS, { error: unknownNameMessage("boot method", BOOT_METHODS) }).default("rpi"),
  cmdlinePrefix: z.string().default("dwc_otg.lpm_enable=0 console=ttyAMA0,115200 console=tty1"),
  cmdlineSuffix: z.string().default("elevator=deadline fsck.repair=yes rootwait"),
});

/** Where the Pi agent's secrets wait on the fileserver when `piAgent.secrets` is not given. */
export const DEFAULT_PI_SECRETS_DIR = "/etc/pifleet/pi-secrets";

/**
 * The Pi agent's settings for every Pi: the fileserver agent writes each Pi's config and secret
 * into its root (built, rebuilt or existing), so they survive a root rebuilt from the golden image.
 */
export const PiAgentSchema = z.strictObject({
  /** How every Pi's agent reaches the coordinator (the same fields as in an agent's own config). */
  coordinator: CoordinatorLinkSchema,
  /** Fileserver folder of `<pi name>.secret` files (`pifleet enroll piNN --role pi --out piNN.secret`). */
  secrets: absolutePath.default(DEFAULT_PI_SECRETS_DIR),
  /** The agent's report interval; left out, the agent's own default (or the coordinator's). */
  intervalMs: z.int("must be a whole number of milliseconds").min(100).max(600_000).optional(),
});
export type PiAgentSpec = z.infer<typeof PiAgentSchema>;

/** MACs are compared and rendered in one form: lower case, colons. */
const mac = z
  .string()
  .regex(/^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$/, "must be a MAC address like b8:27:eb:00:00:01")
  .transform((s) => s.toLowerCase().replace(/-/g, ":"));

export const PiSchema = z.strictObject({
  name: hostname,
  port,
  /** The Pi's Ethernet MAC: its DHCP reservation when netbooted. */
  mac: mac.optional(),
  /**
   * The board serial (`Serial` in /proc/cpuinfo, or `vcgencmd otp_dump` row 28): the boot ROM asks
   * TFTP for `<last 8 hex digits>/…`.
   */
  serial: z
    .string()
    .regex(/^([0-9a-fA-F]{8}|[0-9a-fA-F]{16})$/, "must be the Pi's serial: 8 or 16 hex digits")
    .transform((s) => s.toLowerCase())
    .optional(),
  /** Overrides the fleet's `boot.mode` for this Pi. */
  boot: bootMode.optional(),
  /** Overrides the address scheme for this Pi. */
  ipv6: z.string().optional(),
});

/** A shelf's link to its fileserver: which one (by name) and on which of its ports the trunk arrives. */
export const ShelfFileserverSchema = z.strictObject({
  name: hostname.optional(),
  trunkInterface: interfaceName.optional(),
});

export const ShelfSchema = z.strictObject({
  name: hostname,
  switch: SwitchSchema,
  fileserver: ShelfFileserverSchema.prefault({}),
  private: PrivateSchema,
  /** Overrides `public.addressScheme` for this shelf's Pis. */
  addressScheme: z.string().optional(),
  pis: z.array(PiSchema).min(1, "a shelf needs at least one Pi"),
});

/**
 * The file as written. Two forms: one shelf at the top level (`switch`, `fileserver`, `private`,
 * `pis`, as in the seed), or a `shelves:` list (each with its own switch, fileserver trunk,
 * private range and Pis) with `fileserver:` or `fileservers:` beside it.
 */
export const FleetFileSchema = z
  .strictObject({
    name: hostname,
    public: PublicSchema,
    loadBalancer: LoadBalancerSchema.prefault({}),
    boot: BootSchema.prefault({}),
    fileserver: FileserverSchema.optional(),
    fileservers: z.array(FileserverSchema).min(1, "list at least one fileserver").optional(),
    switch: SwitchSchema.optional(),
    private: PrivateSchema.optional(),
    pis: z.array(PiSchema).min(1, "a fleet needs at least one Pi").optional(),
    shelves: z.array(ShelfSchema).min(1, "list at least one shelf").optional(),
    /** Optional: without it pifleet writes no Pi agent config into the roots (as before). */
    piAgent: PiAgentSchema.optional(),
  })
  .superRefine((f, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: "custom", path: [path], message });
    if (f.fileserver && f.fileservers) issue("fileservers", "give either fileserver: or fileservers:, not both");
    if (!f.fileserver && !f.fileservers) issue("fileserver", "required (or a fileservers: list)");
    if (f.shelves) {
      for (const key of ["switch", "private", "pis"] as const) {
        if (f[key] !== undefined) issue(key, `belongs inside each shelf when shelves: is given`);
      }
    } else {
      for (const key of ["switch", "private", "pis"] as const) {
        if (f[key] === undefined) issue(key, "required (or a shelves: list)");
      }
    }
  });

export type FleetFile = z.infer<typeof FleetFileSchema>;
export type FleetInput = z.input<typeof FleetFileSchema>;
export type PiSpec = z.infer<typeof PiSchema>;
export type SwitchSpec = z.infer<typeof SwitchSchema>;
export type SnmpConfig = SwitchSpec["snmp"];

export interface FileserverSpec extends z.infer<typeof FileserverSchema> {
  tftpRoot: string;
  /** Where it is written in the file (`fileserver` or `fileservers[1]`): error messages name it. */
  at: string;
}

export interface ShelfSpec {
  name: string;
  /** Position in the fleet, from 1: `{shelf}` in the address scheme. */
  index: number;
  /** Prefix of this shelf's fields in the file: `` for the one-shelf form, `shelves[2].` otherwise. */
  at: string;
  switch: SwitchSpec;
  /** The fileserver serving this shelf (a name in `fileservers`). */
  fileserver: string;
  trunkInterface: string;
  private: z.infer<typeof PrivateSchema>;
  addressScheme: string;
  pis: PiSpec[];
}

/** The fleet every tool works from: always a list of shelves, whichever form the file used. */
export interface Fleet {
  name: string;
  public: z.infer<typeof PublicSchema>;
  loadBalancer: z.infer<typeof LoadBalancerSchema>;
  boot: z.infer<typeof BootSchema>;
  fileservers: FileserverSpec[];
  shelves: ShelfSpec[];
  piAgent?: PiAgentSpec;
}

/** The one shelf of a file in the one-shelf form is called this. */
export const DEFAULT_SHELF_NAME = "shelf1";

/**
 * The file's two forms, made one. A shelf that names no fileserver is served by the only one;
 * with several, the name is required (checked in validateFleet, which sees the whole fleet).
 */
export function normalizeFleet(f: FleetFile): Fleet {
  const listed = f.fileservers ?? (f.fileserver ? [f.fileserver] : []);
  const fileservers: FileserverSpec[] = listed.map((fs, i) => ({
    ...fs,
    tftpRoot: fs.tftpRoot ?? `${fs.exportRoot.replace(/\/+$/, "")}/tftp`,
    at: f.fileservers ? `fileservers[${i}]` : "fileserver",
  }));
  const byName = new Map(fileservers.map((fs) => [fs.name, fs]));
  const only = fileservers.length === 1 ? fileservers[0] : undefined;
  const shelfOf = (s: z.infer<typeof ShelfSchema>, index: number, at: string): ShelfSpec => {
    const fsName = s.fileserver.name ?? only?.name ?? "";
    const fs = byName.get(fsName);
    return {
      name: s.name,
      index,
      at,
      switch: s.switch,
      fileserver: fsName,
      trunkInterface: s.fileserver.trunkInterface ?? fs?.trunkInterface ?? "eth0",
      private: s.private,
      addressScheme: s.addressScheme ?? f.public.addressScheme,
      pis: s.pis,
    };
  };
  const shelves = f.shelves
    ? f.shelves.map((s, i) => shelfOf(s, i + 1, `shelves[${i}].`))
    : [shelfOf({ name: DEFAULT_SHELF_NAME, switch: f.switch!, fileserver: {}, private: f.private!, pis: f.pis! }, 1, "")];
  return { name: f.name, public: f.public, loadBalancer: f.loadBalancer, boot: f.boot, fileservers, shelves, ...(f.piAgent ? { piAgent: f.piAgent } : {}) };
}
