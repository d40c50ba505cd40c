import WebSocket from "ws";
import { encodeEnvelope, envelopeAround, newNonce, type Body, type SampleEncoder, type SharedBodyName } from "@pifleet/proto";
import type { Endpoint, Principal } from "./auth.js";
import type { RateLimit } from "./event-log.js";
import type { Metrics } from "./metrics.js";

export type ConnectionPhase = "hello" | "ready" | "closed";

/**
 * One WebSocket peer: its challenge, who it proved to be, and its outgoing sequence numbers.
 * Nothing here decides anything; the gateway does.
 */
export class Connection {
  phase: ConnectionPhase = "hello";
  readonly nonce = newNonce();
  principal: Principal | undefined;
  sessionId = "";
  /** Set when another connection for the same identity took over. */
  replaced = false;
  helloTimer: NodeJS.Timeout | undefined;
  /** Told once the peer has authenticated: the HTTP server stops counting it as a pending socket. */
  onAuthenticated: (() => void) | undefined;
  /** Operator requests this connection may send (token bucket), and how often it may exceed that. */
  operatorRequests: RateLimit | undefined;
  overLimit: RateLimit | undefined;
  /** What the agent's hello said it runs. */
  agentVersion = "";
  /** A Pi agent that sends facts, and so PiSample, rather than the pre-0.2 PiReport. */
  sendsFacts = false;
  /** Turns a pre-0.2 agent's PiReports into samples (it keeps their counters). */
  legacy: SampleEncoder | undefined;
  private seq = 0;
  readonly framesIn: { value: number };
  private readonly framesOut: { value: number };

  constructor(
    readonly ws: WebSocket,
    readonly endpoint: Endpoint,
    readonly remote: string,
    metrics: Metrics,
  ) {
    this.framesIn = metrics.framesIn.bind({ endpoint });
    this.framesOut = metrics.framesOut.bind({ endpoint });
  }

  get identity(): string | undefined {
    return this.principal?.identity;
  }

  get open(): boolean {
    return this.phase !== "closed" && this.ws.readyState === WebSocket.OPEN;
  }

  send(body: Body): void {
    if (!this.open) return;
    this.ws.send(encodeEnvelope({ seq: ++this.seq, ...body }));
    this.framesOut.value++;
  }

  /** Sends a body encoded once for many peers, in this peer's own envelope. */
  sendShared(name: SharedBodyName, body: Uint8Array): void {
    if (!this.open) return;
    this.ws.send(envelopeAround(++this.seq, name, body));
    this.framesOut.value++;
  }

  get buffered(): number {
    return this.ws.bufferedAmount;
  }

  /** Closes; a peer that does not finish the closing handshake is cut off after a second. */
  close(code: number, reason: string): void {
    if (this.phase === "closed") return;
    this.phase = "closed";
    clearTimeout(this.helloTimer);
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
      this.ws.close(code, reason.slice(0, 120));
      setTimeout(() => this.ws.terminate(), 1000).unref();
    }
  }
}
