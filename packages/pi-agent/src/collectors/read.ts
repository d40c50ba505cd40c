import { open, openSync, read, readSync, close } from "node:fs";

export interface KernelFileOptions {
  /** Bytes of buffer to start with (it grows to fit the file unless `prefix`). */
  initialBytes?: number;
  /**
   * Read on the event loop. For procfs only: its files are generated from kernel memory, never
   * wait on a disk or the NFS root, and take microseconds to read — less than the trip through
   * libuv's thread pool and back (two thread wake-ups, a promise) that an asynchronous read costs.
   * sysfs files stay asynchronous: some sensor drivers take milliseconds to answer.
   */
  sync?: boolean;
  /** Only the first `initialBytes` are wanted (/proc/stat: the aggregate line comes first). */
  prefix?: boolean;
}

/**
 * One small kernel file (procfs, sysfs) read again and again. The file stays open and is read
 * from offset 0 each time, which makes the kernel generate it afresh: one trip to the thread pool
 * per report instead of four (open, read, read to EOF, close) and no garbage, which matters at one
 * report a second on a Pi. The buffer grows when a file outgrows it (a Pi gaining interfaces); a
 * read error closes the file so the next read opens it again (a thermal zone that came back).
 * A read past its deadline is abandoned: its answer is ignored.
 */
export class KernelFile {
  private buf: Buffer;
  private fd: number | undefined;
  private busy = false;

  private readonly sync: boolean;
  private readonly prefix: boolean;

  constructor(
    readonly path: string,
    opts: KernelFileOptions | number = {},
  ) {
    const o = typeof opts === "number" ? { initialBytes: opts } : opts;
    this.buf = Buffer.allocUnsafe(o.initialBytes ?? 4096);
    this.sync = o.sync ?? false;
    this.prefix = o.prefix ?? false;
  }

  async read(signal: AbortSignal): Promise<string> {
    signal.throwIfAborted();
    if (this.sync) {
      try {
        return this.readSyncOnce();
      } catch (err) {
        this.close();
        throw err;
      }
    }
    // The buffer is shared between reads; a read still running from a missed deadline owns it.
    if (this.busy) throw new Error(`${this.path}: previous read still pending`);
    this.busy = true;
    try {
      const text = await this.readOnce(signal);
      signal.throwIfAborted();
      return text;
    } catch (err) {
      this.close();
      throw err;
    } finally {
      this.busy = false;
    }
  }

  close(): void {
    if (this.fd !== undefined) close(this.fd, () => undefined);
    this.fd = undefined;
  }

  private readSyncOnce(): string {
    this.fd ??= openSync(this.path, "r");
    for (;;) {
      const n = readSync(this.fd, this.buf, 0, this.buf.length, 0);
      if (n < this.buf.length || this.prefix) return this.buf.toString("utf8", 0, n);
      this.buf = Buffer.allocUnsafe(this.buf.length * 2);
    }
  }

  private async readOnce(signal: AbortSignal): Promise<string> {
    this.fd ??= await new Promise<number>((resolve, reject) => open(this.path, "r", (err, fd) => (err ? reject(err) : resolve(fd))));
    for (;;) {
      const n = await new Promise<number>((resolve, reject) =>
        read(this.fd!, this.buf, 0, this.buf.length, 0, (err, bytes) => (err ? reject(err) : resolve(bytes))),
      );
      if (n < this.buf.length || this.prefix) return this.buf.toString("utf8", 0, n);
      // Filled the buffer: the file may be longer. Grow and read it again from the start.
      signal.throwIfAborted();
      this.buf = Buffer.allocUnsafe(this.buf.length * 2);
    }
  }
}

/** A field of the kernel's text that must be a finite number; names the file and field when not. */
export function num(text: string | undefined, file: string, field: string): number {
  const n = Number(text);
  if (text === undefined || text === "" || !Number.isFinite(n)) throw new Error(`${file}: ${field} is not a number (${JSON.stringify(text ?? null)})`);
  return n;
}
