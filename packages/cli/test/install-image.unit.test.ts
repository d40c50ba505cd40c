import { describe, expect, it } from "vitest";
import { debianMajor, parseDpkgStatus, requireUseraddPrefix } from "../src/install/image.js";
import { InstallError } from "../src/install/remote.js";

/** Unit tests with a fake remote: the parts of --image that a real Debian 12 target cannot show. */
describe("install --image: dpkg status and the target's useradd", () => {
  it("reads each package's Status, Version and Architecture; a removed package is not installed", () => {
    const pkgs = parseDpkgStatus(
      [
        "Package: nodejs\nStatus: deinstall ok config-files\nArchitecture: armhf\nVersion: 18.19.0+dfsg-6~deb12u2\nDescription: x\n more text\n",
        "Package: perl-base\nEssential: yes\nStatus: install ok installed\nArchitecture: arm64\nVersion: 5.36.0-7+deb12u2\n",
      ].join("\n"),
    );
    expect(pkgs.get("nodejs")).toEqual({ package: "nodejs", status: "deinstall ok config-files", version: "18.19.0+dfsg-6~deb12u2", architecture: "armhf" });
    expect(pkgs.get("perl-base")?.status).toBe("install ok installed");
    expect(debianMajor("18.19.0+dfsg-6~deb12u2")).toBe(18);
    expect(debianMajor("1:20.1.0-1")).toBe(20);
    expect(debianMajor("20.20.2-1nodesource1+repack1")).toBe(20);
    expect(debianMajor("garbage")).toBeUndefined();
  });

  it("a target whose useradd has no --prefix (or no useradd) is refused with what it needs", async () => {
    const fake = (code: number, stdout: string) => ({
      label: "root@fs",
      run: async () => ({ code, stdout, stderr: code === 127 ? "sh: 1: useradd: not found" : "" }),
      check: async () => "",
    });
    await expect(requireUseraddPrefix(fake(0, "Usage: useradd [options] LOGIN\n  -r, --system   create a system account\n"))).rejects.toThrow(
      new InstallError("--image: root@fs has a useradd without --prefix: the service user is created in the image with the target's useradd --prefix (shadow 4.6 or later, e.g. Debian 12's passwd package)"),
    );
    await expect(requireUseraddPrefix(fake(127, ""))).rejects.toThrow(/^--image: root@fs has no useradd: /);
    await expect(requireUseraddPrefix(fake(0, "  -P, --prefix PREFIX_DIR       prefix directory where are located the /etc/* files\n"))).resolves.toBeUndefined();
  });
});
