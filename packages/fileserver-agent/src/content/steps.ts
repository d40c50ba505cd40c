import path from "node:path";
import type { Step } from "../reconcile/steps.js";
import { PathError } from "../safety.js";
import { CONTENT_PREFIX, HTML, HTML_TMP, ORIGINAL_HTML, WWW, type ContentObservation, type StoreObservation } from "./observe.js";

/**
 * Puts version `version` (a complete tree at `source`) into a root and switches `var/www/html`
 * to it with one rename of a fresh symlink: Apache sees the old site or the new one, never a
 * mix. The previous version stays until the next switch, so a switch back is instant.
 * `stage` copies (slow), `switch` flips (instant): a fleet-wide sync stages every root first so
 * the switches land within moments of each other. Both are empty when the root already serves
 * `version`.
 */
export function contentPhases(root: string, obs: ContentObservation, version: string, source: string): { stage: Step[]; switch: Step[] } {
  if (obs.problem) throw new PathError(path.join(root, WWW), obs.problem);
  if (obs.version === version) return { stage: [], switch: [] };
  const www = path.join(root, WWW);
  const dir = (v: string) => path.join(www, `${CONTENT_PREFIX}${v}`);
  const steps: Step[] = [];
  if (!obs.wwwExists) steps.push({ op: "mkdir", path: www, within: root, parents: true });
  for (const l of obs.leftovers) steps.push({ op: "remove", path: path.join(www, l), within: root });
  if (!obs.versions.includes(version)) {
    const partial = `${dir(version)}.partial`;
    steps.push({ op: "copy", from: source, to: partial, within: root });
    steps.push({ op: "rename", from: partial, to: dir(version), within: root });
  }
  const stage = steps.splice(0);
  steps.push(...linkHtmlSteps(root, obs, `${CONTENT_PREFIX}${version}`));
  const keep = new Set([version, obs.version]);
  for (const v of obs.versions) if (!keep.has(v)) steps.push({ op: "remove", path: dir(v), within: root });
  return { stage, switch: steps };
}

/**
 * `var/www/html` becomes a link to `target` with one rename of a fresh symlink. The first time,
 * the golden image's own html (a directory, or someone's symlink) is kept aside, not deleted.
 */
export function linkHtmlSteps(root: string, obs: ContentObservation, target: string): Step[] {
  const www = path.join(root, WWW);
  const steps: Step[] = [];
  if (obs.html === "directory" || obs.html === "foreign-symlink") {
    if (obs.originalSaved) throw new PathError(path.join(www, HTML), `is not pifleet's and ${ORIGINAL_HTML} is taken: move one of them away`);
    steps.push({ op: "rename", from: path.join(www, HTML), to: path.join(www, ORIGINAL_HTML), within: root });
  } else if (obs.html === "other") {
    throw new PathError(path.join(www, HTML), "is neither a directory nor pifleet's symlink");
  }
  steps.push({ op: "symlink", target, path: path.join(www, HTML_TMP), within: root });
  steps.push({ op: "rename", from: path.join(www, HTML_TMP), to: path.join(www, HTML), within: root });
  return steps;
}

/** Both phases in one list, for a single root. */
export function contentSteps(root: string, obs: ContentObservation, version: string, source: string): Step[] {
  const p = contentPhases(root, obs, version, source);
  return [...p.stage, ...p.switch];
}

/**
 * Steps that make `version` the store's current master copy, copied from `source` and checked
 * against the version after the copy. The store keeps current and previous only.
 */
export function storeSteps(store: string, within: string, obs: StoreObservation, version: string, source: string): Step[] {
  const steps: Step[] = [];
  for (const l of obs.leftovers) steps.push({ op: "remove", path: path.join(store, l), within });
  if (!obs.versions.includes(version)) {
    steps.push({ op: "mkdir", path: store, within, parents: true });
    const partial = path.join(store, `.${version}.partial`);
    steps.push({ op: "copy", from: source, to: partial, within });
    steps.push({ op: "verify", path: partial, version });
    steps.push({ op: "rename", from: partial, to: path.join(store, version), within });
  }
  if (obs.current !== version) {
    if (obs.current) {
      steps.push({ op: "symlink", target: obs.current, path: path.join(store, ".previous.tmp"), within });
      steps.push({ op: "rename", from: path.join(store, ".previous.tmp"), to: path.join(store, "previous"), within });
    }
    steps.push({ op: "symlink", target: version, path: path.join(store, ".current.tmp"), within });
    steps.push({ op: "rename", from: path.join(store, ".current.tmp"), to: path.join(store, "current"), within });
    const keep = new Set([version, obs.current]);
    for (const v of obs.versions) if (!keep.has(v)) steps.push({ op: "remove", path: path.join(store, v), within });
  }
  return steps;
}
