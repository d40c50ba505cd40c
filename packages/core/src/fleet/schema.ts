import { z } from "zod";

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
      driver: z.string().min(1).default("rfc3621"),
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
  trunkInterface: z.string().regex(/^[a-zA-Z0-9_-]{1,12}$/, "must be an interface name like eth0").default("eth0"),
  exportRoot: absolutePath.default("/export"),
  goldenImage: absolutePath,
  network: z.enum(["ifupdown", "networkd"]).default("ifupdown"),
  exportOptions: z.string().regex(/^[a-z_,=0-9]+$/).default("rw,sync,no_subtree_check,no_root_squash"),
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
   * Interface identifier (the low 64 bits) of each Pi's address. `{port}`, `{slot}` and `{vlan}`
   * are written as decimal digits so the address reads like the port: port 1 → 1000:1::2.
   */
  addressScheme: z.string().default("1000:{port}::2"),
});

export const LoadBalancerSchema = z.strictObject({
  driver: z.string().min(1).default("haproxy"),
  /** HAProxy's runtime API: a unix socket path or host:port. */
  socket: z.string().min(1).default("/run/haproxy/admin.sock"),
  backend: z.string().regex(/^[A-Za-z0-9_.:-]+$/).default("pifleet"),
  serverPort: z.int().min(1).max(65535).default(80),
  healthCheck: z.string().default("GET /"),
});

export const BootSchema = z.strictObject({
  cmdlinePrefix: z.string().default("dwc_otg.lpm_enable=0 console=ttyAMA0,115200 console=tty1"),
  cmdlineSuffix: z.string().default("elevator=deadline fsck.repair=yes rootwait"),
});

export const PiSchema = z.strictObject({
  name: hostname,
  port,
  mac: z
    .string()
    .regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/, "must be a lower-case MAC like b8:27:eb:00:00:01")
    .optional(),
  serial: z.string().regex(/^[0-9a-f]{8,16}$/, "must be the Pi's hex serial").optional(),
  /** Overrides the address scheme for this Pi. */
  ipv6: z.string().optional(),
});

export const FleetSchema = z.strictObject({
  name: hostname,
  switch: SwitchSchema,
  fileserver: FileserverSchema,
  private: PrivateSchema,
  public: PublicSchema,
  loadBalancer: LoadBalancerSchema.prefault({}),
  boot: BootSchema.prefault({}),
  pis: z.array(PiSchema).min(1, "a fleet needs at least one Pi"),
});

export type Fleet = z.infer<typeof FleetSchema>;
export type FleetInput = z.input<typeof FleetSchema>;
export type PiSpec = z.infer<typeof PiSchema>;
export type SnmpConfig = Fleet["switch"]["snmp"];
