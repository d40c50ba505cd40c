import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import WebSocket from "ws";
import { createLogger } from "@pifleet/core";
import { decodeEnvelope, FleetClient, v1, type BodyName, type Envelope } from "@pifleet/proto";
import { Coordinator, createToken, enrollAgent, FeedMirror, SqliteStore, type CoordinatorSettings, type DesiredState } from "@pifleet/coordinator";

export type Frame = Envelope & { body: BodyName };

/** Log lines the coordinator wrote, parsed. */
export class LogCapture extends Writable {
  readonly lines: Array<Record<string, unknown>> = [];
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    for (const l of chunk.toString().split("\n")) if (l.trim()) this.lines.push(JSON.parse(l) as Record<string, unknown>);
    cb();
  }
  find(pred: (l: Record<string, unknown>) => boolean): Record<string, unknown> | undefined {
    return this.lines.find(pred);
  }
}

export interface Harness {
  coord: Coordinator;
  store: SqliteStore;
  dir: string;
  log: LogCapture;
  secrets: Map<string, string>;
  watcherToken: string;
  operatorToken: string;
  stop(): Promise<void>;
}

export async function startCoordinator(
  o: { pis?: string[]; settings?: Partial<CoordinatorSettings>; host?: string; dir?: string; keepDir?: boolean; staticDir?: string } = {},
): Promise<Harness> {
  const dir = o.dir ?? mkdtempSync(path.join(tmpdir(), "pifleet-coord-"));
  const store = new SqliteStore(path.join(dir, "coordinator.db"));
  const names = o.pis ?? ["pi01", "pi02", "pi03"];
  const desired: DesiredState = { fleet: "test", fileserver: "fileserver", pis: names.map((name, i) => ({ name, port: i + 1 })) };
  const secrets = new Map<string, string>();
  for (const n of names) if (!store.agent(n)) secrets.set(n, enrollAgent(store, n, "pi").secret);
  const watcherToken = store.token("watch") ? "" : createToken(store, "watch", "watcher");
  const operatorToken = store.token("ops") ? "" : createToken(store, "ops", "operator");
  const log = new LogCapture();
  const logger = createLogger("coordinator", { level: "debug" }, log);
  const coord = new Coordinator({
    desired,
    store,
    settings: { startupGraceMs: 0, helloTimeoutMs: 1000, ...o.settings },
    listen: { host: o.host ?? "127.0.0.1", port: 0 },
    staticDir: o.staticDir,
    logger,
  });
  await coord.start();
  return {
    coord,
    store,
    dir,
    log,
    secrets,
    watcherToken,
    operatorToken,
    async stop() {
      await coord.stop();
      store.close();
      if (!o.keepDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A bare WebSocket that records every frame, for sending what no proper client would. */
export class RawClient {
  readonly ws: WebSocket;
  readonly frames: Frame[] = [];
  /** Byte size of every frame received, in order. */
  readonly sizes: number[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  /** This end's port: the coordinator logs and audits the peer as ADDRESS:PORT. */
  localPort = 0;
  private waiters: Array<() => void> = [];

  constructor(url: string) {
    this.ws = new WebSocket(url, { maxPayload: 64 * 1024 * 1024 });
    this.ws.on("upgrade", (res) => (this.localPort = res.socket.localPort ?? 0));
    this.ws.on("message", (data: Buffer) => {
      this.sizes.push(data.byteLength);
      this.frames.push(decodeEnvelope(data, 64 * 1024 * 1024));
      for (const w of this.waiters.splice(0)) w();
    });
    this.ws.on("error", () => undefined);
    this.closed = new Promise((resolve) => this.ws.on("close", (code, reason) => {
      resolve({ code, reason: reason.toString() });
      for (const w of this.waiters.splice(0)) w();
    }));
  }

  async next(body: BodyName, timeoutMs = 5000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = this.frames.find((x) => x.body === body);
      if (f) return f;
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error(`closed before a ${body} frame (got ${this.frames.map((x) => x.body).join(", ")})`);
      if (Date.now() > deadline) throw new Error(`no ${body} frame within ${timeoutMs} ms`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  async challenge(): Promise<Uint8Array> {
    return (await this.next("challenge")).challenge!.nonce as Uint8Array;
  }

  send(data: Uint8Array | string, binary = true): void {
    this.ws.send(data, { binary });
  }
}

/** A watcher (FleetClient + FeedMirror) with a helper to wait for what the feed shows. */
export class Watcher {
  readonly client: FleetClient;
  readonly mirror = new FeedMirror();
  /** Every PiStatus received, with receive time. */
  readonly seen: Array<{ at: number; status: v1.PiStatus }> = [];

  constructor(url: string, token: string, name: string, role = v1.Role.ROLE_WATCHER) {
    this.client = new FleetClient({ url, role, identity: name, token, maxBackoffMs: 500, initialBackoffMs: 50 });
    this.client.on("message", (env) => {
      const u = this.mirror.apply(env);
      if (u) for (const s of u.pis) this.seen.push({ at: Date.now(), status: s });
    });
    this.client.start();
  }

  until<T>(what: string, probe: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
    return waitFor(what, probe, timeoutMs);
  }

  state(pi: string): string | undefined {
    const s = this.mirror.pis.get(pi);
    return s ? v1.PiState[s.state] : undefined;
  }

  /** Resolves once a report from `pi` newer than `afterMs` reached this watcher. */
  reportAfter(pi: string, afterMs: number, timeoutMs = 5000): Promise<number> {
    return this.until(`a report from ${pi} after ${afterMs}`, () => {
      const t = this.mirror.pis.get(pi)?.lastSample?.timeMs;
      return typeof t === "number" && t > afterMs ? t : undefined;
    }, timeoutMs);
  }

  stop(): Promise<void> {
    return this.client.stop();
  }
}

export async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
