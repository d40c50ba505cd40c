import { describe, expect, it } from "vitest";
import { isDaemonInvocation } from "../src/dispatch.js";

describe("main.js: daemon or command", () => {
  it("is the daemon with no arguments or only its own --config", () => {
    expect(isDaemonInvocation([])).toBe(true);
    expect(isDaemonInvocation(["--config", "/etc/pifleet/fileserver.yaml"])).toBe(true);
    expect(isDaemonInvocation(["--config=/etc/pifleet/fileserver.yaml"])).toBe(true);
    // A missing value is the daemon's own usage error, as before.
    expect(isDaemonInvocation(["--config"])).toBe(true);
  });

  it("is pifleet-fileserver with a subcommand or any other option", () => {
    expect(isDaemonInvocation(["apply", "--live", "host"])).toBe(false);
    expect(isDaemonInvocation(["--fleet", "/etc/pifleet/fleet.yaml", "plan"])).toBe(false);
    expect(isDaemonInvocation(["--config", "/etc/pifleet/fileserver.yaml", "plan"])).toBe(false);
    expect(isDaemonInvocation(["--help"])).toBe(false);
  });
});
