import { EventEmitter } from "node:events";
import WebSocket from "ws";
import type { Logger } from "@pifleet/core";
import { decodeEnvelope, encodeEnvelope, FrameError, MAX_FRAME_BYTES, v1, type EnvelopeInit, type Envelope, type BodyName } from "./codec.js";
import { agentKeyFromSecret, signHello } from "./hello.js";

/** The longest a FleetClient waits before reconnecting (full jitter below it); recovery counts on it. */
export const MAX_RECONNECT_BACKOFF_MS = 15_000;

export interface FleetClientOptions {
  /** e.g. ws://[2a00:1098:0:84::10]:7300/agent or wss://coordinator:7300/feed */
  url: string;
  /** Further coordinators (high availability): after a failed or lost connection the next is tried. */
  urls?: string[];
  /**
   * With several coordinators: a connection whose coordinator has not answered a WebSocket ping
   * for this long is dropped and the next coordinator tried (a frozen coordinator keeps its TCP
   * connections open). Default 3000; one coordinator: no pings, as before.
   */
  livenessMs?: number;
  role: v1.Role;
  identity: string;
  /** Agents: the secret issued by `pifleet enroll`. */
  secret?: string;
  /** Watchers and operators: their token. */
  token?: string;
  /** Source address to connect from (a Pi connects from its eth0.131 address). */
  localAddress?: string;
  /** Frames kept while disconnected; the oldest are dropped past this. */
  maxQueue?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** TLS: a CA bundle (PEM) to trust for wss://. */
  ca?: string | Buffer;
  maxFrameBytes?: number;
  agentVersion?: string;
  /** Pi agents: their static facts, read at each hello (their presence offers PiSample). */
  facts?: () => v1.AgentFacts.$Properties | undefined;
  logger?: Logger;
}

export type Body = Omit<EnvelopeInit, "version" | "seq">;

export interface FleetClientEvents {
  ready: [ack: v1.HelloAck];
  message: [env: Envelope & { body: BodyName }];
  refused: [error: v1.ErrorFrame];
  disconnected: [reason: string];
}

/**
 * The client side of a coordinator connection, shared by agents, `pifleet watch` and tests:
 * answers the challenge, reconnects with jittered exponential back-off, and keeps a bounded queue
 * of frames while disconnected so a short outage loses no reports.
 */
export class FleetClient extends EventEmitter<FleetClientEvents> {
  private ws: WebSocket | undefined;
  private seq = 0;
  private stopped = true;
  private authenticated = false;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly queue: Body[] = [];
  private readonly key;
  private readonly urls: string[];
  private urlIndex = 0;
  private liveness: NodeJS.Timeout | undefined;
  dropped = 0;
  /** What the coordinator's last HelloAck said: it takes PiSample (a coordinator before 0.2 does not). */
  acceptsSamples = false;

  constructor(private readonly opts: FleetClientOptions) {
    super();
    this.key = opts.secret ? agentKeyFromSecret(opts.secret) : undefined;
    this.urls = [opts.url, ...(opts.urls ?? []).filter((u) => u !== opts.url)];
  }

  /** The coordinator URL this client connects (or last connected) to. */
  get url(): string {
    return this.urls[this.urlIndex]!;
  }

  get ready(): boolean {
    return this.authenticated;
  }

  get queued(): number {
    return this.queue.length;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.liveness);
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      ws.once("close", () => resolve());
      ws.close(1000, "client stopping");
      setTimeout(() => {
        ws.terminate();
        resolve();
      }, 1000).unref();
    });
  }

  /** Sends now if authenticated; else queues (when `queue`) and returns false. */
  send(body: Body, queue = true): boolean {
    if (this.authenticated && this.ws?.readyState === WebSocket.OPEN) {
      this.ws.send(encodeEnvelope({ seq: ++this.seq, ...body }));
      return true;
    }
    if (queue) {
      this.queue.push(body);
      const max = this.opts.maxQueue ?? 300;
      while (this.queue.length > max) {
        this.queue.shift();
        this.dropped++;
      }
    }
    return false;
  }

  private connect(): void {
    if (this.stopped) return;
    this.authenticated = false;
    this.seq = 0;
    const ws = new WebSocket(this.url, {
      localAddress: this.opts.localAddress,
      maxPayload: this.opts.maxFrameBytes ?? MAX_FRAME_BYTES,
      ca: this.opts.ca,
      handshakeTimeout: 10_000,
    });
    this.ws = ws;
    ws.binaryType = "nodebuffer";
    clearInterval(this.liveness);
    if (this.urls.length > 1) {
      const limit = this.opts.livenessMs ?? 3000;
      let lastPong = Date.now();
      ws.on("pong", () => (lastPong = Date.now()));
      ws.on("open", () => (lastPong = Date.now()));
      this.liveness = setInterval(() => {
        if (ws.readyState !== WebSocket.OPEN) return;
        if (Date.now() - lastPong > limit) {
          this.opts.logger?.warn({ url: this.url, silentMs: Date.now() - lastPong }, "coordinator does not answer; trying the next");
          ws.terminate();
          return;
        }
        ws.ping();
      }, Math.max(100, Math.floor(limit / 3)));
      this.liveness.unref?.();
    }
    ws.on("message", (data: Buffer, isBinary) => this.onFrame(ws, data, isBinary));
    ws.on("error", (err) => this.opts.logger?.debug({ err: err.message, url: this.url }, "connection error"));
    ws.on("close", (code, reason) => {
      if (this.ws !== ws) return;
      const was = this.authenticated;
      this.authenticated = false;
      const why = `${code}${reason.length ? ` ${reason.toString()}` : ""}`;
      if (was) this.emit("disconnected", why);
      this.scheduleReconnect(why);
    });
  }

  private scheduleReconnect(why: string): void {
    if (this.stopped) return;
    const base = this.opts.initialBackoffMs ?? 250;
    const cap = this.opts.maxBackoffMs ?? MAX_RECONNECT_BACKOFF_MS;
    // Full jitter: a coordinator restart must not see every agent return in the same instant.
    const delay = Math.round(Math.random() * Math.min(cap, base * 2 ** this.attempt));
    this.attempt = Math.min(this.attempt + 1, 16);
    // With several coordinators, the next one is tried: the one that failed may be down for good.
    if (this.urls.length > 1) this.urlIndex = (this.urlIndex + 1) % this.urls.length;
    this.opts.logger?.debug({ delay, why, url: this.url }, "reconnecting");
    this.retryTimer = setTimeout(() => this.connect(), delay);
    this.retryTimer.unref?.();
  }

  private onFrame(ws: WebSocket, data: Buffer, isBinary: boolean): void {
    let env: Envelope & { body: BodyName };
    try {
      if (!isBinary) throw new FrameError("bad_frame", "frame", "text frame; the protocol is binary");
      env = decodeEnvelope(data, this.opts.maxFrameBytes);
    } catch (err) {
      this.opts.logger?.warn({ err: (err as Error).message }, "bad frame from coordinator");
      ws.close(1002, "bad frame");
      return;
    }
    switch (env.body) {
      case "challenge": {
        const nonce = env.challenge!.nonce as Uint8Array;
        const hello: v1.Hello.$Properties = {
          role: this.opts.role,
          identity: this.opts.identity,
          nonce,
          agentVersion: this.opts.agentVersion ?? "",
        };
        if (this.key) hello.signature = signHello(this.key, this.opts.role, this.opts.identity, nonce);
        if (this.opts.token) hello.token = this.opts.token;
        const facts = this.opts.facts?.();
        if (facts) hello.facts = facts;
        ws.send(encodeEnvelope({ seq: ++this.seq, hello }));
        return;
      }
      case "helloAck": {
        this.authenticated = true;
        this.attempt = 0;
        this.acceptsSamples = Boolean(env.helloAck!.acceptsSamples);
        const backlog = this.queue.splice(0);
        this.emit("ready", env.helloAck as v1.HelloAck);
        for (const body of backlog) this.send(body);
        return;
      }
      case "error":
        this.emit("refused", env.error as v1.ErrorFrame);
        this.opts.logger?.warn({ code: env.error!.code, frame: env.error!.frame, reason: env.error!.message }, "coordinator refused");
        return;
      default:
        this.emit("message", env);
    }
  }
}
