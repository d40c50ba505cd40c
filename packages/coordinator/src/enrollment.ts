import { generateAgentCredential, hashToken, newToken } from "@pifleet/proto";
import type { AgentRole, Store, TokenRole } from "./store/types.js";

const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export class EnrollmentError extends Error {
  override name = "EnrollmentError";
}

function checkName(name: string): void {
  if (!NAME_RE.test(name)) throw new EnrollmentError(`name "${name}": must be a lower-case hostname label (a-z, 0-9, '-')`);
}

/**
 * Issues an agent's key pair: the store keeps the public key, the caller gets the secret (once;
 * it is not kept anywhere). An already enrolled, unrevoked agent needs `rotate` to get a new key,
 * because its running agent is locked out the moment the key changes.
 */
export function enrollAgent(store: Store, identity: string, role: AgentRole, opts: { rotate?: boolean } = {}): { secret: string; rotated: boolean } {
  checkName(identity);
  const existing = store.agent(identity);
  if (existing && existing.revokedMs === null && !opts.rotate) {
    throw new EnrollmentError(`"${identity}" is already enrolled (as ${existing.role}); --rotate issues a new key and locks out the old one`);
  }
  const cred = generateAgentCredential(identity);
  store.enrollAgent({ identity, role, publicKey: cred.publicKey });
  return { secret: cred.secret, rotated: Boolean(existing) };
}

/** A watcher or operator token, `NAME.RANDOM`: the name says who connects, the store keeps only the hash. */
export function createToken(store: Store, name: string, role: TokenRole): string {
  checkName(name);
  const token = `${name}.${newToken()}`;
  store.createToken({ name, role, hash: hashToken(token) });
  return token;
}

/** The name part of a token made by createToken. */
export function tokenName(token: string): string {
  const dot = token.indexOf(".");
  const name = dot > 0 ? token.slice(0, dot) : "";
  if (!NAME_RE.test(name)) throw new EnrollmentError("token: not a pifleet token (expected NAME.SECRET as printed by `pifleet token create`)");
  return name;
}
