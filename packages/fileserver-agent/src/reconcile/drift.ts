import type { Step } from "./steps.js";

export type DriftKind = "interface" | "address" | "export" | "foreign_export" | "root" | "content" | "persist" | "dhcp" | "tftp" | "identity" | "agent";

/** One way the fileserver differs from the plan. Entries with no action are left for a person. */
export interface DriftEntry {
  kind: DriftKind;
  subject: string;
  detail: string;
}

/** One change, with the exact steps that make it. */
export interface Action {
  kind: DriftKind | "nfs";
  subject: string;
  why: string;
  steps: Step[];
}

export interface Diff {
  drift: DriftEntry[];
  actions: Action[];
}
