import dgram from "node:dgram";
import { EventEmitter } from "node:events";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { isIPv6 } from "node:net";
import path from "node:path";
import snmp, { type Agent, type MibRequest } from "net-snmp";
import { createLogger, type Logger } from "@pifleet/core";
import type { AuthProtocol, PrivProtocol } from "../snmp/credentials.js";
import type { VlanEntry } from "../vlan/driver.js";
import { EmulatorMib, keepOctetStringsBinary, VLAN_TABLE, type Touched } from "./mib.js";
import { applySets, detectionStatus, fromPersisted, ifOperStatus, newModel, parseSet, Status, toPersisted, type PersistedState, type PowerChange, type SetOp, type SwitchModel } from "./model.js";
import { usmReport, type UsmFailure } from "./usm-report.js";

export interface EmulatorUser {
  name: string;
  authProtocol?: AuthProtocol;
  authKey: string;
  privProtocol?: PrivProtocol;
  privKey: string;
  access?: "read-only" | "read-write";
}

export interface SwitchEmulatorOptions {
  /** Front-panel (bridge) ports, all PoE-capable. Default 24. */
  ports?: number;
  /** PSE group (module) of the PoE ports. Default 1. */
  group?: number;
  /** Listen address. Default 127.0.0.1. */
  address?: string;
  /** UDP port; 0 (the default) picks a free one, read it from `.port`. */
  port?: number;
  /** Read-only community (sets are refused with noAccess). Default "public"; null serves none. */
  community?: string | null;
  /** Read-write community. Default "private"; null serves none. */
  rwCommunity?: string | null;
  /** SNMPv3 users, authPriv. */
  users?: EmulatorUser[];
  /** Keep the state in this JSON file: loaded at start when it exists, rewritten on every change. */
  stateFile?: string;
  /** Also serve CISCO-POWER-ETHERNET-EXT-MIB cpeExtPsePortTable. */
  cisco?: boolean;
  /** Ports whose device has its own supply (e.g. the fileserver's trunk): link up whatever PoE does. */
  selfPowered?: number[];
  /** ifIndex of bridge port p is ifIndexBase + p. Default 1000. */
  ifIndexBase?: number;
  sysName?: string;
  sysDescr?: string;
  /** Ports start powered. Default true. */
  initialPower?: boolean;
  /** Start with VLAN 1 "default" untagged on every port, PVID 1 (as a factory-fresh switch). Default true. */
  defaultVlan?: boolean;
  /** Called after a port's power changed, whoever changed it (SNMP or `setPower`). */
  onPowerChange?: (port: number, on: boolean) => void | Promise<void>;
  logger?: Logger;
}

/** A read-only view of the emulated switch. */
export interface EmulatorState {
  readonly ports: number;
  readonly group: number;
  power(port: number): boolean;
  link(port: number): "up" | "down";
  detection(port: number): "disabled" | "searching" | "deliveringPower";
  pvid(port: number): number;
  vlans(): VlanEntry[];
  snapshot(): PersistedState;
}

export interface EmulatorStats {
  /** SET PDUs applied. */
  sets: number;
  /** SET PDUs refused by validation. */
  rejected: number;
  unknownCommunity: number;
  wrongDigests: number;
  decryptionErrors: number;
}

/**
 * A PoE switch over real SNMP/UDP (net-snmp's Agent): POWER-ETHERNET-MIB, Q-BRIDGE-MIB,
 * BRIDGE-MIB, IF-MIB and optionally Cisco's PoE extension, v2c communities and v3 USM users.
 */
export class SwitchEmulator extends EventEmitter {
  readonly address: string;
  readonly port: number;
  readonly stats: EmulatorStats = { sets: 0, rejected: 0, unknownCommunity: 0, wrongDigests: 0, decryptionErrors: 0 };
  readonly state: EmulatorState;
  #model: SwitchModel;
  readonly #agent: Agent;
  readonly #socket: dgram.Socket;
  readonly #mib: EmulatorMib;
  readonly #file?: string;
  readonly #log: Logger;
  readonly #hook?: SwitchEmulatorOptions["onPowerChange"];
  #stopped = false;
  /** Rows the SET being processed may write through net-snmp (projected after its response is built). */
  #touched: Touched = new Map();

  /** Use startSwitchEmulator(). */
  constructor(init: { address: string; port: number; model: SwitchModel; agent: Agent; socket: dgram.Socket; mib: EmulatorMib; file?: string; log: Logger; hook?: SwitchEmulatorOptions["onPowerChange"] }) {
    super();
    this.address = init.address;
    this.port = init.port;
    this.#model = init.model;
    this.#agent = init.agent;
    this.#socket = init.socket;
    this.#mib = init.mib;
    this.#file = init.file;
    this.#log = init.log;
    this.#hook = init.hook;
    const self = this;
    this.state = {
      get ports() {
        return self.#model.ports;
      },
      get group() {
        return self.#model.group;
      },
      power: (port) => this.#portModel(port).power,
      link: (port) => (ifOperStatus(this.#portModel(port)) === 1 ? "up" : "down"),
      detection: (port) => (["disabled", "searching", "deliveringPower"] as const)[detectionStatus(this.#portModel(port)) - 1],
      pvid: (port) => {
        this.#portModel(port); // range check
        return this.#model.pvid[port];
      },
      vlans: () => toPersisted(this.#model).vlans.map((v) => ({ vlan: v.vlan, name: v.name, egress: v.egress, untagged: v.untagged, status: v.status })),
      snapshot: () => toPersisted(this.#model),
    };
  }

  override on(event: "power", listener: (port: number, on: boolean) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    return super.on(event, listener);
  }

  /** Switches a port's power behind SNMP's back (a person at the switch's web UI). */
  setPower(port: number, on: boolean): void {
    const p = this.#portModel(port);
    if (p.power === on) return;
    p.power = on;
    if (on) p.ciscoMode = 1;
    this.#changed([{ port, on }]);
  }

  /** Plugs or pulls the cable of a port (its link follows). */
  setCable(port: number, plugged: boolean): void {
    this.#portModel(port).cable = plugged;
    this.#changed([]);
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await new Promise<void>((resolve) => {
      this.#socket.once("close", () => resolve());
      this.#agent.close();
    });
  }

  #portModel(port: number) {
    const p = this.#model.port[port];
    if (!Number.isInteger(port) || !p) throw new RangeError(`the emulated switch has ports 1..${this.#model.ports}, not ${port}`);
    return p;
  }

  /**
   * After the model changed: MIB (unless net-snmp is mid-commit and will re-project before its
   * response), file, hooks.
   */
  #changed(power: PowerChange[], project = true): void {
    if (project) this.#mib.project(this.#model);
    this.#persist();
    if (power.length === 0) return;
    // After the response has gone out: a slow hook must not delay the switch's answer.
    setImmediate(() => {
      for (const change of power) {
        this.#log.info({ port: change.port, on: change.on }, `port ${change.port} power ${change.on ? "on" : "off"}`);
        try {
          this.emit("power", change.port, change.on);
          const pending = this.#hook?.(change.port, change.on);
          if (pending && typeof (pending as Promise<void>).catch === "function") {
            (pending as Promise<void>).catch((err: unknown) => this.#log.error({ err, port: change.port }, "onPowerChange hook failed"));
          }
        } catch (err) {
          this.#log.error({ err, port: change.port }, "power listener failed");
        }
      }
    });
  }

  #persist(): void {
    if (!this.#file) return;
    const tmp = `${this.#file}.tmp-${process.pid}`;
    writeFileSync(tmp, `${JSON.stringify(toPersisted(this.#model), null, 1)}\n`);
    renameSync(tmp, this.#file);
  }

  /** The agent's bulk-set hook: validate the whole PDU (test pass), then apply it (commit pass). */
  onSet(requests: MibRequest[], testSet: boolean): number {
    const ops: Array<{ op: SetOp; request: MibRequest }> = [];
    for (const request of requests) {
      if (!request.provider || request.error) continue; // refused by access control or absent: net-snmp answers those
      const parsed = parseSet(request.oid, request.setValue, this.#model.group);
      if (!parsed) continue;
      if ("status" in parsed) {
        request.done({ errorStatus: parsed.status, type: snmp.ObjectType.Null, value: null });
        this.stats.rejected++;
        return snmp.ErrorStatus.NoError;
      }
      ops.push({ op: parsed.op, request });
    }
    if (ops.length === 0) return snmp.ErrorStatus.NoError;
    for (const { op } of ops) touch(this.#touched, op);
    const outcome = applySets(this.#model, ops.map((o) => o.op));
    if (!outcome.ok) {
      if (testSet) this.stats.rejected++;
      this.#log.debug({ reason: outcome.reason, oid: ops[outcome.index].request.oid }, "set refused");
      ops[outcome.index].request.done({ errorStatus: testSet ? outcome.status : Status.commitFailed, type: snmp.ObjectType.Null, value: null });
      return snmp.ErrorStatus.NoError;
    }
    if (!testSet) {
      this.stats.sets++;
      this.#model = outcome.next;
      // Not projected yet: net-snmp still writes (or deletes) the set instances after this hook;
      // afterSet() projects just before the response leaves.
      this.#changed(outcome.power, false);
    }
    return snmp.ErrorStatus.NoError;
  }

  /** Re-projects after any SET, including refused ones (net-snmp may have created a row already). */
  afterSet(): void {
    const touched = this.#touched;
    this.#touched = new Map();
    this.#mib.project(this.#model, touched);
  }
}

function touch(touched: Touched, op: SetOp): void {
  const add = (table: string, key: string): void => {
    const set = touched.get(table) ?? new Set<string>();
    set.add(key);
    touched.set(table, set);
  };
  if (op.object === "adminEnable" || op.object === "cpeEnable") {
    add("pethPsePortTable", `${op.group}.${op.port}`);
    add("cpeExtPsePortTable", `${op.group}.${op.port}`);
  } else if (op.object === "pvid") add("dot1qPortVlanTable", String(op.port));
  else add(VLAN_TABLE, String(op.vlan));
}

export async function startSwitchEmulator(options: SwitchEmulatorOptions = {}): Promise<SwitchEmulator> {
  const ports = options.ports ?? 24;
  const group = options.group ?? 1;
  if (!Number.isInteger(ports) || ports < 1 || ports > 4096) throw new RangeError(`ports must be 1..4096, got ${ports}`);
  const address = options.address ?? "127.0.0.1";
  const log = (options.logger ?? createLogger("switch-emulator")).child({ emulator: options.sysName ?? "pifleet-emulated-switch" });
  const community = options.community === undefined ? "public" : options.community;
  const rwCommunity = options.rwCommunity === undefined ? "private" : options.rwCommunity;
  if (community !== null && community === rwCommunity) throw new Error("the read-only and read-write communities must differ");
  for (const p of options.selfPowered ?? []) if (!Number.isInteger(p) || p < 1 || p > ports) throw new RangeError(`self-powered port ${p} is not one of 1..${ports}`);

  let model: SwitchModel;
  const file = options.stateFile ? path.resolve(options.stateFile) : undefined;
  if (file && existsSync(file)) {
    let data: unknown;
    try {
      data = JSON.parse(readFileSync(file, "utf8"));
    } catch (err) {
      throw new Error(`${file}: not JSON: ${(err as Error).message}`);
    }
    model = fromPersisted(data, { ports, group, selfPowered: options.selfPowered }, file);
  } else {
    if (file) mkdirSync(path.dirname(file), { recursive: true });
    model = newModel(ports, group, { power: options.initialPower, defaultVlan: options.defaultVlan, selfPowered: options.selfPowered });
  }

  keepOctetStringsBinary();
  let emulator: SwitchEmulator | undefined;
  let failure: UsmFailure | null = null;
  let socket: dgram.Socket | undefined;
  const listenPort = options.port ?? 0;

  // net-snmp binds the port it is given, or 161 for 0; this socket factory binds the one asked
  // for (0 = any free one), and sees each datagram go in so an auth failure can be reported.
  const dgramModule = {
    createSocket(type: "udp4" | "udp6"): dgram.Socket {
      const s = dgram.createSocket(type);
      const bind = s.bind.bind(s) as (port: number, address?: string) => dgram.Socket;
      const on = s.on.bind(s) as (event: string, listener: (...args: any[]) => void) => dgram.Socket;
      Object.assign(s, {
        bind: (_port: number, addr?: string) => bind(listenPort, addr ?? undefined),
        on: (event: string, listener: (...args: any[]) => void) =>
          on(event, event !== "message" ? listener : (buf: Buffer, rinfo: dgram.RemoteInfo) => {
            failure = null;
            listener(buf, rinfo);
            if (failure) sendReport(s, buf, rinfo, failure);
          }),
      });
      socket = s;
      return s;
    },
  };

  const sendReport = (s: dgram.Socket, request: Buffer, rinfo: dgram.RemoteInfo, kind: UsmFailure): void => {
    emulator!.stats[kind]++;
    const report = usmReport(request, kind, agent.engine, emulator!.stats[kind]);
    if (report) s.send(report, rinfo.port, rinfo.address);
  };

  const agent = snmp.createAgent(
    {
      port: listenPort || 161,
      address,
      transport: isIPv6(address) ? "udp6" : "udp4",
      accessControlModelType: snmp.AccessControlModelType.Simple,
      dgramModule,
    },
    (error) => {
      if (!error) return;
      // Never log the error object itself: net-snmp attaches the USM user (with keys) to some.
      if (error instanceof snmp.ResponseInvalidError) {
        if (error.code === snmp.ResponseInvalidCode.EAuthFailure) failure = "wrongDigests";
        else if (error.code === snmp.ResponseInvalidCode.ECouldNotDecrypt) failure = "decryptionErrors";
        log.debug({ code: error.code }, "SNMPv3 request failed USM checks");
      } else if (/Local community not found/.test(error.message)) {
        if (emulator) emulator.stats.unknownCommunity++;
        log.debug("dropped a request with an unknown community");
      } else if (/Local user not found/.test(error.message)) {
        log.debug("dropped a request for an unknown user");
      } else {
        log.warn({ error: error.message.slice(0, 200) }, "agent error");
      }
    },
  );

  await new Promise<void>((resolve, reject) => {
    if (!socket) return reject(new Error("net-snmp did not create a socket"));
    socket.once("listening", () => resolve());
    socket.once("error", (err) => reject(new Error(`switch emulator cannot listen on ${address}:${listenPort}: ${err.message}`)));
  });

  const authorizer = agent.getAuthorizer();
  const acm = authorizer.getAccessControlModel();
  if (community !== null) {
    authorizer.addCommunity(community);
    acm.setCommunityAccess(community, snmp.AccessLevel.ReadOnly);
  }
  if (rwCommunity !== null) {
    authorizer.addCommunity(rwCommunity);
    acm.setCommunityAccess(rwCommunity, snmp.AccessLevel.ReadWrite);
  }
  for (const u of options.users ?? []) {
    if (u.authKey.length < 8 || u.privKey.length < 8) throw new Error(`SNMPv3 user ${u.name}: keys need at least 8 characters`);
    authorizer.addUser({
      name: u.name,
      level: snmp.SecurityLevel.authPriv,
      authProtocol: snmp.AuthProtocols[u.authProtocol ?? "sha"],
      authKey: u.authKey,
      privProtocol: snmp.PrivProtocols[u.privProtocol ?? "aes"],
      privKey: u.privKey,
    });
    acm.setUserAccess(u.name, u.access === "read-only" ? snmp.AccessLevel.ReadOnly : snmp.AccessLevel.ReadWrite);
  }

  const mib = new EmulatorMib(agent.getMib(), {
    sysDescr: options.sysDescr ?? `pifleet emulated PoE switch, ${ports} ports${options.cisco ? ", CISCO-POWER-ETHERNET-EXT-MIB" : ""}`,
    sysName: options.sysName ?? "pifleet-emulated-switch",
    ifIndexBase: options.ifIndexBase ?? 1000,
    cisco: options.cisco ?? false,
    startedAt: Date.now(),
  });
  mib.project(model);

  const bound = socket!.address();
  emulator = new SwitchEmulator({ address, port: bound.port, model, agent, socket: socket!, mib, file, log, hook: options.onPowerChange });
  agent.setBulkSetHandler((requests, _mib, testSet) => emulator!.onSet(requests, testSet));

  // The last step before a SET's response leaves the agent: make the MIB equal the model again.
  const withResponse = agent as unknown as { sendResponse: (...args: unknown[]) => void };
  if (typeof withResponse.sendResponse !== "function") throw new Error("unsupported net-snmp version: Agent.sendResponse is missing");
  const sendResponse = withResponse.sendResponse;
  withResponse.sendResponse = function (this: unknown, ...args: unknown[]) {
    const message = args[2] as { pdu?: { type?: number } } | undefined;
    if (message?.pdu?.type === snmp.PduType.SetRequest) emulator!.afterSet();
    return sendResponse.apply(this, args);
  };
  if (file && !existsSync(file)) writeFileSync(file, `${JSON.stringify(toPersisted(model), null, 1)}\n`);
  log.info({ address, port: bound.port, ports, cisco: options.cisco ?? false, users: (options.users ?? []).map((u) => u.name) }, "switch emulator listening");
  return emulator;
}
