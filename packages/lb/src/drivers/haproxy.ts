import { canonicalIPv6, createLogger, type LoadBalancerServerPlan, type Logger } from "@pifleet/core";
import { LoadBalancerError, type DriverOptions, type LoadBalancerDriver, type ServerState, type SyncResult } from "../driver.js";
import { RuntimeApi, summarizeAnswer } from "../haproxy/runtime-api.js";
import { parseServersStateRows, ServersStateFormatError, toServerState, type RawServerRow } from "../haproxy/servers-state.js";

/**
 * HAProxy over its runtime API (management guide: add/del server, set server … state, enable
 * health, show servers state). Written against Debian bookworm's 2.6, where dynamic servers need
 * no experimental mode; 2.4 asks for it, so a refusal that mentions it is retried once with
 * `experimental-mode on;`.
 *
 * Servers pifleet adds get a forced id at or above MANAGED_ID_BASE. That marks them in HAProxy
 * itself, so after a coordinator restart sync still knows which servers are its own to delete and
 * never touches servers from the config file (which get small automatic ids).
 */
export const MANAGED_ID_BASE = 1_000_000;

const NAME = /^[A-Za-z0-9_.:-]{1,64}$/;
const IPV4 = /^(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])){3}$/;

export interface HaproxyDriverOptions extends DriverOptions {
  logger?: Logger;
  /** Check timing for servers the driver adds (a dynamic server inherits nothing from `default-server`). */
  checkTiming?: { intervalMs?: number; rise?: number; fall?: number };
}

type Ok = (answer: string) => boolean;
const empty: Ok = (a) => a.trim() === "";

export class HaproxyDriver implements LoadBalancerDriver {
  readonly name = "haproxy";
  readonly backend: string;
  private readonly api: RuntimeApi;
  private readonly check: string;
  private readonly log: Logger;

  constructor(options: HaproxyDriverOptions) {
    if (!NAME.test(options.backend)) throw new LoadBalancerError(`loadBalancer.backend: "${options.backend}" is not a valid HAProxy backend name`);
    this.backend = options.backend;
    this.api = new RuntimeApi(options.socket, { timeoutMs: options.timeoutMs });
    this.check = options.check === false ? "" : checkKeywords(options.checkTiming ?? {});
    this.log = options.logger ?? createLogger("lb");
  }

  async servers(): Promise<ServerState[]> {
    return (await this.rows()).map((r) => toServerState(r, isManaged));
  }

  private async rows(): Promise<RawServerRow[]> {
    const command = `show servers state ${this.backend}`;
    const answer = await this.api.run(command);
    try {
      return parseServersStateRows(answer).rows.filter((r) => r.be_name === this.backend);
    } catch (err) {
      if (!(err instanceof ServersStateFormatError)) throw err;
      // A refusal ("Can't find backend.") is also "not the expected format": show it as HAProxy's answer.
      const looksLikeDump = /^[0-9]+\n#/.test(answer);
      throw new LoadBalancerError(
        looksLikeDump
          ? `haproxy at ${this.api.label}: cannot parse the answer to "${command}": ${err.message}`
          : `haproxy at ${this.api.label}: "${command}" failed: ${summarizeAnswer(answer)}`,
        command,
        answer,
      );
    }
  }

  async server(name: string): Promise<ServerState> {
    checkName(name);
    const found = (await this.servers()).find((s) => s.name === name);
    if (!found) throw new LoadBalancerError(`haproxy backend ${this.backend} has no server "${name}"`);
    return found;
  }

  drain(name: string): Promise<void> {
    return this.setState(name, "drain");
  }

  maintenance(name: string): Promise<void> {
    return this.setState(name, "maint");
  }

  ready(name: string): Promise<void> {
    return this.setState(name, "ready");
  }

  async sync(planned: readonly LoadBalancerServerPlan[]): Promise<SyncResult> {
    const wanted = new Map<string, { address: string; port: number }>();
    for (const s of planned) {
      checkName(s.name);
      if (wanted.has(s.name)) throw new LoadBalancerError(`load balancer plan lists server "${s.name}" twice`);
      wanted.set(s.name, { address: checkAddress(s.name, s.address), port: checkPort(s.name, s.port) });
    }
    const rows = await this.rows();
    const current = rows.map((r) => toServerState(r, isManaged));
    const byName = new Map(current.map((s) => [s.name, s]));
    const ids = new Set(rows.map((r) => Number(r.srv_id)));
    let nextId = MANAGED_ID_BASE;
    const result: SyncResult = { added: [], updated: [], removed: [], unchanged: [], pending: [] };

    for (const [name, want] of wanted) {
      const have = byName.get(name);
      if (have) {
        if (sameAddress(have.address, want.address) && have.port === want.port) {
          result.unchanged.push(name);
          continue;
        }
        await this.command(`set server ${this.backend}/${name} addr ${want.address} port ${want.port}`, (a) => a.trim() === "" || /changed from|no need to change/i.test(a));
        result.updated.push(name);
        this.log.info({ backend: this.backend, server: name, from: `${have.address}:${have.port}`, to: `${want.address}:${want.port}` }, "load balancer server address updated");
        continue;
      }
      while (ids.has(nextId)) nextId++;
      ids.add(nextId);
      const target = want.address.includes(":") ? `[${want.address}]:${want.port}` : `${want.address}:${want.port}`;
      const server = `${this.backend}/${name}`;
      await this.command(`add server ${server} ${target} id ${nextId}${this.check}`, (a) => /New server registered/i.test(a));
      if (this.check) {
        // Dynamic servers start with checks off and in maintenance. Marking health down as it leaves
        // maintenance makes HAProxy wait for `rise` passing checks before sending it traffic.
        await this.command(`enable health ${server}`, empty);
        await this.command(`enable server ${server}; set server ${server} health down`, empty);
      } else {
        await this.command(`enable server ${server}`, empty);
      }
      result.added.push(name);
      this.log.info({ backend: this.backend, server: name, address: target }, "load balancer server added");
    }

    for (const have of current) {
      if (wanted.has(have.name) || !have.managed) continue;
      const server = `${this.backend}/${have.name}`;
      // HAProxy deletes only servers in maintenance with no connections left.
      if (have.admin !== "maint") await this.command(`set server ${server} state maint`, empty);
      const answer = await this.api.run(`del server ${server}`);
      if (/Server deleted/i.test(answer)) {
        result.removed.push(have.name);
        this.log.info({ backend: this.backend, server: have.name }, "load balancer server removed");
      } else if (/connection|queue/i.test(answer)) {
        result.pending.push({ name: have.name, reason: summarizeAnswer(answer) });
        this.log.warn({ backend: this.backend, server: have.name, answer: summarizeAnswer(answer) }, "load balancer server kept in maintenance until its connections end");
      } else {
        throw this.refused(`del server ${server}`, answer);
      }
    }
    return result;
  }

  async close(): Promise<void> {
    // One connection per command: nothing stays open.
  }

  private async setState(name: string, state: "ready" | "drain" | "maint"): Promise<void> {
    checkName(name);
    await this.command(`set server ${this.backend}/${name} state ${state}`, empty);
    this.log.info({ backend: this.backend, server: name, state }, "load balancer server state set");
  }

  private async command(command: string, ok: Ok): Promise<string> {
    let answer = await this.api.run(command);
    if (!ok(answer) && /experimental/i.test(answer)) answer = await this.api.run(`experimental-mode on; ${command}`);
    if (!ok(answer)) throw this.refused(command, answer);
    this.log.debug({ command, answer: answer.trim() }, "haproxy runtime API");
    return answer;
  }

  private refused(command: string, answer: string): LoadBalancerError {
    return new LoadBalancerError(`haproxy at ${this.api.label}: "${command}" failed: ${summarizeAnswer(answer)}`, command, answer);
  }
}

function checkKeywords(timing: NonNullable<HaproxyDriverOptions["checkTiming"]>): string {
  const int = (field: string, v: number | undefined, min: number, max: number): string => {
    if (v === undefined) return "";
    if (!Number.isInteger(v) || v < min || v > max) throw new LoadBalancerError(`load balancer checkTiming.${field}: ${v} must be an integer from ${min} to ${max}`);
    return String(v);
  };
  const inter = int("intervalMs", timing.intervalMs, 10, 3_600_000);
  const rise = int("rise", timing.rise, 1, 100);
  const fall = int("fall", timing.fall, 1, 100);
  return ` check${inter ? ` inter ${inter}ms` : ""}${rise ? ` rise ${rise}` : ""}${fall ? ` fall ${fall}` : ""}`;
}

function isManaged(row: RawServerRow): boolean {
  return row.srv_f_forced_id === "1" && Number(row.srv_id) >= MANAGED_ID_BASE;
}

function checkName(name: string): void {
  // Names go into a command line: anything outside HAProxy's identifier set could inject a command.
  if (!NAME.test(name)) throw new LoadBalancerError(`load balancer server name "${name}" must use only A-Z a-z 0-9 _ . : -`);
}

function checkAddress(name: string, address: string): string {
  const v6 = canonicalIPv6(address);
  if (v6) return v6;
  if (IPV4.test(address)) return address;
  throw new LoadBalancerError(`load balancer server ${name}: address "${address}" is not an IP address`);
}

function checkPort(name: string, port: number): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new LoadBalancerError(`load balancer server ${name}: port ${port} is out of range`);
  return port;
}

function sameAddress(a: string, b: string): boolean {
  return (canonicalIPv6(a) ?? a) === (canonicalIPv6(b) ?? b);
}
