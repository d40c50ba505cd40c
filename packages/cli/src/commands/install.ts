import os from "node:os";
import path from "node:path";
import { Option, type Command } from "commander";
import { UsageError } from "../usage-error.js";
import { install } from "../install/installer.js";
import { roleOf } from "../install/roles.js";

interface InstallFlags {
  role: string;
  user: string;
  port: string;
  identity?: string;
  config?: string;
  secretFile?: string;
  prefix: string;
  start: boolean;
  dryRun?: boolean;
  bundle?: string;
  knownHosts: string;
  acceptNewHostKey?: boolean;
  timeout: string;
}

export function registerInstall(program: Command): void {
  program
    .command("install")
    .description("install a pifleet daemon (bundle, config, secret, systemd unit) on a host over SSH; idempotent")
    .argument("<host>", "target host name or address (IPv6 without brackets)")
    .addOption(new Option("--role <role>", "what the host is").choices(["pi", "fileserver", "coordinator"]).makeOptionMandatory())
    .option("--user <user>", "SSH user (root, or the owner of --prefix)", "root")
    .option("--port <port>", "SSH port", "22")
    .option("--identity <keyfile>", "SSH private key (default: the ssh-agent at SSH_AUTH_SOCK)")
    .option("--config <file>", "the role's config, installed as /etc/pifleet/<role>.yaml")
    .option("--secret-file <file>", "the agent secret, installed as /etc/pifleet/<role>.secret (0600)")
    .option("--prefix <dir>", "install root on the target; anything but / installs files only (no users, no systemctl)", "/")
    .option("--no-start", "install and enable, but do not (re)start the service")
    .option("--dry-run", "connect and print every step, change nothing")
    .option("--bundle <dir>", "a bundle built by scripts/bundle.mjs (needed when the target's arch differs from this machine's)")
    .option("--known-hosts <file>", "known_hosts file checked for the target's host key", path.join(os.homedir(), ".ssh", "known_hosts"))
    .option("--accept-new-host-key", "trust and record a host key not yet in known_hosts (never a changed one)")
    .option("--timeout <seconds>", "SSH connect timeout, and the wait for the service to become active", "20")
    .action(async (host: string, flags: InstallFlags) => {
      const role = roleOf(flags.role);
      if (!role) throw new UsageError(`--role: "${flags.role}" is not pi, fileserver or coordinator`);
      const port = Number(flags.port);
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`--port: "${flags.port}" is not a TCP port`);
      const timeout = Number(flags.timeout);
      if (!Number.isFinite(timeout) || timeout <= 0) throw new UsageError(`--timeout: "${flags.timeout}" is not a number of seconds`);
      if (!flags.prefix.startsWith("/")) throw new UsageError(`--prefix: "${flags.prefix}" must be an absolute path on the target`);
      const prefix = path.posix.normalize(flags.prefix).replace(/(.)\/$/, "$1");
      await install({
        role,
        target: {
          host: host.replace(/^\[(.*)\]$/, "$1"),
          port,
          user: flags.user,
          identity: flags.identity,
          knownHosts: flags.knownHosts,
          acceptNewHostKey: Boolean(flags.acceptNewHostKey),
          timeoutMs: timeout * 1000,
        },
        config: flags.config,
        secretFile: flags.secretFile,
        prefix,
        start: flags.start,
        dryRun: Boolean(flags.dryRun),
        bundleDir: flags.bundle,
        activeTimeoutMs: timeout * 1000,
        out: (line) => process.stdout.write(`${line}\n`),
      });
    });
}
