import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { performance } from "node:perf_hooks";
import type WebSocket from "ws";
import type { Logger } from "@pifleet/core";
import { decodeEnvelope, FrameError, NET_COUNTERS, rawBodyRange, SampleEncoder, v1, type BodyName, type Envelope } from "@pifleet/proto";
import { roleName, type Authenticator, type Endpoint } from "./auth.js";
import type { CommandRouter } from "./commands.js";
import { Connection } from "./connection.js";
import { RateLimit, type EventLog } from "./event-log.js";
import type { FeedHub } from "./feed.js";
import type { FleetState } from "./fleet-state.js";
import type { Metrics } from "./metrics.js";
import type { RefusalLog } from "./refusal-log.js";
import type { EventInput } from "./store/types.js";

/** Operator actions, implemented by the recovery engine. */
export interface Operations {
  operator(action: string, pi: string, actor: string, reason: string, force: boolean): Promise<{ ok: boolean; message: string }>;
}

export interface GatewayDeps {
  auth: Authenticator;
  fleet: FleetState;
  feed: FeedHub;
  log: EventLog;
  /** Refusals that repeat are written once, then summed up. */
  refusals: RefusalLog;
  commands: CommandRouter;
  metrics: Metrics;
  logger: Logger;
  operations: () => Operations | undefined;
  fleetHasPi: (name: string) => boolean;
  settings: {
    maxFrameBytes: number;
    helloTimeoutMs: number;
    reportIntervalMs: number;
    /** Per connection; a token's connections together get twice the rate and burst. */
    operatorRequestsPerSecond: number;
    operatorRequestBurst: number;
    /** Requests over the limit a connection may send per minute before it is closed. */
    operatorOverLimitPerMinute: number;
  };
}

export interface RefuseSpec {
  code: string;
  reason: string;
  frame: string;
  message: string;
  seq?: number;
  /** Audit subject: the identity claimed or proven; the remote address otherwise. */
  subject?: string;
  closeCode?: number;
}

type Frame = Envelope & { body: BodyName };

/** Refusals that say the agent's credentials are at fault, not that its Pi is dead. */
const CREDENTIAL_REASONS = new Set(["revoked", "bad_signature", "unknown_identity"]);

const CLOSE_FOR: Record<string, number> = { bad_frame: 1002, bad_version: 1002, no_body: 1002, invalid: 1002, unexpected: 1002, too_large: 1009 };
const FRAME_REASON: Record<FrameError["code"], string> = {
  bad_frame: "malformed",
  too_large: "frame_limit",
  bad_version: "protocol_version",
  no_body: "no_body",
  invalid: "invalid_field",
  unexpected: "unexpected",
};

/**
 * Every WebSocket connection passes through here: challenge, hello, then frames routed by the
 * proven role. Any violation is refused with an ErrorFrame, a log line, an audit event and a
 * metric, and that connection alone is closed.
 */
export class Gateway {
  /** The live connection of each agent identity. */
  readonly agents = new Map<string, Connection>();
  private readonly all = new Set<Connection>();
  /** Operator requests per token, across all its connections. */
  private readonly tokenRequests = new Map<string, RateLimit>();
  private readonly reportsFresh;
  private readonly reportsReplayed;

  constructor(private readonly d: GatewayDeps) {
    this.reportsFresh = d.metrics.reports.bind();
    this.reportsReplayed = d.metrics.reports.bind({ replayed: "true" });
  }

  get connections(): number {
    return this.all.size;
  }

  /** `authenticated` is called once the peer has proven who it is. */
  accept(ws: WebSocket, req: IncomingMessage, endpoint: Endpoint, authenticated?: () => void): void {
    const remote = `${req.socket.remoteAddress ?? "?"}:${req.socket.remotePort ?? "?"}`;
    const conn = new Connection(ws, endpoint, remote, this.d.metrics);
    conn.onAuthenticated = authenticated;
    this.all.add(conn);
    this.d.metrics.connections.inc({ endpoint });
    ws.on("message", (data: Buffer, isBinary: boolean) => this.onFrame(conn, data, isBinary));
    ws.on("error", (err: Error & { code?: string }) => this.onSocketError(conn, err));
    ws.on("close", (code) => this.onClose(conn, code));
    conn.send({ challenge: { nonce: conn.nonce, serverTimeMs: Date.now() } });
    conn.helloTimer = setTimeout(() => {
      this.refuse(conn, { code: "unauthenticated", reason: "hello_timeout", frame: "hello", message: `no hello within ${this.d.settings.helloTimeoutMs} ms`, closeCode: 1008 });
    }, this.d.settings.helloTimeoutMs);
    conn.helloTimer.unref();
  }

  /** Closes every connection (shutdown); peers that do not answer the close are cut off after `graceMs`. */
  async closeAll(code: number, reason: string, graceMs = 1000): Promise<void> {
    for (const c of this.all) c.close(code, reason);
    const deadline = Date.now() + graceMs;
    while (this.all.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    for (const c of this.all) c.ws.terminate();
  }

  /** Closes the connections of identities just revoked. */
  revoked(agents: string[], tokens: string[]): void {
    const names = new Set(tokens);
    for (const id of agents) {
      const c = this.agents.get(id);
      if (c) this.refuse(c, { code: "unauthenticated", reason: "revoked", frame: "frame", message: `"${id}" was revoked`, closeCode: 1008 });
    }
    for (const c of this.all) {
      if (c.endpoint === "feed" && c.identity && names.has(c.identity)) {
        this.refuse(c, { code: "unauthenticated", reason: "revoked", frame: "frame", message: `token "${c.identity}" was revoked`, closeCode: 1008 });
      }
    }
  }

  /** A Pi a fleet-file reload took out of the fleet: its agent is told so and closed (it is refused from now on). */
  unplanned(pi: string): void {
    const c = this.agents.get(pi);
    if (c) this.refuse(c, { code: "forbidden", reason: "not_in_fleet", frame: "frame", message: `"${pi}" was removed from the fleet file`, subject: pi, closeCode: 1008 });
  }

  refuse(conn: Connection, r: RefuseSpec): void {
    if (conn.phase === "closed") return;
    conn.send({ error: { code: r.code, reason: r.reason, frame: r.frame, message: r.message, seq: r.seq ?? 0 } });
    const subject = r.subject ?? conn.identity ?? conn.remote;
    this.d.logger.warn({ code: r.code, reason: r.reason, frame: r.frame, endpoint: conn.endpoint, remote: conn.remote, identity: conn.identity, subject }, `refused: ${r.message}`);
    this.d.metrics.refused.inc({ code: r.code, reason: r.reason });
    this.audit(subject, r, conn);
    conn.close(r.closeCode ?? CLOSE_FOR[r.code] ?? 1008, `${r.code}: ${r.reason}`);
  }

  private audit(subject: string, r: Omit<RefuseSpec, "closeCode" | "seq">, conn: Connection): void {
    const event: EventInput = {
      kind: "auth",
      subject,
      message: `refused ${r.code} (${r.reason}) from ${conn.remote}: ${r.message}`,
      actor: conn.identity ?? "",
      fields: { code: r.code, reason: r.reason, frame: r.frame, remote: conn.remote, endpoint: conn.endpoint },
    };
    // One key per who and why (not per source port): a client refused again and again is summed up.
    const key = `auth|${conn.endpoint}|${subject}|${r.code}|${r.reason}`;
    if (conn.endpoint === "agent" && CREDENTIAL_REASONS.has(r.reason) && this.credentialsRefused(subject, r, event, key)) return;
    this.d.refusals.record(key, event);
  }

  /**
   * A Pi of this fleet whose agent is refused for its credentials is silent for a known reason.
   * The first such refusal marks it (shown credentials-refused; recovery leaves it alone) and is
   * its one audit event; repeats are summed up like any refusal. A bad signature or unknown name
   * while the Pi is connected and authenticated is someone else knocking: it marks nothing.
   */
  private credentialsRefused(pi: string, r: Omit<RefuseSpec, "closeCode" | "seq">, event: EventInput, key: string): boolean {
    if (!this.d.fleetHasPi(pi)) return false;
    if (r.reason !== "revoked" && this.agents.has(pi)) return false;
    const from = this.d.fleet.setCredentialsRefused(pi, r.reason, r.message);
    if (from === undefined) return false;
    this.d.log.append({
      ...event,
      message: `${event.message}; ${pi} is shown credentials-refused: no power or rebuild action on it until a person acts (pifleet enroll ${pi} and restart its agent, or pifleet release ${pi})`,
      fields: { ...event.fields, from, to: "credentials-refused" },
    });
    this.d.refusals.seed(key, event);
    return true;
  }

  private onFrame(conn: Connection, data: Buffer, isBinary: boolean): void {
    if (conn.phase === "closed") return;
    const t0 = performance.now();
    conn.framesIn.value++;
    if (!isBinary) {
      this.refuse(conn, { code: "bad_frame", reason: "text_frame", frame: "frame", message: "text frame; the protocol is binary protobuf" });
      return;
    }
    let env: Frame;
    try {
      env = decodeEnvelope(data, this.d.settings.maxFrameBytes);
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      this.refuse(conn, { code: err.code, reason: FRAME_REASON[err.code] ?? err.code, frame: err.frame, message: err.message });
      return;
    }
    if (conn.phase === "hello") {
      if (env.body !== "hello") {
        this.refuse(conn, { code: "unauthenticated", reason: "frame_before_hello", frame: env.body, message: `${env.body} before hello`, seq: env.seq });
        return;
      }
      this.onHello(conn, env.hello as v1.Hello, env.seq);
      return;
    }
    if (conn.endpoint === "agent") this.onAgentFrame(conn, env, data, t0);
    else this.onFeedFrame(conn, env);
  }

  private onHello(conn: Connection, hello: v1.Hello, seq: number): void {
    clearTimeout(conn.helloTimer);
    // A cleared Timeout kept on each of 10,000 connections is 1 MiB of heap the GC walks for nothing.
    conn.helloTimer = undefined;
    const res = this.d.auth.check(hello, conn.nonce, conn.endpoint);
    if (!res.ok) {
      this.refuse(conn, { code: res.code, reason: res.reason, frame: "hello", message: res.message, seq, subject: hello.identity });
      return;
    }
    conn.principal = res.principal;
    conn.phase = "ready";
    conn.onAuthenticated?.();
    conn.sessionId = randomUUID();
    const { identity, role } = res.principal;
    conn.send({ helloAck: { sessionId: conn.sessionId, reportIntervalMs: this.d.settings.reportIntervalMs, acceptsSamples: true } });
    if (conn.endpoint === "agent") {
      conn.agentVersion = hello.agentVersion;
      conn.sendsFacts = Boolean(hello.facts);
      const old = this.agents.get(identity);
      this.agents.set(identity, conn);
      if (old && old !== conn) {
        old.replaced = true;
        this.d.logger.info({ identity, old: old.remote, new: conn.remote }, "a new connection replaces the agent's previous one");
        old.send({ error: { code: "replaced", reason: "replaced", frame: "hello", message: `replaced by a newer connection from ${conn.remote}` } });
        old.close(1000, "replaced");
        this.d.commands.dropped(old, "the agent reconnected before answering");
      }
      if (role === v1.Role.ROLE_PI) {
        // An agent before 0.2 sends no facts: they come from its first report (see onLegacyReport).
        if (hello.facts) this.d.fleet.setFacts(identity, hello.facts);
        this.d.fleet.setConnected(identity, true);
        this.d.fleet.clearCredentialsRefused(identity, "its agent authenticated again", "gateway");
      }
      this.d.logger.debug({ identity, role: roleName(role), remote: conn.remote, agentVersion: hello.agentVersion }, "agent connected");
    } else {
      this.d.logger.info({ identity, role: roleName(role), remote: conn.remote }, "watcher connected");
      this.d.feed.add(conn);
    }
  }

  private onAgentFrame(conn: Connection, env: Frame, data: Buffer, t0: number): void {
    const { identity, role } = conn.principal!;
    switch (env.body) {
      case "piSample": {
        if (role !== v1.Role.ROLE_PI) return this.unexpected(conn, env);
        const sample = env.piSample as v1.PiSample;
        const entry = this.d.fleet.pis.get(identity);
        if (!conn.sendsFacts) {
          this.refuse(conn, { code: "invalid", reason: "invalid_field", frame: "piSample", message: "piSample: the hello carried no facts (AgentFacts), which a sample is read with", seq: env.seq });
          return;
        }
        // Replayed samples may predate the facts this connection started with; they are not judged or shown.
        const interfaces = entry?.facts?.interfaces.length ?? 0;
        if (!sample.replayed && sample.net.length > 0 && sample.net.length !== interfaces * NET_COUNTERS) {
          this.refuse(conn, { code: "invalid", reason: "invalid_field", frame: "piSample", message: `piSample.net: ${sample.net.length} counters for the ${interfaces} interfaces of the agent's facts (expected ${interfaces * NET_COUNTERS})`, seq: env.seq });
          return;
        }
        if (entry && entry.pendingSince === 0) entry.pendingSince = t0;
        const at = rawBodyRange(data, "piSample");
        if (at) this.d.fleet.sample(identity, sample, Date.now(), data, at[0], at[1]);
        else this.d.fleet.sample(identity, sample, Date.now());
        (sample.replayed ? this.reportsReplayed : this.reportsFresh).value++;
        return;
      }
      case "facts":
        if (role !== v1.Role.ROLE_PI) return this.unexpected(conn, env);
        conn.sendsFacts = true;
        this.d.fleet.setFacts(identity, env.facts as v1.AgentFacts);
        return;
      case "piReport": {
        const r = env.piReport as v1.PiReport;
        if (role !== v1.Role.ROLE_PI) return this.unexpected(conn, env);
        if (r.pi !== identity) {
          this.refuse(conn, { code: "identity_mismatch", reason: "identity_mismatch", frame: "piReport", message: `connection of "${identity}" sent a report for "${r.pi}"`, seq: env.seq, closeCode: 1008 });
          return;
        }
        const entry = this.d.fleet.pis.get(identity);
        if (entry && entry.pendingSince === 0) entry.pendingSince = t0;
        this.onLegacyReport(conn, identity, r);
        (r.replayed ? this.reportsReplayed : this.reportsFresh).value++;
        return;
      }
      case "fileserverReport": {
        const r = env.fileserverReport as v1.FileserverReport;
        if (role !== v1.Role.ROLE_FILESERVER) return this.unexpected(conn, env);
        if (r.fileserver !== identity) {
          this.refuse(conn, { code: "identity_mismatch", reason: "identity_mismatch", frame: "fileserverReport", message: `connection of "${identity}" sent a report for "${r.fileserver}"`, seq: env.seq, closeCode: 1008 });
          return;
        }
        this.d.fleet.fileserverReport(identity, r);
        this.d.metrics.fileserverReports.inc();
        return;
      }
      case "commandResult":
        if (!this.d.commands.result(conn, env.commandResult as v1.CommandResult)) {
          this.d.logger.warn({ identity, id: env.commandResult!.id }, "result for a command this connection was not sent: ignored");
        }
        return;
      default:
        return this.unexpected(conn, env);
    }
  }

  /**
   * A PiReport from an agent before pifleet 0.2, still accepted so a fleet can be upgraded one Pi
   * at a time: converted to a sample and facts, as a new agent would have sent them.
   */
  private onLegacyReport(conn: Connection, identity: string, r: v1.PiReport): void {
    const first = !conn.legacy;
    conn.legacy ??= new SampleEncoder({ agentVersion: conn.agentVersion });
    const { sample, factsChanged } = conn.legacy.encode(r);
    if (first || factsChanged) this.d.fleet.setFacts(identity, conn.legacy.facts);
    this.d.fleet.sample(identity, sample, Date.now());
  }

  private onFeedFrame(conn: Connection, env: Frame): void {
    if (env.body !== "operatorRequest") return this.unexpected(conn, env);
    const req = env.operatorRequest as v1.OperatorRequest;
    if (this.admitOperatorRequest(conn, req)) void this.onOperatorRequest(conn, req);
  }

  /**
   * Operator requests are rate-limited per connection and per token. One over the limit gets a
   * refusal reply (summed up in the audit log, not one event each); a connection that keeps
   * exceeding the limit is closed.
   */
  private admitOperatorRequest(conn: Connection, req: v1.OperatorRequest): boolean {
    const s = this.d.settings;
    const identity = conn.identity!;
    conn.operatorRequests ??= new RateLimit(s.operatorRequestsPerSecond, s.operatorRequestBurst);
    let perToken = this.tokenRequests.get(identity);
    if (!perToken) this.tokenRequests.set(identity, (perToken = new RateLimit(2 * s.operatorRequestsPerSecond, 2 * s.operatorRequestBurst)));
    if (conn.operatorRequests.take() && perToken.take()) return true;
    this.d.metrics.refused.inc({ code: "rate_limited", reason: "operator_requests" });
    conn.overLimit ??= new RateLimit(s.operatorOverLimitPerMinute / 60, s.operatorOverLimitPerMinute);
    if (!conn.overLimit.take()) {
      this.refuse(conn, {
        code: "rate_limited",
        reason: "operator_requests",
        frame: "operatorRequest",
        message: `more than ${s.operatorOverLimitPerMinute} operator requests a minute over the limit (${s.operatorRequestsPerSecond}/s, burst ${s.operatorRequestBurst}): connection closed`,
        seq: 0,
        closeCode: 1008,
      });
      return false;
    }
    const message = `rate limited: at most ${s.operatorRequestsPerSecond} operator requests per second per connection (burst ${s.operatorRequestBurst}), twice that per token`;
    this.d.refusals.record(`operator|${identity}|rate_limited`, {
      kind: "operator",
      subject: "fleet",
      actor: identity,
      message: `${identity}'s operator requests refused: ${message}`,
      fields: { ok: "false", refusal: "rate_limited", role: roleName(conn.principal!.role) },
    });
    conn.send({ operatorReply: { id: req.id, ok: false, message } });
    return false;
  }

  private async onOperatorRequest(conn: Connection, req: v1.OperatorRequest): Promise<void> {
    const { identity, role } = conn.principal!;
    const what = `${req.action}${req.pi ? ` ${req.pi}` : ""}`;
    let ok = false;
    let message: string;
    if (role !== v1.Role.ROLE_OPERATOR) {
      message = `forbidden: "${identity}" connected as a watcher; operator requests need an operator token`;
      this.d.metrics.refused.inc({ code: "forbidden", reason: "operator_only" });
      this.d.logger.warn({ identity, remote: conn.remote, action: req.action, pi: req.pi }, "operator request from a watcher refused");
    } else if (req.pi && !this.d.fleetHasPi(req.pi)) {
      message = `no Pi named "${req.pi}" in this fleet`;
    } else {
      const ops = this.d.operations();
      if (!ops) message = "no recovery engine configured";
      else {
        try {
          ({ ok, message } = await ops.operator(req.action, req.pi, identity, req.reason, req.force));
        } catch (err) {
          message = `failed: ${(err as Error).message}`;
        }
      }
    }
    this.d.metrics.operatorRequests.inc({ action: req.action, outcome: ok ? "ok" : "refused" });
    const event: EventInput = {
      kind: "operator",
      subject: req.pi || "fleet",
      actor: identity,
      message: `${identity} asked to ${what}${req.reason ? ` (${req.reason})` : ""}: ${ok ? "done" : "refused"} — ${message}`,
      fields: { action: req.action, pi: req.pi, reason: req.reason, force: String(req.force), ok: String(ok), request: req.id, role: roleName(role) },
    };
    // Every request carried out is its own event; the same refusal again is summed up.
    if (ok) this.d.log.append(event);
    else this.d.refusals.record(role === v1.Role.ROLE_OPERATOR ? `operator|${identity}|${req.action}|${req.pi}|${message}` : `operator|${identity}|forbidden`, event);
    conn.send({ operatorReply: { id: req.id, ok, message } });
  }

  private unexpected(conn: Connection, env: Frame): void {
    this.refuse(conn, { code: "unexpected", reason: "unexpected", frame: env.body, message: `${env.body} is not accepted from a ${roleName(conn.principal!.role)}`, seq: env.seq });
  }

  private onSocketError(conn: Connection, err: Error & { code?: string }): void {
    // ws has already started closing: no ErrorFrame can follow, the close code tells the peer.
    const tooBig = err.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH";
    const spec: RefuseSpec = tooBig
      ? { code: "too_large", reason: "ws_max_payload", frame: "frame", message: `WebSocket message over the ${2 * this.d.settings.maxFrameBytes}-byte transport limit` }
      : { code: "bad_frame", reason: "websocket", frame: "frame", message: `WebSocket protocol error: ${err.message}` };
    if (conn.phase === "closed") return;
    const subject = conn.identity ?? conn.remote;
    this.d.logger.warn({ code: spec.code, reason: spec.reason, endpoint: conn.endpoint, remote: conn.remote, identity: conn.identity, err: err.message }, `refused: ${spec.message}`);
    this.d.metrics.refused.inc({ code: spec.code, reason: spec.reason });
    this.audit(subject, spec, conn);
    conn.phase = "closed";
  }

  private onClose(conn: Connection, code: number): void {
    conn.phase = "closed";
    clearTimeout(conn.helloTimer);
    this.all.delete(conn);
    if (conn.endpoint === "feed") {
      this.d.feed.remove(conn);
      return;
    }
    const identity = conn.identity;
    if (!identity || this.agents.get(identity) !== conn) return;
    this.agents.delete(identity);
    this.d.commands.dropped(conn, "the agent disconnected");
    if (conn.principal!.role === v1.Role.ROLE_PI) this.d.fleet.setConnected(identity, false);
    this.d.logger.info({ identity, code, remote: conn.remote }, "agent disconnected");
  }
}
