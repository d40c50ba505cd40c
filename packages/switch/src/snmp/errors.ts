/**
 * What went wrong talking to a switch, in words an operator can act on. Every message names the
 * switch and says what is likely at fault; none contains a community or key.
 */
export type SnmpErrorCode =
  /** No answer at all (after retries). */
  | "timeout"
  /** The agent answers, but not to our community (v2c agents drop unknown communities silently). */
  | "community"
  /** SNMPv3 report usmStatsWrongDigests: auth key or auth protocol wrong. */
  | "auth"
  /** SNMPv3 report usmStatsDecryptionErrors, or silence after successful discovery: priv key wrong. */
  | "decrypt"
  | "unknown-user"
  | "security-level"
  /** The request was understood and refused: read-only community/user, object not writable. */
  | "access"
  /** The agent rejected a value (wrongValue, inconsistentValue, noCreation …). */
  | "rejected"
  /** The object does not exist on this switch (noSuchObject / noSuchInstance). */
  | "missing"
  /** A set was accepted but reading it back shows something else. */
  | "verify"
  | "protocol";

export class SnmpError extends Error {
  override name = "SnmpError";
  constructor(
    readonly code: SnmpErrorCode,
    message: string,
    /** The switch, as `name (host:port)`. */
    readonly target: string,
    /** How many requests were sent for the failed operation (retries included). */
    readonly attempts = 1,
  ) {
    super(message);
  }
}

/** Removes each secret value from a text (defence in depth: messages are built without them). */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s.length >= 3) out = out.split(s).join("[redacted]");
  return out;
}
