import { chmodSync, writeFileSync } from "node:fs";
import type { Command } from "commander";
import { loadFleet, plan } from "@pifleet/core";
import { enrollAgent, EnrollmentError, loadCoordinatorConfig, SqliteStore, type AgentRole } from "@pifleet/coordinator";
import { UsageError } from "../usage-error.js";

/** The database named by --db, or the one a coordinator config points at. */
export function storePath(opts: { db?: string; config?: string }): string {
  if (opts.db) return opts.db;
  if (opts.config) return loadCoordinatorConfig(opts.config).database;
  throw new UsageError("--db PATH (or --config coordinator.yaml) is required");
}

/** Writes a credential readable by its owner only. */
export function writeSecretFile(file: string, text: string): void {
  writeFileSync(file, `${text}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
}

export function registerEnroll(program: Command): void {
  program
    .command("enroll")
    .description("issue (or revoke) an agent's credential: the coordinator keeps its public key, the agent its secret")
    .argument("<name>", "the Pi's or fileserver's name, as in the fleet file")
    .option("--role <role>", "pi or fileserver", "pi")
    .option("--db <path>", "the coordinator's database")
    .option("--config <file>", "take the database path from this coordinator config")
    .option("--fleet <file>", "refuse names that are not in this fleet file")
    .option("--out <file>", "write the secret to FILE (mode 0600) instead of printing it")
    .option("--rotate", "issue a new key for an agent already enrolled (its old key stops working)")
    .option("--revoke", "revoke the agent: it is refused from now on, and disconnected if connected")
    .action((name: string, opts: { role: string; db?: string; config?: string; fleet?: string; out?: string; rotate?: boolean; revoke?: boolean }) => {
      if (opts.role !== "pi" && opts.role !== "fileserver") throw new UsageError(`--role: "${opts.role}" is not pi or fileserver`);
      const role = opts.role as AgentRole;
      if (opts.fleet) {
        const p = plan(loadFleet(opts.fleet));
        const names = role === "pi" ? p.pis.map((pi) => pi.name) : p.fileservers.map((f) => f.name);
        if (!names.includes(name)) {
          throw new UsageError(`${opts.fleet}: no ${role} named "${name}" in fleet ${p.fleet} (${role === "pi" ? "Pis" : "fileservers"}: ${names.join(", ")})`);
        }
      }
      const store = new SqliteStore(storePath(opts));
      try {
        if (opts.revoke) {
          if (!store.revokeAgent(name)) throw new UsageError(`"${name}" is not enrolled, or already revoked`);
          process.stdout.write(`revoked ${name}: the coordinator refuses it from now on and drops its connection\n`);
          return;
        }
        let issued;
        try {
          issued = enrollAgent(store, name, role, { rotate: opts.rotate });
        } catch (err) {
          if (err instanceof EnrollmentError) throw new UsageError(err.message);
          throw err;
        }
        const what = `${issued.rotated ? "re-enrolled" : "enrolled"} ${name} as ${role}`;
        if (opts.out) {
          writeSecretFile(opts.out, issued.secret);
          process.stdout.write(`${what}; secret written to ${opts.out}\n`);
        } else {
          process.stderr.write(`${what}; its secret (shown once, keep it in the agent's config):\n`);
          process.stdout.write(`${issued.secret}\n`);
        }
      } finally {
        store.close();
      }
    });
}
