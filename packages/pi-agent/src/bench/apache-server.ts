import { freePort } from "@pifleet/core";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync, chmodSync, existsSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";

/**
 * Debian's real apache2, run as a private instance: its own ServerRoot and config in a temp dir,
 * listening on a loopback port. Never touches the system's apache2 service or /etc/apache2. Used
 * by the tests (test/apache, test/e2e) and the Pi agent's benchmark.
 */
export const APACHE_BIN = process.env.PIFLEET_APACHE_BIN ?? "/usr/sbin/apache2";
const MODULES = process.env.PIFLEET_APACHE_MODULES ?? "/usr/lib/apache2/modules";

export interface ApacheInstance {
  port: number;
  /** http://127.0.0.1:PORT */
  base: string;
  statusUrl: string;
  dir: string;
  /** Stops the server (SIGTERM to the parent, waits for every child to exit). */
  stop(): Promise<void>;
  /** The error log so far, for failure messages. */
  errorLog(): string;
}

export interface ApacheOptions {
  extendedStatus?: boolean;
  /** Bind to this host (127.0.0.1 or ::1). */
  host?: string;
  port?: number;
  /**
   * Debian's stock event MPM limits (mpm_event.conf: 25 threads per child, ServerLimit 16, a
   * 400-slot scoreboard) as on a Pi, rather than the small ones tests use.
   */
  stockLimits?: boolean;
}

export { freePort };

export function apacheConfig(dir: string, host: string, port: number, extendedStatus: boolean, stockLimits = false): string {
  const listen = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
  const mod = (name: string, file: string) => `LoadModule ${name} ${MODULES}/${file}`;
  return `ServerRoot "${dir}"
PidFile "${dir}/apache2.pid"
DefaultRuntimeDir "${dir}/run"
Listen ${listen}
ServerName localhost
${mod("mpm_event_module", "mod_mpm_event.so")}
${mod("authz_core_module", "mod_authz_core.so")}
${mod("authz_host_module", "mod_authz_host.so")}
${mod("status_module", "mod_status.so")}
${mod("dir_module", "mod_dir.so")}
# Only effective when started as root; workers must not run as root.
User #65534
Group #65534
ErrorLog "${dir}/error.log"
LogLevel warn
${
  stockLimits
    ? `StartServers 2
MinSpareThreads 25
MaxSpareThreads 75
ThreadLimit 64
ThreadsPerChild 25
MaxRequestWorkers 150
MaxConnectionsPerChild 0`
    : `# Small, so a test run stays light; event MPM as on the Pis.
StartServers 1
ServerLimit 2
ThreadsPerChild 5
MinSpareThreads 2
MaxSpareThreads 10
MaxRequestWorkers 10`
}
ExtendedStatus ${extendedStatus ? "On" : "Off"}
DocumentRoot "${dir}/htdocs"
<Directory "${dir}/htdocs">
  Require all granted
</Directory>
DirectoryIndex index.html
<Location "/server-status">
  SetHandler server-status
  Require ip 127.0.0.1 ::1
</Location>
`;
}

function get(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { timeout: 1000 }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

export async function startApache(opts: ApacheOptions = {}): Promise<ApacheInstance> {
  const host = opts.host ?? "127.0.0.1";
  const dir = mkdtempSync(path.join(tmpdir(), "pifleet-apache-"));
  // Workers drop to nobody when started as root: they must be able to read the document root.
  chmodSync(dir, 0o755);
  mkdirSync(path.join(dir, "run"));
  mkdirSync(path.join(dir, "htdocs"));
  writeFileSync(path.join(dir, "htdocs", "index.html"), "<!doctype html><title>pi</title><p>hello from a Pi</p>\n");
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = opts.port ?? (await freePort(host));
    writeFileSync(path.join(dir, "apache2.conf"), apacheConfig(dir, host, port, opts.extendedStatus ?? true, opts.stockLimits));
    const child = spawn(APACHE_BIN, ["-f", path.join(dir, "apache2.conf"), "-DFOREGROUND"], {
      stdio: ["ignore", "ignore", "pipe"],
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LANG: "C" },
    });
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const base = host.includes(":") ? `http://[${host}]:${port}` : `http://${host}:${port}`;
    try {
      await waitServing(child, `${base}/server-status?auto`, () => stderr);
      return instance(dir, child, port, base);
    } catch (err) {
      lastError = err;
      await stopChild(child);
      if (opts.port) break;
    }
  }
  const log = existsSync(path.join(dir, "error.log")) ? readFileSync(path.join(dir, "error.log"), "utf8") : "";
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`apache2 did not start: ${(lastError as Error).message}\n${log}`);
}

async function waitServing(child: ChildProcess, url: string, stderr: () => string): Promise<void> {
  const until = Date.now() + 15_000;
  while (Date.now() < until) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited (${child.exitCode ?? child.signalCode}): ${stderr()}`);
    try {
      if ((await get(url)) === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no answer from ${url} within 15 s: ${stderr()}`);
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill("SIGKILL"), 10_000);
    child.once("exit", () => {
      clearTimeout(kill);
      resolve();
    });
    // SIGTERM to the foreground parent stops its children too ("graceful-stop" would wait for requests).
    child.kill("SIGTERM");
  });
}

function instance(dir: string, child: ChildProcess, port: number, base: string): ApacheInstance {
  let stopped = false;
  return {
    port,
    base,
    statusUrl: `${base}/server-status?auto`,
    dir,
    errorLog: () => {
      try {
        return readFileSync(path.join(dir, "error.log"), "utf8");
      } catch {
        return "";
      }
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
