import { readFileSync } from "node:fs";
import path from "node:path";
import { NodeSSH } from "node-ssh";
import type { SFTPWrapper } from "ssh2";
import { checkHostKey, hostField, type HostKeyVerdict } from "./known-hosts.js";

/** A failure on or reaching the target host; printed as one line by the CLI, never a stack. */
export class InstallError extends Error {
  override name = "InstallError";
}

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  /** Private key file; without it the ssh-agent at SSH_AUTH_SOCK is asked. */
  identity?: string;
  knownHosts: string;
  acceptNewHostKey: boolean;
  /** Connect + handshake + authentication. */
  timeoutMs: number;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** POSIX shell single-quoting: every argument we build a remote command from goes through this. */
export function sh(arg: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** One SSH connection to the target: commands, and atomic file writes over SFTP. */
export class RemoteHost {
  /** One SFTP session for every upload: opening one per file costs a subsystem start each. */
  private sftp?: Promise<SFTPWrapper>;

  private constructor(
    private readonly ssh: NodeSSH,
    readonly label: string,
    readonly hostKey: HostKeyVerdict,
  ) {}

  static async connect(target: SshTarget): Promise<RemoteHost> {
    const label = `${target.user}@${hostField(target.host, target.port)}`;
    let privateKey: string | undefined;
    if (target.identity) {
      try {
        privateKey = readFileSync(target.identity, "utf8");
      } catch (err) {
        throw new InstallError(`--identity ${target.identity}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
      }
    } else if (!process.env.SSH_AUTH_SOCK) {
      throw new InstallError(`no key to log in to ${label} with: pass --identity KEYFILE or run an ssh-agent`);
    }
    let verdict: HostKeyVerdict = { ok: false, reason: "the server sent no host key" };
    const ssh = new NodeSSH();
    try {
      await ssh.connect({
        host: target.host,
        port: target.port,
        username: target.user,
        privateKey,
        agent: privateKey ? undefined : process.env.SSH_AUTH_SOCK,
        readyTimeout: target.timeoutMs,
        tryKeyboard: false,
        hostVerifier: (key: Buffer) => {
          verdict = checkHostKey(target.knownHosts, target.host, target.port, key, target.acceptNewHostKey);
          return verdict.ok;
        },
      });
    } catch (err) {
      ssh.dispose();
      throw new InstallError(`ssh ${label}: ${explainConnectError(err as Error & { level?: string; code?: string }, verdict, target)}`);
    }
    // Many small request/answer exchanges: Nagle + delayed ACK would add ~40 ms to each.
    ssh.connection?.setNoDelay(true);
    return new RemoteHost(ssh, label, verdict);
  }

  async run(command: string): Promise<CommandResult> {
    const r = await this.ssh.execCommand(command);
    return { code: r.code ?? (r.signal ? 128 : 0), stdout: r.stdout, stderr: r.stderr };
  }

  /** Runs and requires exit status 0; the error names the command and what it printed. */
  async check(command: string, what = command): Promise<string> {
    const r = await this.run(command);
    if (r.code !== 0) {
      const said = (r.stderr || r.stdout).trim().split("\n").slice(-5).join(" / ");
      throw new InstallError(`${this.label}: ${what} failed (exit ${r.code})${said ? `: ${said}` : ""}`);
    }
    return r.stdout;
  }

  /**
   * Writes beside the target and renames over it, so a daemon (or a reader of its config) never
   * sees half a file; the temporary file is created with the final mode, so a secret is never
   * readable by others even for a moment.
   */
  async writeFile(target: string, data: Buffer, mode: number): Promise<void> {
    this.sftp ??= this.ssh.requestSFTP();
    const sftp = await this.sftp;
    const tmp = path.posix.join(path.posix.dirname(target), `.${path.posix.basename(target)}.pifleet-tmp`);
    try {
      await new Promise<void>((resolve, reject) => sftp.writeFile(tmp, data, { mode }, (err) => (err ? reject(err) : resolve())));
      await new Promise<void>((resolve, reject) => sftp.chmod(tmp, mode, (err) => (err ? reject(err) : resolve())));
      await new Promise<void>((resolve, reject) => sftp.ext_openssh_rename(tmp, target, (err) => (err ? reject(err) : resolve())));
    } catch (err) {
      await this.run(`rm -f -- ${sh(tmp)}`).catch(() => undefined);
      throw new InstallError(`${this.label}: cannot write ${target}: ${(err as Error).message}`);
    }
  }

  close(): void {
    void this.sftp?.then((s) => s.end()).catch(() => undefined);
    this.ssh.dispose();
  }
}

function explainConnectError(err: Error & { level?: string; code?: string }, verdict: HostKeyVerdict, target: SshTarget): string {
  if (!verdict.ok && /verif|host/i.test(err.message) && err.level !== "client-authentication") return `host key rejected: ${verdict.reason}`;
  if (err.level === "client-authentication") {
    return `authentication failed: the server refused ${target.identity ? `the key in ${target.identity}` : "every key the ssh-agent offered"} for user ${target.user}`;
  }
  if (err.code === "ECONNREFUSED") return "connection refused: is sshd listening on that port?";
  if (err.code === "ENOTFOUND" || err.code === "EAI_AGAIN") return `cannot resolve ${target.host}`;
  if (err.code === "EHOSTUNREACH" || err.code === "ENETUNREACH") return `no route to ${target.host}`;
  if (/Timed out/i.test(err.message)) return `no SSH handshake within ${target.timeoutMs} ms`;
  if (/encrypted|passphrase/i.test(err.message)) return `${target.identity} is passphrase-protected: load it into an ssh-agent and leave out --identity`;
  if (/privateKey|parse/i.test(err.message)) return `${target.identity}: not a private key ssh2 can read (${err.message})`;
  return err.message;
}
