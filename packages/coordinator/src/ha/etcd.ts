import { readFileSync } from "node:fs";
import { Etcd3, type IOptions, type Lease } from "etcd3";
import type { Logger } from "@pifleet/core";
import type { IntentStore, OpenIntent } from "@pifleet/recovery";
import { FencedError, type HaBackend, type PeerView } from "./backend.js";

export interface EtcdHaOptions {
  endpoints: string[];
  tls?: { ca?: string; cert?: string; key?: string };
  auth?: { username: string; password: string };
  /** This coordinator's name: the leader key's value. */
  name: string;
  /** The fleet's name: every key lives under /pifleet/<fleet>/. */
  fleet: string;
  leaseTtlS: number;
  logger?: Logger;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Leader election on an etcd lease, fenced acts and power intents in etcd.
 *
 * The leader key is created with `Create == 0` under this coordinator's lease; its create
 * revision is the fencing token. Every act is a transaction comparing the key's create revision
 * with ours: once our lease expired and another coordinator created the key again, the compare
 * fails and the act is not carried out — even if our process was frozen for a minute and does
 * not know yet that it lost.
 */
export class EtcdBackend implements HaBackend {
  readonly kind = "etcd";
  readonly name: string;
  private readonly client: Etcd3;
  private readonly prefix: string;
  private readonly leaderKey: string;
  private lease: Lease | undefined;
  private token = 0;
  private leading = false;
  private currentLeader: string | undefined;
  private lastOkMs = 0;
  private stopped = false;
  private lostCbs: ((reason: string) => void)[] = [];
  private readonly mirror = new Map<number, OpenIntent>();
  private queued = new Map<string, string | null>();
  private nextId = 0;
  private flushTimer: NodeJS.Timeout | undefined;
  private watchTimer: NodeJS.Timeout | undefined;
  private viewLease: Lease | undefined;
  private peers = new Map<string, { view: PeerView; publishedMs: number }>();

  constructor(private readonly opts: EtcdHaOptions) {
    this.name = opts.name;
    this.prefix = `/pifleet/${opts.fleet}/`;
    this.leaderKey = `${this.prefix}leader`;
    const o: IOptions = { hosts: opts.endpoints, dialTimeout: opts.leaseTtlS * 1000 };
    if (opts.tls) {
      o.credentials = {
        rootCertificate: opts.tls.ca ? readFileSync(opts.tls.ca) : Buffer.alloc(0),
        ...(opts.tls.key ? { privateKey: readFileSync(opts.tls.key) } : {}),
        ...(opts.tls.cert ? { certChain: readFileSync(opts.tls.cert) } : {}),
      };
    }
    if (opts.auth) o.auth = opts.auth;
    this.client = new Etcd3(o);
    this.watchLeader();
  }

  /** Followers keep the leader's name for the feed; the leader knows it is itself. */
  private watchLeader(): void {
    const tick = async () => {
      try {
        const v = await this.timed(this.client.get(this.leaderKey).string(), "read the leader");
        this.currentLeader = v ?? undefined;
        const views = await this.timed(this.client.getAll().prefix(`${this.prefix}views/`).strings(), "read the peers' views");
        const peers = new Map<string, { view: PeerView; publishedMs: number }>();
        for (const [k, text] of Object.entries(views)) {
          const name = k.slice(`${this.prefix}views/`.length);
          if (name !== this.name) peers.set(name, JSON.parse(text) as { view: PeerView; publishedMs: number });
        }
        this.peers = peers;
        this.lastOkMs = Date.now();
      } catch {
        /* healthy() says so */
      }
      if (!this.stopped) this.watchTimer = setTimeout(() => void tick(), 500).unref();
    };
    void tick();
  }

  private async timed<T>(p: Promise<T>, what: string): Promise<T> {
    let t: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new Error(`etcd did not answer (${what}) within ${this.opts.leaseTtlS} s`)), this.opts.leaseTtlS * 1000);
    });
    try {
      return await Promise.race([p, limit]);
    } finally {
      clearTimeout(t);
    }
  }

  async start(): Promise<void> {
    while (!this.stopped) {
      try {
        const lease = this.client.lease(this.opts.leaseTtlS, { autoKeepAlive: true });
        const leaseId = await this.timed(lease.grant(), "grant a lease");
        let acquired = false;
        while (!this.stopped && !lease.revoked()) {
          const r = await this.timed(
            this.client.if(this.leaderKey, "Create", "==", 0).then(this.client.put(this.leaderKey).value(this.name).lease(leaseId)).commit(),
            "campaign",
          );
          this.lastOkMs = Date.now();
          if (r.succeeded) {
            this.token = Number(r.header.revision);
            acquired = true;
            break;
          }
          await sleep(200);
        }
        if (!acquired) {
          lease.release();
          continue;
        }
        this.lease = lease;
        lease.on("lost", (err) => this.lose(`the leader lease was lost: ${err.message}`));
        await this.loadIntents();
        this.leading = true;
        this.currentLeader = this.name;
        this.opts.logger?.info({ token: this.token }, "elected leader");
        return;
      } catch (err) {
        this.opts.logger?.warn({ err: (err as Error).message }, "campaign failed; retrying");
        await sleep(500);
      }
    }
  }

  private async loadIntents(): Promise<void> {
    const all = await this.timed(this.client.getAll().prefix(`${this.prefix}intents/`).strings(), "read the power intents");
    this.mirror.clear();
    this.queued.clear();
    for (const v of Object.values(all)) {
      const i = JSON.parse(v) as OpenIntent;
      this.mirror.set(i.id, i);
    }
  }

  isLeader(): boolean {
    return this.leading;
  }

  leader(): string | undefined {
    return this.leading ? this.name : this.currentLeader;
  }

  healthy(): boolean {
    return Date.now() - this.lastOkMs < this.opts.leaseTtlS * 1000;
  }

  /** The leader key's create revision this coordinator holds (0 when it does not lead). */
  fencingToken(): number {
    return this.leading ? this.token : 0;
  }

  async fence(act: string): Promise<void> {
    if (!this.leading) throw new FencedError(act, `${this.name} is not the leader`);
    const ops = [...this.queued];
    this.queued = new Map();
    const puts = ops.map(([k, v]) => (v === null ? this.client.delete().key(k) : this.client.put(k).value(v)));
    puts.push(this.client.put(`${this.prefix}last-act`).value(JSON.stringify({ act, by: this.name, token: this.token, atMs: Date.now() })));
    let ok: boolean;
    try {
      const r = await this.timed(this.client.if(this.leaderKey, "Create", "==", this.token).then(...puts).commit(), act);
      ok = r.succeeded;
      this.lastOkMs = Date.now();
    } catch (err) {
      // Not knowing whether we still lead is not leading: the act is refused.
      for (const [k, v] of ops) if (!this.queued.has(k)) this.queued.set(k, v);
      this.lose(`etcd unreachable: ${(err as Error).message}`);
      throw new FencedError(act, (err as Error).message);
    }
    if (!ok) {
      this.lose("another coordinator holds the leader key");
      throw new FencedError(act, `${this.name} was deposed (its leader key is gone)`);
    }
  }

  private lose(reason: string): void {
    if (!this.leading) return;
    this.leading = false;
    this.token = 0;
    const lease = this.lease;
    this.lease = undefined;
    lease?.release();
    this.opts.logger?.warn({ reason }, "no longer the leader");
    for (const cb of this.lostCbs) cb(reason);
  }

  onLost(cb: (reason: string) => void): void {
    this.lostCbs.push(cb);
  }

  shareView(view: PeerView): void {
    if (this.stopped) return;
    // Under its own lease: a dead coordinator's view vanishes with it.
    if (!this.viewLease || this.viewLease.revoked()) {
      const lease = this.client.lease(this.opts.leaseTtlS, { autoKeepAlive: true });
      lease.on("lost", () => {
        if (this.viewLease === lease) this.viewLease = undefined;
      });
      this.viewLease = lease;
    }
    this.viewLease
      .put(`${this.prefix}views/${this.name}`)
      .value(JSON.stringify({ view, publishedMs: Date.now() }))
      .catch(() => {});
  }

  peerVerdict(subject: string): { health: string; coordinator: string } | undefined {
    // A view not refreshed for two lease TTLs is stale (a frozen coordinator's): not believed.
    const fresh = Date.now() - 2 * this.opts.leaseTtlS * 1000;
    let best: { health: string; coordinator: string } | undefined;
    for (const [name, p] of this.peers) {
      const h = p.view[subject];
      if (h === undefined || p.publishedMs < fresh) continue;
      // A Pi can be connected to one coordinator only; "healthy" anywhere wins over "unknown".
      if (!best || (best.health !== "healthy" && h === "healthy")) best = { health: h, coordinator: name };
    }
    return best;
  }

  /** Intent changes are queued and go out with the next fenced act (or soon after). */
  private queue(id: number, intent: OpenIntent | null): void {
    this.queued.set(`${this.prefix}intents/${String(id).padStart(16, "0")}`, intent && JSON.stringify(intent));
    if (!this.flushTimer)
      this.flushTimer = setTimeout(() => {
        this.flushTimer = undefined;
        if (this.leading && this.queued.size > 0) this.fence("intent update").catch(() => {});
      }, 0);
  }

  readonly intents: IntentStore = {
    openIntent: (pi, port, reason) => {
      // Unique across coordinators without a round trip: the fencing token orders leaders.
      const id = this.token * 10_000 + (this.nextId++ % 10_000);
      const i: OpenIntent = { id, pi, port, reason, createdMs: Date.now() };
      this.mirror.set(id, i);
      this.queue(id, i);
      return id;
    },
    closeIntent: (id) => {
      this.mirror.delete(id);
      this.queue(id, null);
    },
    openIntents: () => [...this.mirror.values()],
    markOff: (id, atMs) => {
      const i = this.mirror.get(id);
      if (!i) return;
      i.offMs = atMs;
      this.queue(id, i);
    },
  };

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.watchTimer);
    clearTimeout(this.flushTimer);
    const lease = this.lease;
    this.leading = false;
    if (lease) await lease.revoke().catch(() => {});
    if (this.viewLease) await this.viewLease.revoke().catch(() => {});
    this.client.close();
  }
}
