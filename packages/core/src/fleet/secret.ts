import { readFileSync } from "node:fs";
import type { SecretRef } from "./schema.js";

/** Resolves a credential reference. The value is never logged; errors name only the reference. */
export function readSecret(ref: SecretRef, env: NodeJS.ProcessEnv = process.env): string {
  if ("env" in ref) {
    const value = env[ref.env];
    if (value === undefined || value === "") throw new Error(`secret: environment variable ${ref.env} is not set`);
    return value;
  }
  try {
    return readFileSync(ref.file, "utf8").trim();
  } catch (err) {
    throw new Error(`secret: cannot read ${ref.file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}
