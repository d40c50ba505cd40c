import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { FileserverView } from "@pifleet/core";
import { createLayout } from "./layout.js";

/**
 * Prepares a sandbox folder to stand in for a fileserver's `/`: what Debian would already have
 * (/etc/network/interfaces sourcing interfaces.d, the vlan package's ifupdown hook, /etc/exports) and a tiny golden image, so the
 * demo and tests can create, rebuild and fill roots. Never overwrites what is there.
 */
export function initSandbox(prefix: string, plan: FileserverView): string[] {
  if (!prefix) throw new Error("init-sandbox needs --root-prefix: it never writes to the real /");
  const layout = createLayout(plan, prefix);
  const created: string[] = [];
  const file = (p: string, text: string) => {
    if (existsSync(p)) return;
    mkdirSync(path.dirname(p), { recursive: true });
    writeFileSync(p, text);
    created.push(p);
  };
  file(layout.networkInterfaces, "# Debian's default, as on a fresh fileserver\nsource /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n");
  // Stands in for Debian's `vlan` package, which ifupdown needs to create eth0.N at boot.
  file(path.join(path.dirname(layout.networkInterfaces), "if-pre-up.d/vlan"), "#!/bin/sh\n# sandbox stand-in for the hook Debian's vlan package installs\n");
  file(path.join(prefix, "etc/exports"), "# /etc/exports: the access control list for filesystems which may be exported\n");
  const g = layout.golden;
  file(path.join(g, "etc/hostname"), "raspberrypi\n");
  file(path.join(g, "etc/os-release"), 'PRETTY_NAME="pifleet golden image (sandbox)"\n');
  file(path.join(g, "etc/fstab"), "proc /proc proc defaults 0 0\n");
  file(path.join(g, "var/www/html/index.html"), "<!doctype html><title>It works</title><p>The golden image's default page.</p>\n");
  file(path.join(g, "usr/lib/os-release"), 'ID=debian\n');
  for (const d of [layout.exportsDir, path.dirname(layout.interfacesFile), layout.exportRoot, path.join(g, "tmp"), path.join(g, "home")]) {
    if (!existsSync(d)) {
      mkdirSync(d, { recursive: true });
      created.push(d);
    }
  }
  return created;
}
