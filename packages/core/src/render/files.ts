import type { FileserverView, PiPlan, Plan, ShelfPlan } from "../plan/types.js";
import { fileserverView } from "../plan/plan.js";
import { netbootedPis, renderDnsmasqConf, renderDnsmasqHosts, renderTftpFiles } from "./netboot.js";
import { renderPiAgentConfig } from "./pi-agent.js";

/** `cmdline.txt` for a Pi's SD card: one line, as the Pi firmware expects. */
export function renderCmdline(pi: PiPlan): string {
  return `${pi.cmdline}\n`;
}

/** The fileserver's ifupdown stanzas, in the seed's form. */
export function renderFileserverInterfaces(view: FileserverView): string {
  return view.fileserver.interfaces
    .map((i) => `auto ${i.name}\niface ${i.name} inet static\n\taddress ${i.address}\n\tnetmask ${i.netmask}\n`)
    .join("\n");
}

/** A systemd-networkd .netdev/.network pair per VLAN, for fileservers without ifupdown. */
export function renderFileserverNetworkd(view: FileserverView): Map<string, string> {
  const files = new Map<string, string>();
  const interfaces = view.fileserver.interfaces;
  for (const trunk of view.fileserver.trunkInterfaces) {
    files.set(
      `10-pifleet-${trunk}.network`,
      `[Match]\nName=${trunk}\n\n[Network]\n${interfaces.filter((i) => i.parent === trunk).map((i) => `VLAN=${i.name}`).join("\n")}\n`,
    );
  }
  for (const i of interfaces) {
    files.set(`20-pifleet-${i.name}.netdev`, `[NetDev]\nName=${i.name}\nKind=vlan\n\n[VLAN]\nId=${i.vlan}\n`);
    files.set(`20-pifleet-${i.name}.network`, `[Match]\nName=${i.name}\n\n[Network]\nAddress=${i.address}/${i.prefixLength}\n`);
  }
  return files;
}

/** A Pi's public interface stanza, as in the seed (tabs included). */
export function renderPiPublicInterface(pi: PiPlan): string {
  return (
    `auto ${pi.publicInterface}\n` +
    `iface ${pi.publicInterface} inet6 static\n` +
    `\taddress\t${pi.ipv6}\n` +
    `\tnetmask ${pi.ipv6PrefixLength}\n` +
    `\tgateway\t${pi.ipv6Gateway}\n`
  );
}

export function renderExports(view: FileserverView): string {
  const roots = `# Written by pifleet for fleet ${view.fleet}: one root per Pi, exported to that Pi only.\n${view.pis.map((p) => p.exportLine).join("\n")}\n`;
  if (view.fileserver.content !== "shared") return roots;
  // Read-only and root-squashed: a Pi, even as root, can read the site but never change it.
  const shared = view.pis.map((p) => `${view.fileserver.contentExport} ${p.piAddress}(${CONTENT_EXPORT_OPTIONS})`);
  return `${roots}# The site's content, one copy read-only for every Pi.\n${shared.join("\n")}\n`;
}

export const CONTENT_EXPORT_OPTIONS = "ro,sync,no_subtree_check,root_squash";
/** Where a Pi mounts the shared content; its Apache serves `current` inside it. */
export const SHARED_SITE_MOUNT = "/srv/pifleet/site";
export const SHARED_SITE_UNIT = "srv-pifleet-site.mount";

/**
 * The files a Pi's root needs to serve the shared content, by path inside the root: a mount
 * unit for the read-only export (attributes revalidated every 2 s, so a switch of `current` is
 * seen within seconds; no locks on a read-only mount), wanted by remote-fs.target, and Apache
 * held until it is mounted. `var/www/html` itself becomes a symlink to `<mount>/current`.
 */
export function renderSharedContentFiles(view: FileserverView, pi: PiPlan): Map<string, string> {
  const unit =
    `# Written by pifleet for fleet ${view.fleet}: the site, shared read-only by every Pi.\n` +
    `[Unit]\nDescription=pifleet site content from ${pi.fileserverAddress}\n\n` +
    `[Mount]\nWhat=${pi.fileserverAddress}:${view.fileserver.contentExport}\nWhere=${SHARED_SITE_MOUNT}\nType=nfs\nOptions=ro,vers=3,nolock,actimeo=2\n\n` +
    `[Install]\nWantedBy=remote-fs.target\n`;
  return new Map([
    [`etc/systemd/system/${SHARED_SITE_UNIT}`, unit],
    ["etc/systemd/system/apache2.service.d/pifleet-site.conf", `[Unit]\nRequiresMountsFor=${SHARED_SITE_MOUNT}\n`],
  ]);
}

/** The switch's VLAN table: one line per VLAN, then each port's native VLAN. */
export function renderSwitchTable(shelf: ShelfPlan): string {
  const sw = shelf.switch;
  const lines = [`# switch ${sw.name} (shelf ${shelf.name}): trunk port ${sw.trunkPort}`, "vlan  name                      untagged  tagged"];
  for (const v of sw.vlans) {
    lines.push(`${String(v.vlan).padEnd(5)} ${v.name.padEnd(25)} ${(compactPorts(v.untagged) || "-").padEnd(9)} ${compactPorts(v.tagged) || "-"}`);
  }
  lines.push("", "port  pvid");
  for (const p of sw.pvids) lines.push(`${String(p.port).padEnd(5)} ${p.vlan}`);
  return `${lines.join("\n")}\n`;
}

/** `1,2,3,5` → `1-3,5`. */
export function compactPorts(ports: number[]): string {
  const sorted = [...ports].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    out.push(j > i ? `${sorted[i]}-${sorted[j]}` : String(sorted[i]));
    i = j + 1;
  }
  return out.join(",");
}

export function renderHaproxyBackend(plan: Plan, healthCheck = "GET /"): string {
  const lines = [`backend ${plan.loadBalancer.backend}`, "\tbalance roundrobin", `\toption httpchk ${healthCheck}`];
  for (const s of plan.loadBalancer.servers) lines.push(`\tserver ${s.name} [${s.address}]:${s.port} check`);
  return `${lines.join("\n")}\n`;
}

/**
 * Every file a person would install, by relative path. A one-shelf, one-fileserver fleet keeps
 * the short layout (`fileserver/…`, `switch/vlans.txt`); otherwise each fileserver and shelf gets
 * a folder of its own name.
 */
export function renderPlanFiles(plan: Plan): Map<string, string> {
  const files = new Map<string, string>();
  for (const pi of plan.pis) {
    files.set(`pis/${pi.name}/cmdline.txt`, renderCmdline(pi));
    files.set(`pis/${pi.name}/interfaces.d/${pi.publicInterface}`, renderPiPublicInterface(pi));
    for (const [name, text] of renderTftpFiles(pi)) files.set(`pis/${pi.name}/tftp/${name}`, text);
    // The config only: each Pi's secret stays on the fileserver (piAgent.secrets), never in the plan's files.
    if (plan.piAgent) files.set(`pis/${pi.name}/pi-agent.yaml`, renderPiAgentConfig(plan.piAgent, pi, plan.fleet));
  }
  const single = plan.fileservers.length === 1 && plan.shelves.length === 1;
  for (const fs of plan.fileservers) {
    const view = fileserverView(plan, fs.name);
    const dir = single ? "fileserver" : `fileservers/${fs.name}`;
    files.set(`${dir}/interfaces.d/pifleet`, renderFileserverInterfaces(view));
    for (const [name, text] of renderFileserverNetworkd(view)) files.set(`${dir}/networkd/${name}`, text);
    files.set(`${dir}/exports.d/pifleet.exports`, renderExports(view));
    if (netbootedPis(view).length > 0) {
      files.set(`${dir}/dnsmasq.d/pifleet.conf`, renderDnsmasqConf(view));
      files.set(`${dir}/pifleet/dnsmasq.hosts`, renderDnsmasqHosts(view));
    }
  }
  for (const shelf of plan.shelves) files.set(single ? "switch/vlans.txt" : `shelves/${shelf.name}/vlans.txt`, renderSwitchTable(shelf));
  files.set("haproxy/backend.cfg", renderHaproxyBackend(plan));
  files.set("plan.json", `${JSON.stringify(plan, null, 2)}\n`);
  return files;
}
