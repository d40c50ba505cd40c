/** One line of the live export table. */
export interface LiveExport {
  path: string;
  /** A host, a network (10.46.189.0/30), a wildcard, or `<world>` for `*`. */
  client: string;
  options: string[];
}

/**
 * Parses `exportfs -v`. nfs-utils prints `%-14s\t%s(opts)` when the path is at most 14
 * characters, else the path alone then `\t\t%s(opts)` on the next line — and the seed's
 * `/export/10.46.189.2` is 19, so both forms occur on one server.
 */
export function parseExportfs(text: string): LiveExport[] {
  const out: LiveExport[] = [];
  let pending: string | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.replace(/\r$/, "");
    if (line.trim() === "") continue;
    let path: string;
    let rest: string;
    if (/^\s/.test(line)) {
      if (pending === undefined) throw new Error(`exportfs -v: client line without a path: "${line.trim()}"`);
      path = pending;
      rest = line.trim();
    } else {
      const tab = line.indexOf("\t");
      if (tab < 0) {
        pending = line.trimEnd();
        continue;
      }
      path = line.slice(0, tab).trimEnd();
      rest = line.slice(tab).trim();
    }
    pending = undefined;
    const m = /^(.*?)(?:\(([^()]*)\))?$/.exec(rest);
    if (!m || m[1] === "") throw new Error(`exportfs -v: cannot read "${rest}" for ${path}`);
    out.push({ path, client: m[1], options: m[2] ? m[2].split(",") : [] });
  }
  if (pending !== undefined) throw new Error(`exportfs -v: ${pending} has no client line`);
  return out;
}

/** `<world>`, `*`, a wildcard or a network: anything wider than one host. */
export function isWideClient(client: string): boolean {
  return client === "<world>" || /[*?[\]/@]/.test(client);
}
