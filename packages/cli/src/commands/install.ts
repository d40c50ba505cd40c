import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Option, type Command } from "commander";
import { createLogger } from "@pifleet/core";
import { UsageError } from "../usage-error.js";
import { feedCredentials, feedUrls } from "../feed-credentials.js";
import { configIdentity } from "../install/config-check.js";
import { install } from "../install/installer.js";
import { ReportWatch } from "../install/report-wait.js";
import { roleOf, type Role } from "../install/roles.js";

interface InstallFlags {
  role: string;
  user: string;
  port: string;
  identity?: string;
  config?: string;
  secretFile?: string;
  prefix: string;
  image?: boolean;
  start: boolean;
  dryRun?: boolean;
  bundle?: string;
  knownHosts: string;
  acceptNewHostKey?: boolean;
  timeout: string;
  waitReport?: boolean;
  url?: string;
  token?: string;
  tokenFile?: string;
  ca?: string;
  agent?: string;
  reportTimeout: string;
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
    .option("--prefix <dir>", "install root on the target; anything but / installs files only (no users, no systemctl) unless --image", "/")
    .option("--image", "with --prefix: DIR is a root filesystem image (the netboot golden image): also create the service user in it and enable the unit offline; nothing is started")
    .option("--no-start", "install and enable, but do not (re)start the service")
    .option("--dry-run", "connect and print every step, change nothing")
    .option("--bundle <dir>", "a bundle built by scripts/bundle.mjs (needed when the target's arch differs from this machine's)")
    .option("--known-hosts <file>", "known_hosts file checked for the target's host key", path.join(os.homedir(), ".ssh", "known_hosts"))
    .option("--accept-new-host-key", "trust and record a host key not yet in known_hosts (never a changed one)")
    .option("--timeout <seconds>", "SSH connect timeout, and the wait for the service to become active", "20")
    .option("--wait-report", "pi, fileserver: once the service is active, wait until its agent reports to the coordinator (watching its feed)")
    .option("--url <url>", "with --wait-report: the coordinator's feed, e.g. wss://coordinator:7300/feed; several, comma-separated, for HA (or $PIFLEET_URL)")
    .option("--token <token>", "with --wait-report: a watcher token (NAME.SECRET); or --token-file, or $PIFLEET_TOKEN")
    .option("--token-file <file>", "with --wait-report: read the watcher token from FILE")
    .option("--ca <file>", "with --wait-report: CA certificate (PEM) to trust for wss://")
    .option("--agent <name>", "with --wait-report: the agent's enrolled name (default: the --config file's identity)")
    .option("--report-timeout <seconds>", "with --wait-report: how long to wait for the agent's first report", "60")
    .action(async (host: string, flags: InstallFlags) => {
      const role = roleOf(flags.role);
      if (!role) throw new UsageError(`--role: "${flags.role}" is not pi, fileserver or coordinator`);
      const port = Number(flags.port);
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`--port: "${flags.port}" is not a TCP port`);
      const timeout = Number(flags.timeout);
      if (!Number.isFinite(timeout) || timeout <= 0) throw new UsageError(`--timeout: "${flags.timeout}" is not a number of seconds`);
      if (!flags.prefix.startsWith("/")) throw new UsageError(`--prefix: "${flags.prefix}" must be an absolute path on the target`);
      const prefix = path.posix.normalize(flags.prefix).replace(/(.)\/$/, "$1");
      if (flags.image && prefix === "/") throw new UsageError("--image: needs --prefix DIR, the root filesystem image to install into (e.g. --prefix /srv/pifleet/golden)");
      // Every --wait-report argument is checked here: a mistake must fail before the target is touched.
      const reportWait = flags.waitReport ? reportWatch(role, flags, prefix) : undefined;
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
        image: Boolean(flags.image),
        start: flags.start,
        dryRun: Boolean(flags.dryRun),
        bundleDir: flags.bundle,
        activeTimeoutMs: timeout * 1000,
        reportWait,
        out: (line) => process.stdout.write(`${line}\n`),
      });
    });
}

function reportWatch(role: Role, flags: InstallFlags, prefix: string): ReportWatch {
  if (role.role !== "pi" && role.role !== "fileserver") throw new UsageError(`--wait-report: the ${role.role} is not an agent that reports to a coordinator (only --role pi or fileserver)`);
  if (prefix !== "/") throw new UsageError("--wait-report: nothing runs the service with --prefix (files only): leave out one or the other");
  if (!flags.start) throw new UsageError("--wait-report: --no-start leaves the service stopped: leave out one or the other");
  const urls = feedUrls(flags.url);
  const { token, name } = feedCredentials(flags, "a watcher token, for --wait-report");
  const seconds = Number(flags.reportTimeout);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new UsageError(`--report-timeout: "${flags.reportTimeout}" is not a number of seconds`);
  const fromConfig = flags.config ? configIdentity(role.role, flags.config) : undefined;
  if (fromConfig && flags.agent && flags.agent !== fromConfig) throw new UsageError(`--agent ${flags.agent}: the --config file's identity is ${fromConfig}`);
  const agent = flags.agent ?? fromConfig;
  if (!agent) throw new UsageError("--wait-report: without --config, --agent NAME says which agent to wait for");
  let ca: Buffer | undefined;
  if (flags.ca) {
    try {
      ca = readFileSync(flags.ca);
    } catch (err) {
      throw new UsageError(`--ca: cannot read ${flags.ca}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
  return new ReportWatch({
    urls,
    token,
    watcher: name,
    ca,
    role: role.role,
    agent,
    timeoutMs: seconds * 1000,
    logger: createLogger("install", { level: process.env.PIFLEET_LOG_LEVEL ?? "error" }),
  });
}
