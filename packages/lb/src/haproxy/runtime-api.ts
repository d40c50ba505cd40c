import net from "node:net";
import { LoadBalancerError } from "../driver.js";

/**
 * A client of HAProxy's runtime API (the `stats socket`). Each command opens one connection in
 * non-interactive mode: HAProxy runs the line, writes its answer and closes — the close is the
 * only reliable end-of-answer marker, since answers have no common terminator.
 */

export type RuntimeAddress = { kind: "unix"; path: string } | { kind: "tcp"; host: string; port: number };

/** `/run/haproxy/admin.sock`, `unix@/path`, `127.0.0.1:9999`, `ipv4@127.0.0.1:9999`, `[::1]:9999`. */
export function parseRuntimeAddress(text: string): RuntimeAddress {
  const fail = (): never => {
    throw new LoadBalancerError(`loadBalancer.socket: "${text}" is neither a unix socket path nor host:port`);
  };
  let rest = text.trim();
  if (rest.startsWith("unix@")) rest = rest.slice(5);
  if (rest.startsWith("/")) return { kind: "unix", path: rest };
  rest = rest.replace(/^ipv[46]@/, "");
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):([0-9]{1,5})$/.exec(rest);
  if (!match) return fail();
  const port = Number(match[3]);
  if (port < 1 || port > 65535) return fail();
  return { kind: "tcp", host: match[1] ?? match[2], port };
}

export function formatRuntimeAddress(address: RuntimeAddress): string {
  if (address.kind === "unix") return address.path;
  return address.host.includes(":") ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

export interface RuntimeApiOptions {
  timeoutMs?: number;
  /** Longest answer accepted; a runaway `show` should not eat the coordinator's memory. */
  maxAnswerBytes?: number;
}

/**
 * HAProxy runs CLI commands one by one anyway; queueing ours per socket keeps a drain from racing a
 * sync's delete of the same server and keeps the admin socket from being flooded. Shared by every
 * client of the same address in this process.
 */
const queues = new Map<string, Promise<unknown>>();

export class RuntimeApi {
  readonly address: RuntimeAddress;
  readonly label: string;
  private readonly timeoutMs: number;
  private readonly maxAnswerBytes: number;

  constructor(socket: string, options: RuntimeApiOptions = {}) {
    this.address = parseRuntimeAddress(socket);
    this.label = formatRuntimeAddress(this.address);
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.maxAnswerBytes = options.maxAnswerBytes ?? 16 * 1024 * 1024;
  }

  /** Sends one command line and resolves with HAProxy's whole answer (raw text). */
  run(command: string): Promise<string> {
    if (/[\r\n]/.test(command)) throw new LoadBalancerError(`haproxy: refusing a command with a line break: ${JSON.stringify(command)}`, command);
    const previous = queues.get(this.label) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => this.exchange(command));
    const tail = next.catch(() => undefined);
    queues.set(this.label, tail);
    void tail.then(() => {
      if (queues.get(this.label) === tail) queues.delete(this.label);
    });
    return next;
  }

  private exchange(command: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let settled = false;
      const socket =
        this.address.kind === "unix"
          ? net.createConnection({ path: this.address.path })
          : net.createConnection({ host: this.address.host, port: this.address.port });
      const finish = (err: LoadBalancerError | null, answer?: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        if (err) reject(err);
        else resolve(answer ?? "");
      };
      const timer = setTimeout(
        () => finish(new LoadBalancerError(`haproxy at ${this.label}: "${command}" got no complete answer within ${this.timeoutMs} ms`, command, undefined, "ETIMEDOUT")),
        this.timeoutMs,
      );
      // No half-close: HAProxy answers and closes by itself in non-interactive mode.
      socket.on("connect", () => socket.write(`${command}\n`));
      socket.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > this.maxAnswerBytes) {
          finish(new LoadBalancerError(`haproxy at ${this.label}: answer to "${command}" exceeds ${this.maxAnswerBytes} bytes`, command));
          return;
        }
        chunks.push(chunk);
      });
      socket.on("end", () => finish(null, Buffer.concat(chunks).toString("utf8")));
      socket.on("close", () => finish(null, Buffer.concat(chunks).toString("utf8")));
      socket.on("error", (err: NodeJS.ErrnoException) => {
        const why = connectHint(err.code);
        finish(
          new LoadBalancerError(
            `haproxy runtime API at ${this.label}: cannot run "${command}": ${err.code ?? err.message}${why ? ` (${why})` : ""}`,
            command,
            undefined,
            err.code,
          ),
        );
      });
    });
  }
}

function connectHint(code: string | undefined): string {
  switch (code) {
    case "ENOENT":
      return "no such socket: is HAProxy running with a `stats socket` at this path?";
    case "ECONNREFUSED":
      return "nothing listens there";
    case "EACCES":
      return "permission denied on the socket: run as a member of its group, or set the socket's mode";
    default:
      return "";
  }
}

/** HAProxy's answer shown in an error: its first lines, trimmed, never the whole dump. */
export function summarizeAnswer(answer: string): string {
  const text = answer.trim();
  if (text === "") return "(empty answer)";
  const lines = text.split("\n").slice(0, 3).join(" / ");
  return lines.length > 300 ? `${lines.slice(0, 300)}…` : lines;
}
