import type { AdminState, CheckResult, OperationalState, ServerState } from "../driver.js";

/**
 * Parser for `show servers state [<backend>]`: a format-version line, a `# name name …` header,
 * then space-separated rows. Columns are found by header name, not position, because HAProxy
 * appends columns between versions (management guide, "show servers state").
 */

export class ServersStateFormatError extends Error {
  override name = "ServersStateFormatError";
}

export interface RawServerRow {
  [column: string]: string;
}

const REQUIRED = ["be_name", "srv_id", "srv_name", "srv_addr", "srv_op_state", "srv_admin_state", "srv_check_status", "srv_check_result", "srv_check_state"];

export function parseServersStateRows(text: string): { version: number; rows: RawServerRow[] } {
  const lines = text.split("\n").map((l) => l.trimEnd());
  const versionLine = lines.shift()?.trim() ?? "";
  if (!/^[0-9]+$/.test(versionLine)) throw new ServersStateFormatError(`expected a format version on the first line, got "${versionLine.slice(0, 120)}"`);
  const version = Number(versionLine);
  const headerLine = lines.shift() ?? "";
  if (!headerLine.startsWith("#")) throw new ServersStateFormatError(`expected a "# be_id be_name …" header on line 2, got "${headerLine.slice(0, 120)}"`);
  const columns = headerLine.slice(1).trim().split(/\s+/);
  const missing = REQUIRED.filter((c) => !columns.includes(c));
  if (missing.length > 0) throw new ServersStateFormatError(`format ${version}: header lacks ${missing.join(", ")}`);
  const rows: RawServerRow[] = [];
  for (const [i, line] of lines.entries()) {
    if (line.trim() === "" || line.startsWith("#")) continue;
    const fields = line.trim().split(/\s+/);
    if (fields.length < columns.length) {
      throw new ServersStateFormatError(`line ${i + 3}: ${fields.length} fields for ${columns.length} columns`);
    }
    const row: RawServerRow = {};
    columns.forEach((c, j) => (row[c] = fields[j]));
    rows.push(row);
  }
  return { version, rows };
}

// srv_admin_state bits (management guide): forced/inherited/config/resolution maintenance, forced/inherited drain.
const ADMF_MAINT = 0x01 | 0x02 | 0x04 | 0x20;
const ADMF_DRAIN = 0x08 | 0x10;
// srv_check_state bits.
const CHK_ST_CONFIGURED = 0x02;
const CHK_ST_ENABLED = 0x04;

const OPERATIONAL: OperationalState[] = ["down", "starting", "up", "stopping"];
const RESULTS: CheckResult[] = ["unknown", "neutral", "failed", "passed", "conditional"];

/**
 * `enum healthcheck_status` (include/haproxy/check-t.h, 2.2 onwards) → the short names `show stat`
 * prints in check_status. HAProxy 2.6's L7OKD prints as "L7OK".
 */
const CHECK_STATUS = [
  "UNK", "INI", "START", "CHECKED", "HANA", "SOCKERR", "L4OK", "L4TOUT", "L4CON", "L6OK", "L6TOUT", "L6RSP",
  "L7TOUT", "L7RSP", "L57DATA", "L7OK", "L7OKC", "L7STS", "PROCERR", "PROCTOUT", "PROCOK",
];

export function adminStateOf(flags: number): AdminState {
  if (flags & ADMF_MAINT) return "maint";
  if (flags & ADMF_DRAIN) return "drain";
  return "ready";
}

export function checkStatusName(code: number): string {
  return CHECK_STATUS[code] ?? `status-${code}`;
}

/** Turns rows into ServerState; `isManaged` decides from the raw row whether pifleet added the server. */
export function toServerState(row: RawServerRow, isManaged: (row: RawServerRow) => boolean): ServerState {
  const num = (column: string): number => {
    const value = Number(row[column]);
    return Number.isFinite(value) ? value : 0;
  };
  const checkState = num("srv_check_state");
  return {
    name: row.srv_name,
    address: row.srv_addr,
    port: num("srv_port"),
    admin: adminStateOf(num("srv_admin_state")),
    operational: OPERATIONAL[num("srv_op_state")] ?? "down",
    check: {
      enabled: (checkState & CHK_ST_CONFIGURED) !== 0 && (checkState & CHK_ST_ENABLED) !== 0,
      status: checkStatusName(num("srv_check_status")),
      result: RESULTS[num("srv_check_result")] ?? "unknown",
    },
    weight: num("srv_uweight"),
    secondsSinceChange: num("srv_time_since_last_change"),
    managed: isManaged(row),
  };
}
