import type { ChildProcess } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { stringify } from "yaml";
import type { Logger } from "@pifleet/core";
import { startPiSite, type PiSite } from "./pi-site.js";
import { daemonEntry, ProcessSet } from "./processes.js";

/** File every golden root carries; a Pi whose root lost it does not boot (see `corrupt-root`). */
export const ROOT_MARKER = "etc/pifleet-release";

export type PiFault = "kill" | "hang-apache" | "slow" | "corrupt-root" | "heal";
export const PI_FAULTS: PiFault[] = ["kill", "hang-apache", "slow", "corrupt-root", "heal"];

export interface EmulatedPiOptions {
  name: string;
  /** The Pi's root filesystem on the (sandbox) fileserver: what it would mount over NFS. */
  root: string;
  sitePort: number;
  coordinatorUrl: string;
  /** Further coordinators (high availability), tried in turn. */
  coordinatorUrls?: string[];
  secretFile: string;
  dir: string;
  bootDelayMs: number;
  processes: ProcessSet;
  logger: Logger;
}

/**
 * One Pi of the demo shelf: its web server and a real Pi agent process. Power comes from the
 * switch emulator's port: off kills both at once (as a power cut does), on boots them after a
 * delay — but only from an intact root filesystem, as a real Pi only boots from a good NFS root.
 */
export class EmulatedPi {
  private site: PiSite | undefined;
  private agent: ChildProcess | undefined;
  private bootTimer: NodeJS.Timeout | undefined;
  powered = false;
  /** A crashed Pi stays dead until its power is cycled. */
  private crashed = false;

  constructor(private readonly o: EmulatedPiOptions) {}

  get name(): string {
    return this.o.name;
  }

  /** The running agent process's id: a new one after every boot. */
  get agentPid(): number | undefined {
    return this.agent && this.agent.exitCode === null && this.agent.signalCode === null ? this.agent.pid : undefined;
  }

  get sitePort(): number {
    return this.o.sitePort;
  }

  state(): { name: string; powered: boolean; running: boolean; fault: string } {
    return {
      name: this.o.name,
      powered: this.powered,
      running: Boolean(this.agent && this.agent.exitCode === null && this.agent.signalCode === null),
      fault: this.crashed ? "crashed" : (this.site?.fault ?? "none"),
    };
  }

  async power(on: boolean): Promise<void> {
    if (on === this.powered) return;
    this.powered = on;
    clearTimeout(this.bootTimer);
    if (!on) {
      await this.halt();
      return;
    }
    this.bootTimer = setTimeout(() => void this.boot(), this.o.bootDelayMs);
  }

  private async boot(): Promise<void> {
    if (!this.powered) return;
    this.crashed = false;
    if (!existsSync(path.join(this.o.root, ROOT_MARKER))) {
      this.o.logger.warn({ pi: this.o.name, root: this.o.root }, "root filesystem is damaged: the Pi does not boot");
      return;
    }
    this.site = await startPiSite({
      name: this.o.name,
      host: "127.0.0.1",
      port: this.o.sitePort,
      content: () => this.content(),
    });
    this.startAgent();
  }

  private content(): string {
    const index = path.join(this.o.root, "var/www/html/index.html");
    try {
      return readFileSync(index, "utf8");
    } catch {
      return `<!doctype html><title>${this.o.name}</title><p>${this.o.name} has no site content yet.</p>\n`;
    }
  }

  private startAgent(): void {
    const config = path.join(this.o.dir, `${this.o.name}.agent.yaml`);
    writeFileSync(
      config,
      stringify({
        coordinator: { url: this.o.coordinatorUrl, ...(this.o.coordinatorUrls ? { urls: this.o.coordinatorUrls } : {}) },
        identity: this.o.name,
        secretFile: this.o.secretFile,
        intervalMs: 1000,
        collectors: {
          rootfs: { path: this.o.root },
          apache: { url: `http://127.0.0.1:${this.o.sitePort}/server-status?auto` },
          probe: { url: `http://127.0.0.1:${this.o.sitePort}/` },
        },
        // The demo Pi has no systemd: "restarting Apache" clears its web server's fault.
        commands: { restartApache: ["/bin/true"], reboot: ["/bin/true"] },
      }),
    );
    this.agent = this.o.processes.start(`agent-${this.o.name}`, process.execPath, [daemonEntry("@pifleet/pi-agent"), "--config", config], {
      logFile: path.join(this.o.dir, "logs", `${this.o.name}.log`),
    });
  }

  private async halt(): Promise<void> {
    if (this.agent) this.o.processes.kill(this.agent, "SIGKILL");
    this.agent = undefined;
    const site = this.site;
    this.site = undefined;
    await site?.close();
  }

  async fault(kind: PiFault): Promise<string> {
    switch (kind) {
      case "kill":
        if (this.agent) this.o.processes.kill(this.agent, "SIGKILL");
        this.crashed = true;
        return `${this.o.name}: agent killed; the Pi stays dead until its port is power-cycled`;
      case "hang-apache":
        if (!this.site) return `${this.o.name} is not running`;
        this.site.fault = "hang";
        return `${this.o.name}: Apache hangs (accepts, never answers) until the Pi is power-cycled`;
      case "slow":
        if (!this.site) return `${this.o.name} is not running`;
        this.site.fault = "slow";
        return `${this.o.name}: every response now takes 2.5 s`;
      case "corrupt-root": {
        rmSync(path.join(this.o.root, ROOT_MARKER), { force: true });
        await this.halt();
        this.crashed = true;
        return `${this.o.name}: root filesystem damaged and the Pi crashed; power-cycling will not help, a rebuild will`;
      }
      case "heal":
        if (this.site) this.site.fault = "none";
        return `${this.o.name}: web server faults cleared`;
    }
  }
}
