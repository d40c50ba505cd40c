import type { Command } from "commander";
import { createToken, EnrollmentError, SqliteStore, type TokenRole } from "@pifleet/coordinator";
import { textTable } from "@pifleet/core";
import { UsageError } from "../usage-error.js";
import { storePath, writeSecretFile } from "./enroll.js";

interface DbOpts {
  db?: string;
  config?: string;
}

function withStore<T>(opts: DbOpts, fn: (s: SqliteStore) => T): T {
  const store = new SqliteStore(storePath(opts));
  try {
    return fn(store);
  } finally {
    store.close();
  }
}

export function registerToken(program: Command): void {
  const token = program.command("token").description("tokens for watchers (the feed) and operators (the feed plus commands)");
  token
    .command("create")
    .description("create a token; prints it once (NAME.SECRET), the coordinator keeps only its hash")
    .argument("<name>", "who uses it, e.g. alice or dashboard")
    .requiredOption("--role <role>", "watcher or operator")
    .option("--db <path>", "the coordinator's database")
    .option("--config <file>", "take the database path from this coordinator config")
    .option("--out <file>", "write the token to FILE (mode 0600) instead of printing it")
    .action((name: string, opts: DbOpts & { role: string; out?: string }) => {
      if (opts.role !== "watcher" && opts.role !== "operator") throw new UsageError(`--role: "${opts.role}" is not watcher or operator`);
      const text = withStore(opts, (s) => {
        try {
          return createToken(s, name, opts.role as TokenRole);
        } catch (err) {
          if (err instanceof EnrollmentError) throw new UsageError(err.message);
          throw err;
        }
      });
      if (opts.out) {
        writeSecretFile(opts.out, text);
        process.stdout.write(`${opts.role} token ${name} written to ${opts.out}\n`);
      } else {
        process.stdout.write(`${text}\n`);
      }
    });
  token
    .command("revoke")
    .description("revoke a token: refused from now on, its connections dropped")
    .argument("<name>")
    .option("--db <path>", "the coordinator's database")
    .option("--config <file>", "take the database path from this coordinator config")
    .action((name: string, opts: DbOpts) => {
      if (!withStore(opts, (s) => s.revokeToken(name))) throw new UsageError(`no live token named "${name}"`);
      process.stdout.write(`revoked token ${name}\n`);
    });
  token
    .command("list")
    .description("list tokens and enrolled agents (names and roles; never secrets)")
    .option("--db <path>", "the coordinator's database")
    .option("--config <file>", "take the database path from this coordinator config")
    .action((opts: DbOpts) => {
      const rows = withStore(opts, (s) => [
        ...s.tokens().map((t) => [t.name, t.role, new Date(t.createdMs).toISOString(), t.revokedMs ? `revoked ${new Date(t.revokedMs).toISOString()}` : "live"]),
        ...s.agents().map((a) => [a.identity, a.role, new Date(a.createdMs).toISOString(), a.revokedMs ? `revoked ${new Date(a.revokedMs).toISOString()}` : "live"]),
      ]);
      process.stdout.write(`${textTable(["NAME", "ROLE", "CREATED", "STATUS"], rows)}\n`);
    });
}
