import { createHash, createHmac } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import path from "node:path";

/**
 * OpenSSH known_hosts checking for the installer's SSH connections (ssh2 accepts any host key
 * unless told otherwise). Supports plain and hashed (`|1|salt|hash`) host fields, patterns with
 * `*`, `?` and `!`, and the @revoked marker; @cert-authority lines are ignored.
 */

export type HostKeyVerdict =
  | { ok: true; how: "known" | "added" }
  | { ok: false; reason: string };

/** How known_hosts names a host: bare for port 22, `[host]:port` otherwise. */
export function hostField(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

export function keyType(blob: Buffer): string {
  if (blob.length < 4) return "unknown";
  const len = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + len).toString("latin1");
}

export function checkHostKey(file: string, host: string, port: number, blob: Buffer, acceptNew: boolean): HostKeyVerdict {
  const name = hostField(host, port);
  const text = existsSync(file) ? readFileSync(file, "utf8") : "";
  const key = blob.toString("base64");
  let hostKnown = false;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const fields = line.split(/\s+/);
    const marker = fields[0].startsWith("@") ? fields.shift() : undefined;
    if (fields.length < 3 || marker === "@cert-authority") continue;
    const [hosts, , lineKey] = fields;
    if (!hostMatches(hosts, name)) continue;
    if (marker === "@revoked") {
      if (lineKey === key) return { ok: false, reason: `the host key of ${name} is marked @revoked in ${file}` };
      continue;
    }
    hostKnown = true;
    if (lineKey === key) return { ok: true, how: "known" };
  }
  const offered = `${keyType(blob)} ${fingerprint(blob)}`;
  if (hostKnown) {
    return {
      ok: false,
      reason: `HOST KEY MISMATCH for ${name}: it offered ${offered}, which is not the key ${file} holds for it. Someone may be intercepting the connection, or the host was reinstalled (then remove its old line with: ssh-keygen -R '${name}' -f ${file})`,
    };
  }
  if (!acceptNew) {
    return {
      ok: false,
      reason: `${name} is not in ${file} (it offered ${offered}). Check the fingerprint, then add it: ssh-keyscan -p ${port} ${host} >> ${file}, or pass --accept-new-host-key`,
    };
  }
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  appendFileSync(file, `${name} ${keyType(blob)} ${key}\n`, { mode: 0o600 });
  return { ok: true, how: "added" };
}

/** As OpenSSH prints it: unpadded base64 of the key blob's SHA-256. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

function hostMatches(patterns: string, name: string): boolean {
  if (patterns.startsWith("|1|")) {
    const [, , salt, hash] = patterns.split("|");
    if (!salt || !hash) return false;
    const mac = createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest("base64");
    return mac === hash;
  }
  let matched = false;
  for (const pattern of patterns.split(",")) {
    const negated = pattern.startsWith("!");
    const body = negated ? pattern.slice(1) : pattern;
    if (globMatch(body, name)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

function globMatch(pattern: string, text: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`, "i");
  return re.test(text);
}
