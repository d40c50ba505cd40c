import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { adminStateOf, parseRuntimeAddress, parseServersStateRows, RuntimeApi } from "@pifleet/lb";

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/**
 * A unix socket server standing in for HAProxy's CLI; `answer` decides what each connection gets.
 * A command counts as in flight from its arrival until the fake starts answering it.
 */
async function fakeCli(answer: (command: string, reply: (text: string) => void) => void): Promise<{ path: string; maxConcurrent: () => number }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "pifleet-fakecli-"));
  const sockPath = path.join(dir, "admin.sock");
  let open = 0;
  let max = 0;
  const server = net.createServer((s) => {
    let buf = "";
    s.on("data", (d: Buffer) => {
      buf += d.toString();
      if (!buf.includes("\n")) return;
      open++;
      max = Math.max(max, open);
      answer(buf.trim(), (text) => {
        open--;
        s.end(text);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(sockPath, resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        rmSync(dir, { recursive: true, force: true });
      }),
  );
  return { path: sockPath, maxConcurrent: () => max };
}

describe("runtime API client", () => {
  it("times out on a socket that never answers, naming the command", async () => {
    const cli = await fakeCli(() => undefined);
    const api = new RuntimeApi(cli.path, { timeoutMs: 300 });
    const started = Date.now();
    await expect(api.run("show servers state pifleet")).rejects.toThrow(`"show servers state pifleet" got no complete answer within 300 ms`);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("serializes requests per socket: one connection at a time, answers in order", async () => {
    const cli = await fakeCli((command, reply) => setTimeout(() => reply(`echo ${command}\n`), 5));
    const a = new RuntimeApi(cli.path);
    const b = new RuntimeApi(cli.path); // a second client of the same socket shares the queue
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).run(`cmd ${i}`)));
    expect(answers).toEqual(Array.from({ length: 12 }, (_, i) => `echo cmd ${i}\n`));
    expect(cli.maxConcurrent()).toBe(1);
  });

  it("a failed request does not block the ones queued behind it", async () => {
    const cli = await fakeCli((command, reply) => (command === "hang" ? undefined : reply("ok\n")));
    const api = new RuntimeApi(cli.path, { timeoutMs: 200 });
    const results = await Promise.allSettled([api.run("hang"), api.run("next")]);
    expect(results[0].status).toBe("rejected");
    expect(results[1]).toEqual({ status: "fulfilled", value: "ok\n" });
  });

  it("refuses a command with a line break (it would become two commands)", () => {
    expect(() => new RuntimeApi("/x").run("show info\nshutdown sessions")).toThrow(/line break/);
  });

  it("parses socket addresses HAProxy writes", () => {
    expect(parseRuntimeAddress("/run/haproxy/admin.sock")).toEqual({ kind: "unix", path: "/run/haproxy/admin.sock" });
    expect(parseRuntimeAddress("unix@/run/x.sock")).toEqual({ kind: "unix", path: "/run/x.sock" });
    expect(parseRuntimeAddress("ipv4@127.0.0.1:9999")).toEqual({ kind: "tcp", host: "127.0.0.1", port: 9999 });
    expect(parseRuntimeAddress("[::1]:9999")).toEqual({ kind: "tcp", host: "::1", port: 9999 });
    expect(() => parseRuntimeAddress("localhost:99999")).toThrow(/loadBalancer.socket/);
  });
});

describe("show servers state parser", () => {
  it("finds columns by header name whatever their order, ignoring extra ones", () => {
    const text = [
      "1",
      "# srv_name be_name future_col srv_id srv_addr srv_admin_state srv_op_state srv_check_result srv_check_status srv_check_state srv_port",
      "pi01 pifleet x 7 2a00:1098:0:84:1000:1:0:2 8 2 3 15 6 80",
      "",
    ].join("\n");
    const { version, rows } = parseServersStateRows(text);
    expect(version).toBe(1);
    expect(rows).toEqual([
      { srv_name: "pi01", be_name: "pifleet", future_col: "x", srv_id: "7", srv_addr: "2a00:1098:0:84:1000:1:0:2", srv_admin_state: "8", srv_op_state: "2", srv_check_result: "3", srv_check_status: "15", srv_check_state: "6", srv_port: "80" },
    ]);
  });

  it("says what is wrong with an answer that is not a dump", () => {
    expect(() => parseServersStateRows("Can't find backend.\n")).toThrow(/expected a format version on the first line, got "Can't find backend."/);
    expect(() => parseServersStateRows("1\n# be_name srv_name\n")).toThrow(/header lacks srv_id/);
  });

  it("decodes the admin-state bit mask", () => {
    expect(adminStateOf(0)).toBe("ready");
    expect(adminStateOf(0x08)).toBe("drain");
    expect(adminStateOf(0x01)).toBe("maint");
    expect(adminStateOf(0x01 | 0x08)).toBe("maint");
    expect(adminStateOf(0x40)).toBe("ready"); // FQDN set from the socket: not maintenance
  });
});
