import { readFileSync } from "node:fs";
import { EnrollmentError, tokenName } from "@pifleet/coordinator";
import { UsageError } from "./usage-error.js";

/** The token a feed command uses (flag, file or $PIFLEET_TOKEN) and the name it carries. */
export function feedCredentials(opts: { token?: string; tokenFile?: string }, what = "a token"): { token: string; name: string } {
  const token = (opts.token ?? (opts.tokenFile ? readToken(opts.tokenFile) : process.env.PIFLEET_TOKEN) ?? "").trim();
  if (!token) throw new UsageError(`--token, --token-file or $PIFLEET_TOKEN is required (${what})`);
  try {
    return { token, name: tokenName(token) };
  } catch (err) {
    if (err instanceof EnrollmentError) throw new UsageError(err.message);
    throw err;
  }
}

/** A coordinator URL as given, with `/feed` added when only host and port were named. */
export function feedUrl(raw: string): string {
  if (!/^wss?:\/\//.test(raw)) throw new UsageError(`--url: "${raw}" must start with ws:// or wss://`);
  return /\/(feed|agent)$/.test(raw) ? raw : `${raw.replace(/\/$/, "")}/feed`;
}

/**
 * The coordinator URLs a feed command uses: `--url` or $PIFLEET_URL, several comma-separated for
 * coordinators in high availability, each checked as feedUrl does.
 */
export function feedUrls(flag: string | undefined): string[] {
  const raw = flag ?? process.env.PIFLEET_URL;
  if (!raw) throw new UsageError("--url or $PIFLEET_URL is required (the coordinator's feed, e.g. wss://coordinator:7300/feed)");
  return raw.split(",").map((u) => feedUrl(u.trim()));
}

function readToken(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new UsageError(`--token-file: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}
