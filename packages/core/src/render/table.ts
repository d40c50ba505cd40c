import type { Plan } from "../plan/types.js";
import { compactPorts } from "./files.js";

/** A fixed-width text table; columns sized to their widest cell. */
export function textTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join("  ");
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

/** The human-readable plan: a summary then a table per Pi. */
export function renderPlanTable(plan: Plan): string {
  const pub = plan.switch.vlans.find((v) => v.vlan === plan.publicVlan);
  const header = [
    `fleet ${plan.fleet}: ${plan.pis.length} Pis`,
    `private range ${plan.privateRange.cidr}: room for ${plan.privateRange.capacity} Pis (one /30 each)`,
    `fileserver ${plan.fileserver.name}: trunk ${plan.fileserver.trunkInterface} on switch port ${plan.switch.trunkPort}, exports under ${plan.fileserver.exportRoot}`,
    `public VLAN ${plan.publicVlan}: tagged on ports ${compactPorts(pub?.tagged ?? [])}`,
    `load balancer ${plan.loadBalancer.driver}: backend ${plan.loadBalancer.backend}, ${plan.loadBalancer.servers.length} servers`,
    "",
  ];
  const table = textTable(
    ["pi", "port", "vlan", "fileserver", "pi address", "network/mask", "nfs root", "public ipv6"],
    plan.pis.map((p) => [
      p.name,
      String(p.port),
      `${p.vlan} (${p.fileserverInterface})`,
      p.fileserverAddress,
      p.piAddress,
      `${p.network}/${p.netmask}`,
      p.nfsRoot,
      p.ipv6,
    ]),
  );
  return `${header.join("\n")}${table}\n`;
}
