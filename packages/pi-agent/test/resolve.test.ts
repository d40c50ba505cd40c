import { describe, it, expect, vi } from "vitest";
import type { LookupAddress } from "node:dns";

// Counts the lookups that reach the system resolver (getaddrinfo on the thread pool).
const calls: string[] = [];
vi.mock("node:dns", async (orig) => {
  const real = await orig<typeof import("node:dns")>();
  return {
    ...real,
    lookup: (name: string, _opts: unknown, cb: (err: Error | null, a: LookupAddress[]) => void) => {
      calls.push(name);
      setTimeout(() => cb(null, [{ address: "2001:db8::7", family: 6 }]), 50);
    },
  };
});

const { cachedLookup } = await import("../src/resolve.js");

function lookupAll(name: string, family = 0): Promise<LookupAddress[]> {
  return new Promise((resolve, reject) =>
    cachedLookup(name, { all: true, family } as never, ((err: Error | null, a: LookupAddress[]) => (err ? reject(err) : resolve(a))) as never),
  );
}

describe("the HTTP collectors' name lookup", () => {
  it("answers localhost with both loopback addresses without asking the resolver", async () => {
    expect(await lookupAll("localhost")).toEqual([
      { address: "::1", family: 6 },
      { address: "127.0.0.1", family: 4 },
    ]);
    expect(await lookupAll("www.localhost", 4)).toEqual([{ address: "127.0.0.1", family: 4 }]);
    expect(calls).toEqual([]);
  });

  it("asks once for concurrent lookups of a name, then serves it from the cache", async () => {
    const [a, b] = await Promise.all([lookupAll("status.example"), lookupAll("status.example")]);
    expect(a).toEqual([{ address: "2001:db8::7", family: 6 }]);
    expect(b).toEqual(a);
    expect(await lookupAll("status.example")).toEqual(a);
    expect(calls).toEqual(["status.example"]);
  });

  it("reports a name with no address of the wanted family as not found", async () => {
    await expect(lookupAll("status.example", 4)).rejects.toThrow("ENOTFOUND status.example");
  });
});
