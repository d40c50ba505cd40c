import type { PiPlan, Plan } from "../plan/types.js";

/** `cmdline.txt` for a Pi's SD card: one line, as the Pi firmware expects. */
export function renderCmdline(pi: PiPlan): string {
  return `${pi.cmdline}\n`;
}

/** The fileserver's ifupdown stanzas, in the seed's form. */
export function renderFileserverInterfaces(plan: Plan): string {
  return plan.fileserver.interfaces
    .map((i) => `auto ${i.name}\niface ${i.name} inet static\n\taddress ${i.address}\n\tnetmask ${i.netmask}\n`)
    .join("\n");
}

/** A systemd-networkd .netdev/.network pair per VLAN, for fileservers without ifupdown. */
export function renderFileserverNetworkd(plan: Plan): Map<string, string> {
  const files = new Map<string, string>();
  const trunk = plan.fileserver.trunkInterface;
  files.set(
    `10-pifleet-${trunk}.network`,
    `[Match]\nName=${trunk}\n\n[Network]\n${plan.fileserver.interfaces.map((i) => `VLAN=${i.name}`).join("\n")}\n`,
  );
  for (const i of plan.fileserver.interfaces) {
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

export function renderExports(plan: Plan): string {
  return `# Written by pifleet for fleet ${plan.fleet}: one root per Pi, exported to that Pi only.\n${plan.pis.map((p) => p.exportLine).join("\n")}\n`;
}

/** The switch's VLAN table: one line per VLAN, then each port's native VLAN. */
export function renderSwitchTable(plan: Plan): string {
  const lines = [`# switch ${plan.switch.name}: trunk port ${plan.switch.trunkPort}`, "vlan  name                      untagged  tagged"];
  for (const v of plan.switch.vlans) {
    lines.push(`${String(v.vlan).padEnd(5)} ${v.name.padEnd(25)} ${(compactPorts(v.untagged) || "-").padEnd(9)} ${compactPorts(v.tagged) || "-"}`);
  }
  lines.push("", "port  pvid");
  for (const p of plan.switch.pvids) lines.push(`${String(p.port).padEnd(5)} ${p.vlan}`);
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

/** Every file a person would install, by relative path. */
export function renderPlanFiles(plan: Plan): Map<string, string> {
  const files = new Map<string, string>();
  for (const pi of plan.pis) {
    files.set(`pis/${pi.name}/cmdline.txt`, renderCmdline(pi));
    files.set(`pis/${pi.name}/interfaces.d/${pi.publicInterface}`, renderPiPublicInterface(pi));
  }
  files.set("fileserver/interfaces.d/pifleet", renderFileserverInterfaces(plan));
  for (const [name, text] of renderFileserverNetworkd(plan)) files.set(`fileserver/networkd/${name}`, text);
  files.set("fileserver/exports.d/pifleet.exports", renderExports(plan));
  files.set("switch/vlans.txt", renderSwitchTable(plan));
  files.set("haproxy/backend.cfg", renderHaproxyBackend(plan));
  files.set("plan.json", `${JSON.stringify(plan, null, 2)}\n`);
  return files;
}
