import { closeSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { createLogger, createNotifier, type Notifier } from "@pifleet/core";

/**
 * The notifier's transports, in this process. A connected datagram socket made with the
 * unix-dgram addon stands in for the one notify-exec.pl hands over (same kind of descriptor: an
 * AF_UNIX SOCK_DGRAM socket, connected, non-blocking); a second socket bound to a path plays
 * systemd and records what arrives. The wrapper itself, with the real daemons, is proven in
 * test/systemd/notify.test.ts and, under real systemd, in test/lab/pi-agent-arm64-vm.test.ts.
 */

interface Sock {
  fd: number;
  bind(p: string): void;
  connect(p: string): void;
  close(): void;
  on(e: "message", f: (buf: Buffer) => void): void;
  on(e: "error", f: (err: Error) => void): void;
}
const unixDgram = createRequire(new URL("../package.json", import.meta.url))("unix-dgram") as { createSocket(type: "unix_dgram"): Sock };

const tmp = mkdtempSync(path.join(tmpdir(), "pifleet-sd-notify-"));
const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const f of cleanup.splice(0).reverse()) f();
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let n = 0;
/** A bound socket playing systemd's notify socket. */
function systemd(): { path: string; got: string[]; close(): void } {
  const p = path.join(tmp, `notify-${n++}.sock`);
  const got: string[] = [];
  const s = unixDgram.createSocket("unix_dgram");
  s.on("message", (buf) => got.push(buf.toString()));
  s.on("error", () => undefined);
  s.bind(p);
  let open = true;
  const close = () => {
    if (open) s.close();
    open = false;
  };
  cleanup.push(close);
  return { path: p, got, close };
}

/** What notify-exec.pl hands over: a datagram socket connected to `to`. */
function connected(to: string): number {
  const s = unixDgram.createSocket("unix_dgram");
  s.on("error", () => undefined);
  s.connect(to);
  cleanup.push(() => s.close());
  return s.fd;
}

/** A real pino logger whose lines are kept. */
function capture(): { lines: Array<Record<string, unknown>>; log: ReturnType<typeof createLogger> } {
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger("test", { level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { lines, log };
}

const until = async (what: string, ok: () => boolean, ms = 3000) => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

function track(notifier: Notifier): Notifier {
  cleanup.push(() => notifier.close());
  return notifier;
}

describe("createNotifier with an inherited socket (PIFLEET_NOTIFY_FD)", () => {
  it("writes every message to that descriptor and nowhere else, with no warning", async () => {
    const sd = systemd();
    const { lines, log } = capture();
    // NOTIFY_SOCKET names a path where nothing listens: what arrives can only have gone through the fd.
    const env = { NOTIFY_SOCKET: path.join(tmp, "nobody-here.sock"), PIFLEET_NOTIFY_FD: String(connected(sd.path)), WATCHDOG_USEC: "100000" };
    const notifier = track(createNotifier(env, log));
    expect(notifier.transport).toBe("fd");
    expect(notifier.active).toBe(true);
    await notifier.ready("serving");
    await notifier.status("busy");
    notifier.startWatchdog();
    await until("three WATCHDOG=1", () => sd.got.filter((m) => m === "WATCHDOG=1").length >= 3);
    expect(sd.got.slice(0, 2)).toEqual(["READY=1\nSTATUS=serving", "STATUS=busy"]);
    expect(lines).toEqual([]);
  });

  it("sends nothing after close(), and the descriptor is not closed under someone else", async () => {
    const sd = systemd();
    const fd = connected(sd.path);
    const notifier = createNotifier({ NOTIFY_SOCKET: sd.path, PIFLEET_NOTIFY_FD: String(fd) }, capture().log);
    await notifier.ready();
    notifier.close();
    await notifier.stopping();
    await new Promise((r) => setTimeout(r, 50));
    expect(sd.got).toEqual(["READY=1"]);
  });

  it("takes the number out of process.env, so children do not mistake it for a socket of their own", () => {
    const sd = systemd();
    const saved = { NOTIFY_SOCKET: process.env.NOTIFY_SOCKET, PIFLEET_NOTIFY_FD: process.env.PIFLEET_NOTIFY_FD };
    try {
      process.env.NOTIFY_SOCKET = sd.path;
      process.env.PIFLEET_NOTIFY_FD = String(connected(sd.path));
      const notifier = track(createNotifier(process.env, capture().log));
      expect(notifier.transport).toBe("fd");
      expect(process.env.PIFLEET_NOTIFY_FD).toBeUndefined();
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it("a failing write is logged once per run of failures, never thrown, and recovery is logged", async () => {
    const sd = systemd();
    const { lines, log } = capture();
    const notifier = track(createNotifier({ NOTIFY_SOCKET: sd.path, PIFLEET_NOTIFY_FD: String(connected(sd.path)) }, log));
    // No turn of the event loop in between: the receiver reads nothing, its queue
    // (net.unix.max_dgram_qlen) fills, and the non-blocking socket answers EAGAIN.
    const sends: Array<Promise<void>> = [];
    for (let i = 0; i < 600; i++) sends.push(notifier.notify({ SEQ: i }));
    await Promise.all(sends);
    const warnings = lines.filter((l) => l.msg === "sd_notify: cannot send; retrying with the next message");
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: 40, err: "EAGAIN", message: expect.stringMatching(/^SEQ=\d+$/) });
    await until("the queue drained", () => sd.got.length > 0);
    await new Promise((r) => setTimeout(r, 50));
    await notifier.notify({ SEQ: "after" });
    await until("the message after the failures", () => sd.got.includes("SEQ=after"));
    expect(lines.filter((l) => l.msg === "sd_notify: sending again")).toEqual([expect.objectContaining({ level: 30, after: "EAGAIN" })]);

    // systemd gone (its socket closed): ECONNREFUSED, logged once however many pings fail.
    sd.close();
    for (let i = 0; i < 5; i++) await notifier.notify({ WATCHDOG: 1 });
    expect(lines.filter((l) => l.err === "ECONNREFUSED")).toHaveLength(1);
  });
});

describe("createNotifier without a usable inherited socket", () => {
  const fallback = "sd_notify: no notify socket inherited; sending through the unix-dgram addon instead";

  it("NOTIFY_SOCKET alone: says why, then sends through the addon (present in the workspace, never in a bundle)", async () => {
    const sd = systemd();
    const { lines, log } = capture();
    const notifier = track(createNotifier({ NOTIFY_SOCKET: sd.path }, log));
    expect(notifier.transport).toBe("addon");
    expect(lines).toEqual([
      expect.objectContaining({ level: 40, msg: fallback, transport: "addon", notifySocket: sd.path, problem: expect.stringContaining("PIFLEET_NOTIFY_FD is not set") }),
    ]);
    await notifier.ready();
    await until("READY=1", () => sd.got.includes("READY=1"));
  });

  it("a number that is not an open socket is refused, with the reason", () => {
    const sd = systemd();
    const file = openSync(path.join(tmp, "not-a-socket"), "w");
    cleanup.push(() => closeSync(file));
    const closedFd = openSync(path.join(tmp, "closed"), "w");
    closeSync(closedFd);
    for (const [value, problem] of [
      [String(file), `PIFLEET_NOTIFY_FD=${file} is open but not a socket`],
      ["2", "PIFLEET_NOTIFY_FD=2 is not a descriptor number of 3 or more"],
      ["three", "PIFLEET_NOTIFY_FD=three is not a descriptor number of 3 or more"],
      [String(closedFd), `PIFLEET_NOTIFY_FD=${closedFd} is not open (EBADF)`],
    ]) {
      const { lines, log } = capture();
      const notifier = track(createNotifier({ NOTIFY_SOCKET: sd.path, PIFLEET_NOTIFY_FD: value }, log));
      expect(notifier.transport, value).toBe("addon");
      expect(lines.map((l) => l.problem)).toEqual([problem]);
    }
  });

  it("no NOTIFY_SOCKET (not under systemd): inert and silent, even with a descriptor number", async () => {
    const { lines, log } = capture();
    const notifier = track(createNotifier({ PIFLEET_NOTIFY_FD: "7", WATCHDOG_USEC: "100000" }, log));
    expect(notifier.transport).toBe("none");
    expect(notifier.active).toBe(false);
    await notifier.ready();
    notifier.startWatchdog();
    expect(lines).toEqual([]);
  });
});
