import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { mkdirSync, openSync } from "node:fs";
import path from "node:path";
import { freePorts } from "@pifleet/core";

export interface EtcdCluster {
  endpoints: string[];
  members: (ChildProcess | undefined)[];
  /** Stops member i (SIGKILL); start(i) brings it back on its data dir. */
  kill(i: number): Promise<void>;
  start(i: number): void;
  /** etcdctl get (the key's value, or undefined). */
  get(key: string): string | undefined;
  waitHealthy(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** A real three-member etcd cluster (Debian's etcd-server) on loopback, data in `dir`: for tests and benches only. */
export async function startEtcdCluster(dir: string, size = 3): Promise<EtcdCluster> {
  const ports = await freePorts(2 * size);
  const names = Array.from({ length: size }, (_, i) => `m${i + 1}`);
  const client = (i: number) => `http://127.0.0.1:${ports[2 * i]}`;
  const peer = (i: number) => `http://127.0.0.1:${ports[2 * i + 1]}`;
  const initial = names.map((n, i) => `${n}=${peer(i)}`).join(",");
  const members: (ChildProcess | undefined)[] = [];
  const start = (i: number) => {
    const data = path.join(dir, names[i]!);
    mkdirSync(data, { recursive: true });
    const log = openSync(path.join(dir, `${names[i]}.log`), "a");
    members[i] = spawn(
      "etcd",
      [
        "--name", names[i]!, "--data-dir", data,
        "--listen-client-urls", client(i), "--advertise-client-urls", client(i),
        "--listen-peer-urls", peer(i), "--initial-advertise-peer-urls", peer(i),
        "--initial-cluster", initial, "--initial-cluster-state", "new", "--initial-cluster-token", `pifleet-test-${ports[0]}`,
        // Loopback: short heartbeats, so a lost member is noticed soon.
        "--heartbeat-interval", "100", "--election-timeout", "1000",
      ],
      { stdio: ["ignore", log, log], env: { ...process.env, ETCD_UNSUPPORTED_ARCH: process.arch === "arm64" ? "arm64" : "" } },
    );
  };
  for (let i = 0; i < size; i++) start(i);
  const endpoints = names.map((_, i) => client(i));
  const ctl = (args: string[]) => execFileSync("etcdctl", ["--endpoints", endpoints.join(","), "--command-timeout=2s", ...args], { env: { ...process.env, ETCDCTL_API: "3" }, stdio: ["ignore", "pipe", "pipe"] }).toString();
  const cluster: EtcdCluster = {
    endpoints,
    members,
    start,
    async kill(i) {
      const m = members[i];
      if (!m || m.exitCode !== null || m.signalCode !== null) return;
      const done = new Promise((r) => m.once("exit", r));
      m.kill("SIGKILL");
      await done;
    },
    get(key) {
      const out = ctl(["get", key, "--print-value-only"]).trim();
      return out === "" ? undefined : out;
    },
    async waitHealthy(timeoutMs = 20_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        try {
          ctl(["endpoint", "health"]);
          return;
        } catch (err) {
          if (Date.now() > end) throw new Error(`etcd cluster not healthy within ${timeoutMs / 1000} s: ${(err as Error).message}`);
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    },
    async stop() {
      for (let i = 0; i < size; i++) await cluster.kill(i);
    },
  };
  await cluster.waitHealthy();
  return cluster;
}
