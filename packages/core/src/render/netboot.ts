import path from "node:path";
import type { FileserverView, PiPlan } from "../plan/types.js";

/**
 * The netboot chain of one fileserver, rendered from the plan: dnsmasq's configuration (DHCP on
 * each netbooted Pi's private VLAN only, TFTP from a root per VLAN) and, per Pi, the files of its
 * TFTP folder that pifleet writes itself (config.txt and cmdline.txt, or an iPXE script). The
 * kernel, device trees and initramfs are the Pi's root's own and are copied by the agent.
 */

/** Where the two dnsmasq files go on a fileserver (the agent takes them below its root prefix). */
export interface DnsmasqPaths {
  /** The conf-dir file: interfaces, ranges, options, TFTP roots. dnsmasq reads it only at start. */
  confFile: string;
  /** The reservations, one MAC per line: dnsmasq re-reads it on SIGHUP, keeping every lease. */
  hostsFile: string;
}

export const DEFAULT_DNSMASQ_PATHS: DnsmasqPaths = {
  confFile: "/etc/dnsmasq.d/pifleet.conf",
  hostsFile: "/etc/pifleet/dnsmasq.hosts",
};

/** dnsmasq tag of a Pi's VLAN: set by its dhcp-range, matched by its options. */
export function dnsmasqTag(pi: PiPlan): string {
  return `pifleet-${pi.name}`;
}

/**
 * Requests that arrive on an interface without a root of its own see this empty folder, never
 * dnsmasq's working directory.
 */
export function tftpFallbackRoot(view: FileserverView): string {
  return path.posix.join(view.fileserver.tftpRoot, ".none");
}

export function netbootedPis(view: FileserverView): PiPlan[] {
  return view.pis.filter((p) => p.netboot !== undefined);
}

/**
 * The conf-dir file. Every line is about a netbooted Pi's own VLAN interface: dnsmasq listens on
 * nothing else (no `interface=` for the trunk's untagged side or the public VLAN, and the trunks
 * are excluded outright), serves no DNS (`port=0`), and gives out no address it was not told to
 * (`static` ranges: only the reserved MAC gets the Pi's /30 address, and only on that VLAN).
 */
export function renderDnsmasqConf(view: FileserverView, paths: DnsmasqPaths = DEFAULT_DNSMASQ_PATHS): string {
  const pis = netbootedPis(view);
  const lines = [
    `# Written by pifleet for fleet ${view.fleet}, fileserver ${view.fileserver.name}: DHCP and TFTP for`,
    "# netbooted Pis, each on its own private VLAN. dnsmasq reads this file only when it starts;",
    `# the reservations are in ${paths.hostsFile}, which SIGHUP re-reads without dropping leases.`,
    "port=0",
    "bind-dynamic",
  ];
  for (const trunk of view.fileserver.trunkInterfaces) lines.push(`except-interface=${trunk}`);
  lines.push(
    "dhcp-authoritative",
    `dhcp-hostsfile=${paths.hostsFile}`,
    "enable-tftp",
    // A missing folder of one Pi must not stop DHCP for all the others.
    "tftp-no-fail",
    `tftp-root=${tftpFallbackRoot(view)}`,
  );
  for (const pi of pis) {
    const nb = pi.netboot!;
    const tag = dnsmasqTag(pi);
    lines.push(
      "",
      `# ${pi.name} (shelf ${pi.shelf}, port ${pi.port}): VLAN ${pi.vlan}, ${pi.piAddress}/30, TFTP ${nb.tftpPrefix}/`,
      `interface=${pi.fileserverInterface}`,
      `dhcp-range=set:${tag},${pi.network},static,${pi.netmask},12h`,
      // An empty router option: the private VLAN reaches only the fileserver, never a default route.
      `dhcp-option=tag:${tag},3`,
      `dhcp-option=tag:${tag},6`,
      `dhcp-boot=tag:${tag},${nb.bootFile},,${pi.fileserverAddress}`,
      `tftp-root=${nb.tftpInterfaceRoot},${pi.fileserverInterface}`,
    );
    // The Pi boot ROM accepts an offer only with this PXE vendor option; a PC's PXE ROM would read
    // the same menu entry as "boot locally", so it is sent to rpi-method Pis alone.
    if (nb.method === "rpi") lines.push(`pxe-service=tag:${tag},0,"Raspberry Pi Boot"`);
  }
  return `${lines.join("\n")}\n`;
}

/** The reservations: `<mac>,<address>,<name>`, the dhcp-host syntax dnsmasq's hostsfile takes. */
export function renderDnsmasqHosts(view: FileserverView): string {
  const lines = [`# Written by pifleet for fleet ${view.fleet}: one reservation per netbooted Pi.`];
  for (const pi of netbootedPis(view)) lines.push(`${pi.netboot!.mac},${pi.piAddress},${pi.name}`);
  return `${lines.join("\n")}\n`;
}

/** `cmdline.txt` in the Pi's TFTP folder: the plan's cmdline, NFS root over the private VLAN. */
export function renderNetbootCmdline(pi: PiPlan): string {
  return `${pi.cmdline}\n`;
}

export interface ConfigTxtOptions {
  /** The initramfs file found in the Pi's root, loaded after the kernel when present. */
  initramfs?: string;
}

/** `config.txt` in a `rpi` Pi's TFTP folder. The firmware picks kernel*.img for the board itself. */
export function renderNetbootConfigTxt(pi: PiPlan, opts: ConfigTxtOptions = {}): string {
  const nb = pi.netboot!;
  const lines = [
    `# Written by pifleet: ${pi.name} netboots over ${pi.fileserverInterface} from ${pi.fileserverAddress} (TFTP ${nb.tftpPrefix}/).`,
    "# The kernel, device trees and initramfs beside this file are copied from the Pi's own root.",
    "[all]",
    "cmdline=cmdline.txt",
  ];
  if (opts.initramfs) lines.push(`initramfs ${opts.initramfs} followkernel`);
  return `${lines.join("\n")}\n`;
}

export interface IpxeOptions {
  kernel: string;
  initramfs?: string;
}

/** The `ipxe` method's script: paths are relative to the script, i.e. inside the Pi's folder. */
export function renderIpxeScript(pi: PiPlan, opts: IpxeOptions = { kernel: "vmlinuz", initramfs: "initrd.img" }): string {
  const lines = ["#!ipxe", `# pifleet: ${pi.name} over ${pi.fileserverInterface}`, `kernel ${opts.kernel} ${pi.cmdline}`];
  if (opts.initramfs) lines.push(`initrd ${opts.initramfs}`);
  lines.push("boot");
  return `${lines.join("\n")}\n`;
}

/** The files pifleet writes into a Pi's TFTP folder (relative names), before the copied boot files. */
export function renderTftpFiles(pi: PiPlan, found: { kernel?: string; initramfs?: string } = {}): Map<string, string> {
  const files = new Map<string, string>();
  const nb = pi.netboot;
  if (!nb) return files;
  files.set("cmdline.txt", renderNetbootCmdline(pi));
  if (nb.method === "rpi") files.set("config.txt", renderNetbootConfigTxt(pi, found.initramfs ? { initramfs: found.initramfs } : {}));
  else files.set("boot.ipxe", renderIpxeScript(pi, { kernel: found.kernel ?? "vmlinuz", ...(found.initramfs ? { initramfs: found.initramfs } : {}) }));
  return files;
}
