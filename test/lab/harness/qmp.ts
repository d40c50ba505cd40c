import net from "node:net";

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

/**
 * A client of QEMU's machine protocol (QMP) on the VM's unix socket: how the lab pauses,
 * resets (power-cycles) and quits a VM. Events (e.g. SHUTDOWN, RESET) are kept for inspection.
 */
export class QmpClient {
  readonly events: { event: string; data?: unknown }[] = [];
  /** Called for every event as it arrives (after it is kept in {@link events}). */
  onEvent?: (event: string, data?: unknown) => void;
  private buffer = "";
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private greeted!: Promise<void>;

  private constructor(private readonly socket: net.Socket) {}

  static async connect(socketPath: string, timeoutMs = 10_000): Promise<QmpClient> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const socket = await new Promise<net.Socket>((resolve, reject) => {
          const s = net.createConnection(socketPath);
          s.once("connect", () => resolve(s));
          s.once("error", reject);
        });
        const client = new QmpClient(socket);
        client.listen();
        await client.greeted;
        await client.execute("qmp_capabilities");
        return client;
      } catch (e) {
        // QEMU creates the socket a moment after it starts.
        if (Date.now() > deadline) throw new Error(`QMP: cannot connect to ${socketPath}: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  private listen(): void {
    let greet!: () => void;
    let fail!: (e: Error) => void;
    this.greeted = new Promise((resolve, reject) => {
      greet = resolve;
      fail = reject;
    });
    this.socket.setEncoding("utf8");
    this.socket.on("data", (chunk: string) => {
      this.buffer += chunk;
      let nl: number;
      while ((nl = this.buffer.indexOf("\n")) >= 0) {
        const line = this.buffer.slice(0, nl).trim();
        this.buffer = this.buffer.slice(nl + 1);
        if (line) this.onMessage(JSON.parse(line) as Record<string, unknown>, greet);
      }
    });
    const closed = (err?: Error) => {
      const error = err ?? new Error("QMP connection closed");
      fail(error);
      for (const p of this.pending.values()) p.reject(error);
      this.pending.clear();
    };
    this.socket.on("error", closed);
    this.socket.on("close", () => closed());
  }

  private onMessage(msg: Record<string, unknown>, greet: () => void): void {
    if ("QMP" in msg) return greet();
    if (typeof msg.event === "string") {
      this.events.push({ event: msg.event, data: msg.data });
      this.onEvent?.(msg.event, msg.data);
      return;
    }
    const id = String(msg.id);
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if ("error" in msg) {
      const err = msg.error as { class?: string; desc?: string };
      p.reject(new Error(`QMP ${err.class ?? "error"}: ${err.desc ?? JSON.stringify(err)}`));
    } else p.resolve(msg.return);
  }

  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    const id = String(this.nextId++);
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.socket.write(`${JSON.stringify({ execute: command, arguments: args, id })}\n`);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
