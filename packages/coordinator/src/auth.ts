import { timingSafeEqual, type KeyObject } from "node:crypto";
import { agentPublicKey, hashToken, v1, verifyHello } from "@pifleet/proto";
import type { Store } from "./store/types.js";

export type Endpoint = "agent" | "feed";

export interface Principal {
  identity: string;
  role: v1.Role;
}

export interface Refusal {
  /** ErrorFrame.code */
  code: "unauthenticated" | "forbidden";
  /** ErrorFrame.reason */
  reason: string;
  message: string;
}

export type AuthResult = { ok: true; principal: Principal } | ({ ok: false } & Refusal);

const AGENT_ROLES: Record<string, v1.Role> = { pi: v1.Role.ROLE_PI, fileserver: v1.Role.ROLE_FILESERVER };

export function roleName(role: v1.Role): string {
  return (v1.Role[role] ?? "ROLE_UNSPECIFIED").replace(/^ROLE_/, "").toLowerCase();
}

/**
 * Checks a Hello against this connection's challenge and the enrolled credentials. The order
 * matters: the nonce first (a replayed hello is refused as such), then proof of the secret,
 * and only then facts about the identity (revoked, role, fleet membership), so a caller without
 * the secret learns nothing about an enrolled name beyond that it exists.
 */
export class Authenticator {
  /** Parsed public keys by their stored text: a fleet reconnecting at once parses each key once. */
  private readonly keys = new Map<string, KeyObject>();

  constructor(
    private readonly store: Store,
    /** Who may connect as an agent: planned Pis and the fleet's fileserver. */
    private readonly allowed: { pis: ReadonlySet<string>; fileserver: string | undefined },
  ) {}

  check(hello: v1.Hello, challenge: Uint8Array, endpoint: Endpoint): AuthResult {
    const nonce = hello.nonce;
    if (nonce.length !== challenge.length || !timingSafeEqual(nonce, challenge)) {
      return refuse("unauthenticated", "replayed_hello", "the hello does not answer this connection's challenge (replayed or stale)");
    }
    return endpoint === "agent" ? this.agent(hello) : this.feed(hello);
  }

  private agent(hello: v1.Hello): AuthResult {
    const { identity, role } = hello;
    if (role !== v1.Role.ROLE_PI && role !== v1.Role.ROLE_FILESERVER) {
      return refuse("forbidden", "wrong_role", `role ${roleName(role)} cannot connect to /agent (use /feed)`);
    }
    const agent = this.store.agent(identity);
    if (!agent) return refuse("unauthenticated", "unknown_identity", `no agent named "${identity}" is enrolled`);
    if (hello.signature.length === 0 || !verifyHello(this.key(agent.publicKey), role, identity, hello.nonce, hello.signature)) {
      return refuse("unauthenticated", "bad_signature", `the hello for "${identity}" is not signed with its enrolled key`);
    }
    if (agent.revokedMs !== null) return refuse("unauthenticated", "revoked", `"${identity}" was revoked`);
    if (AGENT_ROLES[agent.role] !== role) {
      return refuse("forbidden", "wrong_role", `"${identity}" is enrolled as ${agent.role}, not ${roleName(role)}`);
    }
    if (role === v1.Role.ROLE_PI && !this.allowed.pis.has(identity)) {
      return refuse("forbidden", "not_in_fleet", `"${identity}" is not a Pi of this fleet`);
    }
    if (role === v1.Role.ROLE_FILESERVER && identity !== this.allowed.fileserver) {
      return refuse("forbidden", "not_in_fleet", `"${identity}" is not this fleet's fileserver (${this.allowed.fileserver ?? "none"})`);
    }
    return { ok: true, principal: { identity, role } };
  }

  private key(publicKey: string): KeyObject | string {
    let k = this.keys.get(publicKey);
    if (!k) {
      try {
        k = agentPublicKey(publicKey);
      } catch {
        return publicKey; // unparsable: verifyHello says no
      }
      this.keys.set(publicKey, k);
    }
    return k;
  }

  private feed(hello: v1.Hello): AuthResult {
    const { identity, role } = hello;
    if (role !== v1.Role.ROLE_WATCHER && role !== v1.Role.ROLE_OPERATOR) {
      return refuse("forbidden", "wrong_role", `role ${roleName(role)} cannot connect to /feed (use /agent)`);
    }
    const token = this.store.token(identity);
    if (!token) return refuse("unauthenticated", "unknown_identity", `no token named "${identity}" exists`);
    const given = Buffer.from(hashToken(hello.token), "hex");
    const stored = Buffer.from(token.hash, "hex");
    if (!hello.token || given.length !== stored.length || !timingSafeEqual(given, stored)) {
      return refuse("unauthenticated", "bad_token", `wrong token for "${identity}"`);
    }
    if (token.revokedMs !== null) return refuse("unauthenticated", "revoked", `token "${identity}" was revoked`);
    if (role === v1.Role.ROLE_OPERATOR && token.role !== "operator") {
      return refuse("forbidden", "wrong_role", `token "${identity}" is a watcher token; it cannot operate`);
    }
    return { ok: true, principal: { identity, role } };
  }
}

function refuse(code: Refusal["code"], reason: string, message: string): AuthResult {
  return { ok: false, code, reason, message };
}
