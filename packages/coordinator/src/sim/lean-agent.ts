import WebSocket from "ws";
import type { Logger } from "@pifleet/core";
import { agentKeyFromSecret, decodeEnvelope, encodeEnvelope, PROTOCOL_VERSION, signHello, v1 } from "@pifleet/proto";

export interface LeanAgentOptions {
  url: string;
  identity: string;
  secret: string;
  localAddress?: string;
  maxBackoffMs?: number;
  logger?: Logger;
  onRefused?: (e: v1.ErrorFrame) => void;
  /** Sent in the hello (an agent since 0.2); without them the agent is one that sends PiReport. */
  facts?: v1.AgentFacts.$Properties;
}

/**
 * A simulated agent for large benchmarks: the same handshake as FleetClient (the codec's hello,
 * signed with the agent's key), but reports go out as bytes prepared by the caller, so ten
 * thousand of them in one process cost the machine little next to the coordinator they measure.
 */
export class LeanAgent {
  ready = false;
  private ws: WebSocket | undefined;
  private seq = 0;
  private stopped = true;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly key;
  private onReady: (() => void) | undefined;

  constructor(private readonly o: LeanAgentOptions) {
    this.key = agentKeyFromSecret(o.secret);
  }

  /** Connects; resolves at the first HelloAck. Reconnects with jittered back-off until stopped. */
  start(): Promise<void> {
    this.stopped = false;
    return new Promise((resolve) => {
      this.onReady = resolve;
      this.connect();
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      ws.once("close", () => resolve());
      ws.close(1000, "sim stopping");
      setTimeout(() => {
        ws.terminate();
        resolve();
      }, 1000).unref();
    });
  }

  /** Sends Envelope{version, seq, <field>: body}: `body` is an encoded PiSample (field 22) or PiReport (14). */
  sendReport(body: Uint8Array, field = 22): boolean {
    const ws = this.ws;
    if (!this.ready || !ws || ws.readyState !== WebSocket.OPEN) return false;
    const seq = ++this.seq;
    const head = Buffer.allocUnsafe(16);
    let p = 0;
    head[p++] = 0x08;
    head[p++] = PROTOCOL_VERSION;
    head[p++] = 0x10;
    p = varint(head, p, seq);
    p = varint(head, p, (field << 3) | 2);
    p = varint(head, p, body.byteLength);
    ws.send(Buffer.concat([head.subarray(0, p), body]));
    return true;
  }

  private connect(): void {
    if (this.stopped) return;
    this.ready = false;
    this.seq = 0;
    const ws = new WebSocket(this.o.url, { localAddress: this.o.localAddress, perMessageDeflate: false, handshakeTimeout: 30_000 });
    this.ws = ws;
    ws.on("message", (data: Buffer) => {
      let env;
      try {
        env = decodeEnvelope(data);
      } catch {
        ws.close(1002, "bad frame");
        return;
      }
      if (env.body === "challenge") {
        const role = v1.Role.ROLE_PI;
        const nonce = env.challenge!.nonce as Uint8Array;
        ws.send(encodeEnvelope({ seq: ++this.seq, hello: { role, identity: this.o.identity, nonce, signature: signHello(this.key, role, this.o.identity, nonce), agentVersion: "sim-lean", facts: this.o.facts } }));
      } else if (env.body === "helloAck") {
        this.ready = true;
        this.attempt = 0;
        this.onReady?.();
        this.onReady = undefined;
      } else if (env.body === "error") {
        this.o.onRefused?.(env.error as v1.ErrorFrame);
      }
    });
    ws.on("error", (err) => this.o.logger?.debug({ err: err.message, identity: this.o.identity }, "sim connection error"));
    ws.on("close", () => {
      if (this.ws !== ws) return;
      this.ready = false;
      if (this.stopped) return;
      const delay = Math.round(Math.random() * Math.min(this.o.maxBackoffMs ?? 1000, 100 * 2 ** this.attempt));
      this.attempt = Math.min(this.attempt + 1, 16);
      this.timer = setTimeout(() => this.connect(), delay);
    });
  }
}

function varint(b: Buffer, p: number, v: number): number {
  while (v >= 128) {
    b[p++] = (v % 128) | 128;
    v = Math.floor(v / 128);
  }
  b[p++] = v;
  return p;
}
