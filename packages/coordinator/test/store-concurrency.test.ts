import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import Database from "better-sqlite3";
import { SqliteStore } from "@pifleet/coordinator";
import { MIGRATIONS } from "../src/store/migrations.js";

const dist = fileURLToPath(new URL("../dist/store/sqlite.js", import.meta.url));
const dir = mkdtempSync(path.join(tmpdir(), "pifleet-store-race-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function openIn(file: string, identity: string): Promise<{ code: number | null; stderr: string }> {
  // A separate process each, as several `pifleet enroll` commands run at once would be.
  const script = `const { SqliteStore } = await import(${JSON.stringify(dist)});
const s = new SqliteStore(${JSON.stringify(file)});
s.enrollAgent({ identity: ${JSON.stringify(identity)}, role: "pi", publicKey: "k" });
s.close();`;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("exit", (code) => resolve({ code, stderr }));
  });
}

describe("a new database opened by several processes at once", () => {
  it("is migrated once, and every process gets a working store", async () => {
    for (let round = 0; round < 3; round++) {
      const file = path.join(dir, `race-${round}.db`);
      const results = await Promise.all(Array.from({ length: 6 }, (_, i) => openIn(file, `pi${i}`)));
      expect(results.map((r) => r.stderr.trim())).toEqual(new Array(6).fill(""));
      expect(results.map((r) => r.code)).toEqual(new Array(6).fill(0));
      const store = new SqliteStore(file);
      expect(store.agents().map((a) => a.identity).sort()).toEqual(["pi0", "pi1", "pi2", "pi3", "pi4", "pi5"]);
      store.close();
    }
  });

  it("re-reads the schema version under the write lock (another process migrated meanwhile)", async () => {
    const file = path.join(dir, "interleaved.db");
    // Process A takes the write lock on the empty database before B opens it...
    const a = new Database(file);
    a.pragma("journal_mode = WAL");
    a.exec("BEGIN IMMEDIATE");
    const b = openIn(file, "pib");
    // ...so B reads schema version 0 and then waits for the lock (busy_timeout) to migrate...
    await new Promise((r) => setTimeout(r, 1500));
    // ...while A migrates and commits. B must now see version N, not run migration 1 again.
    for (const [i, sql] of MIGRATIONS.entries()) {
      a.exec(sql);
      a.pragma(`user_version = ${i + 1}`);
    }
    a.exec("COMMIT");
    a.close();
    const r = await b;
    expect(r.stderr.trim()).toBe("");
    expect(r.code).toBe(0);
  });
});
