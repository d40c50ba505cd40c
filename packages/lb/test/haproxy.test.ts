import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "@pifleet/core";
import { createDriver, driverForFleet, HaproxyDriver, LoadBalancerError, RuntimeApi, MANAGED_ID_BASE, type ServerState } from "@pifleet/lb";
import { get, startBackend, startHaproxy, waitFor, type Backend, type Haproxy } from "./haproxy-harness.js";

const logger = createLogger("lb-test", { level: "silent" });

describe("HAProxy driver against Debian's haproxy", () => {
  let haproxy: Haproxy;
  let web1: Backend;
  let web2: Backend;
  let piA: Backend;
  let piB: Backend;
  let driver: HaproxyDriver;

  const stateOf = async (name: string): Promise<ServerState> => driver.server(name);
  /** `show stat`'s own status column, read with the raw client: an independent view of the same server. */
  const statColumns = async (name: string): Promise<Record<string, string>> => {
    const csv = await new RuntimeApi(haproxy.socket).run("show stat pifleet 4 -1");
    const [header, ...rows] = csv.trim().split("\n");
    const columns = header.replace(/^# /, "").split(",");
    const row = rows.map((r) => r.split(",")).find((f) => f[1] === name);
    if (!row) throw new Error(`show stat has no ${name}`);
    return Object.fromEntries(columns.map((c, i) => [c, row[i]]));
  };

  beforeAll(async () => {
    [web1, web2, piA, piB] = await Promise.all([startBackend("web1"), startBackend("web2"), startBackend("piA"), startBackend("piB")]);
    haproxy = await startHaproxy([
      { name: "web1", port: web1.port },
      { name: "web2", port: web2.port },
    ]);
    driver = new HaproxyDriver({ socket: haproxy.socket, backend: "pifleet", logger, checkTiming: { intervalMs: 200, rise: 1, fall: 1 } });
    await waitFor("both config servers up", async () => {
      const s = await driver.servers();
      return s.every((x) => x.operational === "up" && x.check.status === "L7OK") ? s : undefined;
    });
  });

  afterAll(async () => {
    await haproxy?.stop();
    await Promise.all([web1, web2, piA, piB].map((b) => b?.close()));
  });

  it("reads each server's admin, operational and check state from show servers state", async () => {
    const servers = await driver.servers();
    expect(servers.map((s) => s.name)).toEqual(["web1", "web2"]);
    const web1State = servers[0];
    expect(web1State).toMatchObject({ address: "::1", port: web1.port, admin: "ready", operational: "up", managed: false });
    expect(web1State.check).toEqual({ enabled: true, status: "L7OK", result: "passed" });
    // The numeric check code maps to the same name HAProxy prints in show stat.
    expect((await statColumns("web1")).check_status).toBe(web1State.check.status);
  });

  it("drain, maintenance and ready change what HAProxy reports and where requests go", async () => {
    await driver.drain("web1");
    expect((await stateOf("web1")).admin).toBe("drain");
    expect((await statColumns("web1")).status).toBe("DRAIN");
    const before = web1.hits;
    const answers = new Set<string>();
    for (let i = 0; i < 6; i++) answers.add(await get(haproxy.frontendPort));
    expect([...answers]).toEqual(["web2"]);
    // A drained server is still health-checked: only check requests reached it.
    expect((await stateOf("web1")).check.enabled).toBe(true);

    await driver.maintenance("web1");
    const maint = await stateOf("web1");
    expect(maint.admin).toBe("maint");
    expect(maint.operational).toBe("down");
    expect((await statColumns("web1")).status).toBe("MAINT");

    await driver.ready("web1");
    expect((await stateOf("web1")).admin).toBe("ready");
    const back = await waitFor("web1 back in rotation", async () => {
      const seen = new Set<string>();
      for (let i = 0; i < 4; i++) seen.add(await get(haproxy.frontendPort));
      return seen.has("web1") ? seen : undefined;
    });
    expect([...back].sort()).toEqual(["web1", "web2"]);
    expect(web1.hits).toBeGreaterThan(before);
  });

  it("sync adds missing servers (held down until a check passes), updates moved ones, removes only its own", async () => {
    const dead = await startBackend("dead");
    const deadPort = dead.port;
    await dead.close(); // nothing listens there any more: its checks fail

    const first = await driver.sync([
      { name: "web1", address: "::1", port: web1.port },
      { name: "piA", address: "0:0:0:0:0:0:0:1", port: piA.port },
      { name: "piB", address: "::1", port: piB.port },
      { name: "piDead", address: "::1", port: deadPort },
    ]);
    expect(first).toEqual({ added: ["piA", "piB", "piDead"], updated: [], removed: [], unchanged: ["web1"], pending: [] });

    const added = await driver.server("piDead");
    expect(added.managed).toBe(true);
    expect(added.check.enabled).toBe(true);
    // Right after the add the server must not take traffic before its first passing check.
    expect(added.operational).toBe("down");
    expect(added.admin).toBe("ready");

    const upA = await waitFor("piA up", async () => {
      const s = await stateOf("piA");
      return s.operational === "up" ? s : undefined;
    });
    expect(upA).toMatchObject({ address: "::1", port: piA.port, managed: true, admin: "ready" });
    expect(upA.check.status).toBe("L7OK");
    const deadState = await waitFor("piDead checked", async () => {
      const s = await stateOf("piDead");
      return s.check.status !== "INI" && s.check.status !== "UNK" ? s : undefined;
    });
    expect(deadState.operational).toBe("down");
    expect(deadState.check.status).toBe("L4CON");
    expect((await statColumns("piDead")).check_status).toBe("L4CON");

    // Idempotent: the same plan changes nothing.
    const again = await driver.sync([
      { name: "web1", address: "::1", port: web1.port },
      { name: "piA", address: "::1", port: piA.port },
      { name: "piB", address: "::1", port: piB.port },
      { name: "piDead", address: "::1", port: deadPort },
    ]);
    expect(again.added).toEqual([]);
    expect(again.removed).toEqual([]);
    expect(again.unchanged.sort()).toEqual(["piA", "piB", "piDead", "web1"]);

    // piDead's Pi moved to piB's port; piB and the config servers web1/web2 are no longer planned.
    const moved = await driver.sync([
      { name: "piA", address: "::1", port: piA.port },
      { name: "piDead", address: "::1", port: piB.port },
    ]);
    expect(moved).toEqual({ added: [], updated: ["piDead"], removed: ["piB"], unchanged: ["piA"], pending: [] });
    const names = (await driver.servers()).map((s) => s.name);
    expect(names).toEqual(["web1", "web2", "piA", "piDead"]); // config servers are never pifleet's to delete
    expect((await stateOf("piDead")).port).toBe(piB.port);
    await waitFor("piDead up at its new port", async () => ((await stateOf("piDead")).operational === "up" ? true : undefined));
    expect((await statColumns("piA")).sid).toMatch(/^\d+$/);
    expect(Number((await statColumns("piA")).sid)).toBeGreaterThanOrEqual(MANAGED_ID_BASE);
  });

  it("names the command and HAProxy's answer when HAProxy refuses", async () => {
    await expect(driver.drain("nosuchpi")).rejects.toThrow(/"set server pifleet\/nosuchpi state drain" failed: No such server/);
    const other = new HaproxyDriver({ socket: haproxy.socket, backend: "nosuchbackend", logger });
    await expect(other.servers()).rejects.toThrow(/"show servers state nosuchbackend" failed: Can't find backend/);
    await expect(driver.server("ghost")).rejects.toThrow(/backend pifleet has no server "ghost"/);
    // A name that would smuggle a second command onto the line never reaches HAProxy.
    await expect(driver.drain("pi01; disable frontend web")).rejects.toThrow(/must use only/);
    await expect(driver.sync([{ name: "x", address: "not-an-ip", port: 80 }])).rejects.toThrow(/address "not-an-ip" is not an IP address/);
  });
});

describe("HAProxy driver without HAProxy", () => {
  it("a bad socket path gives a clear error, not a hang", async () => {
    const driver = new HaproxyDriver({ socket: "/nonexistent/pifleet/admin.sock", backend: "pifleet", logger, timeoutMs: 2000 });
    const err = await driver.servers().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LoadBalancerError);
    expect((err as LoadBalancerError).message).toBe(
      'haproxy runtime API at /nonexistent/pifleet/admin.sock: cannot run "show servers state pifleet": ENOENT (no such socket: is HAProxy running with a `stats socket` at this path?)',
    );
    expect((err as LoadBalancerError).code).toBe("ENOENT");
  });

  it("rejects a socket setting that is neither a path nor host:port", () => {
    expect(() => new HaproxyDriver({ socket: "admin.sock", backend: "pifleet", logger })).toThrow(/loadBalancer.socket: "admin.sock"/);
  });

  it("is created by name from the fleet's loadBalancer section", () => {
    const d = driverForFleet({ loadBalancer: { driver: "haproxy", socket: "[::1]:9999", backend: "web", serverPort: 80, healthCheck: "GET /" } });
    expect(d).toBeInstanceOf(HaproxyDriver);
    expect(d.backend).toBe("web");
    expect(() => createDriver("f5", { socket: "/x", backend: "b" })).toThrow(/loadBalancer.driver: unknown driver "f5" \(known: haproxy\)/);
  });
});
