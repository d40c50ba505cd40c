import { freePort } from "@pifleet/core";
import net from "node:net";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

/**
 * Debian's real OpenSSH server on a loopback port, with its own host key, config and
 * authorized_keys in a temp dir. Runs as root (tests do); never touches the system's sshd.
 */
export interface TestSshd {
  port: number;
  hostKeyLine: string;
  userKey: string;
  wrongKey: string;
  stop(): Promise<void>;
}

export async function startSshd(dir: string): Promise<TestSshd> {
  // sshd refuses to start without its privilege-separation directory (normally made at boot).
  mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  const key = (name: string) => {
    const file = path.join(dir, name);
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", name, "-f", file]);
    return file;
  };
  const hostKey = key("host_key");
  const userKey = key("user_key");
  const wrongKey = key("wrong_key");
  writeFileSync(path.join(dir, "authorized_keys"), readFileSync(`${userKey}.pub`));
  const port = await freePort();
  writeFileSync(
    path.join(dir, "sshd_config"),
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${hostKey}`,
      `PidFile ${path.join(dir, "sshd.pid")}`,
      `AuthorizedKeysFile ${path.join(dir, "authorized_keys")}`,
      "StrictModes no",
      "UsePAM no",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "PubkeyAuthentication yes",
      "PermitRootLogin prohibit-password",
      "Subsystem sftp internal-sftp",
      "",
    ].join("\n"),
  );
  const child: ChildProcess = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", path.join(dir, "sshd_config")], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr?.on("data", (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const deadline = Date.now() + 10_000;
  while (!(await accepts(port))) {
    if (child.exitCode !== null) throw new Error(`sshd exited: ${log}`);
    if (Date.now() > deadline) throw new Error(`sshd did not listen on ${port}: ${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const [type, blob] = readFileSync(`${hostKey}.pub`, "utf8").trim().split(" ");
  return {
    port,
    hostKeyLine: `[127.0.0.1]:${port} ${type} ${blob}`,
    userKey,
    wrongKey,
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await exited;
      }
    },
  };
}


function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.createConnection({ host: "127.0.0.1", port }, () => {
      c.destroy();
      resolve(true);
    });
    c.on("error", () => resolve(false));
  });
}
