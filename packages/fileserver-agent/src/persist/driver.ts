import type { FileserverView } from "@pifleet/core";
import type { Layout } from "../layout.js";
import type { DriftEntry } from "../reconcile/drift.js";

/**
 * Makes the VLAN interfaces come back after a reboot. The live state is set with `ip`; a
 * driver only owns files, so switching drivers is "write mine, remove the other's".
 */
export interface PersistDriver {
  readonly name: "ifupdown" | "networkd";
  /** Host path → content of every file this driver wants for the plan. */
  desired(plan: FileserverView, layout: Layout): Map<string, string>;
  /** The directory each desired file must stay inside. */
  within(layout: Layout): string;
  /** Existing files this driver wrote (by pifleet's naming), whatever the plan. */
  owned(layout: Layout): Promise<string[]>;
  /** Interface names its existing files configure: evidence that pifleet created them. */
  configured(layout: Layout): Promise<string[]>;
  /** Problems outside pifleet's files that would stop them from working. */
  check(plan: FileserverView, layout: Layout): Promise<DriftEntry[]>;
}
