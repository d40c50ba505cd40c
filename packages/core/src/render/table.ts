import type { Plan } from "../plan/types.js";
import { compactPorts } from "./files.js";
import { shelfOf } from "../plan/plan.js";

/** A fixed-width text table; columns sized to their widest cell. */
export function textTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join("  ");
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

/** The human-readable plan: a summary per shelf, then a table per Pi (of one shelf, or of all). */
export function renderPlanTable(plan: Plan, shelfName?: string): string {
  const shelves = shelfName === undefined ? plan.shelves : [shelfOf(plan, shelfName)];
  const pis = shelfName === undefined ? plan.pis : plan.pis.filter((p) => p.shelf === shelfName);
  const netbooted = pis.filter((p) => p.netboot).length;
  const header = [
    `fleet ${plan.fleet}: ${plan.pis.length} Pis on ${plan.shelves.length} shelf${plan.shelves.length === 1 ? "" : "s"}${netbooted ? `, ${netbooted} netbooted` : ""}`,
  ];
  for (const s of shelves) {
    const fs = plan.fileservers.find((f) => f.name === s.fileserver)!;
    const pub = s.switch.vlans.find((v) => v.vlan === plan.publicVlan);
    header.push(
      `shelf ${s.name}: ${s.pis.length} Pis; private range ${s.privateRange.cidr} (room for ${s.privateRange.capacity} Pis, one /30 each)`,
      `  fileserver ${fs.name}: trunk ${s.trunkInterface} on switch ${s.switch.name} port ${s.switch.trunkPort}, exports under ${fs.exportRoot}`,
      `  public VLAN ${plan.publicVlan}: tagged on ports ${compactPorts(pub?.tagged ?? [])}${s.switch.uplinkPorts.length ? ` (uplinks ${compactPorts(s.switch.uplinkPorts)})` : " (no uplink port: the public VLAN reaches no router)"}`,
    );
  }
  header.push(`load balancer ${plan.loadBalancer.driver}: backend ${plan.loadBalancer.backend}, ${plan.loadBalancer.servers.length} servers`, "");
  const multi = plan.shelves.length > 1;
  const table = textTable(
    [...(multi ? ["shelf"] : []), "pi", "port", "vlan", "fileserver", "pi address", "network/mask", "nfs root", "public ipv6", "boot"],
    pis.map((p) => [
      ...(multi ? [p.shelf] : []),
      p.name,
      String(p.port),
      `${p.vlan} (${p.fileserverInterface})`,
      p.fileserverAddress,
      p.piAddress,
      `${p.network}/${p.netmask}`,
      p.nfsRoot,
      p.ipv6,
      p.netboot ? `netboot ${p.netboot.method} ${p.netboot.mac} tftp ${p.netboot.tftpPrefix}/` : "sd",
    ]),
  );
  return `${header.join("\n")}${table}\n`;
}
