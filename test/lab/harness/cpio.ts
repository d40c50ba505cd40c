/** A file to put in an initramfs: text or bytes, with its permission bits. */
export interface CpioFile {
  data: string | Buffer;
  mode?: number;
}

/**
 * An uncompressed newc cpio archive. The kernel unpacks every archive concatenated to an initrd
 * in order, so a small archive appended to a cached base adds a test's own files without
 * rebuilding the base. Parent folders are emitted before their files: the kernel does not create
 * them.
 */
export function newcArchive(files: Record<string, CpioFile | string>): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  const dirs = new Set<string>();
  const entry = (name: string, mode: number, data: Buffer) => {
    const nameBytes = Buffer.from(`${name}\0`);
    const fields = [ino++, mode, 0, 0, 1, 0, data.length, 0, 0, 0, 0, nameBytes.length, 0];
    const header = Buffer.from(`070701${fields.map((f) => f.toString(16).padStart(8, "0")).join("")}`);
    parts.push(header, nameBytes, pad(header.length + nameBytes.length), data, pad(data.length));
  };
  for (const [rawName, spec] of Object.entries(files)) {
    const name = rawName.replace(/^\/+/, "");
    const segments = name.split("/");
    for (let i = 1; i < segments.length; i++) {
      const dir = segments.slice(0, i).join("/");
      if (!dirs.has(dir)) {
        dirs.add(dir);
        entry(dir, 0o040755, Buffer.alloc(0));
      }
    }
    const file = typeof spec === "string" ? { data: spec } : spec;
    entry(name, 0o100000 | (file.mode ?? 0o644), Buffer.isBuffer(file.data) ? file.data : Buffer.from(file.data));
  }
  entry("TRAILER!!!", 0, Buffer.alloc(0));
  return Buffer.concat(parts);
}

function pad(length: number): Buffer {
  return Buffer.alloc((4 - (length % 4)) % 4);
}
