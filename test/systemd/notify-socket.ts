import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** A datagram that reached the notify socket, with the sender's PID as the kernel vouches for it. */
export interface Datagram {
  pid: number | null;
  text: string;
  /** Host time of arrival (ms). */
  at: number;
}

export interface NotifySocket {
  /** What to put in NOTIFY_SOCKET: a path, or "@name" (abstract namespace). */
  address: string;
  got: Datagram[];
  close(): void;
}

const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), "notify-socket.py");

/**
 * systemd's side of Type=notify, played by notify-socket.py (Debian's python3: Node cannot receive
 * AF_UNIX datagrams, let alone their SCM_CREDENTIALS). Resolves once the socket is bound.
 */
export function listenNotify(address: string): Promise<NotifySocket> {
  return new Promise((resolve, reject) => {
    const child = spawn("/usr/bin/python3", [SCRIPT, address], { stdio: ["ignore", "pipe", "pipe"] });
    const got: Datagram[] = [];
    let stderr = "";
    let partial = "";
    let listening = false;
    const close = () => {
      child.kill("SIGKILL");
      if (!address.startsWith("@")) rmSync(address, { force: true });
    };
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      partial += chunk;
      const lines = partial.split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        const msg = JSON.parse(line) as { listening?: string; pid?: number | null; text?: string };
        if (msg.listening !== undefined) {
          listening = true;
          resolve({ address, got, close });
        } else {
          got.push({ pid: msg.pid ?? null, text: msg.text ?? "", at: Date.now() });
        }
      }
    });
    child.on("error", (err) => reject(new Error(`notify socket helper: ${err.message} (needs Debian's python3)`)));
    child.on("exit", (code, signal) => {
      if (!listening) reject(new Error(`notify socket helper exited (${code ?? signal}) before binding ${address}: ${stderr.trim()}`));
    });
  });
}
