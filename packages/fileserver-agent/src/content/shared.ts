import path from "node:path";
import { SHARED_SITE_MOUNT, SHARED_SITE_UNIT, renderSharedContentFiles, type FileserverView, type PiPlan } from "@pifleet/core";
import type { Step } from "../reconcile/steps.js";
import { PathError } from "../safety.js";
import { SHARED_HTML_TARGET, WWW, type ContentObservation } from "./observe.js";
import { linkHtmlSteps } from "./steps.js";

/**
 * Steps that make a root being built (`.building`, which no Pi has mounted) serve the shared
 * content: the mount unit and Apache's wait for it, the mount point, and `var/www/html` as a
 * link to the mount's `current`. They run only while a root is built, never on a root a Pi is
 * running from: with `shared` content no write ever lands in a root its Pi can change meanwhile.
 */
export function sharedContentSteps(view: FileserverView, pi: PiPlan, root: string, golden: ContentObservation): Step[] {
  if (golden.problem) throw new PathError(path.join(root, WWW), golden.problem);
  const steps: Step[] = [];
  for (const [rel, content] of renderSharedContentFiles(view, pi)) {
    const file = path.join(root, rel);
    steps.push({ op: "mkdir", path: path.dirname(file), within: root, parents: true });
    steps.push({ op: "write", path: file, content, within: root });
  }
  const wants = path.join(root, "etc/systemd/system/remote-fs.target.wants");
  steps.push({ op: "mkdir", path: wants, within: root, parents: true });
  steps.push({ op: "symlink", target: `/etc/systemd/system/${SHARED_SITE_UNIT}`, path: path.join(wants, SHARED_SITE_UNIT), within: root });
  steps.push({ op: "mkdir", path: path.join(root, SHARED_SITE_MOUNT.slice(1)), within: root, parents: true });
  if (!golden.wwwExists) steps.push({ op: "mkdir", path: path.join(root, WWW), within: root, parents: true });
  // The golden image's own page is kept beside the link, as in copy mode.
  if (golden.html !== "shared") steps.push(...linkHtmlSteps(root, golden, SHARED_HTML_TARGET));
  return steps;
}
