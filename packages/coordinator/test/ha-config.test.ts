import { describe, expect, it } from "vitest";
import { ConfigError, parseCoordinatorConfig } from "@pifleet/coordinator";

const FILE = "/etc/pifleet/coordinator.yaml";

function errorOf(text: string): string {
  try {
    parseCoordinatorConfig(text, FILE);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error("expected a ConfigError");
}

describe("coordinator config: ha", () => {
  it("is absent by default: one coordinator on SQLite", () => {
    expect(parseCoordinatorConfig("fleet: fleet.yaml\n", FILE).ha).toBeUndefined();
  });

  it("takes etcd endpoints, a name and a lease TTL (default 5 s); TLS paths are resolved against the file", () => {
    const c = parseCoordinatorConfig("fleet: fleet.yaml\nha:\n  name: c2\n  etcd:\n    endpoints: [https://10.0.0.1:2379, https://10.0.0.2:2379]\n    tls: { ca: tls/ca.pem, cert: tls/c2.pem, key: tls/c2.key }\n", FILE);
    expect(c.ha).toEqual({
      name: "c2",
      leaseTtlS: 5,
      etcd: { endpoints: ["https://10.0.0.1:2379", "https://10.0.0.2:2379"], tls: { ca: "/etc/pifleet/tls/ca.pem", cert: "/etc/pifleet/tls/c2.pem", key: "/etc/pifleet/tls/c2.key" } },
    });
  });

  it("names the field at fault", () => {
    expect(errorOf("fleet: f.yaml\nha:\n  name: c1\n")).toMatch(/ha\.etcd: required/);
    expect(errorOf("fleet: f.yaml\nha:\n  etcd:\n    endpoints: []\n")).toMatch(/ha\.etcd\.endpoints: at least one etcd endpoint/);
    expect(errorOf("fleet: f.yaml\nha:\n  etcd:\n    endpoints: [etcd1:2379]\n")).toMatch(/ha\.etcd\.endpoints\[0\]: must be an http:\/\/ or https:\/\/ URL/);
    expect(errorOf("fleet: f.yaml\nha:\n  leaseTtlS: 1\n  etcd:\n    endpoints: [http://127.0.0.1:2379]\n")).toMatch(/ha\.leaseTtlS/);
    expect(errorOf("fleet: f.yaml\nha:\n  name: 'c 1'\n  etcd:\n    endpoints: [http://127.0.0.1:2379]\n")).toMatch(/ha\.name: letters, digits/);
    expect(errorOf("fleet: f.yaml\nha:\n  etcd:\n    endpoints: [http://127.0.0.1:2379]\n    tls: { cert: c.pem }\n")).toMatch(/ha\.etcd\.tls\.key: cert and key go together/);
    expect(errorOf("fleet: f.yaml\nha:\n  etcd:\n    endpoints: [http://127.0.0.1:2379]\n    lease: 3\n")).toMatch(/ha\.etcd: unknown key "lease"/);
  });
});
