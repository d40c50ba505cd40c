import { inspect } from "node:util";

/**
 * A credential that cannot leak by accident: JSON, string conversion and util.inspect (hence
 * pino and console) all print `[redacted]`; only `reveal()` gives the value, and only the code
 * that opens an SNMP session calls it.
 */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toJSON(): string {
    return "[redacted]";
  }
  toString(): string {
    return "[redacted]";
  }
  [inspect.custom](): string {
    return "[redacted]";
  }
}

export type AuthProtocol = "md5" | "sha" | "sha224" | "sha256" | "sha384" | "sha512";
export type PrivProtocol = "des" | "aes" | "aes256b" | "aes256r";

export interface SnmpV2cCredentials {
  version: "2c";
  community: Secret;
}

export interface SnmpV3Credentials {
  version: "3";
  user: string;
  authProtocol: AuthProtocol;
  authKey: Secret;
  privProtocol: PrivProtocol;
  privKey: Secret;
}

export type SnmpCredentials = SnmpV2cCredentials | SnmpV3Credentials;

export function v2c(community: string): SnmpV2cCredentials {
  return { version: "2c", community: new Secret(community) };
}

export function v3(user: string, authKey: string, privKey: string, authProtocol: AuthProtocol = "sha", privProtocol: PrivProtocol = "aes"): SnmpV3Credentials {
  return { version: "3", user, authProtocol, authKey: new Secret(authKey), privProtocol, privKey: new Secret(privKey) };
}

/** Every secret value in a set of credentials: errors are scrubbed of each before they leave. */
export function secretValues(...creds: Array<SnmpCredentials | undefined>): string[] {
  const out: string[] = [];
  for (const c of creds) {
    if (!c) continue;
    if (c.version === "2c") out.push(c.community.reveal());
    else out.push(c.authKey.reveal(), c.privKey.reveal());
  }
  return out.filter((s) => s.length > 0);
}

export function describeCredentials(c: SnmpCredentials): string {
  return c.version === "2c" ? "SNMPv2c" : `SNMPv3 user "${c.user}" (authPriv, ${c.authProtocol}/${c.privProtocol})`;
}
