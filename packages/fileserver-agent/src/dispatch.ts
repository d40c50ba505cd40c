/**
 * One bundle, two programs: the installed fileserver has only main.js, and an operator on it
 * needs `apply`, `plan`, `rebuild`… as much as systemd needs the daemon. Arguments that are
 * only the daemon's own (`--config FILE`, or none) start the daemon exactly as before; anything
 * else (`apply --live host`, `--fleet F plan`, `--help`) is the `pifleet-fileserver` command.
 */
export function isDaemonInvocation(args: readonly string[]): boolean {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--config") i++;
    else if (!a.startsWith("--config=")) return false;
  }
  return true;
}
