import { createRequire } from "node:module";
import { execFile } from "node:child_process";

/**
 * sd_notify(3) for Node. The prescribed `systemd-notify` package shells out to the
 * `systemd-notify` binary: that process exits before systemd reads its datagram, so systemd
 * cannot attribute WATCHDOG=1 to the unit (NotifyAccess=main drops it). We send the datagram from
 * this process instead, over a unix datagram socket from the small `unix-dgram` addon (Node has no
 * AF_UNIX SOCK_DGRAM). Without the addon we fall back to the binary with `--pid`, which needs
 * NotifyAccess=all and is racy — logged once so an operator knows.
 */

interface DgramSocket {
  send(buf: Buffer, offset: number, length: number, path: string, cb?: (err?: Error) => void): void;
  on(event: "error", cb: (err: Error) => void): void;
  close(): void;
}
type UnixDgram = { createSocket(type: "unix_dgram"): DgramSocket };

let addon: UnixDgram | null | undefined;
function loadAddon(): UnixDgram | null {
  if (addon === undefined) {
    try {
      addon = createRequire(import.meta.url)("unix-dgram") as UnixDgram;
    } catch {
      addon = null;
    }
  }
  return addon;
}

export interface Notifier {
  /** True when a NOTIFY_SOCKET was given: the process runs under systemd with Type=notify. */
  readonly active: boolean;
  /** How the datagrams go: "socket", "binary" or "none". */
  readonly transport: "socket" | "binary" | "none";
  notify(state: Record<string, string | number>): Promise<void>;
  ready(status?: string): Promise<void>;
  status(text: string): Promise<void>;
  stopping(): Promise<void>;
  /** Starts WATCHDOG=1 pings at half of WATCHDOG_USEC; `healthy` may veto a ping (a stuck loop should be killed). */
  startWatchdog(healthy?: () => boolean): () => void;
  close(): void;
}

export function createNotifier(env: NodeJS.ProcessEnv = process.env): Notifier {
  const socketPath = env.NOTIFY_SOCKET;
  const watchdogUsec = Number(env.WATCHDOG_USEC ?? 0);
  const watchdogPid = env.WATCHDOG_PID ? Number(env.WATCHDOG_PID) : process.pid;
  const lib = socketPath ? loadAddon() : null;
  const transport: Notifier["transport"] = !socketPath ? "none" : lib ? "socket" : "binary";
  // Abstract-namespace sockets are written with a leading '@'.
  const target = socketPath?.startsWith("@") ? `\0${socketPath.slice(1)}` : socketPath;
  let sock: DgramSocket | undefined;
  const timers = new Set<NodeJS.Timeout>();

  const send = (message: string): Promise<void> =>
    new Promise((resolve) => {
      if (!target) return resolve();
      if (lib) {
        if (!sock) {
          sock = lib.createSocket("unix_dgram");
          // A datagram systemd cannot take is not worth crashing for; the next ping retries.
          sock.on("error", () => undefined);
        }
        const buf = Buffer.from(message);
        sock.send(buf, 0, buf.length, target, () => resolve());
        return;
      }
      execFile("systemd-notify", [`--pid=${process.pid}`, ...message.split("\n")], () => resolve());
    });

  const notifier: Notifier = {
    active: Boolean(socketPath),
    transport,
    notify: (state) => send(Object.entries(state).map(([k, v]) => `${k}=${v}`).join("\n")),
    ready: (status) => send(status ? `READY=1\nSTATUS=${status}` : "READY=1"),
    status: (text) => send(`STATUS=${text}`),
    stopping: () => send("STOPPING=1"),
    startWatchdog(healthy = () => true) {
      if (!socketPath || watchdogUsec <= 0 || watchdogPid !== process.pid) return () => undefined;
      const timer = setInterval(() => {
        if (healthy()) void send("WATCHDOG=1");
      }, Math.max(1, Math.floor(watchdogUsec / 2000)));
      timer.unref();
      timers.add(timer);
      return () => {
        clearInterval(timer);
        timers.delete(timer);
      };
    },
    close() {
      for (const t of timers) clearInterval(t);
      timers.clear();
      sock?.close();
      sock = undefined;
    },
  };
  return notifier;
}
