export interface FieldIssue {
  /** Field path like `pis[3].port`. */
  path: string;
  message: string;
}

/** A file with thousands of bad Pis should not flood a terminal; `issues` keeps them all. */
const MAX_SHOWN = 20;

/** A fleet that cannot be planned: every issue names its field, the whole set is reported at once. */
export class FleetError extends Error {
  constructor(
    readonly issues: FieldIssue[],
    readonly file?: string,
  ) {
    super(FleetError.format(issues, file));
    this.name = "FleetError";
  }

  static format(issues: FieldIssue[], file?: string): string {
    const where = file ? `${file}: ` : "";
    const shown = issues.slice(0, MAX_SHOWN).map((i) => `${where}${i.path || "(top level)"}: ${i.message}`);
    if (issues.length > MAX_SHOWN) shown.push(`${where}… and ${issues.length - MAX_SHOWN} more issues`);
    return shown.join("\n");
  }
}

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
}
