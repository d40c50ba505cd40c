import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from "node:crypto";
import { pifleet } from "../gen/pifleet.js";

/**
 * Agents authenticate with an Ed25519 key issued at enrollment. The coordinator keeps only the
 * public key, so its database holds nothing that lets anyone act as an agent; the agent signs
 * the coordinator's per-connection nonce, so a captured hello is useless on another connection.
 */
export function helloSigningPayload(role: pifleet.v1.Role, identity: string, nonce: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(`pifleet-hello-v1\0${role}\0${identity}\0`), Buffer.from(nonce)]);
}

export interface AgentCredential {
  identity: string;
  /** PKCS#8 DER, base64url: what the agent keeps (the "secret"). */
  secret: string;
  /** SPKI DER, base64url: what the coordinator keeps. */
  publicKey: string;
}

export function generateAgentCredential(identity: string): AgentCredential {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return {
    identity,
    secret: privateKey.export({ type: "pkcs8", format: "der" }).toString("base64url"),
    publicKey: publicKey.export({ type: "spki", format: "der" }).toString("base64url"),
  };
}

export function agentKeyFromSecret(secret: string): KeyObject {
  return createPrivateKey({ key: Buffer.from(secret.trim(), "base64url"), format: "der", type: "pkcs8" });
}

export function publicKeyOfSecret(secret: string): string {
  return createPublicKey(agentKeyFromSecret(secret)).export({ type: "spki", format: "der" }).toString("base64url");
}

export function signHello(key: KeyObject, role: pifleet.v1.Role, identity: string, nonce: Uint8Array): Buffer {
  return sign(null, helloSigningPayload(role, identity, nonce), key);
}

/** Parses a stored public key once; a coordinator keeps these to verify reconnect storms cheaply. */
export function agentPublicKey(publicKey: string): KeyObject {
  return createPublicKey({ key: Buffer.from(publicKey, "base64url"), format: "der", type: "spki" });
}

export function verifyHello(publicKey: string | KeyObject, role: pifleet.v1.Role, identity: string, nonce: Uint8Array, signature: Uint8Array): boolean {
  try {
    const key = typeof publicKey === "string" ? agentPublicKey(publicKey) : publicKey;
    return verify(null, helloSigningPayload(role, identity, nonce), key, signature);
  } catch {
    return false;
  }
}

export function newNonce(): Buffer {
  return randomBytes(32);
}

/** Watcher and operator tokens: random, stored as SHA-256 (they are 256-bit, so no slow hash is needed). */
export function newToken(): string {
  return randomBytes(32).toString("base64url");
}

export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}
