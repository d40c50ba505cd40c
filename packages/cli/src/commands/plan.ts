import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { fileserverView, loadFleet, netbootedPis, plan, renderDnsmasqConf, renderDnsmasqHosts, renderPlanFiles, renderPlanTable, renderTftpFiles, shelfOf, UnknownNameError, type Plan } from "@pifleet/core";
import { UsageError } from "../usage-error.js";

/** The plan narrowed to one shelf: its Pis, its switch, the fileserver serving it. */
function onlyShelf(derived: Plan, name: string): Plan {
  const shelf = shelfOf(derived, name);
  const pis = derived.pis.filter((p) => p.shelf === name);
  const names = new Set(pis.map((p) => p.name));
  return {
    ...derived,
    pis,
    shelves: [shelf],
    fileservers: derived.fileservers
      .filter((f) => f.name === shelf.fileserver)
      .map((f) => ({ ...f, shelves: [name], trunkInterfaces: [shelf.trunkInterface], interfaces: f.interfaces.filter((i) => i.shelf === name) })),
    loadBalancer: { ...derived.loadBalancer, servers: derived.loadBalancer.servers.filter((s) => names.has(s.name)) },
  };
}

export function registerPlan(program: Command): void {
  program
    .command("plan")
    .description("derive the addressing plan from a fleet file and print it or write its files")
    .argument("<fleet>", "fleet file (YAML)")
    .option("--shelf <name>", "only this shelf (its Pis, its switch, its fileserver's part)")
    .option("--json", "print the plan as JSON")
    .option("--netboot", "print each fileserver's dnsmasq config and reservations, and each netbooted Pi's TFTP files")
    .option("--out <dir>", "write cmdline.txt, interfaces, exports, switch table and HAProxy backend under DIR")
    .action((file: string, opts: { json?: boolean; out?: string; shelf?: string; netboot?: boolean }) => {
      let derived = plan(loadFleet(file));
      if (opts.shelf !== undefined) {
        try {
          derived = onlyShelf(derived, opts.shelf);
        } catch (err) {
          if (err instanceof UnknownNameError) throw new UsageError(`--shelf: ${err.message}`);
          throw err;
        }
      }
      if (opts.out) {
        const written: string[] = [];
        for (const [rel, text] of renderPlanFiles(derived)) {
          const target = path.join(opts.out, rel);
          mkdirSync(path.dirname(target), { recursive: true });
          writeFileSync(target, text);
          written.push(target);
        }
        process.stdout.write(`wrote ${written.length} files under ${opts.out}\n`);
        return;
      }
      if (opts.netboot) {
        process.stdout.write(renderNetboot(derived));
        return;
      }
      process.stdout.write(opts.json ? `${JSON.stringify(derived, null, 2)}\n` : renderPlanTable(derived));
    });
}

/** The netboot chain as text: per fileserver its two dnsmasq files, then each Pi's TFTP folder. */
function renderNetboot(derived: Plan): string {
  const out: string[] = [];
  for (const fs of derived.fileservers) {
    const view = fileserverView(derived, fs.name);
    const pis = netbootedPis(view);
    if (pis.length === 0) {
      out.push(`# fileserver ${fs.name}: no netbooted Pi (boot.mode is sd)\n`);
      continue;
    }
    out.push(`# fileserver ${fs.name}: /etc/dnsmasq.d/pifleet.conf\n${renderDnsmasqConf(view)}`);
    out.push(`# fileserver ${fs.name}: /etc/pifleet/dnsmasq.hosts\n${renderDnsmasqHosts(view)}`);
    for (const pi of pis) {
      for (const [name, text] of renderTftpFiles(pi)) out.push(`# ${pi.name}: ${pi.netboot!.tftpDir}/${name}\n${text}`);
    }
  }
  return out.join("\n");
}
