import type { ChildProcess } from "node:child_process";
import { createWriteStream, writeFileSync } from "node:fs";
import path from "node:path";
import { repoRoot, type NetNs } from "../harness/index.js";

export const CLI = path.join(repoRoot, "packages/cli/dist/main.js");
export const COORDINATOR = path.join(repoRoot, "packages/coordinator/dist/main.js");
export const POE_HOOK = path.join(repoRoot, "test/lab/power/poe-qmp.mjs");

/**
 * The host side of the shelf lab, each program a real one run as a user runs it, inside the lab's
 * network namespace: HAProxy, the PoE switch's emulator (real SNMP; its port power drives the Pi
 * VMs through QMP), and the coordinator in its foreground mode. `pifleet` commands run there too.
 */
export class HostSide {
  private readonly children: { name: string; child: ChildProcess }[] = [];

  constructor(
    readonly ns: NetNs,
    readonly dir: string,
    readonly env: NodeJS.ProcessEnv,
  ) {}

  /** `pifleet ARGS` inside the namespace; resolves with exit code and output (never rejects on exit code). */
  pifleet(args: string[], timeoutMs = 120_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return this.run([process.execPath, CLI, ...args], timeoutMs);
  }

  run(argv: string[], timeoutMs = 120_000, input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = this.ns.spawn(argv, { cwd: repoRoot, env: { ...process.env, PIFLEET_URL: "", PIFLEET_TOKEN: "", ...this.env }, stdio: ["pipe", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
      child.stdin!.on("error", () => undefined);
      child.stdin!.end(input ?? "");
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`${argv.join(" ")} did not finish within ${timeoutMs / 1000} s\n${stdout}\n${stderr}`));
      }, timeoutMs);
      child.on("exit", (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  }

  /** A long-running program in the namespace, its output in `<dir>/<name>.log`. */
  start(name: string, argv: string[]): ChildProcess {
    const log = createWriteStream(path.join(this.dir, `${name}.log`));
    const child = this.ns.spawn(argv, { cwd: repoRoot, env: { ...process.env, ...this.env }, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout!.pipe(log);
    child.stderr!.pipe(log);
    this.children.push({ name, child });
    return child;
  }

  /** HAProxy with an empty backend the coordinator fills (loadBalancer.sync), its admin socket at `socket`. */
  haproxy(socket: string, bind: string): ChildProcess {
    const cfg = path.join(this.dir, "haproxy.cfg");
    writeFileSync(
      cfg,
      [
        "global",
        `\tstats socket ${socket} mode 600 level admin`,
        "defaults",
        "\tmode http",
        "\ttimeout connect 2s",
        "\ttimeout client 10s",
        "\ttimeout server 10s",
        "frontend site",
        `\tbind ${bind}`,
        "\tdefault_backend pifleet",
        "backend pifleet",
        "\tbalance roundrobin",
        "\toption httpchk GET /",
        "",
      ].join("\n"),
    );
    return this.start("haproxy", ["/usr/sbin/haproxy", "-f", cfg, "-db"]);
  }

  /** A config file for a pifleet program: JSON, which every YAML reader reads. */
  writeYaml(name: string, data: unknown): string {
    const file = path.join(this.dir, name);
    writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
    return file;
  }

  /** Waits until `url` answers 200 from inside the namespace. */
  async waitForHttp(url: string, timeoutMs: number, child?: ChildProcess): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (child && child.exitCode !== null) throw new Error(`the process serving ${url} exited with ${child.exitCode}`);
      const r = await this.run([process.execPath, "-e", `fetch(${JSON.stringify(url)}).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))`], 20_000);
      if (r.code === 0) return;
      if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs / 1000} s`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.children.map(
        ({ child }) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            const killer = setTimeout(() => child.kill("SIGKILL"), 5000);
            child.once("exit", () => {
              clearTimeout(killer);
              resolve();
            });
            child.kill("SIGTERM");
          }),
      ),
    );
  }
}
