import { open, read, close } from "node:fs";

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

  constructor(
    readonly path: string,
    initialBytes = 4096,
  ) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  async read(signal: AbortSignal): Promise<string> {
    signal.throwIfAborted();
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

  private async readOnce(signal: AbortSignal): Promise<string> {
    this.fd ??= await new Promise<number>((resolve, reject) => open(this.path, "r", (err, fd) => (err ? reject(err) : resolve(fd))));
    for (;;) {
      const n = await new Promise<number>((resolve, reject) =>
        read(this.fd!, this.buf, 0, this.buf.length, 0, (err, bytes) => (err ? reject(err) : resolve(bytes))),
      );
      if (n < this.buf.length) return this.buf.toString("utf8", 0, n);
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
