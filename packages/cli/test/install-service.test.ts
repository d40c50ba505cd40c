import { describe, expect, it } from "vitest";
import { manageService, type InstallOptions } from "../src/install/installer.js";
import { InstallError } from "../src/install/remote.js";
import { ROLES } from "../src/install/roles.js";

/**
 * Unit test with a fake remote (no systemd here): what the installer says when the unit does not
 * come up. The real-systemctl path runs in the lab's systemd VM; this only checks the report.
 */
describe("install: a unit that does not become active", () => {
  it("is reported with systemctl show's ActiveState/SubState/Result and the last 20 journal lines", async () => {
    const ran: string[] = [];
    const answers: Array<[RegExp, string, number]> = [
      [/^systemctl is-enabled/, "enabled\n", 0],
      [/^systemctl is-active/, "failed\n", 3],
      [/^systemctl reset-failed pifleet-pi-agent\.service$/, "", 0],
      [/^systemctl restart/, "", 0],
      [/^systemctl show -p ActiveState,SubState,Result pifleet-pi-agent\.service$/, "ActiveState=failed\nSubState=failed\nResult=exit-code\n", 0],
      [/^journalctl -u pifleet-pi-agent\.service -n 20 --no-pager -o cat$/, "pi-agent: /etc/pifleet/pi-agent.yaml: intervalMs: expected number\n", 0],
    ];
    const remote = {
      label: "root@pi01",
      async run(command: string) {
        ran.push(command);
        const a = answers.find(([re]) => re.test(command));
        if (!a) throw new Error(`unexpected command ${command}`);
        return { code: a[2], stdout: a[1], stderr: "" };
      },
      async check(command: string) {
        ran.push(command);
        return "";
      },
    };
    const options = { role: ROLES.pi, prefix: "/", start: true, dryRun: false, activeTimeoutMs: 1000, out: () => undefined } as unknown as InstallOptions;
    const err = await manageService(remote as never, options, { unitChanged: false, filesChanged: true, configMissing: false }, () => undefined, () => undefined, () => undefined).catch((e: Error) => e);
    expect(err).toBeInstanceOf(InstallError);
    expect((err as Error).message).toBe(
      "root@pi01: pifleet-pi-agent.service did not become active (failed; ActiveState=failed SubState=failed Result=exit-code). Last journal lines:\npi-agent: /etc/pifleet/pi-agent.yaml: intervalMs: expected number",
    );
    expect(ran).toContain("systemctl restart pifleet-pi-agent.service");
    // A unit that failed may have hit its start limit, which refuses even a manual restart.
    expect(ran.indexOf("systemctl reset-failed pifleet-pi-agent.service")).toBeGreaterThanOrEqual(0);
    expect(ran.indexOf("systemctl reset-failed pifleet-pi-agent.service")).toBeLessThan(ran.indexOf("systemctl restart pifleet-pi-agent.service"));
  });
});
