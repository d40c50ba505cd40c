import { createRequire } from "node:module";
import path from "node:path";
import { Worker } from "node:worker_threads";

/** One queued write: an event row (positional) or a Pi state row (named). */
export type WriteOp = { e: unknown[] } | { s: Record<string, unknown> };

// Runs in the worker thread, with its own connection to the same database file.
const WORKER = `
const { workerData, parentPort } = require("node:worker_threads");
const Database = require(workerData.driver);
const db = new Database(workerData.file);
db.pragma("busy_timeout = 10000");
db.pragma("synchronous = NORMAL");
const insertEvent = db.prepare(workerData.insertEvent);
const saveState = db.prepare(workerData.saveState);
const write = db.transaction((ops) => {
  for (const op of ops) {
    if (op.e) insertEvent.run(...op.e);
    else {
      const r = op.s;
      if (r.last_report) r.last_report = Buffer.from(r.last_report.buffer, r.last_report.byteOffset, r.last_report.byteLength);
      saveState.run(r);
    }
  }
});
const done = new Int32Array(workerData.done);
const checkpoint = setInterval(() => {
  try { db.pragma("wal_checkpoint(PASSIVE)"); } catch {}
}, workerData.checkpointMs);
parentPort.on("message", (ops) => {
  if (ops === "stop") {
    clearInterval(checkpoint);
    db.close();
    parentPort.close();
    return;
  }
  try {
    write(ops);
  } catch (err) {
    parentPort.postMessage(String(err && err.message || err));
  }
  Atomics.add(done, 0, 1);
  Atomics.notify(done, 0);
});
`;

/**
 * Writes events and Pi states on a worker thread. SQLite is synchronous: on the event loop, a
 * write that meets a busy disk (the kernel throttling dirty pages, a checkpoint's fsync) would
 * stall every report behind it for as long as the disk takes. Here the loop only queues; the
 * worker commits each turn's writes in one transaction and runs the checkpoints. `drain()`
 * blocks until all queued writes are committed: reads and power intents call it first, so
 * callers still read their own writes and an intent is never written before what preceded it.
 */
export class WriteBehind {
  private queue: WriteOp[] = [];
  private posted = 0;
  private scheduled = false;
  private readonly done = new Int32Array(new SharedArrayBuffer(4));
  private worker: Worker | undefined;

  constructor(
    private readonly file: string,
    private readonly sql: { insertEvent: string; saveState: string },
    private readonly onError: (message: string) => void,
    private readonly checkpointMs = 2000,
  ) {}

  push(op: WriteOp): void {
    this.queue.push(op);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.post());
  }

  /** Blocks until every write queued so far is committed. */
  drain(timeoutMs = 60_000): void {
    this.post();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const written = Atomics.load(this.done, 0);
      if (written >= this.posted) return;
      const left = deadline - Date.now();
      if (left <= 0 || Atomics.wait(this.done, 0, written, left) === "timed-out") {
        throw new Error(`${this.file}: database writer did not finish within ${timeoutMs} ms`);
      }
    }
  }

  close(): void {
    if (!this.worker) return;
    this.drain();
    this.worker.postMessage("stop");
    this.worker = undefined;
  }

  private post(): void {
    this.scheduled = false;
    if (this.queue.length === 0) return;
    const ops = this.queue;
    this.queue = [];
    this.start().postMessage(ops);
    this.posted++;
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const driver = createRequire(import.meta.url).resolve("better-sqlite3");
    const w = new Worker(WORKER, {
      eval: true,
      workerData: { file: path.resolve(this.file), driver, done: this.done.buffer, checkpointMs: this.checkpointMs, ...this.sql },
    });
    w.unref();
    w.on("message", (m: string) => this.onError(m));
    w.on("error", (err) => this.onError(err.message));
    this.worker = w;
    return w;
  }
}
