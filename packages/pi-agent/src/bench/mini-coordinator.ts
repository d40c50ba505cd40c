import { EventEmitter } from "node:events";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import { decodeEnvelope, encodeEnvelope, newNonce, readingOf, SampleEncoder, verifyHello, v1, type PiReading } from "@pifleet/proto";

export interface ReceivedReport {
  identity: string;
  /** What arrived: a PiSample (agents since 0.2), or a PiReport when this coordinator plays one before 0.2. */
  sample: v1.PiSample | null;
  report: v1.PiReport | null;
  /** Read with the facts the agent sent. */
  reading: PiReading;
  /** The whole frame's size. */
  bytes: number;
  at: number;
}

export interface MiniCoordinatorEvents {
  report: [r: ReceivedReport];
  result: [identity: string, result: v1.CommandResult];
  hello: [identity: string, agentVersion: string];
}

export interface MiniCoordinatorOptions {
  /** Enrolled agents: identity → public key (from generateAgentCredential). */
  agents: Record<string, string>;
  host?: string;
  port?: number;
  /** Sent in HelloAck; 0 lets the agent keep its own. */
  reportIntervalMs?: number;
  /** false: answer as a coordinator before pifleet 0.2, which takes only PiReport. Default true. */
  acceptsSamples?: boolean;
}

/**
 * The agent side of the coordinator protocol and nothing else: challenge, signed hello, HelloAck,
 * then it collects reports and command results and can send commands. For the agent's own tests
 * and benchmark, where the real coordinator would measure itself too.
 */
export class MiniCoordinator extends EventEmitter<MiniCoordinatorEvents> {
  readonly reports: ReceivedReport[] = [];
  readonly sockets = new Map<string, WebSocket>();
  /** Where each agent's latest connection came from. */
  readonly remotes = new Map<string, string>();
  /** The latest facts of each agent (from its hello or a facts frame). */
  readonly facts = new Map<string, v1.AgentFacts>();
  private wss!: WebSocketServer;
  port = 0;

  constructor(private readonly opts: MiniCoordinatorOptions) {
    super();
  }

  get url(): string {
    const host = this.opts.host ?? "::1";
    return `ws://${host.includes(":") ? `[${host}]` : host}:${this.port}/agent`;
  }

  async start(): Promise<this> {
    this.wss = new WebSocketServer({ host: this.opts.host ?? "::1", port: this.opts.port ?? this.port ?? 0, path: "/agent" });
    await new Promise<void>((resolve, reject) => {
      this.wss.once("listening", resolve);
      this.wss.once("error", reject);
    });
    this.port = (this.wss.address() as AddressInfo).port;
    this.wss.on("connection", (ws, req) => this.accept(ws, req.socket.remoteAddress ?? ""));
    return this;
  }

  /** Closes every connection and the listener (an outage); `start()` again reopens on the same port. */
  async stop(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise<void>((r) => this.wss.close(() => r()));
    this.sockets.clear();
  }

  sendCommand(identity: string, command: v1.Command.$Properties): boolean {
    const ws = this.sockets.get(identity);
    if (!ws) return false;
    ws.send(encodeEnvelope({ seq: 1, command }));
    return true;
  }

  private accept(ws: WebSocket, remote: string): void {
    const nonce = newNonce();
    let identity: string | undefined;
    ws.send(encodeEnvelope({ seq: 1, challenge: { nonce, serverTimeMs: Date.now() } }));
    ws.on("message", (data: Buffer) => {
      let env;
      try {
        env = decodeEnvelope(data);
      } catch (err) {
        ws.close(1002, (err as Error).message.slice(0, 100));
        return;
      }
      if (!identity) {
        const h = env.hello as v1.Hello | null | undefined;
        const key = h ? this.opts.agents[h.identity] : undefined;
        if (!h || !key || h.role !== v1.Role.ROLE_PI || !verifyHello(key, h.role, h.identity, h.nonce, h.signature)) {
          ws.send(encodeEnvelope({ seq: 2, error: { code: "unauthenticated", message: "bad hello", frame: "hello" } }));
          ws.close(1008, "unauthenticated");
          return;
        }
        identity = h.identity;
        this.sockets.set(identity, ws);
        this.remotes.set(identity, remote);
        if (h.facts) this.facts.set(identity, h.facts as v1.AgentFacts);
        ws.send(encodeEnvelope({ seq: 2, helloAck: { sessionId: `s-${identity}-${Date.now()}`, reportIntervalMs: this.opts.reportIntervalMs ?? 0, acceptsSamples: this.opts.acceptsSamples ?? true } }));
        this.emit("hello", identity, h.agentVersion);
        return;
      }
      if (env.facts) {
        this.facts.set(identity, env.facts as v1.AgentFacts);
      } else if (env.piSample || env.piReport) {
        let reading: PiReading;
        if (env.piSample) reading = readingOf({ lastSample: env.piSample, facts: this.facts.get(identity) })!;
        else {
          const enc = new SampleEncoder();
          reading = readingOf({ lastSample: enc.encode(env.piReport!).sample, facts: enc.facts })!;
        }
        const r: ReceivedReport = { identity, sample: (env.piSample as v1.PiSample) ?? null, report: (env.piReport as v1.PiReport) ?? null, reading, bytes: data.byteLength, at: Date.now() };
        this.reports.push(r);
        this.emit("report", r);
      } else if (env.commandResult) {
        this.emit("result", identity, env.commandResult as v1.CommandResult);
      }
    });
    ws.on("close", () => {
      if (identity && this.sockets.get(identity) === ws) this.sockets.delete(identity);
    });
  }
}
