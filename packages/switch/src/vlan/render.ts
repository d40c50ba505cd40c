import { compactPorts } from "@pifleet/core";
import type { SwitchAction } from "./apply.js";
import type { SwitchDiff, SwitchDrift } from "./diff.js";

const ports = (p: number[]): string => compactPorts(p) || "none";

export function renderDrift(d: SwitchDrift): string {
  switch (d.kind) {
    case "missing-vlan":
      return `+ vlan ${d.vlan} "${d.want.name}" is missing (wants untagged ${ports(d.want.untagged)}, egress ${ports(d.want.egress)})`;
    case "inactive-vlan":
      return `~ vlan ${d.vlan} is ${d.status}, wants active`;
    case "vlan-name":
      return `~ vlan ${d.vlan} is named "${d.have}", wants "${d.want}"`;
    case "vlan-ports": {
      const parts: string[] = [];
      if (compactPorts(d.have.egress) !== compactPorts(d.want.egress)) parts.push(`egress ${ports(d.have.egress)} → ${ports(d.want.egress)}`);
      if (compactPorts(d.have.untagged) !== compactPorts(d.want.untagged)) parts.push(`untagged ${ports(d.have.untagged)} → ${ports(d.want.untagged)}`);
      return `~ vlan ${d.vlan} ports: ${parts.join("; ")}`;
    }
    case "pvid":
      return `~ port ${d.port} pvid ${d.have ?? "unset"} → ${d.want}`;
  }
}

/** `pifleet switch diff` output: drift first, then foreign VLANs (reported, never touched). */
export function renderDiff(diff: SwitchDiff): string {
  const lines = diff.drift.map(renderDrift);
  if (diff.drift.length === 0) lines.push("switch matches the plan");
  for (const f of diff.foreign) {
    const carried = f.plannedPorts.length ? `; carries planned port${f.plannedPorts.length > 1 ? "s" : ""} ${ports(f.plannedPorts)}` : "";
    lines.push(`? vlan ${f.vlan} "${f.name}" is not in the plan (left alone): egress ${ports(f.egress)}, untagged ${ports(f.untagged)}${carried}`);
  }
  return `${lines.join("\n")}\n`;
}

export function renderAction(a: SwitchAction): string {
  switch (a.kind) {
    case "create-vlan":
      return `create vlan ${a.vlan}`;
    case "activate-vlan":
      return `activate vlan ${a.vlan}`;
    case "configure-vlan":
      return `set vlan ${a.vlan} name "${a.name}", egress ${ports(a.egress)}, untagged ${ports(a.untagged)}`;
    case "set-pvid":
      return `set port ${a.port} pvid ${a.vlan}`;
  }
}
