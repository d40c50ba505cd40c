import path from "node:path";
import { SHARED_SITE_MOUNT, SHARED_SITE_UNIT, renderSharedContentFiles, type FileserverView, type PiPlan } from "@pifleet/core";
import type { Step } from "../reconcile/steps.js";
import { PathError } from "../safety.js";
import { HTML, HTML_TMP, ORIGINAL_HTML, SHARED_HTML_TARGET, WWW, type ContentObservation } from "./observe.js";

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
  const www = path.join(root, WWW);
  if (!golden.wwwExists) steps.push({ op: "mkdir", path: www, within: root, parents: true });
  if (golden.html === "directory" || golden.html === "foreign-symlink" || golden.html === "symlink") {
    if (golden.originalSaved) throw new PathError(path.join(www, HTML), `is not pifleet's and ${ORIGINAL_HTML} is taken: move one of them away in the golden image`);
    // The golden image's own page is kept beside the link, as in copy mode.
    steps.push({ op: "rename", from: path.join(www, HTML), to: path.join(www, ORIGINAL_HTML), within: root });
  } else if (golden.html === "other") {
    throw new PathError(path.join(www, HTML), "is neither a directory nor a symlink in the golden image");
  }
  if (golden.html !== "shared") {
    steps.push({ op: "symlink", target: SHARED_HTML_TARGET, path: path.join(www, HTML_TMP), within: root });
    steps.push({ op: "rename", from: path.join(www, HTML_TMP), to: path.join(www, HTML), within: root });
  }
  return steps;
}
