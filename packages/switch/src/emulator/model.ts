import { decodePortList } from "../snmp/portlist.js";
import { OID, RowStatus } from "../snmp/oids.js";

/**
 * The emulated switch's state, apart from SNMP: ports (PoE, cable) and the Q-BRIDGE VLAN table.
 * The agent's MIB is a projection of this; SNMP sets are validated and applied here first.
 */
export interface PortModel {
  power: boolean;
  /** Cisco cpeExtPsePortEnable mode while on: auto(1), static(2), limit(3). */
  ciscoMode: 1 | 2 | 3;
  /** A cable is plugged in (tests and the demo can pull it). */
  cable: boolean;
  /** The device has its own supply: no PoE signature, link regardless of PoE. */
  selfPowered: boolean;
}

export interface VlanModel {
  vlan: number;
  name: string;
  egress: Set<number>;
  forbidden: Set<number>;
  untagged: Set<number>;
  status: typeof RowStatus.active | typeof RowStatus.notInService;
}

export interface SwitchModel {
  ports: number;
  group: number;
  /** Index 1..ports. */
  port: PortModel[];
  vlans: Map<number, VlanModel>;
  /** Index 1..ports. */
  pvid: number[];
}

export const VLAN_NAME_MAX = 32;

export function portListOctets(model: Pick<SwitchModel, "ports">): number {
  return Math.ceil(model.ports / 8);
}

export function newModel(ports: number, group: number, options: { power?: boolean; defaultVlan?: boolean; selfPowered?: number[] } = {}): SwitchModel {
  const self = new Set(options.selfPowered ?? []);
  const port: PortModel[] = [];
  const pvid: number[] = [];
  for (let p = 1; p <= ports; p++) {
    port[p] = { power: options.power ?? true, ciscoMode: 1, cable: true, selfPowered: self.has(p) };
    pvid[p] = 1;
  }
  const vlans = new Map<number, VlanModel>();
  if (options.defaultVlan ?? true) {
    const all = new Set(Array.from({ length: ports }, (_, i) => i + 1));
    vlans.set(1, { vlan: 1, name: "default", egress: all, forbidden: new Set(), untagged: new Set(all), status: RowStatus.active });
  }
  return { ports, group, port, vlans, pvid };
}

export function cloneModel(m: SwitchModel): SwitchModel {
  return {
    ports: m.ports,
    group: m.group,
    port: m.port.map((p) => (p ? { ...p } : p)),
    vlans: new Map([...m.vlans].map(([id, v]) => [id, { ...v, egress: new Set(v.egress), forbidden: new Set(v.forbidden), untagged: new Set(v.untagged) }])),
    pvid: [...m.pvid],
  };
}

// --- derived values (what the MIB shows) ---------------------------------------------------------

export function detectionStatus(p: PortModel): number {
  if (!p.power) return 1; // disabled
  return p.selfPowered || !p.cable ? 2 : 3; // searching : deliveringPower
}

export function ifOperStatus(p: PortModel): number {
  return p.cable && (p.power || p.selfPowered) ? 1 : 2;
}

// --- SNMP sets ----------------------------------------------------------------------------------

export type SetOp =
  | { object: "adminEnable"; group: number; port: number; value: number }
  | { object: "cpeEnable"; group: number; port: number; value: number }
  | { object: "vlanName"; vlan: number; value: Buffer }
  | { object: "vlanEgress" | "vlanForbidden" | "vlanUntagged"; vlan: number; value: Buffer }
  | { object: "vlanRowStatus"; vlan: number; value: number }
  | { object: "pvid"; port: number; value: number };

/** ErrorStatus numbers (RFC 3416). */
export const Status = { wrongType: 7, wrongLength: 8, wrongValue: 10, noCreation: 11, inconsistentValue: 12, commitFailed: 14 } as const;

export type ParseResult = { op: SetOp } | { status: number } | null;

/** Recognises a set of a writable object; null for objects the model does not own. */
export function parseSet(oid: string, value: unknown, group: number): ParseResult {
  const rest = (base: string): number[] | null => (oid.startsWith(`${base}.`) ? oid.slice(base.length + 1).split(".").map(Number) : null);
  const int = (f: (v: number) => ParseResult): ParseResult => (typeof value === "number" && Number.isInteger(value) ? f(value) : { status: Status.wrongType });
  const octets = (f: (v: Buffer) => ParseResult): ParseResult =>
    Buffer.isBuffer(value) ? f(value) : typeof value === "string" ? f(Buffer.from(value, "latin1")) : { status: Status.wrongType };
  let idx: number[] | null;
  if ((idx = rest(OID.pethPsePortAdminEnable))) {
    if (idx[0] !== group) return { status: Status.noCreation };
    return int((v) => ({ op: { object: "adminEnable", group, port: idx![1], value: v } }));
  }
  if ((idx = rest(OID.cpeExtPsePortEnable))) {
    if (idx[0] !== group) return { status: Status.noCreation };
    return int((v) => ({ op: { object: "cpeEnable", group, port: idx![1], value: v } }));
  }
  if ((idx = rest(OID.dot1qVlanStaticEntry))) {
    const [column, vlan] = idx;
    switch (column) {
      case 1:
        return octets((v) => ({ op: { object: "vlanName", vlan, value: v } }));
      case 2:
        return octets((v) => ({ op: { object: "vlanEgress", vlan, value: v } }));
      case 3:
        return octets((v) => ({ op: { object: "vlanForbidden", vlan, value: v } }));
      case 4:
        return octets((v) => ({ op: { object: "vlanUntagged", vlan, value: v } }));
      case 5:
        return int((v) => ({ op: { object: "vlanRowStatus", vlan, value: v } }));
    }
    return null;
  }
  if ((idx = rest(OID.dot1qPvid))) return int((v) => ({ op: { object: "pvid", port: idx![0], value: v } }));
  return null;
}

export interface PowerChange {
  port: number;
  on: boolean;
}

export type ApplyOutcome = { ok: true; next: SwitchModel; power: PowerChange[] } | { ok: false; index: number; status: number; reason: string };

/**
 * Applies one PDU's sets to a copy of the model, as an agent would: all or nothing. Row creation
 * comes first and destruction last, so varbind order inside the PDU does not matter (RFC 2579).
 * Consistency is checked on the result: untagged ⊆ egress, forbidden ∩ egress = ∅, PVIDs name
 * existing VLANs.
 */
export function applySets(model: SwitchModel, ops: SetOp[]): ApplyOutcome {
  const next = cloneModel(model);
  const fail = (index: number, status: number, reason: string): ApplyOutcome => ({ ok: false, index, status, reason });
  const octets = portListOctets(model);
  const order = ops.map((op, index) => ({ op, index }));
  const rank = (op: SetOp): number => (op.object === "vlanRowStatus" ? (op.value === RowStatus.createAndGo || op.value === RowStatus.createAndWait ? 0 : op.value === RowStatus.destroy ? 3 : 2) : 1);
  order.sort((a, b) => rank(a.op) - rank(b.op) || a.index - b.index);
  const touched = new Map<number, number>(); // vlan → index of a varbind that changed it

  for (const { op, index } of order) {
    switch (op.object) {
      case "adminEnable": {
        const p = next.port[op.port];
        if (!p) return fail(index, Status.noCreation, `no PoE port ${op.port}`);
        if (op.value !== 1 && op.value !== 2) return fail(index, Status.wrongValue, "TruthValue must be 1 or 2");
        p.power = op.value === 1;
        if (p.power && model.port[op.port].power === false) p.ciscoMode = 1;
        break;
      }
      case "cpeEnable": {
        const p = next.port[op.port];
        if (!p) return fail(index, Status.noCreation, `no PoE port ${op.port}`);
        if (op.value < 1 || op.value > 4) return fail(index, Status.wrongValue, "cpeExtPsePortEnable must be 1..4");
        p.power = op.value !== 4;
        if (op.value !== 4) p.ciscoMode = op.value as 1 | 2 | 3;
        break;
      }
      case "vlanRowStatus": {
        const exists = next.vlans.has(op.vlan);
        switch (op.value) {
          case RowStatus.createAndGo:
          case RowStatus.createAndWait:
            if (exists) return fail(index, Status.inconsistentValue, `vlan ${op.vlan} exists`);
            if (op.vlan < 1 || op.vlan > 4094) return fail(index, Status.noCreation, "VLAN ids are 1..4094");
            next.vlans.set(op.vlan, {
              vlan: op.vlan,
              name: "",
              egress: new Set(),
              forbidden: new Set(),
              untagged: new Set(),
              status: op.value === RowStatus.createAndGo ? RowStatus.active : RowStatus.notInService,
            });
            break;
          case RowStatus.active:
          case RowStatus.notInService:
            if (!exists) return fail(index, Status.inconsistentValue, `no vlan ${op.vlan}`);
            next.vlans.get(op.vlan)!.status = op.value;
            break;
          case RowStatus.destroy:
            if (op.vlan === 1) return fail(index, Status.inconsistentValue, "the default VLAN cannot be deleted");
            if (exists) {
              next.vlans.delete(op.vlan);
              // As most switches do: ports whose native VLAN disappears fall back to the default.
              for (let p = 1; p <= next.ports; p++) if (next.pvid[p] === op.vlan) next.pvid[p] = 1;
            }
            break;
          default:
            return fail(index, Status.wrongValue, `RowStatus ${op.value} cannot be set`);
        }
        touched.set(op.vlan, index);
        break;
      }
      case "vlanName":
      case "vlanEgress":
      case "vlanForbidden":
      case "vlanUntagged": {
        const v = next.vlans.get(op.vlan);
        if (!v) return fail(index, Status.noCreation, `no vlan ${op.vlan}`);
        if (op.object === "vlanName") {
          if (op.value.length > VLAN_NAME_MAX) return fail(index, Status.wrongLength, `names are at most ${VLAN_NAME_MAX} octets`);
          v.name = op.value.toString("utf8");
        } else {
          if (op.value.length > octets) return fail(index, Status.wrongLength, `PortList is ${octets} octets`);
          const ports = decodePortList(op.value);
          if (ports.some((p) => p > model.ports)) return fail(index, Status.wrongValue, `PortList names ports beyond ${model.ports}`);
          const set = new Set(ports);
          if (op.object === "vlanEgress") v.egress = set;
          else if (op.object === "vlanUntagged") v.untagged = set;
          else v.forbidden = set;
        }
        touched.set(op.vlan, index);
        break;
      }
      case "pvid": {
        if (!next.pvid[op.port]) return fail(index, Status.noCreation, `no bridge port ${op.port}`);
        if (op.value < 1 || op.value > 4094) return fail(index, Status.wrongValue, "VLAN ids are 1..4094");
        next.pvid[op.port] = op.value;
        touched.set(-op.port, index);
        break;
      }
    }
  }

  for (const [vlan, index] of touched) {
    if (vlan < 0) {
      const port = -vlan;
      if (!next.vlans.has(next.pvid[port])) return fail(index, Status.inconsistentValue, `port ${port} PVID ${next.pvid[port]} names no VLAN`);
      continue;
    }
    const v = next.vlans.get(vlan);
    if (!v) continue;
    for (const p of v.untagged) if (!v.egress.has(p)) return fail(index, Status.inconsistentValue, `vlan ${vlan}: untagged port ${p} is not in egress`);
    for (const p of v.forbidden) if (v.egress.has(p)) return fail(index, Status.inconsistentValue, `vlan ${vlan}: port ${p} is both egress and forbidden`);
  }

  const power: PowerChange[] = [];
  for (let p = 1; p <= next.ports; p++) if (next.port[p].power !== model.port[p].power) power.push({ port: p, on: next.port[p].power });
  return { ok: true, next, power };
}

// --- persistence --------------------------------------------------------------------------------

export const STATE_FORMAT = "pifleet-switch-emulator/1";

export interface PersistedState {
  format: typeof STATE_FORMAT;
  ports: number;
  group: number;
  power: Array<{ port: number; on: boolean; ciscoMode: number }>;
  vlans: Array<{ vlan: number; name: string; egress: number[]; forbidden: number[]; untagged: number[]; status: "active" | "notInService" }>;
  pvids: Array<{ port: number; vlan: number }>;
}

const sorted = (s: Set<number>): number[] => [...s].sort((a, b) => a - b);

export function toPersisted(m: SwitchModel): PersistedState {
  const power: PersistedState["power"] = [];
  const pvids: PersistedState["pvids"] = [];
  for (let p = 1; p <= m.ports; p++) {
    power.push({ port: p, on: m.port[p].power, ciscoMode: m.port[p].ciscoMode });
    pvids.push({ port: p, vlan: m.pvid[p] });
  }
  const vlans = [...m.vlans.values()]
    .sort((a, b) => a.vlan - b.vlan)
    .map((v) => ({ vlan: v.vlan, name: v.name, egress: sorted(v.egress), forbidden: sorted(v.forbidden), untagged: sorted(v.untagged), status: v.status === RowStatus.active ? ("active" as const) : ("notInService" as const) }));
  return { format: STATE_FORMAT, ports: m.ports, group: m.group, power, vlans, pvids };
}

/** Rebuilds a model from a state file; errors name the file's field at fault. */
export function fromPersisted(data: unknown, expect: { ports: number; group: number; selfPowered?: number[] }, file: string): SwitchModel {
  const bad = (field: string, why: string): Error => new Error(`${file}: ${field}: ${why}`);
  const d = data as Partial<PersistedState>;
  if (!d || typeof d !== "object" || d.format !== STATE_FORMAT) throw bad("format", `not a switch emulator state file (want "${STATE_FORMAT}")`);
  if (d.ports !== expect.ports) throw bad("ports", `the file holds ${String(d.ports)} ports, the emulator was started with ${expect.ports}`);
  if (d.group !== expect.group) throw bad("group", `the file holds PoE group ${String(d.group)}, the emulator was started with ${expect.group}`);
  const model = newModel(expect.ports, expect.group, { defaultVlan: false, selfPowered: expect.selfPowered });
  const portOk = (p: unknown): p is number => Number.isInteger(p) && (p as number) >= 1 && (p as number) <= expect.ports;
  (d.power ?? []).forEach((e, i) => {
    if (!portOk(e?.port) || typeof e.on !== "boolean") throw bad(`power[${i}]`, "needs port (1..ports) and on (boolean)");
    model.port[e.port].power = e.on;
    model.port[e.port].ciscoMode = e.ciscoMode === 2 || e.ciscoMode === 3 ? e.ciscoMode : 1;
  });
  (d.vlans ?? []).forEach((v, i) => {
    if (!Number.isInteger(v?.vlan) || v.vlan < 1 || v.vlan > 4094) throw bad(`vlans[${i}].vlan`, "must be 1..4094");
    for (const key of ["egress", "forbidden", "untagged"] as const) {
      if (!Array.isArray(v[key]) || !v[key].every(portOk)) throw bad(`vlans[${i}].${key}`, `must list ports 1..${expect.ports}`);
    }
    model.vlans.set(v.vlan, {
      vlan: v.vlan,
      name: String(v.name ?? "").slice(0, VLAN_NAME_MAX),
      egress: new Set(v.egress),
      forbidden: new Set(v.forbidden),
      untagged: new Set(v.untagged),
      status: v.status === "notInService" ? RowStatus.notInService : RowStatus.active,
    });
  });
  (d.pvids ?? []).forEach((e, i) => {
    if (!portOk(e?.port) || !Number.isInteger(e.vlan)) throw bad(`pvids[${i}]`, "needs port (1..ports) and vlan");
    model.pvid[e.port] = e.vlan;
  });
  return model;
}
