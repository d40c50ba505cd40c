import { isIPv6 } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import snmp, { type Session, type Varbind } from "net-snmp";
import { createLogger, type Logger } from "@pifleet/core";
import { describeCredentials, secretValues, type SnmpCredentials } from "./credentials.js";
import { scrub, SnmpError, type SnmpErrorCode } from "./errors.js";
import { compareOids, isUnder, oidName } from "./oids.js";
import { serialize } from "./queue.js";

export type SnmpType = "Integer" | "OctetString" | "Unsigned32" | "Gauge32" | "Counter32" | "TimeTicks" | "OID" | "IpAddress";

/** A value as read: numbers for integer types, Buffer for octet strings, string for OIDs and IP addresses, null when the agent has no such object. */
export type SnmpValue = number | Buffer | string | null;

export interface SnmpVarbind {
  oid: string;
  value: SnmpValue;
}

export interface SnmpWrite {
  oid: string;
  type: SnmpType;
  value: number | string | Buffer;
  /** When the read-back legitimately differs from what was written (e.g. RowStatus createAndGo reads back active). */
  expect?: (got: SnmpValue) => boolean;
}

export interface SnmpTarget {
  /** Switch name for messages. */
  name: string;
  host: string;
  port: number;
}

export interface SnmpClientOptions {
  /** Per attempt. */
  timeoutMs?: number;
  /** Tries per request (1 = no retry). */
  attempts?: number;
  /** Pause before the first retry; doubles each time. */
  backoffMs?: number;
  /** Set-then-read-back rounds before a mismatch is an error. */
  verifyAttempts?: number;
  /** Varbinds per PDU: switches cap message size near one Ethernet frame. */
  maxVarbinds?: number;
  maxRepetitions?: number;
  /** On a timeout, send one SNMPv3 discovery probe to tell "unreachable" from "wrong credentials". */
  diagnose?: boolean;
  logger?: Logger;
}

export interface SnmpClientStats {
  /** Requests sent, retries included. */
  attempts: number;
  timeouts: number;
  /** Set PDUs that were sent (each attempt counts). */
  setPdus: number;
  /** Varbinds written (each attempt counts). */
  setVarbinds: number;
  getPdus: number;
  verifyRounds: number;
}

type Kind = "read" | "write";

const TYPE: Record<SnmpType, number> = {
  Integer: snmp.ObjectType.Integer,
  OctetString: snmp.ObjectType.OctetString,
  Unsigned32: snmp.ObjectType.Unsigned32,
  Gauge32: snmp.ObjectType.Gauge32,
  Counter32: snmp.ObjectType.Counter32,
  TimeTicks: snmp.ObjectType.TimeTicks,
  OID: snmp.ObjectType.OID,
  IpAddress: snmp.ObjectType.IpAddress,
};

const ABSENT = new Set([snmp.ObjectType.NoSuchObject, snmp.ObjectType.NoSuchInstance, snmp.ObjectType.EndOfMibView]);

/** A set whose earlier attempt may have been applied: only its read-back can tell. */
const UNCERTAIN = Symbol("uncertain");

/**
 * An SNMP session to one switch: v2c or v3 authPriv, every operation queued behind the previous
 * one for the same switch, timeouts retried with exponential back-off, sets verified by reading
 * them back, and failures reported as SnmpError with a message that says what is likely wrong.
 */
export class SnmpClient {
  readonly stats: SnmpClientStats = { attempts: 0, timeouts: 0, setPdus: 0, setVarbinds: 0, getPdus: 0, verifyRounds: 0 };
  readonly #target: SnmpTarget;
  readonly #write: SnmpCredentials;
  readonly #read: SnmpCredentials;
  readonly #secrets: string[];
  readonly #sessions = new Map<Kind, Session>();
  readonly #opts: Required<Omit<SnmpClientOptions, "logger">>;
  readonly #log: Logger;
  #closed = false;

  constructor(target: SnmpTarget, credentials: { write: SnmpCredentials; read?: SnmpCredentials }, options: SnmpClientOptions = {}) {
    this.#target = target;
    this.#write = credentials.write;
    this.#read = credentials.read ?? credentials.write;
    this.#secrets = secretValues(credentials.write, credentials.read);
    this.#opts = {
      timeoutMs: options.timeoutMs ?? 1500,
      attempts: Math.max(1, options.attempts ?? 3),
      backoffMs: options.backoffMs ?? 250,
      verifyAttempts: Math.max(1, options.verifyAttempts ?? 3),
      maxVarbinds: Math.max(1, options.maxVarbinds ?? 16),
      maxRepetitions: options.maxRepetitions ?? 25,
      diagnose: options.diagnose ?? true,
    };
    this.#log = (options.logger ?? createLogger("switch")).child({ switch: target.name });
  }

  /** `name (host:port)`, as every message names the switch. */
  get label(): string {
    const host = isIPv6(this.#target.host) ? `[${this.#target.host}]` : this.#target.host;
    return `${this.#target.name} (${host}:${this.#target.port})`;
  }

  /** Values of the given instances; null for those the switch does not have. */
  get(oids: string[]): Promise<SnmpVarbind[]> {
    return this.#queued(() => this.#get(oids, "read"));
  }

  /** Every instance under `base`, in OID order. */
  walk(base: string): Promise<SnmpVarbind[]> {
    return this.#queued(() => this.#walk(base));
  }

  /** Several walks under one queue slot, so nobody writes between them. */
  walkMany(bases: string[]): Promise<SnmpVarbind[][]> {
    return this.#queued(async () => {
      const out: SnmpVarbind[][] = [];
      for (const base of bases) out.push(await this.#walk(base));
      return out;
    });
  }

  /**
   * Writes, then reads every written instance back until it shows the written value (or `expect`
   * accepts it), re-sending what did not stick, with back-off. An inner array is a group the agent
   * must get in one PDU (SNMP applies a PDU atomically), e.g. a VLAN's egress and untagged lists.
   */
  setVerified(writes: Array<SnmpWrite | SnmpWrite[]>): Promise<void> {
    return this.#queued(() => this.#setVerified(writes.map((w) => (Array.isArray(w) ? w : [w]))));
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const session of this.#sessions.values()) {
      try {
        session.close();
      } catch {
        // already closed by a socket error
      }
    }
    this.#sessions.clear();
  }

  #queued<T>(operation: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new Error(`SNMP client for ${this.label} is closed`));
    return serialize(`${this.#target.host}:${this.#target.port}`, operation);
  }

  // --- sessions -------------------------------------------------------------------------------

  /** Reads share the write session unless a separate read community is configured. */
  #keyOf(kind: Kind): Kind {
    return kind === "read" && this.#read !== this.#write ? "read" : "write";
  }

  #session(kind: Kind): Session {
    if (this.#closed) throw new Error(`SNMP client for ${this.label} is closed`);
    const creds = kind === "read" ? this.#read : this.#write;
    const key = this.#keyOf(kind);
    let session = this.#sessions.get(key);
    if (!session) {
      session = openSession(this.#target, creds, this.#opts.timeoutMs);
      session.on("error", (err) => this.#log.warn({ err: this.#scrub(err.message) }, "SNMP socket error"));
      this.#sessions.set(key, session);
    }
    return session;
  }

  #dropSession(kind: Kind): void {
    const key = this.#keyOf(kind);
    const session = this.#sessions.get(key);
    if (!session) return;
    this.#sessions.delete(key);
    try {
      session.close();
    } catch {
      // nothing to close
    }
  }

  // --- one request, retried -------------------------------------------------------------------

  /** Sends one PDU, retrying timeouts. Resolves with the varbinds and how many attempts it took. */
  async #request(kind: Kind, what: string, send: (session: Session, cb: (err: Error | null, vbs?: unknown) => void) => void): Promise<{ result: unknown; attempts: number }> {
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      this.stats.attempts++;
      const session = this.#session(kind);
      try {
        const result = await new Promise<unknown>((resolve, reject) => {
          try {
            send(session, (err, vbs) => (err ? reject(err) : resolve(vbs)));
          } catch (err) {
            reject(err);
          }
        });
        return { result, attempts: attempt };
      } catch (err) {
        const retryable = err instanceof snmp.RequestTimedOutError || isNotInTimeWindow(err);
        if (!retryable) throw this.#mapError(err, kind, attempt);
        if (err instanceof snmp.RequestTimedOutError) this.stats.timeouts++;
        if (attempt >= this.#opts.attempts) throw await this.#timeoutError(kind, attempt, Date.now() - started, what);
        const pause = this.#opts.backoffMs * 2 ** (attempt - 1);
        this.#log.warn({ attempt, of: this.#opts.attempts, retryInMs: pause, request: what }, "no answer from switch, retrying");
        await sleep(pause);
      }
    }
  }

  async #get(oids: string[], kind: Kind): Promise<SnmpVarbind[]> {
    const out: SnmpVarbind[] = [];
    for (let i = 0; i < oids.length; i += this.#opts.maxVarbinds) {
      const chunk = oids.slice(i, i + this.#opts.maxVarbinds);
      this.stats.getPdus++;
      const { result } = await this.#request(kind, `get ${oidName(chunk[0])}${chunk.length > 1 ? ` (+${chunk.length - 1})` : ""}`, (s, cb) => s.get(chunk, cb));
      const vbs = result as Varbind[];
      vbs.forEach((vb, j) => out.push({ oid: chunk[j], value: toValue(vb) }));
    }
    return out;
  }

  async #walk(base: string): Promise<SnmpVarbind[]> {
    const out: SnmpVarbind[] = [];
    let cursor = base;
    for (;;) {
      this.stats.getPdus++;
      const { result } = await this.#request("read", `walk ${oidName(base)}`, (s, cb) => s.getBulk([cursor], 0, this.#opts.maxRepetitions, cb));
      const rows = ((result as Array<Varbind | Varbind[]>)[0] ?? []) as Varbind[];
      if (rows.length === 0) return out;
      for (const vb of rows) {
        if (vb.type === snmp.ObjectType.EndOfMibView || !isUnder(vb.oid, base)) return out;
        if (compareOids(vb.oid, cursor) <= 0) {
          throw new SnmpError("protocol", `${this.label}: the agent walked backwards under ${oidName(base)} (${vb.oid} after ${cursor})`, this.label);
        }
        out.push({ oid: vb.oid, value: toValue(vb) });
        cursor = vb.oid;
      }
    }
  }

  /** One set PDU. UNCERTAIN when an earlier attempt went unanswered and a later one was refused. */
  async #set(group: SnmpWrite[]): Promise<void | typeof UNCERTAIN> {
    const varbinds: Varbind[] = group.map((w) => ({ oid: w.oid, type: TYPE[w.type], value: w.value }));
    try {
      const { result, attempts } = await this.#request("write", `set ${oidName(group[0].oid)}${group.length > 1 ? ` (+${group.length - 1})` : ""}`, (s, cb) => {
        this.stats.setPdus++;
        this.stats.setVarbinds += varbinds.length;
        s.set(varbinds, cb);
      });
      for (const vb of result as Varbind[]) {
        if (snmp.isVarbindError(vb)) {
          const kind = vb.type === snmp.ObjectType.NoSuchInstance ? "noSuchInstance" : "noSuchObject";
          throw this.#fail("missing", `${this.label}: the switch has no ${oidName(vb.oid)} (${kind}), so it cannot be set`, attempts);
        }
      }
    } catch (err) {
      // The lost answer may have been to our own write (e.g. createAndGo, now refused as the row exists).
      if (err instanceof SnmpError && err.code === "rejected" && err.attempts > 1) return UNCERTAIN;
      throw err;
    }
  }

  async #setVerified(groups: SnmpWrite[][]): Promise<void> {
    let pending = groups;
    for (let round = 1; ; round++) {
      this.stats.verifyRounds++;
      for (const pdu of pack(pending, this.#opts.maxVarbinds)) await this.#set(pdu);
      // Read back with the write credentials: the read community may see a restricted view.
      const readback = await this.#get(
        pending.flat().map((w) => w.oid),
        "write",
      );
      const got = new Map(readback.map((vb) => [vb.oid, vb.value]));
      const wrong = pending.filter((group) => group.some((w) => !matches(w, got.get(w.oid) ?? null)));
      if (wrong.length === 0) return;
      if (round >= this.#opts.verifyAttempts) {
        const detail = wrong
          .flat()
          .filter((w) => !matches(w, got.get(w.oid) ?? null))
          .slice(0, 5)
          .map((w) => `${oidName(w.oid)}: wrote ${show(w.value)}, reads ${show(got.get(w.oid) ?? null)}`)
          .join("; ");
        throw new SnmpError("verify", `${this.label}: the switch accepted the write but reads back something else after ${round} tries — ${detail}`, this.label, round);
      }
      const pause = this.#opts.backoffMs * 2 ** (round - 1);
      this.#log.warn({ round, mismatched: wrong.length, retryInMs: pause }, "read-back differs from what was written, writing again");
      await sleep(pause);
      pending = wrong;
    }
  }

  // --- errors ---------------------------------------------------------------------------------

  #scrub(text: string): string {
    return scrub(text, this.#secrets);
  }

  #fail(code: SnmpErrorCode, message: string, attempts = 1): SnmpError {
    return new SnmpError(code, this.#scrub(message), this.label, attempts);
  }

  #mapError(err: unknown, kind: Kind, attempts: number): SnmpError {
    if (err instanceof SnmpError) return err;
    const creds = kind === "read" ? this.#read : this.#write;
    const who = describeCredentials(creds);
    const field = credentialField(creds, kind, this.#read !== this.#write);
    if (err instanceof snmp.RequestFailedError) {
      const status = snmp.ErrorStatus[err.status] ?? `error ${err.status}`;
      const statusName = status.charAt(0).toLowerCase() + status.slice(1);
      const oid = err.message.split(": ")[1] ?? "";
      const object = oid ? oidName(oid) : "the request";
      const E = snmp.ErrorStatus;
      if (err.status === E.NoAccess || err.status === E.AuthorizationError || err.status === E.ReadOnly) {
        const hint =
          creds.version === "2c"
            ? `the community has read-only access — ${field} must be the switch's read-write community`
            : `user "${creds.user}" has read-only access on the switch`;
        return this.#fail("access", `${this.label}: the switch refused to write ${object} (${statusName}): ${hint}`, attempts);
      }
      if (err.status === E.NotWritable) {
        return this.#fail("access", `${this.label}: ${object} is not writable on this switch (notWritable): its firmware does not allow setting it — is the right driver configured?`, attempts);
      }
      return this.#fail("rejected", `${this.label}: the switch rejected ${object}: ${statusName}`, attempts);
    }
    if (err instanceof snmp.ResponseInvalidError) {
      const text = err.message;
      if (/Wrong Digest/i.test(text)) {
        return this.#fail("auth", `${this.label}: authentication failed for ${who}: the auth key or auth protocol (${authOf(creds)}) is wrong (usmStatsWrongDigests)`, attempts);
      }
      if (/Decryption Error/i.test(text)) {
        return this.#fail("decrypt", `${this.label}: the switch could not decrypt our request from ${who}: the priv key or privacy protocol (${privOf(creds)}) is wrong (usmStatsDecryptionErrors)`, attempts);
      }
      if (/Unknown User Name/i.test(text)) {
        return this.#fail("unknown-user", `${this.label}: the switch has no SNMPv3 user "${creds.version === "3" ? creds.user : "?"}" (usmStatsUnknownUserNames): check switch.snmp.user`, attempts);
      }
      if (/Unsupported Security Level/i.test(text)) {
        return this.#fail("security-level", `${this.label}: ${who} is not set up for authPriv on the switch (usmStatsUnsupportedSecLevels)`, attempts);
      }
      if (err.code === snmp.ResponseInvalidCode.ECommunityNoMatch) {
        return this.#fail("protocol", `${this.label}: the answer carried another community than the request`, attempts);
      }
      const codeName = Object.entries(snmp.ResponseInvalidCode).find(([, v]) => v === err.code)?.[0] ?? String(err.code);
      return this.#fail("protocol", `${this.label}: unexpected answer from the switch (${codeName})`, attempts);
    }
    const e = err as NodeJS.ErrnoException;
    if (e?.code === "ERR_OSSL_EVP_UNSUPPORTED") {
      return this.#fail("protocol", `${this.label}: this Node.js build refuses ${privOf(creds)} (OpenSSL legacy cipher); use privProtocol aes`, attempts);
    }
    return this.#fail("protocol", `${this.label}: ${e?.message ?? String(err)}`, attempts);
  }

  async #timeoutError(kind: Kind, attempts: number, elapsedMs: number, what: string): Promise<SnmpError> {
    const creds = kind === "read" ? this.#read : this.#write;
    const field = credentialField(creds, kind, this.#read !== this.#write);
    const spent = `${attempts} attempt${attempts === 1 ? "" : "s"} over ${(elapsedMs / 1000).toFixed(1)} s`;
    const engineKnown = creds.version === "3" && hasEngine(this.#sessions.get(this.#keyOf(kind)));
    // The session may be wedged mid-discovery; the next request starts a fresh one.
    this.#dropSession(kind);
    if (creds.version === "3") {
      if (engineKnown) {
        return this.#fail(
          "decrypt",
          `${this.label}: the agent answered SNMPv3 discovery but not our authenticated ${what} from user "${creds.user}" (${spent}): the priv key or privacy protocol (${creds.privProtocol}) is likely wrong (some agents also drop a wrong auth key without a word)`,
          attempts,
        );
      }
      return this.#fail("timeout", `${this.label}: no answer to ${what} after ${spent}: the switch is unreachable, or its SNMP agent is off or listens on another port`, attempts);
    }
    const alive = this.#opts.diagnose && (await probeAlive(this.#target, this.#opts.timeoutMs));
    if (alive) {
      return this.#fail(
        "community",
        `${this.label}: no answer to SNMPv2c ${what} after ${spent}, yet the agent answers SNMPv3 discovery: the community (${field}) is likely wrong — agents drop a request with an unknown community without a word`,
        attempts,
      );
    }
    return this.#fail(
      "timeout",
      `${this.label}: no answer to ${what} after ${spent}: the switch is unreachable, its SNMP agent is off or on another port, or the community (${field}) is wrong — an agent drops a request with an unknown community without a word`,
      attempts,
    );
  }
}

function openSession(target: SnmpTarget, creds: SnmpCredentials, timeoutMs: number): Session {
  const options = {
    port: target.port,
    retries: 0, // retries are ours: counted, logged and backed off
    timeout: timeoutMs,
    transport: isIPv6(target.host) ? ("udp6" as const) : ("udp4" as const),
  };
  if (creds.version === "2c") {
    return snmp.createSession(target.host, creds.community.reveal(), { ...options, version: snmp.Version2c });
  }
  return snmp.createV3Session(
    target.host,
    {
      name: creds.user,
      level: snmp.SecurityLevel.authPriv,
      authProtocol: snmp.AuthProtocols[creds.authProtocol],
      authKey: creds.authKey.reveal(),
      privProtocol: snmp.PrivProtocols[creds.privProtocol],
      privKey: creds.privKey.reveal(),
    },
    { ...options, version: snmp.Version3 },
  );
}

/**
 * Any SNMP engine that speaks v3 answers engine-ID discovery without credentials (RFC 3414 §4).
 * An answer proves the switch is up and listening, so silence to our own requests is a credential.
 */
export async function probeAlive(target: Pick<SnmpTarget, "host" | "port">, timeoutMs: number): Promise<boolean> {
  const session = snmp.createV3Session(
    target.host,
    { name: "", level: snmp.SecurityLevel.noAuthNoPriv },
    { port: target.port, retries: 0, timeout: timeoutMs, transport: isIPv6(target.host) ? "udp6" : "udp4", version: snmp.Version3 },
  );
  session.on("error", () => undefined);
  try {
    await new Promise<void>((resolve) => session.get([OID_SYS_DESCR_0], () => resolve()));
    return hasEngine(session);
  } finally {
    try {
      session.close();
    } catch {
      // closed
    }
  }
}

const OID_SYS_DESCR_0 = "1.3.6.1.2.1.1.1.0";

function hasEngine(session: Session | undefined): boolean {
  const id = session?.msgSecurityParameters?.msgAuthoritativeEngineID;
  return id !== undefined && id.length > 0;
}

function isNotInTimeWindow(err: unknown): boolean {
  return err instanceof snmp.ResponseInvalidError && (err.code === snmp.ResponseInvalidCode.ENotInTimeWindow || /Not In Time Window/i.test(err.message));
}

function credentialField(creds: SnmpCredentials, kind: Kind, separateRead: boolean): string {
  if (creds.version === "3") return "switch.snmp.user";
  return kind === "read" && separateRead ? "switch.snmp.readCommunity" : "switch.snmp.community";
}

function authOf(creds: SnmpCredentials): string {
  return creds.version === "3" ? creds.authProtocol : "n/a";
}

function privOf(creds: SnmpCredentials): string {
  return creds.version === "3" ? creds.privProtocol : "n/a";
}

function toValue(vb: Varbind): SnmpValue {
  if (ABSENT.has(vb.type)) return null;
  const v = vb.value;
  if (typeof v === "number" || typeof v === "string" || Buffer.isBuffer(v)) return v;
  if (typeof v === "bigint") return Number(v);
  return v === null || v === undefined ? null : String(v);
}

function matches(w: SnmpWrite, got: SnmpValue): boolean {
  if (w.expect) return w.expect(got);
  if (got === null) return false;
  if (typeof w.value === "number") return got === w.value;
  const want = Buffer.isBuffer(w.value) ? w.value : Buffer.from(w.value);
  return Buffer.isBuffer(got) ? got.equals(want) : typeof got === "string" && got === want.toString();
}

function show(v: SnmpValue | number | string | Buffer): string {
  if (v === null) return "nothing";
  if (Buffer.isBuffer(v)) return `0x${v.toString("hex")}`;
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}

/** Packs atomic groups into PDUs of at most `max` varbinds (a bigger group goes alone). */
function pack(groups: SnmpWrite[][], max: number): SnmpWrite[][] {
  const pdus: SnmpWrite[][] = [];
  let current: SnmpWrite[] = [];
  for (const group of groups) {
    if (current.length > 0 && current.length + group.length > max) {
      pdus.push(current);
      current = [];
    }
    current.push(...group);
  }
  if (current.length > 0) pdus.push(current);
  return pdus;
}
