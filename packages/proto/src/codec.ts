import "./numbers.js";
import { pifleet } from "../gen/pifleet.js";

export import v1 = pifleet.v1;
export type Envelope = pifleet.v1.Envelope;
export type EnvelopeInit = pifleet.v1.Envelope.$Properties;

/** Bumped only when a change is not backwards compatible; peers refuse any other. */
export const PROTOCOL_VERSION = 1;
/** Default frame limit. A Pi sample is about 100 bytes; a 96-Pi snapshot some 20 KiB. */
export const MAX_FRAME_BYTES = 256 * 1024;

export type BodyName = NonNullable<Envelope["body"]>;

/** A frame the receiver refuses; `frame` names which one, `code` is sent back in an ErrorFrame. */
export class FrameError extends Error {
  constructor(
    readonly code: "bad_frame" | "too_large" | "bad_version" | "no_body" | "unexpected" | "invalid",
    readonly frame: string,
    message: string,
  ) {
    super(`${frame}: ${message}`);
    this.name = "FrameError";
  }
}

export function encodeEnvelope(init: Omit<EnvelopeInit, "version">): Uint8Array {
  return v1.Envelope.encode({ version: PROTOCOL_VERSION, ...init }).finish();
}

/** Decodes and checks one frame before anything uses it: size, wire format, version, body. */
export function decodeEnvelope(data: Uint8Array, maxBytes = MAX_FRAME_BYTES): Envelope & { body: BodyName } {
  if (data.byteLength > maxBytes) throw new FrameError("too_large", "frame", `${data.byteLength} bytes exceeds the ${maxBytes}-byte limit`);
  let env: Envelope;
  try {
    env = v1.Envelope.decode(data);
  } catch (err) {
    throw new FrameError("bad_frame", "frame", `not a pifleet envelope (${(err as Error).message})`);
  }
  const body = env.body;
  if (env.version !== PROTOCOL_VERSION) {
    throw new FrameError("bad_version", body ?? "frame", `protocol version ${env.version}, this peer speaks ${PROTOCOL_VERSION}`);
  }
  if (!body) throw new FrameError("no_body", "frame", "envelope carries no message");
  // Decoding already guarantees every field's type; verify() adds enum range checks, and the
  // reports (the bulk of all traffic) carry no enums, so they skip it.
  const invalid = (NO_ENUMS.has(body) ? null : (v1.Envelope.verify(env) as string | null)) ?? validateBody(env, body);
  if (invalid) throw new FrameError("invalid", body, invalid);
  return env as Envelope & { body: BodyName };
}

const NO_ENUMS = new Set<BodyName>(["piReport", "piSample", "facts", "fileserverReport", "commandResult"]);

const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Longest client-supplied strings (characters). Whatever a peer sends may end up in the audit
 * log, the feed and log lines: nothing unbounded gets in. Report fields are generous — an agent
 * refused for a long error message would look dead — while an operator's reason is short.
 */
export const FIELD_LIMITS = {
  id: 64,
  reason: 200,
  token: 512,
  agentVersion: 128,
  signature: 64,
  message: 4096,
  reportText: 4096,
  interface: 64,
} as const;

/** "field: longer than N characters" when `value` is, else null. */
function tooLong(field: string, value: string | null | undefined, max: number): string | null {
  return value && value.length > max ? `${field}: longer than ${max} characters (${value.length})` : null;
}

/** Field checks protobuf cannot express. Returns the first problem, naming the field. */
function validateBody(env: Envelope, body: BodyName): string | null {
  switch (body) {
    case "hello": {
      const h = env.hello as v1.Hello;
      if (!NAME_RE.test(h.identity)) return "identity: must be an enrolled name";
      if (h.nonce.length !== 32) return "nonce: must echo the 32-byte challenge";
      if (h.signature.length > FIELD_LIMITS.signature) return `signature: longer than ${FIELD_LIMITS.signature} bytes`;
      return (
        tooLong("token", h.token, FIELD_LIMITS.token) ??
        tooLong("agentVersion", h.agentVersion, FIELD_LIMITS.agentVersion) ??
        (h.facts ? prefixed("facts", validateFacts(h.facts as v1.AgentFacts)) : null)
      );
    }
    case "facts":
      return validateFacts(env.facts as v1.AgentFacts);
    case "piSample": {
      const s = env.piSample as v1.PiSample;
      if (s.load.length > 3) return "load: at most 3 averages";
      if (s.net.length % 6 !== 0) return `net: ${s.net.length} counters is not 6 per interface`;
      if (s.net.length > 6 * MAX_INTERFACES) return `net: at most ${MAX_INTERFACES} interfaces`;
      const a = s.apache as v1.ApacheSample | null;
      if (a) {
        if (a.slots.length > 32) return "apache.slots: at most 32 states";
        if (a.error.length > MAX_ERROR) return `apache.error: longer than ${MAX_ERROR}`;
      }
      const p = s.probe as v1.HttpProbe | null;
      if (p && p.error.length > MAX_ERROR) return `probe.error: longer than ${MAX_ERROR}`;
      return null;
    }
    case "piReport": {
      const r = env.piReport as v1.PiReport;
      if (!NAME_RE.test(r.pi)) return "pi: must be a Pi name";
      if (r.net.length > MAX_INTERFACES) return `net: at most ${MAX_INTERFACES} interfaces`;
      if (r.apache && (r.apache.scoreboard ?? "").length > 4096) return "apache.scoreboard: longer than 4096";
      return (
        tooLong("apache.error", r.apache?.error, FIELD_LIMITS.reportText) ??
        tooLong("probe.error", r.probe?.error, FIELD_LIMITS.reportText) ??
        r.net.map((n, i) => tooLong(`net[${i}].interface`, n.interface, FIELD_LIMITS.interface)).find((x) => x) ??
        null
      );
    }
    case "fileserverReport": {
      const r = env.fileserverReport as v1.FileserverReport;
      if (!NAME_RE.test(r.fileserver)) return "fileserver: must be a name";
      const t = FIELD_LIMITS.reportText;
      return (
        tooLong("error", r.error, t) ??
        r.drift.map((d, i) => tooLong(`drift[${i}].kind`, d.kind, t) ?? tooLong(`drift[${i}].subject`, d.subject, t) ?? tooLong(`drift[${i}].detail`, d.detail, t)).find((x) => x) ??
        r.roots.map((x, i) => tooLong(`roots[${i}].pi`, x.pi, t) ?? tooLong(`roots[${i}].contentVersion`, x.contentVersion, t)).find((x) => x) ??
        null
      );
    }
    case "commandResult": {
      const c = env.commandResult as v1.CommandResult;
      if (!c.id) return "id: required";
      return tooLong("id", c.id, FIELD_LIMITS.id) ?? tooLong("message", c.message, FIELD_LIMITS.message);
    }
    case "operatorRequest": {
      const o = env.operatorRequest as v1.OperatorRequest;
      if (!o.id) return "id: required";
      const long = tooLong("id", o.id, FIELD_LIMITS.id) ?? tooLong("reason", o.reason, FIELD_LIMITS.reason);
      if (long) return long;
      // Checked after the length, so the message quotes at most a bounded string.
      if (!OPERATOR_ACTIONS.includes(o.action as OperatorAction)) return `action: "${o.action.slice(0, 40)}" is not one of ${OPERATOR_ACTIONS.join(", ")}`;
      if (o.pi && !NAME_RE.test(o.pi)) return "pi: must be a Pi name";
      return null;
    }
    default:
      return null;
  }
}

/** Interfaces one report may carry. */
export const MAX_INTERFACES = 64;
const MAX_ERROR = 1024;
const IFNAME_RE = /^[^\s/:]{1,15}$/;

function validateFacts(f: v1.AgentFacts): string | null {
  if (f.interfaces.length > MAX_INTERFACES) return `interfaces: at most ${MAX_INTERFACES}`;
  const bad = f.interfaces.findIndex((n) => !IFNAME_RE.test(n));
  if (bad >= 0) return `interfaces[${bad}]: ${JSON.stringify(f.interfaces[bad].slice(0, 40))} is not an interface name`;
  if (new Set(f.interfaces).size !== f.interfaces.length) return "interfaces: a name appears twice";
  for (const k of ["agentVersion", "nodeVersion", "arch"] as const) if (f[k].length > 64) return `${k}: longer than 64`;
  return null;
}

function prefixed(field: string, problem: string | null): string | null {
  return problem && `${field}.${problem}`;
}

export const OPERATOR_ACTIONS = ["cycle", "drain", "undrain", "rebuild", "release", "apply", "power-on-all"] as const;
export type OperatorAction = (typeof OPERATOR_ACTIONS)[number];

/** Lower-case state name for display and JSON (`PI_STATE_POWER_CYCLING` → `power-cycling`). */
export function piStateName(state: pifleet.v1.PiState): string {
  const name = v1.PiState[state] ?? "PI_STATE_UNKNOWN";
  return name.replace(/^PI_STATE_/, "").toLowerCase().replace(/_/g, "-");
}
