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

/** Field checks protobuf cannot express. Returns the first problem, naming the field. */
function validateBody(env: Envelope, body: BodyName): string | null {
  switch (body) {
    case "hello": {
      const h = env.hello as v1.Hello;
      if (!NAME_RE.test(h.identity)) return "identity: must be an enrolled name";
      if (h.nonce.length !== 32) return "nonce: must echo the 32-byte challenge";
      return h.facts ? prefixed("facts", validateFacts(h.facts as v1.AgentFacts)) : null;
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
      return null;
    }
    case "fileserverReport": {
      const r = env.fileserverReport as v1.FileserverReport;
      if (!NAME_RE.test(r.fileserver)) return "fileserver: must be a name";
      return null;
    }
    case "commandResult":
      return env.commandResult!.id ? null : "id: required";
    case "operatorRequest": {
      const o = env.operatorRequest as v1.OperatorRequest;
      if (!o.id) return "id: required";
      if (!OPERATOR_ACTIONS.includes(o.action as OperatorAction)) return `action: "${o.action}" is not one of ${OPERATOR_ACTIONS.join(", ")}`;
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

export const OPERATOR_ACTIONS = ["cycle", "drain", "undrain", "rebuild", "release", "apply"] as const;
export type OperatorAction = (typeof OPERATOR_ACTIONS)[number];

/** Lower-case state name for display and JSON (`PI_STATE_POWER_CYCLING` → `power-cycling`). */
export function piStateName(state: pifleet.v1.PiState): string {
  const name = v1.PiState[state] ?? "PI_STATE_UNKNOWN";
  return name.replace(/^PI_STATE_/, "").toLowerCase().replace(/_/g, "-");
}
