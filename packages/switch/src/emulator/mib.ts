import snmp, { type Mib, type Provider, type ProviderColumn } from "net-snmp";
import { encodePortList } from "../snmp/portlist.js";
import { OID, RowStatus } from "../snmp/oids.js";
import { detectionStatus, ifOperStatus, portListOctets, type SwitchModel } from "./model.js";

const T = snmp.ObjectType;
const MA = snmp.MaxAccess;
const RO = MA["read-only"];
const RW = MA["read-write"];
const RC = MA["read-create"];
const NA = MA["not-accessible"];

export interface EmulatorIdentity {
  sysDescr: string;
  sysName: string;
  /** ifIndex of bridge port p is ifIndexBase + p: real switches rarely number them alike. */
  ifIndexBase: number;
  /** Also serve CISCO-POWER-ETHERNET-EXT-MIB. */
  cisco: boolean;
  startedAt: number;
}

/**
 * One table as the emulator serves it: its provider, and how its rows follow from the model.
 * `values` are the accessible columns in provider order; `row` is what addTableRow takes
 * (foreign index values first, then every column, index columns included).
 */
interface TableSpec {
  provider: Provider;
  columns: number[];
  rows(model: SwitchModel): Array<{ index: number[]; values: unknown[]; row: unknown[] }>;
}

function col(number: number, name: string, type: number, maxAccess: number, extra: Partial<ProviderColumn> = {}): ProviderColumn {
  return { number, name, type, maxAccess, ...extra };
}

function tables(id: EmulatorIdentity): TableSpec[] {
  const specs: TableSpec[] = [
    {
      provider: {
        name: "ifTable",
        type: snmp.MibProviderType.Table,
        oid: OID.ifEntry,
        maxAccess: NA,
        tableColumns: [col(1, "ifIndex", T.Integer, RO), col(2, "ifDescr", T.OctetString, RO), col(3, "ifType", T.Integer, RO), col(7, "ifAdminStatus", T.Integer, RO), col(8, "ifOperStatus", T.Integer, RO)],
        tableIndex: [{ columnName: "ifIndex" }],
      },
      columns: [1, 2, 3, 7, 8],
      rows: (m) =>
        range(m.ports).map((p) => {
          const values = [id.ifIndexBase + p, `port ${p}`, 6 /* ethernetCsmacd */, 1, ifOperStatus(m.port[p])];
          return { index: [id.ifIndexBase + p], values, row: values };
        }),
    },
    {
      provider: {
        name: "dot1dBasePortTable",
        type: snmp.MibProviderType.Table,
        oid: OID.dot1dBasePortEntry,
        maxAccess: NA,
        tableColumns: [col(1, "dot1dBasePort", T.Integer, RO), col(2, "dot1dBasePortIfIndex", T.Integer, RO)],
        tableIndex: [{ columnName: "dot1dBasePort" }],
      },
      columns: [1, 2],
      rows: (m) => range(m.ports).map((p) => ({ index: [p], values: [p, id.ifIndexBase + p], row: [p, id.ifIndexBase + p] })),
    },
    {
      provider: {
        name: "dot1qPortVlanTable",
        type: snmp.MibProviderType.Table,
        oid: OID.dot1qPortVlanEntry,
        maxAccess: NA,
        tableColumns: [col(1, "dot1qPvid", T.Unsigned32, RW), col(2, "dot1qPortAcceptableFrameTypes", T.Integer, RO), col(3, "dot1qPortIngressFiltering", T.Integer, RO)],
        tableAugments: "dot1dBasePortTable",
      },
      columns: [1, 2, 3],
      rows: (m) => range(m.ports).map((p) => ({ index: [p], values: [m.pvid[p], 1, 2], row: [p, m.pvid[p], 1, 2] })),
    },
    {
      provider: {
        name: VLAN_TABLE,
        type: snmp.MibProviderType.Table,
        oid: OID.dot1qVlanStaticEntry,
        maxAccess: NA,
        tableColumns: [
          // dot1qVlanIndex lives in dot1qVlanCurrentTable; declared here, not-accessible, as the index only.
          col(100, "dot1qVlanIndex", T.Unsigned32, NA),
          col(1, "dot1qVlanStaticName", T.OctetString, RC),
          col(2, "dot1qVlanStaticEgressPorts", T.OctetString, RC),
          col(3, "dot1qVlanForbiddenEgressPorts", T.OctetString, RC),
          col(4, "dot1qVlanStaticUntaggedPorts", T.OctetString, RC),
          col(5, "dot1qVlanStaticRowStatus", T.Integer, RC, { rowStatus: true }),
        ],
        tableIndex: [{ columnName: "dot1qVlanIndex" }],
      },
      columns: [1, 2, 3, 4, 5],
      rows: (m) => {
        const n = portListOctets(m);
        return [...m.vlans.values()]
          .sort((a, b) => a.vlan - b.vlan)
          .map((v) => {
            const values = [Buffer.from(v.name), encodePortList(v.egress, n), encodePortList(v.forbidden, n), encodePortList(v.untagged, n), v.status];
            return { index: [v.vlan], values, row: [v.vlan, ...values] };
          });
      },
    },
    {
      provider: {
        name: "pethPsePortTable",
        type: snmp.MibProviderType.Table,
        oid: OID.pethPsePortEntry,
        maxAccess: NA,
        tableColumns: [
          col(1, "pethPsePortGroupIndex", T.Integer, NA),
          col(2, "pethPsePortIndex", T.Integer, NA),
          col(3, "pethPsePortAdminEnable", T.Integer, RW),
          col(5, "pethPsePortPowerPairs", T.Integer, RO),
          col(6, "pethPsePortDetectionStatus", T.Integer, RO),
          col(7, "pethPsePortPowerPriority", T.Integer, RO),
        ],
        tableIndex: [{ columnName: "pethPsePortGroupIndex" }, { columnName: "pethPsePortIndex" }],
      },
      columns: [3, 5, 6, 7],
      rows: (m) =>
        range(m.ports).map((p) => {
          const values = [m.port[p].power ? 1 : 2, 1 /* signal */, detectionStatus(m.port[p]), 3 /* low */];
          return { index: [m.group, p], values, row: [m.group, p, ...values] };
        }),
    },
  ];
  if (id.cisco) {
    specs.push({
      provider: {
        name: "cpeExtPsePortTable",
        type: snmp.MibProviderType.Table,
        oid: OID.cpeExtPsePortEntry,
        maxAccess: NA,
        tableColumns: [col(1, "cpeExtPsePortEnable", T.Integer, RW), col(3, "cpeExtPsePortDeviceDetected", T.Integer, RO)],
        tableAugments: "pethPsePortTable",
      },
      columns: [1, 3],
      rows: (m) =>
        range(m.ports).map((p) => {
          const values = [m.port[p].power ? m.port[p].ciscoMode : 4, detectionStatus(m.port[p]) === 3 ? 1 : 2];
          return { index: [m.group, p], values, row: [m.group, p, ...values] };
        }),
    });
  }
  return specs;
}

/** Rows a SET may have written behind the projection's back, per table: row keys like "12" or "1.7". */
export type Touched = Map<string, Set<string>>;

/**
 * The emulator's MIB: registers every provider and keeps the instances equal to the model.
 * It remembers what it last wrote (walking net-snmp's tree to compare is quadratic in the rows),
 * and re-reads only rows a SET may have changed itself.
 */
export class EmulatorMib {
  readonly #mib: Mib;
  readonly #tables: TableSpec[];
  readonly #shadow = new Map<string, Map<string, { index: number[]; values: unknown[] }>>();

  constructor(mib: Mib, id: EmulatorIdentity) {
    this.#mib = mib;
    this.#tables = tables(id);
    const scalar = (name: string, oid: string, type: number, value: unknown, handler?: Provider["handler"]): void => {
      mib.registerProvider({ name, type: snmp.MibProviderType.Scalar, oid, scalarType: type, maxAccess: RO, handler });
      mib.setScalarValue(name, value);
    };
    scalar("sysDescr", OID.sysDescr, T.OctetString, id.sysDescr);
    scalar("sysUpTime", OID.sysUpTime, T.TimeTicks, 0, (req) => {
      if (req.instanceNode) req.instanceNode.value = Math.floor((Date.now() - id.startedAt) / 10);
      req.done();
    });
    scalar("sysName", OID.sysName, T.OctetString, id.sysName);
    for (const t of this.#tables) {
      const provider = t.provider;
      if (provider.name === VLAN_TABLE) {
        // A createAndGo/createAndWait row starts empty; the model decides whether it may exist.
        provider.createHandler = (req) => [Number(req.row[0]), Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(0), RowStatus[req.action as keyof typeof RowStatus]];
      }
      mib.registerProvider(provider);
      this.#shadow.set(provider.name, new Map());
    }
  }

  /** Makes every table instance equal to the model: adds, removes and rewrites rows as needed. */
  project(model: SwitchModel, touched: Touched = new Map()): void {
    for (const t of this.#tables) {
      const name = t.provider.name;
      const shadow = this.#shadow.get(name)!;
      const suspect = new Set(touched.get(name) ?? []);
      if (name === VLAN_TABLE) {
        // net-snmp creates a row for any createAndGo before access checks, and deletes on destroy.
        const actual = this.#childKeys(OID.dot1qVlanStaticRowStatus);
        for (const key of actual) if (!shadow.has(key)) suspect.add(key);
        for (const key of shadow.keys()) if (!actual.has(key)) suspect.add(key);
      }
      for (const key of suspect) this.#reread(name, shadow, key);

      const desired = t.rows(model);
      const keep = new Set(desired.map((d) => d.index.join(".")));
      for (const [key, e] of shadow) {
        if (keep.has(key)) continue;
        this.#mib.deleteTableRow(name, e.index);
        shadow.delete(key);
      }
      for (const d of desired) {
        const key = d.index.join(".");
        const have = shadow.get(key);
        if (!have) {
          this.#mib.addTableRow(name, d.row);
          shadow.set(key, { index: d.index, values: [...d.values] });
          continue;
        }
        d.values.forEach((v, i) => {
          if (same(have.values[i], v)) return;
          this.#mib.setTableSingleCell(name, t.columns[i], d.index, v);
          have.values[i] = v;
        });
      }
    }
  }

  #reread(name: string, shadow: Map<string, { index: number[]; values: unknown[] }>, key: string): void {
    const index = key.split(".").map(Number);
    let values: unknown[] | null = null;
    try {
      values = this.#mib.getTableRowCells(name, index);
    } catch {
      values = null; // the table has no rows at all
    }
    if (values) shadow.set(key, { index, values });
    else shadow.delete(key);
  }

  /** Instance keys under a column (one index component). */
  #childKeys(columnOid: string): Set<string> {
    const node = this.#mib.lookup(columnOid);
    return new Set(node?.children ? Object.keys(node.children) : []);
  }
}

export const VLAN_TABLE = "dot1qVlanStaticTable";

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i + 1);
}

function same(a: unknown, b: unknown): boolean {
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b) || typeof a === "string" || typeof b === "string") {
    const x = Buffer.isBuffer(a) ? a : Buffer.from(String(a ?? ""), "latin1");
    const y = Buffer.isBuffer(b) ? b : Buffer.from(String(b ?? ""), "latin1");
    return x.equals(y);
  }
  return a === b;
}

/**
 * net-snmp (3.29) turns a set OCTET STRING into a UTF-8 JavaScript string before storing it,
 * which mangles binary values such as a PortList (0xff becomes U+FFFD). The emulator keeps
 * Buffers as Buffers; everything else goes through the library's own cast.
 */
let patched = false;
export function keepOctetStringsBinary(): void {
  if (patched) return;
  patched = true;
  const util = snmp.ObjectTypeUtil;
  const original = util.castSetValue.bind(util);
  util.castSetValue = (type: number, value: unknown, constraints?: unknown) => {
    if (type === T.OctetString && Buffer.isBuffer(value)) {
      original(type, value, constraints); // throws on a constraint violation, as before
      return value;
    }
    return original(type, value, constraints);
  };
}
