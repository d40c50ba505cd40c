import { execFile } from "node:child_process";
import { fstatSync, writeSync } from "node:fs";
import { createRequire } from "node:module";
import { createLogger, type Logger } from "./log.js";

/**
 * sd_notify(3) for Node. systemd takes READY=1 and WATCHDOG=1 only from the unit's main PID
 * (pifleet's units say NotifyAccess=main), so the datagram must leave from this very process: a
 * `systemd-notify` child exits before systemd reads its credentials and is dropped. Node has no
 * AF_UNIX datagram sockets, but it can write to one it inherits: the units start every daemon
 * through systemd/notify-exec.pl, which connects a datagram socket to $NOTIFY_SOCKET and execs
 * node (same PID) with PIFLEET_NOTIFY_FD naming it. write(2) on a connected datagram socket sends
 * one datagram with the writer's credentials, so each writeSync below is a notification from the
 * main PID — no native addon, any CPU, any Node.
 *
 * Synchronous on purpose: the socket is non-blocking (the wrapper sets O_NONBLOCK), so a write
 * never waits, and it needs no thread-pool thread — on a Pi those can all be stuck on a dead NFS
 * root, and the watchdog must keep pinging while the agent reports that.
 *
 * With NOTIFY_SOCKET but no usable descriptor (a daemon started without the wrapper) it says so
 * once and falls back: to the `unix-dgram` addon where it is installed (the workspace; no bundle
 * ships it), else to the `systemd-notify` binary, which systemd accepts only under
 * NotifyAccess=all.
 */

/** Where fallbacks and send failures are reported. */
export type NotifyLog = Pick<Logger, "warn" | "info">;

interface DgramSocket {
  send(buf: Buffer, offset: number, length: number, path: string, cb?: (err?: Error) => void): void;
  on(event: "error", cb: (err: Error) => void): void;
  close(): void;
}
type UnixDgram = { createSocket(type: "unix_dgram"): DgramSocket };

/** The environment variable notify-exec.pl sets. */
export const NOTIFY_FD_ENV = "PIFLEET_NOTIFY_FD";

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
  /**
   * How the datagrams go: "fd" (the socket notify-exec.pl connected), "addon" (unix-dgram),
   * "binary" (systemd-notify) or "none" (no NOTIFY_SOCKET).
   */
  readonly transport: "fd" | "addon" | "binary" | "none";
  notify(state: Record<string, string | number>): Promise<void>;
  ready(status?: string): Promise<void>;
  status(text: string): Promise<void>;
  stopping(): Promise<void>;
  /** Starts WATCHDOG=1 pings at half of WATCHDOG_USEC; `healthy` may veto a ping (a stuck loop should be killed). */
  startWatchdog(healthy?: () => boolean): () => void;
  close(): void;
}

/** The inherited descriptor, or why it cannot be used. */
function inheritedSocket(value: string | undefined): { fd: number } | { problem: string } {
  if (value === undefined || value === "") return { problem: `${NOTIFY_FD_ENV} is not set: the unit does not start this daemon through notify-exec.pl` };
  // 0-2 are stdio, which under systemd may well be sockets too (journald's stream).
  if (!/^\d+$/.test(value) || Number(value) < 3) return { problem: `${NOTIFY_FD_ENV}=${value} is not a descriptor number of 3 or more` };
  const fd = Number(value);
  try {
    if (!fstatSync(fd).isSocket()) return { problem: `${NOTIFY_FD_ENV}=${value} is open but not a socket` };
  } catch (err) {
    return { problem: `${NOTIFY_FD_ENV}=${value} is not open (${(err as NodeJS.ErrnoException).code ?? String(err)})` };
  }
  return { fd };
}

export function createNotifier(env: NodeJS.ProcessEnv = process.env, log?: NotifyLog): Notifier {
  const socketPath = env.NOTIFY_SOCKET || undefined;
  const watchdogUsec = Number(env.WATCHDOG_USEC ?? 0);
  const watchdogPid = env.WATCHDOG_PID ? Number(env.WATCHDOG_PID) : process.pid;
  let logger = log;
  const say = (): NotifyLog => (logger ??= createLogger("sd-notify"));

  let fd: number | undefined;
  let lib: UnixDgram | null = null;
  let transport: Notifier["transport"] = "none";
  if (socketPath) {
    const inherited = inheritedSocket(env[NOTIFY_FD_ENV]);
    if ("fd" in inherited) {
      fd = inherited.fd;
      transport = "fd";
      // Children (commands the daemons run) must not mistake the number for a socket of their own.
      if (env === process.env) delete process.env[NOTIFY_FD_ENV];
    } else {
      lib = loadAddon();
      transport = lib ? "addon" : "binary";
      say().warn(
        { notifySocket: socketPath, transport, problem: inherited.problem },
        lib
          ? "sd_notify: no notify socket inherited; sending through the unix-dgram addon instead"
          : "sd_notify: no notify socket inherited; falling back to the systemd-notify binary, whose messages systemd drops under NotifyAccess=main (READY=1 will not arrive): start the daemon through notify-exec.pl",
      );
    }
  }
  // Abstract-namespace sockets are written with a leading '@'.
  const target = socketPath?.startsWith("@") ? `\0${socketPath.slice(1)}` : socketPath;
  let sock: DgramSocket | undefined;
  let closed = false;
  // One warning per run of failures (not one per ping), and a line when sending works again.
  let failing: string | undefined;
  const timers = new Set<NodeJS.Timeout>();

  const writeFd = (message: string) => {
    try {
      writeSync(fd!, Buffer.from(message));
      if (failing) {
        say().info({ after: failing }, "sd_notify: sending again");
        failing = undefined;
      }
    } catch (err) {
      // EAGAIN: systemd's queue is full; ECONNREFUSED: it is gone (restarting). The next ping retries.
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      if (failing !== code) say().warn({ err: code, message: message.split("\n")[0] }, "sd_notify: cannot send; retrying with the next message");
      failing = code;
    }
  };

  const send = (message: string): Promise<void> =>
    new Promise((resolve) => {
      if (!target || closed) return resolve();
      if (fd !== undefined) {
        writeFd(message);
        return resolve();
      }
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
      // The descriptor stays open: closing it would let a later open() reuse its number, and a
      // stray send after close() must never land in some other file. `closed` stops sends.
      closed = true;
    },
  };
  return notifier;
}
